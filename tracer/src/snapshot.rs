//! Immutable, timestamped views of everything tracer knows, per process. A
//! snapshot is the only thing sinks (CSV, live view) ever read.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime},
};

// Read from /proc and carried as read.
pub use crate::proc::{Cgroup, FdUsage, ProcessId};

/// One point-in-time view.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Wall-clock time the snapshot was taken.
    pub taken_at: SystemTime,
    /// Time since tracing started.
    pub uptime: Duration,
    pub kernel: KernelCounts,
    /// Events read per second since the previous snapshot.
    pub events_per_sec: f64,
    /// Every process with TCP sockets or events, ordered by pid.
    pub processes: Vec<ProcessSnapshot>,
    /// Events the kernel could not attribute to a process, by kind.
    pub unattributed: Counts,
    /// How often sockets and descriptors are read from /proc, when a large
    /// host makes that less often than snapshots are taken; gauges in
    /// between are from the last sample.
    pub sampled_every: Option<Duration>,
    /// Every process given with `--pid` has exited: nothing more will come.
    pub traced_exited: bool,
    /// Failed network syscalls are counted (`--syscall-errors`, and a hook
    /// for them on this kernel).
    pub syscall_errors_counted: bool,
    /// Local ports nobody listens on that were sent connection attempts
    /// (the kernel answered each with a reset), most first; port 0 holds
    /// the ports past those told apart.
    pub closed_ports: Vec<(u16, u64)>,
}

/// The kernel-side counters, summed over CPUs (filled by
/// `ebpf::counters`), plus what userspace read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    pub submitted: u64,
    /// Events lost because the ring buffer was full.
    pub dropped: u64,
    /// Events skipped by the in-kernel filter.
    pub filtered: u64,
    /// Events on sockets with no known owner (shown under pid 0).
    pub unattributed: u64,
    /// Events userspace read from the ring buffer.
    pub read: u64,
    /// Records userspace could not decode.
    pub decode_errors: u64,
    /// Sockets whose owner the kernel holds now (a gauge).
    pub owners: u64,
    /// Owners recorded while the owner map was full, each evicting another.
    pub owners_evicted: u64,
    /// Resets sent for segments that matched no socket (connects to closed
    /// ports): they belong to no process, and are not unattributed.
    pub closed_port_resets: u64,
}

impl KernelCounts {
    /// Every count under the name the JSON outputs give it (`stats` lines,
    /// `--summary-json`), in their order.
    pub const fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("read", self.read),
            ("submitted", self.submitted),
            ("dropped", self.dropped),
            ("filtered", self.filtered),
            ("unattributed", self.unattributed),
            ("owners", self.owners),
            ("owners_evicted", self.owners_evicted),
            ("decode_errors", self.decode_errors),
            ("closed_port_resets", self.closed_port_resets),
        ]
    }
}

/// Everything known about one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSnapshot {
    pub id: ProcessId,
    pub comm: String,
    /// Its cgroup (container, pod, unit), read once; `None` until a /proc
    /// sample has read it, or when it could not be.
    pub cgroup: Option<Arc<Cgroup>>,
    /// The process has exited; its numbers are the last ones seen.
    pub exited: bool,
    /// Cumulative since tracing started.
    pub counts: Counts,
    /// Per second, since the previous snapshot.
    pub rates: Rates,
    /// Handshake latency of completed connects, in microseconds.
    pub handshake_us: Latency,
    /// Lifetime of connections that closed while traced, in milliseconds.
    pub lifetime_ms: Latency,
    /// Sockets by state at snapshot time, read from the kernel's socket table.
    pub gauges: Gauges,
    /// File-descriptor use at snapshot time; `None` once the process is gone.
    pub fds: Option<FdUsage>,
    /// Failed network syscalls by syscall and errno, most frequent first.
    pub syscall_errors: Vec<SyscallErrors>,
    /// Per remote endpoint, most active first.
    pub remotes: Vec<RemoteSnapshot>,
    /// Live connections, most retransmits then oldest first (bounded, see
    /// [`ProcessSnapshot::connections_total`]).
    pub connections: Vec<ConnectionSnapshot>,
    /// Number of live connections, including those not listed.
    pub connections_total: u64,
    /// Its listening sockets and their accept queues, fullest first.
    pub listeners: Vec<ListenerSnapshot>,
    /// Dropped packets by the kernel's reason, most first.
    pub drops: Vec<(&'static str, u64)>,
    /// RSTs sent by the kernel's reason, most first (6.10 and later).
    pub rst_reasons: Vec<(&'static str, u64)>,
    /// The most recent events of this process, oldest first.
    pub recent: Vec<RecentEvent>,
    /// Its DNS lookups.
    pub dns: DnsSnapshot,
}

/// A process's DNS lookups (counts are in [`Counts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsSnapshot {
    /// Time to the answer of answered lookups, in microseconds.
    pub latency_us: Latency,
    /// By queried name, most failures and timeouts first, then most
    /// lookups; names past the bound are counted under one `other` entry.
    pub names: Vec<DnsNameSnapshot>,
    /// By server, most timeouts first.
    pub servers: Vec<DnsServerSnapshot>,
}

