//! tracer's eBPF programs: one file per kernel hook under `probes/`, shared
//! maps in `maps`, attribution in `owner`, what an event means in
//! `transition`, record output in `emit`, reading tracepoint records in `read`
//! and sockets in `sock`, kretprobe bookkeeping in `calls`.
#![no_std]
#![no_main]
// For the one atomic add (`maps::atomic_add`); the eBPF build uses nightly anyway.
#![feature(asm_experimental_arch)]

mod calls;
mod emit;
mod maps;
mod mem;
mod owner;
mod probes;
mod read;
mod sock;
mod transition;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

// bpf_probe_read_kernel and the ring-buffer helpers are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
