//! Names and value types of the maps and globals both sides refer to.

/// Ring buffer of [`crate::Event`] records.
pub const EVENTS: &str = "EVENTS";
/// LRU hash: `struct sock` address (u64) → [`Owner`].
pub const OWNERS: &str = "OWNERS";
/// LRU hash: listener key (u64, see [`listener_key`]: network namespace,
/// local port and one of [`LISTENER_SLOTS`] slots) → [`Listener`]. A port of
/// a namespace may have several listeners (specific addresses, members of a
/// `SO_REUSEPORT` group): accepted sockets inherit the owner of the one whose
/// accept queue they are in, else of the best match by local address.
pub const LISTENERS: &str = "LISTENERS";
/// LRU hash: [`SocketKey`] → [`Owner`], for connections that existed before
/// tracer started (filled from /proc at start-up). An event on a socket with no
/// owner by address finds it here by its addresses; the owner is then recorded
/// under the socket's address like any other.
pub const PREEXISTING: &str = "PREEXISTING";
/// Hash: tgid (u32) → 1, the processes traced when the pid filter is on.
pub const TRACED_PIDS: &str = "TRACED_PIDS";
/// Cgroup array: the `--cgroup` directories (file descriptors), whose
/// processes and those below them are traced; see [`GLOBAL_FILTER_CGROUPS`].
pub const CGROUPS: &str = "CGROUPS";
/// Per-CPU array of u64, indexed by [`Counter`].
pub const COUNTERS: &str = "COUNTERS";
/// Array of one u64: the number of entries in [`OWNERS`], kept by the programs.
pub const OWNER_COUNT: &str = "OWNER_COUNT";
/// LRU hash: socket cookie (u64) → [`Owner`], the sockets that connected
/// or sent to port 53 (recorded by the cgroup `connect`/`sendmsg` programs),
/// whose DNS messages the cgroup packet programs report.
pub const DNS_SOCKETS: &str = "DNS_SOCKETS";
/// Per-CPU hash: [`LostKey`] → u64, the events that did not fit in the ring
/// buffer, by what counts need of them. Userspace adds them to the counts,
/// so a full ring buffer loses detail (which remote, which connection),
/// never a count.
pub const LOST: &str = "LOST";

/// Global (u32): 1 when only [`TRACED_PIDS`] and the processes under
/// [`CGROUPS`] are traced.
pub const GLOBAL_FILTER_PIDS: &str = "FILTER_PIDS";
/// Global (u32): how many entries of [`CGROUPS`] are set.
pub const GLOBAL_FILTER_CGROUPS: &str = "FILTER_CGROUPS";
/// Global (u32): 1 when the DNS programs record only the sockets of
/// [`TRACED_PIDS`] (`--pid`, with or without `--cgroup`: they are then
/// attached to the cgroup v2 root). With `--cgroup` alone they are attached
/// to those cgroups and record every socket there.
pub const GLOBAL_DNS_BY_PID: &str = "DNS_BY_PID";
/// Global (u64): the capacity [`OWNERS`] was created with.
pub const GLOBAL_OWNERS_CAPACITY: &str = "OWNERS_MAX";
/// Load-time global (u32): 1 when the kernel's `tcp_retransmit_skb` tracepoint
/// has an `err` argument (6.18: it also fires for retransmits that failed,
/// which are not counted as retransmitted).
pub const GLOBAL_RETRANSMIT_HAS_ERR: &str = "RETRANSMIT_HAS_ERR";
/// Load-time global ([`crate::SockOffsets`]): where `struct sock` keeps what
/// the raw tracepoints and kprobes read, from the kernel's BTF.
pub const GLOBAL_SOCK_LAYOUT: &str = "SOCK_LAYOUT";
/// Load-time global ([`crate::NetnsOffsets`]): where a socket's network
/// namespace is, from the kernel's BTF.
pub const GLOBAL_NETNS_LAYOUT: &str = "NETNS_LAYOUT";
/// Load-time global ([`crate::SkbOffsets`]): what the drop program reads of
/// a `struct sk_buff`.
pub const GLOBAL_SKB_LAYOUT: &str = "SKB_LAYOUT";
/// Load-time global (u32): offset of `sk_err` in `struct sock`.
pub const GLOBAL_SK_ERR_OFFSET: &str = "SOCK_SK_ERR_OFFSET";
/// Byte offset of `sk_max_ack_backlog` (u32) in `struct sock`, or `u32::MAX`:
/// a listener's backlog, read when it starts listening.
pub const GLOBAL_SK_BACKLOG_OFFSET: &str = "SOCK_SK_BACKLOG_OFFSET";
/// Load-time global ([`crate::AcceptOffsets`]): where a listener's accept
/// queue ends, from the kernel's BTF.
pub const GLOBAL_ACCEPT_LAYOUT: &str = "ACCEPT_LAYOUT";
/// Load-time global (u32): 1 when `PREEXISTING` was seeded with any connection.
pub const GLOBAL_PREEXISTING_SEEDED: &str = "PREEXISTING_SEEDED";

