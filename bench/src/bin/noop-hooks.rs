//! `noop-hooks`: the cost of the hooks alone, for `cargo xtask bench`.
//!
//! Attaches a program that returns at once to each hook given, prints
//! `bench: attached`, and keeps them attached until SIGINT or SIGTERM, then
//! exits with status 0. A hook is `raw:NAME` (a raw tracepoint),
//! `tracepoint:CATEGORY:NAME`, or `cgroup:WHERE` (`ingress`, `egress`,
//! `connect4`, `connect6`, `sendmsg4`, `sendmsg6`): a cgroup program on the
//! cgroup v2 root, found in /proc/mounts, where it sees every process of the
//! host, as tracer's are. Tracing programs return 0 (`r0 = 0; exit`); cgroup
//! programs return 1 (`r0 = 1; exit`), which lets the packet or call through.
//! Each cgroup program is held by a BPF link, so it is gone when this process
//! is, however it ends. Traffic slowed by this process is slowed by the
//! kernel's dispatch to the hooks, not by what any program does there.

use std::{
    ffi::CString,
    fs::{self, File},
    io,
    os::fd::{FromRawFd as _, OwnedFd, RawFd},
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};
// What it prints once every hook is attached is what the benchmark waits for.
use tracer_bench::{CgroupHook, READY, cgroup_v2_root_in};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IO('$', 0)` and `_IOW('$', 8, __u32)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `r0 = 0` (BPF_ALU64 | BPF_MOV | BPF_K) and `exit` (BPF_JMP | BPF_EXIT).
const RETURN_ZERO: [u64; 2] = [0xb7, 0x95];
/// `r0 = 1` (the immediate in the upper 32 bits) and `exit`: a cgroup
/// program's "let it through".
const RETURN_ONE: [u64; 2] = [0xb7 | (1 << 32), 0x95];

/// The leading members of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    /// Checked at load for cgroup programs; must match where they attach.
    expected_attach_type: u32,
}

/// The leading members of `union bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 2],
}

