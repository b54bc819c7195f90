//! A trace from start to stop: checks, load, the event loop, and a clean stop.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
    task::JoinHandle,
    time::Instant,
};

use crate::{
    aggregate::Aggregator,
    cli::TraceArgs,
    ebpf::{
        loader::{self, Filters, Settings},
        reader::Reader,
    },
    event::{Clock, monotonic_ns},
    priority,
    proc::{
        self, Sample,
        pacing::{self, Pacing},
        sampler::{Sampler, Scope},
    },
    session::{Identities, Session},
    sink::{csv::CsvSink, json::JsonSink},
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
    let events = args.events.as_deref().map(JsonSink::open).transpose()?;
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
    // This thread drains the ring buffer (and does everything else but sample
    // /proc): it must not wait behind a busy host's processes.
    priority::reader();
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
        sampled_every: None,
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
            let (tx, rx) = watch::channel(session.take()?);
            session.view = Some(tx);
            let ctx = ViewContext::new(format!("{plan}; {connect_errors}"), describe(&scope));
            Some((ctx, rx))
        } else {
            None
        };
        async move {
            match parts {
                Some((ctx, rx)) => {
                    tui::run(ctx, rx, Box::new(|s| Ok(crate::sink::csv::save_new(s)?))).await
                }
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
    // On a large host /proc is sampled less often than snapshots are taken;
    // the snapshots in between keep the gauges of the last sample.
    let mut pacing = Pacing::new(every);

    // Reading /proc on a busy host takes long enough to fill the ring buffer,
    // so samples are taken on a blocking thread while events keep draining.
    let mut pending: Option<(Instant, JoinHandle<Sampled>)> = None;
    let mut view_result = Ok(());
    loop {
        tokio::select! {
            r = session.drain() => r?,
            _ = tick.tick(), if pending.is_none() => {
                let now = Instant::now();
                if pacing.due(now.into_std()) {
                    pending = sampler.take().map(|s| (now, start_sample(s, &session)));
                } else {
                    snapshot(&mut session, &mut next_write, every, args.interval)?;
                }
            }
            done = async { (&mut pending.as_mut().expect("guarded by is_some").1).await }, if pending.is_some() => {
                let started = pending.take().expect("guarded by is_some").0;
                let (back, sample, sample_cpu) = done.context("the /proc sampler failed")?;
                sampler = Some(back);
                let cpu = sample_cpu + session.apply(sample);
                pacing.took(started.into_std(), cpu);
                report_pacing(&mut session, &pacing, cpu, every, live_view);
                snapshot(&mut session, &mut next_write, every, args.interval)?;
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
    if let Some((_, handle)) = pending {
        let (back, _, _) = handle.await.context("the /proc sampler failed")?;
        sampler = Some(back);
    }
    session.drain_now();
    let last = sample_off_loop(&mut sampler, &session).await?;
    session.apply(last);
    let snapshot = session.take()?;
    session.write(&snapshot)?;
    session.check_events()?;
    session.summary();
    view_result
}

/// A finished sample: the sampler back, what it read, and the CPU time it took.
type Sampled = (Sampler, Sample, Duration);

/// Starts a /proc sample of `sampler` on a blocking thread.
fn start_sample(sampler: Sampler, session: &Session) -> JoinHandle<Sampled> {
    let known = session.aggregator.alive();
    tokio::task::spawn_blocking(move || {
        priority::sampler();
        let before = pacing::thread_cpu();
        let sample = sampler.sample(&known, monotonic_ns());
        (sampler, sample, pacing::thread_cpu().saturating_sub(before))
    })
}

/// Takes a snapshot for the live view, and writes it when the next
/// `--interval` row is due.
fn snapshot(
    session: &mut Session,
    next_write: &mut Instant,
    every: Duration,
    interval: Duration,
) -> anyhow::Result<()> {
    let snapshot = session.take()?;
    if Instant::now() + every / 2 >= *next_write {
        *next_write += interval;
        session.write(&snapshot)?;
    }
    Ok(())
}

/// Tells the view (and, headless, stderr) when samples start or stop being
/// spaced out.
fn report_pacing(
    session: &mut Session,
    pacing: &Pacing,
    cpu: Duration,
    every: Duration,
    live_view: bool,
) {
    let stretched = pacing.stretched();
    if stretched.is_some() == session.sampled_every.is_some() {
        session.sampled_every = stretched;
        return;
    }
    session.sampled_every = stretched;
    if live_view {
        return;
    }
    match stretched {
        Some(spacing) => eprintln!(
            "tracer: a /proc sample took {} ms of CPU; sockets and descriptors are now \
             sampled every {spacing:?} instead of every {every:?}, to keep that cost near \
             {:.0}% of a core (events are still read as they come)",
            cpu.as_millis(),
            pacing::CPU_SHARE * 100.0
        ),
        None => eprintln!(
            "tracer: a /proc sample took {} ms of CPU; sockets and descriptors are \
             sampled every {every:?} again",
            cpu.as_millis(),
        ),
    }
}

/// Takes one sample and waits for it.
async fn sample_off_loop(
    sampler: &mut Option<Sampler>,
    session: &Session,
) -> anyhow::Result<Sample> {
    let s = sampler.take().context("the /proc sampler is busy")?;
    let (back, sample, _) = start_sample(s, session)
        .await
        .context("the /proc sampler failed")?;
    *sampler = Some(back);
    Ok(sample)
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
