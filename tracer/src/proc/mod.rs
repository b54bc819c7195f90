//! What tracer reads from the system besides the ring buffer: processes,
//! their descriptors, their cgroups and their TCP sockets, from /proc and
//! netlink sock_diag. The types here are
//! the aggregator's input: the aggregator (and the snapshot, which carries
//! [`ProcessId`] and [`FdUsage`] as read) import them, never the reverse.

pub mod cgroup;
pub mod cgroup_filter;
pub mod netns;
pub mod netstat;
pub mod pacing;
pub mod process;
pub mod sampler;
pub mod sock_diag;
pub mod sockets;

pub use self::{
    cgroup::Cgroup,
    process::{FdUsage, ProcessId},
    sampler::{ProcessSample, Sample},
};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0} (check the pid with `ps -p {0}`)")]
    NoSuchPid(u32),
    #[error(
        "pid {pid} is the kernel thread `{comm}`, which makes no TCP connections of its own; \
         trace the process that uses the network"
    )]
    KernelThread { pid: u32, comm: String },
}

/// Whether `pid` names a live process (not a thread id of another process,
/// nor a zombie: an exited process its parent has not yet reaped).
pub fn exists(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let Some(status) = process::read_text(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let zombie = field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X'));
    !zombie && field("Tgid:").and_then(|v| v.parse().ok()) == Some(pid)
}

/// Checks every pid, failing on the first that does not exist or is a
/// kernel thread.
pub fn require_pids(pids: &[u32]) -> Result<(), ProcError> {
    for &pid in pids {
        if !exists(pid) {
            return Err(ProcError::NoSuchPid(pid));
        }
        if process::is_kernel_thread(pid) {
            return Err(ProcError::KernelThread {
                pid,
                comm: process::comm(pid),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_exists_and_zero_does_not() {
        assert!(exists(std::process::id()));
        assert!(!exists(0));
        assert!(require_pids(&[std::process::id(), u32::MAX - 1]).is_err());
        assert!(matches!(
            require_pids(&[2]),
            Err(ProcError::KernelThread { pid: 2, .. })
        ));
    }
}
