//! Hooks (kprobe plan): kprobe and kretprobe on `inet_csk_listen_start(sk)`.
//! Read the protocol and tuple from `struct sock` (`sock`).
//!
//! CLOSE→LISTEN does not pass through `tcp_set_state`: this function stores
//! the state itself. The entry reports CLOSE→LISTEN from the listening process,
//! which records it as the owner of the socket and of its port, as the
//! tracepoint does. A start that fails (EADDRINUSE) puts the socket back to
//! CLOSE, again by itself: the return probe reports that LISTEN→CLOSE.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::tcp::{CLOSE, IPPROTO_TCP, LISTEN};

use crate::{
    calls, sock,
    transition::{self, ConnectOwner},
};

#[kprobe]
pub fn kprobe_inet_csk_listen_start(ctx: ProbeContext) -> u32 {
    match try_listen_start(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_listen_start(ctx: &ProbeContext) -> Result<u32, u32> {
    let sk: u64 = ctx.arg(0).ok_or(0u32)?;
    if sock::protocol(sk)? != IPPROTO_TCP {
        return Ok(0);
    }
    report(sk, sock::state(sk)?, LISTEN)?;
    calls::enter(ctx, sk);
    Ok(0)
}

#[kretprobe]
pub fn kretprobe_inet_csk_listen_start(ctx: RetProbeContext) -> u32 {
    match try_listen_started(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_listen_started(ctx: &RetProbeContext) -> Result<u32, u32> {
    let sk = calls::leave(ctx).ok_or(0u32)?;
    if ctx.ret::<i32>() != 0 {
        report(sk, LISTEN, CLOSE)?;
    }
    Ok(0)
}

#[inline(always)]
fn report(sk: u64, old_state: u8, new_state: u8) -> Result<(), u32> {
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    ev.old_state = old_state;
    ev.new_state = new_state;
    sock::tuple(sk, ev)?;
    transition::state_change(ev, ConnectOwner::Current);
    Ok(())
}
