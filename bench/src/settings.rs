//! What a run is asked for (`cargo xtask bench` flags) and the settings it
//! used, as recorded in the results.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::{cmd, workload::Mode};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Untraced/traced sample pairs per subject and close mode.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub pairs: usize,

    /// Length of each churn sample, in seconds.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    pub seconds: f64,

    /// Live connections for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub hold: u64,

    /// Only this close mode (default: reset, then normal).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// A short smoke run: 2 pairs of 1 s, 10,000 held connections, one start-up
    /// trial. The figures are too noisy to quote.
    #[arg(long)]
    pub quick: bool,

    /// Where to write the JSON results (default: target/bench/results.json).
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// The settings a run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub pairs: usize,
    pub seconds: f64,
    pub hold_connections: u64,
    pub start_trials: usize,
    pub client_cpu: usize,
    pub server_cpu: usize,
    pub modes: Vec<Mode>,
    pub tracer: String,
    pub tracer_args: String,
    pub bpftrace: Option<String>,
    pub bpftrace_probes: Vec<String>,
    pub noop_hooks: Vec<String>,
}

impl BenchArgs {
    /// Fails unless the benchmark can run with these flags: as root, with
    /// samples to take.
    pub fn check(&self) -> Result<()> {
        if !cmd::is_root() {
            bail!(
                "the benchmark loads eBPF programs and creates a network namespace: run it as \
                 root (sudo -E cargo xtask bench)"
            );
        }
        if !(self.seconds > 0.0 && self.seconds.is_finite()) || self.pairs == 0 {
            bail!("--pairs and --seconds must be greater than zero");
        }
        Ok(())
    }
}

impl Settings {
    /// The settings for `args` on a machine with `cpus` CPUs (`--quick` shortens
    /// the run), with `tracer` measured.
    pub fn new(args: &BenchArgs, cpus: usize, tracer: String) -> Self {
        Self {
            pairs: if args.quick { 2 } else { args.pairs },
            seconds: if args.quick { 1.0 } else { args.seconds },
            hold_connections: if args.quick {
                args.hold.min(10_000)
            } else {
                args.hold
            },
            start_trials: if args.quick { 1 } else { 3 },
            client_cpu: 0,
            server_cpu: usize::from(cpus >= 2),
            modes: args
                .mode
                .map_or(vec![Mode::Reset, Mode::Normal], |m| vec![m]),
            tracer,
            tracer_args: "--headless --interval 1s --csv /dev/null".into(),
            bpftrace: None,
            bpftrace_probes: Vec::new(),
            noop_hooks: Vec::new(),
        }
    }
}
