//! Library target so `tracer`'s build script can depend on this crate; the
//! programs themselves are in the `tracer` binary target (`main.rs`).
#![no_std]
