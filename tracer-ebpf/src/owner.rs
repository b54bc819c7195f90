//! Attribution: who owns a socket. The owner is recorded while the owning
//! process is on the CPU (connect, listen) and looked up for every later event,
//! which may fire in softirq context under an unrelated task.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_NOEXIST},
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, generated},
};
use tracer_common::{
    Counter, Event, Owner,
    event::{FLAG_NO_SOCKET, FLAG_UNATTRIBUTED},
    maps::{self, CGROUPS_CAPACITY, LISTENER_SLOTS, Listener, SocketKey},
};

use crate::{
    maps::{
        CGROUPS, FILTER_CGROUPS, FILTER_PIDS, LISTENERS, OWNER_COUNT, OWNERS, OWNERS_MAX,
        PREEXISTING, PREEXISTING_SEEDED, TRACED_PIDS, atomic_add, bump,
    },
    mem, sock,
};

/// Whether the current process, `pid`, passes the in-kernel filter: it is
/// a `--pid`, or it runs under a `--cgroup`.
#[inline(always)]
pub fn traced(pid: u32) -> bool {
    if FILTER_PIDS.load() == 0 || unsafe { TRACED_PIDS.get(&pid) }.is_some() {
        return true;
    }
    let cgroups = FILTER_CGROUPS.load();
    for index in 0..CGROUPS_CAPACITY {
        if index >= cgroups {
            break;
        }
        if CGROUPS.current_task_under_cgroup(index) == Ok(true) {
            return true;
        }
    }
    false
}

/// The process (tgid) on the CPU.
#[inline(always)]
pub fn current_pid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// The current process as an owner, or `None` when the pid filter excludes it.
#[inline(always)]
pub fn current() -> Option<Owner> {
    let pid = current_pid();
    if !traced(pid) {
        return None;
    }
    let mut slot = core::mem::MaybeUninit::<Owner>::uninit();
    let owner = mem::zero(&mut slot);
    owner.pid = pid;
    owner.start_ns = unsafe { bpf_ktime_get_ns() };
    // SAFETY: the helper writes at most 16 bytes into `comm` (zeroing it on
    // failure). Called directly: aya's wrapper zeroes a buffer byte by byte.
    unsafe { generated::bpf_get_current_comm(owner.comm.as_mut_ptr().cast(), 16) };
    Some(*owner)
}

/// Records (or replaces) the owner of `sk`. A socket new to the map is
/// counted; when the map is full it takes the place of the least recently
/// used entry, and that eviction is counted instead.
#[inline(always)]
pub fn record(sk: u64, owner: &Owner) {
    if OWNERS.insert(&sk, owner, BPF_NOEXIST.into()).is_ok() {
        added();
    } else {
        let _ = OWNERS.insert(&sk, owner, BPF_ANY.into());
    }
}

#[inline(always)]
fn added() {
    let Some(count) = OWNER_COUNT.get_ptr_mut(0) else {
        return;
    };
    // A plain read: racing CPUs may each see room for one more, which only
    // blurs the count by as many entries as there are CPUs. The kernel's LRU
    // may also evict a little early (its free lists are per CPU); such an
    // entry stays in the count, as its delete fails, so the count still
    // reaches the capacity and the evictions after that are counted.
    // SAFETY: the slot is a valid, aligned u64 for the map's lifetime.
    if unsafe { core::ptr::read_volatile(count) } >= OWNERS_MAX.load() {
        bump(Counter::OwnerEvicted);
    } else {
        atomic_add(count, 1);
    }
}

#[inline(always)]
pub fn lookup(sk: u64) -> Option<Owner> {
    // SAFETY: the value is copied out immediately.
    unsafe { OWNERS.get(&sk) }.map(mem::copy)
}

