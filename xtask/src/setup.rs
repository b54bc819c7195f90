//! `cargo xtask setup`: installs what the build and the tests need, skipping what is
//! already there. `--build-only` installs only what building tracer needs.

use std::{
    fs,
    io::ErrorKind,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::tools::{self, Workspace};

/// Debian packages the tests and the VM runner use. busybox-static is required by
/// virtme-ng; linux-image-amd64 is Debian's 6.1 kernel booted by `cargo xtask test`;
/// prometheus (the server and `promtool`) scrapes tracer's `--prometheus` endpoint in
/// the `prometheus` suite, which runs on this kernel only.
/// chromium opens `tracer report`'s page headless in `tracer/tests/report.rs`.
/// golang-go builds the Go programs of the kernel tests (`tracer/tests/go/`: a
/// DNS client, a small service): Go's own resolver, dialer, HTTP client and
/// `database/sql` pool are what Go services run.
const DEBIAN_PACKAGES: &[&str] = &[
    "iproute2",
    "nftables",
    "qemu-system-x86",
    "linux-image-amd64",
    "busybox-static",
    "bpftrace",
    "python3",
    "tmux",
    "procps",
    "prometheus",
    "chromium",
    "golang-go",
];

/// A package from PyPI that the tests run, and the program it installs.
struct PyPackage {
    name: &'static str,
    program: &'static str,
}

/// virtme-ng (`vng`) boots a kernel with the host's filesystem; `cargo xtask test`
/// uses it to run the kernel tests on Debian's 6.1 kernel. kubernetes-validate
/// checks `deploy/kubernetes/tracer.yaml` against the Kubernetes schemas it
/// bundles (no network needed) in `tracer/tests/deploy.rs`.
const PYPI_PACKAGES: &[PyPackage] = &[
    PyPackage {
        name: "virtme-ng",
        program: "vng",
    },
    PyPackage {
        name: "kubernetes-validate",
        program: "kubernetes-validate",
    },
];

const TRACEFS: &str = "/sys/kernel/tracing";

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Install only what building tracer needs: the eBPF toolchain with its
    /// rust-src, and bpf-linker. Skips the Debian packages, the PyPI tools and
    /// the 6.1 kernel that the tests use, and mounting tracefs; needs no root.
    /// The Dockerfile's build stage runs this.
    #[arg(long)]
    pub build_only: bool,
}

pub fn setup(args: &SetupArgs) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    step("rust-src", rust_src)?;
    step("bpf-linker", || bpf_linker(&ws))?;
    if args.build_only {
        println!("setup: done (build only: the test tools were not installed)");
        return Ok(ExitCode::SUCCESS);
    }
    step("Debian packages", debian_packages)?;
    for package in PYPI_PACKAGES {
        step(package.name, || pip_install(package))?;
    }
    step("tracefs", tracefs)?;
    println!("setup: done");
    Ok(ExitCode::SUCCESS)
}

/// What a step found or did, for its closing line.
enum Outcome {
    AlreadyDone(String),
    Done(String),
}

fn step(name: &str, f: impl FnOnce() -> Result<Outcome>) -> Result<()> {
    match f().with_context(|| format!("setup step `{name}` failed"))? {
        Outcome::AlreadyDone(what) => println!("setup: {name}: already set up ({what})"),
        Outcome::Done(what) => println!("setup: {name}: {what}"),
    }
    Ok(())
}

/// The eBPF toolchain (`tracer-ebpf/rust-toolchain.toml`) with `rust-src`, for
/// `-Z build-std=core` on the bpf target.
fn rust_src() -> Result<Outcome> {
    let toolchain = tools::ebpf_toolchain();
    let sysroot = match tools::nightly_sysroot() {
        Ok(sysroot) => sysroot,
        Err(_) => {
            println!("setup: rust-src ({toolchain}): toolchain missing, installing it");
            let mut cmd = tools::command("rustup");
            cmd.args(["toolchain", "install", toolchain]).args([
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]);
            tools::run(&mut cmd)?;
            return Ok(Outcome::Done(format!(
                "installed {toolchain} with rust-src"
            )));
        }
    };
    let library = sysroot.join("lib/rustlib/src/rust/library");
    if library.is_dir() {
        return Ok(Outcome::AlreadyDone(library.display().to_string()));
    }
    let mut cmd = tools::command("rustup");
    cmd.args(["component", "add", "rust-src", "--toolchain", toolchain]);
    tools::run(&mut cmd)?;
    Ok(Outcome::Done(format!("added rust-src to {toolchain}")))
}

/// bpf-linker must use the LLVM that nightly rustc uses. Nightly ships it as
/// `libLLVM.so.<major>…` in its sysroot; bpf-linker is built against that file.
fn bpf_linker(ws: &Workspace) -> Result<Outcome> {
    if let Some((path, version)) = tools::bpf_linker() {
        return Ok(Outcome::AlreadyDone(format!(
            "{version} at {}",
            path.display()
        )));
    }

    let sysroot = tools::nightly_sysroot()?;
    let libllvm = tools::sysroot_libllvm(&sysroot)?;
    let major = llvm_major(&libllvm)?;

    // LLVM_PREFIX/lib/libLLVM.so is what bpf-linker's build script links against.
    let prefix = ws.target_dir.join("llvm-prefix");
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    let link = lib.join("libLLVM.so");
    match fs::remove_file(&link) {
        Err(err) if err.kind() != ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing {}", link.display()));
        }
        _ => {}
    }
    symlink(&libllvm, &link)
        .with_context(|| format!("linking {} -> {}", link.display(), libllvm.display()))?;
    println!(
        "setup: bpf-linker: {} -> {}",
        link.display(),
        libllvm.display()
    );

    let mut cmd = tools::cargo();
    cmd.args(["install", "--locked", "--force", "bpf-linker"])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ])
        .env("LLVM_PREFIX", &prefix)
        // The binary needs libLLVM at run time too; let it find it without
        // LD_LIBRARY_PATH.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("-Clink-arg=-Wl,-rpath,{}", sysroot.join("lib").display()),
        )
        // Outside the workspace: its rust-toolchain.toml and config do not apply.
        .current_dir(std::env::temp_dir());
    println!("setup: bpf-linker: building against LLVM {major} (takes a few minutes)");
    tools::run(&mut cmd)?;

    match tools::bpf_linker() {
        Some((path, version)) => Ok(Outcome::Done(format!(
            "installed {version} at {}",
            path.display()
        ))),
        None => bail!(
            "bpf-linker was installed but is not found or does not run; is {} on PATH?",
            tools::cargo_bin_dir()
                .unwrap_or_else(|| PathBuf::from("~/.cargo/bin"))
                .display()
        ),
    }
}

