//! How often /proc is sampled. A sample reads every socket in the kernel's
//! tables and every descriptor of the processes in scope; with 100k
//! connections that is a third of a core each second. Samples are spaced so
//! that they take at most [`CPU_SHARE`] of one core, but never further apart
//! than [`SPACING_MAX`]; a small host is still sampled every interval.

use std::time::{Duration, Instant};

/// The most of one core that /proc samples may take (2 %).
pub const CPU_SHARE: f64 = 0.02;
/// The longest time between samples, whatever they cost: gauges older than
/// this would mislead more than the CPU saved is worth.
pub const SPACING_MAX: Duration = Duration::from_secs(30);

/// When the next sample is due, from what the last one cost.
#[derive(Debug, Clone)]
pub struct Pacing {
    every: Duration,
    spacing: Duration,
    next: Option<Instant>,
}

impl Pacing {
    /// Samples every `every` until one costs more than the share allows.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            spacing: every,
            next: None,
        }
    }

    /// Whether a sample may start at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// Records a sample that started at `started` and cost `cpu` of CPU time
    /// (reading /proc plus applying the result).
    pub fn took(&mut self, started: Instant, cpu: Duration) {
        // Whole intervals, as samples start on the interval's ticks.
        let ticks = (cpu.div_f64(CPU_SHARE).as_secs_f64() / self.every.as_secs_f64()).ceil();
        self.spacing = self
            .every
            .mul_f64(ticks.max(1.0))
            .min(SPACING_MAX.max(self.every));
        // Due at the tick that falls in with the new spacing, not a little
        // after it (ticks come every `every`; started is close to one).
        self.next = Some(started + self.spacing - self.every.min(self.spacing) / 2);
    }

    /// The time between samples when it is longer than asked for (the host is
    /// too large to sample every interval), else `None`.
    pub fn stretched(&self) -> Option<Duration> {
        (self.spacing > self.every).then_some(self.spacing)
    }
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec; the clock exists on every Linux kernel.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_cheap_sample_keeps_the_interval() {
        let t0 = Instant::now();
        let mut p = Pacing::new(SECOND);
        assert!(p.due(t0), "the first sample is due at once");
        p.took(t0, Duration::from_millis(5));
        assert_eq!(p.stretched(), None);
        assert!(!p.due(t0 + Duration::from_millis(400)));
        assert!(p.due(t0 + SECOND), "due at the next tick");
        // A tick that comes a little early still counts.
        assert!(p.due(t0 + Duration::from_millis(990)));
    }

    #[test]
    fn an_expensive_sample_spaces_the_next_one_out() {
        let t0 = Instant::now();
        let mut p = Pacing::new(SECOND);
        // 300 ms of CPU at 2 % of a core: one sample every 15 s.
        p.took(t0, Duration::from_millis(300));
        assert_eq!(p.stretched(), Some(Duration::from_secs(15)));
        assert!(!p.due(t0 + Duration::from_secs(14)));
        assert!(p.due(t0 + Duration::from_secs(15)));
        // Cheap again (the connections closed): back to every interval.
        let t1 = t0 + Duration::from_secs(15);
        p.took(t1, Duration::from_millis(1));
        assert_eq!(p.stretched(), None);
        assert!(p.due(t1 + SECOND));
    }

    #[test]
    fn spacing_is_whole_intervals() {
        let t0 = Instant::now();
        let mut p = Pacing::new(Duration::from_millis(500));
        p.took(t0, Duration::from_millis(101));
        assert_eq!(p.stretched(), Some(Duration::from_millis(5500)));
    }

    #[test]
    fn spacing_has_a_ceiling() {
        let t0 = Instant::now();
        let mut p = Pacing::new(SECOND);
        p.took(t0, Duration::from_secs(3));
        assert_eq!(p.stretched(), Some(SPACING_MAX));
        assert!(p.due(t0 + SPACING_MAX));
    }

    #[test]
    fn long_intervals_are_kept() {
        let t0 = Instant::now();
        let mut p = Pacing::new(Duration::from_secs(60));
        p.took(t0, Duration::from_millis(300));
        assert_eq!(p.stretched(), None, "15 s of spacing is within 60 s");
        assert!(p.due(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn this_thread_has_used_cpu() {
        let before = thread_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu() > before);
    }
}
