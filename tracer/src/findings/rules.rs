//! The rules: [`RULES`], one entry per kind of finding, with the thresholds
//! they name and the checks that evaluate them.

use std::time::Duration;

use super::{
    Check, Context, Hit, Kind, Named, Rule, Severity,
    words::{Threshold, Value},
};
use crate::{
    human,
    snapshot::{ProcessSnapshot, Remote, RemoteSnapshot},
};

/// CLOSE_WAIT sockets in one process that make a leak likely. A healthy
/// program closes its end within milliseconds of reading EOF, so a handful at
/// once is already unusual.
pub const CLOSE_WAIT_SOCKETS: u64 = 10;
/// A CLOSE_WAIT socket this old was not closed by accident of timing.
pub const CLOSE_WAIT_AGE: Duration = Duration::from_secs(30);
/// Open FDs as a share of the soft RLIMIT_NOFILE that deserve a warning.
pub const FD_WARN_PERCENT: u64 = 80;
/// ... and that are about to fail with EMFILE.
pub const FD_CRITICAL_PERCENT: u64 = 95;
/// Connects to one server that ended in ETIMEDOUT.
pub const CONNECT_TIMEOUTS: u64 = 1;
/// SYN retransmits to one server: the first SYN retransmit waits 1 s, so three
/// mean a connect waited at least 7 s for an answer.
pub const SYN_RETRANSMITS: u64 = 3;
/// Refused connects to one server (a single one is often a health check).
pub const REFUSED_CONNECTS: u64 = 3;
/// Data retransmits to one remote before loss is worth a finding.
pub const RETRANSMITS: u64 = 10;
/// Share of the process's data retransmits going to that remote: loss on one
/// path rather than evenly everywhere.
pub const RETRANSMIT_SHARE_PERCENT: u64 = 25;
/// TIME_WAIT sockets to one remote: new connections instead of reused ones.
pub const TIME_WAIT_SOCKETS: u64 = 200;
/// ... enough to start running out of ephemeral ports for that remote.
pub const TIME_WAIT_CRITICAL: u64 = 5_000;

/// Connections to one remote reset by the peer past their handshake: one is
/// often a peer restarting, a few are a pattern.
pub const ESTABLISHED_RESETS: u64 = 3;
/// Connections to one remote that the kernel gave up on after retransmitting
/// for minutes: each is a broken path or a dead peer.
pub const ESTABLISHED_TIMEOUTS: u64 = 1;

/// Packets to or from one remote dropped by a firewall rule: even one is a
/// rule in the way, and the connection's retransmits will follow.
pub const FIREWALL_DROPS: u64 = 1;

/// Bytes received and left unread on one connection: more than a burst the
/// application is about to read.
pub const RECV_Q_BYTES: u64 = 65_536;
/// Connections whose peer's receive window is closed: the kernel probes
/// it, and nothing more can be sent until the peer reads.
pub const ZERO_WINDOWS: u64 = 1;
/// Closed connections to one server before opening a new one per request is
/// a pattern rather than a few reconnects.
pub const NO_REUSE_CONNECTS: u64 = 100;
/// Their median lifetime at most this: a pooled connection lives for many
/// requests (Go's idle timeout is 90 s), one per request lives for one.
pub const NO_REUSE_LIFETIME: Duration = Duration::from_secs(1);
/// New connections a second to that server, over the time connects to it
/// were made: a steady stream, not a handful an hour.
pub const NO_REUSE_RATE: u64 = 2;

/// Samples of a remote's open connections (ESTABLISHED and CLOSE_WAIT) the
/// growth rule looks at: all the aggregator keeps, 5 s or more apart, so at
/// least 35 s of history.
pub const GROWING_SAMPLES: u64 = crate::aggregate::HISTORY_SAMPLES as u64;
/// Rises over those samples: one jump is a burst or a pool filling, steady
/// rises are a leak.
pub const GROWING_RISES: u64 = 4;
/// Connections more at the last sample than at the first.
pub const GROWING_BY: u64 = 20;

