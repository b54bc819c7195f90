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
    task::JoinHandle,
    time::Instant,
};

use crate::{
    aggregate::{Aggregator, Sample},
    cli::TraceArgs,
    ebpf::{
        counters::{CounterMaps, Counters},
        loader::{self, Filters, Settings},
        reader::Reader,
    },
    event::{Clock, Comm, TraceEvent},
    proc::{
        self,
        sampler::{Identities, Sampler, Scope},
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
        owner_map_size: args.owner_map_size,
        hooks: args.hooks.kind(),
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
        identities: Identities::default(),
        reader,
        counters,
        clock,
        events,
        csv,
        write_error: None,
        latest: None,
        view: None,
    };
    let mut sampler = Some(Sampler::new(scope.clone()));
    // Sockets that predate tracing are counted from the first snapshot on.
    let first = sample_off_loop(&mut sampler, &session).await?;
    session.apply(first);
    eprintln!(
        "tracer: tracing {} via {plan}; {connect_errors}",
        describe(&scope),
    );
    // The live view, or a future that never resolves when headless. Boxed so
    // it can be dropped, restoring the terminal, before the summary is printed.
    let mut view = Box::pin({
        let parts = if live_view {
            let (tx, rx) = watch::channel(session.take()?.0);
            session.view = Some(tx);
            let ctx = ViewContext::new(format!("{plan}; {connect_errors}"), describe(&scope));
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
    // A closed terminal or session: stop cleanly too, restoring and flushing.
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    // Samples are taken every --interval, or every second for the live view;
    // CSV rows and `stats` lines still follow --interval.
    let every = if live_view {
        VIEW_REFRESH.min(args.interval)
    } else {
        args.interval
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut next_write = Instant::now() + args.interval;

    // Reading /proc on a busy host takes long enough to fill the ring buffer,
    // so samples are taken on a blocking thread while events keep draining.
    let mut pending: Option<JoinHandle<(Sampler, Sample)>> = None;
    let mut view_result = Ok(());
    loop {
        tokio::select! {
            r = session.drain() => r?,
            _ = tick.tick(), if pending.is_none() => {
                pending = sampler.take().map(|s| start_sample(s, &session));
            }
            done = async { pending.as_mut().expect("guarded by is_some").await }, if pending.is_some() => {
                pending = None;
                let (back, sample) = done.context("the /proc sampler failed")?;
                sampler = Some(back);
                session.apply(sample);
                let (snapshot, counters) = session.take()?;
                if Instant::now() + every / 2 >= next_write {
                    next_write += args.interval;
                    session.write(&snapshot, &counters)?;
                }
            }
            r = &mut view => {
                // Even when the view failed (the terminal went away), the
                // final snapshot below is still written.
                view_result = r;
                break;
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = sighup.recv() => break,
            () = &mut deadline => break,
        }
        session.check_events()?;
    }
    drop(view);

    // Stopped: take what is still in the ring, then write the final snapshot.
    if let Some(handle) = pending {
        let (back, _) = handle.await.context("the /proc sampler failed")?;
        sampler = Some(back);
    }
    session.drain_now();
    let last = sample_off_loop(&mut sampler, &session).await?;
    session.apply(last);
    let (snapshot, counters) = session.take()?;
    session.write(&snapshot, &counters)?;
    session.check_events()?;
    session.summary();
    view_result
}

/// Starts a /proc sample of `sampler` on a blocking thread.
fn start_sample(sampler: Sampler, session: &Session) -> JoinHandle<(Sampler, Sample)> {
    let known = session.aggregator.alive();
    tokio::task::spawn_blocking(move || {
        let sample = sampler.sample(&known, monotonic_ns());
        (sampler, sample)
    })
}

/// Takes one sample and waits for it.
async fn sample_off_loop(
    sampler: &mut Option<Sampler>,
    session: &Session,
) -> anyhow::Result<Sample> {
    let s = sampler.take().context("the /proc sampler is busy")?;
    let (back, sample) = start_sample(s, session)
        .await
        .context("the /proc sampler failed")?;
    *sampler = Some(back);
    Ok(sample)
}

/// Everything the event loop works on.
struct Session {
    aggregator: Aggregator,
    identities: Identities,
    reader: Reader,
    counters: CounterMaps,
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
            identities,
            reader,
            events,
            write_error,
            ..
        } = self;
        reader
            .drain(|ev| observe(aggregator, identities, events, write_error, &ev))
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
            identities,
            reader,
            events,
            write_error,
            ..
        } = self;
        reader.drain_now(|ev| observe(aggregator, identities, events, write_error, &ev));
    }

    /// Takes a /proc sample into the gauges and the process identities.
    fn apply(&mut self, sample: Sample) {
        let known = self.aggregator.alive();
        self.identities.refresh(&sample, &known);
        self.aggregator.apply(&sample);
    }

    /// Takes a snapshot; the live view gets it at once.
    fn take(&mut self) -> anyhow::Result<(Arc<Snapshot>, Counters)> {
        let c = Counters::read(&self.counters).context("reading the kernel counters")?;
        let kernel = KernelCounts {
            submitted: c.submitted,
            dropped: c.dropped,
            filtered: c.filtered,
            unattributed: c.unattributed,
            owners: c.owners,
            owners_evicted: c.owners_evicted,
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

    /// Hands a snapshot to the CSV file and a `stats` line to `--events`.
    fn write(&mut self, snapshot: &Snapshot, c: &Counters) -> anyhow::Result<()> {
        if let Some(csv) = self.csv.as_mut() {
            csv.write(snapshot)?;
        }
        if let Some(sink) = self.events.as_mut() {
            let stats = json::render_stats(
                self.clock.wall_ns(monotonic_ns()),
                c,
                self.reader.decode_errors,
            );
            record(
                sink.write(&stats).and_then(|()| sink.flush()),
                &mut self.write_error,
            );
        }
        Ok(())
    }

    fn check_events(&mut self) -> anyhow::Result<()> {
        match self.write_error.take() {
            Some(err) => Err(err).context("writing --events output"),
            None => Ok(()),
        }
    }

    /// The exit summary on stderr. Written without `eprintln!`, which would
    /// panic when the terminal is already gone (a hang-up).
    fn summary(&self) {
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

/// Feeds one event to the aggregator and the `--events` output.
fn observe(
    aggregator: &mut Aggregator,
    identities: &mut Identities,
    sink: &mut Option<JsonSink>,
    error: &mut Option<std::io::Error>,
    ev: &TraceEvent,
) {
    let owner = (!ev.unattributed && ev.pid != 0).then(|| identities.identify(ev.pid));
    let observed = aggregator.observe(owner, ev);
    if let Some(sink) = sink.as_mut() {
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
        record(sink.write(&json::render(ev, observed.state_at)), error);
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
