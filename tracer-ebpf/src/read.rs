//! Reading tracepoint records through the field offsets userspace supplied:
//! one field (`field`), or the start of the record at once (`record`, `get`).

use core::mem::MaybeUninit;

use aya_ebpf::{EbpfContext as _, programs::TracePointContext};
use tracer_common::{
    Event, FieldOffsets,
    layout::{ABSENT, ADDR_SOCKADDR},
    tcp::AF_INET,
};

use crate::mem::Prefix;

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

/// How many bytes from the start of a record [`record`] copies in one read:
/// every field tracer reads from the TCP and socket tracepoints on the kernels
/// it knows (the last, `tcp_send_reset`'s `daddr` on 6.18, ends at byte 88).
/// A record sits in the per-CPU trace buffer, which is 8 KiB, so reading a
/// shorter record's full length stays inside it.
const RECORD: usize = 96;

/// The first [`RECORD`] bytes of a tracepoint record.
pub type Record = Prefix<RECORD>;

/// Copies the start of the record: one read in place of one per field.
#[inline(always)]
pub fn record<'a>(
    ctx: &TracePointContext,
    slot: &'a mut MaybeUninit<Record>,
) -> Result<&'a Record, u32> {
    Record::read(slot, ctx.as_ptr() as *const u8)
}

/// The `T` at `offset`, from the copy `rec` when it lies inside, else read from
/// the record itself; `Err` when the field is absent.
#[inline(always)]
pub fn get<T: Copy>(ctx: &TracePointContext, rec: &Record, offset: u16) -> Result<T, u32> {
    match rec.get::<T>(offset) {
        Some(value) => Ok(value),
        None => field(ctx, offset),
    }
}

/// Fills family, ports and addresses of `ev` from a tracepoint record.
#[inline(always)]
pub fn tuple(
    ctx: &TracePointContext,
    rec: &Record,
    o: &FieldOffsets,
    ev: &mut Event,
) -> Result<(), u32> {
    if o.addr_mode == ADDR_SOCKADDR {
        // `saddr`/`daddr` hold a sockaddr_in or sockaddr_in6.
        ev.family = get::<u16>(ctx, rec, o.saddr)?;
        ev.sport = u16::from_be(get::<u16>(ctx, rec, o.saddr + 2)?);
        ev.dport = u16::from_be(get::<u16>(ctx, rec, o.daddr + 2)?);
        if ev.family == AF_INET {
            ev.saddr[..4].copy_from_slice(&get::<[u8; 4]>(ctx, rec, o.saddr + 4)?);
            ev.daddr[..4].copy_from_slice(&get::<[u8; 4]>(ctx, rec, o.daddr + 4)?);
        } else {
            ev.saddr = get::<[u8; 16]>(ctx, rec, o.saddr + 8)?;
            ev.daddr = get::<[u8; 16]>(ctx, rec, o.daddr + 8)?;
        }
        return Ok(());
    }
    ev.family = get::<u16>(ctx, rec, o.family)?;
    ev.sport = get::<u16>(ctx, rec, o.sport)?;
    ev.dport = get::<u16>(ctx, rec, o.dport)?;
    if ev.family == AF_INET {
        ev.saddr[..4].copy_from_slice(&get::<[u8; 4]>(ctx, rec, o.saddr)?);
        ev.daddr[..4].copy_from_slice(&get::<[u8; 4]>(ctx, rec, o.daddr)?);
    } else {
        ev.saddr = get::<[u8; 16]>(ctx, rec, o.saddr_v6)?;
        ev.daddr = get::<[u8; 16]>(ctx, rec, o.daddr_v6)?;
    }
    Ok(())
}
