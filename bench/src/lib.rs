//! What tracing costs the traced host: the benchmark `cargo xtask bench` runs.
//!
//! First a network-free, syscall-heavy `bystander` (a 1-byte write and read
//! over a pipe, pinned to the last core, alone: the churn is idle, see
//! [`workload`] for why) runs untraced and traced in alternating pairs, for
//! each subject below and for tracer with `--syscall-errors on`: what a tracer
//! left running costs the processes it does not trace. Then one bulk TCP
//! transfer over loopback (`stream`, pinned sender and receiver, in a private
//! network namespace) runs untraced and traced in alternating pairs for each
//! subject below, with one more sample per subject with BPF run-time
//! statistics on: what runs for every packet (tracer's cgroup_skb programs on
//! the cgroup v2 root) costs it. Then a loopback connect/accept/close churn (`churn`, pinned client and server
//! threads, in a private network namespace) runs untraced and traced in
//! alternating pairs, for each of: tracer tracing every process; tracer with
//! `--pid` of an unrelated process (only the in-kernel filter runs); a bpftrace
//! script counting the same tracepoints per pid; and programs that return at
//! once on tracer's hooks (`noop-hooks`), the part of the cost that no program
//! can remove. Then, per subject, one sample with BPF run-time statistics on
//! gives the kernel time of each program; and tracer's start-up to its first
//! event and its memory with many live connections are measured. Results print
//! as tables and go to `target/bench/results.json`.
//!
//! xtask builds the programs and hands their paths over ([`Paths`]); the
//! workloads are this crate's binaries `churn`, `stream` and `bystander`, and
//! the hook floor is its `noop-hooks`.

mod cmd;
mod hooks;
mod measure;
mod pin;
mod procfs;
mod report;
mod results;
mod running;
mod settings;
mod stats;
mod subject;
mod summary;
mod workload;

use std::{
    fs,
    path::PathBuf,
    process::{Child, Command, ExitCode},
    thread,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result};

use self::{
    hooks::Hook,
    measure::Pair,
    results::{
        BystanderResults, BystanderSubject, Machine, ModeResult, Results, StreamResults,
        StreamSubject, SubjectResult,
    },
    settings::{Settings, Workload},
    subject::{Setup, Subject},
    workload::{Bystander, Churn, Netns, Sample, Stream},
};
pub use self::{
    hooks::{CgroupHook, READY, cgroup_v2_root_in},
    pin::pin_to,
    settings::BenchArgs,
    workload::Mode,
};

/// The namespace the workload runs in.
const NETNS: &str = "tracer-bench";

/// The programs the benchmark runs, and where it writes.
#[derive(Debug, Clone)]
pub struct Paths {
    /// tracer's release binary.
    pub tracer: PathBuf,
    /// This crate's `churn` binary (built with `--release`).
    pub churn: PathBuf,
    /// This crate's `bystander` binary.
    pub bystander: PathBuf,
    /// This crate's `stream` binary.
    pub stream: PathBuf,
    /// This crate's `noop-hooks` binary.
    pub noop_hooks: PathBuf,
    /// bpftrace, where installed.
    pub bpftrace: Option<PathBuf>,
    /// For the bpftrace script, tracer's summaries and, unless `--output`
    /// says otherwise, `results.json` (xtask passes `target/bench`).
    pub dir: PathBuf,
}

