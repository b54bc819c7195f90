//! Hook: raw tracepoint `inet_sk_error_report(sk)`, fired when the kernel
//! stores an error on a socket and wakes its owner: a reset or a timeout on
//! an established connection (ECONNRESET, ETIMEDOUT, EPIPE …), and also the
//! error of a failed connect, which userspace tells apart by the state the
//! connection closed from. Reads the protocol, state, tuple and `sk_err`
//! from `struct sock` (`sock`). A socket's own abort (no peer left) is not
//! reported.
//!
//! Softirq context mostly: the owner comes from the owner map.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::raw_tracepoint, programs::RawTracePointContext};
use tracer_common::{EventKind, tcp::IPPROTO_TCP};

use crate::{emit::emit, owner, sock};

#[raw_tracepoint(tracepoint = "inet_sk_error_report")]
pub fn raw_inet_sk_error_report(ctx: RawTracePointContext) -> i32 {
    match try_error_report(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_error_report(ctx: &RawTracePointContext) -> Result<(), u32> {
    let sk: u64 = ctx.arg(0);
    if sock::protocol(sk)? != IPPROTO_TCP {
        return Ok(());
    }
    let errno = sock::error(sk);
    if errno == 0 {
        return Ok(());
    }
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, unsafe { bpf_ktime_get_ns() });
    ev.kind = EventKind::SocketError as u32;
    ev.sk = sk;
    let state = sock::state(sk)?;
    ev.old_state = state;
    ev.new_state = state;
    ev.errno = errno;
    sock::tuple(sk, ev)?;
    // No peer: the socket's own abort (close with SO_LINGER {1, 0},
    // shutdown by disconnect) clears the peer before reporting ECONNRESET
    // to itself. That is the application's doing, not an error it met.
    if ev.dport == 0 {
        return Ok(());
    }
    // Looked up last, as `transition::retransmit` does: an owner held across
    // the reads above costs stack the verifier then finds uninitialised.
    let owner = owner::lookup(ev.sk);
    if owner::attribute(ev, owner) {
        emit(ev);
    }
    Ok(())
}
