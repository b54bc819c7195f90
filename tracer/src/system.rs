//! Facts about the running system that decide whether tracer can run:
//! privileges, kernel version, tracefs, BTF, lockdown.

use std::{ffi::CString, path::Path};

use crate::ebpf::format::TRACEFS;

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(
        "tracer needs root or the capabilities CAP_BPF and CAP_PERFMON (missing: {missing}); run it with sudo"
    )]
    NotPrivileged { missing: String },
    #[error("kernel {release} is too old: tracer needs Linux 5.8 or newer (BPF ring buffer)")]
    KernelTooOld { release: String },
    #[error(
        "tracefs is not mounted at {TRACEFS} and mounting it failed ({0}); \
         mount it with `mount -t tracefs nodev {TRACEFS}`"
    )]
    Tracefs(std::io::Error),
}

use crate::privileges::{CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN};

/// Effective capability bits of this process.
fn effective_caps() -> u64 {
    crate::proc::process::read_text("/proc/self/status")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Names of the capabilities tracer needs but lacks (empty when it has them).
pub fn missing_capabilities() -> Vec<&'static str> {
    let caps = effective_caps();
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

pub fn require_privileges() -> Result<(), SystemError> {
    let missing = missing_capabilities();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SystemError::NotPrivileged {
            missing: missing.join(", "),
        })
    }
}

/// This host's name, or `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// `uname -r`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// (major, minor) of a release string such as `6.18.44-fc`.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub fn require_kernel() -> Result<(), SystemError> {
    let release = kernel_release();
    match parse_release(&release) {
        Some(v) if v < (5, 8) => Err(SystemError::KernelTooOld { release }),
        _ => Ok(()),
    }
}

/// What `ensure_tracefs` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracefs {
    AlreadyMounted,
    MountedNow,
}

/// Mounts tracefs at its usual place when it is not there yet.
pub fn ensure_tracefs() -> Result<Tracefs, SystemError> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(Tracefs::AlreadyMounted);
    }
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let (src, dst, fs) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(SystemError::Tracefs(std::io::Error::last_os_error()));
    }
    Ok(Tracefs::MountedNow)
}

/// `kernel.perf_event_paranoid`. Debian's kernels add a level 3, under which
/// only CAP_SYS_ADMIN may open perf events (tracepoints included), whatever
/// CAP_PERFMON says.
pub fn perf_event_paranoid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether this process has CAP_SYS_ADMIN.
pub fn has_sys_admin() -> bool {
    effective_caps() & (1u64 << CAP_SYS_ADMIN) != 0
}

/// Kernel lockdown mode (`none`, `integrity`, `confidentiality`), if reported.
/// Mounts securityfs when it is not mounted, as tracefs.
pub fn lockdown() -> Option<String> {
    const PATH: &str = "/sys/kernel/security/lockdown";
    if !Path::new(PATH).exists() {
        let c = |s: &str| CString::new(s).unwrap_or_default();
        let (src, dst, fs) = (c("none"), c("/sys/kernel/security"), c("securityfs"));
        // SAFETY: valid NUL-terminated strings; no data argument. Failure is fine.
        unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    }
    let text = std::fs::read_to_string(PATH).ok()?;
    // Format: `none integrity [confidentiality]`.
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_owned())
}

/// Whether the kernel can run kprobes (CONFIG_KPROBES): its perf event source
/// or the tracefs interface exists. `Err` says why not.
pub fn kprobes_available() -> Result<(), String> {
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe");
    let tracefs = Path::new(TRACEFS).join("kprobe_events");
    if pmu.exists() || tracefs.exists() {
        Ok(())
    } else {
        Err("this kernel has no kprobes (CONFIG_KPROBES is not set)".into())
    }
}

pub fn has_btf() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_release("6.1.0-56-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.4.0"), Some((5, 4)));
        assert_eq!(parse_release("garbage"), None);
    }
}