/// DNS answers with an error code for one name: a name that does not
/// resolve fails every lookup of it, and each is a failed request upstream.
pub const DNS_FAILURES: u64 = 1;
/// DNS queries to one server that got no answer within the timeout.
pub const DNS_TIMEOUTS: u64 = 1;
/// Answered DNS lookups of a process before their p99 is worth a finding.
pub const DNS_SLOW_LOOKUPS: u64 = 5;
/// Their 99th percentile at least this: a resolver on the host or in the
/// cluster answers in milliseconds, and every connect waits for it.
pub const DNS_SLOW_P99: Duration = Duration::from_millis(250);

/// A [`Threshold`] named after its constant: `threshold!(Count, RETRANSMITS)`.
macro_rules! threshold {
    ($unit:ident, $name:ident) => {
        Threshold {
            name: stringify!($name),
            value: Value::$unit($name),
        }
    };
}

/// Every rule, in the order of [`Kind`]. README's Findings table is these
/// entries rendered (a test checks it); the live view's help lists them.
pub static RULES: &[Rule] = &[
    Rule {
        id: "close_wait_leak",
        kind: Kind::CloseWaitLeak,
        headline: "not closing connections its peers closed",
        headline_critical: None,
        fires_when: "≥ {CLOSE_WAIT_SOCKETS} sockets in CLOSE_WAIT, or one older than {CLOSE_WAIT_AGE}",
        severity: "critical when both hold",
        thresholds: &[
            threshold!(Count, CLOSE_WAIT_SOCKETS),
            threshold!(Age, CLOSE_WAIT_AGE),
        ],
        check: Check::Process(close_wait),
    },
    Rule {
        id: "fd_exhaustion",
        kind: Kind::FdsExhausted,
        headline: "ran out of file descriptors",
        headline_critical: None,
        fires_when: "any syscall failed with EMFILE or ENFILE; where syscall errors are not counted, open FDs reached the soft RLIMIT_NOFILE",
        severity: "critical",
        thresholds: &[],
        check: Check::Process(fds_exhausted),
    },
    Rule {
        id: "fd_near_limit",
        kind: Kind::FdsNearLimit,
        headline: "close to its file-descriptor limit",
        headline_critical: Some("about to run out of file descriptors"),
        fires_when: "open FDs ≥ {FD_WARN_PERCENT} of the soft RLIMIT_NOFILE",
        severity: "critical from {FD_CRITICAL_PERCENT}",
        thresholds: &[
            threshold!(Percent, FD_WARN_PERCENT),
            threshold!(Percent, FD_CRITICAL_PERCENT),
        ],
        check: Check::Process(fds_near_limit),
    },
    Rule {
        id: "connect_unanswered",
        kind: Kind::Unreachable,
        headline: "connects to {server} go unanswered: unreachable or filtered",
        headline_critical: None,
        fires_when: "≥ {CONNECT_TIMEOUTS} connect to that server timed out or was abandoned by the application (its dial deadline), or ≥ {SYN_RETRANSMITS} SYN retransmits to it",
        severity: "critical when no connect to it succeeded",
        thresholds: &[
            threshold!(Count, CONNECT_TIMEOUTS),
            threshold!(Count, SYN_RETRANSMITS),
        ],
        check: Check::Remote(unreachable),
    },
    Rule {
        id: "connect_refused",
        kind: Kind::NothingListening,
        headline: "connects to {server} are refused: nothing listening there",
        headline_critical: None,
        fires_when: "≥ {REFUSED_CONNECTS} connects refused (RST during the handshake)",
        severity: "critical when no connect to it succeeded",
        thresholds: &[threshold!(Count, REFUSED_CONNECTS)],
        check: Check::Remote(refused),
    },
    Rule {
        id: "packet_loss",
        kind: Kind::PacketLoss,
        headline: "retransmitting to {remote}: packet loss on that path",
        headline_critical: None,
        fires_when: "≥ {RETRANSMITS} data retransmits to one remote, and ≥ {RETRANSMIT_SHARE_PERCENT} of the process's data retransmits",
        severity: "warning",
        thresholds: &[
            threshold!(Count, RETRANSMITS),
            threshold!(Percent, RETRANSMIT_SHARE_PERCENT),
        ],
        check: Check::Remote(packet_loss),
    },
    Rule {
        id: "time_wait_pileup",
        kind: Kind::TimeWaitPileUp,
        headline: "TIME_WAIT pile-up to {remote}: connections are not reused",
        headline_critical: None,
        fires_when: "≥ {TIME_WAIT_SOCKETS} TIME_WAIT sockets to one remote",
        severity: "critical from {TIME_WAIT_CRITICAL}",
        thresholds: &[
            threshold!(Count, TIME_WAIT_SOCKETS),
            threshold!(Count, TIME_WAIT_CRITICAL),
        ],
        check: Check::Remote(time_wait),
    },
    Rule {
        id: "reset_while_established",
        kind: Kind::ResetWhileEstablished,
        headline: "connections to {remote} are reset while established",
        headline_critical: None,
        fires_when: "≥ {ESTABLISHED_RESETS} connections to one remote ended in ECONNRESET after their handshake",
        severity: "warning",
        thresholds: &[threshold!(Count, ESTABLISHED_RESETS)],
        check: Check::Remote(reset_while_established),
    },
    Rule {
        id: "timeout_while_established",
        kind: Kind::TimeoutWhileEstablished,
        headline: "connections to {remote} time out while established",
        headline_critical: None,
        fires_when: "≥ {ESTABLISHED_TIMEOUTS} connection to one remote ended in ETIMEDOUT after retransmissions",
        severity: "critical",
        thresholds: &[threshold!(Count, ESTABLISHED_TIMEOUTS)],
        check: Check::Remote(timeout_while_established),
    },
    Rule {
        id: "accept_queue_full",
        kind: Kind::AcceptQueueFull,
        headline: "accept queue full: not accepting connections fast enough, clients see timeouts",
        headline_critical: None,
        fires_when: "a listener's accept queue holds more than its backlog, or handshakes were dropped for a full queue (ListenOverflows)",
        severity: "critical once handshakes were dropped",
        thresholds: &[],
        check: Check::Process(accept_queue_full),
    },
    Rule {
        id: "firewall_drops",
        kind: Kind::FirewallDrops,
        headline: "a firewall drops its packets to/from {remote}",
        headline_critical: None,
        fires_when: "{FIREWALL_DROPS} or more packets of its connections with one remote dropped by a netfilter rule (NETFILTER_DROP)",
        severity: "warning",
        thresholds: &[threshold!(Count, FIREWALL_DROPS)],
        check: Check::Remote(firewall_drops),
    },
    Rule {
        id: "not_reading",
        kind: Kind::NotReading,
        headline: "not reading what {remote} sends",
        headline_critical: None,
        fires_when: "a connection with that remote holds ≥ {RECV_Q_BYTES} received and unread (Recv-Q)",
        severity: "warning",
        thresholds: &[threshold!(Bytes, RECV_Q_BYTES)],
        check: Check::Remote(not_reading),
    },
    Rule {
        id: "peer_not_reading",
        kind: Kind::PeerNotReading,
        headline: "its peer at {remote} does not read: zero window",
        headline_critical: None,
        fires_when: "{ZERO_WINDOWS} or more connections to that remote wait on a closed receive window (zero-window probes)",
        severity: "warning",
        thresholds: &[threshold!(Count, ZERO_WINDOWS)],
        check: Check::Remote(peer_not_reading),
    },
    Rule {
        id: "no_reuse",
        kind: Kind::NoReuse,
        headline: "a new connection per request to {server}: connections are not reused",
        headline_critical: None,
        fires_when: "≥ {NO_REUSE_CONNECTS} connections to one server closed with a median lifetime ≤ {NO_REUSE_LIFETIME}, opened at ≥ {NO_REUSE_RATE} a second",
        severity: "warning",
        thresholds: &[
            threshold!(Count, NO_REUSE_CONNECTS),
            threshold!(Age, NO_REUSE_LIFETIME),
            threshold!(Count, NO_REUSE_RATE),
        ],
        check: Check::Remote(no_reuse),
    },
    Rule {
        id: "connections_growing",
        kind: Kind::ConnectionsGrowing,
        headline: "connections to {remote} keep growing: a leak",
        headline_critical: None,
        fires_when: "over the last {GROWING_SAMPLES} samples of a remote's ESTABLISHED and CLOSE_WAIT connections (5 s or more apart) they never fell, rose ≥ {GROWING_RISES} times and by ≥ {GROWING_BY} in all",
        severity: "warning",
        thresholds: &[
            threshold!(Count, GROWING_SAMPLES),
            threshold!(Count, GROWING_RISES),
            threshold!(Count, GROWING_BY),
        ],
        check: Check::Remote(connections_growing),
    },
    Rule {
        id: "dns_failing",
        kind: Kind::DnsFailing,
        headline: "lookups of {name} fail",
        headline_critical: None,
        fires_when: "≥ {DNS_FAILURES} DNS answer for that name with an error code (NXDOMAIN, SERVFAIL, REFUSED …), unless it is the search-domain expansion of another name it looked up",
        severity: "warning",
        thresholds: &[threshold!(Count, DNS_FAILURES)],
        check: Check::Named(dns_failing),
    },
    Rule {
        id: "dns_server_silent",
        kind: Kind::DnsServerSilent,
        headline: "DNS server {server} does not answer",
        headline_critical: None,
        fires_when: "≥ {DNS_TIMEOUTS} DNS query to that server unanswered after 5 s",
        severity: "critical when it answered none",
        thresholds: &[threshold!(Count, DNS_TIMEOUTS)],
        check: Check::Named(dns_server_silent),
    },
    Rule {
        id: "dns_slow",
        kind: Kind::DnsSlow,
        headline: "DNS lookups are slow",
        headline_critical: None,
        fires_when: "the 99th percentile of its answered DNS lookups ≥ {DNS_SLOW_P99}, over ≥ {DNS_SLOW_LOOKUPS} of them",
        severity: "warning",
        thresholds: &[
            threshold!(Latency, DNS_SLOW_P99),
            threshold!(Count, DNS_SLOW_LOOKUPS),
        ],
        check: Check::Process(dns_slow),
    },
];

