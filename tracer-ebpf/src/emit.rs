//! Writing records to the ring buffer, counting what does not fit.
//!
//! Waking the reader for every record costs more than the record, so records
//! go in without a wakeup (the reader also drains on a short timer) until a
//! quarter of the ring is unread; then every record wakes it.

use core::mem::MaybeUninit;

use tracer_common::{Counter, Event};

use crate::maps::{EVENTS, bump};

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
    let flags = if EVENTS.query(AVAIL_DATA) >= EVENTS.query(RING_SIZE) / 4 {
        FORCE_WAKEUP
    } else {
        NO_WAKEUP
    };
    match EVENTS.output::<Event>(ev, flags) {
        Ok(()) => bump(Counter::Submitted),
        Err(_) => bump(Counter::Dropped),
    }
}
