//! Hook: tracepoint `sock:inet_sock_set_state` (every TCP state change).
//! Reads skaddr, oldstate, newstate, protocol and the address tuple at the
//! offsets in `LAYOUT_INET_SOCK_SET_STATE`.
//!
//! Attribution happens in `transition::state_change`: CLOSE→SYN_SENT (connect)
//! and CLOSE→LISTEN (listen) run in the owning process, so they record the
//! owner; a new passive socket (→SYN_RECV) takes the owner of the listener on
//! its local port.

use aya_ebpf::{
    Global, helpers::bpf_ktime_get_ns, macros::tracepoint, programs::TracePointContext,
};
use tracer_common::{FieldOffsets, tcp::IPPROTO_TCP};

use crate::{
    read,
    transition::{self, ConnectOwner},
};

#[unsafe(no_mangle)]
static LAYOUT_INET_SOCK_SET_STATE: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    match try_inet_sock_set_state(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_inet_sock_set_state(ctx: &TracePointContext) -> Result<u32, u32> {
    let o = LAYOUT_INET_SOCK_SET_STATE.load();
    let mut slot = core::mem::MaybeUninit::uninit();
    let rec = read::record(ctx, &mut slot)?;
    if read::get::<u16>(ctx, rec, o.protocol)? != IPPROTO_TCP {
        return Ok(0);
    }
    let sk = read::get::<u64>(ctx, rec, o.skaddr)?;
    let old = read::get::<i32>(ctx, rec, o.oldstate)? as u8;
    let new = read::get::<i32>(ctx, rec, o.newstate)? as u8;
    if !transition::wanted(sk, old, new, || read::get::<u16>(ctx, rec, o.sport).ok()) {
        return Ok(0);
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    ev.old_state = old;
    ev.new_state = new;
    read::tuple(ctx, rec, &o, ev)?;
    transition::state_change(ev, ConnectOwner::Current);
    Ok(0)
}
