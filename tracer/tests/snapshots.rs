//! Kernel tests of the per-process snapshots as a user reads them in the CSV
//! file: gauges that agree with `ss`, sockets that predate tracing, processes
//! that exit mid-run, a file continued across runs, and the priorities of the
//! thread that reads events and of the thread that samples /proc.

mod support;

use std::{thread, time::Duration};

use support::{CsvFile, Netns, Peer, Tracer, kernel_tests_enabled, num};

const HOST: &str = "127.0.0.1";

/// A CLOSE_WAIT leak made before tracer starts is in the first row, equal to
/// what `ss` shows for the process; connects are counted with handshake
/// percentiles under the client, and the TIME_WAIT sockets its closes leave
/// are its own, as `ss` counts them.
#[test]
fn close_wait_leak_before_start_and_connects() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("leak");
    let (server, port) = Peer::leaking_listener_in(&ns.name, HOST);
    let mut early = Peer::spawn_in(Some(&ns.name), &["connect", HOST, &port.to_string()]);
    for _ in 0..5 {
        early.connect_once().expect("connect");
    }
    thread::sleep(Duration::from_millis(200));
    let leaked_before = ns.ss_count("close-wait", Some(server.pid()));
    assert_eq!(leaked_before, 5);

    // The client talks to a well-behaved server, which closes after it.
    let (_other, other_port) = Peer::listen_in(&ns.name, HOST);
    let mut client = Peer::spawn_in(Some(&ns.name), &["connect", HOST, &other_port.to_string()]);
    let csv = CsvFile::new();
    let (s, c) = (server.pid().to_string(), client.pid().to_string());
    let tracer = Tracer::start(&["--pid", &s, "--pid", &c, "--csv", &csv.path]);
    for _ in 0..3 {
        client.connect_once().expect("connect");
    }
    thread::sleep(Duration::from_millis(300));
    let leaked_after = ns.ss_count("close-wait", Some(server.pid()));
    let time_wait = ns.ss_count("time-wait", None);
    let (status, _, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");

    let rows = csv.rows_of(server.pid());
    let first = &rows[0];
    let last = rows.last().expect("rows");
    println!(
        "CLOSE_WAIT: ss {leaked_before} before start, {leaked_after} at stop; CSV first row {}, last row {} (oldest {} s)",
        first["close_wait"], last["close_wait"], last["close_wait_oldest_s"]
    );
    assert_eq!(num(first, "close_wait"), leaked_before as u64);
    assert_eq!(num(last, "close_wait"), leaked_after as u64);
    assert_eq!(leaked_after, 5);
    assert_eq!(num(last, "accepted"), 0);
    assert_eq!(num(last, "listen"), 1);
    assert_eq!(num(last, "connects"), 0, "a server connects nowhere");

    let client_row = csv.last_of(client.pid());
    println!(
        "connects: CSV connects {} ok {} handshake p50 {} us p99 {} us max {} us; time_wait {} (ss {time_wait})",
        client_row["connects"],
        client_row["connect_ok"],
        client_row["handshake_p50_us"],
        client_row["handshake_p99_us"],
        client_row["handshake_max_us"],
        client_row["time_wait"],
    );
    assert_eq!(num(&client_row, "connects"), 3);
    assert_eq!(num(&client_row, "connect_ok"), 3);
    let p50 = num(&client_row, "handshake_p50_us");
    assert!(p50 > 0);
    assert!(num(&client_row, "handshake_p99_us") >= p50);
    assert!(num(&client_row, "handshake_max_us") >= num(&client_row, "handshake_p99_us"));
    // The client closed first, so the TIME_WAIT sockets are its own.
    assert_eq!(time_wait, 3);
    assert_eq!(num(&client_row, "time_wait"), 3);
}