/// Failing names, except a name that is another looked-up name with a
/// search domain appended (`api.example.com.default.svc.cluster.local`
/// after `api.example.com`): resolvers try those first, and they fail by
/// design.
fn dns_failing(p: &ProcessSnapshot) -> Vec<Named> {
    let names = &p.dns.names;
    let expansion = |name: &str| {
        names.iter().any(|other| {
            name.len() > other.name.len() + 1
                && name.starts_with(other.name.as_str())
                && name.as_bytes()[other.name.len()] == b'.'
        })
    };
    names
        .iter()
        .filter(|n| n.name != crate::aggregate::DNS_OTHER)
        .filter(|n| n.failed() >= DNS_FAILURES && !expansion(&n.name))
        .map(|n| {
            let codes: Vec<String> = n
                .failures
                .iter()
                .map(|(code, count)| format!("{code} ({count})"))
                .collect();
            Named {
                name: n.name.clone(),
                remote: None,
                hit: Hit {
                    severity: Severity::Warning,
                    evidence: format!("{} of {} lookups", codes.join(", "), n.lookups),
                },
            }
        })
        .collect()
}

fn dns_server_silent(p: &ProcessSnapshot) -> Vec<Named> {
    p.dns
        .servers
        .iter()
        .filter(|s| s.timeouts >= DNS_TIMEOUTS)
        .map(|s| Named {
            name: s.server.to_string(),
            remote: Some(Remote::Server(s.server)),
            hit: Hit {
                severity: if s.timeouts == s.lookups {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                evidence: format!(
                    "{} of {} queries unanswered after 5 s",
                    human::plural(s.timeouts, "timeout", "timeouts"),
                    s.lookups
                ),
            },
        })
        .collect()
}

fn dns_slow(p: &ProcessSnapshot, _: Context) -> Option<Hit> {
    let l = &p.dns.latency_us;
    let p99 = Duration::from_micros(l.p99);
    (l.count >= DNS_SLOW_LOOKUPS && p99 >= DNS_SLOW_P99).then(|| Hit {
        severity: Severity::Warning,
        evidence: format!(
            "p99 {} ms, p50 {} ms over {} lookups",
            l.p99 / 1000,
            l.p50 / 1000,
            l.count
        ),
    })
}

fn close_wait(p: &ProcessSnapshot, _: Context) -> Option<Hit> {
    let g = &p.gauges;
    if g.close_wait == 0 {
        return None;
    }
    let many = g.close_wait >= CLOSE_WAIT_SOCKETS;
    let old = g.oldest_close_wait.is_some_and(|a| a >= CLOSE_WAIT_AGE);
    if !many && !old {
        return None;
    }
    let mut evidence = human::plural(g.close_wait, "socket", "sockets") + " in CLOSE_WAIT";
    if let Some(a) = g.oldest_close_wait {
        evidence += &format!(", oldest {}", human::age(a));
    }
    if let Some(top) = p
        .remotes
        .iter()
        .filter(|r| r.close_wait > 0)
        .max_by_key(|r| r.close_wait)
    {
        evidence += &format!(
            "; {} of them from {}",
            top.close_wait,
            human::remote(&top.remote)
        );
    }
    let severity = if many && old {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Some(Hit { severity, evidence })
}

/// `12 of 1024 FDs open (1%), 3 sockets`, when there is a limit to compare with.
fn of_limit(p: &ProcessSnapshot) -> Option<String> {
    let u = p.fds.as_ref()?;
    let limit = u.limit.filter(|&l| l > 0)?;
    Some(format!(
        "{} of {} FDs open ({}%), {} sockets",
        u.open,
        limit,
        u.open * 100 / limit,
        u.sockets
    ))
}

/// At the limit, with syscall errors not counted: the process is failing
/// with EMFILE, though no failure was seen.
fn at_limit_unseen(p: &ProcessSnapshot, cx: Context) -> bool {
    !cx.syscall_errors_counted
        && p.counts.emfile_errors == 0
        && p.fds
            .as_ref()
            .is_some_and(|u| u.limit.is_some_and(|l| l > 0 && u.open >= l))
}

fn fds_exhausted(p: &ProcessSnapshot, cx: Context) -> Option<Hit> {
    if at_limit_unseen(p, cx) {
        return Some(Hit {
            severity: Severity::Critical,
            evidence: format!(
                "{}: at its limit, so new sockets, accepts and opens fail with EMFILE \
                 (failed syscalls are not counted here; --syscall-errors on counts them)",
                of_limit(p)?
            ),
        });
    }
    if p.counts.emfile_errors == 0 {
        return None;
    }
    let mut evidence = human::plural(p.counts.emfile_errors, "syscall failed", "syscalls failed")
        + " with EMFILE/ENFILE";
    if let Some(text) = of_limit(p) {
        evidence += &format!("; {text}");
    }
    Some(Hit {
        severity: Severity::Critical,
        evidence,
    })
}

/// Quiet once the process ran out: one finding about FDs, not two.
fn fds_near_limit(p: &ProcessSnapshot, cx: Context) -> Option<Hit> {
    if p.counts.emfile_errors > 0 || at_limit_unseen(p, cx) {
        return None;
    }
    let u = p.fds.as_ref()?;
    let limit = u.limit.filter(|&l| l > 0)?;
    let severity = if u.open * 100 >= FD_CRITICAL_PERCENT * limit {
        Severity::Critical
    } else if u.open * 100 >= FD_WARN_PERCENT * limit {
        Severity::Warning
    } else {
        return None;
    };
    Some(Hit {
        severity,
        evidence: of_limit(p)?,
    })
}

/// Only servers: a client of ours that stops answering is not "unreachable".
fn unreachable(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let Remote::Server(_) = r.remote else {
        return None;
    };
    let c = &r.counts;
    // A connect the application gave up on before any answer (a dial
    // deadline shorter than the kernel's retries) is a timeout too.
    if c.connect_timeout + c.connect_abandoned < CONNECT_TIMEOUTS
        && c.syn_retransmits < SYN_RETRANSMITS
    {
        return None;
    }
    let abandoned = match (c.connect_abandoned, r.abandoned_after) {
        (0, _) => String::new(),
        (n, Some(after)) => format!(
            ", {n} abandoned by the application after {} (its deadline)",
            human::micros(u64::try_from(after.as_micros()).unwrap_or(u64::MAX))
        ),
        (n, None) => format!(", {n} abandoned by the application before an answer"),
    };
    let evidence = format!(
        "{}, {} timed out{abandoned}, {} succeeded",
        human::plural(c.syn_retransmits, "SYN retransmit", "SYN retransmits"),
        human::plural(c.connect_timeout, "connect", "connects"),
        c.connect_ok
    );
    Some(Hit {
        severity: severity_by_success(c.connect_ok),
        evidence,
    })
}

fn refused(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let Remote::Server(_) = r.remote else {
        return None;
    };
    let c = &r.counts;
    // A refused connect is the RST arriving in SYN_SENT; count whichever of the
    // two the snapshot saw more of (the connect outcome can be missed when the
    // socket predates tracing).
    let refused = c.connect_refused.max(c.rst_received_handshake);
    if refused < REFUSED_CONNECTS {
        return None;
    }
    let evidence = format!(
        "{} refused (RST during the handshake), {} succeeded",
        human::plural(refused, "connect", "connects"),
        c.connect_ok
    );
    Some(Hit {
        severity: severity_by_success(c.connect_ok),
        evidence,
    })
}

fn packet_loss(p: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let process_retransmits = p.counts.retransmits;
    let n = r.counts.retransmits;
    if n < RETRANSMITS || n * 100 < RETRANSMIT_SHARE_PERCENT * process_retransmits {
        return None;
    }
    Some(Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{n} data retransmits, {}% of the process's {process_retransmits}",
            n * 100 / process_retransmits.max(1)
        ),
    })
}

