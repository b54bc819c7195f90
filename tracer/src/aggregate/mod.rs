//! The aggregator: pure (no I/O). Fed decoded events and /proc samples (the
//! types of [`crate::proc`]), it keeps per-process, per-remote and
//! per-connection numbers and produces immutable [`Snapshot`]s.

mod dns;
mod gauges;
mod latency;
mod listeners;
mod live;
mod process;
mod view;

use std::{collections::BTreeMap, net::SocketAddr, time::SystemTime};

use tracer_common::{
    EventKind,
    tcp::{CLOSE, CLOSE_WAIT, ESTABLISHED, LISTEN, SYN_RECV, SYN_SENT},
};

pub use self::{dns::OTHER as DNS_OTHER, live::Phase, process::HISTORY_SAMPLES};
use self::{
    live::{Conn, Live, Tuple},
    process::{ProcessAgg, Recent, count},
};
use crate::{
    dns::{DnsMessage, Lookup, Lookups, Outcome},
    event::{ConnectResult, TraceEvent},
    proc::ProcessId,
    snapshot::{Counts, KernelCounts, Remote, Snapshot},
};

/// What the aggregator made of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The socket's state when the event happened (gives RSTs their phase).
    pub state_at: u8,
    /// The owning process, if the kernel or the socket table knew it.
    pub owner: Option<ProcessId>,
    /// For a connect that ended without a connection: how long it waited.
    pub waited: Option<ConnectEnd>,
}

/// How a connect that did not connect ended: how long it waited, how many
/// SYNs it sent, and whether it was the loser of a dual-stack race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectEnd {
    pub after_us: u64,
    pub syns: u32,
    /// Abandoned just after a sibling connect of the same process to the
    /// same port on the other address family succeeded (Happy Eyeballs,
    /// RFC 8305): not a failure, and not counted as one.
    pub race_lost: bool,
}

/// How soon after its sibling connected an abandoned connect counts as the
/// loser of the race.
pub const RACE_WINDOW_NS: u64 = 500_000_000;

/// Exited processes kept (with their last numbers) before the oldest go.
pub const EXITED_MAX: usize = 1024;

/// Per-process state of the whole trace.
#[derive(Debug)]
pub struct Aggregator {
    live: Live,
    processes: BTreeMap<ProcessId, ProcessAgg>,
    unattributed: Counts,
    /// Monotonic ns of tracing start.
    started_ns: u64,
    /// Sockets not learned from events (most predate tracing) → when first
    /// seen, which process holds them and their bytes at the last sample.
    first_seen: rustc_hash::FxHashMap<Tuple, (u64, ProcessId, live::Bytes)>,
    /// Snapshots taken so far.
    snapshots: u64,
    /// Monotonic ns and events read at the previous snapshot.
    previous: Option<(u64, u64)>,
    /// Each network namespace's `ListenOverflows` at the previous sample.
    overflows_seen: rustc_hash::FxHashMap<u32, u64>,
    /// Resets sent for segments to ports nobody listens on, by that port
    /// (bounded: see [`CLOSED_PORTS_MAX`]).
    closed_ports: rustc_hash::FxHashMap<u16, u64>,
    /// DNS queries waiting for their answers.
    lookups: Lookups,
    /// Events carry their socket's network namespace (the kernel programs
    /// can read it); when not, every connection is taken to be in namespace
    /// 0, /proc's sockets too.
    netns_known: bool,
}

/// Closed ports told apart; resets to further ones count under port 0.
pub const CLOSED_PORTS_MAX: usize = 1024;
/// Closed ports a snapshot lists, most reset first.
pub const CLOSED_PORTS_LISTED: usize = 5;

impl Aggregator {
    pub fn new(started_ns: u64) -> Self {
        Self {
            live: Live::default(),
            processes: BTreeMap::new(),
            unattributed: Counts::default(),
            started_ns,
            first_seen: rustc_hash::FxHashMap::default(),
            snapshots: 0,
            previous: None,
            overflows_seen: rustc_hash::FxHashMap::default(),
            closed_ports: rustc_hash::FxHashMap::default(),
            lookups: Lookups::default(),
            netns_known: true,
        }
    }

    /// Whether events carry their socket's network namespace (see
    /// [`Self::netns_known`]'s field).
    pub fn set_netns_known(&mut self, known: bool) {
        self.netns_known = known;
    }