/// `union bpf_attr` for `BPF_RAW_TRACEPOINT_OPEN`.
#[repr(C)]
struct RawTracepointOpen {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes), with only
/// type, size and config set.
#[repr(C)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    rest: [u64; 12],
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("noop-hooks: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let hooks: Vec<String> = std::env::args().skip(1).collect();
    if hooks.is_empty() || hooks.iter().any(|h| h == "--help" || h == "-h") {
        bail!("usage: noop-hooks raw:NAME|tracepoint:CATEGORY:NAME|cgroup:WHERE...");
    }
    // Blocked before anything is attached, so a signal is never missed.
    let signals = stop_signals();
    // SAFETY: a valid signal set; blocks them for this (only) thread.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };

    let mut attached = Vec::new();
    for hook in &hooks {
        let fds = attach(hook).with_context(|| format!("attaching to {hook}"))?;
        attached.push(fds);
    }
    println!("{READY}");
    let mut signal = 0;
    // SAFETY: waits for one of the blocked signals.
    unsafe { libc::sigwait(&signals, &mut signal) };
    drop(attached);
    Ok(())
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

/// Loads a program that returns 0 and attaches it to `hook`; the descriptors
/// keep it attached.
fn attach(hook: &str) -> Result<(OwnedFd, OwnedFd)> {
    if let Some(name) = hook.strip_prefix("raw:") {
        let prog = load(BPF_PROG_TYPE_RAW_TRACEPOINT, 0, &RETURN_ZERO)?;
        let name = CString::new(name).context("hook name")?;
        let attr = RawTracepointOpen {
            name: name.as_ptr() as u64,
            prog_fd: fd_u32(&prog),
            _pad: 0,
        };
        let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &attr).context("BPF_RAW_TRACEPOINT_OPEN")?;
        return Ok((prog, link));
    }
    if let Some(target) = hook.strip_prefix("tracepoint:") {
        let Some((category, name)) = target.split_once(':') else {
            bail!("expected tracepoint:CATEGORY:NAME");
        };
        let id = tracepoint_id(category, name)?;
        let prog = load(BPF_PROG_TYPE_TRACEPOINT, 0, &RETURN_ZERO)?;
        let attr = PerfEventAttr {
            kind: PERF_TYPE_TRACEPOINT,
            size: std::mem::size_of::<PerfEventAttr>() as u32,
            config: id,
            rest: [0; 12],
        };
        // SAFETY: perf_event_open(2) reads `size` bytes of `attr`; the event
        // is for every process (pid -1) on CPU 0, as a BPF tracepoint needs.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &raw const attr,
                -1 as libc::pid_t,
                0 as libc::c_int,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        let event = owned(fd).context("perf_event_open")?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&event);
        // SAFETY: ioctls on a perf event descriptor this function owns.
        if unsafe { libc::ioctl(raw, PERF_EVENT_IOC_SET_BPF, fd_u32(&prog)) } != 0 {
            return Err(io::Error::last_os_error()).context("PERF_EVENT_IOC_SET_BPF");
        }
        // SAFETY: as above.
        if unsafe { libc::ioctl(raw, PERF_EVENT_IOC_ENABLE, 0) } != 0 {
            return Err(io::Error::last_os_error()).context("PERF_EVENT_IOC_ENABLE");
        }
        return Ok((prog, event));
    }
    if let Some(at) = hook.strip_prefix("cgroup:") {
        let Some(CgroupHook {
            prog_type,
            attach_type,
            ..
        }) = CgroupHook::named(at)
        else {
            bail!("expected cgroup:ingress|egress|connect4|connect6|sendmsg4|sendmsg6");
        };
        let mounts = fs::read_to_string("/proc/mounts").context("reading /proc/mounts")?;
        let Some(root) = cgroup_v2_root_in(&mounts) else {
            bail!("no cgroup v2 file system is mounted (see /proc/mounts)");
        };
        let dir = File::open(&root).with_context(|| format!("opening {}", root.display()))?;
        let prog = load(prog_type, attach_type, &RETURN_ONE)?;
        let attr = LinkCreate {
            prog_fd: fd_u32(&prog),
            target_fd: std::os::fd::AsRawFd::as_raw_fd(&dir) as u32,
            attach_type,
            flags: 0,
            _rest: [0; 2],
        };
        // A link, not BPF_PROG_ATTACH: it detaches when its descriptor closes.
        let link = bpf(BPF_LINK_CREATE, &attr)
            .with_context(|| format!("BPF_LINK_CREATE on {}", root.display()))?;
        return Ok((prog, link));
    }
    bail!("expected raw:NAME, tracepoint:CATEGORY:NAME or cgroup:WHERE")
}

/// Loads `insns` ([`RETURN_ZERO`] or [`RETURN_ONE`]) as a program of
/// `prog_type`; cgroup programs also need `expected_attach_type`.
fn load(prog_type: u32, expected_attach_type: u32, insns: &[u64; 2]) -> Result<OwnedFd> {
    let license = c"GPL";
    let attr = ProgLoad {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: *b"noop_hook\0\0\0\0\0\0\0",
        prog_ifindex: 0,
        expected_attach_type,
    };
    bpf(BPF_PROG_LOAD, &attr).context("BPF_PROG_LOAD")
}

/// The tracepoint's id, from tracefs.
fn tracepoint_id(category: &str, name: &str) -> Result<u64> {
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let path = format!("{root}/events/{category}/{name}/id");
        if let Ok(text) = fs::read_to_string(&path) {
            return text
                .trim()
                .parse()
                .with_context(|| format!("reading {path}"));
        }
    }
    bail!("no id for {category}:{name} under /sys/kernel/tracing (is tracefs mounted?)")
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> Result<OwnedFd> {
    // SAFETY: bpf(2) reads `size` bytes of `attr`, which is that large.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    owned(fd)
}

fn owned(fd: libc::c_long) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error().into());
    }
    let fd = RawFd::try_from(fd).context("invalid descriptor")?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    std::os::fd::AsRawFd::as_raw_fd(fd) as u32
}
