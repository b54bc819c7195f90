//! Reads an `--events` JSON-lines file, streamed: per process and remote
//! endpoint, how its connects ended and its retransmits and resets, with
//! when the trouble started and last showed; the last `stats` line; and the
//! findings the per-remote rules make of it at the end of the file.
//!
//! A remote is a server (address and port) once a connect to it was seen;
//! other peers are grouped by address, as tracer groups clients.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufRead as _, BufReader, Read as _},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    findings::{self, Finding},
    snapshot::{
        Counts, Gauges, KernelCounts, Latency, ProcessId, ProcessSnapshot, Rates, Remote,
        RemoteSnapshot,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot read the events file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not a tracer --events file: {why} (tracer --events writes one JSON object per line)",
        path.display()
    )]
    NotEvents { path: PathBuf, why: String },
}

/// Lines longer than this are not tracer's (its longest are under 1 KiB):
/// skipped, without being held in memory.
const MAX_LINE: usize = 64 * 1024;
/// Processes kept (the events of later ones are counted, not read) and
/// remotes per process (later ones are folded into "other remotes"): at
/// most about 70 MiB however large the file.
const MAX_PROCESSES: usize = 1024;
const MAX_REMOTES: usize = 256;

/// The fields of an event line the report reads; others are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Line {
    ts_ns: Option<u64>,
    event: String,
    pid: u32,
    comm: String,
    daddr: Option<IpAddr>,
    dport: Option<u16>,
    result: Option<String>,
    phase: Option<String>,
    errno: Option<String>,
    handshake_us: Option<u64>,
    after_us: Option<u64>,
    race_lost: bool,
    /// `true` on an event, a count on a `stats` line.
    unattributed: serde_json::Value,
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

/// One remote endpoint of one process.
#[derive(Debug, Clone)]
pub struct RemoteStats {
    pub snapshot: RemoteSnapshot,
    /// When its first and last trouble event happened (failed connect,
    /// retransmit, RST), seconds since the epoch.
    pub first_trouble: Option<i64>,
    pub last_trouble: Option<i64>,
}

#[derive(Debug, Clone)]
struct Process {
    comm: String,
    counts: Counts,
    remotes: HashMap<Remote, RemoteStats>,
}

/// What an events file says.
#[derive(Debug, Default)]
pub struct Events {
    pub lines: u64,
    /// Lines that were not an event, and the first of them.
    pub skipped: u64,
    pub first_skipped: Option<String>,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Events with no owner (`"unattributed": true`).
    pub unattributed_events: u64,
    /// The last `stats` line's counts, under their JSON names.
    pub stats: Option<Vec<(&'static str, u64)>>,
    /// The `start` line's facts (host, kernel, scope, hooks, interval), as
    /// (name, value) in that order.
    pub start: Option<Vec<(&'static str, String)>>,
    processes: HashMap<u32, Process>,
    /// Events of processes beyond [`MAX_PROCESSES`].
    pub processes_dropped: u64,
}

/// One row of the per-remote table.
#[derive(Debug, Clone)]
pub struct RemoteRow<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub stats: &'a RemoteStats,
}

/// Reads the events file at `path`.
pub fn read(path: &Path) -> Result<Events, EventsError> {
    let io = |source| EventsError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut input = BufReader::with_capacity(256 * 1024, file);
    let mut events = Events::default();
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = input
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') && n == MAX_LINE {
            // Drop the rest of an overlong line.
            let mut rest = Vec::new();
            while input
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut rest)
                .map_err(io)?
                == MAX_LINE
                && rest.last() != Some(&b'\n')
            {
                rest.clear();
            }
            events.skip(number, "longer than 64 KiB");
            continue;
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(text) {
            Ok(line) if !line.event.is_empty() => events.observe(line),
            Ok(_) => events.skip(number, "no `event` field"),
            Err(e) => events.skip(number, &format!("not JSON ({e})")),
        }
    }
    if events.lines == 0 {
        let why = match &events.first_skipped {
            Some(first) => format!("no line is an event ({first})"),
            None => "it is empty".to_owned(),
        };
        return Err(EventsError::NotEvents {
            path: path.to_owned(),
            why,
        });
    }
    Ok(events)
}

