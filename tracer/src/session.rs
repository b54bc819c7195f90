//! The state the event loop works on: events and /proc samples in,
//! snapshots out to the [`Outputs`].

mod identities;
mod outputs;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::sync::watch;

use self::outputs::EventLines;
pub use self::{identities::Identities, outputs::Outputs};
use crate::{
    aggregate::Aggregator,
    dns::{DnsMessage, Lookup},
    ebpf::{counters::CounterMaps, reader::Reader},
    event::{Clock, Comm, Record, TraceEvent, monotonic_ns},
    proc::{ProcessId, Sample, pacing::thread_cpu},
    sink::summary::Sampling,
    snapshot::{KernelCounts, Snapshot},
};

/// Everything the event loop works on.
pub struct Session {
    aggregator: Aggregator,
    identities: Identities,
    reader: Reader,
    counters: CounterMaps,
    clock: Clock,
    outputs: Outputs,
    /// The last snapshot taken, for the exit summary.
    latest: Option<Arc<Snapshot>>,
    /// How often /proc is sampled, when that is less often than snapshots
    /// are taken (a host too large to sample every interval).
    sampled_every: Option<Duration>,
    /// Every `--pid` has exited.
    traced_exited: bool,
    /// Failed syscalls are counted (a hook for them is attached).
    syscall_errors_counted: bool,
    /// What reading /proc and the socket tables has cost so far.
    sampling: Sampling,
}

impl Session {
    /// A session that starts counting now. `syscall_errors_counted`: a hook
    /// for failed syscalls is attached.
    pub fn new(
        reader: Reader,
        counters: CounterMaps,
        clock: Clock,
        outputs: Outputs,
        syscall_errors_counted: bool,
    ) -> Self {
        Self {
            aggregator: Aggregator::new(monotonic_ns()),
            identities: Identities::default(),
            reader,
            counters,
            clock,
            outputs,
            latest: None,
            sampled_every: None,
            traced_exited: false,
            syscall_errors_counted,
            sampling: Sampling::default(),
        }
    }

    /// Whether events carry their socket's network namespace (else /proc's
    /// sockets are matched with them in namespace 0).
    pub fn set_netns_known(&mut self, known: bool) {
        self.aggregator.set_netns_known(known);
    }

    /// Waits for events and takes in every one available.
    pub async fn drain(&mut self) -> anyhow::Result<()> {
        let (aggregator, reader, mut feed) = self.split();
        reader
            .drain(|record| feed.observe(aggregator, record))
            .await
            .context("reading the ring buffer")?;
        if let Some(events) = feed.events {
            events.flush();
        }
        Ok(())
    }

    /// Takes in every event available now, without waiting.
    pub fn drain_now(&mut self) {
        let (aggregator, reader, mut feed) = self.split();
        reader.drain_now(|record| feed.observe(aggregator, record));
    }

    /// Processes alive at the last sample or seen in events since: the ones
    /// a /proc sample must ask about besides those in scope.
    pub fn alive(&self) -> Vec<ProcessId> {
        self.aggregator.alive()
    }

    /// Writes the `--events` output's `start` line: where and how this run traces.
    pub fn announce(&mut self, start: &crate::sink::json::Start<'_>) {
        let now = self.clock.wall_ns(monotonic_ns());
        if let Some(events) = self.outputs.events() {
            events.start(now, start);
        }
    }

    /// Takes a /proc sample into the gauges and the process identities.
    /// Returns the CPU time that took, not counting the events read meanwhile.
    pub fn apply(&mut self, sample: Sample) -> Duration {
        let start = thread_cpu();
        let known = self.aggregator.alive();
        self.identities.refresh(&sample, &known);
        let (aggregator, reader, mut feed) = self.split();
        // Events keep draining: applying a large sample takes long enough
        // for a busy host to fill the ring buffer.
        let mut draining = Duration::ZERO;
        aggregator.apply_pausing(&sample, |aggregator| {
            let before = thread_cpu();
            reader.drain_now(|record| feed.observe(aggregator, record));
            draining += thread_cpu().saturating_sub(before);
        });
        thread_cpu().saturating_sub(start).saturating_sub(draining)
    }

    /// Counts one sample read, which took `cpu` (for the exit summary).
    pub fn count_sample(&mut self, cpu: Duration) {
        self.sampling.samples += 1;
        self.sampling.cpu += cpu;
    }

    /// Says in every snapshot from now on how often /proc is sampled, when
    /// less often than snapshots are taken.
    pub const fn set_sampled_every(&mut self, every: Option<Duration>) {
        self.sampled_every = every;
    }

    /// Says in every snapshot from now on that every `--pid` has exited.
    pub const fn set_traced_exited(&mut self) {
        self.traced_exited = true;
    }

