//! `cargo xtask build-ebpf`: builds the kernel programs with nightly for
//! `bpfel-unknown-none`, then the userspace binary that embeds them.

use std::{ffi::OsString, fs, path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Args;

use crate::tools::{self, Workspace};

pub const EBPF_PACKAGE: &str = "tracer-ebpf";
pub const EBPF_BIN: &str = "tracer";
pub const EBPF_TARGET: &str = "bpfel-unknown-none";

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Build the userspace binary without optimisations (target/debug/tracer). The
    /// eBPF object is always built with the release profile: the verifier needs
    /// optimised code.
    #[arg(long)]
    pub debug: bool,
}

pub fn build_ebpf(args: &BuildArgs) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    let object = build_object(&ws)?;
    let size = fs::metadata(&object)
        .with_context(|| format!("the eBPF object {} was not produced", object.display()))?
        .len();
    println!("eBPF object: {} ({size} bytes)", object.display());

    let bin = build_tracer(&ws, !args.debug)?;
    println!("tracer binary: {}", bin.display());
    Ok(ExitCode::SUCCESS)
}

/// `cargo +nightly build` of the eBPF programs; returns the object's path.
pub fn build_object(ws: &Workspace) -> Result<PathBuf> {
    tools::require_bpf_linker()?;
    let mut cmd = tools::cargo_nightly();
    cmd.current_dir(&ws.root)
        .args(["build", "--package", EBPF_PACKAGE, "--bins", "--release"])
        .args(["--target", EBPF_TARGET, "-Z", "build-std=core"])
        .env("CARGO_ENCODED_RUSTFLAGS", ebpf_rustflags());
    tools::run(&mut cmd).context("building the eBPF programs failed")?;
    Ok(ws
        .target_dir
        .join(EBPF_TARGET)
        .join("release")
        .join(EBPF_BIN))
}

/// The flags aya-build passes too: the target architecture the programs read
/// kernel structures for, BTF debug info, and BTF emitted by the linker.
fn ebpf_rustflags() -> OsString {
    [
        format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
    ]
    .join("\x1f")
    .into()
}

/// `cargo build -p tracer` (its build script embeds the eBPF object); returns the
/// binary's path.
pub fn build_tracer(ws: &Workspace, release: bool) -> Result<PathBuf> {
    tools::require_bpf_linker()?;
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root)
        .args(["build", "--package", "tracer"]);
    if release {
        cmd.arg("--release");
    }
    tools::run(&mut cmd).context("building the tracer binary failed")?;
    Ok(ws.tracer_bin(release))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustflags_are_separated_by_unit_separators() {
        let flags = ebpf_rustflags();
        let flags = flags.to_string_lossy();
        let parts: Vec<&str> = flags.split('\x1f').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[0].starts_with("--cfg=bpf_target_arch=\""));
        assert_eq!(parts[1], "-Cdebuginfo=2");
        assert_eq!(parts[2], "-Clink-arg=--btf");
    }
}
