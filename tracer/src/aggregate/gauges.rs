//! Gauges from a /proc sample: sockets by state (the kernel's own socket
//! table, so they agree with `ss`), TIME_WAIT left behind, FD use, and which
//! processes have exited.

use std::{collections::BTreeMap, time::Duration};

use rustc_hash::FxHashMap as HashMap;

use tracer_common::tcp::{
    CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LAST_ACK, LISTEN, SYN_RECV, SYN_SENT,
};

use super::{
    Aggregator, EXITED_MAX,
    live::{Bytes, Conn, Tuple},
    process::ProcessAgg,
};
use crate::{
    proc::{ProcessId, ProcessSample, Sample, sockets::SocketRow},
    snapshot::{ConnectionSnapshot, Gauges, Queues},
};

/// The socket table's timer of a connection probing a closed window.
const ZERO_WINDOW_PROBE: u8 = 4;

/// Live connections listed per process in a snapshot (all are counted).
pub const CONNECTIONS_LISTED: usize = 256;

/// Socket rows applied between two pauses (a few milliseconds of work).
pub const ROWS_PER_PAUSE: usize = 4096;

impl Aggregator {
    /// Replaces every gauge with what `sample` says. A process that was alive
    /// and is missing from the sample has exited: it keeps its counts.
    #[cfg(test)]
    pub fn apply(&mut self, sample: &Sample) {
        self.apply_pausing(sample, |_| {});
    }

    /// [`Aggregator::apply`], calling `pause` every [`ROWS_PER_PAUSE`] socket
    /// rows so that events keep being taken in while a sample of a busy host
    /// (hundreds of thousands of rows) is applied.
    pub fn apply_pausing(&mut self, sample: &Sample, mut pause: impl FnMut(&mut Self)) {
        let now = sample.at_ns;
        let mut first_seen =
            HashMap::with_capacity_and_hasher(self.first_seen.len(), Default::default());
        // Listeners by (network namespace, port): two pods' servers on one
        // port are two listeners.
        let mut listeners: HashMap<(u32, u16), ProcessId> = HashMap::default();
        // A row's connection, in its namespace as events name it.
        let netns_known = self.netns_known;
        let tuple_of = |row: &SocketRow| {
            let netns = if netns_known { row.netns } else { 0 };
            Tuple::new(
                netns,
                row.local,
                row.local_port,
                row.remote,
                row.remote_port,
            )
        };
        for ps in &sample.processes {
            let p = process_of(&mut self.processes, ps);
            p.exited = false;
            p.last_alive = self.snapshots;
            if !ps.comm.is_empty() {
                p.comm.clone_from(&ps.comm);
            }
            p.fds = ps.fds;
            if ps.cgroup.is_some() {
                p.cgroup.clone_from(&ps.cgroup);
            }
            p.gauges = Gauges::default();
            p.listen_ports = ps
                .sockets
                .iter()
                .filter(|r| r.state == LISTEN)
                .map(|r| r.local_port)
                .collect();
            for r in ps.sockets.iter().filter(|r| r.state == LISTEN) {
                listeners.insert((r.netns, r.local_port), ps.id);
            }
            for r in p.remotes.values_mut() {
                (r.established, r.close_wait, r.time_wait) = (0, 0, 0);
                r.queues = Queues::default();
            }
            p.connections.clear();
            p.connections_total = 0;
            let mut oldest_close_wait: Option<u64> = None;
            let mut srtts: Vec<u32> = Vec::new();
            let mut bytes_open = Bytes::default();
            for rows in ps.sockets.chunks(ROWS_PER_PAUSE) {
                pause(self);
                let p = process_of(&mut self.processes, ps);
                for row in rows.iter().filter(|r| r.state != LISTEN) {
                    let tuple = tuple_of(row);
                    let bytes = row.health.map(|h| Bytes {
                        sent: h.bytes_sent,
                        received: h.bytes_received,
                    });
                    if let Some(h) = row.health {
                        p.has_health = true;
                        bytes_open += bytes.unwrap_or_default();
                        if matches!(row.state, ESTABLISHED | CLOSE_WAIT) {
                            srtts.push(h.srtt_us);
                        }
                    }
                    if let (Some(bytes), Some(c)) = (bytes, self.live.by_tuple_mut(&tuple))
                        && c.owner == ps.id
                    {
                        c.bytes = bytes;
                    }
                    let conn = self.live.by_tuple(&tuple).filter(|c| c.owner == ps.id);
                    let seen = self.first_seen.get(&tuple).map_or(now, |s| s.0);
                    if conn.is_none() {
                        first_seen.insert(tuple, (seen, ps.id, bytes.unwrap_or_default()));
                    }
                    let opened = conn.map_or(seen, |c| c.opened_ns);
                    let remote = conn
                        .map_or_else(|| p.remote_of(row.local_port, tuple.remote()), Conn::remote);
                    let g = &mut p.gauges;
                    match row.state {
                        ESTABLISHED => g.established += 1,
                        SYN_SENT => g.syn_sent += 1,
                        SYN_RECV => g.syn_recv += 1,
                        CLOSE_WAIT => {
                            g.close_wait += 1;
                            let since = conn
                                .map(|c| c.close_wait_ns)
                                .filter(|&ns| ns != 0)
                                .unwrap_or(seen);
                            oldest_close_wait =
                                Some(oldest_close_wait.map_or(since, |o| o.min(since)));
                        }
                        FIN_WAIT1 | FIN_WAIT2 | CLOSING | LAST_ACK => g.closing += 1,
                        _ => {}
                    }
                    if matches!(row.state, ESTABLISHED | CLOSE_WAIT) {
                        let r = p.remote(remote);
                        let q = &mut r.queues;
                        q.recv_max = q.recv_max.max(row.rx_queue);
                        q.send_max = q.send_max.max(row.tx_queue);
                        q.zero_window += u32::from(row.timer == ZERO_WINDOW_PROBE);
                        if row.state == ESTABLISHED {
                            r.established += 1;
                        } else {
                            r.close_wait += 1;
                        }
                    }
                    p.connections_total += 1;
                    if p.connections.len() == 2 * CONNECTIONS_LISTED {
                        keep_listed(&mut p.connections, CONNECTIONS_LISTED);
                    }
                    p.connections.push(ConnectionSnapshot {
                        local: tuple.local(),
                        remote: tuple.remote(),
                        state: row.state,
                        age: Duration::from_nanos(now.saturating_sub(opened)),
                        preexisting: conn.is_none(),
                        retransmits: conn.map_or(0, |c| u64::from(c.retransmits)),
                        recv_q: row.rx_queue,
                        send_q: row.tx_queue,
                        health: row.health,
                    });
                }
            }
            let p = process_of(&mut self.processes, ps);
            for r in p.remotes.values_mut() {
                r.sample_open(now);
            }
            p.gauges.listen = p.listen_ports.len() as u64;
            p.gauges.oldest_close_wait =
                oldest_close_wait.map(|since| Duration::from_nanos(now.saturating_sub(since)));
            (p.gauges.srtt_p50_us, p.gauges.srtt_p99_us) = percentiles(&mut srtts);
            p.bytes_open = bytes_open;
            keep_listed(&mut p.connections, CONNECTIONS_LISTED);
            p.connections.sort_by(listing_order);
            p.connections.shrink_to_fit();
        }
        // Connections that predate tracing and closed since the last sample
        // leave their bytes with their holder.
        for (tuple, (_, owner, bytes)) in &self.first_seen {
            if !first_seen.contains_key(tuple)
                && self.live.by_tuple(tuple).is_none()
                && let Some(p) = self.processes.get_mut(owner)
            {
                p.bytes_closed += *bytes;
            }
        }
        self.first_seen = first_seen;
        self.apply_listeners(sample);

        // An exited process's TIME_WAIT sockets are counted afresh in each
        // sample too (a live one's gauges were reset above).
        let alive = self.snapshots;
        for p in self
            .processes
            .values_mut()
            .filter(|p| p.last_alive != alive)
        {
            p.gauges.time_wait = 0;
            for r in p.remotes.values_mut() {
                r.time_wait = 0;
            }
        }
        for rows in sample.time_wait.chunks(ROWS_PER_PAUSE) {
            pause(self);
            for row in rows {
                let tuple = tuple_of(row);
                let owner = self
                    .live
                    .closed_owner(&tuple)
                    .or_else(|| listeners.get(&(row.netns, row.local_port)).copied());
                if let Some(p) = owner.and_then(|id| self.processes.get_mut(&id)) {
                    p.gauges.time_wait += 1;
                    let remote = p.remote_of(row.local_port, tuple.remote());
                    p.remote(remote).time_wait += 1;
                }
            }
        }

        for p in self.processes.values_mut() {
            if p.last_alive != alive {
                p.exited = true;
                p.fds = None;
                let time_wait = p.gauges.time_wait;
                p.gauges = Gauges {
                    time_wait,
                    ..Gauges::default()
                };
                p.connections.clear();
                p.connections_total = 0;
                p.bytes_open = Bytes::default();
            }
            if p.has_health {
                let mut bytes = p.bytes_closed;
                bytes += p.bytes_open;
                p.gauges.bytes_sent = Some(bytes.sent);
                p.gauges.bytes_received = Some(bytes.received);
            }
        }
        self.forget_old_exited();
    }

