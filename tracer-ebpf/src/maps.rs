//! Maps and load-time globals shared by every program. Names match
//! `tracer_common::maps` so userspace can find them.

use aya_ebpf::{
    Global,
    macros::map,
    maps::{Array, CgroupArray, HashMap, LruHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
};
use tracer_common::{
    Counter, Owner,
    maps::{
        CGROUPS_CAPACITY, DEFAULT_RING_BYTES, DNS_SOCKETS_CAPACITY, LISTENERS_CAPACITY,
        LOST_CAPACITY, Listener, LostKey, OWNERS_CAPACITY, PREEXISTING_CAPACITY, SocketKey,
        TRACED_PIDS_CAPACITY,
    },
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
pub static OWNERS: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(OWNERS_CAPACITY, 0);

#[map]
pub static LISTENERS: LruHashMap<u64, Listener> =
    LruHashMap::with_max_entries(LISTENERS_CAPACITY, 0);

#[map]
pub static PREEXISTING: LruHashMap<SocketKey, Owner> =
    LruHashMap::with_max_entries(PREEXISTING_CAPACITY, 0);

#[map]
pub static TRACED_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(TRACED_PIDS_CAPACITY, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

/// Sockets that talk DNS (cookie → owner), recorded by the cgroup
/// `connect`/`sendmsg` programs.
#[map]
pub static DNS_SOCKETS: LruHashMap<u64, Owner> =
    LruHashMap::with_max_entries(DNS_SOCKETS_CAPACITY, 0);

/// Events the ring buffer had no room for, by what counts need of them.
#[map]
pub static LOST: PerCpuHashMap<LostKey, u64> = PerCpuHashMap::with_max_entries(LOST_CAPACITY, 0);

/// Entries in `OWNERS` (one slot, updated atomically from every CPU).
#[map]
pub static OWNER_COUNT: Array<u64> = Array::with_max_entries(1, 0);

/// The capacity `OWNERS` was created with (userspace may resize it at load).
#[unsafe(no_mangle)]
pub static OWNERS_MAX: Global<u64> = Global::new(OWNERS_CAPACITY as u64);

/// 1 when `PREEXISTING` was given any connection at start-up (else no event
/// needs to look there).
#[unsafe(no_mangle)]
pub static PREEXISTING_SEEDED: Global<u32> = Global::new(0);

/// 1 when only processes in `TRACED_PIDS` or under `CGROUPS` are traced.
#[unsafe(no_mangle)]
pub static FILTER_PIDS: Global<u32> = Global::new(0);

#[map]
pub static CGROUPS: CgroupArray = CgroupArray::with_max_entries(CGROUPS_CAPACITY, 0);

/// How many entries of `CGROUPS` are set.
#[unsafe(no_mangle)]
pub static FILTER_CGROUPS: Global<u32> = Global::new(0);

/// Adds `delta` (wrapping) to the u64 at `slot`, atomically across CPUs: the
/// BPF_XADD instruction (`lock ... +=`), which every kernel with eBPF accepts.
/// Written as assembly because core's atomics offer no read-modify-write on
/// the BPF target (it has no compare-and-swap).
#[inline(always)]
pub fn atomic_add(slot: *mut u64, delta: u64) {
    // SAFETY: callers pass a map value pointer, valid and 8-byte aligned for
    // the map's lifetime; the instruction touches only that u64.
    unsafe {
        core::arch::asm!("lock *(u64 *)({0} + 0) += {1}", in(reg) slot, in(reg) delta);
    }
}

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, so no other writer runs concurrently on it.
        unsafe { *slot += 1 };
    }
}
