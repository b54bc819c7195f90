//! The live connections learned from state events: who owns each, its state,
//! age and retransmits; and, briefly, the connections that just closed (a RST
//! sent by `close()` is reported after the move to CLOSE, and a TIME_WAIT
//! socket left behind is only recognisable by its addresses).

use std::{
    collections::VecDeque,
    hash::BuildHasher as _,
    net::{IpAddr, Ipv6Addr, SocketAddr},
};

use tracer_common::tcp::{
    CLOSE, CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, LAST_ACK, NEW_SYN_RECV,
    SYN_RECV, SYN_SENT, TIME_WAIT,
};

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};

use crate::{proc::ProcessId, snapshot::Remote};

/// The phase of a connection an event hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Handshake,
    Established,
    Closing,
    /// No connection: a closed or listening socket, or none at all.
    None,
}

impl Phase {
    /// Every phase, in the order of the per-phase counts of [`crate::snapshot::Counts`].
    pub const ALL: [Self; 4] = [
        Self::Handshake,
        Self::Established,
        Self::Closing,
        Self::None,
    ];

    pub fn of_state(state: u8) -> Self {
        match state {
            SYN_SENT | SYN_RECV | NEW_SYN_RECV => Self::Handshake,
            ESTABLISHED => Self::Established,
            FIN_WAIT1 | FIN_WAIT2 | TIME_WAIT | CLOSE_WAIT | LAST_ACK | CLOSING => Self::Closing,
            _ => Self::None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Established => "established",
            Self::Closing => "closing",
            Self::None => "none",
        }
    }
}

/// A connection's network namespace and its local and remote address,
/// compactly (42 bytes instead of 68 for a u32 and two `SocketAddr`s: the
/// live table holds one per connection). The same addresses in two
/// namespaces (two pods' loopback connections) are two tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    netns: u32,
    local: [u8; 16],
    remote: [u8; 16],
    local_port: u16,
    remote_port: u16,
    v4: bool,
}

impl Tuple {
    /// `netns`: the namespace's inode number, 0 when unknown (the kernel
    /// programs could not read it: then for every connection).
    pub fn new(
        netns: u32,
        local: IpAddr,
        local_port: u16,
        remote: IpAddr,
        remote_port: u16,
    ) -> Self {
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Self {
            netns,
            local: bytes(local),
            remote: bytes(remote),
            local_port,
            remote_port,
            v4: local.is_ipv4(),
        }
    }

    fn ip(&self, bytes: [u8; 16]) -> IpAddr {
        let v6 = Ipv6Addr::from(bytes);
        match v6.to_ipv4_mapped() {
            Some(v4) if self.v4 => IpAddr::V4(v4),
            _ => IpAddr::V6(v6),
        }
    }

    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.local), self.local_port)
    }

    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.ip(self.remote), self.remote_port)
    }
}

/// One connection seen through its state events.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub owner: ProcessId,
    pub tuple: Tuple,
    /// Monotonic ns of the first event.
    pub opened_ns: u64,
    /// Monotonic ns of the move to CLOSE_WAIT; 0 before.
    pub close_wait_ns: u64,
    pub retransmits: u32,
    pub state: u8,
    /// Whether it ever reached ESTABLISHED (only those have a lifetime).
    pub established: bool,
    /// Accepted from a listener (keyed by its client) rather than connected.
    pub passive: bool,
    /// Data bytes sent and received, as of the last socket-table sample.
    pub bytes: Bytes,
}

/// Data bytes a connection sent and received (from `tcp_info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub sent: u64,
    pub received: u64,
}

impl std::ops::AddAssign for Bytes {
    fn add_assign(&mut self, other: Self) {
        self.sent = self.sent.saturating_add(other.sent);
        self.received = self.received.saturating_add(other.received);
    }
}

impl Conn {
    /// The remote endpoint its numbers are kept under.
    pub fn remote(&self) -> Remote {
        let peer = self.tuple.remote();
        if self.passive {
            Remote::Client(peer.ip())
        } else {
            Remote::Server(peer)
        }
    }
}

/// How long closed connections are remembered for TIME_WAIT attribution:
/// TIME_WAIT lasts 60 s on Linux.
const CLOSED_MEMORY_NS: u64 = 75_000_000_000;
/// Upper bound on remembered closed connections; the oldest go first.
const CLOSED_MEMORY_MAX: usize = 131_072;
/// Upper bound on the sockets whose last state before CLOSE is remembered.
const RECENTLY_CLOSED: usize = 4096;

