//! When the event loop does something besides reading events: a tick every
//! `every` (`--interval`, or [`VIEW_REFRESH`] for the live view) takes a
//! snapshot; /proc is sampled on the ticks [`Pacing`] allows, on a blocking
//! thread while events keep draining; CSV rows and `stats` lines are written
//! every `--interval`.

use std::time::Duration;

use anyhow::Context as _;
use tokio::{
    task::JoinHandle,
    time::{Instant, Interval, MissedTickBehavior},
};

use crate::{
    event::monotonic_ns,
    priority,
    proc::{
        ProcessId, Sample,
        pacing::{self, Pacing},
        sampler::Sampler,
    },
};

/// How often the live view gets a new snapshot, whatever `--interval` says
/// (which still paces CSV rows and `stats` lines).
pub const VIEW_REFRESH: Duration = Duration::from_secs(1);

/// What the loop is to do next.
#[derive(Debug)]
pub enum Due {
    /// Take a snapshot (the gauges stay those of the last sample).
    Snapshot,
    /// Start a /proc sample: call [`Schedule::start_sample`].
    Sample,
    /// A sample finished, having taken this much CPU time: apply it, then
    /// take a snapshot.
    Sampled(Sample, Duration),
}

/// How the spacing of /proc samples changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// Samples are now this far apart, more than a tick: a sample costs
    /// more than [`pacing::CPU_SHARE`] of a core at every tick.
    Stretched(Duration),
    /// Samples are taken at every tick again.
    Restored,
}

/// The loop's clock: ticks, the pacing of /proc samples, the sample under
/// way, and when the next `--interval` write is due.
pub struct Schedule {
    tick: Interval,
    every: Duration,
    interval: Duration,
    /// When the next CSV row and `stats` line are due.
    next_write: Instant,
    pacing: Pacing,
    /// The tick at which the last sample started.
    sample_started: Instant,
    /// The sampler, when no sample is under way.
    sampler: Option<Sampler>,
    /// The sample under way, on a blocking thread.
    pending: Option<JoinHandle<Sampled>>,
}

/// How often the live view gets a snapshot with this `--interval`.
pub fn view_refresh(interval: Duration) -> Duration {
    VIEW_REFRESH.min(interval)
}

/// A finished sample: the sampler back, what it read, and the CPU time it took.
type Sampled = (Sampler, Sample, Duration);

