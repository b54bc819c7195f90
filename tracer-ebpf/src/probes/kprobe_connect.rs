//! Hooks (kprobe plan): kprobes `tcp_v4_connect(sk, uaddr, len)` and
//! `tcp_v6_connect(sk, uaddr, len)`. Read only `sk`.
//!
//! connect() runs in the calling process, which owns the socket: record it,
//! with the time of the call as the start of the handshake. The CLOSE→SYN_SENT
//! change that follows (`kprobe_state`) finds this record. A v4-mapped IPv6
//! connect passes through both; the later record wins.

use aya_ebpf::{macros::kprobe, programs::ProbeContext};

use crate::owner;

#[kprobe]
pub fn kprobe_tcp_v4_connect(ctx: ProbeContext) -> u32 {
    match try_connect(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[kprobe]
pub fn kprobe_tcp_v6_connect(ctx: ProbeContext) -> u32 {
    match try_connect(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

#[inline(always)]
fn try_connect(ctx: &ProbeContext) -> Result<u32, u32> {
    let sk: u64 = ctx.arg(0).ok_or(0u32)?;
    if let Some(current) = owner::current() {
        owner::record(sk, &current);
    }
    Ok(0)
}
