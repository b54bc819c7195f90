//! One process's files under /proc: who it is (pid + start time), its
//! command name, its file descriptors and their limit.

use std::path::PathBuf;

/// A process: pid plus start time, so a reused pid is a different process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22);
    /// 0 when the process was gone before tracer could read it.
    pub start_ticks: u64,
}

/// File-descriptor use of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdUsage {
    pub open: u64,
    /// Soft RLIMIT_NOFILE; `None` for unlimited.
    pub limit: Option<u64>,
    /// Descriptors that are sockets (any family).
    pub sockets: u64,
}

/// The descriptors of a process, as `/proc/<pid>/fd` lists them.
#[derive(Debug, Default)]
pub struct Fds {
    pub open: u64,
    /// The inode of each descriptor that is a socket.
    pub socket_inodes: Vec<u64>,
}

fn file(pid: u32, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{name}"))
}

/// Every process id in /proc.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Start time in clock ticks (field 22 of `/proc/<pid>/stat`); `None` when
/// the process is gone.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(file(pid, "stat")).ok()?;
    parse_start_ticks(&stat)
}

/// The command name of a process (empty if it is gone).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(file(pid, "comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_default()
}

/// The descriptors of a process; `None` when it is gone (or not ours to read).
pub fn fds(pid: u32) -> Option<Fds> {
    let dir = std::fs::read_dir(file(pid, "fd")).ok()?;
    let mut fds = Fds::default();
    for entry in dir.flatten() {
        fds.open += 1;
        if let Some(inode) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|t| socket_inode(&t.to_string_lossy()))
        {
            fds.socket_inodes.push(inode);
        }
    }
    Some(fds)
}

/// The soft limit on open files of a process; `None` when unlimited or gone.
pub fn fd_limit(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(file(pid, "limits")).ok()?;
    parse_nofile_soft(&text)
}

/// Which network namespace a process lives in (the `ns/net` link), `None`
/// when it cannot be read.
pub fn netns(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(file(pid, "ns/net")).ok()
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Field 22 of a `/proc/<pid>/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its closing `)`.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; start time is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The soft "Max open files" of `/proc/<pid>/limits`; `None` when unlimited.
pub fn parse_nofile_soft(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = "1234 (we ird) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000000 100";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("garbage"), None);
    }

    #[test]
    fn soft_nofile_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n";
        assert_eq!(parse_nofile_soft(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_nofile_soft(unlimited), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    #[test]
    fn own_process() {
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        assert!(start_ticks(me).is_some_and(|t| t > 0));
        assert!(!comm(me).is_empty());
        let mine = fds(me).unwrap();
        assert!(mine.open >= mine.socket_inodes.len() as u64 && !mine.socket_inodes.is_empty());
        assert!(netns(me).is_some());
        assert!(all_pids().contains(&me));
        assert!(start_ticks(u32::MAX - 1).is_none() && fds(u32::MAX - 1).is_none());
    }
}
