//! Reading tracepoint records through the field offsets userspace supplied.

use aya_ebpf::programs::TracePointContext;
use tracer_common::{
    Event, FieldOffsets,
    layout::{ABSENT, ADDR_SOCKADDR},
    tcp::AF_INET,
};

/// Reads a `T` at `offset` in the record; `Err` when the field is absent.
#[inline(always)]
pub fn field<T>(ctx: &TracePointContext, offset: u16) -> Result<T, u32> {
    if offset == ABSENT {
        return Err(0);
    }
    // SAFETY: the offset comes from the kernel's own format file for this
    // tracepoint; bpf_probe_read_kernel checks the access anyway.
    unsafe { ctx.read_at::<T>(offset as usize) }.map_err(|_| 0)
}

/// Fills family, ports and addresses of `ev` from a tracepoint record.
#[inline(always)]
pub fn tuple(ctx: &TracePointContext, o: &FieldOffsets, ev: &mut Event) -> Result<(), u32> {
    if o.addr_mode == ADDR_SOCKADDR {
        // `saddr`/`daddr` hold a sockaddr_in or sockaddr_in6.
        ev.family = field::<u16>(ctx, o.saddr)?;
        ev.sport = u16::from_be(field::<u16>(ctx, o.saddr + 2)?);
        ev.dport = u16::from_be(field::<u16>(ctx, o.daddr + 2)?);
        if ev.family == AF_INET {
            ev.saddr[..4].copy_from_slice(&field::<[u8; 4]>(ctx, o.saddr + 4)?);
            ev.daddr[..4].copy_from_slice(&field::<[u8; 4]>(ctx, o.daddr + 4)?);
        } else {
            ev.saddr = field::<[u8; 16]>(ctx, o.saddr + 8)?;
            ev.daddr = field::<[u8; 16]>(ctx, o.daddr + 8)?;
        }
        return Ok(());
    }
    ev.family = field::<u16>(ctx, o.family)?;
    ev.sport = field::<u16>(ctx, o.sport)?;
    ev.dport = field::<u16>(ctx, o.dport)?;
    if ev.family == AF_INET {
        ev.saddr[..4].copy_from_slice(&field::<[u8; 4]>(ctx, o.saddr)?);
        ev.daddr[..4].copy_from_slice(&field::<[u8; 4]>(ctx, o.daddr)?);
    } else {
        ev.saddr = field::<[u8; 16]>(ctx, o.saddr_v6)?;
        ev.daddr = field::<[u8; 16]>(ctx, o.daddr_v6)?;
    }
    Ok(())
}
