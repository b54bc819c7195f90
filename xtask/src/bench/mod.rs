//! `cargo xtask bench`: what tracing costs the traced host.
//!
//! A loopback connect/accept/close churn (`churn`, pinned client and server
//! threads, in a private network namespace) runs untraced and traced in
//! alternating pairs, for each of: tracer tracing every process; tracer with
//! `--pid` of an unrelated process (only the in-kernel filter runs); a bpftrace
//! script counting the same tracepoints per pid; and programs that return at
//! once on tracer's hooks (`noop-hooks`), the part of the cost that no program
//! can remove. Then, per subject, one sample
//! with BPF run-time statistics on gives the kernel time of each program; and
//! tracer's start-up to its first event and its memory with many live connections
//! are measured. Results print as tables and go to `target/bench/results.json`.

mod procfs;
mod report;
mod stats;
mod subject;
mod workload;

use std::{
    fs,
    path::PathBuf,
    process::{Child, ExitCode},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde::Serialize;

use self::{
    procfs::{BpfProgram, OtherLoad, RunTimeStats},
    stats::Spread,
    subject::{Running, Setup, Stopped, Subject, Summary, Writes},
    workload::{Churn, ChurnResult, Mode, Netns},
};
use crate::{
    ebpf,
    tools::{self, Workspace},
};

/// The namespace the workload runs in.
const NETNS: &str = "tracer-bench";

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

pub fn bench(args: &BenchArgs) -> Result<ExitCode> {
    if !tools::is_root() {
        bail!(
            "the benchmark loads eBPF programs and creates a network namespace: run it as root \
             (sudo -E cargo xtask bench)"
        );
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) || args.pairs == 0 {
        bail!("--pairs and --seconds must be greater than zero");
    }
    let ws = Workspace::locate()?;
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        eprintln!("warning: one CPU only: client and server share it");
    }
    let mut settings = Settings {
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
        tracer: String::new(),
        tracer_args: "--headless --interval 1s --csv /dev/null".into(),
        bpftrace: None,
        bpftrace_probes: Vec::new(),
        noop_hooks: Vec::new(),
    };

    let tracer = ebpf::build_tracer(&ws, true)?;
    let bins = build_workload(&ws)?;
    let churn = Churn {
        bin: bins.join("churn"),
        client_cpu: settings.client_cpu,
        server_cpu: settings.server_cpu,
    };
    settings.tracer = tracer.display().to_string();
    let bench_dir = ws.target_dir.join("bench");
    fs::create_dir_all(&bench_dir).with_context(|| format!("creating {}", bench_dir.display()))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| bench_dir.join("results.json"));

    let netns = Netns::create(NETNS)?;
    let other = Unrelated::spawn()?;
    let bpftrace = tools::find_program("bpftrace");
    if bpftrace.is_none() {
        eprintln!("warning: bpftrace not found (`cargo xtask setup` installs it); no comparison");
    }
    settings.bpftrace = bpftrace
        .as_ref()
        .and_then(|path| tools::output(tools::command(path).arg("--version")));
    let mut setup = Setup {
        tracer,
        bpftrace,
        script: bench_dir.join("count-per-pid.bt"),
        other_pid: other.pid(),
        noop_hooks: bins.join("noop-hooks"),
        noop_args: Vec::new(),
    };

    let load_at_start = loadavg();
    println!("==> start-up and the hooks tracer attaches");
    let first_event = first_event(&setup, &churn, &netns, settings.start_trials)?;
    let doctor = tools::output(tools::command(&setup.tracer).arg("doctor")).unwrap_or_default();
    let (hooks, unmatched) = subject::hooks_from_doctor(&doctor);
    if !unmatched.is_empty() {
        eprintln!(
            "warning: bpftrace and noop-hooks get no probe for: {}",
            unmatched.join(", ")
        );
    }
    let probes: Vec<String> = hooks.iter().map(subject::Hook::bpftrace_probe).collect();
    if probes.is_empty() {
        setup.bpftrace = None;
    }
    setup.noop_args = hooks.iter().filter_map(subject::Hook::noop_arg).collect();
    if setup.noop_args.len() < hooks.len() {
        eprintln!(
            "warning: noop-hooks attaches tracepoints only; its figures leave out the probes"
        );
    }
    settings.noop_hooks.clone_from(&setup.noop_args);
    fs::write(&setup.script, subject::bpftrace_script(&probes))
        .with_context(|| format!("writing {}", setup.script.display()))?;
    settings.bpftrace_probes = probes;

    let mut subjects = vec![Subject::TracerAll, Subject::TracerPid];
    if setup.bpftrace.is_some() {
        subjects.push(Subject::Bpftrace);
    }
    if !setup.noop_args.is_empty() {
        subjects.push(Subject::NoopHooks);
    }
    // Untraced against untraced: the spread of its ratio is the noise floor.
    subjects.push(Subject::Control);

    let mut churn_results = Vec::new();
    for &mode in &settings.modes {
        println!(
            "==> {} mode: {} pairs of {}s per subject",
            mode.name(),
            settings.pairs,
            settings.seconds
        );
        let mut pairs: Vec<Vec<Pair>> = vec![Vec::new(); subjects.len()];
        let mut failures: Vec<Vec<String>> = vec![Vec::new(); subjects.len()];
        // Subjects take turns, so that noise from elsewhere on the machine spreads
        // over all of them; within a pair the order alternates. A failed pair is
        // reported and counted, and the run goes on.
        for i in 0..settings.pairs {
            for (s, &subject) in subjects.iter().enumerate() {
                let pair =
                    match run_pair(&setup, &churn, &netns, mode, subject, &settings, i % 2 == 1) {
                        Ok(pair) => pair,
                        Err(err) => {
                            let err = format!("{err:#}");
                            eprintln!(
                                "warning: {} pair {} of {} failed: {err}",
                                mode.name(),
                                i + 1,
                                subject.label()
                            );
                            failures[s].push(err);
                            continue;
                        }
                    };
                if !pair.other_tracers.is_empty() {
                    eprintln!(
                        "warning: other processes are tracing too: {}",
                        pair.other_tracers.join(", ")
                    );
                }
                println!(
                    "{:<6} {:>2}/{} {:<24} untraced {:>7.0}/s  traced {:>7.0}/s  ratio {:.3}  \
                     other load {:.2} cores",
                    mode.name(),
                    i + 1,
                    settings.pairs,
                    subject.label(),
                    pair.untraced.rate,
                    pair.traced.rate,
                    pair.ratio,
                    pair.other_load_cores
                );
                pairs[s].push(pair);
            }
        }
        let mut results = Vec::new();
        for ((&subject, pairs), mut failures) in subjects.iter().zip(pairs).zip(failures) {
            let kernel = (subject != Subject::Control)
                .then(|| kernel_profile(&setup, &churn, &netns, mode, subject, settings.seconds))
                .transpose()
                .map_err(|err| {
                    let err = format!("{err:#}");
                    eprintln!(
                        "warning: {} kernel-time sample of {} failed: {err}",
                        mode.name(),
                        subject.label()
                    );
                    failures.push(err);
                })
                .ok()
                .flatten();
            results.push(SubjectResult::new(subject, pairs, kernel, failures));
        }
        churn_results.push(ModeResult {
            mode,
            subjects: results,
        });
    }

    let hold = if settings.hold_connections > 0 {
        println!(
            "==> tracer's memory with {} live connections",
            settings.hold_connections
        );
        Some(hold(&setup, &churn, &netns, settings.hold_connections)?)
    } else {
        None
    };

    let mut results = Results {
        format: 1,
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: Machine {
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            cpus,
            loadavg_at_start: load_at_start,
            loadavg_at_end: loadavg(),
        },
        settings,
        churn: churn_results,
        first_event: Some(first_event),
        hold,
        targets: Vec::new(),
    };
    results.targets = report::targets(&results);

    println!();
    print!("{}", report::render(&results));
    let json = serde_json::to_string_pretty(&results).context("encoding the results")?;
    fs::write(&output, json + "\n").with_context(|| format!("writing {}", output.display()))?;
    println!("results: {}", output.display());
    drop(netns);
    Ok(ExitCode::SUCCESS)
}

