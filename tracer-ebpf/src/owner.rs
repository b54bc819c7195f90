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
    maps::{self, CGROUPS_CAPACITY, SocketKey},
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

/// Listeners are keyed by network namespace and port: servers on one port in
/// two namespaces (two pods on a node) are two listeners. `sk` is the
/// listener, or a connection it accepted (same namespace).
#[inline(always)]
fn listener_key(sk: u64, port: u16) -> u64 {
    maps::listener_key(sock::netns(sk), port)
}

#[inline(always)]
pub fn record_listener(sk: u64, port: u16, owner: &Owner) {
    let _ = LISTENERS.insert(&listener_key(sk, port), owner, 0);
}

#[inline(always)]
pub fn listener(sk: u64, port: u16) -> Option<Owner> {
    // SAFETY: the value is copied out immediately.
    unsafe { LISTENERS.get(&listener_key(sk, port)) }.map(mem::copy)
}

#[inline(always)]
pub fn forget_listener(sk: u64, port: u16) {
    let _ = LISTENERS.remove(&listener_key(sk, port));
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

/// Stamps `ev` (its addresses already filled in) with its owner. Without one
/// the event is either filtered (pid filter on: the socket belongs to an
/// untraced process, `false` = drop it) or sent as unattributed, with pid 0
/// and a flag.
#[inline(always)]
pub fn attribute(ev: &mut Event, owner: Option<Owner>) -> bool {
    // Two separate arms, not `owner.or_else(..)`: merging the two options lets
    // LLVM carry the absent one's undefined bytes in a register, and the
    // verifier refuses a program that spills an uninitialised register.
    if let Some(o) = owner {
        stamp(ev, &o);
        return true;
    }
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

#[inline(always)]
fn stamp(ev: &mut Event, owner: &Owner) {
    ev.pid = owner.pid;
    ev.comm = owner.comm;
}
