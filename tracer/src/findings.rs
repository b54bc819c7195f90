//! Plain-language diagnoses derived from one snapshot: each names the process,
//! says what is probably wrong and shows the numbers that say so.
//!
//! Pure: [`findings`] reads a [`Snapshot`] and nothing else, so every rule is
//! unit-tested with synthetic snapshots at and around its threshold.
//!
//! | finding | fires when | severity |
//! |---|---|---|
//! | not closing connections its peers closed | ≥ [`CLOSE_WAIT_SOCKETS`] sockets in CLOSE_WAIT, or one older than [`CLOSE_WAIT_AGE`] | critical when both hold |
//! | out of file descriptors | any EMFILE/ENFILE error | critical |
//! | close to the file-descriptor limit | open FDs ≥ [`FD_WARN_PERCENT`] % of the soft limit | critical from [`FD_CRITICAL_PERCENT`] % |
//! | unreachable or filtered | to one server: ≥ [`CONNECT_TIMEOUTS`] connect timed out, or ≥ [`SYN_RETRANSMITS`] SYN retransmits | critical when no connect to it succeeded |
//! | nothing listening | to one server: ≥ [`REFUSED_CONNECTS`] connects refused (RST during the handshake) | critical when no connect to it succeeded |
//! | packet loss on that path | to one remote: ≥ [`RETRANSMITS`] data retransmits and ≥ [`RETRANSMIT_SHARE_PERCENT`] % of the process's | warning |
//! | connections are not reused | to one remote: ≥ [`TIME_WAIT_SOCKETS`] sockets in TIME_WAIT | critical from [`TIME_WAIT_CRITICAL`] |
//!
//! Counts are cumulative since tracing started; socket and FD numbers are
//! gauges read at snapshot time.

use std::time::Duration;

use crate::{
    human,
    snapshot::{ProcessSnapshot, Remote, RemoteSnapshot, Snapshot},
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

/// What a finding is about; one process can have several of each kind (one
/// per remote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CloseWaitLeak,
    FdsExhausted,
    FdsNearLimit,
    Unreachable,
    NothingListening,
    PacketLoss,
    TimeWaitPileUp,
}

/// One diagnosis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    pub pid: u32,
    pub comm: String,
    /// The remote endpoint the finding is about, if it is about one.
    pub remote: Option<Remote>,
    /// What is probably wrong, in words: "connects to 10.0.0.5:443 are refused: nothing listening there".
    pub headline: String,
    /// The numbers behind it.
    pub evidence: String,
}

/// What is checked, one line per rule with its thresholds, for the help.
pub fn rules() -> Vec<String> {
    vec![
        format!(
            "not closing connections its peers closed: ≥ {CLOSE_WAIT_SOCKETS} in CLOSE_WAIT, or one older than {}s",
            CLOSE_WAIT_AGE.as_secs()
        ),
        "out of file descriptors: any EMFILE/ENFILE".to_owned(),
        format!(
            "close to the FD limit: ≥ {FD_WARN_PERCENT}% of the soft limit open (critical ≥ {FD_CRITICAL_PERCENT}%)"
        ),
        format!(
            "unreachable or filtered: to one server, ≥ {CONNECT_TIMEOUTS} connect timeout or ≥ {SYN_RETRANSMITS} SYN retransmits"
        ),
        format!(
            "nothing listening: to one server, ≥ {REFUSED_CONNECTS} connects refused (RST in the handshake)"
        ),
        format!(
            "packet loss on a path: ≥ {RETRANSMITS} data retransmits to one remote, ≥ {RETRANSMIT_SHARE_PERCENT}% of the process's"
        ),
        format!(
            "connections not reused: ≥ {TIME_WAIT_SOCKETS} TIME_WAIT to one remote (critical ≥ {TIME_WAIT_CRITICAL})"
        ),
    ]
}

/// Every finding in `snapshot`, most severe first, then by pid.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &snapshot.processes {
        of_process(p, &mut out);
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.pid.cmp(&b.pid))
            .then(a.kind.cmp(&b.kind))
            .then(a.remote.cmp(&b.remote))
    });
    out
}