/// `cargo build --release` of the `churn` workload and `noop-hooks`; returns the
/// directory that holds both.
fn build_workload(ws: &Workspace) -> Result<PathBuf> {
    let mut cmd = tools::cargo();
    cmd.current_dir(&ws.root).args([
        "build",
        "--release",
        "--package",
        "xtask",
        "--bin",
        "churn",
        "--bin",
        "noop-hooks",
    ]);
    tools::run(&mut cmd).context("building the churn workload and noop-hooks failed")?;
    Ok(ws.target_dir.join("release"))
}

/// A process that makes no connections, for `tracer --pid`.
struct Unrelated(Child);

impl Unrelated {
    fn spawn() -> Result<Self> {
        let child = tools::command("sleep")
            .arg("100000")
            .spawn()
            .context("cannot start `sleep`")?;
        Ok(Self(child))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Unrelated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One untraced and one traced sample, back to back.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub traced_first: bool,
    pub untraced: ChurnResult,
    /// For the control, a second untraced sample.
    pub traced: ChurnResult,
    /// traced rate / untraced rate.
    pub ratio: f64,
    /// Seconds from spawning the subject until it had attached.
    pub attach_s: Option<f64>,
    /// Peak resident memory of the subject, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// Cores' worth of CPU other processes used during the pair (noise).
    pub other_load_cores: f64,
    /// Other processes holding tracing BPF programs when the pair started: they
    /// trace the "untraced" samples too.
    pub other_tracers: Vec<String>,
    #[serde(flatten)]
    pub stopped: Stopped,
}

fn run_pair(
    setup: &Setup,
    churn: &Churn,
    netns: &Netns,
    mode: Mode,
    subject: Subject,
    settings: &Settings,
    traced_first: bool,
) -> Result<Pair> {
    let other_tracers = procfs::other_tracers(&[std::process::id()]);
    let other_load = OtherLoad::start()?;
    let untraced_sample = || churn.sample(netns, mode, settings.seconds);
    let untraced = if traced_first {
        None
    } else {
        Some(untraced_sample()?)
    };
    let (traced, attach_s, peak_rss_kib, stopped) = if subject == Subject::Control {
        (untraced_sample()?, None, None, Stopped::default())
    } else {
        let running = Running::start(subject, setup, Writes::Csv)?;
        let traced = churn.sample(netns, mode, settings.seconds);
        let peak_rss_kib = running.peak_rss_kib();
        let attach_s = running.attach.as_secs_f64();
        let stopped = running.stop()?;
        (traced?, Some(attach_s), Some(peak_rss_kib?), stopped)
    };
    let untraced = match untraced {
        Some(sample) => sample,
        None => untraced_sample()?,
    };
    Ok(Pair {
        traced_first,
        ratio: if untraced.rate > 0.0 {
            traced.rate / untraced.rate
        } else {
            f64::NAN
        },
        untraced,
        traced,
        attach_s,
        peak_rss_kib,
        other_load_cores: other_load.cores()?,
        other_tracers,
        stopped,
    })
}

/// Kernel time of each program of a subject during one churn sample.
#[derive(Debug, Clone, Serialize)]
pub struct KernelProfile {
    pub churn: ChurnResult,
    pub programs: Vec<BpfProgram>,
    pub run_time_ns: u64,
    pub runs: u64,
    /// Events the subject emitted in this sample (tracer: submitted).
    pub emitted: Option<u64>,
    pub dropped: Option<u64>,
}

impl KernelProfile {
    pub fn ns_per_connection(&self) -> Option<f64> {
        per(self.run_time_ns as f64, self.churn.connections as f64)
    }

