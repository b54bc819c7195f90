//! What is accumulated per process and per remote endpoint, and how one event
//! changes the counts.

use std::{collections::VecDeque, net::SocketAddr, sync::Arc};

use rustc_hash::FxHashMap as HashMap;
use tracer_common::{
    EventKind,
    event::Syscall,
    tcp::{ESTABLISHED, SYN_RECV, SYN_SENT},
};

use super::{
    latency::{COARSE, Distribution, PRECISE},
    live::{Bytes, Phase},
};
use crate::{
    event::{ConnectResult, TraceEvent},
    proc::{Cgroup, FdUsage},
    snapshot::{ConnectionSnapshot, Counts, Gauges, ListenerSnapshot, Queues, Remote},
};

/// Handshakes longer than this are clamped (µs): a minute.
pub const HANDSHAKE_MAX_US: u64 = 60_000_000;
/// Connection lifetimes longer than this are clamped (ms): a day.
pub const LIFETIME_MAX_MS: u64 = 86_400_000;
/// Remote endpoints tracked per process; beyond it they fold into `Other`.
pub const REMOTES_MAX: usize = 4096;
/// Recent events kept per process.
pub const RECENT_MAX: usize = 32;
/// Samples of each remote's open connections kept, to see them grow.
pub const HISTORY_SAMPLES: usize = 8;
/// Samples of that history are at least this far apart (ns): the same
/// span whether /proc is read every second (live view) or every 5 s.
pub const HISTORY_SPACING_NS: u64 = 5_000_000_000;

/// Adds one event to `counts`; `state_at` is the socket's state when it happened.
pub fn count(counts: &mut Counts, ev: &TraceEvent, state_at: u8) {
    match ev.kind {
        EventKind::State => {
            if ev.old_state == tracer_common::tcp::CLOSE && ev.new_state == SYN_SENT {
                counts.connects += 1;
            }
            if ev.old_state == SYN_RECV && ev.new_state == ESTABLISHED {
                counts.accepted += 1;
            }
            match ev.connect_result() {
                Some(ConnectResult::Ok) => counts.connect_ok += 1,
                Some(ConnectResult::Refused) => counts.connect_refused += 1,
                Some(ConnectResult::Timeout) => counts.connect_timeout += 1,
                Some(ConnectResult::Abandoned) => counts.connect_abandoned += 1,
                Some(_) => counts.connect_failed_other += 1,
                None => {}
            }
        }
        EventKind::Retransmit => counts.retransmits += 1,
        EventKind::SynRetransmit => counts.syn_retransmits += 1,
        EventKind::SynAckRetransmit => counts.synack_retransmits += 1,
        EventKind::RstSent => {
            counts.rst_sent += 1;
            counts.rst_sent_by_phase[Phase::of_state(state_at) as usize] += 1;
        }
        EventKind::RstReceived => {
            counts.rst_received += 1;
            counts.rst_received_by_phase[Phase::of_state(state_at) as usize] += 1;
            if Phase::of_state(state_at) == Phase::Handshake {
                counts.rst_received_handshake += 1;
            }
        }
        // A failed connect's error (its handshake phase) is its result.
        EventKind::SocketError if Phase::of_state(state_at) != Phase::Handshake => {
            counts.socket_errors += 1;
            match ev.errno {
                libc::ECONNRESET => counts.socket_resets += 1,
                libc::ETIMEDOUT => counts.socket_timeouts += 1,
                _ => {}
            }
        }
        EventKind::SocketError => {}
        EventKind::Drop => {
            counts.drops += 1;
            if ev.reason == Some("NETFILTER_DROP") {
                counts.firewall_drops += 1;
            }
        }
        // Queries (state 0; answers are 1): how lookups end is counted
        // when they do (`Aggregator::observe_dns`).
        EventKind::Dns => {
            if ev.old_state == 0 {
                counts.dns_queries += 1;
            }
        }
        EventKind::SyscallError => {
            counts.syscall_errors += 1;
            if matches!(ev.errno, libc::EMFILE | libc::ENFILE) {
                counts.emfile_errors += 1;
            }
        }
    }
}

