//! `--prometheus ADDR`: the snapshots as Prometheus metrics, served at
//! `/metrics` (`metrics/serve.rs`) and encoded by the `prometheus-client`
//! crate, in the text format or OpenMetrics when the scraper asks for it.
//!
//! [`METRICS`] is the whole format: each entry's name, type, labels and help
//! is what the endpoint says, and README's metrics table is checked against
//! it by a test. Per-process metrics are labelled by `comm` and `container`,
//! never by pid, so their number stays bounded: processes with the same
//! command and container are summed. A counter keeps the numbers of the
//! processes that exited, so it never goes down; once every process of a
//! label set has been gone for [`AGE_OUT`], its series go.

pub mod serve;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, SystemTime},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric as _, MetricEncoder, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::{
    aggregate::Phase,
    errno, findings,
    snapshot::{Counts, Latency, ProcessId, ProcessSnapshot, Snapshot},
};

/// How long the series of a label set whose processes have all exited stay.
pub const AGE_OUT: Duration = Duration::from_secs(300);

/// Upper bounds of the handshake histogram's buckets, in microseconds: powers
/// of four from 64 µs to 67 s, on the grid of the handshake distribution
/// (powers of two), so each count falls in its bucket as recorded.
const HANDSHAKE_BOUNDS_US: [u64; 11] = [
    1 << 6,
    1 << 8,
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
];

/// Which metric an entry of [`METRICS`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    Connects,
    Accepted,
    Retransmits,
    Resets,
    HandshakeSeconds,
    Sockets,
    FdsOpen,
    FdsLimit,
    SyscallErrors,
    DnsQueries,
    DnsErrors,
    Findings,
    EventsRead,
    EventsDropped,
    EventsFiltered,
    EventsUnattributed,
    OwnersEvicted,
    SamplingPeriod,
}

/// One metric family.
#[derive(Debug)]
pub struct Metric {
    pub id: Id,
    /// The family's name; counters' samples add `_total`.
    pub name: &'static str,
    pub kind: MetricType,
    /// Its labels (`comm` and `container` on every per-process metric).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "README's metrics table, which a test checks")
    )]
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl Metric {
    /// The name its samples carry (a counter's ends in `_total`).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "README's metrics table, which a test checks")
    )]
    pub fn exposed(&self) -> String {
        match self.kind {
            MetricType::Counter => format!("{}_total", self.name),
            _ => self.name.to_owned(),
        }
    }
}

const PROCESS: &[&str] = &["comm", "container"];