/// Deletes the owner of `sk`, if the map still holds it.
#[inline(always)]
pub fn forget(sk: u64) {
    // With a pid filter most sockets were never recorded, and a lookup that
    // misses costs less than a delete that misses (which takes a lock).
    if FILTER_PIDS.load() != 0 && lookup(sk).is_none() {
        return;
    }
    if OWNERS.remove(&sk).is_err() {
        // Not there: never recorded, or evicted (and counted) when the map was full.
        return;
    }
    if let Some(count) = OWNER_COUNT.get_ptr_mut(0) {
        // Subtracts one (wrapping add).
        atomic_add(count, u64::MAX);
    }
}

/// A port's listeners in one network namespace (servers on one port in two
/// namespaces, two pods on a node, are told apart) are up to
/// [`LISTENER_SLOTS`] entries: specific addresses and `SO_REUSEPORT` groups
/// of several processes share a port.
#[inline(always)]
fn listener_at(netns: u32, port: u16, slot: u16) -> Option<&'static Listener> {
    // SAFETY: the entry is only read, and its fields copied out at once.
    unsafe { LISTENERS.get(&maps::listener_key(netns, port, slot)) }
}

/// Records the listener `ev.sk` (its port and address in `ev`) under its
/// owner: in the slot it had, else the first free one, else the last.
#[inline(always)]
pub fn record_listener(ev: &Event, owner: &Owner) {
    let netns = sock::netns(ev.sk);
    let mut chosen = LISTENER_SLOTS;
    for slot in 0..LISTENER_SLOTS {
        match listener_at(netns, ev.sport, slot) {
            Some(l) if l.sk == ev.sk => {
                chosen = slot;
                break;
            }
            None if chosen == LISTENER_SLOTS => chosen = slot,
            _ => {}
        }
    }
    if chosen == LISTENER_SLOTS {
        chosen = LISTENER_SLOTS - 1;
    }
    let mut slot = core::mem::MaybeUninit::<Listener>::uninit();
    let l = mem::zero(&mut slot);
    l.owner = *owner;
    l.sk = ev.sk;
    l.family = ev.family;
    l.addr = ev.saddr;
    let _ = LISTENERS.insert(&maps::listener_key(netns, ev.sport, chosen), l, 0);
}

/// Whether any listener is recorded on the local `port` of `sk`'s namespace.
#[inline(always)]
pub fn has_listener(sk: u64, port: u16) -> bool {
    let netns = sock::netns(sk);
    for slot in 0..LISTENER_SLOTS {
        if listener_at(netns, port, slot).is_some() {
            return true;
        }
    }
    false
}

/// The listener a connection `ev` (passive, addresses filled in) came
/// from, and whether that is certain. Certain when the connection is the
/// last one queued for accept() on that listener, which it is as it
/// completes its handshake; otherwise the best match by local address: the
/// same address, then any address (a wildcard listener), then any listener
/// on the port.
#[inline(always)]
pub fn listener_of(ev: &Event) -> Option<(Owner, bool)> {
    let netns = sock::netns(ev.sk);
    let mut best = LISTENER_SLOTS;
    let mut best_score = 0u8;
    for slot in 0..LISTENER_SLOTS {
        let Some(l) = listener_at(netns, ev.sport, slot) else {
            continue;
        };
        if sock::last_queued(l.sk) == ev.sk {
            return Some((mem::copy(&l.owner), true));
        }
        let score = if l.family == ev.family && same_addr(&l.addr, &ev.saddr) {
            3
        } else if same_addr(&l.addr, &[0; 16]) {
            2
        } else {
            1
        };
        if score > best_score {
            best_score = score;
            best = slot;
        }
    }
    if best == LISTENER_SLOTS {
        return None;
    }
    listener_at(netns, ev.sport, best).map(|l| (mem::copy(&l.owner), false))
}

