//! Scheduling priority of tracer's threads: the thread that drains the ring
//! buffer runs ahead of ordinary processes, the /proc sampler behind them.

/// Nice value of the thread that reads events. The ring buffer holds a fraction
/// of a second of events at the highest rates; on a host whose CPUs are all
/// busy, a reader at the default priority waits its turn behind every runnable
/// process and the kernel drops what no longer fits (tens of thousands of
/// events while 11 processes open and close 100k connections on two cores).
/// Its CPU use follows the event rate and it is woken in batches, so running
/// it first costs the host no more CPU, only the order in which it gets it.
const READER_NICE: i32 = -10;

/// Nice value of the /proc sampler: background work that, on a busy host,
/// would otherwise take the CPU the reader and the traced services need.
const SAMPLER_NICE: i32 = 19;

/// Raises the calling thread, the event reader, above ordinary processes,
/// unless tracer was started with a nice value of its own (`nice -n 10
/// tracer`): that choice is the user's.
pub fn reader() {
    if nice_of_this_thread() == 0 {
        set_nice_of_this_thread(READER_NICE);
    }
}

/// Lowers the calling thread, a /proc sample, below everything else.
pub fn sampler() {
    set_nice_of_this_thread(SAMPLER_NICE);
}

// Linux keeps the nice value per thread, and PRIO_PROCESS with `who` 0 means
// the calling thread only; threads it starts later inherit the value.

/// The calling thread's nice value; -1 also when it cannot be read, which
/// leaves `reader` alone as any other value the user chose would.
fn nice_of_this_thread() -> i32 {
    // SAFETY: a plain system call about the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Best effort: without CAP_SYS_NICE (tracer run with CAP_BPF and
/// CAP_PERFMON only) raising fails and the priority stays as it was.
fn set_nice_of_this_thread(nice: i32) {
    // SAFETY: a plain system call on the calling thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_thread_is_lowered() {
        std::thread::spawn(|| {
            sampler();
            assert_eq!(nice_of_this_thread(), 19);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_nice_value_chosen_by_the_user_is_kept() {
        std::thread::spawn(|| {
            set_nice_of_this_thread(5);
            reader();
            assert_eq!(nice_of_this_thread(), 5);
        })
        .join()
        .unwrap();
    }
}
