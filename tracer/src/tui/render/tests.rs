//! The screens drawn from fixed snapshots into a `TestBackend`, compared with
//! the committed insta snapshots (`cargo insta review` after a deliberate
//! change).

use std::sync::Arc;

use ratatui::{Terminal, backend::TestBackend, style::Color};

use super::*;
use crate::{
    fixtures,
    tui::{
        keys::{self, Action},
        state::{FilterKey, Status},
    },
};

fn ctx() -> ViewContext {
    ViewContext {
        host: "web-1".into(),
        kernel: "6.18.44".into(),
        hooks: "tracepoint sock:inet_sock_set_state, tracepoint tcp:tcp_retransmit_skb, tracepoint tcp:tcp_send_reset".into(),
        scope: "all processes".into(),
        log_path: Some("/tmp/tracer-4242.log".into()),
        refresh: std::time::Duration::from_secs(1),
    }
}

fn draw(state: &ViewState, snapshot: &Snapshot, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(width, height)).unwrap();
    t.draw(|f| render(state, snapshot, &ctx(), f)).unwrap();
    t
}

/// The state after pressing `actions` on `snapshot`.
fn after(actions: &[Action], snapshot: &Snapshot) -> ViewState {
    let live = Arc::new(snapshot.clone());
    let mut state = ViewState::default();
    for &a in actions {
        state.apply(a, &live);
    }
    state
}

/// The state after pressing `actions` on the last of `snapshots`, with the
/// history of them all.
fn after_history(actions: &[Action], snapshots: &[Snapshot]) -> ViewState {
    let last = snapshots.last().expect("a snapshot");
    let mut state = after(actions, last);
    for s in snapshots {
        state.history.record(s);
    }
    state
}