fn accept_queue_full(p: &ProcessSnapshot, _: Context) -> Option<Hit> {
    let fullest = p.listeners.first()?;
    let dropped = p.counts.listen_overflows;
    if !fullest.full() && dropped == 0 {
        return None;
    }
    let mut evidence = format!(":{} holds {}", fullest.local.port(), fullest.queue);
    if let Some(backlog) = fullest.backlog {
        evidence += &format!(" (backlog {backlog})");
    }
    if dropped > 0 {
        evidence += &format!(
            ", {} dropped for a full queue",
            human::plural(dropped, "handshake", "handshakes")
        );
    }
    let severity = if dropped > 0 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Some(Hit { severity, evidence })
}

fn firewall_drops(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let c = &r.counts;
    (c.firewall_drops >= FIREWALL_DROPS).then(|| Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{} dropped by netfilter (NETFILTER_DROP), {} data retransmits",
            human::plural(c.firewall_drops, "packet", "packets"),
            c.retransmits
        ),
    })
}

fn not_reading(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let q = &r.queues;
    (u64::from(q.recv_max) >= RECV_Q_BYTES).then(|| Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{} unread on one connection (Recv-Q), receive buffer filling",
            human::bytes(u64::from(q.recv_max))
        ),
    })
}

fn peer_not_reading(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let q = &r.queues;
    (u64::from(q.zero_window) >= ZERO_WINDOWS).then(|| Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{} probing a zero window, {} waiting to be sent (Send-Q)",
            human::plural(u64::from(q.zero_window), "connection", "connections"),
            human::bytes(u64::from(q.send_max))
        ),
    })
}

