//! Hooks: the exits of the network syscalls `socket`, `connect`, `accept`,
//! `accept4`, `bind` and `listen`, three ways:
//! - fexit on the syscall functions (`__x64_sys_connect(regs)`: the return
//!   value is the argument after `regs`), where the kernel allows tracing
//!   programs;
//! - kretprobes on the same functions, where kprobes exist;
//! - tracepoints `syscalls:sys_exit_*`, reading `ret` at the offset in
//!   `LAYOUT_SYS_EXIT` (the same in all six). Enabling any of these sends
//!   every syscall of every task on the host through the kernel's slow path,
//!   so userspace attaches them only when asked to.
//!
//! Process context: the caller is the process. Reports failures by errno;
//! EINPROGRESS and EAGAIN are how non-blocking sockets work, not errors.

use aya_ebpf::{
    Global,
    macros::{fexit, kretprobe, tracepoint},
    programs::{FExitContext, RetProbeContext, TracePointContext},
};
use tracer_common::{
    EventKind, FieldOffsets,
    event::{FLAG_NO_SOCKET, Syscall},
};

use crate::{emit::emit, owner, read};

const EAGAIN: i32 = 11;
const EINPROGRESS: i32 = 115;

#[unsafe(no_mangle)]
static LAYOUT_SYS_EXIT: Global<FieldOffsets> = Global::new(FieldOffsets::NONE);

macro_rules! sys_exit {
    ($name:ident, $call:expr) => {
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            match try_sys_exit(&ctx, $call) {
                Ok(r) | Err(r) => r,
            }
        }
    };
}

sys_exit!(sys_exit_socket, Syscall::Socket);
sys_exit!(sys_exit_connect, Syscall::Connect);
sys_exit!(sys_exit_accept, Syscall::Accept);
sys_exit!(sys_exit_accept4, Syscall::Accept4);
sys_exit!(sys_exit_bind, Syscall::Bind);
sys_exit!(sys_exit_listen, Syscall::Listen);

/// An fexit program on a syscall function. The section names no function:
/// userspace names it at load (it is arch-specific, `__x64_sys_…` here).
macro_rules! fexit_sys {
    ($name:ident, $call:expr) => {
        #[fexit]
        pub fn $name(ctx: FExitContext) -> u32 {
            // The syscall function's only argument is `regs`; the return
            // value follows it.
            report(ctx.arg::<i64>(1), $call);
            0
        }
    };
}

fexit_sys!(fexit_sys_socket, Syscall::Socket);
fexit_sys!(fexit_sys_connect, Syscall::Connect);
fexit_sys!(fexit_sys_accept, Syscall::Accept);
fexit_sys!(fexit_sys_accept4, Syscall::Accept4);
fexit_sys!(fexit_sys_bind, Syscall::Bind);
fexit_sys!(fexit_sys_listen, Syscall::Listen);

/// A kretprobe on a syscall function (attached by name from userspace).
macro_rules! kretprobe_sys {
    ($name:ident, $call:expr) => {
        #[kretprobe]
        pub fn $name(ctx: RetProbeContext) -> u32 {
            report(ctx.ret::<i64>(), $call);
            0
        }
    };
}

kretprobe_sys!(kretprobe_sys_socket, Syscall::Socket);
kretprobe_sys!(kretprobe_sys_connect, Syscall::Connect);
kretprobe_sys!(kretprobe_sys_accept, Syscall::Accept);
kretprobe_sys!(kretprobe_sys_accept4, Syscall::Accept4);
kretprobe_sys!(kretprobe_sys_bind, Syscall::Bind);
kretprobe_sys!(kretprobe_sys_listen, Syscall::Listen);

#[inline(always)]
fn try_sys_exit(ctx: &TracePointContext, call: Syscall) -> Result<u32, u32> {
    let ret = read::field::<i64>(ctx, LAYOUT_SYS_EXIT.load().ret)?;
    report(ret, call);
    Ok(0)
}

/// Emits a syscall error for a failed `call` that returned `ret`.
#[inline(always)]
fn report(ret: i64, call: Syscall) {
    if ret >= 0 {
        return;
    }
    let errno = (-ret) as i32;
    if errno == EINPROGRESS || errno == EAGAIN {
        return;
    }
    let Some(current) = owner::current() else {
        return;
    };
    let mut slot = core::mem::MaybeUninit::uninit();
    let ev = crate::emit::event(&mut slot, current.start_ns);
    ev.kind = EventKind::SyscallError as u32;
    ev.flags = FLAG_NO_SOCKET;
    ev.errno = errno;
    ev.value = call as u64;
    ev.pid = current.pid;
    ev.comm = current.comm;
    emit(ev);
}
