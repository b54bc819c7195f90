//! What the kernel says about a running process: CPU time and peak memory from
//! `/proc/<pid>`, and the run time of the BPF programs it holds.

use std::{
    collections::BTreeMap,
    fs, io,
    os::fd::{FromRawFd as _, OwnedFd},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::hooks::CGROUP_HOOKS;

/// User plus system CPU seconds of every thread of `pid` so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_cpu_ticks(&stat).with_context(|| format!("unexpected {path}"))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
/// The command name (field 2) may contain spaces and parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds the whole machine spent in user and system mode (not in interrupts
/// or softirqs, which the kernel does not charge to tasks either), from `/proc/stat`.
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let ticks = parse_machine_busy_ticks(&stat).context("unexpected /proc/stat")?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// user + nice + system of the `cpu` line of `/proc/stat`, in clock ticks.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(3)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    (fields.len() == 3).then(|| fields.iter().sum())
}

/// CPU seconds used by this process and its waited-for children.
pub fn own_cpu_seconds() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: rusage is plain data, filled by getrusage.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid `who` and pointer.
        if unsafe { libc::getrusage(who, &mut usage) } == 0 {
            total += timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime);
        }
    }
    total
}

pub fn timeval_seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// Measures the CPU that processes other than the benchmark and its children use
/// while it runs: the noise in its samples.
pub struct OtherLoad {
    at: std::time::Instant,
    busy: f64,
    own: f64,
}

impl OtherLoad {
    pub fn start() -> Result<Self> {
        Ok(Self {
            at: std::time::Instant::now(),
            busy: machine_busy_seconds()?,
            own: own_cpu_seconds(),
        })
    }

    /// Cores' worth of CPU used elsewhere since [`OtherLoad::start`]. Only exact
    /// once the children started since then have been waited for.
    pub fn cores(&self) -> Result<f64> {
        let busy = machine_busy_seconds()? - self.busy;
        let own = own_cpu_seconds() - self.own;
        let wall = self.at.elapsed().as_secs_f64();
        Ok(if wall > 0.0 {
            ((busy - own) / wall).max(0.0)
        } else {
            0.0
        })
    }
}

/// What `pid` is doing, for a message about a process that does not stop: its
/// state and the kernel function each of its threads waits in.
pub fn describe_wait(pid: u32) -> String {
    let state = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("State:"))?;
            Some(line.trim_start_matches("State:").trim().to_owned())
        })
        .unwrap_or_else(|| "state unknown".into());
    let mut waits: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(|task| {
            let task = task.ok()?;
            let wchan = fs::read_to_string(task.path().join("wchan")).ok()?;
            Some(format!(
                "{}:{}",
                task.file_name().to_string_lossy(),
                wchan.trim()
            ))
        })
        .collect();
    waits.sort();
    format!("{state}; threads waiting in {}", waits.join(", "))
}

/// Peak resident memory (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_kib(&status, "VmHWM").with_context(|| format!("no VmHWM in {path}"))
}

/// How often the main thread of `pid` went to sleep waiting (voluntary context
/// switches): for a reader of a ring buffer, about how often it was woken.
pub fn voluntary_switches(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_kib(&status, "voluntary_ctxt_switches")
        .with_context(|| format!("no voluntary_ctxt_switches in {path}"))
}

/// A `Key:   1234 kB` (or `Key:  1234`) line of `/proc/<pid>/status`.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// One BPF program held open by a process, with its run statistics (which the
/// kernel only advances while [`RunTimeStats`] are enabled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BpfProgram {
    pub id: u32,
    /// The tracepoint it is attached to, where the process holds a BPF link
    /// saying so (e.g. `inet_sock_set_state`); otherwise `prog <id>`.
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// The BPF programs `pid` holds open, read from `/proc/<pid>/fdinfo`, by id.
pub fn bpf_programs(pid: u32) -> Result<BTreeMap<u32, BpfProgram>> {
    let dir = format!("/proc/{pid}/fd");
    let mut programs = BTreeMap::new();
    let mut attached: BTreeMap<u32, String> = BTreeMap::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let Ok(entry) = entry else { continue };
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let is_prog = target == "anon_inode:bpf-prog";
        if !is_prog && target != "anon_inode:bpf_link" {
            continue;
        }
        let info_path = format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy());
        // The fd may have been closed since the directory was read.
        let Ok(text) = fs::read_to_string(&info_path) else {
            continue;
        };
        let info = parse_fdinfo(&text);
        let Some(id) = info.get("prog_id").and_then(|v| v.parse().ok()) else {
            continue;
        };
        if is_prog {
            let number = |key: &str| info.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
            programs.insert(
                id,
                BpfProgram {
                    id,
                    name: format!("prog {id}"),
                    run_time_ns: number("run_time_ns"),
                    run_cnt: number("run_cnt"),
                },
            );
        } else if let Some(tp) = info.get("tp_name") {
            attached.insert(id, (*tp).to_owned());
        } else if let Some(at) = cgroup_link_name(&info) {
            attached.insert(id, at);
        }
    }
    for (id, name) in attached {
        if let Some(program) = programs.get_mut(&id) {
            program.name = name;
        }
    }
    Ok(programs)
}

/// `cgroup ingress` for the fdinfo of a cgroup link attached at ingress.
fn cgroup_link_name(info: &BTreeMap<&str, &str>) -> Option<String> {
    if info.get("link_type") != Some(&"cgroup") {
        return None;
    }
    let attach_type: u32 = info.get("attach_type")?.parse().ok()?;
    let hook = CGROUP_HOOKS.iter().find(|h| h.attach_type == attach_type)?;
    Some(format!("cgroup {}", hook.name))
}