/// Every metric, in the order served.
pub const METRICS: &[Metric] = &[
    Metric {
        id: Id::Connects,
        name: "tracer_connects",
        kind: MetricType::Counter,
        labels: &["comm", "container", "result"],
        help: "Connects that ended, by result: ok, refused, timeout, abandoned (given up by the application), other",
    },
    Metric {
        id: Id::Accepted,
        name: "tracer_accepted",
        kind: MetricType::Counter,
        labels: PROCESS,
        help: "Passive handshakes completed on the processes' listeners",
    },
    Metric {
        id: Id::Retransmits,
        name: "tracer_retransmits",
        kind: MetricType::Counter,
        labels: &["comm", "container", "kind"],
        help: "Retransmits, by kind: data, syn, synack",
    },
    Metric {
        id: Id::Resets,
        name: "tracer_resets",
        kind: MetricType::Counter,
        labels: &["comm", "container", "direction", "phase"],
        help: "RSTs sent and received, by the connection's phase: handshake, established, closing, none",
    },
    Metric {
        id: Id::HandshakeSeconds,
        name: "tracer_handshake_seconds",
        kind: MetricType::Histogram,
        labels: PROCESS,
        help: "Connect handshake latency",
    },
    Metric {
        id: Id::Sockets,
        name: "tracer_sockets",
        kind: MetricType::Gauge,
        labels: &["comm", "container", "state"],
        help: "TCP sockets of the running processes, by state",
    },
    Metric {
        id: Id::FdsOpen,
        name: "tracer_fds_open",
        kind: MetricType::Gauge,
        labels: PROCESS,
        help: "Open file descriptors of the running processes",
    },
    Metric {
        id: Id::FdsLimit,
        name: "tracer_fds_limit",
        kind: MetricType::Gauge,
        labels: PROCESS,
        help: "Soft RLIMIT_NOFILE of the running processes, summed (unlimited ones left out)",
    },
    Metric {
        id: Id::SyscallErrors,
        name: "tracer_syscall_errors",
        kind: MetricType::Counter,
        labels: &["comm", "container", "syscall", "errno"],
        help: "Failed network syscalls, by syscall and errno",
    },
    Metric {
        id: Id::DnsQueries,
        name: "tracer_dns_queries",
        kind: MetricType::Counter,
        labels: PROCESS,
        help: "DNS queries sent (UDP or TCP, port 53)",
    },
    Metric {
        id: Id::DnsErrors,
        name: "tracer_dns_errors",
        kind: MetricType::Counter,
        labels: &["comm", "container", "kind"],
        help: "DNS lookups that failed, by kind: rcode (answered with an error code), timeout (no answer within 5 s)",
    },
    Metric {
        id: Id::Findings,
        name: "tracer_findings",
        kind: MetricType::Gauge,
        labels: &["comm", "container", "finding", "severity"],
        help: "1 while a finding holds (README, Findings)",
    },
    Metric {
        id: Id::EventsRead,
        name: "tracer_events_read",
        kind: MetricType::Counter,
        labels: &[],
        help: "Events read from the ring buffer",
    },
    Metric {
        id: Id::EventsDropped,
        name: "tracer_events_dropped",
        kind: MetricType::Counter,
        labels: &[],
        help: "Events lost because the ring buffer was full",
    },
    Metric {
        id: Id::EventsFiltered,
        name: "tracer_events_filtered",
        kind: MetricType::Counter,
        labels: &[],
        help: "Events skipped by the in-kernel filter (--pid)",
    },
    Metric {
        id: Id::EventsUnattributed,
        name: "tracer_events_unattributed",
        kind: MetricType::Counter,
        labels: &[],
        help: "Events on sockets with no known owner",
    },
    Metric {
        id: Id::OwnersEvicted,
        name: "tracer_owners_evicted",
        kind: MetricType::Counter,
        labels: &[],
        help: "Socket owners evicted from the full owner map",
    },
    Metric {
        id: Id::SamplingPeriod,
        name: "tracer_sampling_period_seconds",
        kind: MetricType::Gauge,
        labels: &[],
        help: "How often sockets and descriptors are read from /proc",
    },
];

/// The labels every per-process metric has.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Group {
    comm: String,
    /// The container's short id; empty outside containers.
    container: String,
}

impl Group {
    fn of(p: &ProcessSnapshot) -> Self {
        Self {
            comm: p.comm.clone(),
            container: p
                .cgroup
                .as_deref()
                .and_then(|g| g.short_container())
                .unwrap_or_default()
                .to_owned(),
        }
    }

    fn labels<'a>(&'a self, more: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
        let mut labels = vec![
            ("comm", self.comm.as_str()),
            ("container", self.container.as_str()),
        ];
        labels.extend_from_slice(more);
        labels
    }
}

/// The cumulative numbers of a process, or of several summed.
#[derive(Debug, Clone, Default, PartialEq)]
struct Totals {
    counts: Counts,
    /// Handshakes per bucket of [`HANDSHAKE_BOUNDS_US`], and above the last.
    handshakes: [u64; HANDSHAKE_BOUNDS_US.len() + 1],
    handshake_count: u64,
    handshake_sum_us: u64,
    syscall_errors: BTreeMap<(&'static str, i32), u64>,
}

impl Totals {
    fn of(p: &ProcessSnapshot) -> Self {
        let mut totals = Self {
            counts: p.counts,
            ..Self::default()
        };
        totals.add_handshakes(&p.handshake_us);
        for e in &p.syscall_errors {
            *totals
                .syscall_errors
                .entry((e.syscall, e.errno))
                .or_default() += e.count;
        }
        totals
    }

