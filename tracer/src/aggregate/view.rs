//! Turns accumulated numbers into the immutable per-process snapshot.

use std::time::{Duration, SystemTime};

use super::process::{ProcessAgg, Recent};
use crate::{
    errno,
    event::TraceEvent,
    snapshot::{
        Churn, Counts, Latency, ProcessId, ProcessSnapshot, Rates, RecentEvent, RemoteSnapshot,
        SyscallErrors,
    },
};

/// The snapshot of one process; `interval_s` is the time since the previous
/// snapshot, over which rates are computed; `started_ns` and `now_ns` the
/// monotonic times of tracing start and of the snapshot.
pub fn process(
    id: ProcessId,
    p: &mut ProcessAgg,
    interval_s: f64,
    (started_ns, now_ns): (u64, u64),
    at: SystemTime,
) -> ProcessSnapshot {
    let rates = rates(&p.counts, &p.counts_before, interval_s);
    p.counts_before = p.counts;
    let mut syscall_errors: Vec<SyscallErrors> = p
        .syscall_errors
        .iter()
        .map(|(&(call, errno), &count)| SyscallErrors {
            syscall: call.name(),
            errno,
            count,
        })
        .collect();
    syscall_errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.syscall.cmp(b.syscall)));
    let mut remotes: Vec<RemoteSnapshot> = p
        .remotes
        .iter()
        .map(|(&remote, r)| RemoteSnapshot {
            remote,
            counts: r.counts,
            handshake_us: summary(r.handshake_us.as_ref()),
            established: r.established,
            close_wait: r.close_wait,
            time_wait: r.time_wait,
            abandoned_after: r.abandoned_after_us.map(std::time::Duration::from_micros),
            queues: r.queues,
            churn: Churn {
                lifetime_ms: summary(r.lifetime_ms.as_ref()),
                connecting_for: Duration::from_nanos(
                    r.last_connect_ns.saturating_sub(r.first_connect_ns),
                ),
                open_history: r
                    .open_history
                    .iter()
                    .map(|&(ns, n)| (Duration::from_nanos(ns.saturating_sub(started_ns)), n))
                    .collect(),
            },
        })
        .collect();
    remotes.sort_by(|a, b| {
        activity(&b.counts)
            .cmp(&activity(&a.counts))
            .then(a.remote.cmp(&b.remote))
    });
    ProcessSnapshot {
        id,
        comm: p.comm.clone(),
        cgroup: p.cgroup.clone(),
        exited: p.exited,
        counts: p.counts,
        rates,
        handshake_us: summary(p.handshake_us.as_ref()),
        lifetime_ms: summary(p.lifetime_ms.as_ref()),
        gauges: p.gauges,
        fds: p.fds,
        syscall_errors,
        remotes,
        connections: p.connections.clone(),
        connections_total: p.connections_total,
        listeners: p.listeners.clone(),
        drops: by_count(&p.drops),
        rst_reasons: by_count(&p.rst_reasons),
        recent: p.recent.iter().map(|r| recent(r, now_ns, at)).collect(),
        dns: p.dns.snapshot(),
    }
}

/// Counts by name, most first.
fn by_count(counts: &rustc_hash::FxHashMap<&'static str, u64>) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = counts.iter().map(|(&r, &n)| (r, n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    out
}

fn summary(d: Option<&super::latency::Distribution>) -> Latency {
    d.map(super::latency::Distribution::summary)
        .unwrap_or_default()
}

/// How much happened with a remote, to list the busiest first.
fn activity(c: &Counts) -> u64 {
    c.connects + c.accepted + c.retransmits + c.syn_retransmits + c.rst_sent + c.rst_received
}

fn rates(now: &Counts, before: &Counts, interval_s: f64) -> Rates {
    if interval_s <= 0.0 {
        return Rates::default();
    }
    let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / interval_s;
    Rates {
        connects: per_s(now.connects, before.connects),
        connect_failures: per_s(now.connect_failures(), before.connect_failures()),
        retransmits: per_s(
            now.retransmits + now.syn_retransmits + now.synack_retransmits,
            before.retransmits + before.syn_retransmits + before.synack_retransmits,
        ),
        rsts: per_s(
            now.rst_sent + now.rst_received,
            before.rst_sent + before.rst_received,
        ),
    }
}

fn recent(r: &Recent, now_ns: u64, at: SystemTime) -> RecentEvent {
    use tracer_common::{EventKind, tcp::state_name};
    let ev_at = at
        .checked_sub(Duration::from_nanos(now_ns.saturating_sub(r.mono_ns)))
        .unwrap_or(at);
    let state = |s: u8| state_name(s).unwrap_or("?");
    let detail = match r.kind {
        EventKind::State => {
            let mut d = format!("{}→{}", state(r.old_state), state(r.new_state));
            if r.errno != 0 {
                d.push(' ');
                d.push_str(&errno::name(r.errno));
            } else if r.value > 0 && r.old_state == tracer_common::tcp::SYN_SENT {
                d.push_str(&format!(" {:.1}ms", r.value as f64 / 1e6));
            }
            d
        }
        EventKind::SyscallError => {
            let call = tracer_common::event::Syscall::from_u64(r.value).map_or("?", |c| c.name());
            format!("{call} {}", errno::name(r.errno))
        }
        EventKind::RstSent | EventKind::RstReceived => {
            super::live::Phase::of_state(r.state_at).name().to_owned()
        }
        _ if r.state_at != 0 => state(r.state_at).to_owned(),
        _ => String::new(),
    };
    RecentEvent {
        at: ev_at,
        event: TraceEvent::name_of(r.kind),
        remote: r.remote,
        detail,
    }
}
