//! Hooks: tracepoints `tcp:tcp_retransmit_skb` (data or SYN retransmitted by a
//! socket) and `tcp:tcp_retransmit_synack` (SYN-ACK retransmitted for a pending
//! connection on a listener). Read skaddr, state and the address tuple at the
//! offsets in `LAYOUT_TCP_RETRANSMIT_SKB` / `LAYOUT_TCP_RETRANSMIT_SYNACK`.
//!
//! Both fire from timers (softirq): the owner comes from the owner map. The
//! kprobe plan reads the same from `tcp_retransmit_skb` (`kprobe_retransmit`).

use aya_ebpf::{
    Global, helpers::bpf_ktime_get_ns, macros::tracepoint, programs::TracePointContext,
};
use tracer_common::{EventKind, FieldOffsets, layout::ABSENT, tcp::SYN_RECV};

use crate::{emit::emit, owner, read, transition};

#[unsafe(no_mangle)]
static LAYOUT_TCP_RETRANSMIT_SKB: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[unsafe(no_mangle)]
static LAYOUT_TCP_RETRANSMIT_SYNACK: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[tracepoint]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    match try_tcp_retransmit_skb(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_tcp_retransmit_skb(ctx: &TracePointContext) -> Result<u32, u32> {
    let o = LAYOUT_TCP_RETRANSMIT_SKB.load();
    let mut slot = core::mem::MaybeUninit::uninit();
    let rec = read::record(ctx, &mut slot)?;
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = read::get::<u64>(ctx, rec, o.skaddr)?;
    // A retransmit that failed (6.18 reports those too) sent nothing.
    if o.error != ABSENT && read::get::<i32>(ctx, rec, o.error)? != 0 {
        return Ok(0);
    }
    let state = read::get::<i32>(ctx, rec, o.state)? as u8;
    read::tuple(ctx, rec, &o, ev)?;
    transition::retransmit(ev, state);
    Ok(0)
}

#[tracepoint]
pub fn tcp_retransmit_synack(ctx: TracePointContext) -> u32 {
    match try_tcp_retransmit_synack(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_tcp_retransmit_synack(ctx: &TracePointContext) -> Result<u32, u32> {
    let o = LAYOUT_TCP_RETRANSMIT_SYNACK.load();
    let mut slot = core::mem::MaybeUninit::uninit();
    let rec = read::record(ctx, &mut slot)?;
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.kind = EventKind::SynAckRetransmit as u32;
    // skaddr is the listener; the pending connection has no full socket yet.
    ev.sk = read::get::<u64>(ctx, rec, o.skaddr)?;
    ev.old_state = SYN_RECV;
    ev.new_state = SYN_RECV;
    read::tuple(ctx, rec, &o, ev)?;
    let owner = owner::lookup(ev.sk).or_else(|| owner::listener_of(ev).map(|(l, _)| l));
    if owner::attribute(ev, owner) {
        emit(ev);
    }
    Ok(0)
}
