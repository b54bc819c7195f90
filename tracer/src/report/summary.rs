//! The first pass over a capture: per process, its totals and peaks, and the
//! findings it had over time; for the capture, its span and interval. Small
//! per process, whatever the number of rows.

use std::collections::HashMap;

use super::{
    capture::Row,
    metrics::{self, FAILED_CONNECTS, Kind, METRICS, Metric, RETRANSMITS, RSTS, Values},
};
use crate::{
    findings::{self, Finding, Severity},
    snapshot::{
        Counts, FdUsage, Gauges, Latency, ListenerSnapshot, ProcessId, ProcessSnapshot, Rates,
    },
};

/// Episodes kept per process; later ones are counted, not kept.
const MAX_EPISODES: usize = 64;
/// Command names are kept to this many characters (the kernel's are 15).
const MAX_COMM: usize = 64;
/// Distinct gaps between snapshots remembered to find the interval.
const MAX_GAPS: usize = 256;
/// Processes followed at once (about 1 KiB each). A capture with more (a
/// host forking short-lived clients for days) forgets the half with the
/// least trouble whenever there are more, so memory stays bounded.
const MAX_PROCESSES: usize = 20_000;

/// A process: a pid, and when it started where the file says (a reused pid
/// is another process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    pub pid: u32,
    pub start: Option<i64>,
}

/// A finding from its first row to its last, without a row in between
/// where it did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    pub kind: findings::Kind,
    /// The worst it got.
    pub severity: Severity,
    pub headline: String,
    /// The numbers when it was at its worst (the latest such row).
    pub evidence: String,
    pub start: i64,
    /// The last row where it held.
    pub end: i64,
    /// It still held in the process's last row.
    pub open: bool,
}

/// One process over the capture.
#[derive(Debug, Clone)]
pub struct Process {
    pub key: ProcessKey,
    /// The latest command name.
    pub comm: String,
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub exited: bool,
    /// The previous row's values, for the increase of counters.
    prev: Values,
    /// Counters: their increase over the capture; gauges: their peak. `None`
    /// when no row had a value.
    pub total: Values,
    pub episodes: Vec<Episode>,
    /// Episodes beyond [`MAX_EPISODES`].
    pub episodes_dropped: u64,
}

/// How much trouble a process had, for ranking: findings first, then the
/// events that mean trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Trouble {
    pub critical: usize,
    pub warning: usize,
    /// Failed connects, retransmits, RSTs and failed syscalls.
    pub events: u64,
}

impl Process {
    fn new(key: ProcessKey, row: &Row<'_>) -> Self {
        Self {
            key,
            comm: String::new(),
            first: row.at,
            last: row.at,
            rows: 0,
            exited: false,
            prev: [None; metrics::COUNT],
            total: [None; metrics::COUNT],
            episodes: Vec::new(),
            episodes_dropped: 0,
        }
    }

    pub fn total(&self, metric: Metric) -> Option<u64> {
        metrics::get(&self.total, metric)
    }

    pub fn trouble(&self) -> Trouble {
        let kinds_at = |severity| {
            let mut kinds: Vec<findings::Kind> = self
                .episodes
                .iter()
                .filter(|e| e.severity == severity)
                .map(|e| e.kind)
                .collect();
            kinds.sort();
            kinds.dedup();
            kinds.len()
        };
        let syscalls = self
            .total(Metric::SyscallErrors)
            .or(self.total(Metric::EmfileErrors));
        let events = [
            metrics::sum(&self.total, FAILED_CONNECTS),
            metrics::sum(&self.total, RETRANSMITS),
            metrics::sum(&self.total, RSTS),
            syscalls,
        ]
        .into_iter()
        .flatten()
        .fold(0u64, u64::saturating_add);
        Trouble {
            critical: kinds_at(Severity::Critical),
            warning: kinds_at(Severity::Warning),
            events,
        }
    }

