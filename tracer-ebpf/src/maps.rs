//! Maps and load-time globals shared by every program. Names match
//! `tracer_common::maps` so userspace can find them.

use aya_ebpf::{
    Global,
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use tracer_common::{
    Counter, Owner,
    maps::{
        DEFAULT_RING_BYTES, LISTENERS_CAPACITY, OWNERS_CAPACITY, PREEXISTING_CAPACITY, SocketKey,
        TRACED_PIDS_CAPACITY,
    },
};

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
pub static OWNERS: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(OWNERS_CAPACITY, 0);

#[map]
pub static LISTENERS: LruHashMap<u32, Owner> = LruHashMap::with_max_entries(LISTENERS_CAPACITY, 0);

#[map]
pub static PREEXISTING: LruHashMap<SocketKey, Owner> =
    LruHashMap::with_max_entries(PREEXISTING_CAPACITY, 0);

#[map]
pub static TRACED_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(TRACED_PIDS_CAPACITY, 0);

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Counter::COUNT, 0);

/// 1 when only processes in `TRACED_PIDS` are traced.
#[unsafe(no_mangle)]
pub static FILTER_PIDS: Global<u32> = Global::new(0);

/// Adds one to a per-CPU counter.
#[inline(always)]
pub fn bump(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, so no other writer runs concurrently on it.
        unsafe { *slot += 1 };
    }
}