    fn add_handshakes(&mut self, latency: &Latency) {
        for &(upper, n) in &latency.buckets {
            let i = HANDSHAKE_BOUNDS_US.partition_point(|&bound| bound < upper);
            self.handshakes[i] += n;
        }
        self.handshake_count += latency.count;
        self.handshake_sum_us += latency.sum;
    }

    fn add(&mut self, other: &Self) {
        let (c, o) = (&mut self.counts, &other.counts);
        c.connect_ok += o.connect_ok;
        c.connect_refused += o.connect_refused;
        c.connect_timeout += o.connect_timeout;
        c.connect_abandoned += o.connect_abandoned;
        c.connect_failed_other += o.connect_failed_other;
        c.accepted += o.accepted;
        c.dns_queries += o.dns_queries;
        c.dns_failures += o.dns_failures;
        c.dns_timeouts += o.dns_timeouts;
        c.retransmits += o.retransmits;
        c.syn_retransmits += o.syn_retransmits;
        c.synack_retransmits += o.synack_retransmits;
        for i in 0..Phase::ALL.len() {
            c.rst_sent_by_phase[i] += o.rst_sent_by_phase[i];
            c.rst_received_by_phase[i] += o.rst_received_by_phase[i];
        }
        for (sum, n) in self.handshakes.iter_mut().zip(other.handshakes) {
            *sum += n;
        }
        self.handshake_count += other.handshake_count;
        self.handshake_sum_us += other.handshake_sum_us;
        for (&key, &n) in &other.syscall_errors {
            *self.syscall_errors.entry(key).or_default() += n;
        }
    }
}

/// Gauges of the running processes of a label set, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Now {
    sockets: [u64; SOCKET_STATES.len()],
    fds_open: u64,
    fds_limit: u64,
}

/// The `state` label of `tracer_sockets`.
const SOCKET_STATES: [&str; 7] = [
    "established",
    "syn_sent",
    "syn_recv",
    "closing",
    "close_wait",
    "time_wait",
    "listen",
];

impl Now {
    fn add(&mut self, p: &ProcessSnapshot) {
        let g = &p.gauges;
        let states = [
            g.established,
            g.syn_sent,
            g.syn_recv,
            g.closing,
            g.close_wait,
            g.time_wait,
            g.listen,
        ];
        for (sum, n) in self.sockets.iter_mut().zip(states) {
            *sum += n;
        }
        if let Some(fds) = p.fds {
            self.fds_open += fds.open;
            self.fds_limit += fds.limit.unwrap_or(0);
        }
    }
}

/// What is remembered of a process.
#[derive(Debug)]
struct Member {
    group: Group,
    totals: Totals,
    /// When it was first seen exited (or gone from the snapshots).
    gone_since: Option<SystemTime>,
}

/// The metrics state, fed every snapshot.
#[derive(Debug)]
pub struct Metrics {
    members: HashMap<ProcessId, Member>,
    /// Per label set, the numbers of its processes that aged out while others
    /// of the set still ran: kept so that its counters never go down.
    retired: HashMap<Group, Totals>,
    /// The `--interval`: how often /proc is sampled unless a snapshot says
    /// it is less often.
    interval: Duration,
}

impl Metrics {
    pub fn new(interval: Duration) -> Self {
        Self {
            members: HashMap::new(),
            retired: HashMap::new(),
            interval,
        }
    }

