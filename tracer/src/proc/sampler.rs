//! Samples /proc at each interval: who is alive (pid + start time), their
//! file descriptors and limit, and their TCP sockets by state from the socket
//! table of each network namespace. A sample of a busy host takes a while, so
//! it runs off the event loop (see `trace`).

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use tracer_common::tcp::TIME_WAIT;

use super::sockets::{self, SocketRow};
use crate::{
    aggregate::{ProcessSample, Sample},
    snapshot::{FdUsage, ProcessId},
};

/// Which processes to sample.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Exactly these (the `--pid` set).
    Pids(Vec<u32>),
    /// Every process that has TCP sockets.
    All,
}

/// Reads /proc.
#[derive(Debug)]
pub struct Sampler {
    scope: Scope,
    proc_root: PathBuf,
}

impl Sampler {
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            proc_root: PathBuf::from("/proc"),
        }
    }

    /// Reads everything about the processes in scope plus `known` (processes
    /// seen in events). `now_ns` stamps the sample (monotonic).
    pub fn sample(&self, known: &[ProcessId], now_ns: u64) -> Sample {
        let mut candidates: Vec<u32> = match &self.scope {
            Scope::Pids(pids) => pids.clone(),
            Scope::All => sockets::all_pids(),
        };
        candidates.extend(known.iter().map(|id| id.pid));
        candidates.sort_unstable();
        candidates.dedup();

        // Pass 1: identity and descriptors of every live candidate.
        let mut found: Vec<(ProcessId, Fds)> = Vec::new();
        for pid in candidates {
            let Some(start_ticks) = start_ticks_at(&self.proc_root, pid) else {
                continue;
            };
            let Some(fds) = self.fds(pid) else {
                continue;
            };
            found.push((ProcessId { pid, start_ticks }, fds));
        }
        let known_pids: HashSet<u32> = known.iter().map(|id| id.pid).collect();

        // Pass 2: each network namespace's socket table, once, keeping only
        // rows owned by a candidate and TIME_WAIT rows.
        let wanted: HashMap<u64, usize> = found
            .iter()
            .enumerate()
            .flat_map(|(i, (_, f))| f.socket_inodes.iter().map(move |&inode| (inode, i)))
            .collect();
        let mut rows: Vec<Vec<SocketRow>> = vec![Vec::new(); found.len()];
        let mut time_wait = Vec::new();
        let mut seen_netns = HashSet::new();
        for (id, fds) in &found {
            if fds.socket_inodes.is_empty() {
                continue;
            }
            let netns = std::fs::read_link(self.proc_root.join(format!("{}/ns/net", id.pid))).ok();
            if !seen_netns.insert(netns) {
                continue;
            }
            let dir = self.proc_root.join(format!("{}/net", id.pid));
            sockets::for_each_row(&dir, |row| {
                if row.state == TIME_WAIT {
                    time_wait.push(row);
                } else if let Some(&i) = wanted.get(&row.inode) {
                    rows[i].push(row);
                }
            });
        }

        let processes = found
            .into_iter()
            .zip(rows)
            .filter(|((id, _), rows)| {
                matches!(self.scope, Scope::Pids(_))
                    || !rows.is_empty()
                    || known_pids.contains(&id.pid)
            })
            .map(|((id, fds), sockets)| ProcessSample {
                id,
                comm: sockets::comm(id.pid),
                fds: Some(FdUsage {
                    open: fds.open,
                    limit: self.fd_limit(id.pid),
                    sockets: fds.socket_inodes.len() as u64,
                }),
                sockets,
            })
            .collect();
        Sample {
            at_ns: now_ns,
            processes,
            time_wait,
        }
    }

    fn fds(&self, pid: u32) -> Option<Fds> {
        let dir = std::fs::read_dir(self.proc_root.join(format!("{pid}/fd"))).ok()?;
        let mut fds = Fds::default();
        for entry in dir.flatten() {
            fds.open += 1;
            if let Some(inode) = std::fs::read_link(entry.path())
                .ok()
                .and_then(|t| sockets::socket_inode(&t.to_string_lossy()))
            {
                fds.socket_inodes.push(inode);
            }
        }
        Some(fds)
    }

    fn fd_limit(&self, pid: u32) -> Option<u64> {
        let text = std::fs::read_to_string(self.proc_root.join(format!("{pid}/limits"))).ok()?;
        parse_nofile_soft(&text)
    }
}

/// Remembers each pid's identity so events can be attributed to a process
/// (pid + start time) without reading /proc for every event.
#[derive(Debug, Default)]
pub struct Identities {
    /// Looked up for every event, so with the cheaper hash.
    map: rustc_hash::FxHashMap<u32, ProcessId>,
}

impl Identities {
    /// The process that `pid` names now (or named when it was last seen).
    pub fn identify(&mut self, pid: u32) -> ProcessId {
        *self.map.entry(pid).or_insert_with(|| ProcessId {
            pid,
            start_ticks: start_ticks_at(Path::new("/proc"), pid).unwrap_or(0),
        })
    }

    /// Learns from a sample who is alive. A process alive at the previous
    /// sample (`known`) stays identifiable for one more interval: the kernel
    /// may still report events for its sockets.
    pub fn refresh(&mut self, sample: &Sample, known: &[ProcessId]) {
        let alive: HashSet<u32> = sample.processes.iter().map(|p| p.id.pid).collect();
        let known: HashSet<u32> = known.iter().map(|id| id.pid).collect();
        self.map
            .retain(|pid, _| alive.contains(pid) || known.contains(pid));
        for p in &sample.processes {
            self.map.insert(p.id.pid, p.id);
        }
    }
}

/// Start time in clock ticks (field 22 of `<proc>/<pid>/stat`).
fn start_ticks_at(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_root.join(format!("{pid}/stat"))).ok()?;
    parse_start_ticks(&stat)
}

#[derive(Debug, Default)]
struct Fds {
    open: u64,
    socket_inodes: Vec<u64>,
}

/// Field 22 of a `/proc/<pid>/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing `)`.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; start time is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The soft "Max open files" of `/proc/<pid>/limits`; `None` when unlimited.
pub fn parse_nofile_soft(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = "1234 (we ird) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000000 100";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn soft_nofile_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile_soft(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_soft(unlimited), None);
    }

    #[test]
    fn own_process_is_sampled_with_its_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let sampler = Sampler::new(Scope::Pids(vec![me]));
        let sample = sampler.sample(&[], 1);
        assert_eq!(sample.processes.len(), 1);
        let p = &sample.processes[0];
        let mut ids = Identities::default();
        assert_eq!(p.id, ids.identify(me));
        ids.refresh(&sample, &[]);
        assert_eq!(p.id, ids.identify(me));
        assert!(p.id.start_ticks > 0);
        let fds = p.fds.unwrap();
        assert!(fds.open >= fds.sockets && fds.sockets >= 1);
        assert!(p.sockets.iter().any(|r| r.local_port == port));
    }

    #[test]
    fn a_gone_pid_is_left_out() {
        let sampler = Sampler::new(Scope::Pids(vec![u32::MAX - 1]));
        assert!(sampler.sample(&[], 1).processes.is_empty());
    }
}
