//! Synthetic snapshots for unit tests of the findings and the live view:
//! builders for one process or remote with every number zero, two fixed
//! scenes (a healthy host and a misbehaving one), and how the misbehaving
//! one came about, a snapshot a second.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime},
};

use crate::proc::sock_diag::Health;
use crate::snapshot::{
    ConnectionSnapshot, Counts, FdUsage, Gauges, KernelCounts, Latency, ProcessId, ProcessSnapshot,
    Rates, RecentEvent, Remote, RemoteSnapshot, Snapshot, SyscallErrors,
};

/// 2025-01-01T12:00:00Z: fixed, so rendered times never change.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_732_800)
}

pub fn snapshot(processes: Vec<ProcessSnapshot>) -> Snapshot {
    Snapshot {
        taken_at: epoch(),
        uptime: Duration::from_secs(754),
        kernel: KernelCounts::default(),
        events_per_sec: 0.0,
        processes,
        unattributed: Counts::default(),
        sampled_every: None,
        traced_exited: false,
        syscall_errors_counted: true,
        closed_ports: Vec::new(),
    }
}

pub fn process(pid: u32, comm: &str) -> ProcessSnapshot {
    ProcessSnapshot {
        id: ProcessId {
            pid,
            start_ticks: u64::from(pid) * 100,
        },
        cgroup: None,
        comm: comm.to_owned(),
        exited: false,
        counts: Counts::default(),
        rates: Rates::default(),
        handshake_us: Latency::default(),
        lifetime_ms: Latency::default(),
        gauges: Gauges::default(),
        fds: Some(FdUsage {
            open: 12,
            limit: Some(1024),
            sockets: 3,
        }),
        syscall_errors: Vec::new(),
        remotes: Vec::new(),
        connections: Vec::new(),
        connections_total: 0,
        listeners: Vec::new(),
        drops: Vec::new(),
        rst_reasons: Vec::new(),
        dns: Default::default(),
        recent: Vec::new(),
    }
}