    /// Takes in a snapshot; returns what the endpoint serves from now on.
    pub fn update(&mut self, snapshot: &Snapshot) -> Exposition {
        let now = snapshot.taken_at;
        let mut seen = std::collections::HashSet::new();
        let mut gauges: BTreeMap<Group, Now> = BTreeMap::new();
        for p in &snapshot.processes {
            seen.insert(p.id);
            let group = Group::of(p);
            let member = self.members.entry(p.id).or_insert_with(|| Member {
                group: group.clone(),
                totals: Totals::default(),
                gone_since: None,
            });
            member.totals = Totals::of(p);
            member.gone_since = if p.exited {
                member.gone_since.or(Some(now))
            } else {
                None
            };
            if member.group != group {
                // A process renamed itself (or its cgroup was read late): its
                // numbers move with it.
                member.group = group.clone();
            }
            if !p.exited {
                gauges.entry(group).or_default().add(p);
            }
        }
        for (id, member) in &mut self.members {
            if !seen.contains(id) && member.gone_since.is_none() {
                member.gone_since = Some(now);
            }
        }
        self.age_out(now);

        let mut groups: BTreeMap<Group, GroupValues> = BTreeMap::new();
        for (group, totals) in &self.retired {
            groups.entry(group.clone()).or_default().totals.add(totals);
        }
        for member in self.members.values() {
            groups
                .entry(member.group.clone())
                .or_default()
                .totals
                .add(&member.totals);
        }
        for (group, now) in gauges {
            groups.entry(group).or_default().now = Some(now);
        }
        let findings = findings::findings(snapshot)
            .into_iter()
            .filter_map(|f| {
                let p = snapshot.processes.iter().find(|p| p.id.pid == f.pid)?;
                Some((Group::of(p), f.kind.id(), f.severity.name()))
            })
            .collect();
        Exposition {
            groups,
            findings,
            kernel: snapshot.kernel,
            sampling_period: snapshot.sampled_every.unwrap_or(self.interval),
        }
    }

    /// Forgets processes gone for [`AGE_OUT`]: their numbers stay in their
    /// label set while another process of it remains, and go with the last.
    fn age_out(&mut self, now: SystemTime) {
        let aged = |m: &Member| {
            m.gone_since
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() >= AGE_OUT)
        };
        let staying: BTreeSet<Group> = self
            .members
            .values()
            .filter(|m| !aged(m))
            .map(|m| m.group.clone())
            .collect();
        let mut retire = Vec::new();
        self.members.retain(|_, m| {
            if aged(m) {
                retire.push((m.group.clone(), std::mem::take(&mut m.totals)));
                false
            } else {
                true
            }
        });
        for (group, totals) in retire {
            if staying.contains(&group) {
                self.retired.entry(group).or_default().add(&totals);
            }
        }
        self.retired.retain(|group, _| staying.contains(group));
    }
}

/// The numbers of one label set.
#[derive(Debug, Default)]
struct GroupValues {
    totals: Totals,
    /// Gauges, when a process of the set is running.
    now: Option<Now>,
}

/// What the endpoint serves: an immutable view of one snapshot's metrics,
/// encoded on each scrape.
#[derive(Debug, Default)]
pub struct Exposition {
    groups: BTreeMap<Group, GroupValues>,
    /// (label set, finding id, severity) of every finding that holds.
    findings: BTreeSet<(Group, &'static str, &'static str)>,
    kernel: crate::snapshot::KernelCounts,
    sampling_period: Duration,
}

/// The two text formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: what `curl` and `promtool` get.
    Text,
    /// OpenMetrics 1.0, for a scraper that asks for it.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn negotiate(accept: &str) -> Self {
        if accept.contains("application/openmetrics-text") {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The exposition as text in `format`.
pub fn render(exposition: &Arc<Exposition>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Arc::clone(exposition)));
    let mut out = String::new();
    // Into a String, encoding fails only if a collector does, and ours
    // returns only the writer's errors.
    let encoded = match format {
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    if encoded.is_err() {
        tracing::warn!("encoding the metrics failed");
    }
    out
}

fn counter(
    encoder: &mut MetricEncoder<'_>,
    labels: &impl prometheus_client::encoding::EncodeLabelSet,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(encoder.encode_family(labels)?)
}

fn gauge(
    encoder: &mut MetricEncoder<'_>,
    labels: &impl prometheus_client::encoding::EncodeLabelSet,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(encoder.encode_family(labels)?)
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for metric in METRICS {
            let e = encoder.encode_descriptor(metric.name, metric.help, None, metric.kind)?;
            self.encode_metric(metric.id, e)?;
        }
        Ok(())
    }
}

