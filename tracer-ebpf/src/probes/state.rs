//! Hook: tracepoint `sock:inet_sock_set_state` (every TCP state change).
//! Reads skaddr, oldstate, newstate, protocol and the address tuple at the
//! offsets in `LAYOUT_INET_SOCK_SET_STATE`.
//!
//! Attribution happens here: CLOSE→SYN_SENT (connect) and CLOSE→LISTEN (listen)
//! run in the owning process, so they record the owner; a new passive socket
//! (→SYN_RECV) takes the owner of the listener on its local port.

use aya_ebpf::{
    Global,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{
    Event, EventKind, FieldOffsets,
    tcp::{CLOSE, ESTABLISHED, IPPROTO_TCP, LISTEN, SYN_RECV, SYN_SENT},
};

use crate::{emit::emit, owner, read};

#[unsafe(no_mangle)]
static LAYOUT_INET_SOCK_SET_STATE: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

/// Byte offset of `sk_err` in `struct sock`, from the kernel's BTF; `u32::MAX`
/// when unknown (connect failures then carry no errno).
#[unsafe(no_mangle)]
static SOCK_SK_ERR_OFFSET: Global<u32> = Global::new(u32::MAX);

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    match try_inet_sock_set_state(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_inet_sock_set_state(ctx: &TracePointContext) -> Result<u32, u32> {
    let o = LAYOUT_INET_SOCK_SET_STATE.load();
    if read::field::<u16>(ctx, o.protocol)? != IPPROTO_TCP {
        return Ok(0);
    }
    let mut ev = Event::zeroed();
    ev.kind = EventKind::State as u32;
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    ev.sk = read::field::<u64>(ctx, o.skaddr)?;
    ev.old_state = read::field::<i32>(ctx, o.oldstate)? as u8;
    ev.new_state = read::field::<i32>(ctx, o.newstate)? as u8;
    read::tuple(ctx, &o, &mut ev)?;

    let owner = match (ev.old_state, ev.new_state) {
        // Process context: the caller of connect()/listen() owns the socket.
        (CLOSE, SYN_SENT) | (CLOSE, LISTEN) => {
            let current = owner::current();
            if let Some(cur) = &current {
                owner::record(ev.sk, cur);
                if ev.new_state == LISTEN {
                    owner::record_listener(ev.sport, cur);
                }
            }
            current
        }
        (_, SYN_RECV) => {
            let inherited = owner::listener(ev.sport).map(|mut l| {
                l.start_ns = ev.ts_ns;
                l
            });
            if let Some(l) = &inherited {
                owner::record(ev.sk, l);
            }
            inherited
        }
        // Kernels that do not trace the child's creation (6.1) show an accepted
        // socket first at SYN_RECV→ESTABLISHED.
        (SYN_RECV, _) => owner::lookup(ev.sk).or_else(|| {
            let inherited = owner::listener(ev.sport);
            if let Some(l) = &inherited {
                owner::record(ev.sk, l);
            }
            inherited
        }),
        _ => owner::lookup(ev.sk),
    };
    if !owner::attribute(&mut ev, owner) {
        return Ok(0);
    }
    if let (SYN_SENT, ESTABLISHED, Some(o)) = (ev.old_state, ev.new_state, &owner) {
        ev.value = ev.ts_ns.saturating_sub(o.start_ns);
    }
    // A connect that ends before ESTABLISHED: the kernel stored why in sk_err
    // (ECONNREFUSED, ETIMEDOUT, ...) before moving the socket to CLOSE.
    if ev.old_state == SYN_SENT && ev.new_state == CLOSE {
        let offset = SOCK_SK_ERR_OFFSET.load();
        if offset != u32::MAX {
            // SAFETY: reads kernel memory through bpf_probe_read_kernel.
            ev.errno = unsafe {
                bpf_probe_read_kernel(
                    (ev.sk as *const u8).wrapping_add(offset as usize) as *const i32
                )
            }
            .unwrap_or(0);
        }
    }
    if ev.old_state == LISTEN && ev.new_state == CLOSE {
        owner::forget_listener(ev.sport);
    }
    emit(&ev);
    Ok(0)
}