fn screen_text(t: &Terminal<TestBackend>) -> String {
    let buffer = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[test]
fn main_screen_healthy() {
    let s = fixtures::healthy();
    insta::assert_snapshot!(draw(&ViewState::default(), &s, 120, 30).backend());
}

#[test]
fn main_screen_misbehaving_80x24() {
    let s = fixtures::misbehaving();
    insta::assert_snapshot!(draw(&ViewState::default(), &s, 80, 24).backend());
}

#[test]
fn main_screen_misbehaving_wide() {
    let s = fixtures::misbehaving();
    let state = ViewState {
        status: Some(Status {
            text: "saved /tmp/tracer-20250101T120000Z.csv".into(),
            error: false,
        }),
        ..after(&[Action::Pause, Action::Down], &s)
    };
    insta::assert_snapshot!(draw(&state, &s, 160, 30).backend());
}

#[test]
fn detail_80x24() {
    let s = fixtures::misbehaving();
    let state = after(&[Action::Open], &s);
    insta::assert_snapshot!(draw(&state, &s, 80, 24).backend());
}

#[test]
fn detail_healthy_wide() {
    let s = fixtures::healthy();
    let state = after(&[Action::Open], &s);
    insta::assert_snapshot!(draw(&state, &s, 140, 40).backend());
}

#[test]
fn detail_of_a_refused_client() {
    let s = fixtures::misbehaving();
    let state = after(&[Action::Down, Action::Open], &s);
    insta::assert_snapshot!(draw(&state, &s, 100, 30).backend());
}

#[test]
fn main_screen_with_history_wide() {
    let series = fixtures::misbehaving_over(600);
    let state = after_history(&[], &series);
    insta::assert_snapshot!(draw(&state, series.last().unwrap(), 160, 20).backend());
}

#[test]
fn main_screen_with_history_sorted_by_close_wait() {
    let series = fixtures::misbehaving_over(600);
    let state = after_history(&[Action::SortPrev; 7], &series);
    assert_eq!(state.sort, crate::tui::columns::Column::CloseWait);
    insta::assert_snapshot!(draw(&state, series.last().unwrap(), 170, 16).backend());
}

/// At 120 columns the table has no room for the trend; the header has.
#[test]
fn main_screen_with_history_120() {
    let series = fixtures::misbehaving_over(600);
    let state = after_history(&[], &series);
    insta::assert_snapshot!(draw(&state, series.last().unwrap(), 120, 24).backend());
}

/// At 80×24 the history is the first thing left out: only the header, which
/// has room, gets its sparkline.
#[test]
fn with_history_80x24_as_without() {
    let series = fixtures::misbehaving_over(600);
    let last = series.last().unwrap();
    for actions in [&[][..], &[Action::Open]] {
        let with = screen_text(&draw(&after_history(actions, &series), last, 80, 24));
        let without = screen_text(&draw(&after(actions, last), last, 80, 24));
        let (with_header, with_rest) = with.split_once('\n').unwrap();
        let (without_header, without_rest) = without.split_once('\n').unwrap();
        assert_eq!(with_rest, without_rest);
        let spark: String = with_header
            .chars()
            .filter(|c| ('▁'..='█').contains(c))
            .collect();
        assert_eq!(spark.chars().count(), 12, "{with_header}");
        assert_eq!(
            with_header.replace(&format!("{spark}  "), "").trim_end(),
            without_header.trim_end(),
            "only the sparkline is added"
        );
    }
}

#[test]
fn detail_with_history() {
    let series = fixtures::misbehaving_over(600);
    let state = after_history(&[Action::Open], &series);
    insta::assert_snapshot!(draw(&state, series.last().unwrap(), 120, 40).backend());
}

/// Two minutes in: the history fills from the right.
#[test]
fn detail_with_a_short_history() {
    let series = fixtures::misbehaving_over(600);
    let state = after_history(&[Action::Down, Action::Open], &series[480..]);
    insta::assert_snapshot!(draw(&state, series.last().unwrap(), 100, 30).backend());
}

/// Paused: the history ends at the paused snapshot.
#[test]
fn paused_history_ends_at_the_paused_snapshot() {
    let series = fixtures::misbehaving_over(600);
    let live = Arc::new(series[299].clone());
    let mut state = ViewState::default();
    state.apply(Action::Open, &live);
    state.apply(Action::Pause, &live);
    for s in &series {
        state.history.record(s);
    }
    let paused = screen_text(&draw(&state, &series[299], 120, 40));
    let mut at_the_time = ViewState::default();
    at_the_time.apply(Action::Open, &live);
    at_the_time.apply(Action::Pause, &live);
    for s in &series[..300] {
        at_the_time.history.record(s);
    }
    assert_eq!(
        paused,
        screen_text(&draw(&at_the_time, &series[299], 120, 40))
    );
}

#[test]
fn help_80x24() {
    let s = fixtures::healthy();
    let state = after(&[Action::Help], &s);
    insta::assert_snapshot!(draw(&state, &s, 80, 24).backend());
}

#[test]
fn help_tall() {
    let s = fixtures::healthy();
    let state = after(&[Action::Help], &s);
    insta::assert_snapshot!(draw(&state, &s, 120, 50).backend());
}

#[test]
fn findings_screen() {
    let s = fixtures::misbehaving();
    let state = after(&[Action::Findings, Action::Down], &s);
    insta::assert_snapshot!(draw(&state, &s, 100, 24).backend());
}

#[test]
fn filtering() {
    let s = fixtures::misbehaving();
    let mut state = after(&[Action::Filter], &s);
    for c in "fe".chars() {
        state.type_filter(FilterKey::Char(c));
    }
    insta::assert_snapshot!(draw(&state, &s, 80, 24).backend());
}

#[test]
fn tiny_terminal_says_so() {
    let s = fixtures::misbehaving();
    insta::assert_snapshot!(draw(&ViewState::default(), &s, 40, 10).backend());
}

#[test]
fn no_size_panics() {
    let snapshots = [
        fixtures::misbehaving(),
        fixtures::healthy(),
        fixtures::snapshot(Vec::new()),
    ];
    let series = fixtures::misbehaving_over(30);
    let screens = [
        vec![],
        vec![Action::Open],
        vec![Action::Findings],
        vec![Action::Help],
        vec![Action::Open, Action::Help, Action::PageDown],
    ];
    for s in &snapshots {
        for actions in &screens {
            let without = after(actions, s);
            let mut with = without.clone();
            for earlier in &series {
                with.history.record(earlier);
            }
            for (state, (w, h)) in [&without, &with].into_iter().flat_map(|state| {
                [
                    (1, 1),
                    (20, 5),
                    (59, 14),
                    (60, 15),
                    (61, 16),
                    (80, 24),
                    (160, 40),
                    (200, 60),
                ]
                .map(|size| (state, size))
            }) {
                draw(state, s, w, h);
            }
        }
    }
}

#[test]
fn rows_with_findings_are_coloured() {
    let s = fixtures::misbehaving();
    let t = draw(&ViewState::default(), &s, 80, 24);
    let text = screen_text(&t);
    let buffer = t.backend().buffer();
    let row_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not on screen:\n{text}")) as u16
    };
    // billing (critical) is red, cron-job (exited, no finding) is grey.
    let x = text
        .lines()
        .nth(usize::from(row_of("billing")))
        .unwrap()
        .find("billing")
        .unwrap() as u16;
    assert_eq!(buffer[(x, row_of("billing"))].fg, Color::Red);
    let x = text
        .lines()
        .nth(usize::from(row_of("cron-job")))
        .unwrap()
        .find("cron-job")
        .unwrap() as u16;
    assert_eq!(buffer[(x, row_of("cron-job"))].fg, Color::DarkGray);
    // Dropped events are shown in red, never hidden.
    let header = text.lines().next().unwrap();
    assert!(header.contains("dropped 1022"), "{header}");
}