/// Numbers for one remote endpoint.
#[derive(Debug, Default)]
pub struct RemoteAgg {
    pub counts: Counts,
    /// Created at the first completed handshake.
    pub handshake_us: Option<Distribution>,
    pub established: u64,
    pub close_wait: u64,
    pub time_wait: u64,
    /// How long the last abandoned connect waited: about the application's
    /// dial deadline.
    pub abandoned_after_us: Option<u64>,
    /// From the latest /proc sample.
    pub queues: Queues,
    /// Lifetimes of its established connections that closed; created at
    /// the first.
    pub lifetime_ms: Option<Distribution>,
    /// Monotonic ns of the first and the latest connect to it (0: none yet).
    pub first_connect_ns: u64,
    pub last_connect_ns: u64,
    /// Its open connections (ESTABLISHED + CLOSE_WAIT) at recent samples:
    /// (monotonic ns, count), oldest first, at most [`HISTORY_SAMPLES`].
    pub open_history: VecDeque<(u64, u64)>,
}

impl RemoteAgg {
    /// A connect to it started at `mono_ns`.
    pub const fn connecting(&mut self, mono_ns: u64) {
        if self.first_connect_ns == 0 {
            self.first_connect_ns = mono_ns;
        }
        self.last_connect_ns = mono_ns;
    }

    pub fn record_lifetime(&mut self, ms: u64) {
        self.lifetime_ms
            .get_or_insert_with(|| Distribution::new(LIFETIME_MAX_MS, COARSE))
            .record(ms);
    }

    /// Adds its open connections at a /proc sample taken at `now_ns` to the
    /// history, when [`HISTORY_SPACING_NS`] has passed since the last one
    /// kept. A remote with none open and none before keeps no history.
    pub fn sample_open(&mut self, now_ns: u64) {
        let open = self.established + self.close_wait;
        if open == 0 && self.open_history.iter().all(|&(_, n)| n == 0) {
            self.open_history.clear();
            return;
        }
        if let Some(&(last, _)) = self.open_history.back()
            && now_ns.saturating_sub(last) < HISTORY_SPACING_NS
        {
            return;
        }
        if self.open_history.len() == HISTORY_SAMPLES {
            self.open_history.pop_front();
        }
        self.open_history.push_back((now_ns, open));
    }
}

/// A recent event in compact form (no allocation per event).
#[derive(Debug, Clone, Copy)]
pub struct Recent {
    pub mono_ns: u64,
    pub kind: EventKind,
    pub remote: Option<SocketAddr>,
    pub old_state: u8,
    pub new_state: u8,
    pub state_at: u8,
    pub errno: i32,
    pub value: u64,
}

/// Everything accumulated for one process.
#[derive(Debug)]
pub struct ProcessAgg {
    pub comm: String,
    pub exited: bool,
    pub counts: Counts,
    /// Counts at the previous snapshot, for rates.
    pub counts_before: Counts,
    pub handshake_us: Option<Distribution>,
    pub lifetime_ms: Option<Distribution>,
    pub syscall_errors: HashMap<(Syscall, i32), u64>,
    pub remotes: HashMap<Remote, RemoteAgg>,
    pub recent: VecDeque<Recent>,
    /// From the latest /proc sample.
    pub gauges: Gauges,
    pub fds: Option<FdUsage>,
    pub cgroup: Option<Arc<Cgroup>>,
    pub listen_ports: Vec<u16>,
    /// Backlogs of listeners seen starting to listen, by port.
    pub backlogs: HashMap<u16, u32>,
    /// From the latest /proc sample, with the overflows given to each.
    pub listeners: Vec<ListenerSnapshot>,
    /// Overflows given to each listener, by (network namespace, port).
    pub listener_overflows: HashMap<(u32, u16), u64>,
    /// Dropped packets by reason (`UNKNOWN` where the kernel names none).
    pub drops: HashMap<&'static str, u64>,
    /// RSTs sent by the kernel's reason (6.10 and later).
    pub rst_reasons: HashMap<&'static str, u64>,
    pub connections: Vec<ConnectionSnapshot>,
    pub connections_total: u64,
    /// Bytes of its connections that have closed, as of their last sample.
    pub bytes_closed: Bytes,
    /// Bytes of its open connections, at the latest sample.
    pub bytes_open: Bytes,
    /// Whether any of its connections had `tcp_info` (read through
    /// sock_diag): until then its bytes and RTTs are unknown, not zero.
    pub has_health: bool,
    /// Snapshot counter value when the process was last seen alive.
    pub last_alive: u64,
    pub dns: super::dns::DnsAgg,
}