    /// Keeps at most [`EXITED_MAX`] exited processes, dropping those gone longest.
    fn forget_old_exited(&mut self) {
        let mut exited: Vec<(u64, ProcessId)> = self
            .processes
            .iter()
            .filter(|(_, p)| p.exited)
            .map(|(id, p)| (p.last_alive, *id))
            .collect();
        if exited.len() <= EXITED_MAX {
            return;
        }
        exited.sort_unstable();
        for (_, id) in &exited[..exited.len() - EXITED_MAX] {
            self.processes.remove(id);
        }
    }
}

/// The median and 99th percentile of `values` (reordered), by nearest
/// rank; `None` for none.
fn percentiles(values: &mut [u32]) -> (Option<u32>, Option<u32>) {
    if values.is_empty() {
        return (None, None);
    }
    let mut at = |q: usize| {
        let i = (values.len() * q).div_ceil(100).max(1) - 1;
        *values.select_nth_unstable(i).1
    };
    (Some(at(50)), Some(at(99)))
}

/// The numbers of a sampled process, new ones starting from zero.
fn process_of<'a>(
    processes: &'a mut BTreeMap<ProcessId, ProcessAgg>,
    ps: &ProcessSample,
) -> &'a mut ProcessAgg {
    processes
        .entry(ps.id)
        .or_insert_with(|| ProcessAgg::new(ps.comm.clone()))
}

/// Listing order: most retransmits first, then oldest.
pub(super) fn listing_order(a: &ConnectionSnapshot, b: &ConnectionSnapshot) -> std::cmp::Ordering {
    b.retransmits.cmp(&a.retransmits).then(b.age.cmp(&a.age))
}

/// Keeps the `n` connections that come first in [`listing_order`], unsorted.
/// Called as the list fills, so a process with 100k connections never holds
/// more than `2 * n` of them here.
pub(super) fn keep_listed(connections: &mut Vec<ConnectionSnapshot>, n: usize) {
    if connections.len() > n {
        connections.select_nth_unstable_by(n, listing_order);
        connections.truncate(n);
    }
}