/// Socket address → connection, plus the recently closed.
#[derive(Debug, Default)]
pub struct Live {
    by_sk: HashMap<u64, Conn>,
    /// The same connections by address: socket addresses hashed by their
    /// connection's tuple, so the index costs 9 bytes per connection rather
    /// than a second copy of the tuple. Every socket in it is in `by_sk` with
    /// the tuple it was hashed by.
    by_tuple: HashTable<u64>,
    /// Sockets that just moved to CLOSE → the state they left.
    closed_from: HashMap<u64, u8>,
    /// Closed connections, oldest first, and their owners by tuple.
    closed: VecDeque<(u64, Tuple)>,
    closed_owner: HashMap<Tuple, (u64, ProcessId)>,
    /// Connecting sockets whose local port is not known yet (a connect's
    /// first state change comes before the kernel picks it), by their tuple
    /// with port 0, which several may share.
    connecting: HashMap<Tuple, Vec<u64>>,
}

impl Live {
    pub fn get(&self, sk: u64) -> Option<&Conn> {
        self.by_sk.get(&sk)
    }

    /// Learns the local port of a connecting socket from an event that
    /// carries it (a retransmitted SYN), so its packets are found by their
    /// addresses.
    pub fn learn_port(&mut self, sk: u64, tuple: Tuple) {
        if let Some(&conn) = self.by_sk.get(&sk)
            && conn.tuple.local_port == 0
            && tuple.local_port != 0
        {
            self.upsert(sk, Conn { tuple, ..conn });
        }
    }

    /// The process whose connect a packet with these addresses (`tuple`,
    /// port 0 for the local end) came from, when every connecting socket
    /// that could have sent it is that process's.
    pub fn connecting_owner(&self, tuple: &Tuple) -> Option<ProcessId> {
        let mut owners = self
            .connecting
            .get(tuple)?
            .iter()
            .filter_map(|sk| self.by_sk.get(sk).map(|c| c.owner));
        let first = owners.next()?;
        owners.all(|o| o == first).then_some(first)
    }

    /// Files `sk` under (`add`) or removes it from `tuple` in the connecting
    /// index, for a tuple with no local port.
    fn index_connecting(&mut self, sk: u64, tuple: &Tuple, add: bool) {
        if tuple.local_port != 0 {
            return;
        }
        let sockets = self.connecting.entry(*tuple).or_default();
        sockets.retain(|&other| other != sk);
        if add {
            sockets.push(sk);
        } else if sockets.is_empty() {
            self.connecting.remove(tuple);
        }
    }

    /// Counts a retransmit on a live connection.
    pub fn retransmitted(&mut self, sk: u64) {
        if let Some(conn) = self.by_sk.get_mut(&sk) {
            conn.retransmits = conn.retransmits.saturating_add(1);
        }
    }

    pub fn by_tuple_mut(&mut self, tuple: &Tuple) -> Option<&mut Conn> {
        let by_sk = &self.by_sk;
        let sk = *self.by_tuple.find(hash(tuple), |sk| {
            by_sk.get(sk).is_some_and(|c| c.tuple == *tuple)
        })?;
        self.by_sk.get_mut(&sk)
    }

    pub fn by_tuple(&self, tuple: &Tuple) -> Option<&Conn> {
        let by_sk = &self.by_sk;
        self.by_tuple
            .find(hash(tuple), |sk| {
                by_sk.get(sk).is_some_and(|c| c.tuple == *tuple)
            })
            .and_then(|sk| by_sk.get(sk))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_sk.len()
    }

    /// The state a socket was in when a stateless event (a RST) happened:
    /// `reported` is the state the kernel put in the event (0 = none, CLOSE =
    /// after close, where the state it closed from counts).
    pub fn state_at(&self, sk: u64, reported: u8) -> u8 {
        match reported {
            CLOSE => self.closed_from.get(&sk).copied().unwrap_or(CLOSE),
            0 => self.by_sk.get(&sk).map_or(0, |c| c.state),
            state => state,
        }
    }

