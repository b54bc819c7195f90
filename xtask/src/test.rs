//! `cargo xtask test`: every test, on this kernel and on Debian's 6.1 kernel in a VM.

use std::{
    env,
    io::BufReader,
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use cargo_metadata::{Artifact, Message, TargetKind};
use clap::Args;

use crate::{
    tools::{self, Workspace},
    vm::{self, Job, Vm},
};

/// The package whose tests exercise the kernel and so run again in the VM.
const KERNEL_TEST_PACKAGE: &str = "tracer";

/// The kernel suites that run once per hook plan in the VM, where every plan
/// works, with identical expectations. `TRACER_TEST_HOOKS` makes them start
/// tracer with `--hooks PLAN`.
const PLAN_SUITES: &[&str] = &["states", "faults"];
const PLANS: &[&str] = &["raw-tracepoint", "tracepoint", "kprobe"];
/// The plan the host also runs the plan suites with, after the default run
/// (which picks raw tracepoints where they load); kprobes do not exist there.
const HOST_EXTRA_PLAN: &str = "tracepoint";
/// Suites that run on this kernel only: the VM has none of what they need
/// (`prometheus` scrapes tracer with the Prometheus server, which only
/// `cargo xtask setup` installs, on the host; `report` tests no kernel and
/// opens tracer's HTML report in headless Chromium; `deploy` tests no kernel
/// and validates the Kubernetes manifest with kubernetes-validate from PyPI).
const HOST_ONLY_SUITES: &[&str] = &["prometheus", "report", "deploy"];

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Run only the tests on this machine's kernel; skip the VM.
    #[arg(long, conflicts_with = "vm")]
    pub host_only: bool,

    /// Run only the VM part: tracer's tests and `tracer doctor` on Debian's 6.1
    /// kernel under virtme-ng (one boot, about half a minute plus the tests).
    /// The state and fault suites run once per hook plan there
    /// (`--hooks raw-tracepoint`, `tracepoint`, `kprobe`).
    #[arg(long)]
    pub vm: bool,

    /// Kill the VM if it has not finished after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3300)]
    pub vm_timeout: u64,
}

pub fn test(args: &TestArgs) -> Result<ExitCode> {
    let ws = Workspace::locate()?;
    // tracer's build script builds the eBPF programs, which needs bpf-linker.
    tools::require_bpf_linker()?;

    let mut suites: Vec<(&str, bool)> = Vec::new();
    if !args.vm {
        suites.push(("host tests", host_tests(&ws)));
    }
    if !args.host_only {
        let passed = vm_tests(&ws, args).unwrap_or_else(|err| {
            eprintln!("error: VM tests: {err:#}");
            false
        });
        suites.push(("VM tests (Debian 6.1 kernel)", passed));
    }

    println!();
    for (name, passed) in &suites {
        println!("{name}: {}", if *passed { "passed" } else { "FAILED" });
    }
    let passed = suites.iter().filter(|(_, passed)| *passed).count();
    let failed = suites.len() - passed;
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The workspace's tests on this kernel, one at a time: the kernel tests share
/// kernel state (tracepoints, counters, namespaces). Then the plan suites
/// again with [`HOST_EXTRA_PLAN`].
fn host_tests(ws: &Workspace) -> bool {
    println!("==> host tests (kernel {})", host_kernel_release());
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root)
        .args(["test", "--workspace", "--exclude", "tracer-ebpf"])
        .args(["--", "--test-threads=1"])
        .env("RUST_BACKTRACE", "1");
    let mut ok = report(tools::run(&mut cmd));
    println!("==> host plan suites with --hooks {HOST_EXTRA_PLAN}");
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root)
        .args(["test", "--package", KERNEL_TEST_PACKAGE]);
    for suite in PLAN_SUITES {
        cmd.args(["--test", suite]);
    }
    cmd.args(["--", "--test-threads=1"])
        .env("RUST_BACKTRACE", "1")
        .env("TRACER_TEST_HOOKS", HOST_EXTRA_PLAN);
    ok &= report(tools::run(&mut cmd));
    ok
}

fn report(result: Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(err) => {
            eprintln!("error: {err:#}");
            false
        }
    }
}

