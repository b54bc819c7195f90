//! The tracing session: checks, load, the event loop, and a clean stop.

use std::{
    fs::File,
    io::{BufWriter, Write},
    time::Duration,
};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::TraceArgs,
    connections::Connections,
    ebpf::{
        counters::Counters,
        loader::{self, Filters, Settings},
        reader::Reader,
    },
    event::Clock,
    proc,
    sink::json::{self, JsonSink},
    system,
};

/// Runs until Ctrl-C, SIGTERM or `--duration`.
pub async fn run(args: &TraceArgs) -> anyhow::Result<()> {
    // Everything the user can get wrong is checked before anything is loaded.
    proc::require_pids(&args.pids)?;
    system::require_privileges()?;
    system::require_kernel()?;
    if system::ensure_tracefs()? == system::Tracefs::MountedNow {
        eprintln!(
            "tracer: mounted tracefs at {}",
            crate::ebpf::format::TRACEFS
        );
    }
    let mut events = args.events.as_deref().map(open_events).transpose()?;
    if !args.headless {
        eprintln!("tracer: the live view is not available in this build; running headless");
    }

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
    let mut reader = Reader::new(ring, clock).context("cannot poll the ring buffer")?;
    let scope = if args.pids.is_empty() {
        "all processes".to_owned()
    } else {
        let pids: Vec<String> = args.pids.iter().map(u32::to_string).collect();
        format!("pid {}", pids.join(", "))
    };
    eprintln!("tracer: tracing {scope} via {plan}; {connect_errors}");

    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let deadline = tokio::time::sleep(args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(args.interval);
    tick.tick().await;

    let mut write_error: Option<std::io::Error> = None;
    let mut connections = Connections::default();
    loop {
        tokio::select! {
            r = reader.drain(|ev| write_event(&mut events, &mut connections, &mut write_error, &ev)) => {
                r.context("reading the ring buffer")?;
                if let Some(sink) = events.as_mut() {
                    sink.flush().ok();
                }
            }
            _ = tick.tick() => {
                let c = Counters::read(&counters).context("reading the kernel counters")?;
                write_stats(&mut events, &mut write_error, &clock, &c, reader.decode_errors);
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = &mut deadline => break,
        }
        if let Some(err) = write_error.take() {
            return Err(err).context("writing --events output");
        }
    }

    // Stopped: take what is still in the ring, then report.
    reader.drain_now(|ev| write_event(&mut events, &mut connections, &mut write_error, &ev));
    let c = Counters::read(&counters).context("reading the kernel counters")?;
    write_stats(
        &mut events,
        &mut write_error,
        &clock,
        &c,
        reader.decode_errors,
    );
    if let Some(err) = write_error {
        return Err(err).context("writing --events output");
    }
    eprintln!(
        "tracer: {} events read; kernel: {} submitted, {} dropped (ring buffer full), {} filtered, {} unattributed, {} owners evicted (owner map full); {} undecodable",
        reader.read,
        c.submitted,
        c.dropped,
        c.filtered,
        c.unattributed,
        c.owners_evicted,
        reader.decode_errors
    );
    Ok(())
}

fn write_event(
    sink: &mut Option<JsonSink>,
    connections: &mut Connections,
    error: &mut Option<std::io::Error>,
    ev: &crate::event::TraceEvent,
) {
    let state_at = connections.observe(ev);
    if let Some(sink) = sink.as_mut() {
        record(sink.write(&json::render(ev, state_at)), error);
        if let Some(connect) = json::render_connect(ev) {
            record(sink.write(&connect), error);
        }
    }
}

fn write_stats(
    sink: &mut Option<JsonSink>,
    error: &mut Option<std::io::Error>,
    clock: &Clock,
    counters: &Counters,
    decode_errors: u64,
) {
    if let Some(sink) = sink.as_mut() {
        let stats = json::render_stats(clock.wall_ns(monotonic_ns()), counters, decode_errors);
        record(sink.write(&stats).and_then(|()| sink.flush()), error);
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
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}
