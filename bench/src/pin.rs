//! Pinning a workload's thread to one core, for the workload binaries.

use std::{io, mem};

/// Pins the calling thread to core `cpu`; on a machine without that core it
/// stays unpinned and this says so (on stderr, as `WHO: cannot pin …`).
pub fn pin_to(who: &str, cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < CPU_SETSIZE.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            -1
        } else {
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set)
        }
    };
    if rc != 0 {
        eprintln!(
            "{who}: cannot pin a thread to cpu {cpu}: {}",
            io::Error::last_os_error()
        );
    }
}
