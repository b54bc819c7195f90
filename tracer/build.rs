//! Builds the eBPF programs (`tracer-ebpf`, for the BPF target, with the nightly
//! toolchain pinned in `tracer-ebpf/rust-toolchain.toml` and the bpf-linker
//! that `cargo xtask setup` installs) and leaves the
//! object in OUT_DIR for `include_bytes_aligned!`. Cargo reruns this whenever
//! the eBPF crate's sources change, so a stale object is never embedded.

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf package not found in the workspace"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    if which_bpf_linker().is_none() {
        return Err(anyhow!(
            "bpf-linker is not installed: run `cargo xtask setup` once, then build again"
        ));
    }
    let toolchain_file = root.join("rust-toolchain.toml");
    println!("cargo:rerun-if-changed={toolchain_file}");
    let toolchain_text = std::fs::read_to_string(&toolchain_file)
        .with_context(|| format!("reading {toolchain_file}"))?;
    let toolchain =
        channel(&toolchain_text).ok_or_else(|| anyhow!("{toolchain_file} names no `channel`"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "tracer-ebpf",
            root_dir: root.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(toolchain),
    )
    .context(
        "building the eBPF programs (tracer-ebpf); `cargo xtask setup` installs what this needs",
    )
}

fn which_bpf_linker() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|candidate| candidate.is_file())
}

/// The `channel = "..."` of a rust-toolchain.toml.
fn channel(toml: &str) -> Option<&str> {
    toml.lines()
        .find_map(|line| line.trim().strip_prefix("channel"))
        .and_then(|rest| rest.split('"').nth(1))
}