/// The lookups of one name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsNameSnapshot {
    pub name: String,
    pub lookups: u64,
    /// Answers with an error code, by its name (`NXDOMAIN`), most first.
    pub failures: Vec<(String, u64)>,
    pub timeouts: u64,
}

impl DnsNameSnapshot {
    pub fn failed(&self) -> u64 {
        self.failures.iter().map(|(_, n)| n).sum()
    }
}

/// The lookups sent to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsServerSnapshot {
    pub server: SocketAddr,
    pub lookups: u64,
    pub failures: u64,
    pub timeouts: u64,
}

/// One listening socket of a process, at snapshot time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSnapshot {
    pub local: std::net::SocketAddr,
    /// The inode of its network namespace.
    pub netns: u32,
    /// Connections waiting in its accept queue (`ss`'s Recv-Q).
    pub queue: u32,
    /// The queue's capacity: the `listen()` backlog as the kernel capped it
    /// (`ss`'s Send-Q). `None` for a listener that started before tracer.
    pub backlog: Option<u32>,
    /// Handshakes dropped because an accept queue was full, counted by its
    /// network namespace while tracing and given to this listener, the
    /// fullest there when they were counted: an estimate where several
    /// listeners share a namespace.
    pub overflows: u64,
}

impl ListenerSnapshot {
    /// The kernel drops new handshakes once the queue holds more than the backlog.
    pub fn full(&self) -> bool {
        self.backlog.is_some_and(|b| self.queue > b)
    }

    /// How full, in thousandths of the backlog (the queue alone when the
    /// backlog is unknown), for ranking.
    pub fn fill(&self) -> u64 {
        match self.backlog {
            Some(b) => u64::from(self.queue) * 1000 / u64::from(b.max(1)),
            None => u64::from(self.queue),
        }
    }
}

/// Event counts; all cumulative in a [`ProcessSnapshot`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connects started (CLOSE→SYN_SENT).
    pub connects: u64,
    pub connect_ok: u64,
    pub connect_refused: u64,
    pub connect_timeout: u64,
    /// Unreachable, or any other kernel error.
    pub connect_failed_other: u64,
    /// Given up by the application before the kernel had an answer (its
    /// deadline, a cancelled context, a close): SYN_SENT→CLOSE, no error.
    pub connect_abandoned: u64,
    /// Passive handshakes completed on this process's listeners.
    pub accepted: u64,
    pub retransmits: u64,
    pub syn_retransmits: u64,
    pub synack_retransmits: u64,
    pub rst_sent: u64,
    pub rst_received: u64,
    /// RSTs received while the connection was still in its handshake.
    pub rst_received_handshake: u64,
    /// RSTs sent and received, by the phase of the connection they hit
    /// (indexed as `aggregate::Phase::ALL`).
    pub rst_sent_by_phase: [u64; 4],
    pub rst_received_by_phase: [u64; 4],
    /// Connections that closed while traced.
    pub closed: u64,
    /// Failed network syscalls, any errno.
    pub syscall_errors: u64,
    /// Syscalls that failed with EMFILE or ENFILE (out of file descriptors).
    pub emfile_errors: u64,
    /// Errors the kernel reported on connections past their handshake
    /// (a failed connect's error is its result instead).
    pub socket_errors: u64,
    /// ... of them ECONNRESET: reset by the peer while established or closing.
    pub socket_resets: u64,
    /// ... of them ETIMEDOUT: the kernel gave up retransmitting.
    pub socket_timeouts: u64,
    /// Handshakes dropped on its listeners' full accept queues (estimated:
    /// see [`ListenerSnapshot::overflows`]).
    pub listen_overflows: u64,
    /// TCP packets the kernel dropped (`kfree_skb`), any reason.
    pub drops: u64,
    /// ... of them dropped by a firewall rule (`NETFILTER_DROP`).
    pub firewall_drops: u64,
    /// DNS queries sent (a query sent again while waiting is one).
    pub dns_queries: u64,
    /// DNS lookups answered with an error code (NXDOMAIN, SERVFAIL …).
    pub dns_failures: u64,
    /// DNS queries unanswered after `dns::lookups::TIMEOUT`.
    pub dns_timeouts: u64,
}

impl Counts {
    pub const fn connect_failures(&self) -> u64 {
        self.connect_refused
            + self.connect_timeout
            + self.connect_failed_other
            + self.connect_abandoned
    }
}