fn reset_while_established(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let c = &r.counts;
    (c.socket_resets >= ESTABLISHED_RESETS).then(|| Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{} ECONNRESET after the handshake, {} RSTs received",
            c.socket_resets, c.rst_received
        ),
    })
}

fn timeout_while_established(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let c = &r.counts;
    (c.socket_timeouts >= ESTABLISHED_TIMEOUTS).then(|| Hit {
        severity: Severity::Critical,
        evidence: format!(
            "{} ETIMEDOUT after retransmissions, {} data retransmits",
            c.socket_timeouts, c.retransmits
        ),
    })
}

fn time_wait(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    if r.time_wait < TIME_WAIT_SOCKETS {
        return None;
    }
    let severity = if r.time_wait >= TIME_WAIT_CRITICAL {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Some(Hit {
        severity,
        evidence: format!(
            "{} sockets in TIME_WAIT, {} connects so far",
            r.time_wait, r.counts.connects
        ),
    })
}

fn severity_by_success(ok: u64) -> Severity {
    if ok == 0 {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

/// Many short connections to one server, opened at a steady rate: keep-alives
/// off, a client or pool made per request, or `Connection: close`. A capped
/// pool's connections live long and are not flagged.
fn no_reuse(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let Remote::Server(_) = r.remote else {
        return None;
    };
    let lifetime = &r.churn.lifetime_ms;
    let rate = r.churn.connects_per_sec(r.counts.connects);
    let limit_ms = u64::try_from(NO_REUSE_LIFETIME.as_millis()).unwrap_or(u64::MAX);
    if lifetime.count < NO_REUSE_CONNECTS || lifetime.p50 > limit_ms || rate < NO_REUSE_RATE as f64
    {
        return None;
    }
    Some(Hit {
        severity: Severity::Warning,
        evidence: format!(
            "{} at {}/s, median lifetime {} ms, {} in TIME_WAIT: keep-alives off, \
             a client or pool made per request, or `Connection: close`",
            human::plural(r.counts.connects, "connect", "connects"),
            human::rate(rate),
            lifetime.p50,
            r.time_wait
        ),
    })
}

/// Open connections to one remote rising sample after sample and never
/// closing: response bodies or rows never closed, or a pool without a cap.
/// A client of our listeners growing so is the server's side of such a leak.
fn connections_growing(_: &ProcessSnapshot, r: &RemoteSnapshot) -> Option<Hit> {
    let history = &r.churn.open_history;
    let n = usize::try_from(GROWING_SAMPLES).unwrap_or(usize::MAX);
    let window = history.get(history.len().checked_sub(n)?..)?;
    let (&(from_at, from), &(to_at, to)) = (window.first()?, window.last()?);
    let never_fell = window.windows(2).all(|w| w[1].1 >= w[0].1);
    let rises = window.windows(2).filter(|w| w[1].1 > w[0].1).count() as u64;
    if !never_fell || rises < GROWING_RISES || to < from + GROWING_BY {
        return None;
    }
    Some(Hit {
        severity: Severity::Warning,
        evidence: format!(
            "open connections (ESTABLISHED and CLOSE_WAIT) from {from} to {to} in {}, \
             never fewer: responses or rows never closed, or a pool without a cap",
            human::age(to_at.saturating_sub(from_at))
        ),
    })
}
