//! A trace from start to stop: checks, load, the outputs started, the event
//! loop, and a clean stop.

mod schedule;

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    time::Duration,
};

use anyhow::Context as _;
use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    time::Sleep,
};
use tracing::Instrument as _;

use self::schedule::{Due, Schedule, Spacing, sample_once};
use crate::{
    cli::TraceArgs,
    ebpf::{
        hooks,
        loader::{self, Filters, Settings},
        reader::Reader,
    },
    event::Clock,
    priority, privileges,
    proc::{
        self, pacing,
        sampler::{Sampler, Scope},
        sockets::Source,
    },
    session::{Outputs, Session},
    system,
    tui::{self, ViewContext},
};

/// Runs until Ctrl-C, SIGTERM, `--duration`, or `q` in the live view.
pub async fn run(args: &TraceArgs) -> anyhow::Result<()> {
    let live_view = !args.headless;
    let (outputs, cgroups) = check(args, live_view)?;
    if args.socket_tables == Source::SockDiag {
        // Before the load (which reads the sockets already open) and before
        // capabilities are dropped: it keeps what entering namespaces takes.
        proc::netns::start();
    }
    let loader::Loaded {
        ebpf: _ebpf,
        events,
        counters,
        plan,
        connect_errors,
        netns_known,
    } = load(args, &cgroups)?;
    let hooks = format!("{plan}; {connect_errors}; {}", plan.optional_text());

    let clock = Clock::now();
    let reader = Reader::new(events, clock).context("cannot poll the ring buffer")?;
    // This thread drains the ring buffer (and does everything else but sample
    // /proc): it must not wait behind a busy host's processes.
    priority::reader();
    // Loaded and attached: from here on only what the run needs is kept.
    if let Err(e) = privileges::drop_after_load(live_view) {
        tracing::warn!("could not drop the capabilities tracer no longer needs: {e}");
    }
    let scope = match (&args.pids, &cgroups) {
        (pids, cgroups) if !cgroups.is_empty() => Scope::Cgroups {
            pids: pids.clone(),
            cgroups: cgroups.clone(),
        },
        (pids, _) if pids.is_empty() => Scope::All,
        (pids, _) => Scope::Pids(pids.clone()),
    };
    let syscall_errors = plan.has(hooks::SYSCALL_SOURCE.name);
    let mut session = Session::new(reader, counters, clock, outputs, syscall_errors);
    session.set_netns_known(netns_known);
    // Sockets that predate tracing are counted from the first snapshot on.
    let sampler = Sampler::new(scope.clone()).reading(args.socket_tables);
    let (sampler, first, read_cpu) = sample_once(sampler, session.alive()).await?;
    session.count_sample(read_cpu);
    session.apply(first);
    let traced = describe(&scope);
    eprintln!("tracer: tracing {traced} via {hooks}");
    session.announce(&crate::sink::json::Start {
        host: &system::hostname(),
        kernel: &system::kernel_release(),
        scope: &traced,
        hooks: &hooks,
        interval_ms: u64::try_from(args.interval.as_millis()).unwrap_or(u64::MAX),
    });
    let mut view = start_view(&mut session, live_view, hooks, &scope, args.interval)?;

    let mut stop = Stop::install(args.duration)?;
    let mut schedule = Schedule::start(sampler, args.interval, live_view).await;
    let mut watch = Watch {
        // A cgroup can gain processes: its pids ending says nothing.
        pids: if cgroups.is_empty() {
            args.pids.clone()
        } else {
            Vec::new()
        },
        said: false,
        live_view,
    };
    let ended = event_loop(
        &mut session,
        &mut schedule,
        &mut view,
        &mut stop,
        &mut watch,
    )
    .await;
    // The view restores the terminal before the summary is printed.
    drop(view);
    // Whatever ended the loop (an output that failed included), the last
    // snapshot is written where it still can be, and the summary printed.
    let shut = shutdown(&mut session, schedule)
        .instrument(tracing::info_span!("shutdown"))
        .await;
    match (ended?, shut) {
        (_, Err(e)) => Err(e),
        (Ended::Stopped, Ok(())) => Ok(()),
        (Ended::View(result), Ok(())) => result,
    }
}

