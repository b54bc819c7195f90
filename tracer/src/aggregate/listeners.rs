//! Listeners and their accept queues from a /proc sample: each listener's
//! queue depth (the socket table's `rx_queue`) against the backlog seen when
//! it started listening, and the handshakes its network namespace dropped
//! for a full queue (`ListenOverflows`), given to the fullest listener
//! there. The kernel counts overflows per namespace, not per listener, so
//! with several listeners in one namespace that share is an estimate.

use std::net::SocketAddr;

use tracer_common::tcp::LISTEN;

use super::Aggregator;
use crate::{proc::Sample, snapshot::ListenerSnapshot};

impl Aggregator {
    /// Replaces every process's listeners with what `sample` says, and gives
    /// the overflows counted since the previous sample to listeners.
    pub(super) fn apply_listeners(&mut self, sample: &Sample) {
        for ps in &sample.processes {
            let Some(p) = self.processes.get_mut(&ps.id) else {
                continue;
            };
            p.listeners = ps
                .sockets
                .iter()
                .filter(|r| r.state == LISTEN)
                .map(|r| ListenerSnapshot {
                    local: SocketAddr::new(r.local, r.local_port),
                    netns: r.netns,
                    queue: r.rx_queue,
                    backlog: r.backlog.or_else(|| p.backlogs.get(&r.local_port).copied()),
                    overflows: p
                        .listener_overflows
                        .get(&(r.netns, r.local_port))
                        .copied()
                        .unwrap_or(0),
                })
                .collect();
        }
        for &(netns, count) in &sample.listen_overflows {
            let before = self.overflows_seen.insert(netns, count);
            // The first reading is the baseline: what overflowed before
            // tracing is not counted.
            let Some(before) = before else { continue };
            let new = count.saturating_sub(before);
            if new > 0 {
                self.give_overflows(netns, new);
            }
        }
        for p in self.processes.values_mut() {
            p.listeners.sort_by(|a, b| {
                b.fill()
                    .cmp(&a.fill())
                    .then(a.local.port().cmp(&b.local.port()))
            });
        }
    }

    /// Gives `new` overflows of namespace `netns` to its fullest listener.
    fn give_overflows(&mut self, netns: u32, new: u64) {
        let fullest = self
            .processes
            .iter()
            .flat_map(|(id, p)| p.listeners.iter().map(move |l| (*id, *l)))
            .filter(|(_, l)| l.netns == netns)
            .max_by_key(|(_, l)| (l.full(), l.fill()));
        let Some((id, listener)) = fullest else {
            return;
        };
        let Some(p) = self.processes.get_mut(&id) else {
            return;
        };
        p.counts.listen_overflows += new;
        *p.listener_overflows
            .entry((netns, listener.local.port()))
            .or_default() += new;
        if let Some(l) = p.listeners.iter_mut().find(|l| **l == listener) {
            l.overflows += new;
        }
    }
}
