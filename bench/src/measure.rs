//! The measurements: a pair of workload samples (untraced, traced), a sample with
//! BPF run-time statistics on, tracer's start-up under load, and its memory with
//! many live connections. Each returns its result type, as in `results.json`.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::Result;
use serde::Serialize;

use crate::{
    procfs::{self, BpfProgram, OtherLoad, RunTimeStats},
    report::seconds_list,
    running::{Running, Stopped},
    stats::{Spread, per},
    subject::{Setup, Subject, Writes},
    summary::Summary,
    workload::{Churn, ChurnResult, Mode, Netns, Sample, Stream, StreamResult},
};

/// One untraced and one traced sample of a workload (the churn unless said
/// otherwise), back to back.
#[derive(Debug, Clone, Serialize)]
pub struct Pair<S = ChurnResult> {
    pub traced_first: bool,
    pub untraced: S,
    /// For the control, a second untraced sample.
    pub traced: S,
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

/// Takes a pair of `sample`s, one without `subject` and one with it attached.
pub fn run_pair<S: Sample>(
    setup: &Setup,
    subject: Subject,
    traced_first: bool,
    sample: impl Fn() -> Result<S>,
) -> Result<Pair<S>> {
    let other_tracers = procfs::other_tracers(&[std::process::id()]);
    let other_load = OtherLoad::start()?;
    let untraced_sample = &sample;
    let untraced = if traced_first {
        None
    } else {
        Some(untraced_sample()?)
    };
    let (traced, attach_s, peak_rss_kib, stopped) = if subject == Subject::Control {
        (untraced_sample()?, None, None, Stopped::default())
    } else {
        let running = Running::start(subject, setup, Writes::Csv)?;
        let traced = sample();
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
        ratio: if untraced.per_second() > 0.0 {
            traced.per_second() / untraced.per_second()
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

/// One sample taken with `subject` attached and BPF run-time statistics on
/// for that sample only: the sample, what each of the subject's programs ran
/// meanwhile (most time first), and what the subject reported.
fn with_run_time_stats<S>(
    setup: &Setup,
    subject: Subject,
    sample: impl FnOnce() -> Result<S>,
) -> Result<(S, Vec<BpfProgram>, Stopped)> {
    let running = Running::start(subject, setup, Writes::Csv)?;
    let sampled = (|| {
        let stats = RunTimeStats::enable()?;
        let before = procfs::bpf_programs(running.pid)?;
        let sampled = sample()?;
        let after = procfs::bpf_programs(running.pid)?;
        drop(stats);
        anyhow::Ok((sampled, procfs::bpf_delta(&before, &after)))
    })();
    let stopped = running.stop()?;
    let (sampled, mut programs) = sampled?;
    programs.sort_by_key(|p| std::cmp::Reverse(p.run_time_ns));
    Ok((sampled, programs, stopped))
}

/// One traced sample with BPF run-time statistics on for the churn only.
pub fn kernel_profile(
    setup: &Setup,
    churn: &Churn,
    netns: &Netns,
    mode: Mode,
    subject: Subject,
    seconds: f64,
) -> Result<KernelProfile> {
    let (churned, programs, stopped) =
        with_run_time_stats(setup, subject, || churn.sample(netns, mode, seconds))?;
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

/// Kernel time of each program of a subject during one stream sample.
#[derive(Debug, Clone, Serialize)]
pub struct StreamKernel {
    pub stream: StreamResult,
    pub programs: Vec<BpfProgram>,
    pub run_time_ns: u64,
    pub runs: u64,
}

impl StreamKernel {
    /// Kernel time of the subject's programs per megabyte streamed (10^6 bytes).
    pub fn ns_per_mb(&self) -> Option<f64> {
        per(self.run_time_ns as f64 * 1e6, self.stream.bytes as f64)
    }

    pub fn ns_per_run(&self) -> Option<f64> {
        per(self.run_time_ns as f64, self.runs as f64)
    }

    /// Runs of the subject's programs per megabyte streamed.
    pub fn runs_per_mb(&self) -> Option<f64> {
        per(self.runs as f64 * 1e6, self.stream.bytes as f64)
    }
}

/// One traced stream sample with BPF run-time statistics on for it only.
pub fn stream_kernel(
    setup: &Setup,
    stream: &Stream,
    netns: &Netns,
    subject: Subject,
    seconds: f64,
) -> Result<StreamKernel> {
    let (streamed, programs, _) =
        with_run_time_stats(setup, subject, || stream.sample(netns, seconds))?;
    let profile = StreamKernel {
        stream: streamed,
        run_time_ns: programs.iter().map(|p| p.run_time_ns).sum(),
        runs: programs.iter().map(|p| p.run_cnt).sum(),
        programs,
    };
    println!(
        "stream kernel time {:<24} {:>6.0} ns/MB, {:>5.1} runs/MB, {:>5.0} ns/run",
        subject.label(),
        profile.ns_per_mb().unwrap_or(f64::NAN),
        profile.runs_per_mb().unwrap_or(f64::NAN),
        profile.ns_per_run().unwrap_or(f64::NAN)
    );
    Ok(profile)
}

/// tracer (every process) started while the churn runs: how long until it has
/// attached, and until its first event comes out.
#[derive(Debug, Clone, Serialize)]
pub struct FirstEvent {
    pub attach_s: Vec<f64>,
    pub first_event_s: Vec<f64>,
    pub first_event: Option<Spread>,
}

pub fn first_event(
    setup: &Setup,
    churn: &Churn,
    netns: &Netns,
    trials: usize,
) -> Result<FirstEvent> {
    let mut result = FirstEvent {
        attach_s: Vec::new(),
        first_event_s: Vec::new(),
        first_event: None,
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
/// tracer's memory with many connections open, and what reading the
/// socket tables costs it then, from each source.
#[derive(Debug, Clone, Serialize)]
pub struct Hold {
    pub connections: u64,
    pub peak_rss_kib: u64,
    pub summary: Option<Summary>,
    /// sock_diag (tracer's default), then /proc text.
    pub tables: Vec<TableCost>,
}

/// What one source of the socket tables cost tracer, per sample.
#[derive(Debug, Clone, Serialize)]
pub struct TableCost {
    /// The subject's key: `tracer_all` (sock_diag) or `tracer_proc_tables`.
    pub subject: &'static str,
    pub samples: u64,
    pub sample_cpu_ms: u64,
}

impl TableCost {
    pub fn ms_per_sample(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sample_cpu_ms as f64 / self.samples as f64)
    }
}

pub fn hold(setup: &Setup, churn: &Churn, netns: &Netns, connections: u64) -> Result<Hold> {
    let running = Running::start(Subject::TracerAll, setup, Writes::Csv)?;
    let measured = (|| {
        let held = churn.hold(netns, connections)?;
        // Until tracer has taken in everything the connects produced.
        wait_until_idle(running.pid, Duration::from_secs(30))?;
        let peak = running.peak_rss_kib()?;
        anyhow::Ok((held, peak))
    })();
    let stopped = running.stop()?;
    let tables = match &measured {
        Ok(_) => [Subject::TracerAll, Subject::TracerProcTables]
            .into_iter()
            .map(|subject| table_cost(setup, subject))
            .collect::<Result<Vec<_>>>(),
        Err(_) => Ok(Vec::new()),
    };
    let (held, peak_rss_kib) = measured?;
    held.release()?;
    let tables = tables?;
    println!(
        "tracer peak RSS with {connections} connections: {:.1} MiB",
        peak_rss_kib as f64 / 1024.0
    );
    for t in &tables {
        println!(
            "{}: {} samples of the socket tables, {} ms of CPU",
            t.subject, t.samples, t.sample_cpu_ms
        );
    }
    Ok(Hold {
        connections,
        peak_rss_kib,
        summary: stopped.summary,
        tables,
    })
}

/// Starts `subject` while the connections are held, lets it sample them, and
/// reads from its summary what the samples cost.
fn table_cost(setup: &Setup, subject: Subject) -> Result<TableCost> {
    let running = Running::start(subject, setup, Writes::Csv)?;
    let waited = wait_until_idle(running.pid, Duration::from_secs(60));
    let stopped = running.stop()?;
    waited?;
    let summary = stopped.summary.unwrap_or_default();
    Ok(TableCost {
        subject: subject.key(),
        samples: summary.samples,
        sample_cpu_ms: summary.sample_cpu_ms,
    })
}

/// Waits until `pid` uses almost no CPU (less than 20 ms in 500 ms).
fn wait_until_idle(pid: u32, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = procfs::cpu_seconds(pid)?;
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = procfs::cpu_seconds(pid)?;
        if now - last < 0.02 || Instant::now() >= deadline {
            return Ok(());
        }
        last = now;
    }
}
