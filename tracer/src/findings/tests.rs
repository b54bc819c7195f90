//! Each rule at, just below and around its threshold.

use std::time::Duration;

use super::{words::Value, *};
use crate::{
    fixtures::{self, process, server},
    snapshot::{DnsNameSnapshot, DnsServerSnapshot, FdUsage, ListenerSnapshot, ProcessSnapshot},
};

fn kinds(p: ProcessSnapshot) -> Vec<(Kind, Severity)> {
    findings(&fixtures::snapshot(vec![p]))
        .into_iter()
        .map(|f| (f.kind, f.severity))
        .collect()
}

fn only(p: ProcessSnapshot) -> Finding {
    let mut all = findings(&fixtures::snapshot(vec![p]));
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn a_quiet_process_has_no_findings() {
    assert!(findings(&fixtures::healthy()).is_empty());
}

#[test]
fn close_wait_by_count() {
    let mut p = process(10, "app");
    p.gauges.close_wait = CLOSE_WAIT_SOCKETS - 1;
    p.gauges.oldest_close_wait = Some(CLOSE_WAIT_AGE - Duration::from_secs(1));
    assert!(kinds(p.clone()).is_empty());
    p.gauges.close_wait = CLOSE_WAIT_SOCKETS;
    let f = only(p);
    assert_eq!(
        (f.kind, f.severity),
        (Kind::CloseWaitLeak, Severity::Warning)
    );
    assert_eq!(f.headline, "not closing connections its peers closed");
    assert_eq!(f.evidence, "10 sockets in CLOSE_WAIT, oldest 29s");
    assert_eq!((f.pid, f.comm.as_str()), (10, "app"));
}

#[test]
fn close_wait_by_age() {
    let mut p = process(10, "app");
    p.gauges.close_wait = 1;
    p.gauges.oldest_close_wait = Some(CLOSE_WAIT_AGE);
    let mut peer = server("10.0.0.1:80");
    peer.close_wait = 1;
    p.remotes = vec![peer];
    let f = only(p.clone());
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.evidence,
        "1 socket in CLOSE_WAIT, oldest 30s; 1 of them from 10.0.0.1:80"
    );
    p.gauges.close_wait = CLOSE_WAIT_SOCKETS;
    assert_eq!(only(p).severity, Severity::Critical, "many and old");
}

#[test]
fn close_wait_without_sockets_is_nothing() {
    let mut p = process(10, "app");
    p.gauges.oldest_close_wait = Some(Duration::from_secs(3600));
    assert!(kinds(p).is_empty());
}

#[test]
fn fds_near_the_limit() {
    let mut p = process(10, "app");
    let at = |open| {
        Some(FdUsage {
            open,
            limit: Some(1000),
            sockets: 5,
        })
    };
    p.fds = at(799);
    assert!(kinds(p.clone()).is_empty());
    p.fds = at(800);
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::FdsNearLimit, Severity::Warning)
    );
    assert_eq!(f.evidence, "800 of 1000 FDs open (80%), 5 sockets");
    p.fds = at(949);
    assert_eq!(only(p.clone()).severity, Severity::Warning);
    p.fds = at(950);
    let f = only(p.clone());
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.headline, "about to run out of file descriptors");
    // No limit, or gone: nothing to compare with.
    p.fds = Some(FdUsage {
        open: 1_000_000,
        limit: None,
        sockets: 0,
    });
    assert!(kinds(p.clone()).is_empty());
    p.fds = None;
    assert!(kinds(p).is_empty());
}

#[test]
fn emfile_is_critical_even_far_from_the_limit() {
    let mut p = process(10, "app");
    p.counts.emfile_errors = 1;
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::FdsExhausted, Severity::Critical)
    );
    assert_eq!(
        f.evidence,
        "1 syscall failed with EMFILE/ENFILE; 12 of 1024 FDs open (1%), 3 sockets"
    );
    // One finding about FDs, not two.
    p.fds = Some(FdUsage {
        open: 1024,
        limit: Some(1024),
        sockets: 1000,
    });
    assert_eq!(kinds(p), vec![(Kind::FdsExhausted, Severity::Critical)]);
}