/// Program types that run on kernel events (kprobe, tracepoint, perf event, raw
/// tracepoint, tracing, writable raw tracepoint): another process holding one of
/// these may be tracing what the benchmark measures.
const TRACING_PROG_TYPES: &[&str] = &["2", "5", "7", "17", "24", "26"];

/// Processes other than `exclude` that hold tracing BPF programs, as
/// `pid comm (N programs)`.
pub fn other_tracers(exclude: &[u32]) -> Vec<String> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let programs = fds
            .flatten()
            .filter(|fd| {
                fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-prog")
            })
            .filter(|fd| {
                let info = entry.path().join("fdinfo").join(fd.file_name());
                fs::read_to_string(info).is_ok_and(|text| {
                    parse_fdinfo(&text)
                        .get("prog_type")
                        .is_some_and(|t| TRACING_PROG_TYPES.contains(t))
                })
            })
            .count();
        if programs > 0 {
            let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            found.push(format!("{pid} {} ({programs} programs)", comm.trim()));
        }
    }
    found.sort();
    found
}

/// `key:\tvalue` lines of an fdinfo file.
pub fn parse_fdinfo(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.trim(), value.trim()))
        })
        .collect()
}

/// What each program did between two snapshots of [`bpf_programs`]; programs
/// that are not in both are left out.
pub fn bpf_delta(
    before: &BTreeMap<u32, BpfProgram>,
    after: &BTreeMap<u32, BpfProgram>,
) -> Vec<BpfProgram> {
    after
        .values()
        .filter_map(|now| {
            let then = before.get(&now.id)?;
            Some(BpfProgram {
                id: now.id,
                name: now.name.clone(),
                run_time_ns: now.run_time_ns.saturating_sub(then.run_time_ns),
                run_cnt: now.run_cnt.saturating_sub(then.run_cnt),
            })
        })
        .collect()
}

/// BPF run-time statistics switched on for as long as this value lives.
///
/// This uses `BPF_ENABLE_STATS` rather than writing `kernel.bpf_stats_enabled`:
/// the kernel counts the holders of such descriptors together with the sysctl
/// and switches the statistics off again when the last one closes — also when
/// the benchmark is killed — so the sysctl's value is never touched.
pub struct RunTimeStats(#[expect(dead_code, reason = "held only to keep the stats on")] OwnedFd);

impl RunTimeStats {
    pub fn enable() -> Result<Self> {
        const BPF_ENABLE_STATS: libc::c_long = 32;
        const BPF_STATS_RUN_TIME: u32 = 0;
        // `union bpf_attr` for this command: `struct { __u32 type; } enable_stats`.
        let attr: u32 = BPF_STATS_RUN_TIME;
        // SAFETY: bpf(2) reads `size` bytes of `attr`, which is that large.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_ENABLE_STATS,
                (&raw const attr).cast::<libc::c_void>(),
                std::mem::size_of::<u32>() as libc::c_uint,
            )
        };
        if fd < 0 {
            let err = io::Error::last_os_error();
            bail!("cannot enable BPF run-time statistics (BPF_ENABLE_STATS): {err}");
        }
        let fd = i32::try_from(fd).context("bpf(2) returned an invalid descriptor")?;
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_fields_after_the_command_name() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    79 23 0 0 20 0 1 0 5000 100000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(102));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn machine_busy_is_user_nice_system() {
        let stat = "cpu  320961 7 75157 350820 4269 0 4513 24360 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine_busy_ticks(stat), Some(320_961 + 7 + 75_157));
        assert_eq!(parse_machine_busy_ticks("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn status_values_in_kib() {
        let status = "Name:\ttracer\nVmPeak:\t  100 kB\nVmHWM:\t   31048 kB\nVmRSS:\t 19956 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(31048));
        assert_eq!(status_kib(status, "VmRSS"), Some(19956));
        assert_eq!(status_kib(status, "VmSwap"), None);
        let switches = "voluntary_ctxt_switches:\t5321\nnonvoluntary_ctxt_switches:\t12\n";
        assert_eq!(status_kib(switches, "voluntary_ctxt_switches"), Some(5321));
    }

    #[test]
    fn fdinfo_of_a_program_and_a_link() {
        let prog = "pos:\t0\nprog_type:\t5\nprog_id:\t820\nrun_time_ns:\t1500\nrun_cnt:\t10\n";
        let info = parse_fdinfo(prog);
        assert_eq!(info.get("prog_id"), Some(&"820"));
        assert_eq!(info.get("run_time_ns"), Some(&"1500"));
        let link = "link_type:\tperf\nprog_id:\t820\ntp_name:\tinet_sock_set_state\n";
        assert_eq!(
            parse_fdinfo(link).get("tp_name"),
            Some(&"inet_sock_set_state")
        );
        let cgroup = "link_type:\tcgroup\nlink_id:\t7\nprog_id:\t821\ncgroup_id:\t1\n\
                      attach_type:\t1\n";
        assert_eq!(
            cgroup_link_name(&parse_fdinfo(cgroup)).as_deref(),
            Some("cgroup egress")
        );
        assert_eq!(cgroup_link_name(&parse_fdinfo(link)), None);
    }

    #[test]
    fn delta_between_snapshots() {
        let program = |id, run_time_ns, run_cnt| BpfProgram {
            id,
            name: format!("p{id}"),
            run_time_ns,
            run_cnt,
        };
        let before = BTreeMap::from([(1, program(1, 100, 2)), (2, program(2, 0, 0))]);
        let after = BTreeMap::from([(1, program(1, 700, 5)), (3, program(3, 50, 1))]);
        assert_eq!(bpf_delta(&before, &after), vec![program(1, 600, 3)]);
    }
}
