//! Wire types shared by the eBPF programs (`tracer-ebpf`) and the loader (`tracer`).
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of padding and `bool`, so both
//! sides agree on the bytes. Numeric ids are stable: never reuse or renumber one.
#![no_std]

pub mod dns;
pub mod event;
pub mod layout;
pub mod maps;
pub mod tcp;

pub use event::{Event, EventKind};
pub use layout::{AcceptOffsets, FieldOffsets, NetnsOffsets, SkbOffsets, SockOffsets};
pub use maps::{Counter, Owner};
