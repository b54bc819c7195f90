//! One process (Enter): its numbers in words, its findings, the history of
//! its key numbers (where the height allows), its remote endpoints, the
//! handshake-latency chart, live connections and recent events.

use std::time::Duration;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::Style,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{histogram, history, panel, style, table, title};
use crate::{
    errno,
    findings::Finding,
    human,
    snapshot::{ProcessSnapshot, Snapshot},
    tui::state::ViewState,
};

/// Each of the two rows of tables keeps this many lines (title, heading,
/// four rows) before the history gets any.
const TABLES_MIN_HEIGHT: u16 = 6;

pub fn render(
    state: &ViewState,
    snapshot: &Snapshot,
    all: &[Finding],
    area: Rect,
    frame: &mut Frame<'_>,
) {
    let Some(p) = state.selected_process(snapshot) else {
        let inner = panel(title("Process", String::new()), area, frame);
        frame.render_widget(
            Paragraph::new(Line::styled("no process selected (Esc back)", style::dim())),
            inner,
        );
        return;
    };
    let mine: Vec<&Finding> = all.iter().filter(|f| f.pid == p.id.pid).collect();
    let summary = summary(p);
    let findings_height = (mine.len() as u16).min(3);
    let summary_height = summary.len() as u16 + 1;
    // The history takes what the tables can spare: it goes first on a short
    // terminal.
    let history = history::Panel::new(state, snapshot, p);
    let spare = area
        .height
        .saturating_sub(summary_height + findings_height + 2 * TABLES_MIN_HEIGHT);
    let history_height = history.as_ref().map_or(0, |h| h.wanted_height().min(spare));
    let history_height = if history_height < history::MIN_HEIGHT {
        0
    } else {
        history_height
    };
    let [summary_area, findings_area, history_area, top, bottom] = Layout::vertical([
        Constraint::Length(summary_height),
        Constraint::Length(findings_height),
        Constraint::Length(history_height),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(area);

    let mut note = format!("pid {}", p.id.pid);
    if p.exited {
        note += " · exited, last numbers seen";
    }
    note += " · ↑↓ other processes · Esc back";
    let inner = panel(title(&p.comm, note), summary_area, frame);
    frame.render_widget(Paragraph::new(summary), inner);
    let lines: Vec<Line<'_>> = mine
        .iter()
        .map(|f| {
            Line::from(vec![
                Span::styled(format!("{} ", f.headline), style::severity_tag(f.severity)),
                Span::styled(format!("— {}", f.evidence), style::severity(f.severity)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), findings_area);
    if let Some(h) = &history {
        h.render(history_area, frame);
    }

    let [remotes_area, chart_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(36)])
            .spacing(1)
            .areas(top);
    remotes(p, remotes_area, frame);
    chart(p, chart_area, frame);
    let [connections_area, events_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .spacing(1)
            .areas(bottom);
    connections(p, connections_area, frame);
    events(p, snapshot, events_area, frame);
}

/// The process's numbers in words, five lines at most (the fifth, DNS,
/// only for a process that looked names up); parts that are zero
/// are left out so the lines fit 80 columns.
fn summary(p: &ProcessSnapshot) -> Vec<Line<'static>> {
    let c = &p.counts;
    let g = &p.gauges;
    let mut connects = vec![format!(
        "connects {} ({}/s): {} ok",
        human::count(c.connects),
        human::rate(p.rates.connects),
        human::count(c.connect_ok)
    )];
    connects.extend(nonzero(&[
        (c.connect_refused, "refused"),
        (c.connect_timeout, "timed out"),
        (c.connect_failed_other, "failed otherwise"),
        (c.connect_abandoned, "abandoned"),
    ]));
    let mut first = vec![connects.join(", ")];
    first.extend(nonzero(&[(c.accepted, "accepted"), (c.closed, "closed")]));
    first.extend(nonzero(&[
        (c.socket_resets, "reset while established"),
        (c.socket_timeouts, "timed out while established"),
        (
            c.socket_errors
                .saturating_sub(c.socket_resets)
                .saturating_sub(c.socket_timeouts),
            "other socket errors",
        ),
    ]));

    let retransmits = nonzero(&[
        (c.retransmits, "data"),
        (c.syn_retransmits, "SYN"),
        (c.synack_retransmits, "SYN-ACK"),
    ]);
    let retransmits = if retransmits.is_empty() {
        "no retransmits".to_owned()
    } else {
        format!("retransmits {}", retransmits.join(", "))
    };
    let mut rsts = nonzero(&[(c.rst_sent, "sent"), (c.rst_received, "received")]);
    if c.rst_received_handshake > 0 {
        rsts.push(format!(
            "{} of them in the handshake",
            human::count(c.rst_received_handshake)
        ));
    }
    if !p.rst_reasons.is_empty() {
        rsts.push(format!("sent for {}", top(&p.rst_reasons, 2)));
    }
    let rsts = if rsts.is_empty() {
        "no RSTs".to_owned()
    } else {
        format!("RSTs {}", rsts.join(", "))
    };

    let mut sockets = nonzero(&[
        (g.established, "established"),
        (g.syn_sent, "connecting"),
        (g.syn_recv, "SYN_RECV"),
        (g.closing, "closing"),
        (g.close_wait, "CLOSE_WAIT"),
    ]);
    // CLOSE_WAIT, when there are any, is the last part so far.
    if let (true, Some(age), Some(last)) =
        (g.close_wait > 0, g.oldest_close_wait, sockets.last_mut())
    {
        *last += &format!(" (oldest {})", human::age(age));
    }
    sockets.extend(nonzero(&[(g.time_wait, "TIME_WAIT")]));
    if !p.listeners.is_empty() {
        sockets.push(listeners(p));
    } else if g.listen > 0 {
        sockets.push(format!("{} listening", human::count(g.listen)));
    }
    let sockets = if sockets.is_empty() {
        "no sockets".to_owned()
    } else {
        format!("sockets {}", sockets.join(", "))
    };

    let mut fds = vec![match p.fds {
        Some(f) => {
            let limit = f
                .limit
                .map_or(String::new(), |l| format!(" of {}", human::count(l)));
            format!(
                "FDs {}{limit}, {} sockets",
                human::count(f.open),
                human::count(f.sockets)
            )
        }
        None => "FDs unknown".to_owned(),
    }];
    if !p.drops.is_empty() {
        fds.push(format!(
            "dropped packets {}: {}",
            human::count(c.drops),
            top(&p.drops, 3)
        ));
    }
    if !p.syscall_errors.is_empty() {
        let errors: Vec<String> = p
            .syscall_errors
            .iter()
            .map(|e| {
                format!(
                    "{} {} ×{}",
                    e.syscall,
                    errno::name(e.errno),
                    human::count(e.count)
                )
            })
            .collect();
        fds.push(format!("failed syscalls: {}", errors.join(", ")));
    }
    let mut second = vec![retransmits, rsts];
    if let (Some(p50), Some(p99)) = (g.srtt_p50_us, g.srtt_p99_us) {
        second.push(format!(
            "RTT p50 {} p99 {}",
            human::micros(u64::from(p50)),
            human::micros(u64::from(p99))
        ));
    }
    if let (Some(sent), Some(received)) = (g.bytes_sent, g.bytes_received) {
        second.push(format!(
            "sent {}, received {}",
            human::bytes(sent),
            human::bytes(received)
        ));
    }
    let mut lines = vec![first, second, vec![sockets], fds];
    if c.dns_queries > 0 {
        lines.push(dns(p));
    }
    lines
        .into_iter()
        .map(|parts| {
            let mut spans = Vec::new();
            for (i, part) in parts.into_iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" · ", style::dim()));
                }
                spans.push(Span::raw(part));
            }
            Line::from(spans)
        })
        .collect()
}

