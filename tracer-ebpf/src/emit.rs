//! Writing records to the ring buffer, counting what does not fit.
//!
//! Waking the reader for every record costs more than the record, so records
//! go in without a wakeup (the reader also drains on a short timer) until a
//! quarter of the ring is unread; then every record wakes it.

use tracer_common::{Counter, Event};

use crate::maps::{EVENTS, bump};

/// `BPF_RB_NO_WAKEUP`, `BPF_RB_FORCE_WAKEUP` (flags of `bpf_ringbuf_output`).
const NO_WAKEUP: u64 = 1;
const FORCE_WAKEUP: u64 = 2;
/// `BPF_RB_AVAIL_DATA`, `BPF_RB_RING_SIZE` (what `bpf_ringbuf_query` reports).
const AVAIL_DATA: u64 = 0;
const RING_SIZE: u64 = 1;

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
