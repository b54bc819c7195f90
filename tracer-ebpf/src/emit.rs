//! Writing records to the ring buffer, counting what does not fit.
//!
//! Waking the reader for every record costs more than the record, so records
//! go in without a wakeup (the reader also drains on a short timer) until a
//! quarter of the ring is unread; then every record wakes it.

use core::mem::MaybeUninit;

use tracer_common::{Counter, Event, maps::LostKey};

use crate::maps::{EVENTS, LOST, bump};

/// `BPF_RB_NO_WAKEUP`, `BPF_RB_FORCE_WAKEUP` (flags of `bpf_ringbuf_output`).
const NO_WAKEUP: u64 = 1;
const FORCE_WAKEUP: u64 = 2;
/// `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE` (what `bpf_ringbuf_query` reports).
const AVAIL_DATA: u64 = 0;
const RING_SIZE: u64 = 1;

/// A zeroed event in `slot` (on the program's stack), stamped with `ts_ns`:
/// the start of every program that reports one.
#[inline(always)]
pub fn event(slot: &mut MaybeUninit<Event>, ts_ns: u64) -> &mut Event {
    let ev = crate::mem::zero(slot);
    ev.ts_ns = ts_ns;
    ev
}

#[inline(always)]
pub fn emit(ev: &Event) {
    match EVENTS.output::<Event>(ev, wakeup()) {
        Ok(()) => bump(Counter::Submitted),
        Err(_) => {
            bump(Counter::Dropped);
            lost(ev);
        }
    }
}

/// The flags a record is written with: wake the reader once a quarter of
/// the ring is unread.
#[inline(always)]
pub fn wakeup() -> u64 {
    if EVENTS.query(AVAIL_DATA) >= EVENTS.query(RING_SIZE) / 4 {
        FORCE_WAKEUP
    } else {
        NO_WAKEUP
    }
}

/// Counts an event the ring buffer had no room for, by what the counts need
/// of it: only on this path, so a ring buffer with room costs nothing more.
#[inline(never)]
pub fn lost(ev: &Event) {
    let key = LostKey {
        pid: ev.pid,
        errno: ev.errno,
        kind: ev.kind as u8,
        old_state: ev.old_state,
        new_state: ev.new_state,
        extra: ev.value as u8,
    };
    if let Some(slot) = LOST.get_ptr_mut(&key) {
        // SAFETY: a per-CPU slot: no other writer runs on it concurrently.
        unsafe { *slot += 1 };
    } else {
        let _ = LOST.insert(&key, &1, 0);
    }
}
