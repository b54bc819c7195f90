//! The record every eBPF program writes to the ring buffer.

/// What happened. Values are part of the wire format: add, never renumber.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A TCP state transition (`old_state` → `new_state`).
    State = 1,
    /// A data segment was retransmitted.
    Retransmit = 2,
    /// A SYN was retransmitted (connect still in SYN_SENT).
    SynRetransmit = 3,
    /// A SYN-ACK was retransmitted by a listener.
    SynAckRetransmit = 4,
    /// The kernel sent a RST.
    RstSent = 5,
    /// A RST arrived on a socket.
    RstReceived = 6,
    /// The kernel reported an error on a socket (`errno`), e.g. a failed connect.
    SocketError = 7,
    /// A network syscall returned an error (`errno`, syscall in `value`).
    SyscallError = 8,
    /// The kernel dropped a TCP packet (`kfree_skb`): the drop reason's
    /// number in `value` (names come from the kernel's format file).
    Drop = 9,
    /// A DNS query or answer on a socket: a [`crate::dns::DnsEvent`] record.
    Dns = 10,
}

impl EventKind {
    /// Decodes a wire value; `None` for ids this build does not know.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::State,
            2 => Self::Retransmit,
            3 => Self::SynRetransmit,
            4 => Self::SynAckRetransmit,
            5 => Self::RstSent,
            6 => Self::RstReceived,
            7 => Self::SocketError,
            8 => Self::SyscallError,
            9 => Self::Drop,
            10 => Self::Dns,
            _ => return None,
        })
    }
}

/// Set in [`Event::flags`] when no owner was known for the socket: `pid`/`comm`
/// are zero rather than whatever task happened to be on the CPU.
pub const FLAG_UNATTRIBUTED: u32 = 1 << 0;
/// Set when the event concerns no local socket (e.g. a RST answering a segment
/// for a port nobody listens on).
pub const FLAG_NO_SOCKET: u32 = 1 << 1;

/// Set on a [`EventKind::Drop`] of a packet with no socket: the addresses
/// are the packet's (source in `saddr`/`sport`, destination in
/// `daddr`/`dport`), and userspace finds the owner by them. `pid` is 0.
pub const FLAG_BY_TUPLE: u32 = 1 << 2;

/// Syscalls reported by [`EventKind::SyscallError`] (in [`Event::value`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syscall {
    Socket = 1,
    Connect = 2,
    Accept = 3,
    Accept4 = 4,
    Bind = 5,
    Listen = 6,
}

impl Syscall {
    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            1 => Self::Socket,
            2 => Self::Connect,
            3 => Self::Accept,
            4 => Self::Accept4,
            5 => Self::Bind,
            6 => Self::Listen,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Connect => "connect",
            Self::Accept => "accept",
            Self::Accept4 => "accept4",
            Self::Bind => "bind",
            Self::Listen => "listen",
        }
    }
}

/// One ring-buffer record (104 bytes, no padding).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at the hook.
    pub ts_ns: u64,
    /// Kernel address of the `struct sock`; 0 when there is none.
    pub sk: u64,
    /// An [`EventKind`] value.
    pub kind: u32,
    /// Owning process (tgid); 0 when unattributed.
    pub pid: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// `AF_INET` or `AF_INET6`; 0 when unknown.
    pub family: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// TCP state before ([`crate::tcp`] numbering); for non-state events the socket's state.
    pub old_state: u8,
    /// TCP state after; equals `old_state` for non-state events.
    pub new_state: u8,
    /// Positive errno for error events, else 0.
    pub errno: i32,
    /// Kind-specific: handshake nanoseconds on SYN_SENT→ESTABLISHED, the syscall id
    /// for [`EventKind::SyscallError`], the rst reason where the kernel gives one.
    pub value: u64,
    /// Inode number of the socket's (or, for a packet without one, its
    /// device's) network namespace, as `/proc/PID/ns/net` names it; 0 when
    /// the kernel's BTF does not say. Connections with the same addresses in
    /// two namespaces are told apart by it.
    pub netns: u32,
    pub _pad: u32,
    /// Local address: IPv4 in the first 4 bytes, or IPv6.
    pub saddr: [u8; 16],
    /// Remote address, as `saddr`.
    pub daddr: [u8; 16],
    /// Owner's command name (NUL-padded).
    pub comm: [u8; 16],
}

impl Event {
    pub const SIZE: usize = core::mem::size_of::<Self>();

    pub const fn zeroed() -> Self {
        Self {
            ts_ns: 0,
            sk: 0,
            kind: 0,
            pid: 0,
            flags: 0,
            family: 0,
            sport: 0,
            dport: 0,
            old_state: 0,
            new_state: 0,
            errno: 0,
            value: 0,
            netns: 0,
            _pad: 0,
            saddr: [0; 16],
            daddr: [0; 16],
            comm: [0; 16],
        }
    }
}

// The layout is the wire format: fail the build if a field change adds padding.
const _: () = assert!(core::mem::size_of::<Event>() == 104);

#[cfg(feature = "user")]
// SAFETY: repr(C), Copy, every bit pattern valid, no padding (asserted above).
unsafe impl aya::Pod for Event {}
