//! Giving up privileges once the programs are attached. The rest of a run
//! needs only: CAP_BPF (reading the counter maps; or CAP_SYS_ADMIN where the
//! process has no CAP_BPF), CAP_SYS_PTRACE (listing other processes'
//! descriptors and namespaces in /proc) and CAP_DAC_READ_SEARCH (reading
//! their /proc files); with the live view also CAP_DAC_OVERRIDE, so that `s`
//! saves into the directory tracer was started in, as root could before
//! (a user's home, say). Every other capability is dropped, from the effective,
//! permitted, inheritable and ambient sets, and `no_new_privs` is set, so
//! that nothing tracer runs later can regain them.
//!
//! Capabilities belong to threads: this is called on the main thread before
//! any thread that lives on is started (threads started later inherit the
//! reduced sets); the `--events` writer, started earlier, drops all of its
//! own with [`drop_all_on_this_thread`], and the thread that opens sock_diag
//! sockets in other network namespaces (`proc::netns`) keeps only
//! CAP_SYS_ADMIN and CAP_SYS_PTRACE.

use std::io;

pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The calling thread's (effective, permitted) sets.
fn current() -> io::Result<(u64, u64)> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two Data records for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

/// Sets the calling thread's effective and permitted sets to `keep` (of
/// what it has), and its inheritable and ambient sets to nothing.
fn keep_only(keep: u64) -> io::Result<()> {
    let (_, permitted) = current()?;
    let set = permitted & keep;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let word = |n: u64, hi: bool| if hi { (n >> 32) as u32 } else { n as u32 };
    let data = [false, true].map(|hi| Data {
        effective: word(set, hi),
        permitted: word(set, hi),
        inheritable: 0,
    });
    // SAFETY: capset reads two Data records for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain prctl calls on the calling thread.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    Ok(())
}

/// The capabilities the rest of a run needs, given the effective set it
/// has: CAP_BPF (or, lacking it, CAP_SYS_ADMIN), CAP_SYS_PTRACE and
/// CAP_DAC_READ_SEARCH.
pub fn needed_after_load(effective: u64) -> u64 {
    let bit = |cap: u32| 1u64 << cap;
    let bpf = if effective & bit(CAP_BPF) != 0 {
        bit(CAP_BPF)
    } else {
        bit(CAP_SYS_ADMIN)
    };
    bpf | bit(CAP_SYS_PTRACE) | bit(CAP_DAC_READ_SEARCH)
}

/// Drops what the rest of the run does not need and sets `no_new_privs`.
/// `live_view`: keep CAP_DAC_OVERRIDE for its `s` key.
pub fn drop_after_load(live_view: bool) -> io::Result<()> {
    let (effective, _) = current()?;
    set_no_new_privs()?;
    let view = if live_view {
        1u64 << CAP_DAC_OVERRIDE
    } else {
        0
    };
    keep_only(needed_after_load(effective) | view)
}

/// Keeps only `keep` (of what it has) on the calling thread, and sets its
/// `no_new_privs`.
pub fn keep_on_this_thread(keep: u64) -> io::Result<()> {
    set_no_new_privs()?;
    keep_only(keep)
}

/// Drops every capability of the calling thread (a thread that only writes
/// to files already open).
pub fn drop_all_on_this_thread() -> io::Result<()> {
    keep_on_this_thread(0)
}

fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: a plain prctl call.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept() {
        let bit = |cap: u32| 1u64 << cap;
        let all = u64::MAX >> 23;
        assert_eq!(
            needed_after_load(all),
            bit(CAP_BPF) | bit(CAP_SYS_PTRACE) | bit(CAP_DAC_READ_SEARCH)
        );
        // An old-style grant of CAP_SYS_ADMIN alone keeps it for the maps.
        assert_eq!(
            needed_after_load(bit(CAP_SYS_ADMIN)),
            bit(CAP_SYS_ADMIN) | bit(CAP_SYS_PTRACE) | bit(CAP_DAC_READ_SEARCH)
        );
    }

    /// On a thread of its own (capabilities are per thread): afterwards it
    /// has none, and no_new_privs is set.
    #[test]
    fn a_thread_drops_everything() {
        std::thread::spawn(|| {
            drop_all_on_this_thread().unwrap();
            assert_eq!(current().unwrap(), (0, 0));
            // SAFETY: a plain prctl query.
            assert_eq!(
                unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) },
                1
            );
        })
        .join()
        .unwrap();
    }
}
