//! What a run is asked for (`cargo xtask bench` flags) and the settings it
//! used, as recorded in the results.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::{cmd, workload::Mode};

#[derive(Debug, Args)]
#[command(after_long_help = WORKLOADS_HELP)]
pub struct BenchArgs {
    /// Untraced/traced sample pairs per subject, for the bystander, the
    /// stream and each close mode of the churn.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub pairs: usize,

    /// Length of each sample (churn, stream or bystander), in seconds.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    pub seconds: f64,

    /// Live connections for the memory measurement (0 skips it).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub hold: u64,

    /// Only this close mode (default: reset, then normal).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Only this workload (default: the bystander, the stream, then the churn
    /// with start-up and memory). See below (--help) for what each measures.
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    pub workload: Option<Workload>,

    /// A short smoke run: 2 pairs of 1 s, 10,000 held connections, one start-up
    /// trial. The figures are too noisy to quote.
    #[arg(long)]
    pub quick: bool,

    /// Where to write the JSON results (default: target/bench/results.json).
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// What `--help` says about the workloads, after the flags.
const WORKLOADS_HELP: &str = "\
Workloads (each sample of --seconds, in --pairs of untraced and traced, the subjects taking turns):
  bystander  a network-free, syscall-heavy process (1-byte write + read over a pipe), pinned to
             the last core, run alone while the churn is idle: what a tracer left running costs
             processes it does not trace (syscalls/s traced / untraced). Subjects: tracer (all
             processes, --pid of another process, --syscall-errors on), bpftrace, no-op
             programs on tracer's hooks, none.
  stream     one bulk TCP transfer over loopback in a private network namespace, sender and
             receiver pinned to cores 0 and 1: what runs for every packet costs it, such as
             cgroup_skb programs on the cgroup v2 root (bytes/s traced / untraced; kernel time
             per program). Subjects: tracer (all processes, --pid of another process),
             bpftrace, no-op programs on tracer's hooks, none.
  churn      loopback connect/accept/close in a private network namespace, client and server
             pinned to cores 0 and 1, in reset and normal close mode (connections/s traced /
             untraced; kernel time per program; tracer's CPU, wakeups and memory), then tracer's
             start-up under churn and its memory with --hold live connections.";

/// Which workload a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// The network-free bystander (src/bin/bystander.rs).
    Bystander,
    /// One bulk TCP transfer over loopback (src/bin/stream.rs).
    Stream,
    /// The loopback churn (src/bin/churn.rs), start-up and memory.
    Churn,
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
    pub workloads: Vec<Workload>,
    /// The core the bystander runs on.
    pub bystander_cpu: usize,
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
            workloads: args.workload.map_or(
                vec![Workload::Bystander, Workload::Stream, Workload::Churn],
                |w| vec![w],
            ),
            bystander_cpu: cpus.saturating_sub(1),
            tracer,
            tracer_args: "--headless --interval 1s --csv /dev/null".into(),
            bpftrace: None,
            bpftrace_probes: Vec::new(),
            noop_hooks: Vec::new(),
        }
    }
}
