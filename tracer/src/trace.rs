//! The tracing session: checks, load, the event loop, and a clean stop.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};

use crate::{
    aggregate::Aggregator,
    cli::TraceArgs,
    ebpf::{
        counters::Counters,
        loader::{self, Filters, Settings},
        reader::Reader,
    },
    event::{Clock, TraceEvent},
    proc::{
        self,
        sampler::{Sampler, Scope},
    },
    sink::{
        csv::CsvSink,
        json::{self, JsonSink},
    },
    snapshot::{KernelCounts, Snapshot},
    system,
    tui::{self, ViewContext},
};

/// How often the live view gets a new snapshot, whatever `--interval` says
/// (which still paces CSV rows and `stats` lines).
const VIEW_REFRESH: Duration = Duration::from_secs(1);

/// Runs until Ctrl-C, SIGTERM, `--duration`, or `q` in the live view.
pub async fn run(args: &TraceArgs) -> anyhow::Result<()> {
    // Everything the user can get wrong is checked before anything is loaded.
    proc::require_pids(&args.pids)?;
    let live_view = !args.headless;
    if live_view {
        tui::require_terminal()?;
        if args.events.as_deref() == Some(Path::new("-")) {
            anyhow::bail!(
                "--events - writes to standard output, which the live view uses; \
                 add --headless, or write the events to a file"
            );
        }
    }
    system::require_privileges()?;
    system::require_kernel()?;
    if system::ensure_tracefs()? == system::Tracefs::MountedNow {
        eprintln!(
            "tracer: mounted tracefs at {}",
            crate::ebpf::format::TRACEFS
        );
    }
    let events = args.events.as_deref().map(open_events).transpose()?;
    let csv = args.csv.as_deref().map(CsvSink::open).transpose()?;

    let loaded = loader::load(&Settings {
        filters: Filters {
            pids: args.pids.clone(),
        },
        ring_bytes: args.ring_buffer_size,
    })?;
    let loader::Loaded {
        ebpf: _ebpf,
        events: ring,
        counters,
        plan,
        connect_errors,
    } = loaded;
    let clock = Clock::now();
    let reader = Reader::new(ring, clock).context("cannot poll the ring buffer")?;
    let scope = if args.pids.is_empty() {
        Scope::All
    } else {
        Scope::Pids(args.pids.clone())
    };
    let mut session = Session {
        aggregator: Aggregator::new(monotonic_ns()),
        sampler: Sampler::new(scope.clone()),
        reader,
        counters,
        clock,
        events,
        csv,
        write_error: None,
        latest: None,
        view: None,
    };
    // Sockets that predate tracing are counted from the first snapshot on.
    session.sample();
    eprintln!(
        "tracer: tracing {} via {}; {connect_errors}",
        describe(&scope),
        plan.join(", ")
    );
    // The live view, or a future that never resolves when headless. Boxed so
    // it can be dropped, restoring the terminal, before the summary is printed.
    let mut view = Box::pin({
        let parts = if live_view {
            let (tx, rx) = watch::channel(session.take()?.0);
            session.view = Some(tx);
            let ctx = ViewContext::new(
                format!("{}; {connect_errors}", plan.join(", ")),
                describe(&scope),
            );
            Some((ctx, rx))
        } else {
            None
        };
        async move {
            match parts {
                Some((ctx, rx)) => tui::run(ctx, rx, Box::new(save_snapshot)).await,
                None => std::future::pending().await,
            }
        }
    });

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(args.interval);
    tick.tick().await;
    let mut view_tick = tokio::time::interval(VIEW_REFRESH);
    view_tick.tick().await;

    loop {
        tokio::select! {
            r = session.drain() => r?,
            _ = tick.tick() => session.snapshot()?,
            _ = view_tick.tick(), if live_view => {
                session.take()?;
            }
            r = &mut view => {
                r?;
                break;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut deadline => break,
        }
        session.check_events()?;
    }
    drop(view);

    // Stopped: take what is still in the ring, then write the final snapshot.
    session.drain_now();
    session.snapshot()?;
    session.check_events()?;
    session.summary();
    Ok(())
}

/// Everything the event loop works on.
struct Session {
    aggregator: Aggregator,
    sampler: Sampler,
    reader: Reader,
    counters: aya::maps::PerCpuArray<aya::maps::MapData, u64>,
    clock: Clock,
    events: Option<JsonSink>,
    csv: Option<CsvSink>,
    /// The first failed write to `--events`, reported by `check_events`.
    write_error: Option<std::io::Error>,
    latest: Option<Arc<Snapshot>>,
    /// Where the live view reads snapshots, when it runs.
    view: Option<watch::Sender<Arc<Snapshot>>>,
}

impl Session {
    async fn drain(&mut self) -> anyhow::Result<()> {
        let Self {
            aggregator,
            sampler,
            reader,
            events,
            write_error,
            ..
        } = self;
        reader
            .drain(|ev| observe(aggregator, sampler, events, write_error, &ev))
            .await
            .context("reading the ring buffer")?;
        if let Some(sink) = events.as_mut() {
            sink.flush().ok();
        }
        Ok(())
    }

    fn drain_now(&mut self) {
        let Self {
            aggregator,
            sampler,
            reader,
            events,
            write_error,
            ..
        } = self;
        reader.drain_now(|ev| observe(aggregator, sampler, events, write_error, &ev));
    }

    /// Reads /proc into the aggregator's gauges.
    fn sample(&mut self) {
        let sample = self
            .sampler
            .sample(&self.aggregator.alive(), monotonic_ns());
        self.aggregator.apply(&sample);
    }

    /// Samples /proc, takes a snapshot and hands it to the sinks.
    fn snapshot(&mut self) -> anyhow::Result<()> {
        let (snapshot, c) = self.take()?;
        if let Some(csv) = self.csv.as_mut() {
            csv.write(&snapshot)?;
        }
        if let Some(sink) = self.events.as_mut() {
            let stats = json::render_stats(
                self.clock.wall_ns(monotonic_ns()),
                &c,
                self.reader.decode_errors,
            );
            record(
                sink.write(&stats).and_then(|()| sink.flush()),
                &mut self.write_error,
            );
        }
        Ok(())
    }

    /// Samples /proc and takes a snapshot; the live view gets it at once.
    fn take(&mut self) -> anyhow::Result<(Arc<Snapshot>, Counters)> {
        self.sample();
        let c = Counters::read(&self.counters).context("reading the kernel counters")?;
        let kernel = KernelCounts {
            submitted: c.submitted,
            dropped: c.dropped,
            filtered: c.filtered,
            unattributed: c.unattributed,
            read: self.reader.read,
            decode_errors: self.reader.decode_errors,
        };
        let snapshot = Arc::new(self.aggregator.snapshot(
            SystemTime::now(),
            monotonic_ns(),
            kernel,
        ));
        if let Some(view) = &self.view {
            view.send_replace(Arc::clone(&snapshot));
        }
        self.latest = Some(Arc::clone(&snapshot));
        Ok((snapshot, c))
    }

    fn check_events(&mut self) -> anyhow::Result<()> {
        match self.write_error.take() {
            Some(err) => Err(err).context("writing --events output"),
            None => Ok(()),
        }
    }

    fn summary(&self) {
        let Some(s) = self.latest.as_deref() else {
            return;
        };
        let k = &s.kernel;
        eprintln!(
            "tracer: {} events read; kernel: {} submitted, {} dropped (ring buffer full), {} filtered, {} unattributed; {} undecodable",
            k.read, k.submitted, k.dropped, k.filtered, k.unattributed, k.decode_errors
        );
        if let Some(csv) = &self.csv {
            eprintln!(
                "tracer: {} CSV rows written to {}",
                csv.rows,
                csv.path().display()
            );
        }
    }
}

/// Feeds one event to the aggregator and the `--events` output.
fn observe(
    aggregator: &mut Aggregator,
    sampler: &mut Sampler,
    sink: &mut Option<JsonSink>,
    error: &mut Option<std::io::Error>,
    ev: &TraceEvent,
) {
    let owner = (!ev.unattributed && ev.pid != 0).then(|| sampler.identify(ev.pid));
    let state_at = aggregator.observe(owner, ev);
    if let Some(sink) = sink.as_mut() {
        record(sink.write(&json::render(ev, state_at)), error);
        if let Some(connect) = json::render_connect(ev) {
            record(sink.write(&connect), error);
        }
    }
}

/// `s` in the live view: the shown snapshot to a new CSV file in the current
/// directory, named after the snapshot's time.
fn save_snapshot(snapshot: &Snapshot) -> anyhow::Result<PathBuf> {
    let stamp: String = humantime::format_rfc3339_seconds(snapshot.taken_at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut path = PathBuf::from(format!("tracer-{stamp}.csv"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = PathBuf::from(format!("tracer-{stamp}-{n}.csv"));
    }
    let mut csv = CsvSink::open(&path)?;
    csv.write(snapshot)?;
    Ok(std::env::current_dir().map_or(path.clone(), |dir| dir.join(&path)))
}

fn describe(scope: &Scope) -> String {
    match scope {
        Scope::All => "all processes".to_owned(),
        Scope::Pids(pids) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("pid {}", pids.join(", "))
        }
    }
}

fn record(result: std::io::Result<()>, error: &mut Option<std::io::Error>) {
    if let Err(e) = result {
        error.get_or_insert(e);
    }
}

fn open_events(path: &std::path::Path) -> anyhow::Result<JsonSink> {
    let out: Box<dyn Write + Send> = if path.as_os_str() == "-" {
        Box::new(BufWriter::new(std::io::stdout()))
    } else {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open --events file {} for writing", path.display()))?;
        Box::new(BufWriter::new(file))
    };
    Ok(JsonSink::new(out))
}

/// CLOCK_MONOTONIC now, the clock the kernel stamps events with.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
