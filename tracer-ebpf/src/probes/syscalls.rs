//! Hooks: tracepoints `syscalls:sys_exit_{socket,connect,accept,accept4,bind,listen}`.
//! Read `ret` at the offset in `LAYOUT_SYS_EXIT` (the same in all six).
//!
//! Process context: the caller is the process. Reports failures by errno;
//! EINPROGRESS and EAGAIN are how non-blocking sockets work, not errors.

use aya_ebpf::{Global, macros::tracepoint, programs::TracePointContext};
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

#[inline(always)]
fn try_sys_exit(ctx: &TracePointContext, call: Syscall) -> Result<u32, u32> {
    let ret = read::field::<i64>(ctx, LAYOUT_SYS_EXIT.load().ret)?;
    if ret >= 0 {
        return Ok(0);
    }
    let errno = (-ret) as i32;
    if errno == EINPROGRESS || errno == EAGAIN {
        return Ok(0);
    }
    let Some(current) = owner::current() else {
        return Ok(0);
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
    Ok(0)
}