/// Where failed syscalls are not counted, reaching the limit is running out:
/// the finding says so, and how to count the failures.
#[test]
fn at_the_limit_without_syscall_errors_is_exhausted() {
    let mut p = process(10, "app");
    p.fds = Some(FdUsage {
        open: 64,
        limit: Some(64),
        sockets: 60,
    });
    let mut s = fixtures::snapshot(vec![p.clone()]);
    s.syscall_errors_counted = false;
    let all = findings(&s);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(
        (all[0].kind, all[0].severity),
        (Kind::FdsExhausted, Severity::Critical)
    );
    assert_eq!(
        all[0].evidence,
        "64 of 64 FDs open (100%), 60 sockets: at its limit, so new sockets, accepts and \
         opens fail with EMFILE (failed syscalls are not counted here; --syscall-errors on \
         counts them)"
    );
    // Counted, the limit alone is "about to run out".
    assert_eq!(
        kinds(p.clone()),
        vec![(Kind::FdsNearLimit, Severity::Critical)]
    );
    // One below the limit is near it either way.
    if let Some(u) = p.fds.as_mut() {
        u.open = 63;
    }
    let mut s = fixtures::snapshot(vec![p]);
    s.syscall_errors_counted = false;
    let all: Vec<_> = findings(&s).into_iter().map(|f| f.kind).collect();
    assert_eq!(all, vec![Kind::FdsNearLimit]);
}

#[test]
fn unreachable_by_syn_retransmits_or_timeouts() {
    let mut p = process(10, "app");
    let mut r = server("203.0.113.7:443");
    r.counts.syn_retransmits = SYN_RETRANSMITS - 1;
    r.counts.connect_ok = 1;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty());

    r.counts.syn_retransmits = SYN_RETRANSMITS;
    p.remotes = vec![r.clone()];
    let f = only(p.clone());
    assert_eq!((f.kind, f.severity), (Kind::Unreachable, Severity::Warning));
    assert_eq!(
        f.headline,
        "connects to 203.0.113.7:443 go unanswered: unreachable or filtered"
    );
    assert_eq!(
        f.evidence,
        "3 SYN retransmits, 0 connects timed out, 1 succeeded"
    );
    assert_eq!(f.remote, Some(r.remote));

    r.counts.syn_retransmits = 0;
    r.counts.connect_timeout = CONNECT_TIMEOUTS;
    r.counts.connect_ok = 0;
    p.remotes = vec![r];
    assert_eq!(only(p).severity, Severity::Critical, "nothing succeeded");
}

/// Dials given up by the application before the first SYN retransmit (Go's
/// `net.Dialer{Timeout}`) are the timeouts they are.
#[test]
fn abandoned_connects_are_unanswered() {
    let mut p = process(10, "app");
    let mut r = fixtures::remote(Remote::Server("10.0.0.9:9".parse().unwrap()));
    r.counts.connects = 3;
    r.counts.connect_abandoned = 3;
    p.remotes = vec![r];
    let f = only(p);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        "0 SYN retransmits, 0 connects timed out, 3 abandoned by the application before an answer, 0 succeeded"
    );
    let mut p = process(10, "app");
    let mut r = fixtures::remote(Remote::Server("10.0.0.9:9".parse().unwrap()));
    r.counts.connect_abandoned = 2;
    r.abandoned_after = Some(std::time::Duration::from_millis(800));
    p.remotes = vec![r];
    assert_eq!(
        only(p).evidence,
        "0 SYN retransmits, 0 connects timed out, 2 abandoned by the application after 800ms (its deadline), 0 succeeded"
    );
}

#[test]
fn clients_are_never_unreachable() {
    let mut p = process(10, "app");
    let mut r = fixtures::remote(Remote::Client("10.0.0.9".parse().unwrap()));
    r.counts.syn_retransmits = 100;
    r.counts.rst_received_handshake = 100;
    p.remotes = vec![r];
    assert!(kinds(p).is_empty());
}

