//! Sockets opened inside another network namespace. A netlink sock_diag
//! socket lists only the sockets of the namespace it was created in, and
//! entering a namespace takes CAP_SYS_ADMIN, which tracer drops once its
//! programs are attached. So one thread, started before that, keeps
//! CAP_SYS_ADMIN and CAP_SYS_PTRACE (nothing else) and does only this: given
//! a pid, it enters that process's network namespace, creates a sock_diag
//! socket there and comes back. The socket stays in the namespace it was
//! created in; the caller keeps it for the samples that follow.

use std::{
    fs::File,
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd},
    sync::{
        Mutex, OnceLock,
        mpsc::{self, Sender},
    },
};

use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};

use crate::privileges::{self, CAP_SYS_ADMIN, CAP_SYS_PTRACE};

type Reply = Sender<io::Result<OwnedFd>>;

/// The opener thread's inbox, once started.
static OPENER: OnceLock<Mutex<Sender<(u32, Reply)>>> = OnceLock::new();

/// Starts the opener thread, if it is not running. Call it while the
/// process still has CAP_SYS_ADMIN: the thread keeps what it needs of what
/// it was started with.
pub fn start() {
    OPENER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<(u32, Reply)>();
        let spawned = std::thread::Builder::new()
            .name("netns-opener".into())
            .spawn(move || {
                let keep = (1u64 << CAP_SYS_ADMIN) | (1u64 << CAP_SYS_PTRACE);
                let home = privileges::keep_on_this_thread(keep)
                    .and_then(|()| File::open("/proc/thread-self/ns/net"));
                for (pid, reply) in rx {
                    let opened = match &home {
                        Ok(home) => open_in(pid, home),
                        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                    };
                    let _ = reply.send(opened);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the namespace opener thread: {e}");
        }
        Mutex::new(tx)
    });
}

/// A sock_diag socket in the network namespace of `pid`, created by the
/// opener thread.
pub fn sock_diag_of(pid: u32) -> io::Result<Socket> {
    let Some(inbox) = OPENER.get() else {
        return Err(io::Error::other("the namespace opener was not started"));
    };
    let (tx, rx) = mpsc::channel();
    inbox
        .lock()
        .map_err(|_| io::Error::other("the namespace opener failed"))?
        .send((pid, tx))
        .map_err(|_| io::Error::other("the namespace opener has stopped"))?;
    let fd = rx
        .recv()
        .map_err(|_| io::Error::other("the namespace opener has stopped"))??;
    // SAFETY: the fd is a netlink socket this process owns, handed over whole.
    Ok(unsafe { Socket::from_raw_fd(fd.into_raw_fd()) })
}

/// A sock_diag socket in this thread's own namespace.
pub fn sock_diag_here() -> io::Result<Socket> {
    Socket::new(NETLINK_SOCK_DIAG)
}

/// Enters `pid`'s network namespace, opens a sock_diag socket there and
/// returns to `home`.
fn open_in(pid: u32, home: &File) -> io::Result<OwnedFd> {
    let target = File::open(format!("/proc/{pid}/ns/net"))?;
    enter(&target)?;
    let socket = sock_diag_here();
    let back = enter(home);
    let socket = socket?;
    back?;
    // SAFETY: the fd is ours; the Socket gives it up.
    Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
}

fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: setns on an open namespace file; it moves this thread only.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
