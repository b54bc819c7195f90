//! Hooks (kprobe plan): kprobes and kretprobes on `tcp_retransmit_skb(sk, skb,
//! segs)` and `__tcp_retransmit_skb(sk, skb, segs)`. Read the state and tuple
//! from `struct sock` (`sock`).
//!
//! The tracepoint `tcp:tcp_retransmit_skb` fires inside `__tcp_retransmit_skb`
//! only for a segment that was actually sent, when the function returns 0; so
//! these report at the return, when it is 0. Two functions, because the loss
//! probe calls `__tcp_retransmit_skb` directly while every other retransmit
//! enters through `tcp_retransmit_skb` — and compilers may fold the one into
//! the other (Debian's 6.1 calls a private copy), so a probe on either alone
//! misses retransmits. Where `tcp_retransmit_skb` does call
//! `__tcp_retransmit_skb`, the socket is marked in `RETRANSMITTING` for the
//! outer call and the inner one stays quiet. A socket's retransmits are
//! serialised by its lock, so a mark cannot belong to another retransmit.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{kprobe, kretprobe, map},
    maps::LruHashMap,
    programs::{ProbeContext, RetProbeContext},
};

use crate::{calls, sock, transition};

/// Sockets inside `tcp_retransmit_skb` (value unused).
#[map]
static RETRANSMITTING: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

#[kprobe]
pub fn kprobe_tcp_retransmit_skb(ctx: ProbeContext) -> u32 {
    match try_enter_outer(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[kretprobe]
pub fn kretprobe_tcp_retransmit_skb(ctx: RetProbeContext) -> u32 {
    match try_leave(&ctx, true) {
        Ok(r) | Err(r) => r,
    }
}

/// On `__tcp_retransmit_skb` (the `_inner` programs).
#[kprobe]
pub fn kprobe_tcp_retransmit_skb_inner(ctx: ProbeContext) -> u32 {
    match try_enter_inner(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[kretprobe]
pub fn kretprobe_tcp_retransmit_skb_inner(ctx: RetProbeContext) -> u32 {
    match try_leave(&ctx, false) {
        Ok(r) | Err(r) => r,
    }
}

fn try_enter_outer(ctx: &ProbeContext) -> Result<u32, u32> {
    let sk: u64 = ctx.arg(0).ok_or(0u32)?;
    let _ = RETRANSMITTING.insert(&sk, &1, 0);
    calls::enter(ctx, sk);
    Ok(0)
}

fn try_enter_inner(ctx: &ProbeContext) -> Result<u32, u32> {
    let sk: u64 = ctx.arg(0).ok_or(0u32)?;
    // SAFETY: only presence is checked.
    if unsafe { RETRANSMITTING.get(&sk) }.is_some() {
        // Called by tcp_retransmit_skb, whose return reports.
        return Ok(0);
    }
    calls::enter(ctx, sk);
    Ok(0)
}

#[inline(always)]
fn try_leave(ctx: &RetProbeContext, outer: bool) -> Result<u32, u32> {
    let sk = calls::leave(ctx).ok_or(0u32)?;
    if outer {
        let _ = RETRANSMITTING.remove(&sk);
    }
    if ctx.ret::<i32>() != 0 {
        // Not sent (e.g. still queued on the host, or no memory): the
        // tracepoint does not fire either.
        return Ok(0);
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.sk = sk;
    let state = sock::state(sk)?;
    sock::tuple(sk, ev)?;
    transition::retransmit(ev, state);
    Ok(0)
}