#[test]
fn refused_means_nothing_listening() {
    let mut p = process(10, "app");
    let mut r = server("127.0.0.1:9");
    r.counts.connect_refused = REFUSED_CONNECTS - 1;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty());
    // RSTs in the handshake count even when the connect outcome was missed.
    r.counts.rst_received_handshake = REFUSED_CONNECTS;
    p.remotes = vec![r.clone()];
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::NothingListening, Severity::Critical)
    );
    assert_eq!(
        f.headline,
        "connects to 127.0.0.1:9 are refused: nothing listening there"
    );
    assert_eq!(
        f.evidence,
        "3 connects refused (RST during the handshake), 0 succeeded"
    );
    r.counts.connect_ok = 5;
    p.remotes = vec![r];
    assert_eq!(only(p).severity, Severity::Warning, "some connects work");
}

#[test]
fn packet_loss_needs_count_and_share() {
    let mut p = process(10, "app");
    let mut lossy = server("10.0.0.1:443");
    let mut fine = server("10.0.0.2:443");
    lossy.counts.retransmits = RETRANSMITS - 1;
    p.counts.retransmits = RETRANSMITS - 1;
    p.remotes = vec![lossy.clone()];
    assert!(kinds(p.clone()).is_empty(), "below the count");

    lossy.counts.retransmits = RETRANSMITS;
    fine.counts.retransmits = 30;
    p.counts.retransmits = 40;
    p.remotes = vec![lossy.clone(), fine.clone()];
    let f: Vec<_> = findings(&fixtures::snapshot(vec![p.clone()]));
    assert_eq!(f.len(), 2, "25% and 75% both count: {f:#?}");
    assert_eq!(f[0].remote, Some(lossy.remote));
    assert_eq!(
        f[0].headline,
        "retransmitting to 10.0.0.1:443: packet loss on that path"
    );
    assert_eq!(
        f[0].evidence,
        "10 data retransmits, 25% of the process's 40"
    );

    fine.counts.retransmits = 31;
    p.counts.retransmits = 41;
    p.remotes = vec![lossy, fine.clone()];
    let f = only(p);
    assert_eq!(f.remote, Some(fine.remote), "24% is below the share");
    assert_eq!(f.severity, Severity::Warning);
}

#[test]
fn time_wait_pile_up() {
    let mut p = process(10, "app");
    let mut r = server("10.0.0.1:80");
    r.time_wait = TIME_WAIT_SOCKETS - 1;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty());
    r.time_wait = TIME_WAIT_SOCKETS;
    r.counts.connects = 900;
    p.remotes = vec![r.clone()];
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::TimeWaitPileUp, Severity::Warning)
    );
    assert_eq!(
        f.headline,
        "TIME_WAIT pile-up to 10.0.0.1:80: connections are not reused"
    );
    assert_eq!(f.evidence, "200 sockets in TIME_WAIT, 900 connects so far");
    r.time_wait = TIME_WAIT_CRITICAL;
    p.remotes = vec![r];
    assert_eq!(only(p).severity, Severity::Critical);
}

#[test]
fn most_severe_first_then_by_pid() {
    let all = findings(&fixtures::misbehaving());
    let summary: Vec<(Severity, u32, Kind)> =
        all.iter().map(|f| (f.severity, f.pid, f.kind)).collect();
    assert_eq!(
        summary,
        vec![
            (Severity::Critical, 1187, Kind::CloseWaitLeak),
            (Severity::Critical, 1187, Kind::FdsNearLimit),
            (Severity::Critical, 2044, Kind::NothingListening),
            (Severity::Critical, 2050, Kind::FdsExhausted),
            (Severity::Critical, 2050, Kind::Unreachable),
            (Severity::Warning, 1187, Kind::PacketLoss),
            (Severity::Warning, 1187, Kind::TimeWaitPileUp),
        ]
    );
}

/// A rule as README's Findings table writes it: `id`, headline (endpoint in
/// italics), when it fires, severity.
fn readme_row(rule: &Rule) -> String {
    let headline: String = rule
        .headline_parts()
        .into_iter()
        .map(|part| match part {
            Part::Text(text) => text.to_owned(),
            Part::Slot(name) => format!("*{name}*"),
        })
        .collect();
    format!(
        "| `{}` | {headline} | {} | {} |",
        rule.id,
        rule.fires_when_text(),
        rule.severity_text()
    )
}