/// Checks everything the user can get wrong, before anything is loaded, and
/// opens the output files. Returns them and the `--cgroup` directories.
fn check(args: &TraceArgs, live_view: bool) -> anyhow::Result<(Outputs, Vec<PathBuf>)> {
    proc::require_pids(&args.pids)?;
    if args.cgroups.len() > tracer_common::maps::CGROUPS_CAPACITY as usize {
        anyhow::bail!(
            "--cgroup given {} times: at most {} cgroups can be traced at once",
            args.cgroups.len(),
            tracer_common::maps::CGROUPS_CAPACITY
        );
    }
    let cgroups = args
        .cgroups
        .iter()
        .map(|c| proc::cgroup_filter::resolve(c))
        .collect::<Result<Vec<_>, _>>()?;
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
    let outputs = Outputs::open(args)?;
    tracing::debug!(
        events = ?args.events,
        csv = ?args.csv,
        summary_json = ?args.summary_json,
        "checks passed; outputs open"
    );
    Ok((outputs, cgroups))
}

/// Loads the programs, seeds the owners of existing sockets and attaches.
fn load(args: &TraceArgs, cgroups: &[PathBuf]) -> anyhow::Result<loader::Loaded> {
    let _span = tracing::info_span!("load", pids = ?args.pids, hooks = ?args.hooks).entered();
    let loaded = loader::load(&Settings {
        filters: Filters {
            pids: args.pids.clone(),
            cgroups: cgroups.to_vec(),
        },
        ring_bytes: args.ring_buffer_size,
        owner_map_size: args.owner_map_size,
        hooks: args.hooks.kind(),
        syscall_errors: args.syscall_errors.optional(),
        socket_tables: args.socket_tables,
    })?;
    tracing::info!(
        plan = %loaded.plan,
        connect_errors = %loaded.connect_errors,
        optional = %loaded.plan.optional_text(),
        "loaded and attached"
    );
    Ok(loaded)
}

/// The live view, running until `q` or a failure.
type View = Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

/// Starts the live view on a first snapshot, or, headless, a view that never
/// ends. Boxed so it can be dropped, restoring the terminal, before the
/// summary is printed.
fn start_view(
    session: &mut Session,
    live_view: bool,
    hooks: String,
    scope: &Scope,
    interval: Duration,
) -> anyhow::Result<View> {
    if !live_view {
        return Ok(Box::pin(std::future::pending()));
    }
    let snapshots = session.start_view()?;
    let ctx = ViewContext::new(hooks, describe(scope), schedule::view_refresh(interval));
    Ok(Box::pin(tui::run(
        ctx,
        snapshots,
        Box::new(|s| Ok(crate::sink::csv::save_new(s)?)),
    )))
}

/// What ends a trace besides the live view.
struct Stop {
    sigint: Signal,
    sigterm: Signal,
    /// A closed terminal or session: stop cleanly too, restoring and flushing.
    sighup: Signal,
    /// `--duration`.
    deadline: Pin<Box<Sleep>>,
}

impl Stop {
    fn install(duration: Option<Duration>) -> anyhow::Result<Self> {
        Ok(Self {
            sigint: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            sigterm: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            sighup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            deadline: Box::pin(tokio::time::sleep(
                duration.unwrap_or(Duration::from_secs(u64::MAX / 4)),
            )),
        })
    }

    /// Waits for a signal or the deadline, and says which; cancel-safe.
    async fn wait(&mut self) -> &'static str {
        tokio::select! {
            _ = self.sigint.recv() => "SIGINT",
            _ = self.sigterm.recv() => "SIGTERM",
            _ = self.sighup.recv() => "SIGHUP",
            () = &mut self.deadline => "--duration elapsed",
        }
    }
}

/// Why the event loop ended.
enum Ended {
    /// A signal, or `--duration` elapsed.
    Stopped,
    /// The live view ended (`q`) or failed; its result is returned once the
    /// final snapshot is written.
    View(anyhow::Result<()>),
}

