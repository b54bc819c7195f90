//! Everything that touches the kernel's eBPF side: the hooks (`hooks`), the
//! plan chosen for this kernel (`plan`), loading (`loader`, `seed`) and
//! attaching (`attach`), tracepoint formats and BTF, the ring-buffer reader
//! and counters.

pub mod attach;
pub mod btf;
pub mod counters;
pub mod format;
pub mod hooks;
pub mod loader;
pub mod plan;
pub mod reader;
pub mod reasons;
pub mod seed;

/// The eBPF object built from `tracer-ebpf` by `build.rs`.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));