    /// The aggregator, the reader, and what every event read goes through,
    /// borrowed apart.
    fn split(&mut self) -> (&mut Aggregator, &mut Reader, Feed<'_>) {
        (
            &mut self.aggregator,
            &mut self.reader,
            Feed {
                identities: &mut self.identities,
                events: self.outputs.events(),
            },
        )
    }

    /// Takes a snapshot and shows it (the live view gets it at once).
    pub fn take(&mut self) -> anyhow::Result<Arc<Snapshot>> {
        let mut kernel = KernelCounts {
            read: self.reader.read,
            decode_errors: self.reader.decode_errors,
            ..KernelCounts::default()
        };
        self.counters
            .read_into(&mut kernel)
            .context("reading the kernel counters")?;
        // What the ring buffer had no room for still counts.
        let lost = self
            .counters
            .lost_since()
            .context("reading the counts of lost events")?;
        for (key, n) in lost {
            let Some(ev) = TraceEvent::lost(&key) else {
                continue;
            };
            let owner = (key.pid != 0).then(|| self.identities.identify(key.pid));
            self.aggregator.observe_lost(owner, &ev, n);
        }
        // DNS queries that waited too long for an answer.
        {
            let (aggregator, _, mut feed) = self.split();
            for lookup in aggregator.expire_dns(monotonic_ns()) {
                feed.lookup(&lookup);
            }
        }
        let mut snapshot = self
            .aggregator
            .snapshot(SystemTime::now(), monotonic_ns(), kernel);
        snapshot.sampled_every = self.sampled_every;
        snapshot.traced_exited = self.traced_exited;
        snapshot.syscall_errors_counted = self.syscall_errors_counted;
        let snapshot = Arc::new(snapshot);
        self.outputs.show(&snapshot);
        self.latest = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// Takes a snapshot and starts the live view's feed with it.
    pub fn start_view(&mut self) -> anyhow::Result<watch::Receiver<Arc<Snapshot>>> {
        let first = self.take()?;
        Ok(self.outputs.start_view(first))
    }

    /// Writes a snapshot to the outputs that take one every --interval.
    pub fn write(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let wall_ns = self.clock.wall_ns(monotonic_ns());
        self.outputs.write(snapshot, wall_ns)
    }

    /// Fails if an output could not be written since the last check.
    pub fn check_outputs(&mut self) -> anyhow::Result<()> {
        self.outputs.check()
    }

    /// The exit summary of the last snapshot taken (stderr, `--summary-json`).
    pub fn summary(&mut self) -> anyhow::Result<()> {
        if let Some(last) = self.latest.as_deref() {
            self.outputs.summary(last, self.sampling)?;
        }
        Ok(())
    }
}

/// Where each event read goes besides the aggregator.
struct Feed<'a> {
    identities: &'a mut Identities,
    events: Option<&'a mut EventLines>,
}

impl Feed<'_> {
    /// Feeds one record to the aggregator and the `--events` output.
    fn observe(&mut self, aggregator: &mut Aggregator, record: Record) {
        match record {
            Record::Event(ev) => self.event(aggregator, &ev),
            Record::Dns(m) => self.dns(aggregator, m),
        }
    }

    /// A DNS message: a lookup it ends goes to `--events`.
    fn dns(&mut self, aggregator: &mut Aggregator, m: DnsMessage) {
        let owner =
            (!m.ev.unattributed && m.ev.pid != 0).then(|| self.identities.identify(m.ev.pid));
        if let Some(lookup) = aggregator.observe_dns(owner, m) {
            self.lookup(&lookup);
        }
    }

    /// Writes a lookup that ended to `--events`.
    fn lookup(&mut self, lookup: &Lookup) {
        if let Some(events) = self.events.as_mut() {
            let cgroup = lookup.owner.and_then(|id| self.identities.cgroup(id));
            events.lookup(lookup, cgroup);
        }
    }

    /// Feeds one event to the aggregator and the `--events` output.
    fn event(&mut self, aggregator: &mut Aggregator, ev: &TraceEvent) {
        let owner = (!ev.unattributed && ev.pid != 0).then(|| self.identities.identify(ev.pid));
        let observed = aggregator.observe(owner, ev);
        if let Some(events) = self.events.as_mut() {
            let resolved;
            let ev = match observed.owner {
                // Unattributed in the kernel, but the socket table names its holder.
                Some(id) if ev.unattributed => {
                    resolved = TraceEvent {
                        pid: id.pid,
                        comm: Comm::from(aggregator.comm(id).unwrap_or_default()),
                        unattributed: false,
                        ..*ev
                    };
                    &resolved
                }
                _ => ev,
            };
            let cgroup = observed.owner.and_then(|id| self.identities.cgroup(id));
            events.event(ev, cgroup, observed.state_at, observed.waited);
        }
    }
}
