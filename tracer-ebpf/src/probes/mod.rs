//! One module per kernel hook. Each program is a thin entry point around a
//! `try_*` function; each file names the hook and the fields it reads. The
//! `kprobe_*` files are the kprobe plan's alternatives to `state` and
//! `retransmit` (`tracer --hooks kprobe`); `raw` holds the raw tracepoint
//! variants of `state`, `retransmit` and `destroy`.

mod destroy;
mod dns;
mod drop;
mod error_report;
mod kprobe_connect;
mod kprobe_listen;
mod kprobe_retransmit;
mod kprobe_state;
mod raw;
mod reset;
mod retransmit;
mod state;
mod support;
mod syscalls;