    pub fn ns_per_run(&self) -> Option<f64> {
        per(self.run_time_ns as f64, self.runs as f64)
    }

    pub fn ns_per_event(&self) -> Option<f64> {
        per(self.run_time_ns as f64, self.emitted? as f64)
    }
}

fn per(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// One traced sample with BPF run-time statistics on for the churn only.
fn kernel_profile(
    setup: &Setup,
    churn: &Churn,
    netns: &Netns,
    mode: Mode,
    subject: Subject,
    seconds: f64,
) -> Result<KernelProfile> {
    let running = Running::start(subject, setup, Writes::Csv)?;
    let sampled = (|| {
        let stats = RunTimeStats::enable()?;
        let before = procfs::bpf_programs(running.pid)?;
        let churned = churn.sample(netns, mode, seconds)?;
        let after = procfs::bpf_programs(running.pid)?;
        drop(stats);
        anyhow::Ok((churned, procfs::bpf_delta(&before, &after)))
    })();
    let stopped = running.stop()?;
    let (churned, mut programs) = sampled?;
    programs.sort_by_key(|p| std::cmp::Reverse(p.run_time_ns));
    let summary = stopped.summary;
    let profile = KernelProfile {
        churn: churned,
        run_time_ns: programs.iter().map(|p| p.run_time_ns).sum(),
        runs: programs.iter().map(|p| p.run_cnt).sum(),
        programs,
        emitted: summary.map(|s| s.submitted).or(stopped.counted),
        dropped: summary.map(|s| s.dropped),
    };
    println!(
        "{:<6} kernel time {:<24} {:>6.0} ns/connection, {:>5.0} ns/run",
        mode.name(),
        subject.label(),
        profile.ns_per_connection().unwrap_or(f64::NAN),
        profile.ns_per_run().unwrap_or(f64::NAN)
    );
    Ok(profile)
}

/// Totals over the traced samples of one subject.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub connections: u64,
    /// tracer's summaries, summed.
    pub tracer: Option<Summary>,
    /// bpftrace's counts, summed.
    pub counted: Option<u64>,
    /// CPU seconds of the subject after it attached.
    pub cpu_s: f64,
    /// Times the subject's main thread was woken.
    pub wakeups: u64,
}

/// Everything measured for one subject in one close mode.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectResult {
    pub subject: &'static str,
    pub label: &'static str,
    pub untraced_rate: Option<Spread>,
    pub traced_rate: Option<Spread>,
    pub ratio: Option<Spread>,
    /// Time tracing added to each connection, per pair: 1/traced − 1/untraced rate,
    /// in microseconds.
    pub added_us_per_connection: Option<Spread>,
    pub totals: Totals,
    pub events_per_connection: Option<f64>,
    pub user_cpu_s_per_million_events: Option<f64>,
    /// How often the subject was woken per 1,000 events it read.
    pub wakeups_per_1k_events: Option<f64>,
    /// Percent of one core the subject's process used per 10,000 connections/s.
    pub core_percent_per_10k_connections_per_s: Option<f64>,
    pub peak_rss_kib: Option<u64>,
    pub attach_s: Option<Spread>,
    /// Cores' worth of CPU other processes used during the pairs.
    pub other_load_cores: Option<Spread>,
    /// SYNs dropped by the churn's listener in all samples (should be 0).
    pub listen_drops: u64,
    /// The slowest single connect in any sample, in milliseconds.
    pub slowest_connect_ms: f64,
    /// `None` when its sample failed.
    pub kernel: Option<KernelProfile>,
    pub pairs: Vec<Pair>,
    /// Why samples failed, one entry per failed pair or kernel-time sample.
    pub failures: Vec<String>,
}

