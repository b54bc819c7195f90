//! Shared helpers: workspace paths, locating programs, running commands.

use std::{
    env,
    ffi::OsString,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

/// Where the workspace and its build output live.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Workspace {
    /// Asks cargo for the workspace root and target directory.
    pub fn locate() -> Result<Self> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .no_deps()
            .exec()
            .context("`cargo metadata` failed")?;
        Ok(Self {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
        })
    }

    /// The userspace binary of the given profile: `target/{release,debug}/tracer`.
    pub fn tracer_bin(&self, release: bool) -> PathBuf {
        self.target_dir
            .join(if release { "release" } else { "debug" })
            .join("tracer")
    }
}

/// The directory `cargo install` puts binaries in.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    if let Some(root) = env::var_os("CARGO_INSTALL_ROOT") {
        return Some(PathBuf::from(root).join("bin"));
    }
    if let Some(home) = env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(home).join("bin"));
    }
    env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin"))
}

/// `PATH` with the directories tools get installed to (cargo's and pip's) appended,
/// so that a tool installed by `cargo xtask setup` is found even when the shell's
/// `PATH` lacks them. Children started by xtask get this `PATH`.
pub fn search_path() -> OsString {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut extra: Vec<PathBuf> = cargo_bin_dir().into_iter().collect();
    if let Some(home) = env::var_os("HOME") {
        extra.push(PathBuf::from(home).join(".local/bin"));
    }
    extra.push(PathBuf::from("/usr/local/bin"));
    for dir in extra {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    env::join_paths(dirs).unwrap_or_else(|_| env::var_os("PATH").unwrap_or_default())
}

/// Finds an executable named `name` on [`search_path`].
pub fn find_program(name: &str) -> Option<PathBuf> {
    env::split_paths(&search_path())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A command whose children see [`search_path`] as `PATH`.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", search_path());
    cmd
}

/// `cargo` through the rustup proxy (not `$CARGO`, which is a toolchain's own binary
/// and would not understand `+nightly`).
pub fn cargo() -> Command {
    command("cargo")
}

/// The eBPF crate's `rust-toolchain.toml`: the one place its toolchain is named.
const EBPF_TOOLCHAIN_FILE: &str = include_str!("../../tracer-ebpf/rust-toolchain.toml");

/// The nightly toolchain the eBPF programs build with, e.g. `nightly-2026-06-20`
/// (the `channel` of `tracer-ebpf/rust-toolchain.toml`).
pub fn ebpf_toolchain() -> &'static str {
    EBPF_TOOLCHAIN_FILE
        .lines()
        .find_map(|line| line.trim().strip_prefix("channel"))
        .and_then(|rest| rest.split('"').nth(1))
        .expect("tracer-ebpf/rust-toolchain.toml names a channel")
}

/// `cargo +<eBPF toolchain>`, with the variables that would make it use another
/// compiler removed.
pub fn cargo_nightly() -> Command {
    let mut cmd = cargo();
    cmd.arg(format!("+{}", ebpf_toolchain()));
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER", "RUSTUP_TOOLCHAIN"] {
        cmd.env_remove(key);
    }
    cmd
}

/// Renders a command for display: `KEY=value program arg …` (control characters
/// shown as `\xNN`).
pub fn display(cmd: &Command) -> String {
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter(|(key, _)| *key != "PATH")
        .filter_map(|(key, value)| {
            value.map(|value| format!("{}={}", key.to_string_lossy(), show(value)))
        })
        .collect();
    parts.push(show(cmd.get_program()));
    parts.extend(cmd.get_args().map(show));
    parts.join(" ")
}

fn show(word: &std::ffi::OsStr) -> String {
    let word = word.to_string_lossy();
    let escaped: String = word
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("\\x{:02x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect();
    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || "\"'$`".contains(c)) {
        format!("'{escaped}'")
    } else {
        escaped
    }
}

/// Runs `cmd` with inherited stdio, echoing it first; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("$ {}", display(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its trimmed stdout if it exits 0.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The eBPF toolchain's sysroot (`rustc +<toolchain> --print sysroot`).
pub fn nightly_sysroot() -> Result<PathBuf> {
    let toolchain = format!("+{}", ebpf_toolchain());
    let mut cmd = command("rustc");
    cmd.args([toolchain.as_str(), "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN");
    let out = cmd
        .output()
        .with_context(|| format!("could not run `rustc {toolchain}`"))?;
    if !out.status.success() {
        bail!(
            "`rustc {toolchain} --print sysroot` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The `libLLVM.so.*` shipped in a rustc sysroot's `lib/` directory.
pub fn sysroot_libllvm(sysroot: &Path) -> Result<PathBuf> {
    let lib = sysroot.join("lib");
    let mut found: Vec<PathBuf> = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("libLLVM.so."))
        })
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))
}

/// Whether bpf-linker is installed and runs (it loads nightly's libLLVM, so it is
/// tried with the nightly sysroot's `lib/` on the library path, as rustc runs it).
/// Returns its path and `--version` line.
pub fn bpf_linker() -> Option<(PathBuf, String)> {
    let path = find_program("bpf-linker")?;
    let mut cmd = command(&path);
    cmd.arg("--version");
    if let Ok(sysroot) = nightly_sysroot() {
        if !links_libllvm_of(&path, &sysroot) {
            return None;
        }
        let mut dirs = vec![sysroot.join("lib")];
        if let Some(old) = env::var_os("LD_LIBRARY_PATH") {
            dirs.extend(env::split_paths(&old));
        }
        if let Ok(joined) = env::join_paths(dirs) {
            cmd.env("LD_LIBRARY_PATH", joined);
        }
    }
    let version = output(&mut cmd)?;
    Some((path, version))
}

/// Whether the bpf-linker at `path` was built against the `libLLVM.so.*` of
/// `sysroot` (it names that file among the libraries it needs). One built for
/// another toolchain's LLVM would link code that compiler's LLVM emitted.
fn links_libllvm_of(path: &Path, sysroot: &Path) -> bool {
    let Some(name) = sysroot_libllvm(sysroot)
        .ok()
        .and_then(|lib| lib.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return false;
    };
    fs::read(path).is_ok_and(|binary| {
        binary
            .windows(name.len())
            .any(|window| window == name.as_bytes())
    })
}

/// Fails with a pointer to `cargo xtask setup` unless bpf-linker is usable.
pub fn require_bpf_linker() -> Result<PathBuf> {
    match bpf_linker() {
        Some((path, _)) => Ok(path),
        None => bail!(
            "bpf-linker is missing, does not run, or was built for another LLVM than {}'s: \
             run `cargo xtask setup` first",
            ebpf_toolchain()
        ),
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
