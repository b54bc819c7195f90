//! What the hooks make of an event once they have read it: attribution of
//! state changes (owner, handshake latency, connect errors) and the data/SYN
//! split of retransmits. The tracepoint and the kprobe programs of a data
//! source both end here, so the two hook plans report the same way.

use tracer_common::{
    Counter, Event, EventKind,
    tcp::{CLOSE, ESTABLISHED, LISTEN, SYN_RECV, SYN_SENT},
};

use crate::{emit::emit, maps::bump, owner, sock};

/// Where the owner of a connecting socket comes from at CLOSE→SYN_SENT.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ConnectOwner {
    /// The current process, recorded now (the tracepoint plan).
    Current,
    /// Already recorded on entry to `tcp_v4_connect`/`tcp_v6_connect` (the
    /// kprobe plan), so the handshake is timed from the connect call; the
    /// current process when that record is missing.
    Recorded,
}

/// Whether a change of `sk` from `old` to `new` is worth reading further. With
/// a pid filter most sockets belong to untraced processes: their changes are
/// counted as filtered and dropped here, before the addresses are read
/// (`local_port` reads the one member a passive open needs).
#[inline(always)]
pub fn wanted(sk: u64, old: u8, new: u8, local_port: impl FnOnce() -> Option<u16>) -> bool {
    let keep = match (old, new) {
        // Process context: the caller of connect()/listen() owns the socket.
        (CLOSE, SYN_SENT) | (CLOSE, LISTEN) => {
            owner::traced(owner::current_pid()) || owner::lookup(sk).is_some()
        }
        // The owner comes from the listener on the local port.
        (_, SYN_RECV) | (SYN_RECV, _) => {
            owner::may_be_traced(sk) || local_port().is_some_and(|p| owner::has_listener(sk, p))
        }
        _ => owner::may_be_traced(sk),
    };
    if !keep {
        bump(Counter::Filtered);
    }
    keep
}

/// A TCP state change, with `ev`'s socket, states and tuple already filled in:
/// records or looks up the owner, adds handshake latency and connect errors,
/// and emits the event.
#[inline(always)]
pub fn state_change(ev: &mut Event, connect: ConnectOwner) {
    ev.kind = EventKind::State as u32;
    let owner = match (ev.old_state, ev.new_state) {
        (CLOSE, SYN_SENT) if connect == ConnectOwner::Recorded => {
            owner::lookup(ev.sk).or_else(|| record_current(ev))
        }
        // Process context: the caller of connect()/listen() owns the socket.
        (CLOSE, SYN_SENT) | (CLOSE, LISTEN) => record_current(ev),
        // A connection being accepted: its listener's owner. Where the hook
        // sees the connection created (6.18's tracepoint), it is not queued
        // yet: the listener is the best match by address, checked again below.
        (_, SYN_RECV) => owner::listener_of(ev).map(|(mut l, _)| {
            l.start_ns = ev.ts_ns;
            owner::record(ev.sk, &l);
            l
        }),
        // Its handshake done, the connection is in its listener's accept
        // queue, which names the listener for certain (a member of a
        // SO_REUSEPORT group, say, not the one guessed by address). Hooks
        // that do not see the creation (6.1's tracepoint, the kprobe on
        // tcp_set_state) show an accepted socket first here.
        (SYN_RECV, _) => accepted(ev),
        _ => owner::lookup(ev.sk),
    };
    if !owner::attribute(ev, owner) {
        return;
    }
    if let (SYN_SENT, ESTABLISHED, Some(o)) = (ev.old_state, ev.new_state, &owner) {
        ev.value = ev.ts_ns.saturating_sub(o.start_ns);
    }
    // A connect that ends before ESTABLISHED: the kernel stored why in sk_err
    // (ECONNREFUSED, ETIMEDOUT, ...) before moving the socket to CLOSE.
    if ev.old_state == SYN_SENT && ev.new_state == CLOSE {
        ev.errno = sock::error(ev.sk);
    }
    // listen() sets the backlog before the socket starts listening.
    if ev.new_state == LISTEN {
        ev.value = u64::from(sock::backlog(ev.sk));
    }
    if ev.old_state == LISTEN && ev.new_state == CLOSE {
        owner::forget_listener(ev);
    }
    emit(ev);
}

/// The owner of an accepted connection `ev` leaving SYN_RECV: the one
/// recorded, unless its listener is now known for certain to be another's.
#[inline(always)]
fn accepted(ev: &Event) -> Option<tracer_common::Owner> {
    let recorded = owner::lookup(ev.sk);
    let found = owner::listener_of(ev);
    if let Some(r) = recorded {
        match found {
            Some((mut l, true)) if l.pid != r.pid => {
                l.start_ns = r.start_ns;
                owner::record(ev.sk, &l);
                return Some(l);
            }
            _ => return Some(r),
        }
    }
    let (mut l, _) = found?;
    l.start_ns = ev.ts_ns;
    owner::record(ev.sk, &l);
    Some(l)
}

#[inline(always)]
fn record_current(ev: &Event) -> Option<tracer_common::Owner> {
    let current = owner::current();
    if let Some(cur) = &current {
        owner::record(ev.sk, cur);
        if ev.new_state == LISTEN {
            owner::record_listener(ev, cur);
        }
    }
    current
}

/// A segment retransmitted by `ev`'s socket, in `state`, with the tuple filled
/// in: a SYN while connecting, data otherwise. Emitted under the socket's owner.
#[inline(always)]
pub fn retransmit(ev: &mut Event, state: u8) {
    ev.old_state = state;
    ev.new_state = state;
    ev.kind = if state == SYN_SENT {
        EventKind::SynRetransmit
    } else {
        EventKind::Retransmit
    } as u32;
    let owner = owner::lookup(ev.sk);
    if owner::attribute(ev, owner) {
        emit(ev);
    }
}