/// `DNS 12 queries, p50 1.2ms p99 300ms · NXDOMAIN: nx.test ×2 · 3 timed
/// out: 10.0.0.53:53 ×3`: the lookups, the names that failed most and the
/// servers that did not answer.
fn dns(p: &ProcessSnapshot) -> Vec<String> {
    let c = &p.counts;
    let l = &p.dns.latency_us;
    let mut first = format!("DNS {} queries", human::count(c.dns_queries));
    if !l.is_empty() {
        first += &format!(
            ", p50 {} p99 {}",
            human::micros(l.p50),
            human::micros(l.p99)
        );
    }
    let mut parts = vec![first];
    let failing: Vec<String> = p
        .dns
        .names
        .iter()
        .filter(|n| n.failed() > 0)
        .take(2)
        .map(|n| {
            let code = n.failures.first().map_or("", |(code, _)| code.as_str());
            format!("{} {code} ×{}", n.name, human::count(n.failed()))
        })
        .collect();
    if !failing.is_empty() {
        parts.push(format!("failed: {}", failing.join(", ")));
    }
    if c.dns_timeouts > 0 {
        let silent: Vec<String> = p
            .dns
            .servers
            .iter()
            .filter(|s| s.timeouts > 0)
            .take(2)
            .map(|s| format!("{} ×{}", s.server, human::count(s.timeouts)))
            .collect();
        parts.push(format!(
            "{} timed out: {}",
            human::count(c.dns_timeouts),
            silent.join(", ")
        ));
    }
    parts
}

/// `listening on :8080 (queue 2 of 1, 12 dropped), :9090 (queue 0 of 128)`:
/// the fullest three listeners and their accept queues.
fn listeners(p: &ProcessSnapshot) -> String {
    const SHOWN: usize = 3;
    let mut parts: Vec<String> = p
        .listeners
        .iter()
        .take(SHOWN)
        .map(|l| {
            let of = l.backlog.map_or(String::new(), |b| format!(" of {b}"));
            let dropped = if l.overflows > 0 {
                format!(", {} dropped", human::count(l.overflows))
            } else {
                String::new()
            };
            format!(":{} (queue {}{of}{dropped})", l.local.port(), l.queue)
        })
        .collect();
    if p.listeners.len() > SHOWN {
        parts.push(format!("{} more", p.listeners.len() - SHOWN));
    }
    format!("listening on {}", parts.join(", "))
}

