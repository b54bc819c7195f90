use std::time::{Duration, SystemTime};

use super::*;
use crate::snapshot::{
    Counts, FdUsage, Gauges, KernelCounts, Latency, ProcessId, ProcessSnapshot, Rates,
};

/// The first columns, in the order scripts depend on.
const CONTRACT: [&str; 23] = [
    "timestamp",
    "pid",
    "comm",
    "connects",
    "connect_ok",
    "connect_refused",
    "connect_timeout",
    "connect_failed_other",
    "retransmits",
    "syn_retransmits",
    "rst_sent",
    "rst_received",
    "handshake_p50_us",
    "handshake_p99_us",
    "handshake_max_us",
    "established",
    "syn_sent",
    "close_wait",
    "time_wait",
    "fds_open",
    "fd_limit",
    "socket_fds",
    "emfile_errors",
];

/// Every column, in order: the whole format as README documents it.
const COLUMNS: [&str; 54] = [
    "timestamp",
    "pid",
    "comm",
    "connects",
    "connect_ok",
    "connect_refused",
    "connect_timeout",
    "connect_failed_other",
    "retransmits",
    "syn_retransmits",
    "rst_sent",
    "rst_received",
    "handshake_p50_us",
    "handshake_p99_us",
    "handshake_max_us",
    "established",
    "syn_sent",
    "close_wait",
    "time_wait",
    "fds_open",
    "fd_limit",
    "socket_fds",
    "emfile_errors",
    "exited",
    "accepted",
    "synack_retransmits",
    "rst_received_handshake",
    "syscall_errors",
    "handshake_p90_us",
    "close_wait_oldest_s",
    "syn_recv",
    "listen",
    "closed",
    "lifetime_p50_ms",
    "start_time",
    "connect_abandoned",
    "socket_errors",
    "accept_queue",
    "accept_backlog",
    "listen_overflows",
    "drops",
    "container",
    "cgroup",
    "pod",
    "unit",
    "dns_queries",
    "dns_failures",
    "dns_timeouts",
    "dns_p50_us",
    "dns_p99_us",
    "srtt_p50_us",
    "srtt_p99_us",
    "bytes_sent",
    "bytes_received",
];

fn process(pid: u32, comm: &str) -> ProcessSnapshot {
    ProcessSnapshot {
        id: ProcessId {
            pid,
            start_ticks: 1,
        },
        cgroup: None,
        comm: comm.into(),
        exited: false,
        counts: Counts::default(),
        rates: Rates::default(),
        handshake_us: Latency::default(),
        lifetime_ms: Latency::default(),
        gauges: Gauges::default(),
        fds: None,
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

fn snapshot(processes: Vec<ProcessSnapshot>) -> Snapshot {
    Snapshot {
        taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        uptime: Duration::from_secs(5),
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

fn cells(line: &str) -> Vec<&str> {
    line.split(',').collect()
}

#[test]
fn header_starts_with_the_contract_columns() {
    let header = cells(header());
    assert_eq!(&header[..CONTRACT.len()], CONTRACT);
    let mut sorted = header.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), header.len(), "column names are unique");
    let row = rows(&snapshot(vec![process(1, "a")]));
    assert_eq!(cells(row.trim_end()).len(), header.len());
}

#[test]
fn the_header_is_the_documented_column_list() {
    assert_eq!(header(), COLUMNS.join(","));
}

/// The column names README's "CSV columns" table gives, in order: every
/// `name` in backticks in the first cell of each row.
fn readme_columns() -> Vec<&'static str> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n### CSV columns\n")
        .nth(1)
        .expect("README has a CSV columns section");
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or_default();
            first.split('`').skip(1).step_by(2)
        })
        .collect()
}

#[test]
fn readme_names_every_column_in_order() {
    assert_eq!(readme_columns(), COLUMNS);
    assert_eq!(readme_columns().join(","), header());
}

#[test]
fn a_row_carries_counts_percentiles_and_gauges() {
    let mut p = process(4242, "api");
    p.counts = Counts {
        connects: 10,
        connect_ok: 7,
        connect_refused: 2,
        connect_timeout: 1,
        retransmits: 5,
        syn_retransmits: 3,
        rst_sent: 4,
        rst_received: 2,
        emfile_errors: 1,
        ..Counts::default()
    };
    p.handshake_us = Latency {
        count: 7,
        sum: 2000,
        p50: 120,
        p90: 300,
        p99: 900,
        max: 950,
        buckets: Vec::new(),
    };
    p.gauges = Gauges {
        established: 3,
        syn_sent: 1,
        close_wait: 6,
        time_wait: 2,
        ..Gauges::default()
    };
    p.fds = Some(FdUsage {
        open: 60,
        limit: Some(64),
        sockets: 40,
    });
    let text = rows(&snapshot(vec![p]));
    let row = cells(text.trim_end());
    assert_eq!(
        &row[..23],
        [
            "2026-11-18T11:06:40Z",
            "4242",
            "api",
            "10",
            "7",
            "2",
            "1",
            "0",
            "5",
            "3",
            "4",
            "2",
            "120",
            "900",
            "950",
            "3",
            "1",
            "6",
            "2",
            "60",
            "64",
            "40",
            "1"
        ]
    );
}

