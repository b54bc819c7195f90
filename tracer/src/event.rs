//! Typed events decoded from the kernel's wire records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tracer_common::{
    Event, EventKind,
    event::{FLAG_BY_TUPLE, FLAG_NO_SOCKET, FLAG_UNATTRIBUTED, Syscall},
    maps::LostKey,
    tcp::{AF_INET, AF_INET6},
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes, expected {size}", size = Event::SIZE)]
    Size(usize),
    #[error("unknown event kind {0}")]
    Kind(u32),
}

/// CLOCK_MONOTONIC now, the clock the kernel stamps events with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts the kernel's monotonic timestamps to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Nanoseconds to add to CLOCK_MONOTONIC to get nanoseconds since the epoch.
    offset_ns: i128,
}

impl Clock {
    /// Measures the offset between CLOCK_REALTIME and CLOCK_MONOTONIC now.
    pub fn now() -> Self {
        let read = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: valid clock id and pointer.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
        };
        let mono = read(libc::CLOCK_MONOTONIC);
        let real = read(libc::CLOCK_REALTIME);
        Self {
            offset_ns: real - mono,
        }
    }

    /// A clock whose wall time equals monotonic time plus `offset_ns`.
    #[cfg(test)]
    pub const fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    pub fn wall_ns(&self, monotonic_ns: u64) -> u64 {
        u64::try_from(i128::from(monotonic_ns) + self.offset_ns).unwrap_or(0)
    }
}

/// One ring-buffer record, decoded: a TCP event, or a DNS message (the
/// larger record, with the question's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Event(TraceEvent),
    Dns(crate::dns::DnsMessage),
}

impl Record {
    /// Decodes a record by its size.
    pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Self, DecodeError> {
        if bytes.len() == tracer_common::dns::DnsEvent::SIZE {
            crate::dns::DnsMessage::decode(bytes, clock).map(Self::Dns)
        } else {
            TraceEvent::decode(bytes, clock).map(Self::Event)
        }
    }
}

/// One event, decoded (no allocation: events arrive by the hundred thousand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEvent {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Kernel monotonic nanoseconds (for intervals).
    pub mono_ns: u64,
    pub kind: EventKind,
    /// Owning process; 0 when unattributed.
    pub pid: u32,
    pub comm: Comm,
    pub unattributed: bool,
    pub no_socket: bool,
    /// Kernel socket address (identity of a connection while it lives).
    pub sk: u64,
    /// The socket's network namespace (inode number); 0 when unknown.
    pub netns: u32,
    pub family: u16,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub old_state: u8,
    pub new_state: u8,
    pub errno: i32,
    pub value: u64,
    /// A drop of a packet with no socket: the addresses are the packet's
    /// (source, destination), and the owner is found by them.
    pub by_tuple: bool,
    /// A drop's reason, as this kernel names it (`NETFILTER_DROP`), or a
    /// sent reset's (`TCP_ABORT_ON_LINGER`, 6.10 and later).
    pub reason: Option<&'static str>,
}

impl TraceEvent {
    pub fn decode(bytes: &[u8], clock: &Clock) -> Result<Self, DecodeError> {
        if bytes.len() != Event::SIZE {
            return Err(DecodeError::Size(bytes.len()));
        }
        // SAFETY: length checked; Event is plain old data valid for any bytes.
        let raw: Event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        Self::from_raw(&raw, clock)
    }

    pub fn from_raw(raw: &Event, clock: &Clock) -> Result<Self, DecodeError> {
        let kind = EventKind::from_u32(raw.kind).ok_or(DecodeError::Kind(raw.kind))?;
        Ok(Self {
            ts_ns: clock.wall_ns(raw.ts_ns),
            mono_ns: raw.ts_ns,
            kind,
            pid: raw.pid,
            comm: Comm::from_raw(&raw.comm),
            unattributed: raw.flags & FLAG_UNATTRIBUTED != 0,
            no_socket: raw.flags & FLAG_NO_SOCKET != 0,
            sk: raw.sk,
            netns: raw.netns,
            family: raw.family,
            saddr: address(raw.family, &raw.saddr),
            sport: raw.sport,
            daddr: address(raw.family, &raw.daddr),
            dport: raw.dport,
            old_state: raw.old_state,
            new_state: raw.new_state,
            errno: raw.errno,
            value: raw.value,
            by_tuple: raw.flags & FLAG_BY_TUPLE != 0,
            reason: match kind {
                EventKind::Drop => crate::ebpf::reasons::drop_reason(raw.value),
                EventKind::RstSent => crate::ebpf::reasons::reset_reason(raw.value),
                _ => None,
            },
        })
    }

