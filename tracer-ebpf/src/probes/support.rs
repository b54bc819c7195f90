//! Minimal programs of each kind, loaded by `tracer doctor` to find out which
//! program kinds the running kernel accepts (by trying, not by version).
//! Hooks: kprobe and fentry on `tcp_v4_connect`; raw tracepoint
//! `inet_sock_set_state`. They read nothing and do nothing.

use aya_ebpf::{
    macros::{fentry, kprobe, raw_tracepoint},
    programs::{FEntryContext, ProbeContext, RawTracePointContext},
};

#[kprobe]
pub fn support_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[fentry(function = "tcp_v4_connect")]
pub fn support_fentry(_ctx: FEntryContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn support_raw_tracepoint(_ctx: RawTracePointContext) -> i32 {
    0
}