/// Forgets the listener `ev.sk`, which stopped listening; one found in /proc
/// at start-up (no socket address known) is matched by its local address.
#[inline(always)]
pub fn forget_listener(ev: &Event) {
    let netns = sock::netns(ev.sk);
    for slot in 0..LISTENER_SLOTS {
        let mine = listener_at(netns, ev.sport, slot).is_some_and(|l| {
            l.sk == ev.sk || (l.sk == 0 && l.family == ev.family && same_addr(&l.addr, &ev.saddr))
        });
        if mine {
            let _ = LISTENERS.remove(&maps::listener_key(netns, ev.sport, slot));
        }
    }
}

/// Address equality as two 8-byte words (no `memcmp` in BPF).
#[inline(always)]
fn same_addr(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let word = |x: &[u8; 16], i: usize| {
        // SAFETY: two unaligned 8-byte reads within the 16-byte array.
        unsafe { core::ptr::read_unaligned(x.as_ptr().add(i * 8).cast::<u64>()) }
    };
    word(a, 0) == word(b, 0) && word(a, 1) == word(b, 1)
}

/// The owner of a connection that predates tracing, found by the addresses
/// already in `ev`; moved under the socket's address for later events.
#[inline(always)]
fn preexisting(ev: &Event) -> Option<Owner> {
    if PREEXISTING_SEEDED.load() == 0 || ev.family == 0 || ev.sk == 0 {
        return None;
    }
    let key = SocketKey {
        family: ev.family,
        sport: ev.sport,
        dport: ev.dport,
        _pad: 0,
        netns: ev.netns,
        saddr: ev.saddr,
        daddr: ev.daddr,
    };
    // SAFETY: the value is copied out immediately.
    let owner = unsafe { PREEXISTING.get(&key) }.map(mem::copy)?;
    record(ev.sk, &owner);
    // Used once: from now on the owner is found by the socket's address and
    // deleted with it, so a later connection reusing these addresses is not
    // taken for this one.
    let _ = PREEXISTING.remove(&key);
    Some(owner)
}

/// Whether an event of socket `sk` can belong to a traced process, judged
/// before its addresses are read: `false` only when a pid filter is on, the
/// socket has no recorded owner and no connection predating tracing could be it.
#[inline(always)]
pub fn may_be_traced(sk: u64) -> bool {
    FILTER_PIDS.load() == 0 || PREEXISTING_SEEDED.load() != 0 || lookup(sk).is_some()
}

/// Stamps `ev` (its addresses already filled in) with its socket's network
/// namespace and its owner. Without one
/// the event is either filtered (pid filter on: the socket belongs to an
/// untraced process, `false` = drop it) or sent as unattributed, with pid 0
/// and a flag.
#[inline(always)]
pub fn attribute(ev: &mut Event, owner: Option<Owner>) -> bool {
    // Two separate arms, not `owner.or_else(..)`: merging the two options lets
    // LLVM carry the absent one's undefined bytes in a register, and the
    // verifier refuses a program that spills an uninitialised register. For
    // the same reason the namespace is read only once `owner` is used up.
    if let Some(o) = owner {
        stamp(ev, &o);
        name_netns(ev);
        return true;
    }
    name_netns(ev);
    match preexisting(ev) {
        Some(o) => {
            stamp(ev, &o);
            true
        }
        None if FILTER_PIDS.load() != 0 => {
            bump(Counter::Filtered);
            false
        }
        // A reset for a segment that matched no socket (a connect to a closed
        // port): it has no owner by nature, which is not an attribution miss.
        None if ev.flags & FLAG_NO_SOCKET != 0 => {
            bump(Counter::ClosedPort);
            true
        }
        None => {
            bump(Counter::Unattributed);
            ev.flags |= FLAG_UNATTRIBUTED;
            true
        }
    }
}

/// Fills in the network namespace of `ev`'s socket (a drop without one has
/// its device's already).
#[inline(always)]
fn name_netns(ev: &mut Event) {
    if ev.sk != 0 {
        ev.netns = sock::netns(ev.sk);
    }
}

#[inline(always)]
fn stamp(ev: &mut Event, owner: &Owner) {
    ev.pid = owner.pid;
    ev.comm = owner.comm;
}