    /// The `event` name used in the JSON output.
    pub const fn name_of(kind: EventKind) -> &'static str {
        match kind {
            EventKind::State => "state",
            EventKind::Retransmit => "retransmit",
            EventKind::SynRetransmit => "syn_retransmit",
            EventKind::SynAckRetransmit => "synack_retransmit",
            EventKind::RstSent => "rst_sent",
            EventKind::RstReceived => "rst_received",
            EventKind::SocketError => "socket_error",
            EventKind::SyscallError => "syscall_error",
            EventKind::Drop => "drop",
            EventKind::Dns => "dns",
        }
    }

    /// What is known of events the ring buffer had no room for: enough to
    /// count them (kind, states, errno, syscall or drop reason), no
    /// addresses or time.
    pub fn lost(key: &LostKey) -> Option<Self> {
        let kind = EventKind::from_u32(u32::from(key.kind))?;
        let value = u64::from(key.extra);
        Some(Self {
            ts_ns: 0,
            mono_ns: 0,
            kind,
            pid: key.pid,
            comm: Comm::from(""),
            unattributed: key.pid == 0,
            no_socket: false,
            sk: 0,
            netns: 0,
            family: 0,
            saddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            sport: 0,
            daddr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            dport: 0,
            old_state: key.old_state,
            new_state: key.new_state,
            errno: key.errno,
            value,
            by_tuple: false,
            reason: match kind {
                EventKind::Drop => crate::ebpf::reasons::drop_reason(value),
                _ => None,
            },
        })
    }

    /// Handshake latency in microseconds, for SYN_SENT→ESTABLISHED.
    pub fn handshake_us(&self) -> Option<u64> {
        use tracer_common::tcp::{ESTABLISHED, SYN_SENT};
        (self.kind == EventKind::State
            && self.old_state == SYN_SENT
            && self.new_state == ESTABLISHED
            && self.value > 0)
            .then_some(self.value / 1000)
    }

    /// How a connect ended, for a state event that leaves SYN_SENT.
    pub fn connect_result(&self) -> Option<ConnectResult> {
        use tracer_common::tcp::{CLOSE, ESTABLISHED, SYN_SENT};
        if self.kind != EventKind::State || self.old_state != SYN_SENT {
            return None;
        }
        Some(match (self.new_state, self.errno) {
            (ESTABLISHED, _) => ConnectResult::Ok,
            (CLOSE, libc::ECONNREFUSED) => ConnectResult::Refused,
            (CLOSE, libc::ETIMEDOUT) => ConnectResult::Timeout,
            (CLOSE, libc::EHOSTUNREACH | libc::ENETUNREACH) => ConnectResult::Unreachable,
            // No kernel error: the application gave up first (its dial
            // deadline, a cancelled context, a close).
            (CLOSE, 0) => ConnectResult::Abandoned,
            (CLOSE, _) => ConnectResult::Failed,
            _ => return None,
        })
    }

    pub fn syscall(&self) -> Option<Syscall> {
        (self.kind == EventKind::SyscallError)
            .then(|| Syscall::from_u64(self.value))
            .flatten()
    }
}

/// The outcome of a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectResult {
    Ok,
    Refused,
    Timeout,
    Unreachable,
    /// Given up by the application before the handshake finished or the
    /// kernel gave up: no kernel error.
    Abandoned,
    Failed,
}

impl ConnectResult {
    /// The `result` value of a `connect` event.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Abandoned => "abandoned",
            Self::Failed => "failed",
        }
    }
}

/// A command name as the kernel keeps it (up to 16 bytes), stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// The name up to the first NUL.
    pub fn from_raw(raw: &[u8; 16]) -> Self {
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        Self {
            bytes: *raw,
            len: len as u8,
        }
    }

    /// The name as text; a name that is not UTF-8 is cut where it stops being so.
    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        match std::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

impl From<&str> for Comm {
    /// Truncates to 16 bytes, as the kernel does.
    fn from(name: &str) -> Self {
        let mut raw = [0u8; 16];
        let mut len = name.len().min(16);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        raw[..len].copy_from_slice(&name.as_bytes()[..len]);
        Self::from_raw(&raw)
    }
}

