//! Samples /proc at each interval: who is alive (pid + start time), their
//! file descriptors and limit, their cgroup (read once per process), and
//! their TCP sockets by state from the socket
//! table of each network namespace. A sample of a busy host takes a while, so
//! it runs off the event loop (see `trace::schedule`).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use tracer_common::tcp::TIME_WAIT;

use super::{
    cgroup::{self, Cgroup},
    process::{self, FdUsage, Fds, ProcessId},
    sockets::{SocketRow, Source, Tables},
};

/// What /proc said at one moment.
#[derive(Debug, Default)]
pub struct Sample {
    /// Monotonic ns when it was read.
    pub at_ns: u64,
    /// Every process asked about that is still alive.
    pub processes: Vec<ProcessSample>,
    /// TIME_WAIT sockets (they belong to no process any more).
    pub time_wait: Vec<SocketRow>,
    /// `ListenOverflows` of each network namespace a sampled listener is
    /// in: (namespace inode, count since boot).
    pub listen_overflows: Vec<(u32, u64)>,
}

/// One live process.
#[derive(Debug)]
pub struct ProcessSample {
    pub id: ProcessId,
    pub comm: String,
    pub fds: Option<FdUsage>,
    /// Its cgroup: container, pod or unit; `None` when it could not be read.
    pub cgroup: Option<Arc<Cgroup>>,
    /// Its TCP sockets, from the socket table of its network namespace.
    pub sockets: Vec<SocketRow>,
}

/// Which processes to sample.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Exactly these (the `--pid` set).
    Pids(Vec<u32>),
    /// The processes in these cgroup directories and below (`--cgroup`),
    /// and these pids.
    Cgroups {
        pids: Vec<u32>,
        cgroups: Vec<std::path::PathBuf>,
    },
    /// Every process that has TCP sockets.
    All,
}

/// Reads /proc.
#[derive(Debug)]
pub struct Sampler {
    scope: Scope,
    /// The cgroup of each process sampled last time: a process's cgroup is
    /// read once (runtimes move a process before it runs the program).
    cgroups: HashMap<ProcessId, Option<Arc<Cgroup>>>,
    /// The socket tables, and the sock_diag sockets kept between samples.
    tables: Tables,
}

impl Sampler {
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            cgroups: HashMap::new(),
            tables: Tables::default(),
        }
    }

    /// Reads the socket tables from `source` (sock_diag by default).
    pub fn reading(mut self, source: Source) -> Self {
        self.tables = Tables::new(source);
        self
    }

    /// Reads everything about the processes in scope plus `known` (processes
    /// seen in events). `now_ns` stamps the sample (monotonic).
    pub fn sample(&mut self, known: &[ProcessId], now_ns: u64) -> Sample {
        let mut candidates: Vec<u32> = match &self.scope {
            Scope::Pids(pids) => pids.clone(),
            Scope::Cgroups { pids, cgroups } => {
                let mut all = pids.clone();
                for dir in cgroups {
                    all.extend(super::cgroup_filter::processes_under(dir));
                }
                all
            }
            Scope::All => process::all_pids(),
        };
        candidates.extend(known.iter().map(|id| id.pid));
        candidates.sort_unstable();
        candidates.dedup();

        // Pass 1: identity and descriptors of every live candidate.
        let mut found: Vec<(ProcessId, Fds)> = Vec::new();
        for pid in candidates {
            let Some(start_ticks) = process::start_ticks(pid) else {
                continue;
            };
            let Some(fds) = process::fds(pid) else {
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
        let holders = found
            .iter()
            .filter(|(_, fds)| !fds.socket_inodes.is_empty())
            .map(|(id, _)| id.pid);
        self.tables.walk(holders, &wanted, |row, holder| {
            if row.state == TIME_WAIT {
                time_wait.push(row);
            } else if let Some(i) = holder {
                // Room for each of its sockets at once: a busy server's
                // hundred thousand rows, grown by doubling, would leave up
                // to half of them as slack at the peak.
                if rows[i].capacity() == 0 {
                    rows[i].reserve_exact(found[i].1.socket_inodes.len());
                }
                rows[i].push(row);
            }
        });

        // Each namespace's accept-queue overflows, read where a listener is.
        let mut listen_overflows: Vec<(u32, u64)> = Vec::new();
        for ((id, _), rows) in found.iter().zip(&rows) {
            for row in rows
                .iter()
                .filter(|r| r.state == tracer_common::tcp::LISTEN)
            {
                if listen_overflows.iter().any(|(ns, _)| *ns == row.netns) {
                    continue;
                }
                if let Some(n) = super::netstat::listen_overflows(id.pid) {
                    listen_overflows.push((row.netns, n));
                }
            }
        }

        let mut cgroups = HashMap::with_capacity(self.cgroups.len());
        let processes: Vec<ProcessSample> = found
            .into_iter()
            .zip(rows)
            .filter(|((id, _), rows)| {
                matches!(self.scope, Scope::Pids(_))
                    || !rows.is_empty()
                    || known_pids.contains(&id.pid)
            })
            .map(|((id, fds), sockets)| {
                let cgroup = self
                    .cgroups
                    .remove(&id)
                    .unwrap_or_else(|| cgroup::read(id.pid).map(Arc::new));
                cgroups.insert(id, cgroup.clone());
                ProcessSample {
                    id,
                    comm: process::comm(id.pid),
                    fds: Some(FdUsage {
                        open: fds.open,
                        limit: process::fd_limit(id.pid),
                        sockets: fds.socket_inodes.len() as u64,
                    }),
                    cgroup,
                    sockets,
                }
            })
            .collect();
        // The gone are forgotten.
        self.cgroups = cgroups;
        Sample {
            at_ns: now_ns,
            processes,
            time_wait,
            listen_overflows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_sampled_with_its_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let mut sampler = Sampler::new(Scope::Pids(vec![me]));
        let sample = sampler.sample(&[], 1);
        assert_eq!(sample.processes.len(), 1);
        let p = &sample.processes[0];
        assert_eq!(p.id.pid, me);
        assert!(p.id.start_ticks > 0);
        let fds = p.fds.unwrap();
        assert!(fds.open >= fds.sockets && fds.sockets >= 1);
        assert!(p.sockets.iter().any(|r| r.local_port == port));
        let cgroup = p.cgroup.clone().expect("own cgroup");
        let again = sampler.sample(&[], 2);
        assert!(
            Arc::ptr_eq(&cgroup, again.processes[0].cgroup.as_ref().unwrap()),
            "read once"
        );
    }

    #[test]
    fn a_gone_pid_is_left_out() {
        let mut sampler = Sampler::new(Scope::Pids(vec![u32::MAX - 1]));
        assert!(sampler.sample(&[], 1).processes.is_empty());
    }
}
