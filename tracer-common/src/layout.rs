//! Field offsets handed to the eBPF programs as load-time globals, because
//! layouts differ between kernels: tracepoint records (from
//! `/sys/kernel/tracing/events/<category>/<name>/format`) and `struct sock`
//! (from the kernel's BTF, for the kprobes).

/// Marks a field the running kernel's tracepoint does not have.
pub const ABSENT: u16 = u16::MAX;

/// `addr_mode`: `saddr`/`daddr` are 4-byte IPv4 arrays next to `saddr_v6`/`daddr_v6`.
pub const ADDR_SPLIT: u16 = 0;
/// `addr_mode`: `saddr`/`daddr` are `sockaddr_in6`-sized buffers holding a
/// `sockaddr_in` or `sockaddr_in6` (e.g. `tcp:tcp_send_reset` since 6.x).
pub const ADDR_SOCKADDR: u16 = 1;

/// Byte offsets of the fields the programs read, relative to the tracepoint
/// record start; [`ABSENT`] where the kernel lacks the field.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldOffsets {
    pub skaddr: u16,
    pub oldstate: u16,
    pub newstate: u16,
    pub state: u16,
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    pub protocol: u16,
    pub saddr: u16,
    pub daddr: u16,
    pub saddr_v6: u16,
    pub daddr_v6: u16,
    pub error: u16,
    pub reason: u16,
    pub ret: u16,
    pub addr_mode: u16,
}

impl FieldOffsets {
    pub const NONE: Self = Self {
        skaddr: ABSENT,
        oldstate: ABSENT,
        newstate: ABSENT,
        state: ABSENT,
        sport: ABSENT,
        dport: ABSENT,
        family: ABSENT,
        protocol: ABSENT,
        saddr: ABSENT,
        daddr: ABSENT,
        saddr_v6: ABSENT,
        daddr_v6: ABSENT,
        error: ABSENT,
        reason: ABSENT,
        ret: ABSENT,
        addr_mode: ADDR_SPLIT,
    };
}

impl Default for FieldOffsets {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u16 fields, no padding.
unsafe impl aya::Pod for FieldOffsets {}

/// Byte offsets of the `struct sock` members the kprobes read, relative to the
/// start of the socket; [`ABSENT`] where unknown. The tuple members live in
/// `struct sock_common`, the socket's first member.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOffsets {
    /// `skc_state` (u8): the TCP state.
    pub state: u16,
    /// `skc_family` (u16).
    pub family: u16,
    /// `sk_protocol` (u16).
    pub protocol: u16,
    /// `skc_num` (u16, host byte order): the local port.
    pub sport: u16,
    /// `skc_dport` (u16, network byte order): the remote port.
    pub dport: u16,
    /// `skc_rcv_saddr` (4 bytes): the local IPv4 address.
    pub saddr: u16,
    /// `skc_daddr` (4 bytes): the remote IPv4 address.
    pub daddr: u16,
    /// `skc_v6_rcv_saddr` (16 bytes).
    pub saddr_v6: u16,
    /// `skc_v6_daddr` (16 bytes).
    pub daddr_v6: u16,
    /// `inet_sock.inet_sport` (u16, network byte order): the local port, still
    /// set after the move to CLOSE has cleared `skc_num` (a `struct inet_sock`
    /// starts with its `struct sock`, so this is an offset into the socket).
    pub inet_sport: u16,
}

impl SockOffsets {
    pub const NONE: Self = Self {
        state: ABSENT,
        family: ABSENT,
        protocol: ABSENT,
        sport: ABSENT,
        dport: ABSENT,
        saddr: ABSENT,
        daddr: ABSENT,
        saddr_v6: ABSENT,
        daddr_v6: ABSENT,
        inet_sport: ABSENT,
    };
}

impl Default for SockOffsets {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u16 fields, no padding.
unsafe impl aya::Pod for SockOffsets {}

/// Where `struct sk_buff` keeps what the drop program reads, from BTF
/// (bytes from the start of the `sk_buff`), or [`ABSENT`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkbOffsets {
    /// `sk` (a `struct sock *`): the socket the packet belongs to, if any.
    pub sk: u16,
    /// `head` (an `unsigned char *`): the start of the buffer.
    pub head: u16,
    /// `network_header` (u16): the IP header's offset from `head`.
    pub network_header: u16,
    /// `protocol` (`__be16`): the packet's ethertype.
    pub protocol: u16,
    /// 1 when the `kfree_skb` tracepoint's fourth argument is `rx_sk`, the
    /// receiving socket (6.12 and later); reading it elsewhere would make
    /// the program fail to load.
    pub has_rx_sk: u16,
    /// The number of the drop reason `NO_SOCKET` on this kernel (it moved
    /// between releases), from the tracepoint's format file; [`ABSENT`]
    /// when unknown.
    pub no_socket: u16,
    /// `dev` (a `struct net_device *`): the device the packet came in on or
    /// was to leave by; [`ABSENT`] when unknown.
    pub dev: u16,
    /// `net_device.nd_net` (a `possible_net_t`, which holds the `struct net *`),
    /// for a packet's network namespace; [`ABSENT`] when unknown.
    pub dev_net: u16,
}

impl SkbOffsets {
    pub const NONE: Self = Self {
        sk: ABSENT,
        head: ABSENT,
        network_header: ABSENT,
        protocol: ABSENT,
        has_rx_sk: 0,
        no_socket: ABSENT,
        dev: ABSENT,
        dev_net: ABSENT,
    };
}

impl Default for SkbOffsets {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u16 fields, no padding.
unsafe impl aya::Pod for SkbOffsets {}

/// Where the kernel keeps a socket's network namespace, from its BTF: the
/// namespace's inode number (as `/proc/PID/ns/net` shows it) is read at
/// `*(sk + sk_net) + net_inum`. Listeners are keyed by it, so that servers on
/// one port in different namespaces are told apart.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetnsOffsets {
    /// `sock_common.skc_net` (a `struct net *`), from the start of `struct sock`.
    pub sk_net: u32,
    /// `net.ns.inum` (u32), from the start of `struct net`.
    pub net_inum: u32,
}

impl NetnsOffsets {
    /// Unknown: every socket is taken to be in namespace 0.
    pub const NONE: Self = Self {
        sk_net: u32::MAX,
        net_inum: u32::MAX,
    };
}

impl Default for NetnsOffsets {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u32 fields, no padding.
unsafe impl aya::Pod for NetnsOffsets {}

/// Where the kernel keeps the newest connection of a listener's accept queue,
/// from its BTF: `*(listener + accept_tail)` is a `struct request_sock *`
/// (NULL when the queue is empty) whose `sk` at `req_sk` is the connection.
/// A connection is checked against its port's listeners this way when it
/// completes its handshake, which is when the kernel queues it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptOffsets {
    /// `inet_connection_sock.icsk_accept_queue.rskq_accept_tail`, from the
    /// start of `struct sock`.
    pub accept_tail: u32,
    /// `request_sock.sk`.
    pub req_sk: u32,
}

impl AcceptOffsets {
    /// Unknown: connections are matched to listeners by address only.
    pub const NONE: Self = Self {
        accept_tail: u32::MAX,
        req_sk: u32::MAX,
    };
}

impl Default for AcceptOffsets {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u32 fields, no padding.
unsafe impl aya::Pod for AcceptOffsets {}
