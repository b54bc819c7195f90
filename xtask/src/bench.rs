//! `cargo xtask bench`: builds what the benchmark runs (tracer; the `churn`,
//! `stream` and `bystander` workloads and `noop-hooks`, all of the
//! `tracer-bench` crate) and runs it (`bench/`).

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use tracer_bench::{BenchArgs, Paths};

use crate::{
    ebpf,
    tools::{self, Workspace},
};

/// The package that holds the benchmark and its workloads.
const BENCH_PACKAGE: &str = "tracer-bench";

pub fn bench(args: &BenchArgs) -> Result<ExitCode> {
    // Before building: running as root, with samples to take.
    args.check()?;
    let ws = Workspace::locate()?;
    let tracer = ebpf::build_tracer(&ws, true)?;
    let bins = build_workload(&ws)?;
    let paths = Paths {
        tracer,
        churn: bins.join("churn"),
        bystander: bins.join("bystander"),
        stream: bins.join("stream"),
        noop_hooks: bins.join("noop-hooks"),
        bpftrace: tools::find_program("bpftrace"),
        dir: ws.target_dir.join("bench"),
    };
    tracer_bench::bench(args, &paths)
}

/// `cargo build --release` of the `churn`, `stream` and `bystander` workloads and
/// `noop-hooks`; returns the directory that holds them.
fn build_workload(ws: &Workspace) -> Result<PathBuf> {
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root).args([
        "build",
        "--release",
        "--package",
        BENCH_PACKAGE,
        "--bin",
        "churn",
        "--bin",
        "stream",
        "--bin",
        "bystander",
        "--bin",
        "noop-hooks",
    ]);
    tools::run(&mut cmd).context("building the workloads and noop-hooks failed")?;
    Ok(ws.target_dir.join("release"))
}