/// The findings of one process, in the order [`findings`] would list them.
pub fn of_process(p: &ProcessSnapshot, out: &mut Vec<Finding>) {
    let mut add = |severity, kind, remote: Option<Remote>, headline: String, evidence: String| {
        out.push(Finding {
            severity,
            kind,
            pid: p.id.pid,
            comm: p.comm.clone(),
            remote,
            headline,
            evidence,
        });
    };
    if let Some((severity, evidence)) = close_wait(p) {
        add(
            severity,
            Kind::CloseWaitLeak,
            None,
            "not closing connections its peers closed".to_owned(),
            evidence,
        );
    }
    if let Some((severity, kind, headline, evidence)) = fds(p) {
        add(severity, kind, None, headline.to_owned(), evidence);
    }
    for r in &p.remotes {
        let name = human::remote(&r.remote);
        if let Some((severity, evidence)) = unreachable(r) {
            add(
                severity,
                Kind::Unreachable,
                Some(r.remote),
                format!("connects to {name} go unanswered: unreachable or filtered"),
                evidence,
            );
        }
        if let Some((severity, evidence)) = refused(r) {
            add(
                severity,
                Kind::NothingListening,
                Some(r.remote),
                format!("connects to {name} are refused: nothing listening there"),
                evidence,
            );
        }
        if let Some(evidence) = packet_loss(r, p.counts.retransmits) {
            add(
                Severity::Warning,
                Kind::PacketLoss,
                Some(r.remote),
                format!("retransmitting to {name}: packet loss on that path"),
                evidence,
            );
        }
        if let Some((severity, evidence)) = time_wait(r) {
            add(
                severity,
                Kind::TimeWaitPileUp,
                Some(r.remote),
                format!("TIME_WAIT pile-up to {name}: connections are not reused"),
                evidence,
            );
        }
    }
}

fn close_wait(p: &ProcessSnapshot) -> Option<(Severity, String)> {
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
    Some((severity, evidence))
}

fn fds(p: &ProcessSnapshot) -> Option<(Severity, Kind, &'static str, String)> {
    let usage = p.fds.as_ref();
    let of_limit = usage.and_then(|u| {
        let limit = u.limit.filter(|&l| l > 0)?;
        Some(format!(
            "{} of {} FDs open ({}%), {} sockets",
            u.open,
            limit,
            u.open * 100 / limit,
            u.sockets
        ))
    });
    if p.counts.emfile_errors > 0 {
        let mut evidence =
            human::plural(p.counts.emfile_errors, "syscall failed", "syscalls failed")
                + " with EMFILE/ENFILE";
        if let Some(text) = &of_limit {
            evidence += &format!("; {text}");
        }
        return Some((
            Severity::Critical,
            Kind::FdsExhausted,
            "ran out of file descriptors",
            evidence,
        ));
    }
    let u = usage?;
    let limit = u.limit.filter(|&l| l > 0)?;
    let (severity, headline) = if u.open * 100 >= FD_CRITICAL_PERCENT * limit {
        (Severity::Critical, "about to run out of file descriptors")
    } else if u.open * 100 >= FD_WARN_PERCENT * limit {
        (Severity::Warning, "close to its file-descriptor limit")
    } else {
        return None;
    };
    Some((severity, Kind::FdsNearLimit, headline, of_limit?))
}

/// Only servers: a client of ours that stops answering is not "unreachable".
fn unreachable(r: &RemoteSnapshot) -> Option<(Severity, String)> {
    let Remote::Server(_) = r.remote else {
        return None;
    };
    let c = &r.counts;
    if c.connect_timeout < CONNECT_TIMEOUTS && c.syn_retransmits < SYN_RETRANSMITS {
        return None;
    }
    let evidence = format!(
        "{}, {} timed out, {} succeeded",
        human::plural(c.syn_retransmits, "SYN retransmit", "SYN retransmits"),
        human::plural(c.connect_timeout, "connect", "connects"),
        c.connect_ok
    );
    Some((severity_by_success(c.connect_ok), evidence))
}

fn refused(r: &RemoteSnapshot) -> Option<(Severity, String)> {
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
    Some((severity_by_success(c.connect_ok), evidence))
}

fn packet_loss(r: &RemoteSnapshot, process_retransmits: u64) -> Option<String> {
    let n = r.counts.retransmits;
    if n < RETRANSMITS || n * 100 < RETRANSMIT_SHARE_PERCENT * process_retransmits {
        return None;
    }
    Some(format!(
        "{n} data retransmits, {}% of the process's {process_retransmits}",
        n * 100 / process_retransmits.max(1)
    ))
}

fn time_wait(r: &RemoteSnapshot) -> Option<(Severity, String)> {
    if r.time_wait < TIME_WAIT_SOCKETS {
        return None;
    }
    let severity = if r.time_wait >= TIME_WAIT_CRITICAL {
        Severity::Critical
    } else {
        Severity::Warning
    };
    Some((
        severity,
        format!(
            "{} sockets in TIME_WAIT, {} connects so far",
            r.time_wait, r.counts.connects
        ),
    ))
}

fn severity_by_success(ok: u64) -> Severity {
    if ok == 0 {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

#[cfg(test)]
mod tests;