impl std::fmt::Display for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// An address as users write it: dotted quad for IPv4, RFC 5952 text for IPv6
/// (a v4-mapped address shows as `::ffff:a.b.c.d`).
pub fn address(family: u16, raw: &[u8; 16]) -> IpAddr {
    match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(*raw)),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::tcp::{CLOSE, ESTABLISHED, SYN_SENT};

    use super::*;

    fn raw() -> Event {
        let mut e = Event::zeroed();
        e.ts_ns = 1_000;
        e.sk = 0xffff_8880_1234_5678;
        e.kind = EventKind::State as u32;
        e.pid = 4242;
        e.family = AF_INET;
        e.sport = 40000;
        e.dport = 8080;
        e.old_state = SYN_SENT;
        e.new_state = ESTABLISHED;
        e.value = 250_000;
        e.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        e.daddr[..4].copy_from_slice(&[10, 1, 2, 3]);
        e.comm[..4].copy_from_slice(b"curl");
        e
    }

    fn bytes(e: &Event) -> Vec<u8> {
        // SAFETY: Event is plain old data without padding.
        unsafe { std::slice::from_raw_parts((e as *const Event).cast::<u8>(), Event::SIZE) }
            .to_vec()
    }

    #[test]
    fn decodes_every_field() {
        let ev = TraceEvent::decode(&bytes(&raw()), &Clock::with_offset(5_000)).unwrap();
        assert_eq!(ev.ts_ns, 6_000);
        assert_eq!(ev.mono_ns, 1_000);
        assert_eq!(ev.kind, EventKind::State);
        assert_eq!(ev.pid, 4242);
        assert_eq!(ev.comm.as_str(), "curl");
        assert_eq!(ev.sk, 0xffff_8880_1234_5678);
        assert_eq!(ev.saddr.to_string(), "127.0.0.1");
        assert_eq!(ev.daddr.to_string(), "10.1.2.3");
        assert_eq!((ev.sport, ev.dport), (40000, 8080));
        assert_eq!(ev.handshake_us(), Some(250));
        assert!(!ev.unattributed && !ev.no_socket);
    }

    #[test]
    fn every_kind_round_trips() {
        for id in 1..=8 {
            let mut e = raw();
            e.kind = id;
            let ev = TraceEvent::decode(&bytes(&e), &Clock::with_offset(0)).unwrap();
            assert_eq!(ev.kind as u32, id);
        }
        let mut e = raw();
        e.kind = 999;
        assert_eq!(
            TraceEvent::decode(&bytes(&e), &Clock::with_offset(0)),
            Err(DecodeError::Kind(999))
        );
    }

    #[test]
    fn wrong_size_is_rejected() {
        assert_eq!(
            TraceEvent::decode(&[0; 10], &Clock::with_offset(0)),
            Err(DecodeError::Size(10))
        );
    }

    #[test]
    fn flags_and_syscalls_decode() {
        let mut e = raw();
        e.kind = EventKind::SyscallError as u32;
        e.flags = FLAG_UNATTRIBUTED | FLAG_NO_SOCKET;
        e.value = Syscall::Accept4 as u64;
        e.old_state = CLOSE;
        let ev = TraceEvent::decode(&bytes(&e), &Clock::with_offset(0)).unwrap();
        assert!(ev.unattributed && ev.no_socket);
        assert_eq!(ev.syscall(), Some(Syscall::Accept4));
        assert_eq!(ev.handshake_us(), None);
    }

    #[test]
    fn ipv6_and_mapped_addresses_print_as_users_write_them() {
        let mut raw6 = [0u8; 16];
        raw6[15] = 1;
        assert_eq!(address(AF_INET6, &raw6).to_string(), "::1");
        let mapped: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
        assert_eq!(address(AF_INET6, &mapped).to_string(), "::ffff:127.0.0.1");
    }

    #[test]
    fn comm_stops_at_nul() {
        let mut c = [0u8; 16];
        c[..6].copy_from_slice(b"python");
        assert_eq!(Comm::from_raw(&c).as_str(), "python");
        assert_eq!(Comm::from_raw(&[b'a'; 16]).as_str(), "aaaaaaaaaaaaaaaa");
        let mut bad = [0u8; 16];
        bad[..4].copy_from_slice(&[b'a', b'b', 0xff, b'c']);
        assert_eq!(Comm::from_raw(&bad).as_str(), "ab");
        assert_eq!(
            Comm::from("a-very-long-command-name").as_str(),
            "a-very-long-comm"
        );
    }
}
