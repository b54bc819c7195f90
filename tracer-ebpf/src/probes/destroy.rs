//! Hook: tracepoint `tcp:tcp_destroy_sock` (a full TCP socket is freed).
//! Reads skaddr at the offset in `LAYOUT_TCP_DESTROY_SOCK`.
//!
//! Deletes the socket's owner: freed `struct sock` addresses are reused, and a
//! stale owner would attribute a later socket to the wrong process. Deletion
//! waits for destroy (not CLOSE) because RSTs are still sent after CLOSE.

use aya_ebpf::{Global, macros::tracepoint, programs::TracePointContext};
use tracer_common::FieldOffsets;

use crate::{owner, read};

#[unsafe(no_mangle)]
static LAYOUT_TCP_DESTROY_SOCK: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

#[tracepoint]
pub fn tcp_destroy_sock(ctx: TracePointContext) -> u32 {
    match try_tcp_destroy_sock(&ctx) {
        Ok(r) | Err(r) => r,
    }
}

fn try_tcp_destroy_sock(ctx: &TracePointContext) -> Result<u32, u32> {
    let o = LAYOUT_TCP_DESTROY_SOCK.load();
    owner::forget(read::field::<u64>(ctx, o.skaddr)?);
    Ok(0)
}