#[test]
fn readme_lists_every_rule_as_the_table_says() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n### Findings\n")
        .nth(1)
        .expect("README has a Findings section");
    let section = section.split("\n#").next().unwrap_or_default();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    let expected: Vec<String> = RULES.iter().map(readme_row).collect();
    assert_eq!(
        rows,
        expected,
        "README's Findings table, as rendered:\n{}",
        expected.join("\n")
    );
}

#[test]
fn the_table_has_one_rule_per_kind_in_order_with_unique_ids() {
    let kinds: Vec<Kind> = RULES.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::CloseWaitLeak,
            Kind::FdsExhausted,
            Kind::FdsNearLimit,
            Kind::Unreachable,
            Kind::NothingListening,
            Kind::PacketLoss,
            Kind::TimeWaitPileUp,
            Kind::ResetWhileEstablished,
            Kind::TimeoutWhileEstablished,
            Kind::AcceptQueueFull,
            Kind::FirewallDrops,
            Kind::NotReading,
            Kind::PeerNotReading,
            Kind::NoReuse,
            Kind::ConnectionsGrowing,
            Kind::DnsFailing,
            Kind::DnsServerSilent,
            Kind::DnsSlow,
        ]
    );
    let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            "close_wait_leak",
            "fd_exhaustion",
            "fd_near_limit",
            "connect_unanswered",
            "connect_refused",
            "packet_loss",
            "time_wait_pileup",
            "reset_while_established",
            "timeout_while_established",
            "accept_queue_full",
            "firewall_drops",
            "not_reading",
            "peer_not_reading",
            "no_reuse",
            "connections_growing",
            "dns_failing",
            "dns_server_silent",
            "dns_slow",
        ]
    );
}

#[test]
fn a_firewall_dropping_packets_of_one_remote() {
    let mut p = process(10, "app");
    let mut r = server("10.0.0.5:5432");
    r.counts.drops = 4;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty(), "drops for other reasons");
    r.counts.firewall_drops = 2;
    r.counts.retransmits = 2;
    p.remotes = vec![r];
    let f = only(p);
    assert_eq!(
        (f.kind, f.severity),
        (Kind::FirewallDrops, Severity::Warning)
    );
    assert_eq!(
        f.headline,
        "a firewall drops its packets to/from 10.0.0.5:5432"
    );
    assert_eq!(
        f.evidence,
        "2 packets dropped by netfilter (NETFILTER_DROP), 2 data retransmits"
    );
}

#[test]
fn slow_readers_on_either_end() {
    let mut p = process(10, "app");
    let mut r = server("10.0.0.5:5432");
    r.queues.recv_max = 65_535;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty());
    r.queues.recv_max = 65_536;
    p.remotes = vec![r.clone()];
    let f = only(p.clone());
    assert_eq!(f.kind, Kind::NotReading);
    assert_eq!(f.headline, "not reading what 10.0.0.5:5432 sends");
    assert_eq!(
        f.evidence,
        "64 KiB unread on one connection (Recv-Q), receive buffer filling"
    );
    r.queues.recv_max = 0;
    r.queues.zero_window = 1;
    r.queues.send_max = 3 * 1024 * 1024 / 2;
    p.remotes = vec![r];
    let f = only(p);
    assert_eq!(f.kind, Kind::PeerNotReading);
    assert_eq!(
        f.evidence,
        "1 connection probing a zero window, 1.5 MiB waiting to be sent (Send-Q)"
    );
}

