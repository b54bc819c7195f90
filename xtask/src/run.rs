//! `cargo xtask run`: builds the tracer and runs it, as root.

use std::{ffi::OsString, os::unix::process::CommandExt as _, process::ExitCode};

use anyhow::{Result, bail};
use clap::Args;

use crate::{
    ebpf,
    tools::{self, Workspace},
};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the unoptimised build (target/debug/tracer).
    #[arg(long)]
    pub debug: bool,

    /// Arguments for tracer, after `--`.
    #[arg(last = true, value_name = "TRACER_ARGS")]
    pub args: Vec<OsString>,
}

/// Builds, then replaces this process with the tracer, so its exit status and its
/// handling of Ctrl-C are the tracer's own. Returns only on failure.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    let bin = ebpf::build_tracer(&ws, !args.debug)?;

    let mut cmd = if tools::is_root() {
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(&args.args);
        cmd
    } else {
        let Some(sudo) = tools::find_program("sudo") else {
            bail!(
                "tracer needs root to load eBPF programs and sudo is not installed: run {} as root",
                bin.display()
            );
        };
        eprintln!("tracer needs root: running it through `sudo -E`");
        let mut cmd = std::process::Command::new(sudo);
        cmd.arg("-E").arg(&bin).args(&args.args);
        cmd
    };
    println!("$ {}", tools::display(&cmd));
    let err = cmd.exec();
    bail!("could not start {}: {err}", bin.display())
}