/// Runs the benchmark: prints the tables and writes the JSON results.
pub fn bench(args: &BenchArgs, paths: &Paths) -> Result<ExitCode> {
    args.check()?;
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 {
        eprintln!("warning: one CPU only: client and server share it");
    }
    let mut settings = Settings::new(args, cpus, paths.tracer.display().to_string());
    let churn = Churn {
        bin: paths.churn.clone(),
        client_cpu: settings.client_cpu,
        server_cpu: settings.server_cpu,
    };
    let bystander = Bystander {
        bin: paths.bystander.clone(),
        cpu: settings.bystander_cpu,
    };
    let stream = Stream {
        bin: paths.stream.clone(),
        sender_cpu: settings.client_cpu,
        receiver_cpu: settings.server_cpu,
    };
    let dir = &paths.dir;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| dir.join("results.json"));

    let netns = Netns::create(NETNS)?;
    let other = Unrelated::spawn()?;
    if paths.bpftrace.is_none() {
        eprintln!("warning: bpftrace not found (`cargo xtask setup` installs it); no comparison");
    }
    settings.bpftrace = paths
        .bpftrace
        .as_ref()
        .and_then(|path| cmd::output(Command::new(path).arg("--version")));
    let mut setup = Setup {
        tracer: paths.tracer.clone(),
        summary: dir.join("tracer-summary.json"),
        bpftrace: paths.bpftrace.clone(),
        script: dir.join("count-per-pid.bt"),
        other_pid: other.pid(),
        noop_hooks: paths.noop_hooks.clone(),
        noop_args: Vec::new(),
    };

    let load_at_start = loadavg();
    let with_churn = settings.workloads.contains(&Workload::Churn);
    let first_event = if with_churn {
        println!("==> start-up and the hooks tracer attaches");
        Some(measure::first_event(
            &setup,
            &churn,
            &netns,
            settings.start_trials,
        )?)
    } else {
        None
    };
    let subjects = plan_peers(&mut setup, &mut settings)?;

    let bystander = settings
        .workloads
        .contains(&Workload::Bystander)
        .then(|| measure_bystander(&setup, &bystander, &settings, &subjects));
    let stream = settings
        .workloads
        .contains(&Workload::Stream)
        .then(|| measure_stream(&setup, &stream, &netns, &settings, &subjects));

    let mut churn_results = Vec::new();
    if with_churn {
        for &mode in &settings.modes {
            churn_results.push(measure_mode(
                &setup, &churn, &netns, &settings, mode, &subjects,
            ));
        }
    }

    let hold = if with_churn && settings.hold_connections > 0 {
        println!(
            "==> tracer's memory with {} live connections",
            settings.hold_connections
        );
        Some(measure::hold(
            &setup,
            &churn,
            &netns,
            settings.hold_connections,
        )?)
    } else {
        None
    };

    let mut results = Results {
        format: 3,
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
        bystander,
        stream,
        first_event,
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

/// Points bpftrace and `noop-hooks` at the hooks `tracer doctor` lists, writes
/// the bpftrace script, and returns the subjects to measure: those that have
/// hooks to attach to, and the control.
fn plan_peers(setup: &mut Setup, settings: &mut Settings) -> Result<Vec<Subject>> {
    let doctor = cmd::output(Command::new(&setup.tracer).arg("doctor")).unwrap_or_default();
    let (hooks, unmatched) = hooks::hooks_from_doctor(&doctor);
    if !unmatched.is_empty() {
        eprintln!(
            "warning: bpftrace and noop-hooks get no probe for: {}",
            unmatched.join(", ")
        );
    }
    let probes: Vec<String> = hooks.iter().filter_map(Hook::bpftrace_probe).collect();
    if probes.is_empty() {
        setup.bpftrace = None;
    }
    let unprobed: Vec<String> = hooks
        .iter()
        .filter(|h| h.bpftrace_probe().is_none())
        .map(Hook::describe)
        .collect();
    if setup.bpftrace.is_some() && !unprobed.is_empty() {
        eprintln!(
            "warning: bpftrace has no probe for cgroup programs; its figures leave out: {}",
            unprobed.join(", ")
        );
    }
    setup.noop_args = hooks.iter().filter_map(Hook::noop_arg).collect();
    if setup.noop_args.len() < hooks.len() {
        eprintln!(
            "warning: noop-hooks attaches tracepoints and cgroup programs only; its figures \
             leave out the probes"
        );
    }
    settings.noop_hooks.clone_from(&setup.noop_args);
    fs::write(&setup.script, hooks::bpftrace_script(&probes))
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
    Ok(subjects)
}

/// The pairs of every subject in one close mode, then one kernel-time sample
/// of each. A failed sample is reported and counted, and the run goes on.
fn measure_mode(
    setup: &Setup,
    churn: &Churn,
    netns: &Netns,
    settings: &Settings,
    mode: Mode,
    subjects: &[Subject],
) -> ModeResult {
    println!(
        "==> {} mode: {} pairs of {}s per subject",
        mode.name(),
        settings.pairs,
        settings.seconds
    );
    let (pairs, failures) = take_turns(mode.name(), subjects, settings.pairs, |subject, first| {
        measure::run_pair(setup, subject, first, || {
            churn.sample(netns, mode, settings.seconds)
        })
    });
    let mut results = Vec::new();
    for ((&subject, pairs), mut failures) in subjects.iter().zip(pairs).zip(failures) {
        let kernel = (subject != Subject::Control)
            .then(|| measure::kernel_profile(setup, churn, netns, mode, subject, settings.seconds))
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
    ModeResult {
        mode,
        subjects: results,
    }
}

/// The bystander's pairs for every subject, and tracer with `--syscall-errors
/// on` beside tracer's default. The churn is idle meanwhile: the bystander runs
/// alone on its core (see [`workload`]).
fn measure_bystander(
    setup: &Setup,
    bystander: &Bystander,
    settings: &Settings,
    subjects: &[Subject],
) -> BystanderResults {
    let mut subjects = subjects.to_vec();
    let after_tracer = subjects
        .iter()
        .rposition(|s| s.is_tracer())
        .map_or(0, |i| i + 1);
    subjects.insert(after_tracer, Subject::TracerSyscallErrors);
    println!(
        "==> bystander (1-byte pipe write + read, alone on cpu {}): {} pairs of {}s per subject",
        bystander.cpu, settings.pairs, settings.seconds
    );
    let (pairs, failures) = take_turns("bystander", &subjects, settings.pairs, |subject, first| {
        measure::run_pair(setup, subject, first, || bystander.sample(settings.seconds))
    });
    BystanderResults {
        cpu: bystander.cpu,
        subjects: subjects
            .iter()
            .zip(pairs)
            .zip(failures)
            .map(|((&subject, pairs), failures)| BystanderSubject::new(subject, pairs, failures))
            .collect(),
    }
}

/// The stream's pairs for every subject, then one kernel-time sample of each.
fn measure_stream(
    setup: &Setup,
    stream: &Stream,
    netns: &Netns,
    settings: &Settings,
    subjects: &[Subject],
) -> StreamResults {
    println!(
        "==> stream (one bulk TCP transfer over loopback, sender on cpu {}, receiver on cpu \
         {}): {} pairs of {}s per subject",
        stream.sender_cpu, stream.receiver_cpu, settings.pairs, settings.seconds
    );
    let (pairs, failures) = take_turns("stream", subjects, settings.pairs, |subject, first| {
        measure::run_pair(setup, subject, first, || {
            stream.sample(netns, settings.seconds)
        })
    });
    let mut results = Vec::new();
    for ((&subject, pairs), mut failures) in subjects.iter().zip(pairs).zip(failures) {
        let kernel = (subject != Subject::Control)
            .then(|| measure::stream_kernel(setup, stream, netns, subject, settings.seconds))
            .transpose()
            .map_err(|err| {
                let err = format!("{err:#}");
                eprintln!(
                    "warning: stream kernel-time sample of {} failed: {err}",
                    subject.label()
                );
                failures.push(err);
            })
            .ok()
            .flatten();
        results.push(StreamSubject::new(subject, pairs, kernel, failures));
    }
    StreamResults {
        sender_cpu: stream.sender_cpu,
        receiver_cpu: stream.receiver_cpu,
        subjects: results,
    }
}

/// `pairs` pairs of each subject, taken by `run(subject, traced_first)`, with a
/// line for each as it comes; per subject, the pairs and why others failed.
/// Subjects take turns, so that noise from elsewhere on the machine spreads
/// over all of them; within a pair the order alternates. A failed pair is
/// reported and counted, and the run goes on.
fn take_turns<S: Sample>(
    what: &str,
    subjects: &[Subject],
    pairs: usize,
    mut run: impl FnMut(Subject, bool) -> Result<Pair<S>>,
) -> (Vec<Vec<Pair<S>>>, Vec<Vec<String>>) {
    let mut taken: Vec<Vec<Pair<S>>> = subjects.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Vec<String>> = vec![Vec::new(); subjects.len()];
    for i in 0..pairs {
        for (s, &subject) in subjects.iter().enumerate() {
            let traced_first = i % 2 == 1;
            let pair = match run(subject, traced_first) {
                Ok(pair) => pair,
                Err(err) => {
                    let err = format!("{err:#}");
                    eprintln!(
                        "warning: {what} pair {} of {} failed: {err}",
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
                "{what:<9} {:>2}/{pairs} {:<26} untraced {}  traced {}  ratio {:.3}  other load \
                 {:.2} cores",
                i + 1,
                subject.label(),
                pair.untraced.shown(),
                pair.traced.shown(),
                pair.ratio,
                pair.other_load_cores
            );
            taken[s].push(pair);
        }
    }
    (taken, failures)
}

/// A process that makes no connections, for `tracer --pid`.
struct Unrelated(Child);

impl Unrelated {
    fn spawn() -> Result<Self> {
        let child = Command::new("sleep")
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
