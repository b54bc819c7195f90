//! Hook (kprobe plan): kprobe `tcp_set_state(sk, state)`, through which nearly
//! every TCP state change passes. Reads the old state, protocol and address
//! tuple from `struct sock` (`sock`), before the change.
//!
//! Two changes do not pass here: CLOSE→LISTEN (`kprobe_listen`) and the
//! creation of an accepted socket, whose first event is SYN_RECV→ESTABLISHED
//! (as with 6.1's tracepoint). The rest is `transition::state_change`, as for
//! the tracepoint.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::kprobe, programs::ProbeContext};
use tracer_common::tcp::IPPROTO_TCP;

use crate::{
    sock,
    transition::{self, ConnectOwner},
};

#[kprobe]
pub fn kprobe_tcp_set_state(ctx: ProbeContext) -> u32 {
    match try_tcp_set_state(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_tcp_set_state(ctx: &ProbeContext) -> Result<u32, u32> {
    let sk: u64 = ctx.arg(0).ok_or(0u32)?;
    let new_state: i32 = ctx.arg(1).ok_or(0u32)?;
    if sock::protocol(sk)? != IPPROTO_TCP {
        return Ok(0);
    }
    let old = sock::state(sk)?;
    if !transition::wanted(sk, old, new_state as u8, || sock::local_port(sk).ok()) {
        return Ok(0);
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    ev.old_state = old;
    ev.new_state = new_state as u8;
    sock::tuple(sk, ev)?;
    transition::state_change(ev, ConnectOwner::Recorded);
    Ok(0)
}
