//! `tracer`: per-process TCP connection tracer (entry point and exit codes).

mod aggregate;
mod cli;
mod doctor;
mod ebpf;
mod errno;
mod event;
#[allow(dead_code, reason = "read by the live view")]
mod findings;
#[cfg(test)]
mod fixtures;
#[allow(dead_code, reason = "read by the live view")]
mod human;
mod proc;
mod sink;
mod snapshot;
mod system;
mod trace;
#[allow(dead_code, reason = "started from trace.rs once it produces snapshots")]
mod tui;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRACER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Some(Command::Doctor) => doctor::run(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(trace::run(&cli.trace))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tracer: error: {}", chain(&err));
            ExitCode::from(exit_code(&err))
        }
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
