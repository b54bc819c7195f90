//! `--cgroup PATH`: a cgroup v2 directory whose processes (and those of the
//! cgroups below it) are traced. The path is given as the filesystem path
//! (`/sys/fs/cgroup/system.slice/nginx.service`) or relative to the cgroup v2
//! root, as `/proc/PID/cgroup` shows it (`/system.slice/nginx.service`). The
//! v2 root is found in /proc/mounts: `/sys/fs/cgroup` on a v2 host,
//! `/sys/fs/cgroup/unified` on a hybrid one.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Why a `--cgroup` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CgroupFilterError {
    #[error("--cgroup needs cgroup v2, and /proc/mounts lists no cgroup2 file system")]
    NoCgroup2,
    #[error(
        "--cgroup {given}: no such cgroup (looked for {looked}); give a directory under {root} \
         or a path as /proc/PID/cgroup shows it"
    )]
    NotFound {
        given: String,
        looked: String,
        root: String,
    },
}

/// Where cgroup v2 is mounted, from the text of /proc/mounts.
pub fn v2_root_in(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, dir, kind) = (fields.next()?, fields.next()?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// The cgroup v2 directory `given` names.
pub fn resolve(given: &Path) -> Result<PathBuf, CgroupFilterError> {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let root = v2_root_in(&mounts).ok_or(CgroupFilterError::NoCgroup2)?;
    let candidate = if given.starts_with(&root) {
        given.to_path_buf()
    } else {
        root.join(given.strip_prefix("/").unwrap_or(given))
    };
    if candidate.join("cgroup.procs").is_file() {
        return Ok(candidate);
    }
    Err(CgroupFilterError::NotFound {
        given: given.display().to_string(),
        looked: candidate.display().to_string(),
        root: root.display().to_string(),
    })
}

/// Every process in `dir` and the cgroups below it.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    // Bounded: a cgroup tree is not deep, but a walk must end.
    let mut visited = 0usize;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > 100_000 {
            break;
        }
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_root_on_v2_and_hybrid_hosts() {
        let v2 = "sysfs /sys sysfs rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(v2_root_in(v2), Some(PathBuf::from("/sys/fs/cgroup")));
        let hybrid = "tmpfs /sys/fs/cgroup tmpfs ro 0 0\n\
                      cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
                      cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n";
        assert_eq!(
            v2_root_in(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            v2_root_in("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"),
            None
        );
    }

    #[test]
    fn a_missing_cgroup_is_named() {
        let err = resolve(Path::new("/no/such/cgroup-for-tracer")).unwrap_err();
        assert!(err.to_string().contains("no such cgroup"), "{err}");
    }

    #[test]
    fn this_process_is_under_the_root() {
        let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let Some(root) = v2_root_in(&mounts) else {
            return;
        };
        assert_eq!(resolve(Path::new("/")).unwrap(), root);
        assert!(processes_under(&root).contains(&std::process::id()));
    }
}
