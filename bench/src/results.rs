//! Everything `results.json` holds, and the per-subject figures derived from
//! the samples.

use serde::Serialize;

use crate::{
    measure::{FirstEvent, Hold, KernelProfile, Pair, StreamKernel},
    settings::Settings,
    stats::{Spread, per},
    subject::Subject,
    summary::Summary,
    workload::{BystanderResult, Mode, StreamResult},
};

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
    pub fn new(
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
            if let Some(summary) = &pair.stopped.summary {
                totals
                    .tracer
                    .get_or_insert_with(Summary::default)
                    .add(summary);
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
/// The bystander's pairs for one subject.
#[derive(Debug, Clone, Serialize)]
pub struct BystanderSubject {
    pub subject: &'static str,
    pub label: &'static str,
    /// Syscalls per second.
    pub untraced_rate: Option<Spread>,
    pub traced_rate: Option<Spread>,
    pub ratio: Option<Spread>,
    /// Time tracing added to each syscall, per pair: 1/traced − 1/untraced
    /// rate, in nanoseconds.
    pub added_ns_per_syscall: Option<Spread>,
    /// Cores' worth of CPU other processes used during the pairs.
    pub other_load_cores: Option<Spread>,
    pub pairs: Vec<Pair<BystanderResult>>,
    /// Why pairs failed, one entry per failed pair.
    pub failures: Vec<String>,
}

impl BystanderSubject {
    pub fn new(subject: Subject, pairs: Vec<Pair<BystanderResult>>, failures: Vec<String>) -> Self {
        let spread = |f: fn(&Pair<BystanderResult>) -> f64| {
            Spread::of(&pairs.iter().map(f).collect::<Vec<_>>())
        };
        Self {
            subject: subject.key(),
            label: subject.label(),
            untraced_rate: spread(|p| p.untraced.rate),
            traced_rate: spread(|p| p.traced.rate),
            ratio: spread(|p| p.ratio),
            added_ns_per_syscall: spread(|p| {
                if p.traced.rate > 0.0 && p.untraced.rate > 0.0 {
                    1e9 / p.traced.rate - 1e9 / p.untraced.rate
                } else {
                    f64::NAN
                }
            }),
            other_load_cores: spread(|p| p.other_load_cores),
            pairs,
            failures,
        }
    }
}

/// The bystander workload: every subject's pairs.
#[derive(Debug, Clone, Serialize)]
pub struct BystanderResults {
    /// The core it ran on, alone.
    pub cpu: usize,
    pub subjects: Vec<BystanderSubject>,
}

/// The stream's pairs for one subject.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSubject {
    pub subject: &'static str,
    pub label: &'static str,
    /// Bytes per second.
    pub untraced_rate: Option<Spread>,
    pub traced_rate: Option<Spread>,
    pub ratio: Option<Spread>,
    /// Cores' worth of CPU other processes used during the pairs.
    pub other_load_cores: Option<Spread>,
    /// Events the subject emitted in its traced samples (tracer: submitted;
    /// bpftrace: counted): per packet, there should be none.
    pub events: Option<u64>,
    /// `None` for the control, or when its sample failed.
    pub kernel: Option<StreamKernel>,
    pub pairs: Vec<Pair<StreamResult>>,
    /// Why samples failed, one entry per failed pair or kernel-time sample.
    pub failures: Vec<String>,
}

impl StreamSubject {
    pub fn new(
        subject: Subject,
        pairs: Vec<Pair<StreamResult>>,
        kernel: Option<StreamKernel>,
        failures: Vec<String>,
    ) -> Self {
        let spread = |f: fn(&Pair<StreamResult>) -> f64| {
            Spread::of(&pairs.iter().map(f).collect::<Vec<_>>())
        };
        let events = pairs
            .iter()
            .filter_map(|p| p.stopped.summary.map(|s| s.submitted).or(p.stopped.counted))
            .reduce(|a, b| a + b);
        Self {
            subject: subject.key(),
            label: subject.label(),
            untraced_rate: spread(|p| p.untraced.rate),
            traced_rate: spread(|p| p.traced.rate),
            ratio: spread(|p| p.ratio),
            other_load_cores: spread(|p| p.other_load_cores),
            events,
            kernel,
            pairs,
            failures,
        }
    }
}

/// The stream workload: every subject's pairs.
#[derive(Debug, Clone, Serialize)]
pub struct StreamResults {
    /// The cores the sender and the receiver ran on.
    pub sender_cpu: usize,
    pub receiver_cpu: usize,
    pub subjects: Vec<StreamSubject>,
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
    /// `None` when the run left the bystander out (`--workload churn`).
    pub bystander: Option<BystanderResults>,
    /// `None` when the run left the stream out.
    pub stream: Option<StreamResults>,
    pub first_event: Option<FirstEvent>,
    pub hold: Option<Hold>,
    pub targets: Vec<Target>,
}