#[test]
fn no_handshake_and_no_fds_leave_cells_empty() {
    let mut p = process(7, "idle");
    p.exited = true;
    let text = rows(&snapshot(vec![p]));
    let row = cells(text.trim_end());
    assert_eq!(&row[12..15], ["", "", ""]);
    assert_eq!(&row[19..22], ["", "", ""]);
    assert_eq!(row[23], "1", "exited");
}

#[test]
fn container_pod_unit_and_cgroup_end_the_row() {
    let id = "4f1d9b2a7c3e8d6f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";
    let in_pod = format!(
        "0::/kubepods.slice/kubepods-pod0b8f3c1e_5a7d_4e2b_9c6f_1d2e3f4a5b6c.slice/cri-containerd-{id}.scope"
    );
    let mut p = process(1, "server");
    p.cgroup = crate::proc::cgroup::parse(&in_pod).map(std::sync::Arc::new);
    let mut q = process(2, "nginx");
    q.cgroup =
        crate::proc::cgroup::parse("0::/system.slice/nginx.service").map(std::sync::Arc::new);
    let text = rows(&snapshot(vec![p, q, process(3, "unknown")]));
    let tails: Vec<Vec<&str>> = text
        .lines()
        .map(|line| cells(line)[COLUMNS.len() - 13..COLUMNS.len() - 9].to_vec())
        .collect();
    assert_eq!(
        tails,
        [
            vec![
                "4f1d9b2a7c3e",
                &in_pod[3..],
                "0b8f3c1e-5a7d-4e2b-9c6f-1d2e3f4a5b6c",
                ""
            ],
            vec!["", "/system.slice/nginx.service", "", "nginx.service"],
            vec!["", "", "", ""],
        ]
    );
}

/// The `comm` cell of a row as written, quotes and all.
fn comm_cell(comm: &str) -> String {
    let text = rows(&snapshot(vec![process(1, comm)]));
    let rest = text.strip_prefix("2026-11-18T11:06:40Z,1,").unwrap();
    rest[..rest.find(",0,").unwrap()].to_owned()
}

#[test]
fn awkward_comms_are_quoted() {
    assert_eq!(comm_cell("a,b"), "\"a,b\"");
    assert_eq!(comm_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(comm_cell("plain"), "plain");
}

#[test]
fn a_new_file_gets_the_header_once_and_appends_continue_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let snap = snapshot(vec![process(1, "a"), process(2, "b")]);
    let mut sink = CsvSink::open(&path).unwrap();
    sink.write(&snap).unwrap();
    drop(sink);
    let mut sink = CsvSink::open(&path).unwrap();
    sink.write(&snap).unwrap();
    assert_eq!(sink.rows, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], header());
    assert_eq!(text.matches(header()).count(), 1);
}

#[test]
fn a_file_with_other_data_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.csv");
    std::fs::write(&path, "a,b,c\n1,2,3\n").unwrap();
    let err = CsvSink::open(&path).unwrap_err();
    assert!(matches!(err, CsvError::OtherHeader { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b,c\n1,2,3\n");
}

#[test]
fn a_torn_last_row_does_not_swallow_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.csv");
    std::fs::write(&path, format!("{}\n2026-01-01T00:00:00Z,1,a", header())).unwrap();
    let mut sink = CsvSink::open(&path).unwrap();
    sink.write(&snapshot(vec![process(3, "c")])).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("2026-11-18T11:06:40Z,3,c,")
    );
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let err = CsvSink::open(Path::new("/nonexistent-dir/out.csv")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir/out.csv"),
        "{err}"
    );
}

/// The live view's `s` never follows a link planted where its file would go
/// (a dangling symlink in a shared directory once made root create a file at
/// its target): it takes the next name, owner-only.
#[test]
fn a_save_never_follows_a_planted_symlink() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let snap = snapshot(vec![process(7, "server")]);
    let stamp: String = humantime::format_rfc3339_seconds(snap.taken_at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let target = dir.path().join("target");
    std::os::unix::fs::symlink(&target, dir.path().join(format!("tracer-{stamp}.csv"))).unwrap();
    let saved = save_in(dir.path(), &snap).unwrap();
    assert_eq!(saved, dir.path().join(format!("tracer-{stamp}-2.csv")));
    assert!(!target.exists(), "the link was followed");
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(
        text.starts_with(header()) && text.lines().count() == 2,
        "{text}"
    );
}
