//! Hooks: tracepoints `tcp:tcp_send_reset` and `tcp:tcp_receive_reset`.
//! Read skaddr, state (send only) and the address tuple at the offsets in
//! `LAYOUT_TCP_SEND_RESET` / `LAYOUT_TCP_RECEIVE_RESET`. On 6.1 the tuple is
//! split IPv4/IPv6 arrays; on 6.18 `tcp_send_reset` carries sockaddrs and a
//! reason (both handled by `read::tuple`).
//!
//! A RST sent for a segment that matched no socket (a closed port) has no
//! skaddr: it is flagged as such and belongs to no process.

use aya_ebpf::{
    Global, helpers::bpf_ktime_get_ns, macros::tracepoint, programs::TracePointContext,
};
use tracer_common::{Counter, EventKind, FieldOffsets, event::FLAG_NO_SOCKET, layout::ABSENT};

use crate::{emit::emit, maps::bump, owner, read};

#[unsafe(no_mangle)]
static LAYOUT_TCP_SEND_RESET: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[unsafe(no_mangle)]
static LAYOUT_TCP_RECEIVE_RESET: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[tracepoint]
pub fn tcp_send_reset(ctx: TracePointContext) -> u32 {
    match try_reset(&ctx, &LAYOUT_TCP_SEND_RESET.load(), EventKind::RstSent) {
        Ok(r) | Err(r) => r,
    }
}

#[tracepoint]
pub fn tcp_receive_reset(ctx: TracePointContext) -> u32 {
    match try_reset(
        &ctx,
        &LAYOUT_TCP_RECEIVE_RESET.load(),
        EventKind::RstReceived,
    ) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn try_reset(ctx: &TracePointContext, o: &FieldOffsets, kind: EventKind) -> Result<u32, u32> {
    let mut slot = core::mem::MaybeUninit::uninit();
    let rec = read::record(ctx, &mut slot)?;
    let sk = read::get::<u64>(ctx, rec, o.skaddr)?;
    if !owner::may_be_traced(sk) {
        bump(Counter::Filtered);
        return Ok(0);
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.kind = kind as u32;
    ev.sk = sk;
    if o.state != ABSENT {
        let state = read::get::<i32>(ctx, rec, o.state)? as u8;
        ev.old_state = state;
        ev.new_state = state;
    }
    if o.reason != ABSENT {
        ev.value = u64::from(read::get::<u32>(ctx, rec, o.reason)?);
    }
    // Without an skb (an active reset) the kernel may leave the tuple empty.
    let _ = read::tuple(ctx, rec, o, ev);
    let owner = if ev.sk == 0 {
        ev.flags |= FLAG_NO_SOCKET;
        None
    } else {
        owner::lookup(ev.sk)
    };
    if owner::attribute(ev, owner) {
        emit(ev);
    }
    Ok(0)
}
