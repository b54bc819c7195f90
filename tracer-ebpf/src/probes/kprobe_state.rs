//! Hook (kprobe plan): kprobe `tcp_set_state(sk, state)`, through which nearly
//! every TCP state change passes. Reads the old state, protocol and address
//! tuple from `struct sock` (`sock`), before the change.
//!
//! Two changes do not pass here: CLOSE→LISTEN (`kprobe_listen`) and the
//! creation of an accepted socket, whose first event is SYN_RECV→ESTABLISHED
//! (as with 6.1's tracepoint). The rest is `transition::state_change`, as for
//! the tracepoint.

use aya_ebpf::{macros::kprobe, programs::ProbeContext};
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
    transition::state_change(sk, old, new_state as u8, ConnectOwner::Recorded, |ev| {
        sock::tuple(sk, ev)
    })?;
    Ok(0)
}