/// `libLLVM.so.22.1-rust-1.97.0-nightly` -> `22`.
fn llvm_major(libllvm: &Path) -> Result<u32> {
    let name = libllvm
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_prefix("libLLVM.so.")
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .with_context(|| format!("cannot read the LLVM major version from `{name}`"))
}

fn debian_packages() -> Result<Outcome> {
    if tools::find_program("dpkg-query").is_none() {
        bail!(
            "dpkg-query not found: this step supports Debian and Ubuntu; install these \
             packages by hand: {}",
            DEBIAN_PACKAGES.join(" ")
        );
    }
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|package| !package_installed(package))
        .collect();
    if missing.is_empty() {
        return Ok(Outcome::AlreadyDone(DEBIAN_PACKAGES.join(" ")));
    }
    let missing_list = missing.join(" ");
    if !tools::is_root() {
        bail!(
            "packages missing: {missing_list}\n  install them as root, then run setup again:\n    \
             sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends {missing_list}"
        );
    }
    println!("setup: Debian packages: installing {missing_list}");
    tools::run(tools::command("apt-get").arg("update"))?;
    tools::run(
        tools::command("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    let still_missing: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|package| !package_installed(package))
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "still not installed after apt-get: {}",
            still_missing.join(" ")
        );
    }
    Ok(Outcome::Done(format!("installed {missing_list}")))
}

fn package_installed(package: &str) -> bool {
    tools::output(tools::command("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status == "install ok installed")
}

/// Installs `package` with pip unless its program already runs.
fn pip_install(package: &PyPackage) -> Result<Outcome> {
    let name = package.name;
    if let Some(version) = program_version(package.program) {
        return Ok(Outcome::AlreadyDone(version));
    }
    if tools::output(tools::command("python3").args(["-m", "pip", "--version"])).is_none() {
        bail!(
            "`python3 -m pip` does not work; install pip (Debian: `apt-get install \
             python3-pip`) and run setup again"
        );
    }
    let mut cmd = tools::command("python3");
    cmd.args(["-m", "pip", "install", name]);
    println!("$ {}", tools::display(&cmd));
    let out = cmd.output().context("could not run python3 -m pip")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("externally-managed-environment") {
            println!("setup: {name}: the system Python is externally managed; retrying");
            tools::run(cmd.arg("--break-system-packages"))?;
        } else {
            bail!("`{}` failed ({})", tools::display(&cmd), out.status);
        }
    }
    // pyenv only sees newly installed scripts after a rehash.
    if let Some(pyenv) = tools::find_program("pyenv") {
        let _ = tools::output(tools::command(pyenv).arg("rehash"));
    }
    match program_version(package.program) {
        Some(version) => Ok(Outcome::Done(format!("installed {version}"))),
        None => bail!(
            "{name} was installed but `{} --version` does not run; is pip's script \
             directory on PATH?",
            package.program
        ),
    }
}

fn program_version(program: &str) -> Option<String> {
    let path = tools::find_program(program)?;
    tools::output(tools::command(path).arg("--version"))
}

/// The tracepoints live in tracefs; the tracer mounts it itself when it can, but the
/// tests and bpftrace expect it mounted.
fn tracefs() -> Result<Outcome> {
    let events = Path::new(TRACEFS).join("events");
    if events.is_dir() {
        return Ok(Outcome::AlreadyDone(format!("{TRACEFS} is mounted")));
    }
    if !tools::is_root() {
        eprintln!(
            "warning: {TRACEFS} is not mounted; as root run: mount -t tracefs nodev {TRACEFS}"
        );
        return Ok(Outcome::Done(
            "not mounted (needs root), see the warning".into(),
        ));
    }
    let mut cmd = tools::command("mount");
    cmd.args(["-t", "tracefs", "nodev", TRACEFS]);
    match tools::run(&mut cmd) {
        Ok(()) if events.is_dir() => Ok(Outcome::Done(format!("mounted {TRACEFS}"))),
        Ok(()) => {
            eprintln!(
                "warning: mounted tracefs, but {} is missing",
                events.display()
            );
            Ok(Outcome::Done("mounted, without events".into()))
        }
        Err(err) => {
            eprintln!("warning: could not mount tracefs: {err:#}");
            Ok(Outcome::Done("not mounted, see the warning".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_the_library_name() {
        let major = llvm_major(Path::new("/x/lib/libLLVM.so.22.1-rust-1.97.0-nightly"));
        assert_eq!(major.ok(), Some(22));
        assert_eq!(llvm_major(Path::new("libLLVM.so.19")).ok(), Some(19));
        assert!(llvm_major(Path::new("libLLVM-22-rust.so")).is_err());
    }
}