fn host_kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// tracer's test executables and `tracer doctor`, built here and run in one boot of
/// Debian's 6.1 kernel.
fn vm_tests(ws: &Workspace, args: &TestArgs) -> Result<bool> {
    println!("==> VM tests");
    let kernel = vm::check_prerequisites()?;
    let tracer_manifest = ws.root.join(KERNEL_TEST_PACKAGE).join("Cargo.toml");

    let tracer_bin = cargo_artifacts(ws, &["build", "--package", KERNEL_TEST_PACKAGE])?
        .into_iter()
        .find(|a| {
            a.manifest_path == tracer_manifest
                && a.target.name == KERNEL_TEST_PACKAGE
                && a.target.kind.contains(&TargetKind::Bin)
        })
        .and_then(|a| a.executable)
        .map(|path| path.into_std_path_buf())
        .with_context(|| {
            format!("`cargo build` did not report the {KERNEL_TEST_PACKAGE} binary")
        })?;

    // Same package selection as the host run, so nothing is rebuilt.
    let mut test_exes: Vec<(String, String, PathBuf)> = cargo_artifacts(
        ws,
        &[
            "test",
            "--workspace",
            "--exclude",
            "tracer-ebpf",
            "--no-run",
        ],
    )?
    .into_iter()
    .filter(|a| a.manifest_path == tracer_manifest && a.profile.test)
    .filter_map(|a| {
        let kind = a
            .target
            .kind
            .first()
            .map(|kind| kind.to_string())
            .unwrap_or_default();
        let exe = a.executable?.into_std_path_buf();
        Some((a.target.name.clone(), kind, exe))
    })
    .collect();
    test_exes.sort();
    test_exes.dedup();
    if test_exes.is_empty() {
        bail!("`cargo test --no-run` reported no test executables for {KERNEL_TEST_PACKAGE}");
    }

    let mut jobs = vec![Job {
        name: "tracer doctor".into(),
        argv: vec![path_string(&tracer_bin)?, "doctor".into()],
        env: Vec::new(),
    }];
    // Every suite once; the plan suites once per plan, all in this one boot.
    let plan_suite = |name: &str, kind: &str| kind == "test" && PLAN_SUITES.contains(&name);
    for (name, kind, exe) in &test_exes {
        if kind == "test" && HOST_ONLY_SUITES.contains(&name.as_str()) {
            println!("  {name}: on the host only, not in the VM");
            continue;
        }
        let plans: &[&str] = if plan_suite(name, kind) { PLANS } else { &[""] };
        for plan in plans {
            let (label, env) = if plan.is_empty() {
                (String::new(), Vec::new())
            } else {
                (
                    format!(", --hooks {plan}"),
                    vec![("TRACER_TEST_HOOKS".to_owned(), (*plan).to_owned())],
                )
            };
            jobs.push(Job {
                name: format!("tests: {name} ({kind}{label})"),
                argv: vec![path_string(exe)?, "--test-threads=1".into()],
                env,
            });
        }
    }
    let missing: Vec<&&str> = PLAN_SUITES
        .iter()
        .filter(|suite| {
            !test_exes
                .iter()
                .any(|(name, kind, _)| plan_suite(name, kind) && name == *suite)
        })
        .collect();
    if !missing.is_empty() {
        bail!("`cargo test --no-run` reported no test executable for {missing:?}");
    }

    let env_vars = vec![
        ("TRACER_TEST_KERNEL".to_owned(), "vm".to_owned()),
        ("CI".to_owned(), env::var("CI").unwrap_or_default()),
        ("RUST_BACKTRACE".to_owned(), "1".to_owned()),
        (
            "PATH".to_owned(),
            tools::search_path().to_string_lossy().into_owned(),
        ),
    ];
    let vm = Vm {
        kernel,
        memory: "2G".into(),
        cpus: 2,
        timeout: Duration::from_secs(args.vm_timeout),
    };
    println!(
        "booting {} under emulation for {} job(s)",
        vm.kernel.display(),
        jobs.len()
    );
    let script = ws.target_dir.join("xtask").join("vm-tests.sh");
    let outcome = vm.run(&script, &ws.root, &env_vars, &jobs)?;

    println!(
        "==> VM results (kernel {}, {:.0}s, vng exit code {})",
        outcome.kernel_release.as_deref().unwrap_or("unknown"),
        outcome.elapsed.as_secs_f64(),
        outcome
            .vng_code
            .map_or_else(|| "none".to_owned(), |code| code.to_string()),
    );
    for (job, status) in jobs.iter().zip(&outcome.statuses) {
        let verdict = match status {
            Some(0) => "ok".to_owned(),
            Some(code) => format!("FAILED (exit status {code})"),
            None => "FAILED (did not finish)".to_owned(),
        };
        println!("  {}: {verdict}", job.name);
    }
    if outcome.timed_out {
        println!("  the VM was killed after {}s", args.vm_timeout);
    } else if !outcome.finished {
        println!("  the VM stopped before the script finished");
    }
    Ok(outcome.all_passed())
}

fn path_string(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

/// Runs cargo with `--message-format=json-render-diagnostics` and returns the
/// artifacts it reports; diagnostics still go to stderr as usual.
fn cargo_artifacts(ws: &Workspace, args: &[&str]) -> Result<Vec<Artifact>> {
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root)
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    println!("$ {}", tools::display(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", tools::display(&cmd)))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut artifacts = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) = message.context("reading cargo's output")? {
            artifacts.push(artifact);
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("`{}` failed ({status})", tools::display(&cmd));
    }
    Ok(artifacts)
}