    /// Inserts or updates a connection that moved to `state` (not CLOSE).
    pub fn upsert(&mut self, sk: u64, conn: Conn) {
        if let Some(old) = self.by_sk.insert(sk, conn) {
            if old.tuple == conn.tuple {
                return;
            }
            self.unindex(sk, &old.tuple);
            self.index_connecting(sk, &old.tuple, false);
        }
        self.index_connecting(sk, &conn.tuple, true);
        // The newest socket with these addresses is the one found by them.
        let by_sk = &self.by_sk;
        match self.by_tuple.entry(
            hash(&conn.tuple),
            |other| by_sk.get(other).is_some_and(|c| c.tuple == conn.tuple),
            |other| by_sk.get(other).map_or(0, |c| hash(&c.tuple)),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = sk,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(sk);
            }
        }
    }

    /// Removes `sk` from the address index, where it was filed under `tuple`.
    fn unindex(&mut self, sk: u64, tuple: &Tuple) {
        if let Ok(e) = self.by_tuple.find_entry(hash(tuple), |&other| other == sk) {
            e.remove();
        }
    }

    /// Removes a connection that moved from `old_state` to CLOSE at `now_ns`.
    pub fn close(&mut self, sk: u64, old_state: u8, now_ns: u64) -> Option<Conn> {
        if self.closed_from.len() >= RECENTLY_CLOSED {
            self.closed_from.clear();
        }
        self.closed_from.insert(sk, old_state);
        let conn = self.by_sk.remove(&sk)?;
        self.unindex(sk, &conn.tuple);
        self.index_connecting(sk, &conn.tuple, false);
        // Only an active close leaves a TIME_WAIT socket behind.
        if matches!(old_state, FIN_WAIT1 | FIN_WAIT2 | CLOSING) {
            self.remember_closed(conn.tuple, conn.owner, now_ns);
        }
        Some(conn)
    }

    fn remember_closed(&mut self, tuple: Tuple, owner: ProcessId, now_ns: u64) {
        while let Some(&(at, old)) = self.closed.front() {
            if self.closed.len() < CLOSED_MEMORY_MAX && now_ns.saturating_sub(at) < CLOSED_MEMORY_NS
            {
                break;
            }
            self.closed.pop_front();
            // The same addresses may have closed again since; keep the newer.
            if self.closed_owner.get(&old).is_some_and(|&(t, _)| t == at) {
                self.closed_owner.remove(&old);
            }
        }
        self.closed.push_back((now_ns, tuple));
        self.closed_owner.insert(tuple, (now_ns, owner));
    }

    /// The owner of a recently closed connection with these addresses.
    pub fn closed_owner(&self, tuple: &Tuple) -> Option<ProcessId> {
        self.closed_owner.get(tuple).map(|&(_, owner)| owner)
    }
}

fn hash(tuple: &Tuple) -> u64 {
    FxBuildHasher.hash_one(tuple)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn tuple(port: u16) -> Tuple {
        Tuple::new(1, HOME, port, HOME, 80)
    }

    fn conn(port: u16, state: u8) -> Conn {
        Conn {
            owner: ProcessId {
                pid: 1,
                start_ticks: 1,
            },
            tuple: tuple(port),
            opened_ns: 0,
            close_wait_ns: 0,
            retransmits: 0,
            state,
            established: false,
            passive: false,
            bytes: Bytes::default(),
        }
    }

    #[test]
    fn tuples_keep_the_addresses_users_wrote() {
        let v4 = tuple(4000);
        assert_eq!(v4.local().to_string(), "127.0.0.1:4000");
        assert_eq!(v4.remote().to_string(), "127.0.0.1:80");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let v6 = Tuple::new(1, mapped, 1, "::1".parse().unwrap(), 2);
        assert_eq!(v6.local().to_string(), "[::ffff:127.0.0.1]:1");
        assert_eq!(v6.remote().to_string(), "[::1]:2");
        assert_ne!(v6, Tuple::new(1, HOME, 1, HOME, 2));
        // 104 bytes a connection, of which the namespace takes 4 (and 4 of
        // padding) and its bytes sent and received 16.
        assert!(
            std::mem::size_of::<Conn>() <= 104,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }

    #[test]
    fn reset_received_in_syn_sent_is_a_handshake_reset() {
        let mut live = Live::default();
        live.upsert(7, conn(0, SYN_SENT));
        assert_eq!(Phase::of_state(live.state_at(7, 0)), Phase::Handshake);
        live.close(7, SYN_SENT, 1);
        assert_eq!(live.len(), 0);
        assert_eq!(Phase::of_state(live.state_at(7, 0)), Phase::None);
    }

    #[test]
    fn reset_sent_after_close_takes_the_state_it_closed_from() {
        let mut live = Live::default();
        live.upsert(7, conn(1000, ESTABLISHED));
        live.close(7, ESTABLISHED, 1);
        assert_eq!(Phase::of_state(live.state_at(7, CLOSE)), Phase::Established);
        assert_eq!(
            Phase::of_state(live.state_at(9, CLOSE_WAIT)),
            Phase::Closing
        );
    }

    #[test]
    fn retuple_moves_the_index() {
        let mut live = Live::default();
        live.upsert(7, conn(0, SYN_SENT));
        live.upsert(7, conn(4000, ESTABLISHED));
        assert!(live.by_tuple(&tuple(0)).is_none());
        assert_eq!(
            live.by_tuple(&tuple(4000)).map(|c| c.state),
            Some(ESTABLISHED)
        );
    }

    #[test]
    fn active_closes_are_remembered_for_a_while() {
        let mut live = Live::default();
        live.upsert(7, conn(4000, FIN_WAIT2));
        live.upsert(8, conn(4001, LAST_ACK));
        live.close(7, FIN_WAIT2, 0);
        live.close(8, LAST_ACK, 0);
        assert!(live.closed_owner(&tuple(4000)).is_some());
        assert!(live.closed_owner(&tuple(4001)).is_none(), "passive close");
        live.upsert(9, conn(4002, FIN_WAIT1));
        live.close(9, FIN_WAIT1, CLOSED_MEMORY_NS + 1);
        assert!(live.closed_owner(&tuple(4000)).is_none(), "expired");
        assert!(live.closed_owner(&tuple(4002)).is_some());
    }
}