/// `NETFILTER_DROP ×4, TCP_ZEROWINDOW ×1`: the first `n` of a most-first list.
fn top(counts: &[(&str, u64)], n: usize) -> String {
    counts
        .iter()
        .take(n)
        .map(|(reason, count)| format!("{reason} ×{}", human::count(*count)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12 refused`, `3 timed out` for the values that are not zero.
fn nonzero(parts: &[(u64, &str)]) -> Vec<String> {
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", human::count(*n)))
        .collect()
}

fn remotes(p: &ProcessSnapshot, area: Rect, frame: &mut Frame<'_>) {
    let inner = panel(
        title("Remote endpoints", p.remotes.len().to_string()),
        area,
        frame,
    );
    let cols = [
        table::text("REMOTE", 21, 0),
        table::number("CONN", 5, 1),
        table::number("FAIL", 5, 1),
        table::number("RETX", 5, 1),
        table::number("RST RX", 6, 2),
        table::number("HS p99", 6, 2),
        table::number("ESTAB", 5, 3),
        table::number("CLS_W", 5, 1),
        table::number("TIME_W", 6, 2),
    ];
    let rows = p
        .remotes
        .iter()
        .map(|r| {
            let c = &r.counts;
            let p99 = if r.handshake_us.is_empty() {
                "-".to_owned()
            } else {
                human::micros(r.handshake_us.p99)
            };
            (
                vec![
                    human::remote(&r.remote),
                    human::count(c.connects + c.accepted),
                    human::count(c.connect_failures()),
                    human::count(c.retransmits + c.syn_retransmits + c.synack_retransmits),
                    human::count(c.rst_received),
                    p99,
                    human::count(r.established),
                    human::count(r.close_wait),
                    human::count(r.time_wait),
                ],
                Style::new(),
            )
        })
        .collect();
    frame.render_widget(table::build(&cols, inner.width, rows), inner);
}

fn chart(p: &ProcessSnapshot, area: Rect, frame: &mut Frame<'_>) {
    let inner = panel(
        title(
            "Handshake latency",
            format!("{} connects", human::count(p.handshake_us.count)),
        ),
        area,
        frame,
    );
    let lines = histogram::lines(&p.handshake_us, inner.width, inner.height);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn connections(p: &ProcessSnapshot, area: Rect, frame: &mut Frame<'_>) {
    let note = if p.connections_total as usize > p.connections.len() {
        format!("{} of {}", p.connections.len(), p.connections_total)
    } else {
        p.connections_total.to_string()
    };
    let inner = panel(title("Connections", note), area, frame);
    let cols = [
        table::text("REMOTE", 21, 0),
        table::text("STATE", 11, 0),
        table::number("AGE", 6, 1),
        table::number("RETX", 5, 1),
        table::number("RECV-Q", 7, 2),
        table::number("SEND-Q", 7, 2),
        table::number("RTT", 7, 3),
        table::number("SENT", 9, 4),
        table::number("RCVD", 9, 4),
        table::text("LOCAL", 21, 5),
    ];
    let rows = p
        .connections
        .iter()
        .map(|c| {
            let age = if c.preexisting {
                format!("≥{}", human::age(c.age))
            } else {
                human::age(c.age)
            };
            let row_style = if c.retransmits > 0 {
                Style::new().fg(ratatui::style::Color::Yellow)
            } else {
                Style::new()
            };
            (
                vec![
                    c.remote.to_string(),
                    tracer_common::tcp::state_name(c.state)
                        .map_or_else(|| format!("state {}", c.state), str::to_owned),
                    age,
                    human::count(c.retransmits),
                    human::count(u64::from(c.recv_q)),
                    human::count(u64::from(c.send_q)),
                    c.health
                        .map_or_else(String::new, |h| human::micros(u64::from(h.srtt_us))),
                    c.health
                        .map_or_else(String::new, |h| human::bytes(h.bytes_sent)),
                    c.health
                        .map_or_else(String::new, |h| human::bytes(h.bytes_received)),
                    c.local.to_string(),
                ],
                row_style,
            )
        })
        .collect();
    frame.render_widget(table::build(&cols, inner.width, rows), inner);
}

fn events(p: &ProcessSnapshot, snapshot: &Snapshot, area: Rect, frame: &mut Frame<'_>) {
    let inner = panel(title("Recent events", String::new()), area, frame);
    let cols = [
        table::number("AGO", 5, 1),
        table::text("EVENT", 14, 0),
        table::text("REMOTE", 21, 1),
        table::text("DETAIL", 12, 0),
    ];
    // Newest on top; as many as fit.
    let rows = p
        .recent
        .iter()
        .rev()
        .take(usize::from(inner.height.saturating_sub(1)))
        .map(|e| {
            let ago = snapshot
                .taken_at
                .duration_since(e.at)
                .unwrap_or(Duration::ZERO);
            (
                vec![
                    human::age(ago),
                    e.event.to_owned(),
                    e.remote.map(|r| r.to_string()).unwrap_or_default(),
                    e.detail.clone(),
                ],
                Style::new(),
            )
        })
        .collect();
    frame.render_widget(table::build(&cols, inner.width, rows), inner);
}
