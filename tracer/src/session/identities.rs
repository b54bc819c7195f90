//! Which process an event's pid names. The kernel reports a pid; the
//! aggregator keys everything by [`ProcessId`] (pid + start time), so a pid
//! reused by a new process is counted apart. This map is looked up for every
//! event read, so it answers from memory: it learns identities (and cgroups)
//! from each /proc sample and reads `/proc/<pid>/stat` and
//! `/proc/<pid>/cgroup` only for a pid it has not met.

use std::{collections::HashSet, sync::Arc};

use crate::proc::{Cgroup, ProcessId, Sample, cgroup, process};

/// pid → the process it names, refreshed at every /proc sample.
#[derive(Debug, Default)]
pub struct Identities {
    /// Looked up for every event, so with the cheaper hash.
    map: rustc_hash::FxHashMap<u32, Known>,
}

/// What is known of a pid.
#[derive(Debug)]
struct Known {
    id: ProcessId,
    cgroup: Option<Arc<Cgroup>>,
}

impl Identities {
    /// The process that `pid` names now (or named when it was last seen).
    pub fn identify(&mut self, pid: u32) -> ProcessId {
        self.map
            .entry(pid)
            .or_insert_with(|| Known {
                id: ProcessId {
                    pid,
                    start_ticks: process::start_ticks(pid).unwrap_or(0),
                },
                cgroup: cgroup::read(pid).map(Arc::new),
            })
            .id
    }

    /// The cgroup of a process identified before, if it could be read.
    pub fn cgroup(&self, id: ProcessId) -> Option<&Cgroup> {
        self.map
            .get(&id.pid)
            .filter(|known| known.id == id)
            .and_then(|known| known.cgroup.as_deref())
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
            self.map.insert(
                p.id.pid,
                Known {
                    id: p.id,
                    cgroup: p.cgroup.clone(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::sampler::{Sampler, Scope};

    #[test]
    fn a_sampled_process_is_identified_as_sampled() {
        let me = std::process::id();
        let sample = Sampler::new(Scope::Pids(vec![me])).sample(&[], 1);
        let sampled = sample.processes[0].id;
        let mut ids = Identities::default();
        assert_eq!(ids.identify(me), sampled, "read from /proc on first sight");
        assert_eq!(
            ids.cgroup(sampled),
            sample.processes[0].cgroup.as_deref(),
            "the cgroup too"
        );
        ids.refresh(&sample, &[]);
        assert_eq!(ids.identify(me), sampled);
        assert!(ids.cgroup(sampled).is_some());
        let other = ProcessId {
            start_ticks: sampled.start_ticks + 1,
            ..sampled
        };
        assert_eq!(ids.cgroup(other), None, "a reused pid is another process");
    }

    #[test]
    fn the_gone_are_forgotten_one_sample_late() {
        let gone = ProcessId {
            pid: u32::MAX - 1,
            start_ticks: 7,
        };
        let mut ids = Identities::default();
        ids.refresh(
            &Sample {
                processes: vec![crate::proc::ProcessSample {
                    id: gone,
                    comm: String::new(),
                    fds: None,
                    cgroup: None,
                    sockets: Vec::new(),
                }],
                ..Sample::default()
            },
            &[],
        );
        // Missing from the next sample, but known at the previous one.
        ids.refresh(&Sample::default(), &[gone]);
        assert_eq!(ids.identify(gone.pid), gone);
        ids.refresh(&Sample::default(), &[]);
        assert_eq!(ids.identify(gone.pid).start_ticks, 0, "forgotten");
    }
}