impl Events {
    fn skip(&mut self, number: u64, why: &str) {
        self.skipped += 1;
        self.first_skipped
            .get_or_insert_with(|| format!("line {number}: {why}"));
    }

    fn observe(&mut self, line: Line) {
        self.lines += 1;
        let at = line
            .ts_ns
            .and_then(|ns| i64::try_from(ns / 1_000_000_000).ok());
        if let Some(at) = at {
            self.first = Some(self.first.map_or(at, |t| t.min(at)));
            self.last = Some(self.last.map_or(at, |t| t.max(at)));
        }
        if line.event == "stats" {
            self.stats = Some(stats_of(&line));
            return;
        }
        if line.event == "start" {
            self.start = Some(start_of(&line));
            return;
        }
        // Findings are derived from the events, not events of their own.
        if line.event == "finding" {
            return;
        }
        if line.unattributed == serde_json::Value::Bool(true) {
            self.unattributed_events += 1;
            return;
        }
        // Resets for closed ports belong to no process.
        if line.pid == 0 {
            return;
        }
        if !self.processes.contains_key(&line.pid) && self.processes.len() >= MAX_PROCESSES {
            self.processes_dropped += 1;
            return;
        }
        let process = self.processes.entry(line.pid).or_insert_with(|| Process {
            comm: String::new(),
            counts: Counts::default(),
            remotes: HashMap::new(),
        });
        if process.comm != line.comm {
            process.comm = line.comm.chars().take(64).collect();
        }
        process.observe(&line, at);
    }

    /// Every remote of every process, most trouble first.
    pub fn remotes(&self) -> Vec<RemoteRow<'_>> {
        let mut rows: Vec<RemoteRow<'_>> = self
            .processes
            .iter()
            .flat_map(|(&pid, p)| {
                p.remotes.values().map(move |stats| RemoteRow {
                    pid,
                    comm: &p.comm,
                    stats,
                })
            })
            .collect();
        rows.sort_by_cached_key(|r| {
            let c = &r.stats.snapshot.counts;
            (
                std::cmp::Reverse(trouble(c)),
                std::cmp::Reverse(c.connects),
                r.pid,
                r.stats.snapshot.remote,
            )
        });
        rows
    }

    /// The findings the rules make of the whole file, most severe first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        for (&pid, p) in &self.processes {
            findings::of_process(&p.snapshot(pid), super::CAPTURED, &mut out);
        }
        findings::sort(&mut out);
        out
    }
}

/// Failed connects, retransmits and resets.
pub const fn trouble(c: &Counts) -> u64 {
    c.connect_failures()
        + c.retransmits
        + c.syn_retransmits
        + c.synack_retransmits
        + c.rst_sent
        + c.rst_received
}

/// The facts of a `start` line: what it has of host, kernel, scope, hooks
/// and interval.
fn start_of(line: &Line) -> Vec<(&'static str, String)> {
    [
        ("host", "host"),
        ("kernel", "kernel"),
        ("traced", "scope"),
        ("hooks", "hooks"),
        ("interval (ms)", "interval_ms"),
    ]
    .into_iter()
    .filter_map(|(label, key)| {
        let value = line.rest.get(key)?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some((label, text))
    })
    .collect()
}

/// The counts of a `stats` line, named as [`KernelCounts::named`] names them.
fn stats_of(line: &Line) -> Vec<(&'static str, u64)> {
    KernelCounts::default()
        .named()
        .into_iter()
        .filter_map(|(name, _)| {
            let value = if name == "unattributed" {
                line.unattributed.as_u64()
            } else {
                line.rest.get(name).and_then(serde_json::Value::as_u64)
            };
            Some((name, value?))
        })
        .collect()
}

