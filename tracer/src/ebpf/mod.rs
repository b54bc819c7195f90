//! Everything that touches the kernel's eBPF side: tracepoint formats, the
//! hook plan, loading and attaching, the ring-buffer reader and counters.

pub mod btf;
pub mod counters;
pub mod format;
pub mod hooks;
pub mod loader;
pub mod reader;

/// The eBPF object built from `tracer-ebpf` by `build.rs`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