/// Rates per second over the last snapshot interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub connects: f64,
    pub connect_failures: f64,
    pub retransmits: f64,
    pub rsts: f64,
}

/// A latency distribution summary; all zero when `count` is 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    /// Sum of the values (for means and Prometheus histograms).
    pub sum: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    /// (upper bound, count) buckets on a log scale, for charts.
    pub buckets: Vec<(u64, u64)>,
}

impl Latency {
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Sockets of a process by TCP state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    pub established: u64,
    pub syn_sent: u64,
    pub syn_recv: u64,
    /// FIN_WAIT1, FIN_WAIT2, CLOSING, LAST_ACK.
    pub closing: u64,
    pub close_wait: u64,
    /// TIME_WAIT sockets left by this process's connections.
    pub time_wait: u64,
    pub listen: u64,
    /// Age of the oldest CLOSE_WAIT socket (a lower bound for sockets that
    /// were already in CLOSE_WAIT when tracing started).
    pub oldest_close_wait: Option<Duration>,
    /// Smoothed RTT of its open connections, µs: median and 99th
    /// percentile. `None` without `tcp_info` (sock_diag).
    pub srtt_p50_us: Option<u32>,
    pub srtt_p99_us: Option<u32>,
    /// Data bytes its connections sent and received since tracing started
    /// (closed connections as of their last sample, plus those open).
    /// `None` without `tcp_info` (sock_diag).
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
}

/// How often one syscall failed with one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallErrors {
    pub syscall: &'static str,
    pub errno: i32,
    pub count: u64,
}

/// The far end of a process's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Remote {
    /// A server this process connected to.
    Server(SocketAddr),
    /// A client that connected to this process's listeners (its ephemeral
    /// port is left out so all its connections count together).
    Client(IpAddr),
    /// Remotes beyond the per-process bound, folded together.
    Other,
}

/// Numbers for one remote endpoint of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSnapshot {
    pub remote: Remote,
    pub counts: Counts,
    pub handshake_us: Latency,
    pub established: u64,
    pub close_wait: u64,
    pub time_wait: u64,
    /// How long the last abandoned connect to it waited: about the
    /// application's dial deadline.
    pub abandoned_after: Option<std::time::Duration>,
    /// Its connections' queues at snapshot time.
    pub queues: Queues,
    /// How connections to it come and go.
    pub churn: Churn,
}

/// What waits in a remote's connections, from the socket table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queues {
    /// The most bytes received and not read on one connection (Recv-Q).
    pub recv_max: u32,
    /// The most bytes not yet sent or acknowledged on one connection (Send-Q).
    pub send_max: u32,
    /// Connections whose peer closed its receive window (the kernel is
    /// probing it).
    pub zero_window: u32,
}

/// How connections to one remote come and go: many short ones to one
/// server are a connection per request instead of a reused one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Churn {
    /// Lifetimes of its established connections that closed while traced,
    /// in milliseconds.
    pub lifetime_ms: Latency,
    /// From the first connect to it to the last: over how long its
    /// `counts.connects` were made.
    pub connecting_for: Duration,
    /// Its connections open (ESTABLISHED and CLOSE_WAIT) at recent /proc
    /// samples, oldest first, with each sample's time since tracing started
    /// (bounded: `aggregate::HISTORY_SAMPLES`, at least
    /// `aggregate::HISTORY_SPACING` apart).
    pub open_history: Vec<(Duration, u64)>,
}

impl Churn {
    /// New connections per second while connects to it were being made,
    /// over at least a second (a burst does not make a rate).
    pub fn connects_per_sec(&self, connects: u64) -> f64 {
        connects as f64 / self.connecting_for.as_secs_f64().max(1.0)
    }
}

/// One live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSnapshot {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Kernel TCP state number.
    pub state: u8,
    /// Time since the connection was first seen.
    pub age: Duration,
    /// The connection predates tracing, so `age` is a lower bound.
    pub preexisting: bool,
    pub retransmits: u64,
    /// Bytes received and not read (Recv-Q).
    pub recv_q: u32,
    /// Bytes not yet sent or acknowledged (Send-Q).
    pub send_q: u32,
    /// Its `tcp_info` (RTT, bytes); `None` where the socket
    /// table was read from /proc.
    pub health: Option<crate::proc::sock_diag::Health>,
}

/// A recent event, kept for the live view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    pub at: SystemTime,
    /// The `event` name used by the JSON output (e.g. `rst_received`).
    pub event: &'static str,
    pub remote: Option<SocketAddr>,
    /// Short detail, e.g. `refused`, `ECONNREFUSED`, `SYN_SENT→ESTABLISHED 1.2ms`.
    pub detail: String,
}