/// Reads events as they come, and samples, snapshots and writes when the
/// schedule says, until stopped.
async fn event_loop(
    session: &mut Session,
    schedule: &mut Schedule,
    view: &mut View,
    stop: &mut Stop,
    watch: &mut Watch,
) -> anyhow::Result<Ended> {
    let live_view = watch.live_view;
    loop {
        tokio::select! {
            r = session.drain() => r?,
            due = schedule.next() => match due? {
                Due::Snapshot => snapshot(session, schedule)?,
                Due::Sample => schedule.start_sample(session.alive()),
                Due::Sampled(sample, sample_cpu) => {
                    session.count_sample(sample_cpu);
                    let apply_cpu = session.apply(sample);
                    tracing::debug!(?apply_cpu, "/proc sample applied");
                    let cpu = sample_cpu + apply_cpu;
                    if let Some(change) = schedule.took(cpu)
                        && !live_view
                    {
                        report_spacing(change, cpu, schedule.every());
                    }
                    session.set_sampled_every(schedule.sampled_every());
                    if watch.check() {
                        session.set_traced_exited();
                    }
                    snapshot(session, schedule)?;
                }
            },
            // Even when the view failed (the terminal went away), the final
            // snapshot is still written.
            r = view.as_mut() => {
                tracing::info!(ok = r.is_ok(), "the live view ended");
                return Ok(Ended::View(r));
            }
            why = stop.wait() => {
                tracing::info!(why, "stopping");
                return Ok(Ended::Stopped);
            }
        }
        session.check_outputs()?;
    }
}

/// Says once when every `--pid` has exited: tracing goes on (a pid cannot
/// come back), but nothing more will be seen.
struct Watch {
    pids: Vec<u32>,
    said: bool,
    live_view: bool,
}

impl Watch {
    /// Whether every traced process has now exited (said once: true once).
    fn check(&mut self) -> bool {
        if self.said || self.pids.is_empty() || self.pids.iter().any(|&p| proc::exists(p)) {
            return false;
        }
        self.said = true;
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let message = format!(
            "every traced process has exited (pid {}); nothing more will be seen: \
             stop with Ctrl-C (the last snapshot keeps their numbers)",
            pids.join(", ")
        );
        if self.live_view {
            // The header says it too.
            tracing::warn!("{message}");
        } else {
            eprintln!("tracer: {message}");
        }
        true
    }
}

/// Takes a snapshot for the live view, and writes it when the next
/// `--interval` row is due.
fn snapshot(session: &mut Session, schedule: &mut Schedule) -> anyhow::Result<()> {
    let snapshot = session.take()?;
    if schedule.write_due() {
        tracing::debug!(processes = snapshot.processes.len(), "writing a snapshot");
        session.write(&snapshot)?;
    }
    Ok(())
}

/// Says on stderr (headless) when samples start or stop being spaced out;
/// the live view shows it in its header.
fn report_spacing(change: Spacing, cpu: Duration, every: Duration) {
    match change {
        Spacing::Stretched(spacing) => eprintln!(
            "tracer: a /proc sample took {} ms of CPU; sockets and descriptors are now \
             sampled every {spacing:?} instead of every {every:?}, to keep that cost near \
             {:.0}% of a core (events are still read as they come)",
            cpu.as_millis(),
            pacing::CPU_SHARE * 100.0
        ),
        Spacing::Restored => eprintln!(
            "tracer: a /proc sample took {} ms of CPU; sockets and descriptors are \
             sampled every {every:?} again",
            cpu.as_millis(),
        ),
    }
}

/// Stopped: takes what is still in the ring, then writes the final snapshot
/// and the summary. The summary is printed even when a step before it failed
/// (the first such failure is returned).
async fn shutdown(session: &mut Session, schedule: Schedule) -> anyhow::Result<()> {
    let last = async {
        let sampler = schedule.stop().await?;
        session.drain_now();
        tracing::debug!("ring buffer drained; taking the last /proc sample");
        let (_, last, read_cpu) = sample_once(sampler, session.alive()).await?;
        session.count_sample(read_cpu);
        session.apply(last);
        let snapshot = session.take()?;
        session.write(&snapshot)?;
        tracing::debug!(
            processes = snapshot.processes.len(),
            "final snapshot written"
        );
        anyhow::Ok(())
    }
    .await;
    let summary = session.summary();
    let written = session.check_outputs();
    last.and(summary).and(written)
}

fn describe(scope: &Scope) -> String {
    match scope {
        Scope::All => "all processes".to_owned(),
        Scope::Pids(pids) => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("pid {}", pids.join(", "))
        }
        Scope::Cgroups { pids, cgroups } => {
            let mut parts: Vec<String> = cgroups
                .iter()
                .map(|c| format!("cgroup {}", c.display()))
                .collect();
            parts.extend(pids.iter().map(|p| format!("pid {p}")));
            parts.join(", ")
        }
    }
}