    fn observe(&mut self, row: &Row<'_>) {
        if self.comm != row.comm {
            self.comm = row.comm.chars().take(MAX_COMM).collect();
        }
        self.first = self.first.min(row.at);
        self.last = self.last.max(row.at);
        self.rows += 1;
        self.exited = metrics::get(&row.values, Metric::Exited) == Some(1);
        for (i, (_, _, kind)) in METRICS.iter().enumerate() {
            let Some(value) = row.values[i] else { continue };
            let total = self.total[i].unwrap_or(0);
            self.total[i] = Some(match kind {
                Kind::Counter => total.saturating_add(increase(self.prev[i], value)),
                Kind::Gauge => total.max(value),
            });
            self.prev[i] = Some(value);
        }
        let mut found = Vec::new();
        findings::of_process(&snapshot_of(row), super::CAPTURED, &mut found);
        self.track(row.at, found);
    }

    /// Extends the episodes that still hold, ends those that do not, and
    /// opens new ones.
    fn track(&mut self, at: i64, found: Vec<Finding>) {
        for episode in self.episodes.iter_mut().filter(|e| e.open) {
            if !found.iter().any(|f| f.kind == episode.kind) {
                episode.open = false;
            }
        }
        for f in found {
            if let Some(e) = self
                .episodes
                .iter_mut()
                .find(|e| e.open && e.kind == f.kind)
            {
                e.end = at;
                if f.severity >= e.severity {
                    e.severity = f.severity;
                    e.headline = f.headline;
                    e.evidence = f.evidence;
                }
            } else if self.episodes.len() < MAX_EPISODES {
                self.episodes.push(Episode {
                    kind: f.kind,
                    severity: f.severity,
                    headline: f.headline,
                    evidence: f.evidence,
                    start: at,
                    end: at,
                    open: true,
                });
            } else {
                self.episodes_dropped += 1;
            }
        }
    }
}

/// How much a cumulative counter grew since the row before; a counter that
/// went down started again (a new tracer run continuing the file).
pub const fn increase(prev: Option<u64>, value: u64) -> u64 {
    match prev {
        Some(prev) if value >= prev => value - prev,
        _ => value,
    }
}

/// A row as the snapshot the finding rules read: only what a row holds (no
/// remotes, so per-remote rules find nothing).
fn snapshot_of(row: &Row<'_>) -> ProcessSnapshot {
    let v = |m| metrics::get(&row.values, m).unwrap_or(0);
    let counts = Counts {
        connects: v(Metric::Connects),
        connect_ok: v(Metric::ConnectOk),
        connect_refused: v(Metric::ConnectRefused),
        connect_timeout: v(Metric::ConnectTimeout),
        connect_failed_other: v(Metric::ConnectFailedOther),
        connect_abandoned: v(Metric::ConnectAbandoned),
        accepted: v(Metric::Accepted),
        retransmits: v(Metric::Retransmits),
        syn_retransmits: v(Metric::SynRetransmits),
        synack_retransmits: v(Metric::SynackRetransmits),
        rst_sent: v(Metric::RstSent),
        rst_received: v(Metric::RstReceived),
        rst_received_handshake: v(Metric::RstReceivedHandshake),
        closed: v(Metric::Closed),
        syscall_errors: v(Metric::SyscallErrors),
        emfile_errors: v(Metric::EmfileErrors),
        socket_errors: v(Metric::SocketErrors),
        listen_overflows: v(Metric::ListenOverflows),
        drops: v(Metric::Drops),
        ..Counts::default()
    };
    let gauges = Gauges {
        established: v(Metric::Established),
        syn_sent: v(Metric::SynSent),
        syn_recv: v(Metric::SynRecv),
        closing: 0,
        close_wait: v(Metric::CloseWait),
        time_wait: v(Metric::TimeWait),
        listen: v(Metric::Listen),
        oldest_close_wait: metrics::get(&row.values, Metric::CloseWaitOldestS)
            .map(std::time::Duration::from_secs),
        // RTTs and bytes play no part in the report's findings.
        ..Gauges::default()
    };
    let fds = metrics::get(&row.values, Metric::FdsOpen).map(|open| FdUsage {
        open,
        limit: metrics::get(&row.values, Metric::FdLimit),
        sockets: v(Metric::SocketFds),
    });
    ProcessSnapshot {
        id: ProcessId {
            pid: row.pid,
            start_ticks: 0,
        },
        comm: row.comm.to_owned(),
        exited: v(Metric::Exited) == 1,
        counts,
        rates: Rates::default(),
        handshake_us: Latency::default(),
        lifetime_ms: Latency::default(),
        gauges,
        fds,
        syscall_errors: Vec::new(),
        remotes: Vec::new(),
        connections: Vec::new(),
        connections_total: 0,
        listeners: listener_of(row),
        drops: Vec::new(),
        rst_reasons: Vec::new(),
        dns: Default::default(),
        cgroup: None,
        recent: Vec::new(),
    }
}