#[test]
fn a_full_accept_queue() {
    let mut p = process(10, "server");
    let mut l = ListenerSnapshot {
        local: "0.0.0.0:8080".parse().unwrap(),
        netns: 1,
        queue: 1,
        backlog: Some(1),
        overflows: 0,
    };
    p.listeners = vec![l];
    assert!(
        kinds(p.clone()).is_empty(),
        "at the backlog is not yet full"
    );
    l.queue = 2;
    p.listeners = vec![l];
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::AcceptQueueFull, Severity::Warning)
    );
    assert_eq!(f.evidence, ":8080 holds 2 (backlog 1)");
    p.counts.listen_overflows = 12;
    let f = only(p.clone());
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(
        f.evidence,
        ":8080 holds 2 (backlog 1), 12 handshakes dropped for a full queue"
    );
    // Drained since, or started before tracer (backlog unknown): the drops say it.
    l.queue = 0;
    l.backlog = None;
    p.listeners = vec![l];
    assert_eq!(
        only(p).evidence,
        ":8080 holds 0, 12 handshakes dropped for a full queue"
    );
}

#[test]
fn resets_and_timeouts_while_established_per_remote() {
    let mut p = process(10, "app");
    let mut r = server("10.0.0.5:5432");
    r.counts.socket_resets = ESTABLISHED_RESETS - 1;
    r.counts.rst_received = 2;
    p.remotes = vec![r.clone()];
    assert!(kinds(p.clone()).is_empty());
    r.counts.socket_resets = ESTABLISHED_RESETS;
    r.counts.rst_received = 3;
    p.remotes = vec![r.clone()];
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::ResetWhileEstablished, Severity::Warning)
    );
    assert_eq!(
        f.headline,
        "connections to 10.0.0.5:5432 are reset while established"
    );
    assert_eq!(
        f.evidence,
        "3 ECONNRESET after the handshake, 3 RSTs received"
    );
    r.counts.socket_resets = 0;
    r.counts.socket_timeouts = 1;
    r.counts.retransmits = 9;
    p.remotes = vec![r];
    let f = only(p);
    assert_eq!(
        (f.kind, f.severity),
        (Kind::TimeoutWhileEstablished, Severity::Critical)
    );
    assert_eq!(
        f.evidence,
        "1 ETIMEDOUT after retransmissions, 9 data retransmits"
    );
}

/// Every slot in a rule's words names one of its thresholds, every threshold
/// is named in its words, and only per-remote headlines name an endpoint.
#[test]
fn the_words_name_exactly_the_rules_thresholds() {
    for rule in RULES {
        let slots = |template: &'static str| {
            words::parts(template)
                .into_iter()
                .filter_map(|p| match p {
                    Part::Slot(name) => Some(name),
                    Part::Text(_) => None,
                })
                .collect::<Vec<_>>()
        };
        let named: Vec<&str> = [slots(rule.fires_when), slots(rule.severity)].concat();
        let thresholds: Vec<&str> = rule.thresholds.iter().map(|t| t.name).collect();
        let mut sorted = named.clone();
        sorted.sort_unstable();
        let mut expected = thresholds.clone();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "{}", rule.id);
        let endpoints = [
            slots(rule.headline),
            rule.headline_critical.map(slots).unwrap_or_default(),
        ]
        .concat();
        match rule.check {
            Check::Process(_) => assert!(endpoints.is_empty(), "{}", rule.id),
            Check::Named(_) => assert!(
                endpoints == ["name"] || endpoints == ["server"],
                "{}",
                rule.id
            ),
            Check::Remote(_) => {
                assert!(!endpoints.is_empty(), "{}", rule.id);
                assert!(
                    endpoints.iter().all(|e| ["server", "remote"].contains(e)),
                    "{}",
                    rule.id
                );
            }
        }
    }
}

#[test]
fn thresholds_read_as_people_write_them() {
    assert_eq!(Value::Count(5_000).to_string(), "5,000");
    assert_eq!(Value::Count(1_234_567).to_string(), "1,234,567");
    assert_eq!(Value::Count(10).to_string(), "10");
    assert_eq!(Value::Percent(80).to_string(), "80 %");
    assert_eq!(Value::Age(CLOSE_WAIT_AGE).to_string(), "30 s");
    assert_eq!(
        words::fill("a {x} b {y} {", |n| (n == "x").then(|| "1".to_owned())),
        "a 1 b {y} {"
    );
}