/// The key table, the help and the footer agree: every binding is in the
/// help with all its keys, and every footer entry is in the footer.
#[test]
fn key_table_help_and_footer_agree() {
    let s = fixtures::healthy();
    let state = after(&[Action::Help], &s);
    let help = screen_text(&draw(&state, &s, 200, 80));
    for b in keys::BINDINGS {
        let line = help
            .lines()
            .find(|l| l.contains(b.help))
            .unwrap_or_else(|| panic!("help lacks {:?}:\n{help}", b.action));
        assert!(line.contains(&keys::names(b)), "{line}");
    }
    let footer = footer::text(&ViewState::default());
    for (key, word) in keys::footer() {
        assert!(footer.contains(&format!("{key} {word}")), "{footer}");
    }
    // And nothing else: every `key word` pair of the footer is a binding.
    let pairs: Vec<(String, &str)> = keys::footer().collect();
    assert_eq!(
        pairs.len(),
        keys::BINDINGS.iter().filter(|b| b.footer.is_some()).count()
    );
}

/// When every --pid has exited, the header says so.
#[test]
fn exited_traced_processes_are_said() {
    let mut s = fixtures::healthy();
    let header = |s: &Snapshot| {
        let t = draw(&ViewState::default(), s, 160, 24);
        screen_text(&t).lines().next().unwrap().to_owned()
    };
    assert!(!header(&s).contains("exited"), "{}", header(&s));
    s.traced_exited = true;
    assert!(
        header(&s).contains("every traced process has exited"),
        "{}",
        header(&s)
    );
}

/// A host too large to sample every second says so next to the counters.
#[test]
fn stretched_sampling_is_shown() {
    let mut s = fixtures::healthy();
    let header = |s: &Snapshot| {
        let t = draw(&ViewState::default(), s, 160, 24);
        screen_text(&t).lines().next().unwrap().to_owned()
    };
    assert!(!header(&s).contains("sampled"), "{}", header(&s));
    s.sampled_every = Some(std::time::Duration::from_secs(15));
    assert!(
        header(&s).contains("sockets sampled every 15s"),
        "{}",
        header(&s)
    );
}

/// A process that looked names up: the table gets its DNS column, the
/// detail view a DNS line.
#[test]
fn dns_in_the_table_and_the_detail() {
    use crate::snapshot::{DnsNameSnapshot, DnsServerSnapshot};
    let mut s = fixtures::misbehaving();
    let p = &mut s.processes[0];
    p.counts.dns_queries = 6;
    p.counts.dns_failures = 2;
    p.counts.dns_timeouts = 2;
    p.dns.latency_us = fixtures::latency(&[1, 1]);
    p.dns.names = vec![DnsNameSnapshot {
        name: "nx.example".to_owned(),
        lookups: 2,
        failures: vec![("NXDOMAIN".to_owned(), 2)],
        timeouts: 0,
    }];
    p.dns.servers = vec![DnsServerSnapshot {
        server: fixtures::addr("10.0.0.53:53"),
        lookups: 6,
        failures: 2,
        timeouts: 2,
    }];
    let comm = p.comm.clone();
    let table = draw(&ViewState::default(), &s, 200, 20)
        .backend()
        .to_string();
    assert!(table.contains("DNS BAD"), "{table}");
    assert!(table.contains("4/6"), "{table}");
    let state = after(&[Action::Open], &s);
    let detail = draw(&state, &s, 120, 30).backend().to_string();
    assert!(detail.contains(&comm), "{detail}");
    assert!(
        detail.contains("DNS 6 queries, p50 64µs p99 128µs · failed: nx.example NXDOMAIN ×2 · 2 timed out: 10.0.0.53:53 ×2"),
        "{detail}"
    );
}
