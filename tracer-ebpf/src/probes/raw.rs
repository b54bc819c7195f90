//! Hooks (raw tracepoint plan): raw tracepoints `inet_sock_set_state(sk,
//! oldstate, newstate)`, `tcp_retransmit_skb(sk, skb, ...)` and
//! `tcp_destroy_sock(sk)`. A raw tracepoint hands over the tracepoint's
//! arguments as they are, without filling a trace record first, which saves
//! that work on the busiest hooks. The
//! protocol, state and address tuple are read from `struct sock` (`sock`), as
//! the classic tracepoints fill theirs; the rest is `transition`, as for them.

use aya_ebpf::{
    Global, helpers::bpf_ktime_get_ns, macros::raw_tracepoint, programs::RawTracePointContext,
};
use tracer_common::tcp::IPPROTO_TCP;

use crate::{
    owner, sock,
    transition::{self, ConnectOwner},
};

#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn raw_inet_sock_set_state(ctx: RawTracePointContext) -> i32 {
    match try_inet_sock_set_state(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_inet_sock_set_state(ctx: &RawTracePointContext) -> Result<(), u32> {
    let sk: u64 = ctx.arg(0);
    if sock::protocol(sk)? != IPPROTO_TCP {
        return Ok(());
    }
    let (old, new) = (ctx.arg::<u64>(1) as u8, ctx.arg::<u64>(2) as u8);
    if !transition::wanted(sk, old, new, || sock::local_port(sk).ok()) {
        return Ok(());
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    ev.old_state = old;
    ev.new_state = new;
    sock::tuple(sk, ev)?;
    transition::state_change(ev, ConnectOwner::Current);
    Ok(())
}

#[raw_tracepoint(tracepoint = "tcp_retransmit_skb")]
pub fn raw_tcp_retransmit_skb(ctx: RawTracePointContext) -> i32 {
    match try_tcp_retransmit_skb(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// 1 when the tracepoint's third argument is `err` (6.18); reading it on a
/// kernel without it would make the program fail to attach.
#[unsafe(no_mangle)]
static RETRANSMIT_HAS_ERR: Global<u32> = Global::new(0);

fn try_tcp_retransmit_skb(ctx: &RawTracePointContext) -> Result<(), u32> {
    // A retransmit that failed sent nothing.
    if RETRANSMIT_HAS_ERR.load() != 0 && ctx.arg::<u64>(2) as i32 != 0 {
        return Ok(());
    }
    let sk: u64 = ctx.arg(0);
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    let state = sock::state(sk)?;
    sock::tuple(sk, ev)?;
    transition::retransmit(ev, state);
    Ok(())
}

#[raw_tracepoint(tracepoint = "tcp_destroy_sock")]
pub fn raw_tcp_destroy_sock(ctx: RawTracePointContext) -> i32 {
    owner::forget(ctx.arg(0));
    0
}
