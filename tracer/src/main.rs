//! `tracer`: per-process TCP connection tracer (entry point and exit codes).

mod aggregate;
mod cli;
mod dns;
mod doctor;
mod ebpf;
mod errno;
mod event;
mod findings;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod fuzz;
mod generate;
mod human;
mod priority;
mod privileges;
mod proc;
mod report;
mod session;
mod sink;
mod snapshot;
mod system;
mod trace;
mod tui;

use std::{
    io::{IsTerminal as _, Write as _},
    process::ExitCode,
    sync::Mutex,
};

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    limit_heap();
    let cli = Cli::parse();
    if let Err(message) = cli.trace.check_outputs() {
        use clap::CommandFactory as _;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
            .exit();
    }
    let live_view = cli.command.is_none() && !cli.trace.headless && std::io::stdout().is_terminal();
    init_logging(live_view);
    let result = match cli.command {
        Some(Command::Doctor { json }) => doctor::run(json),
        Some(Command::Completions { shell }) => generate::completions(shell),
        Some(Command::Man { dir }) => generate::man_pages(&dir),
        Some(Command::Report(args)) => report::run(&args),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(trace::run(&cli.trace))),
    };
    tui::logging::remove_if_empty();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Not eprintln!: it panics when the terminal is gone.
            let _ = writeln!(std::io::stderr(), "tracer: error: {}", chain(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Keeps the heap from holding on to memory it no longer uses: buffers of
/// 128 KiB and more (the /proc samples and tables of a host with many
/// sockets) get their own mappings, returned when freed, instead of growing a
/// heap that seldom shrinks; and every thread shares one arena.
fn limit_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: plain settings of glibc's allocator, made before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Log messages (`TRACER_LOG`, default `warn`; `tracer=debug` for tracer's
/// own: load, each /proc sample, pacing, shutdown) go to stderr, or to a
/// file while the live view owns the terminal (the help names it); if that
/// file cannot be created, they are dropped rather than drawn over the view.
fn init_logging(live_view: bool) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRACER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        // A span's end says how long it took (load, shutdown, each /proc sample).
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE);
    if !live_view {
        logs.with_writer(std::io::stderr).init();
        return;
    }
    match tui::logging::open() {
        Ok((_, file)) => logs.with_ansi(false).with_writer(Mutex::new(file)).init(),
        Err(_) => logs.with_writer(std::io::sink).init(),
    }
}

/// The error and its causes on one line.
fn chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// 2 for bad usage (such as a pid that does not exist), 1 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<proc::ProcError>().is_some() {
        2
    } else {
        1
    }
}