    /// Takes in a DNS message: a query is counted and waits for its answer;
    /// an answer returns the lookup it ends, if its query was seen.
    pub fn observe_dns(&mut self, owner: Option<ProcessId>, m: DnsMessage) -> Option<Lookup> {
        if m.answer {
            let lookup = self.lookups.answer(&m)?;
            self.record_lookup(&lookup);
            return Some(lookup);
        }
        let ev = m.ev;
        if self.lookups.query(m, owner) {
            let counts = match owner {
                Some(id) => {
                    let process = self
                        .processes
                        .entry(id)
                        .or_insert_with(|| ProcessAgg::new(ev.comm.to_string()));
                    &mut process.counts
                }
                None => &mut self.unattributed,
            };
            count(counts, &ev, 0);
        }
        None
    }

    /// The DNS queries unanswered for `dns::lookups::TIMEOUT` at
    /// `now_mono_ns`: counted, and returned as timed-out lookups.
    pub fn expire_dns(&mut self, now_mono_ns: u64) -> Vec<Lookup> {
        let expired = self.lookups.expire(now_mono_ns);
        for lookup in &expired {
            self.record_lookup(lookup);
        }
        expired
    }

    fn record_lookup(&mut self, lookup: &Lookup) {
        let process = lookup.owner.and_then(|id| self.processes.get_mut(&id));
        let counts = match process {
            Some(p) => {
                p.dns.record(lookup);
                &mut p.counts
            }
            None => &mut self.unattributed,
        };
        match lookup.outcome {
            Outcome::TimedOut => counts.dns_timeouts += 1,
            Outcome::Answered { rcode, .. } if rcode != 0 => counts.dns_failures += 1,
            Outcome::Answered { .. } => {}
        }
    }