/// The fullest listener, as far as a row tells it (queue and backlog only).
fn listener_of(row: &Row<'_>) -> Vec<ListenerSnapshot> {
    let Some(queue) = metrics::get(&row.values, Metric::AcceptQueue) else {
        return Vec::new();
    };
    vec![ListenerSnapshot {
        local: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        netns: 0,
        queue: u32::try_from(queue).unwrap_or(u32::MAX),
        backlog: metrics::get(&row.values, Metric::AcceptBacklog)
            .and_then(|b| u32::try_from(b).ok()),
        overflows: 0,
    }]
}

/// Everything the first pass learns.
#[derive(Debug, Default)]
pub struct Summary {
    /// In the order they first appear.
    pub processes: Vec<Process>,
    index: HashMap<ProcessKey, usize>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// The previous row's time, and how often each gap between snapshot
    /// times occurred.
    prev_at: Option<i64>,
    gaps: HashMap<i64, u64>,
    /// Processes forgotten to stay within [`MAX_PROCESSES`].
    pub forgotten: u64,
}

impl Summary {
    pub fn observe(&mut self, row: &Row<'_>) {
        self.first = Some(self.first.map_or(row.at, |t| t.min(row.at)));
        self.last = Some(self.last.map_or(row.at, |t| t.max(row.at)));
        if let Some(prev) = self.prev_at.filter(|&p| p != row.at) {
            let gap = row.at - prev;
            if gap > 0 && (self.gaps.len() < MAX_GAPS || self.gaps.contains_key(&gap)) {
                *self.gaps.entry(gap).or_default() += 1;
            }
        }
        self.prev_at = Some(row.at);
        let key = ProcessKey {
            pid: row.pid,
            start: row.start,
        };
        if !self.index.contains_key(&key) && self.processes.len() >= MAX_PROCESSES {
            self.forget();
        }
        let at = *self.index.entry(key).or_insert_with(|| {
            self.processes.push(Process::new(key, row));
            self.processes.len() - 1
        });
        self.processes[at].observe(row);
    }

    /// Keeps the half of the processes with the most trouble (then the
    /// latest seen); a forgotten process that comes back starts afresh.
    fn forget(&mut self) {
        self.processes
            .sort_by_cached_key(|p| (std::cmp::Reverse((p.trouble(), p.last)), p.key));
        let keep = MAX_PROCESSES / 2;
        self.forgotten += (self.processes.len() - keep) as u64;
        self.processes.truncate(keep);
        self.processes.shrink_to(MAX_PROCESSES);
        self.index = self
            .processes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key, i))
            .collect();
    }

    /// The most common time between snapshots, in seconds (timestamps are
    /// whole seconds, so a sub-second interval shows as 1).
    pub fn interval(&self) -> Option<i64> {
        self.gaps
            .iter()
            .max_by_key(|&(gap, n)| (*n, std::cmp::Reverse(*gap)))
            .map(|(gap, _)| *gap)
    }

    /// The processes, most trouble first (then by pid).
    pub fn ranked(&self) -> Vec<&Process> {
        let mut ranked: Vec<&Process> = self.processes.iter().collect();
        ranked.sort_by_cached_key(|p| (std::cmp::Reverse(p.trouble()), p.key));
        ranked
    }
}
