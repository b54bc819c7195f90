//! One module per kernel hook. Each program is a thin entry point around a
//! `try_*` function; each file names the hook and the fields it reads.

mod destroy;
mod reset;
mod retransmit;
mod state;
mod support;
mod syscalls;