    /// Processes that were alive at the last sample or seen in events since.
    pub fn alive(&self) -> Vec<ProcessId> {
        self.processes
            .iter()
            .filter(|(_, p)| !p.exited)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Adds one event. `owner` is the owning process (`None` when the kernel
    /// could not attribute it: then the socket table sampled from /proc may
    /// name the holder of a socket that predates tracing).
    pub fn observe(&mut self, owner: Option<ProcessId>, ev: &TraceEvent) -> Observed {
        let oriented;
        let ev = if ev.by_tuple {
            oriented = self.orient(ev);
            &oriented
        } else {
            ev
        };
        let state_at = if ev.kind == EventKind::State {
            ev.old_state
        } else {
            self.live.state_at(ev.sk, ev.old_state)
        };
        let owner = owner.or_else(|| self.holder(ev));
        let result = ev.connect_result();
        let abandoned = result == Some(ConnectResult::Abandoned);
        let waited = result
            .filter(|r| *r != ConnectResult::Ok)
            .and_then(|_| self.live.get(ev.sk))
            .map(|c| ConnectEnd {
                after_us: ev.mono_ns.saturating_sub(c.opened_ns) / 1000,
                syns: c.retransmits.saturating_add(1),
                race_lost: false,
            });
        let mut observed = Observed {
            state_at,
            owner,
            waited,
        };
        if ev.no_socket && ev.kind == EventKind::RstSent {
            let port = if self.closed_ports.len() < CLOSED_PORTS_MAX
                || self.closed_ports.contains_key(&ev.sport)
            {
                ev.sport
            } else {
                0
            };
            *self.closed_ports.entry(port).or_default() += 1;
        }
        let Some(id) = owner else {
            count(&mut self.unattributed, ev, state_at);
            if ev.kind == EventKind::State && ev.new_state == CLOSE {
                self.live.close(ev.sk, ev.old_state, ev.mono_ns);
            }
            return observed;
        };
        let process = self
            .processes
            .entry(id)
            .or_insert_with(|| ProcessAgg::new(ev.comm.to_string()));
        process.exited = false;
        let peer = SocketAddr::new(ev.daddr, ev.dport);
        // A listener (or a socket not connected yet) has no peer: port 0.
        let has_peer = ev.family != 0 && !ev.no_socket && ev.dport != 0;
        let remote = match self.live.get(ev.sk) {
            Some(c) => c.remote(),
            // A passive connection is keyed by its client, an active one by its server.
            None if ev.new_state == SYN_RECV || ev.old_state == SYN_RECV => {
                Remote::Client(ev.daddr)
            }
            None if ev.new_state == SYN_SENT => Remote::Server(peer),
            None => process.remote_of(ev.sport, peer),
        };
        let race_lost = abandoned && process.lost_race(ev);
        if race_lost {
            if let Some(end) = observed.waited.as_mut() {
                end.race_lost = true;
            }
        } else {
            count(&mut process.counts, ev, state_at);
            if has_peer {
                let r = process.remote(remote);
                count(&mut r.counts, ev, state_at);
                if abandoned {
                    r.abandoned_after_us = observed.waited.map(|w| w.after_us);
                }
                if ev.kind == EventKind::State && ev.old_state == CLOSE && ev.new_state == SYN_SENT
                {
                    r.connecting(ev.mono_ns);
                }
            }
        }
        process.push_recent(Recent {
            mono_ns: ev.mono_ns,
            kind: ev.kind,
            remote: has_peer.then_some(peer),
            old_state: ev.old_state,
            new_state: ev.new_state,
            state_at,
            errno: ev.errno,
            value: ev.value,
        });
        match ev.kind {
            EventKind::State => self.observe_state(id, remote, ev),
            EventKind::Retransmit | EventKind::SynAckRetransmit => {
                self.live.retransmitted(ev.sk);
            }
            // A retransmitted SYN tells a connect's local port.
            EventKind::SynRetransmit => {
                self.live.retransmitted(ev.sk);
                let tuple = Tuple::new(ev.netns, ev.saddr, ev.sport, ev.daddr, ev.dport);
                self.live.learn_port(ev.sk, tuple);
            }
            EventKind::SyscallError => {
                if let Some(call) = ev.syscall() {
                    *process.syscall_errors.entry((call, ev.errno)).or_default() += 1;
                }
            }
            EventKind::RstSent => {
                if let Some(reason) = ev.reason {
                    *process.rst_reasons.entry(reason).or_default() += 1;
                }
            }
            EventKind::Drop => {
                *process
                    .drops
                    .entry(ev.reason.unwrap_or("UNKNOWN"))
                    .or_default() += 1;
            }
            _ => {}
        }
        observed
    }

    /// The process holding the (pre-existing) socket an event is about.
    fn holder(&self, ev: &TraceEvent) -> Option<ProcessId> {
        if ev.family == 0 || ev.no_socket {
            return None;
        }
        let tuple = Tuple::new(ev.netns, ev.saddr, ev.sport, ev.daddr, ev.dport);
        // A connect's first state change comes before the kernel picks its
        // local port: a dropped SYN of one whose port is still unknown goes
        // to the process connecting from that address to that server, in
        // that namespace (none when two processes are).
        let connecting = Tuple::new(ev.netns, ev.saddr, 0, ev.daddr, ev.dport);
        let live = ev
            .by_tuple
            .then(|| {
                self.live
                    .by_tuple(&tuple)
                    .map(|c| c.owner)
                    .or_else(|| self.live.connecting_owner(&connecting))
            })
            .flatten();
        live.or_else(|| self.first_seen.get(&tuple).map(|&(_, id, _)| id))
    }

    /// A drop found by the packet's addresses, turned to local→remote: the
    /// connection they name, seen from either end (an arriving packet's
    /// destination is the local end). Left as it is when neither is known.
    fn orient(&self, ev: &TraceEvent) -> TraceEvent {
        let arriving = Tuple::new(ev.netns, ev.daddr, ev.dport, ev.saddr, ev.sport);
        let known = |t: &Tuple| self.live.by_tuple(t).is_some() || self.first_seen.contains_key(t);
        if known(&arriving) {
            TraceEvent {
                saddr: ev.daddr,
                sport: ev.dport,
                daddr: ev.saddr,
                dport: ev.sport,
                ..*ev
            }
        } else {
            *ev
        }
    }

    /// Counts `n` events the ring buffer had no room for (see
    /// [`TraceEvent::lost`]): the process's counts stay whole, while its
    /// remotes and connections miss them.
    pub fn observe_lost(&mut self, owner: Option<ProcessId>, ev: &TraceEvent, n: u64) {
        let counts = match owner {
            Some(id) => {
                let process = self
                    .processes
                    .entry(id)
                    .or_insert_with(|| ProcessAgg::new(String::new()));
                if let (EventKind::SyscallError, Some(call)) = (ev.kind, ev.syscall()) {
                    *process.syscall_errors.entry((call, ev.errno)).or_default() += n;
                }
                &mut process.counts
            }
            None => &mut self.unattributed,
        };
        for _ in 0..n {
            count(counts, ev, ev.old_state);
        }
    }

    /// The command name of a known process.
    pub fn comm(&self, id: ProcessId) -> Option<&str> {
        self.processes.get(&id).map(|p| p.comm.as_str())
    }

    fn observe_state(&mut self, id: ProcessId, remote: Remote, ev: &TraceEvent) {
        let Some(process) = self.processes.get_mut(&id) else {
            return;
        };
        if let Some(us) = ev.handshake_us() {
            process.record_handshake(remote, us);
        }
        if ev.new_state == CLOSE {
            if let Some(conn) = self.live.close(ev.sk, ev.old_state, ev.mono_ns) {
                process.counts.closed += 1;
                process.bytes_closed += conn.bytes;
                if conn.established {
                    let ms = ev.mono_ns.saturating_sub(conn.opened_ns) / 1_000_000;
                    process.record_lifetime(ms);
                    process.remote(remote).record_lifetime(ms);
                }
            }
            return;
        }
        if ev.new_state == LISTEN {
            if !process.listen_ports.contains(&ev.sport) {
                process.listen_ports.push(ev.sport);
            }
            // The kernel read the backlog when the socket started listening.
            if let Ok(backlog) = u32::try_from(ev.value)
                && backlog > 0
            {
                process.backlogs.insert(ev.sport, backlog);
            }
            return;
        }
        let tuple = Tuple::new(ev.netns, ev.saddr, ev.sport, ev.daddr, ev.dport);
        let close_wait_ns = if ev.new_state == CLOSE_WAIT {
            ev.mono_ns
        } else {
            0
        };
        let conn = match self.live.get(ev.sk) {
            // The owner is the event's: an accepted connection first given to
            // the likeliest listener moves to the one whose queue it is in.
            Some(c) => Conn {
                owner: id,
                tuple,
                state: ev.new_state,
                established: c.established || ev.new_state == ESTABLISHED,
                close_wait_ns: if close_wait_ns != 0 {
                    close_wait_ns
                } else {
                    c.close_wait_ns
                },
                ..*c
            },
            None => Conn {
                owner: id,
                tuple,
                opened_ns: ev.mono_ns,
                close_wait_ns,
                retransmits: 0,
                state: ev.new_state,
                established: ev.new_state == ESTABLISHED,
                passive: matches!(remote, Remote::Client(_)),
                bytes: live::Bytes::default(),
            },
        };
        self.live.upsert(ev.sk, conn);
    }

    /// Takes an immutable snapshot at wall time `at` (monotonic `now_ns`).
    pub fn snapshot(&mut self, at: SystemTime, now_ns: u64, kernel: KernelCounts) -> Snapshot {
        let interval_s = self
            .previous
            .map_or(now_ns.saturating_sub(self.started_ns), |(t, _)| {
                now_ns.saturating_sub(t)
            }) as f64
            / 1e9;
        let events_before = self.previous.map_or(0, |(_, n)| n);
        let events_per_sec = if interval_s > 0.0 {
            kernel.read.saturating_sub(events_before) as f64 / interval_s
        } else {
            0.0
        };
        self.previous = Some((now_ns, kernel.read));
        self.snapshots += 1;
        let started_ns = self.started_ns;
        let processes = self
            .processes
            .iter_mut()
            .map(|(id, p)| view::process(*id, p, interval_s, (started_ns, now_ns), at))
            .collect();
        Snapshot {
            taken_at: at,
            uptime: std::time::Duration::from_nanos(now_ns.saturating_sub(self.started_ns)),
            kernel,
            events_per_sec,
            processes,
            unattributed: self.unattributed,
            sampled_every: None,
            // The session says otherwise when it knows.
            traced_exited: false,
            syscall_errors_counted: true,
            closed_ports: {
                let mut ports: Vec<(u16, u64)> =
                    self.closed_ports.iter().map(|(&p, &n)| (p, n)).collect();
                // Port 0, the ports past those told apart, last.
                ports.sort_by(|a, b| {
                    (a.0 == 0)
                        .cmp(&(b.0 == 0))
                        .then(b.1.cmp(&a.1))
                        .then(a.0.cmp(&b.0))
                });
                ports.truncate(CLOSED_PORTS_LISTED);
                ports
            },
        }
    }
}

#[cfg(test)]
mod tests;