/// A server with `n` closed connections of median lifetime `p50_ms`, opened
/// over `secs` seconds.
fn churning(n: u64, p50_ms: u64, secs: u64) -> crate::snapshot::RemoteSnapshot {
    let mut r = server("10.0.0.9:8080");
    r.counts.connects = n;
    r.counts.connect_ok = n;
    r.time_wait = n;
    r.churn.lifetime_ms.count = n;
    r.churn.lifetime_ms.p50 = p50_ms;
    r.churn.connecting_for = Duration::from_secs(secs);
    r
}

#[test]
fn no_reuse_at_and_around_its_thresholds() {
    let with = |r| {
        let mut p = process(10, "client");
        p.remotes = vec![r];
        p
    };
    let lifetime_ms = NO_REUSE_LIFETIME.as_millis() as u64;
    // 150 connects in 1 s, a millisecond each: the Go client without keep-alives.
    let f = only(with(churning(150, 1, 1)));
    assert_eq!((f.kind, f.severity), (Kind::NoReuse, Severity::Warning));
    assert_eq!(
        f.headline,
        "a new connection per request to 10.0.0.9:8080: connections are not reused"
    );
    assert_eq!(
        f.evidence,
        "150 connects at 150/s, median lifetime 1 ms, 150 in TIME_WAIT: keep-alives off, \
         a client or pool made per request, or `Connection: close`"
    );
    assert_eq!(
        kinds(with(churning(NO_REUSE_CONNECTS, lifetime_ms, 1))),
        [(Kind::NoReuse, Severity::Warning)],
        "at every threshold"
    );
    assert!(
        kinds(with(churning(NO_REUSE_CONNECTS - 1, 1, 1))).is_empty(),
        "too few"
    );
    assert!(
        kinds(with(churning(150, lifetime_ms + 1, 1))).is_empty(),
        "long-lived: a capped pool's connections"
    );
    // 150 connects over 75 s is exactly the rate; over 76 s below it.
    let secs = 150 / NO_REUSE_RATE;
    assert_eq!(
        kinds(with(churning(150, 1, secs))),
        [(Kind::NoReuse, Severity::Warning)]
    );
    assert!(
        kinds(with(churning(150, 1, secs + 1))).is_empty(),
        "a trickle"
    );
    // Clients of our listeners are the server's side: never flagged.
    let mut client = churning(150, 1, 1);
    client.remote = Remote::Client("10.0.0.7".parse().unwrap());
    assert!(kinds(with(client)).is_empty());
}

/// A server whose open connections were `counts` at samples 5 s apart.
fn growing(counts: &[u64]) -> ProcessSnapshot {
    let mut r = server("10.0.0.9:8080");
    r.churn.open_history = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| (Duration::from_secs(5 * i as u64), n))
        .collect();
    r.established = counts.last().copied().unwrap_or_default();
    let mut p = process(10, "client");
    p.remotes = vec![r];
    p
}

#[test]
fn connections_growing_at_and_around_its_thresholds() {
    assert_eq!(GROWING_SAMPLES, 8);
    // Rising by 20 over 8 samples, at 4 of the 7 steps.
    let leak = [10, 15, 15, 20, 20, 25, 25, 30];
    let f = only(growing(&leak));
    assert_eq!(
        (f.kind, f.severity),
        (Kind::ConnectionsGrowing, Severity::Warning)
    );
    assert_eq!(
        f.headline,
        "connections to 10.0.0.9:8080 keep growing: a leak"
    );
    assert_eq!(
        f.evidence,
        "open connections (ESTABLISHED and CLOSE_WAIT) from 10 to 30 in 35s, never fewer: \
         responses or rows never closed, or a pool without a cap"
    );
    // Only the last 8 samples count (the aggregator keeps no more anyway).
    assert_eq!(
        only(growing(&[50, 10, 15, 15, 20, 20, 25, 25, 30])).kind,
        Kind::ConnectionsGrowing
    );
    assert!(kinds(growing(&leak[1..])).is_empty(), "too little history");
    assert!(
        kinds(growing(&[10, 15, 15, 20, 20, 25, 25, 29])).is_empty(),
        "by one less than {GROWING_BY}"
    );
    assert_eq!(
        kinds(growing(&[10, 10, 10, 10, 15, 20, 25, 30])),
        [(Kind::ConnectionsGrowing, Severity::Warning)],
        "{GROWING_RISES} rises"
    );
    assert!(
        kinds(growing(&[10, 10, 10, 10, 10, 20, 25, 30])).is_empty(),
        "3 rises"
    );
    assert!(
        kinds(growing(&[10, 15, 20, 25, 24, 30, 35, 40])).is_empty(),
        "fell once: connections do close"
    );
    assert!(
        kinds(growing(&[0, 50, 50, 50, 50, 50, 50, 50])).is_empty(),
        "a capped pool filling at once"
    );
    // The server's side of the leak: a client of its listener.
    let mut p = growing(&leak);
    p.remotes[0].remote = Remote::Client("10.0.0.7".parse().unwrap());
    assert_eq!(
        only(p).headline,
        "connections to client 10.0.0.7 keep growing: a leak"
    );
}