/// A traced process that exits keeps its numbers, marked exited; tracer keeps
/// running and stops by itself at --duration.
#[test]
fn exited_process_keeps_its_numbers() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("exit");
    let mut client = Peer::spawn_in(Some(&ns.name), &["connect", HOST, "9"]);
    // One answer before tracing starts: the peer is up, so the timeline below
    // holds even on a slow (emulated) machine.
    assert_eq!(client.connect_once(), Err(libc::ECONNREFUSED));
    let pid = client.pid();
    let csv = CsvFile::new();
    let tracer = Tracer::start(&[
        "--pid",
        &pid.to_string(),
        "--csv",
        &csv.path,
        "--duration",
        "6s",
    ]);
    for _ in 0..2 {
        assert_eq!(client.connect_once(), Err(libc::ECONNREFUSED));
    }
    thread::sleep(Duration::from_millis(1200));
    client.finish();
    let (status, _, stderr) = tracer.wait(Duration::from_secs(20));
    assert!(status.success(), "{stderr}");
    let rows = csv.rows_of(pid);
    let alive: Vec<_> = rows.iter().filter(|r| r["exited"] == "0").collect();
    let exited: Vec<_> = rows.iter().filter(|r| r["exited"] == "1").collect();
    println!(
        "exit mid-run: {} rows alive, {} rows exited; last row connect_refused {}",
        alive.len(),
        exited.len(),
        rows.last().expect("rows")["connect_refused"]
    );
    assert!(!alive.is_empty() && !exited.is_empty(), "{rows:#?}");
    assert!(
        rows.iter().position(|r| r["exited"] == "1")
            > rows.iter().rposition(|r| r["exited"] == "0"),
        "once exited, always exited"
    );
    for row in &exited {
        assert_eq!(num(row, "connect_refused"), 2);
        assert_eq!(row["fds_open"], "", "no descriptors once gone");
    }
}

/// A second run appending to the same file continues it under one header;
/// a file holding something else is refused before anything is loaded.
#[test]
fn csv_file_is_continued_not_clobbered() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("append");
    let mut client = Peer::spawn_in(Some(&ns.name), &["connect", HOST, "9"]);
    let pid = client.pid().to_string();
    let csv = CsvFile::new();
    for _ in 0..2 {
        let tracer = Tracer::start(&["--pid", &pid, "--csv", &csv.path]);
        assert!(client.connect_once().is_err());
        thread::sleep(Duration::from_millis(200));
        let (status, _, stderr) = tracer.stop();
        assert!(status.success(), "{stderr}");
    }
    let rows = csv.rows_of(client.pid());
    assert!(rows.len() >= 2, "{rows:#?}");
    // Counters are per run: each run saw one refused connect.
    assert_eq!(num(rows.last().expect("rows"), "connect_refused"), 1);
}

/// Tracing every process: a process that starts after tracer is picked up,
/// with its own row and numbers.
#[test]
fn a_process_started_later_is_picked_up() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("later");
    let csv = CsvFile::new();
    let tracer = Tracer::start(&["--csv", &csv.path]);
    let mut late = Peer::spawn_in(Some(&ns.name), &["connect", HOST, "9"]);
    for _ in 0..2 {
        assert_eq!(late.connect_once(), Err(libc::ECONNREFUSED));
    }
    thread::sleep(Duration::from_millis(1500));
    let (status, _, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    let row = csv.last_of(late.pid());
    println!(
        "all processes: late process {} has connects {} refused {}",
        late.pid(),
        row["connects"],
        row["connect_refused"]
    );
    assert_eq!(row["comm"], "python3");
    assert_eq!(num(&row, "connect_refused"), 2);
}

/// The thread that drains the ring buffer runs ahead of ordinary processes
/// (on a saturated host it would otherwise fall behind and events would be
/// dropped); the /proc sampler runs behind them.
#[test]
fn the_reader_runs_ahead_and_the_sampler_behind() {
    if !kernel_tests_enabled() {
        return;
    }
    let tracer = Tracer::start(&[]);
    // The sampler has sampled by the time tracing starts; give the next
    // interval's sample time to run as well.
    thread::sleep(Duration::from_millis(1500));
    let threads = tracer.thread_nice();
    let (status, _, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    println!("tracer's threads (tid, nice): {threads:?}");
    assert_eq!(
        threads.first().map(|t| t.1),
        Some(-10),
        "the reader: {threads:?}"
    );
    assert!(
        threads.iter().any(|t| t.1 == 19),
        "no thread at nice 19 (the sampler): {threads:?}"
    );
}
