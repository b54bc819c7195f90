//! Plain-language diagnoses derived from one snapshot: each names the process,
//! says what is probably wrong and shows the numbers that say so.
//!
//! Every rule is one entry of [`RULES`] (in `findings/rules.rs`): its stable
//! id, its thresholds, its words and the function that evaluates it. The live
//! view's help lists the rules from that table and a test checks README's
//! Findings table against it, so a rule is written down once.
//!
//! Pure: [`findings`] reads a [`Snapshot`] and nothing else, so every rule is
//! unit-tested with synthetic snapshots at and around its threshold.
//!
//! Counts are cumulative since tracing started; socket and FD numbers are
//! gauges read at snapshot time.

mod changes;
mod rules;
mod words;

use crate::{
    human,
    snapshot::{ProcessSnapshot, Remote, RemoteSnapshot, Snapshot},
};

// The table and the thresholds it names.
pub use changes::{Changes, Transition};
pub use rules::*;
pub use words::{Part, Threshold};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    /// As the `severity` label of `tracer_findings` says it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl Kind {
    /// The stable id of the kind's rule (README's Findings table).
    pub fn id(self) -> &'static str {
        RULES
            .iter()
            .find(|rule| rule.kind == self)
            .map_or("unknown", |rule| rule.id)
    }
}

/// What a finding is about; one process can have several of each kind (one
/// per remote). One per entry of [`RULES`], in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CloseWaitLeak,
    FdsExhausted,
    FdsNearLimit,
    Unreachable,
    NothingListening,
    PacketLoss,
    TimeWaitPileUp,
    ResetWhileEstablished,
    TimeoutWhileEstablished,
    AcceptQueueFull,
    FirewallDrops,
    NotReading,
    PeerNotReading,
    NoReuse,
    ConnectionsGrowing,
    DnsFailing,
    DnsServerSilent,
    DnsSlow,
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

/// One rule: an entry of [`RULES`].
#[derive(Debug)]
pub struct Rule {
    /// Names the rule for good (snake_case; never reused for another rule):
    /// README's Findings table and the `finding` label of `tracer_findings`.
    pub id: &'static str,
    pub kind: Kind,
    /// The headline of a finding; `{server}` or `{remote}` stands for the
    /// endpoint of a per-remote rule.
    pub headline: &'static str,
    /// The headline of a critical finding, where it says more than `headline`.
    pub headline_critical: Option<&'static str>,
    /// When the rule fires; `{NAME}` stands for the threshold named `NAME`.
    pub fires_when: &'static str,
    /// How severe a finding is, with placeholders as in `fires_when`.
    pub severity: &'static str,
    /// The thresholds the words name and the check compares with.
    pub thresholds: &'static [Threshold],
    pub check: Check,
}

/// What the process rules know of the trace besides the process.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Failed syscalls are counted (`--syscall-errors`): without them,
    /// running out of FDs shows only in the FD count.
    pub syscall_errors_counted: bool,
}

/// How a rule is evaluated.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Once per process.
    Process(fn(&ProcessSnapshot, Context) -> Option<Hit>),
    /// Once per remote endpoint of the process.
    Remote(fn(&ProcessSnapshot, &RemoteSnapshot) -> Option<Hit>),
    /// Once per process, for each thing of it that the headline names as
    /// `{name}` (a DNS name) or `{server}` (a DNS server, its remote): each
    /// with its hit.
    Named(fn(&ProcessSnapshot) -> Vec<Named>),
}

/// A hit of a [`Check::Named`] rule: what it names, and the remote it
/// concerns, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub remote: Option<Remote>,
    pub hit: Hit,
}

/// What a check found; the rule supplies the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub severity: Severity,
    /// The numbers behind it.
    pub evidence: String,
}

/// Every finding in `snapshot`, most severe first, then by pid.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    let cx = Context {
        syscall_errors_counted: snapshot.syscall_errors_counted,
    };
    for p in &snapshot.processes {
        of_process(p, cx, &mut out);
    }
    sort(&mut out);
    out
}

/// Orders findings most severe first, then by pid, rule and remote. A rule
/// finds at most one thing per process and remote, so this order is total.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.pid.cmp(&b.pid))
            .then(a.kind.cmp(&b.kind))
            .then(a.remote.cmp(&b.remote))
    });
}

/// The findings of one process, unsorted. Per-remote rules find nothing
/// when the snapshot carries no remotes (a row read back from a CSV).
pub fn of_process(p: &ProcessSnapshot, cx: Context, out: &mut Vec<Finding>) {
    for rule in RULES {
        match rule.check {
            Check::Process(check) => {
                out.extend(check(p, cx).map(|hit| rule.finding(p, None, hit)));
            }
            Check::Remote(check) => {
                for r in &p.remotes {
                    out.extend(check(p, r).map(|hit| rule.finding(p, Some(r.remote), hit)));
                }
            }
            Check::Named(check) => {
                for named in check(p) {
                    let mut finding = rule.finding(p, named.remote, named.hit);
                    finding.headline = words::fill(&finding.headline, |slot| {
                        (slot == "name").then(|| named.name.clone())
                    });
                    out.push(finding);
                }
            }
        }
    }
}

impl Rule {
    fn finding(&self, p: &ProcessSnapshot, remote: Option<Remote>, hit: Hit) -> Finding {
        let template = match (hit.severity, self.headline_critical) {
            (Severity::Critical, Some(critical)) => critical,
            _ => self.headline,
        };
        let endpoint = remote.map(|r| human::remote(&r)).unwrap_or_default();
        // `{name}` is left for a named check to fill.
        let fill = |slot: &str| (slot != "name").then(|| endpoint.clone());
        Finding {
            severity: hit.severity,
            kind: self.kind,
            pid: p.id.pid,
            comm: p.comm.clone(),
            remote,
            headline: words::fill(template, fill),
            evidence: hit.evidence,
        }
    }
}

#[cfg(test)]
mod tests;
