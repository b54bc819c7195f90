//! One process's files under /proc: who it is (pid + start time), its
//! command name, its file descriptors and their limit.

use std::{
    path::{Path, PathBuf},
    sync::LazyLock,
    time::{Duration, SystemTime},
};

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

/// A /proc file as text. Read as bytes: a process may name itself with any
/// bytes (`prctl(PR_SET_NAME)`), which are shown lossily rather than making
/// the whole file unreadable, and the process invisible.
pub fn read_text(path: impl AsRef<Path>) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
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
    let stat = read_text(file(pid, "stat"))?;
    parse_start_ticks(&stat)
}

/// When a process started, from its start time in clock ticks since boot.
pub fn started_at(start_ticks: u64) -> Option<SystemTime> {
    static BOOT: LazyLock<Option<SystemTime>> = LazyLock::new(|| {
        let stat = read_text("/proc/stat")?;
        let btime = stat.lines().find_map(|l| l.strip_prefix("btime "))?;
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(btime.trim().parse().ok()?))
    });
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    if start_ticks == 0 || hz == 0 {
        return None;
    }
    Some((*BOOT)? + Duration::from_millis(start_ticks.saturating_mul(1000) / hz))
}

/// Whether `pid` is a kernel thread (PF_KTHREAD in `/proc/<pid>/stat`).
pub fn is_kernel_thread(pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    read_text(file(pid, "stat"))
        .as_deref()
        .and_then(|stat| stat_field(stat, 9))
        .and_then(|flags| flags.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// The command name of a process (empty if it is gone).
pub fn comm(pid: u32) -> String {
    read_text(file(pid, "comm"))
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
    let text = read_text(file(pid, "limits"))?;
    parse_nofile_soft(&text)
}

/// The inode number of the network namespace a process lives in (its
/// `ns/net` link, `net:[4026531840]`); `None` when it cannot be read.
pub fn netns_inum(pid: u32) -> Option<u32> {
    let link = std::fs::read_link(file(pid, "ns/net")).ok()?;
    link.to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
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
    stat_field(stat, 22)?.parse().ok()
}

/// Field `n` (from 3 on, numbered as in proc(5)) of a `/proc/<pid>/stat` line.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n.checked_sub(3)?)
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
        assert!(netns_inum(me).is_some_and(|n| n > 0));
        assert!(all_pids().contains(&me));
        assert!(start_ticks(u32::MAX - 1).is_none() && fds(u32::MAX - 1).is_none());
        let started = started_at(start_ticks(me).unwrap()).unwrap();
        let age = SystemTime::now().duration_since(started).unwrap();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        assert!(!is_kernel_thread(me));
        // kthreadd is pid 2 on every Linux.
        assert!(is_kernel_thread(2));
    }

    /// A name that is not UTF-8 is read, lossily, not lost with its process.
    #[test]
    fn names_that_are_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        std::fs::write(
            &path,
            b"77 (bad\xffname) S 1 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0\n",
        )
        .unwrap();
        let stat = read_text(&path).unwrap();
        assert_eq!(parse_start_ticks(&stat), Some(4242));
        assert!(stat.contains("bad\u{fffd}name"));
    }
}
