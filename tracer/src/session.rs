//! The state the event loop works on: events in, snapshots out to the sinks
//! and the live view.

mod identities;

use std::{
    io::Write as _,
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::sync::watch;

pub use self::identities::Identities;

use crate::{
    aggregate::Aggregator,
    ebpf::{counters::CounterMaps, reader::Reader},
    event::{Clock, Comm, TraceEvent, monotonic_ns},
    proc::{Sample, pacing::thread_cpu},
    sink::{
        csv::CsvSink,
        json::{self, JsonSink},
    },
    snapshot::{KernelCounts, Snapshot},
};

/// Everything the event loop works on.
pub struct Session {
    pub aggregator: Aggregator,
    pub identities: Identities,
    pub reader: Reader,
    pub counters: CounterMaps,
    pub clock: Clock,
    pub events: Option<JsonSink>,
    pub csv: Option<CsvSink>,
    /// The first failed write to `--events`, reported by `check_events`.
    pub write_error: Option<std::io::Error>,
    pub latest: Option<Arc<Snapshot>>,
    /// Where the live view reads snapshots, when it runs.
    pub view: Option<watch::Sender<Arc<Snapshot>>>,
    /// How often /proc is sampled, when that is less often than snapshots
    /// are taken (a host too large to sample every interval).
    pub sampled_every: Option<Duration>,
}

impl Session {
    pub async fn drain(&mut self) -> anyhow::Result<()> {
        let (aggregator, reader, mut feed) = self.split();
        reader
            .drain(|ev| feed.observe(aggregator, &ev))
            .await
            .context("reading the ring buffer")?;
        if let Some(sink) = feed.sink.as_mut() {
            sink.flush().ok();
        }
        Ok(())
    }

    pub fn drain_now(&mut self) {
        let (aggregator, reader, mut feed) = self.split();
        reader.drain_now(|ev| feed.observe(aggregator, &ev));
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
            reader.drain_now(|ev| feed.observe(aggregator, &ev));
            draining += thread_cpu().saturating_sub(before);
        });
        thread_cpu().saturating_sub(start).saturating_sub(draining)
    }

    /// The aggregator, the reader, and what every event read goes through,
    /// borrowed apart.
    fn split(&mut self) -> (&mut Aggregator, &mut Reader, Feed<'_>) {
        (
            &mut self.aggregator,
            &mut self.reader,
            Feed {
                identities: &mut self.identities,
                sink: &mut self.events,
                error: &mut self.write_error,
            },
        )
    }

    /// Takes a snapshot; the live view gets it at once.
    pub fn take(&mut self) -> anyhow::Result<Arc<Snapshot>> {
        let mut kernel = KernelCounts {
            read: self.reader.read,
            decode_errors: self.reader.decode_errors,
            ..KernelCounts::default()
        };
        self.counters
            .read_into(&mut kernel)
            .context("reading the kernel counters")?;
        let mut snapshot = self
            .aggregator
            .snapshot(SystemTime::now(), monotonic_ns(), kernel);
        snapshot.sampled_every = self.sampled_every;
        let snapshot = Arc::new(snapshot);
        if let Some(view) = &self.view {
            view.send_replace(Arc::clone(&snapshot));
        }
        self.latest = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// Hands a snapshot to the CSV file and a `stats` line to `--events`.
    pub fn write(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        if let Some(csv) = self.csv.as_mut() {
            csv.write(snapshot)?;
        }
        if let Some(sink) = self.events.as_mut() {
            let stats = json::render_stats(self.clock.wall_ns(monotonic_ns()), &snapshot.kernel);
            record(
                sink.write(&stats).and_then(|()| sink.flush()),
                &mut self.write_error,
            );
        }
        Ok(())
    }

    pub fn check_events(&mut self) -> anyhow::Result<()> {
        match self.write_error.take() {
            Some(err) => Err(err).context("writing --events output"),
            None => Ok(()),
        }
    }

    /// The exit summary on stderr. Written without `eprintln!`, which would
    /// panic when the terminal is already gone (a hang-up).
    pub fn summary(&self) {
        let Some(s) = self.latest.as_deref() else {
            return;
        };
        let k = &s.kernel;
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "tracer: {} events read; kernel: {} submitted, {} dropped (ring buffer full), {} filtered, {} unattributed, {} owners evicted (owner map full); {} undecodable",
            k.read,
            k.submitted,
            k.dropped,
            k.filtered,
            k.unattributed,
            k.owners_evicted,
            k.decode_errors
        );
        if let Some(csv) = &self.csv {
            let _ = writeln!(
                err,
                "tracer: {} CSV rows written to {}",
                csv.rows,
                csv.path().display()
            );
        }
    }
}

/// Where each event read goes besides the aggregator.
struct Feed<'a> {
    identities: &'a mut Identities,
    sink: &'a mut Option<JsonSink>,
    error: &'a mut Option<std::io::Error>,
}

impl Feed<'_> {
    /// Feeds one event to the aggregator and the `--events` output.
    fn observe(&mut self, aggregator: &mut Aggregator, ev: &TraceEvent) {
        let owner = (!ev.unattributed && ev.pid != 0).then(|| self.identities.identify(ev.pid));
        let observed = aggregator.observe(owner, ev);
        if let Some(sink) = self.sink.as_mut() {
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
            record(sink.event(ev, observed.state_at), self.error);
        }
    }
}

fn record(result: std::io::Result<()>, error: &mut Option<std::io::Error>) {
    if let Err(e) = result {
        error.get_or_insert(e);
    }
}
