//! Scheduling priority of tracer's threads: the thread that drains the ring
//! buffer runs ahead of ordinary processes, the /proc sampler behind them.

/// Nice value of the thread that reads events. The ring buffer holds a fraction
/// of a second of events at the highest rates; on a host whose CPUs are all
/// busy, a reader at the default priority waits its turn behind every runnable
/// process and the kernel drops what no longer fits (tens of thousands of
/// events while 11 processes open 100k connections on two cores). Its CPU use
/// follows the event rate and it is woken in batches, so running it first
/// costs the host no more CPU, only the order in which it gets it.
const READER_NICE: i32 = -10;

/// Nice value of the /proc sampler: background work that, on a busy host,
/// would otherwise take the CPU the reader and the traced services need.
const SAMPLER_NICE: i32 = 19;

/// Raises the calling thread, the event reader, above ordinary processes.
pub fn reader() {
    set_nice_of_this_thread(READER_NICE);
}

/// Lowers the calling thread, a /proc sample, below everything else.
pub fn sampler() {
    set_nice_of_this_thread(SAMPLER_NICE);
}

/// Best effort: without CAP_SYS_NICE (tracer run with CAP_BPF and
/// CAP_PERFMON only) raising fails and the priority stays as it was.
fn set_nice_of_this_thread(nice: i32) {
    // Linux keeps the nice value per thread; PRIO_PROCESS with a thread id
    // changes that thread only. Threads it starts later inherit it.
    if let Ok(tid) = u32::try_from(unsafe { libc::gettid() }) {
        // SAFETY: a plain system call on the calling thread.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sampler_thread_is_lowered() {
        std::thread::spawn(|| {
            super::sampler();
            // SAFETY: reads the calling thread's nice value.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as u32) };
            assert_eq!(nice, 19);
        })
        .join()
        .unwrap();
    }
}