impl SubjectResult {
    fn new(
        subject: Subject,
        pairs: Vec<Pair>,
        kernel: Option<KernelProfile>,
        failures: Vec<String>,
    ) -> Self {
        let rates = |f: fn(&Pair) -> f64| Spread::of(&pairs.iter().map(f).collect::<Vec<_>>());
        let mut totals = Totals::default();
        for pair in &pairs {
            totals.connections += pair.traced.connections;
            totals.cpu_s += pair.stopped.cpu_after_attach;
            totals.wakeups += pair.stopped.wakeups;
            if let Some(s) = pair.stopped.summary {
                let t = totals.tracer.get_or_insert_with(Summary::default);
                t.read += s.read;
                t.submitted += s.submitted;
                t.dropped += s.dropped;
                t.filtered += s.filtered;
                t.unattributed += s.unattributed;
                t.undecodable += s.undecodable;
            }
            if let Some(counted) = pair.stopped.counted {
                *totals.counted.get_or_insert(0) += counted;
            }
        }
        let events = totals.tracer.map(|t| t.read).or(totals.counted);
        let connections = totals.connections as f64;
        Self {
            subject: subject.key(),
            label: subject.label(),
            untraced_rate: rates(|p| p.untraced.rate),
            traced_rate: rates(|p| p.traced.rate),
            ratio: rates(|p| p.ratio),
            added_us_per_connection: rates(|p| {
                if p.traced.rate > 0.0 && p.untraced.rate > 0.0 {
                    1e6 / p.traced.rate - 1e6 / p.untraced.rate
                } else {
                    f64::NAN
                }
            }),
            events_per_connection: events.and_then(|e| per(e as f64, connections)),
            user_cpu_s_per_million_events: events
                .and_then(|e| per(totals.cpu_s * 1e6, e as f64))
                .filter(|_| events.unwrap_or(0) >= 1000),
            wakeups_per_1k_events: events
                .and_then(|e| per(totals.wakeups as f64 * 1e3, e as f64))
                .filter(|_| events.unwrap_or(0) >= 1000),
            core_percent_per_10k_connections_per_s: pairs
                .iter()
                .any(|p| p.attach_s.is_some())
                .then(|| per(totals.cpu_s * 1e4 * 100.0, connections))
                .flatten(),
            peak_rss_kib: pairs.iter().filter_map(|p| p.peak_rss_kib).max(),
            attach_s: rates(|p| p.attach_s.unwrap_or(f64::NAN)),
            other_load_cores: rates(|p| p.other_load_cores),
            listen_drops: pairs
                .iter()
                .flat_map(|p| [p.untraced, p.traced])
                .filter_map(|c| c.listen_drops)
                .sum(),
            slowest_connect_ms: pairs
                .iter()
                .flat_map(|p| [p.untraced, p.traced])
                .map(|c| c.slowest_connect_ms)
                .fold(0.0, f64::max),
            totals,
            kernel,
            pairs,
            failures,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModeResult {
    pub mode: Mode,
    pub subjects: Vec<SubjectResult>,
}

/// tracer (every process) started while the churn runs: how long until it has
/// attached, and until its first event comes out.
#[derive(Debug, Clone, Serialize)]
pub struct FirstEvent {
    pub attach_s: Vec<f64>,
    pub first_event_s: Vec<f64>,
    pub first_event: Option<Spread>,
    #[serde(skip)]
    attach_line: String,
}

fn first_event(setup: &Setup, churn: &Churn, netns: &Netns, trials: usize) -> Result<FirstEvent> {
    let mut result = FirstEvent {
        attach_s: Vec::new(),
        first_event_s: Vec::new(),
        first_event: None,
        attach_line: String::new(),
    };
    for _ in 0..trials.max(1) {
        let mut load = churn.spawn(netns, Mode::Reset, 4.0)?;
        thread::sleep(Duration::from_millis(300));
        let running = Running::start(Subject::TracerAll, setup, Writes::FirstEvent);
        let running = match running {
            Ok(running) => running,
            Err(err) => {
                let _ = load.wait();
                return Err(err);
            }
        };
        result.attach_s.push(running.attach.as_secs_f64());
        if let Some(line) = running.attach_line() {
            line.clone_into(&mut result.attach_line);
        }
        // Give the first event time to come out, then stop.
        thread::sleep(Duration::from_millis(1500));
        let stopped = running.stop();
        let _ = load.wait();
        let stopped = stopped?;
        result
            .first_event_s
            .push(stopped.first_event_s.unwrap_or(f64::INFINITY));
    }
    result.first_event = Spread::of(&result.first_event_s);
    println!(
        "tracer attached after {}; first event after {}",
        seconds_list(&result.attach_s),
        seconds_list(&result.first_event_s)
    );
    Ok(result)
}

fn seconds_list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:.3}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// tracer's memory with many connections open.
#[derive(Debug, Clone, Serialize)]
pub struct Hold {
    pub connections: u64,
    pub peak_rss_kib: u64,
    pub summary: Option<Summary>,
}

fn hold(setup: &Setup, churn: &Churn, netns: &Netns, connections: u64) -> Result<Hold> {
    let running = Running::start(Subject::TracerAll, setup, Writes::Csv)?;
    let measured = (|| {
        let held = churn.hold(netns, connections)?;
        // Until tracer has taken in everything the connects produced.
        wait_until_idle(running.pid, Duration::from_secs(30))?;
        let peak = running.peak_rss_kib()?;
        anyhow::Ok((held, peak))
    })();
    let stopped = running.stop()?;
    let (held, peak_rss_kib) = measured?;
    held.release()?;
    println!(
        "tracer peak RSS with {connections} connections: {:.1} MiB",
        peak_rss_kib as f64 / 1024.0
    );
    Ok(Hold {
        connections,
        peak_rss_kib,
        summary: stopped.summary,
    })
}

/// Waits until `pid` uses almost no CPU (less than 20 ms in 500 ms).
fn wait_until_idle(pid: u32, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = procfs::cpu_seconds(pid)?;
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = procfs::cpu_seconds(pid)?;
        if now - last < 0.02 || std::time::Instant::now() >= deadline {
            return Ok(());
        }
        last = now;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub loadavg_at_start: String,
    pub loadavg_at_end: String,
}

/// An overhead target and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    /// `None` when not measured.
    pub met: Option<bool>,
}

/// Everything `cargo xtask bench` writes to `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// Bumped when the layout of this file changes incompatibly.
    pub format: u32,
    pub created_unix_s: u64,
    pub machine: Machine,
    pub settings: Settings,
    pub churn: Vec<ModeResult>,
    pub first_event: Option<FirstEvent>,
    pub hold: Option<Hold>,
    pub targets: Vec<Target>,
}