impl Exposition {
    fn encode_metric(&self, id: Id, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let k = &self.kernel;
        let groups = self.groups.iter();
        match id {
            Id::Connects => {
                for (g, v) in groups {
                    let c = &v.totals.counts;
                    for (result, n) in [
                        ("ok", c.connect_ok),
                        ("refused", c.connect_refused),
                        ("timeout", c.connect_timeout),
                        ("abandoned", c.connect_abandoned),
                        ("other", c.connect_failed_other),
                    ] {
                        counter(e, &g.labels(&[("result", result)]), n)?;
                    }
                }
            }
            Id::Accepted => {
                for (g, v) in groups {
                    counter(e, &g.labels(&[]), v.totals.counts.accepted)?;
                }
            }
            Id::Retransmits => {
                for (g, v) in groups {
                    let c = &v.totals.counts;
                    for (kind, n) in [
                        ("data", c.retransmits),
                        ("syn", c.syn_retransmits),
                        ("synack", c.synack_retransmits),
                    ] {
                        counter(e, &g.labels(&[("kind", kind)]), n)?;
                    }
                }
            }
            Id::Resets => {
                for (g, v) in groups {
                    let c = &v.totals.counts;
                    for (direction, by_phase) in [
                        ("sent", c.rst_sent_by_phase),
                        ("received", c.rst_received_by_phase),
                    ] {
                        for (phase, n) in Phase::ALL.iter().zip(by_phase) {
                            let labels =
                                g.labels(&[("direction", direction), ("phase", phase.name())]);
                            counter(e, &labels, n)?;
                        }
                    }
                }
            }
            Id::HandshakeSeconds => {
                for (g, v) in groups {
                    let t = &v.totals;
                    let buckets: Vec<(f64, u64)> = HANDSHAKE_BOUNDS_US
                        .iter()
                        .map(|&us| us as f64 / 1e6)
                        .chain([f64::INFINITY])
                        .zip(t.handshakes)
                        .collect();
                    e.encode_family(&g.labels(&[]))?
                        .encode_histogram::<NoLabelSet>(
                            t.handshake_sum_us as f64 / 1e6,
                            t.handshake_count,
                            &buckets,
                            None,
                        )?;
                }
            }
            Id::Sockets => {
                for (g, now) in groups.filter_map(|(g, v)| Some((g, v.now?))) {
                    for (state, n) in SOCKET_STATES.iter().zip(now.sockets) {
                        gauge(e, &g.labels(&[("state", state)]), n)?;
                    }
                }
            }
            Id::FdsOpen | Id::FdsLimit => {
                for (g, now) in groups.filter_map(|(g, v)| Some((g, v.now?))) {
                    let n = if id == Id::FdsOpen {
                        now.fds_open
                    } else {
                        now.fds_limit
                    };
                    gauge(e, &g.labels(&[]), n)?;
                }
            }
            Id::SyscallErrors => {
                for (g, v) in groups {
                    for (&(syscall, errno), &n) in &v.totals.syscall_errors {
                        let errno = errno::name(errno);
                        counter(e, &g.labels(&[("syscall", syscall), ("errno", &errno)]), n)?;
                    }
                }
            }
            Id::DnsQueries => {
                for (g, v) in groups {
                    counter(e, &g.labels(&[]), v.totals.counts.dns_queries)?;
                }
            }
            Id::DnsErrors => {
                for (g, v) in groups {
                    let c = &v.totals.counts;
                    for (kind, n) in [("rcode", c.dns_failures), ("timeout", c.dns_timeouts)] {
                        counter(e, &g.labels(&[("kind", kind)]), n)?;
                    }
                }
            }
            Id::Findings => {
                for (g, finding, severity) in &self.findings {
                    gauge(
                        e,
                        &g.labels(&[("finding", finding), ("severity", severity)]),
                        1,
                    )?;
                }
            }
            Id::EventsRead => ConstCounter::new(k.read).encode(encoder)?,
            Id::EventsDropped => ConstCounter::new(k.dropped).encode(encoder)?,
            Id::EventsFiltered => ConstCounter::new(k.filtered).encode(encoder)?,
            Id::EventsUnattributed => ConstCounter::new(k.unattributed).encode(encoder)?,
            Id::OwnersEvicted => ConstCounter::new(k.owners_evicted).encode(encoder)?,
            Id::SamplingPeriod => {
                ConstGauge::new(self.sampling_period.as_secs_f64()).encode(encoder)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