impl Schedule {
    /// Starts ticking now: every `interval`, or every [`VIEW_REFRESH`] at most
    /// for the live view; the first write is due one `interval` from now.
    pub async fn start(sampler: Sampler, interval: Duration, live_view: bool) -> Self {
        let every = if live_view {
            view_refresh(interval)
        } else {
            interval
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        let now = Instant::now();
        Self {
            tick,
            every,
            interval,
            next_write: now + interval,
            // On a large host /proc is sampled less often than snapshots are
            // taken; the snapshots in between keep the gauges of the last sample.
            pacing: Pacing::new(every),
            sample_started: now,
            sampler: Some(sampler),
            pending: None,
        }
    }

    /// The time between ticks.
    pub const fn every(&self) -> Duration {
        self.every
    }

    /// Waits until there is something to do. Cancel-safe: a `select!` may
    /// drop it and call again.
    pub async fn next(&mut self) -> anyhow::Result<Due> {
        if let Some(handle) = self.pending.as_mut() {
            let done = handle.await;
            self.pending = None;
            let (sampler, sample, cpu) = done.context("the /proc sampler failed")?;
            self.sampler = Some(sampler);
            return Ok(Due::Sampled(sample, cpu));
        }
        self.tick.tick().await;
        let now = Instant::now();
        if self.pacing.due(now.into_std()) {
            self.sample_started = now;
            Ok(Due::Sample)
        } else {
            Ok(Due::Snapshot)
        }
    }

    /// Starts the sample [`Due::Sample`] asked for; `known` are the processes
    /// seen so far (see `Session::alive`).
    pub fn start_sample(&mut self, known: Vec<ProcessId>) {
        if let Some(sampler) = self.sampler.take() {
            self.pending = Some(spawn_sample(sampler, known));
        }
    }

    /// Records what the sample that just finished cost (reading it plus
    /// applying it), which spaces out the next ones; says so when the
    /// spacing moves off or back to every tick.
    pub fn took(&mut self, cpu: Duration) -> Option<Spacing> {
        let before = self.pacing.stretched();
        self.pacing.took(self.sample_started.into_std(), cpu);
        let after = self.pacing.stretched();
        if before != after {
            tracing::info!(?cpu, every = ?self.every, from = ?before, to = ?after, "/proc sample spacing changed");
        }
        match (before, after) {
            (None, Some(spacing)) => Some(Spacing::Stretched(spacing)),
            (Some(_), None) => Some(Spacing::Restored),
            _ => None,
        }
    }

    /// How often /proc is sampled when that is less often than every tick.
    pub fn sampled_every(&self) -> Option<Duration> {
        self.pacing.stretched()
    }

    /// Whether a snapshot taken now is to be written (the next `--interval`
    /// row is due within half a tick); if so, the one after is due an
    /// interval later.
    pub fn write_due(&mut self) -> bool {
        if Instant::now() + self.every / 2 >= self.next_write {
            self.next_write += self.interval;
            true
        } else {
            false
        }
    }

    /// Stops: waits for the sample under way (what it read is dropped) and
    /// hands back the sampler.
    pub async fn stop(mut self) -> anyhow::Result<Sampler> {
        if let Some(handle) = self.pending.take() {
            tracing::debug!("waiting for the /proc sample under way");
            let (sampler, _, _) = handle.await.context("the /proc sampler failed")?;
            self.sampler = Some(sampler);
        }
        self.sampler.context("the /proc sampler is busy")
    }
}

/// Takes one sample off the event loop and waits for it (the first and the
/// last of a trace); hands back the sampler with the sample and the CPU
/// time reading it took.
pub async fn sample_once(sampler: Sampler, known: Vec<ProcessId>) -> anyhow::Result<Sampled> {
    spawn_sample(sampler, known)
        .await
        .context("the /proc sampler failed")
}

/// Starts a /proc sample on a blocking thread: reading /proc on a busy host
/// takes long enough to fill the ring buffer, which this thread drains.
fn spawn_sample(mut sampler: Sampler, known: Vec<ProcessId>) -> JoinHandle<Sampled> {
    tokio::task::spawn_blocking(move || {
        priority::sampler();
        let _span = tracing::debug_span!("proc_sample", known = known.len()).entered();
        let started = std::time::Instant::now();
        let before = pacing::thread_cpu();
        let sample = sampler.sample(&known, monotonic_ns());
        let cpu = pacing::thread_cpu().saturating_sub(before);
        tracing::debug!(
            took = ?started.elapsed(),
            ?cpu,
            processes = sample.processes.len(),
            sockets = sample.processes.iter().map(|p| p.sockets.len()).sum::<usize>(),
            time_wait = sample.time_wait.len(),
            "/proc sampled"
        );
        (sampler, sample, cpu)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::sampler::Scope;

    const SECOND: Duration = Duration::from_secs(1);

    fn sampler() -> Sampler {
        Sampler::new(Scope::Pids(vec![std::process::id()]))
    }

    #[tokio::test]
    async fn the_live_view_ticks_every_second_and_writes_every_interval() {
        let mut s = Schedule::start(sampler(), 5 * SECOND, true).await;
        assert_eq!(s.every(), SECOND);
        assert!(!s.write_due(), "the first write is an interval away");
        let headless = Schedule::start(sampler(), 5 * SECOND, false).await;
        assert_eq!(headless.every(), 5 * SECOND);
    }

    #[tokio::test]
    async fn spacing_changes_are_reported_once() {
        let mut s = Schedule::start(sampler(), SECOND, false).await;
        // 300 ms of CPU at 2 % of a core: one sample every 15 s.
        let stretched = Some(Spacing::Stretched(15 * SECOND));
        assert_eq!(s.took(Duration::from_millis(300)), stretched);
        assert_eq!(s.took(Duration::from_millis(400)), None, "still stretched");
        assert_eq!(s.sampled_every(), Some(20 * SECOND));
        assert_eq!(s.took(Duration::from_millis(1)), Some(Spacing::Restored));
        assert_eq!(s.sampled_every(), None);
    }

    #[tokio::test]
    async fn a_sample_is_taken_off_the_loop() {
        let mut s = Schedule::start(sampler(), Duration::from_millis(10), false).await;
        assert!(matches!(s.next().await.unwrap(), Due::Sample));
        s.start_sample(Vec::new());
        match s.next().await.unwrap() {
            Due::Sampled(sample, _) => assert_eq!(sample.processes.len(), 1),
            other => panic!("expected the sample, got {other:?}"),
        }
        s.took(Duration::ZERO);
        assert!(matches!(s.next().await.unwrap(), Due::Sample));
        s.start_sample(Vec::new());
        // Stopping waits for the sample under way.
        let sampler = s.stop().await.unwrap();
        let (_, last, _) = sample_once(sampler, Vec::new()).await.unwrap();
        assert_eq!(last.processes.len(), 1);
    }
}