/// Default capacity of [`OWNERS`]: room for well over 100k live sockets. When
/// it is full the least recently used owner is evicted, and counted
/// ([`Counter::OwnerEvicted`]).
pub const OWNERS_CAPACITY: u32 = 262_144;
/// Capacity of [`LISTENERS`].
pub const LISTENERS_CAPACITY: u32 = 16_384;
/// Capacity of [`PREEXISTING`].
pub const PREEXISTING_CAPACITY: u32 = 131_072;
/// Capacity of [`TRACED_PIDS`].
pub const TRACED_PIDS_CAPACITY: u32 = 4_096;
/// Capacity of [`CGROUPS`]: `--cgroup` given at most this often.
pub const CGROUPS_CAPACITY: u32 = 8;
/// Capacity of [`DNS_SOCKETS`]: sockets that talk DNS at once.
pub const DNS_SOCKETS_CAPACITY: u32 = 16_384;
/// Capacity of [`LOST`]: kinds of lost event at once (per process, kind,
/// states and errno), read and cleared by userspace each interval.
pub const LOST_CAPACITY: u32 = 8_192;

/// What the counts need of an event that did not fit in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LostKey {
    /// Owning process; 0 when unattributed.
    pub pid: u32,
    /// As in [`crate::Event`].
    pub errno: i32,
    /// An [`crate::EventKind`] value.
    pub kind: u8,
    pub old_state: u8,
    pub new_state: u8,
    /// The syscall of a syscall error, the reason of a drop (low byte).
    pub extra: u8,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), 4 + 4 + 4 × 1 bytes, no padding.
unsafe impl aya::Pod for LostKey {}
/// Default ring-buffer size in bytes (a power of two, multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 4 * 1024 * 1024;

/// Per-CPU counters kept by the programs. Values index [`COUNTERS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Records written to the ring buffer.
    Submitted = 0,
    /// Records lost because the ring buffer was full.
    Dropped = 1,
    /// Events skipped by the in-kernel pid filter.
    Filtered = 2,
    /// Events on sockets whose owner is unknown (sent with pid 0).
    Unattributed = 3,
    /// Owners recorded while [`OWNERS`] was full, each pushing out the owner
    /// of another socket, whose later events then go unattributed.
    OwnerEvicted = 4,
    /// Resets the kernel sent for segments that matched no socket (connects
    /// to a closed port): ownerless by nature, so not counted as unattributed.
    ClosedPort = 5,
}

impl Counter {
    pub const COUNT: u32 = 6;
    pub const ALL: [Self; Self::COUNT as usize] = [
        Self::Submitted,
        Self::Dropped,
        Self::Filtered,
        Self::Unattributed,
        Self::OwnerEvicted,
        Self::ClosedPort,
    ];
}

/// Who owns a socket: recorded when the socket is first seen in process context.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// tgid of the owning process.
    pub pid: u32,
    /// Reserved; keeps `start_ns` aligned without hidden padding.
    pub _pad: u32,
    /// `bpf_ktime_get_ns()` when the owner was recorded (connect start for clients).
    pub start_ns: u64,
    /// Command name of the owner.
    pub comm: [u8; 16],
}

#[cfg(feature = "user")]
// SAFETY: repr(C), Copy, no padding (explicit `_pad` fields).
unsafe impl aya::Pod for Owner {}

/// A connection by its addresses, as events carry them: local (`s`) and remote
/// (`d`) address in network order (IPv4 in the first four bytes), ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketKey {
    pub family: u16,
    pub sport: u16,
    pub dport: u16,
    pub _pad: u16,
    /// Inode number of the connection's network namespace (0 when the
    /// kernel's BTF does not say): the same addresses in two namespaces are
    /// two connections.
    pub netns: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[cfg(feature = "user")]
// SAFETY: repr(C), Copy, no padding (explicit `_pad` field; 44 bytes, align 4).
unsafe impl aya::Pod for SocketKey {}

/// How many listeners one port of one namespace can have in [`LISTENERS`];
/// beyond that the last slot is reused.
pub const LISTENER_SLOTS: u16 = 4;

/// The [`LISTENERS`] key of listener number `slot` (below [`LISTENER_SLOTS`])
/// on `port` in the network namespace whose inode number is `netns` (0 when
/// the kernel's BTF does not say).
#[inline(always)]
pub const fn listener_key(netns: u32, port: u16, slot: u16) -> u64 {
    ((netns as u64) << 32) | ((slot as u64) << 16) | port as u64
}

/// A listening socket and its owner ([`LISTENERS`] value).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Listener {
    pub owner: Owner,
    /// The listening `struct sock`; 0 for one found in /proc at start-up.
    pub sk: u64,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    pub _pad: [u16; 3],
    /// Local address, as in [`SocketKey`]; all zeros for any address.
    pub addr: [u8; 16],
}

#[cfg(feature = "user")]
// SAFETY: repr(C), Copy, no padding (explicit `_pad` field; 64 bytes).
unsafe impl aya::Pod for Listener {}