impl ProcessAgg {
    pub fn new(comm: String) -> Self {
        Self {
            comm,
            exited: false,
            counts: Counts::default(),
            counts_before: Counts::default(),
            handshake_us: None,
            lifetime_ms: None,
            syscall_errors: HashMap::default(),
            remotes: HashMap::default(),
            recent: VecDeque::with_capacity(RECENT_MAX),
            gauges: Gauges::default(),
            fds: None,
            cgroup: None,
            listen_ports: Vec::new(),
            backlogs: HashMap::default(),
            listeners: Vec::new(),
            listener_overflows: HashMap::default(),
            drops: HashMap::default(),
            rst_reasons: HashMap::default(),
            connections: Vec::new(),
            connections_total: 0,
            bytes_closed: Bytes::default(),
            bytes_open: Bytes::default(),
            has_health: false,
            last_alive: 0,
            dns: super::dns::DnsAgg::default(),
        }
    }

    /// The entry for `remote`, or `Other` once [`REMOTES_MAX`] are tracked.
    pub fn remote(&mut self, remote: Remote) -> &mut RemoteAgg {
        let key = if self.remotes.len() >= REMOTES_MAX && !self.remotes.contains_key(&remote) {
            Remote::Other
        } else {
            remote
        };
        self.remotes.entry(key).or_default()
    }

    /// Which remote a connection from `local_port` to `peer` belongs to: a
    /// client of one of this process's listeners, or a server it connected to.
    pub fn remote_of(&self, local_port: u16, peer: SocketAddr) -> Remote {
        if self.listen_ports.contains(&local_port) {
            Remote::Client(peer.ip())
        } else {
            Remote::Server(peer)
        }
    }

    pub fn record_handshake(&mut self, remote: Remote, us: u64) {
        self.handshake_us
            .get_or_insert_with(|| Distribution::new(HANDSHAKE_MAX_US, PRECISE))
            .record(us);
        self.remote(remote)
            .handshake_us
            .get_or_insert_with(|| Distribution::new(HANDSHAKE_MAX_US, COARSE))
            .record(us);
    }

    pub fn record_lifetime(&mut self, ms: u64) {
        self.lifetime_ms
            .get_or_insert_with(|| Distribution::new(LIFETIME_MAX_MS, PRECISE))
            .record(ms);
    }

    /// Whether `ev`, a connect abandoned by this process, lost a dual-stack
    /// race: a connect to the same port on the other address family
    /// connected within [`super::RACE_WINDOW_NS`] before it.
    pub fn lost_race(&self, ev: &TraceEvent) -> bool {
        self.recent.iter().rev().any(|r| {
            r.kind == EventKind::State
                && r.old_state == SYN_SENT
                && r.new_state == ESTABLISHED
                && ev.mono_ns.saturating_sub(r.mono_ns) <= super::RACE_WINDOW_NS
                && r.remote.is_some_and(|won| {
                    won.port() == ev.dport && won.is_ipv4() != ev.daddr.is_ipv4()
                })
        })
    }

    pub fn push_recent(&mut self, recent: Recent) {
        if self.recent.len() == RECENT_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(recent);
    }
}