fn dns_name(name: &str, lookups: u64, failures: &[(&str, u64)], timeouts: u64) -> DnsNameSnapshot {
    DnsNameSnapshot {
        name: name.to_owned(),
        lookups,
        failures: failures
            .iter()
            .map(|(c, n)| ((*c).to_owned(), *n))
            .collect(),
        timeouts,
    }
}

#[test]
fn failing_dns_names_but_not_their_search_expansions() {
    let mut p = process(10, "app");
    p.dns.names = vec![
        dns_name("ok.test", 3, &[], 0),
        dns_name("ok.test.svc.cluster.local", 3, &[("NXDOMAIN", 3)], 0),
    ];
    assert!(
        kinds(p.clone()).is_empty(),
        "search expansions fail by design"
    );
    p.dns
        .names
        .push(dns_name("nx.test", 2, &[("NXDOMAIN", 2)], 0));
    p.dns.names.push(dns_name(
        "nx.test.svc.cluster.local",
        2,
        &[("NXDOMAIN", 2)],
        0,
    ));
    let f = only(p);
    assert_eq!((f.kind, f.severity), (Kind::DnsFailing, Severity::Warning));
    assert_eq!(f.headline, "lookups of nx.test fail");
    assert_eq!(f.evidence, "NXDOMAIN (2) of 2 lookups");
}

#[test]
fn a_dns_server_that_does_not_answer() {
    let mut p = process(10, "app");
    let server = DnsServerSnapshot {
        server: fixtures::addr("10.0.0.53:53"),
        lookups: 4,
        failures: 0,
        timeouts: 0,
    };
    p.dns.servers = vec![server.clone()];
    assert!(kinds(p.clone()).is_empty());
    p.dns.servers = vec![DnsServerSnapshot {
        timeouts: 1,
        ..server.clone()
    }];
    let f = only(p.clone());
    assert_eq!(
        (f.kind, f.severity),
        (Kind::DnsServerSilent, Severity::Warning)
    );
    assert_eq!(f.headline, "DNS server 10.0.0.53:53 does not answer");
    assert_eq!(f.evidence, "1 timeout of 4 queries unanswered after 5 s");
    p.dns.servers = vec![DnsServerSnapshot {
        timeouts: 4,
        ..server
    }];
    assert_eq!(kinds(p), [(Kind::DnsServerSilent, Severity::Critical)]);
}

#[test]
fn slow_dns_by_p99_over_enough_lookups() {
    let mut p = process(10, "app");
    p.dns.latency_us.count = DNS_SLOW_LOOKUPS;
    p.dns.latency_us.p50 = 2_000;
    p.dns.latency_us.p99 = 249_000;
    assert!(kinds(p.clone()).is_empty());
    p.dns.latency_us.p99 = 250_000;
    let f = only(p.clone());
    assert_eq!((f.kind, f.severity), (Kind::DnsSlow, Severity::Warning));
    assert_eq!(f.evidence, "p99 250 ms, p50 2 ms over 5 lookups");
    p.dns.latency_us.count = DNS_SLOW_LOOKUPS - 1;
    assert!(kinds(p).is_empty(), "too few lookups to tell");
}