/// The cgroup a `/proc/<pid>/cgroup` text names.
pub fn cgroup(text: &str) -> Option<std::sync::Arc<crate::snapshot::Cgroup>> {
    crate::proc::cgroup::parse(text).map(std::sync::Arc::new)
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

pub fn server(text: &str) -> RemoteSnapshot {
    remote(Remote::Server(addr(text)))
}

pub fn remote(remote: Remote) -> RemoteSnapshot {
    RemoteSnapshot {
        remote,
        counts: Counts::default(),
        handshake_us: Latency::default(),
        established: 0,
        close_wait: 0,
        time_wait: 0,
        abandoned_after: None,
        queues: crate::snapshot::Queues::default(),
        churn: crate::snapshot::Churn::default(),
    }
}

/// A latency summary with log2 buckets from 64 µs, `counts[i]` in bucket i.
pub fn latency(counts: &[u64]) -> Latency {
    let buckets: Vec<(u64, u64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| (64u64 << i, n))
        .collect();
    let total: u64 = counts.iter().sum();
    let quantile = |q: f64| {
        let rank = (total as f64 * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &(upper, n) in &buckets {
            seen += n;
            if seen >= rank {
                return upper;
            }
        }
        0
    };
    if total == 0 {
        return Latency::default();
    }
    Latency {
        count: total,
        sum: buckets.iter().map(|&(upper, n)| upper * n).sum(),
        p50: quantile(0.5),
        p90: quantile(0.9),
        p99: quantile(0.99),
        max: buckets.iter().rev().find(|b| b.1 > 0).map_or(0, |b| b.0),
        buckets,
    }
}

fn event(secs_ago: u64, event: &'static str, remote: &str, detail: &str) -> RecentEvent {
    RecentEvent {
        at: epoch() - Duration::from_secs(secs_ago),
        event,
        remote: Some(addr(remote)),
        detail: detail.to_owned(),
    }
}

fn connection(local: &str, remote: &str, state: u8, age_s: u64, retx: u64) -> ConnectionSnapshot {
    ConnectionSnapshot {
        local: addr(local),
        remote: addr(remote),
        state,
        age: Duration::from_secs(age_s),
        preexisting: false,
        retransmits: retx,
        recv_q: 0,
        send_q: 0,
        health: None,
    }
}

/// A web service talking to its database and a cache; nothing wrong.
pub fn healthy() -> Snapshot {
    let mut api = process(2481, "api-server");
    api.counts = Counts {
        connects: 1_204,
        connect_ok: 1_204,
        accepted: 5_310,
        retransmits: 2,
        closed: 6_400,
        ..Counts::default()
    };
    api.rates = Rates {
        connects: 3.2,
        connect_failures: 0.0,
        retransmits: 0.0,
        rsts: 0.1,
    };
    api.handshake_us = latency(&[40, 700, 420, 30, 12, 2]);
    api.gauges = Gauges {
        established: 42,
        time_wait: 17,
        listen: 1,
        srtt_p50_us: Some(310),
        srtt_p99_us: Some(2_400),
        bytes_sent: Some(48_300_000),
        bytes_received: Some(912_000_000),
        ..Gauges::default()
    };
    api.fds = Some(FdUsage {
        open: 87,
        limit: Some(65_536),
        sockets: 61,
    });
    let mut db = server("10.0.0.5:5432");
    db.counts = Counts {
        connects: 1_200,
        connect_ok: 1_200,
        retransmits: 2,
        ..Counts::default()
    };
    db.handshake_us = api.handshake_us.clone();
    db.established = 20;
    db.time_wait = 15;
    let mut cache = server("10.0.0.6:6379");
    cache.counts = Counts {
        connects: 4,
        connect_ok: 4,
        ..Counts::default()
    };
    cache.established = 4;
    let mut clients = remote(Remote::Client("10.0.1.20".parse().expect("ip")));
    clients.counts.accepted = 5_310;
    clients.established = 18;
    api.remotes = vec![db, cache, clients];
    api.connections = vec![
        connection("10.0.0.2:40112", "10.0.0.5:5432", 1, 312, 2),
        connection("10.0.0.2:40118", "10.0.0.5:5432", 1, 300, 0),
        connection("10.0.0.2:51020", "10.0.0.6:6379", 1, 754, 0),
        connection("10.0.0.2:8080", "10.0.1.20:53214", 1, 4, 0),
    ];
    for (c, (srtt_us, bytes_sent, bytes_received)) in api.connections.iter_mut().zip([
        (2_400, 1_200_000, 38_000_000),
        (350, 96_000, 2_100_000),
        (180, 4_096, 700),
        (310, 52_000, 1_800),
    ]) {
        c.health = Some(Health {
            srtt_us,
            bytes_sent,
            bytes_received,
        });
    }
    api.connections_total = 42;
    api.recent = vec![
        event(3, "connect", "10.0.0.5:5432", "ok 410µs"),
        event(2, "state", "10.0.0.5:5432", "SYN_SENT→ESTABLISHED 410µs"),
        event(1, "retransmit", "10.0.0.5:5432", "ESTABLISHED"),
        event(0, "state", "10.0.1.20:53214", "ESTABLISHED→FIN_WAIT1"),
    ];

    let mut worker = process(3307, "worker");
    worker.counts = Counts {
        connects: 96,
        connect_ok: 96,
        closed: 95,
        ..Counts::default()
    };
    worker.rates.connects = 0.2;
    worker.handshake_us = latency(&[10, 80, 6]);
    worker.gauges.established = 1;

    let mut s = snapshot(vec![api, worker]);
    s.events_per_sec = 48.5;
    s.kernel = KernelCounts {
        submitted: 40_210,
        read: 40_210,
        ..KernelCounts::default()
    };
    s
}

/// Every finding at once: a leaking proxy, a client of a dead backend, a
/// client behind a firewall, a lossy path and connection churn.
pub fn misbehaving() -> Snapshot {
    let mut proxy = process(1187, "proxy");
    proxy.counts = Counts {
        accepted: 2_210,
        connects: 2_210,
        connect_ok: 2_210,
        retransmits: 412,
        rst_sent: 35,
        closed: 2_000,
        ..Counts::default()
    };
    proxy.rates = Rates {
        connects: 14.0,
        connect_failures: 0.0,
        retransmits: 6.5,
        rsts: 0.4,
    };
    proxy.handshake_us = latency(&[0, 30, 900, 1_100, 150, 40, 9, 3]);
    proxy.gauges = Gauges {
        established: 180,
        close_wait: 37,
        time_wait: 640,
        listen: 1,
        oldest_close_wait: Some(Duration::from_secs(431)),
        ..Gauges::default()
    };
    proxy.fds = Some(FdUsage {
        open: 987,
        limit: Some(1024),
        sockets: 950,
    });
    let mut upstream = server("10.0.2.9:8443");
    upstream.counts = Counts {
        connects: 2_210,
        connect_ok: 2_210,
        retransmits: 398,
        ..Counts::default()
    };
    upstream.handshake_us = proxy.handshake_us.clone();
    upstream.established = 90;
    upstream.time_wait = 640;
    let mut clients = remote(Remote::Client("192.168.7.14".parse().expect("ip")));
    clients.counts.accepted = 2_210;
    clients.counts.retransmits = 14;
    clients.close_wait = 37;
    clients.established = 90;
    proxy.remotes = vec![upstream, clients];
    proxy.connections = vec![
        connection("10.0.2.2:39002", "10.0.2.9:8443", 1, 95, 41),
        connection("10.0.2.2:39010", "10.0.2.9:8443", 1, 80, 17),
        connection("10.0.2.2:443", "192.168.7.14:50112", 8, 431, 0),
        connection("10.0.2.2:443", "192.168.7.14:50230", 8, 390, 0),
    ];
    proxy.connections_total = 217;
    proxy.recent = vec![
        event(4, "retransmit", "10.0.2.9:8443", "ESTABLISHED"),
        event(3, "state", "192.168.7.14:50544", "ESTABLISHED→CLOSE_WAIT"),
        event(2, "rst_sent", "10.0.2.9:8443", "closing"),
        event(1, "retransmit", "10.0.2.9:8443", "ESTABLISHED"),
    ];

    let mut billing = process(2044, "billing");
    billing.counts = Counts {
        connects: 64,
        connect_refused: 64,
        rst_received: 64,
        rst_received_handshake: 64,
        syscall_errors: 64,
        ..Counts::default()
    };
    billing.rates = Rates {
        connects: 2.0,
        connect_failures: 2.0,
        retransmits: 0.0,
        rsts: 2.0,
    };
    billing.syscall_errors = vec![SyscallErrors {
        syscall: "connect",
        errno: libc::ECONNREFUSED,
        count: 64,
    }];
    let mut dead = server("127.0.0.1:9");
    dead.counts = billing.counts;
    billing.remotes = vec![dead];
    billing.recent = vec![
        event(1, "rst_received", "127.0.0.1:9", "handshake"),
        event(1, "connect", "127.0.0.1:9", "refused ECONNREFUSED"),
    ];

    let mut fetcher = process(2050, "fetcher");
    fetcher.counts = Counts {
        connects: 6,
        connect_timeout: 2,
        syn_retransmits: 14,
        emfile_errors: 3,
        syscall_errors: 5,
        ..Counts::default()
    };
    fetcher.rates = Rates {
        connects: 0.1,
        connect_failures: 0.1,
        retransmits: 0.6,
        rsts: 0.0,
    };
    fetcher.gauges.syn_sent = 4;
    fetcher.fds = Some(FdUsage {
        open: 64,
        limit: Some(64),
        sockets: 58,
    });
    let mut filtered = server("203.0.113.7:443");
    filtered.counts = fetcher.counts;
    filtered.counts.emfile_errors = 0;
    fetcher.remotes = vec![filtered];

    let mut exited = process(2990, "cron-job");
    exited.exited = true;
    exited.fds = None;
    exited.counts.connects = 3;
    exited.counts.connect_ok = 3;

    // billing runs in a docker container, fetcher in a Kubernetes pod, proxy
    // as a systemd service.
    billing.cgroup = cgroup(
        "0::/system.slice/docker-9c1f0e4b7a2d5c8e3f6a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e.scope",
    );
    fetcher.cgroup = cgroup(
        "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7d0c4f2e_1b3a_4c5d_8e9f_0a1b2c3d4e5f.slice/cri-containerd-e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80912.scope",
    );
    proxy.cgroup = cgroup("0::/system.slice/proxy.service");

    let mut s = snapshot(vec![proxy, billing, fetcher, exited]);
    s.events_per_sec = 1_312.0;
    s.kernel = KernelCounts {
        submitted: 901_344,
        dropped: 1_022,
        read: 900_322,
        unattributed: 57,
        ..KernelCounts::default()
    };
    s.unattributed.rst_received = 57;
    s
}

/// The misbehaving scene as it came about over `seconds` snapshots one
/// second apart, the last one [`misbehaving`]: the proxy's retransmits start
/// 4 minutes before the end, its CLOSE_WAIT sockets pile up over the last
/// 431 s and its FDs grow towards the limit; billing's refused connects come
/// in bursts of 20 s a minute; the events/s rise and fall.
pub fn misbehaving_over(seconds: u64) -> Vec<Snapshot> {
    let last = misbehaving();
    (0..seconds)
        .map(|i| {
            let ago = seconds - 1 - i;
            let mut s = last.clone();
            s.uptime = last.uptime - Duration::from_secs(ago);
            s.taken_at = last.taken_at - Duration::from_secs(ago);
            s.events_per_sec =
                700.0 + (ago % 120) as f64 * 5.1 + if ago < 240 { 300.0 } else { 0.0 };
            if ago == 0 {
                return last.clone();
            }
            let proxy = &mut s.processes[0];
            proxy.rates.connects = 10.0 + (ago % 30) as f64 / 7.5;
            if ago >= 240 {
                proxy.rates.retransmits = 0.0;
            }
            let close_wait_for = 431_u64.saturating_sub(ago);
            proxy.gauges.close_wait = 37 * close_wait_for / 431;
            proxy.gauges.oldest_close_wait =
                (proxy.gauges.close_wait > 0).then(|| Duration::from_secs(close_wait_for));
            if let Some(fds) = proxy.fds.as_mut() {
                fds.open = 987 - (387 * ago / seconds.max(1));
            }
            let billing = &mut s.processes[1];
            if ago % 60 >= 20 {
                billing.rates = Rates::default();
            }
            s
        })
        .collect()
}
