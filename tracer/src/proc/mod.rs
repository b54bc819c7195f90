//! What tracer reads from the system besides the ring buffer: processes,
//! their descriptors and their TCP sockets, from /proc. The types here are
//! the aggregator's input: the aggregator (and the snapshot, which carries
//! [`ProcessId`] and [`FdUsage`] as read) import them, never the reverse.

pub mod pacing;
pub mod process;
pub mod sampler;
pub mod sockets;

pub use self::{
    process::{FdUsage, ProcessId},
    sampler::{ProcessSample, Sample},
};

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0} (check the pid with `ps -p {0}`)")]
    NoSuchPid(u32),
}

/// Whether `pid` names a live process (not a thread id of another process).
pub fn exists(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}/status")).exists() && tgid(pid) == Some(pid)
}

/// The thread-group id of `pid` (a thread id maps to its process).
pub fn tgid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Checks every pid, failing on the first that does not exist.
pub fn require_pids(pids: &[u32]) -> Result<(), ProcError> {
    match pids.iter().find(|&&p| !exists(p)) {
        Some(&p) => Err(ProcError::NoSuchPid(p)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_pid_exists_and_zero_does_not() {
        assert!(exists(std::process::id()));
        assert!(!exists(0));
        assert!(require_pids(&[std::process::id(), u32::MAX - 1]).is_err());
    }
}