impl Process {
    fn observe(&mut self, line: &Line, at: Option<i64>) {
        let server = match (line.daddr, line.dport) {
            (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
            _ => None,
        };
        // What the event counts, on the process and on its remote.
        let (remote, count): (Option<Remote>, fn(&mut Counts, &Line)) = match line.event.as_str() {
            "connect" => (server.map(Remote::Server), count_connect),
            "syn_retransmit" => (server.map(Remote::Server), |c, _| c.syn_retransmits += 1),
            "retransmit" => (self.peer(server), |c, _| c.retransmits += 1),
            "synack_retransmit" => (line.daddr.map(Remote::Client), |c, _| {
                c.synack_retransmits += 1
            }),
            "rst_sent" => (self.peer(server), |c, _| c.rst_sent += 1),
            "rst_received" => (self.peer(server), |c, line| {
                c.rst_received += 1;
                if line.phase.as_deref() == Some("handshake") {
                    c.rst_received_handshake += 1;
                }
            }),
            "syscall_error" => {
                self.counts.syscall_errors += 1;
                if matches!(line.errno.as_deref(), Some("EMFILE" | "ENFILE")) {
                    self.counts.emfile_errors += 1;
                }
                return;
            }
            _ => return,
        };
        count(&mut self.counts, line);
        let Some(mut remote) = remote else { return };
        if !self.remotes.contains_key(&remote) && self.remotes.len() >= MAX_REMOTES {
            remote = Remote::Other;
        }
        let stats = self.remotes.entry(remote).or_insert_with(|| RemoteStats {
            snapshot: RemoteSnapshot {
                remote,
                counts: Counts::default(),
                handshake_us: Latency::default(),
                established: 0,
                close_wait: 0,
                time_wait: 0,
                abandoned_after: None,
                queues: crate::snapshot::Queues::default(),
                churn: crate::snapshot::Churn::default(),
            },
            first_trouble: None,
            last_trouble: None,
        });
        let before = trouble(&stats.snapshot.counts);
        count(&mut stats.snapshot.counts, line);
        if let Some(us) = line.handshake_us {
            let h = &mut stats.snapshot.handshake_us;
            h.count += 1;
            h.max = h.max.max(us);
        }
        if line.result.as_deref() == Some("abandoned") && !line.race_lost {
            stats.snapshot.abandoned_after = line.after_us.map(Duration::from_micros);
        }
        if let Some(at) = at.filter(|_| trouble(&stats.snapshot.counts) > before) {
            stats.first_trouble = Some(stats.first_trouble.map_or(at, |t| t.min(at)));
            stats.last_trouble = Some(stats.last_trouble.map_or(at, |t| t.max(at)));
        }
    }

    /// The server at `addr` when a connect to it was seen, else the peer's address.
    fn peer(&self, addr: Option<SocketAddr>) -> Option<Remote> {
        let addr = addr?;
        let server = Remote::Server(addr);
        Some(if self.remotes.contains_key(&server) {
            server
        } else {
            Remote::Client(addr.ip())
        })
    }

    /// This process as the snapshot the finding rules read.
    fn snapshot(&self, pid: u32) -> ProcessSnapshot {
        ProcessSnapshot {
            id: ProcessId {
                pid,
                start_ticks: 0,
            },
            comm: self.comm.clone(),
            exited: false,
            counts: self.counts,
            rates: Rates::default(),
            handshake_us: Latency::default(),
            lifetime_ms: Latency::default(),
            gauges: Gauges::default(),
            fds: None,
            syscall_errors: Vec::new(),
            remotes: self.remotes.values().map(|r| r.snapshot.clone()).collect(),
            connections: Vec::new(),
            connections_total: 0,
            listeners: Vec::new(),
            drops: Vec::new(),
            rst_reasons: Vec::new(),
            dns: Default::default(),
            cgroup: None,
            recent: Vec::new(),
        }
    }
}

/// A `connect` line: how it ended. The losers of dual-stack races are not
/// failures, as tracer counts them.
fn count_connect(c: &mut Counts, line: &Line) {
    c.connects += 1;
    match line.result.as_deref() {
        Some("ok") => c.connect_ok += 1,
        Some("refused") => c.connect_refused += 1,
        Some("timeout") => c.connect_timeout += 1,
        Some("abandoned") if !line.race_lost => c.connect_abandoned += 1,
        Some("abandoned") => {}
        _ => c.connect_failed_other += 1,
    }
}
