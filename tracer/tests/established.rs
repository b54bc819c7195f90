//! Kernel tests: faults on established connections, seen through the
//! socket errors the kernel reports and the socket table's queues, which
//! every hook plan reads alike (so these run once per kernel, not per plan).

mod support;

use std::{thread, time::Duration};

use serde_json::Value;
use support::{CsvFile, Netns, Peer, Tracer, delta, kernel_tests_enabled, num};

const HOST: &str = "127.0.0.1";

/// The `finding` lines of `--events` with id `finding` that started.
fn findings_started<'a>(events: &'a [Value], finding: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "finding" && e["finding"] == finding && e["state"] == "start")
        .collect()
}

/// An established connection whose packets a firewall starts dropping, in a
/// namespace with `tcp_retries2=3`: the kernel gives up retransmitting
/// (TcpExtTCPAbortOnTimeout) and the client's socket meets ETIMEDOUT. That is
/// one `socket_error` under the client, in its CSV row, and a
/// `timeout_while_established` finding for the server it talked to.
#[test]
fn timeout_while_established() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("esttimeout");
    ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_retries2=3"]);
    let (_server, port) = Peer::listen_in(&ns.name, HOST);
    let mut client = Peer::spawn_in(
        Some(&ns.name),
        &["connect", HOST, &port.to_string(), "hold"],
    );
    let pid = client.pid();
    let csv = CsvFile::new();
    let tracer = Tracer::start(&["--pid", &pid.to_string(), "--csv", &csv.path]);
    client.ask("go");
    let before = ns.counters();
    ns.exec(&[
        "nft",
        &format!(
            "add table inet t; add chain inet t in {{ type filter hook input priority 0; }}; add rule inet t in tcp dport {port} drop"
        ),
    ]);
    client.ask("go");
    let timed_out = |events: &[Value]| {
        events
            .iter()
            .any(|e| e["event"] == "socket_error" && e["pid"] == pid && e["errno"] == "ETIMEDOUT")
    };
    // 200 ms doubled three times over: about 3 s, more under emulation.
    let seen = tracer.wait_for(Duration::from_secs(30), timed_out);
    // A snapshot after the error, for the CSV row and the finding.
    thread::sleep(Duration::from_millis(1_500));
    let after = ns.counters();
    // Let the server's end close when the peers exit: with the rule left,
    // the client's RST to its FIN would be dropped and the orphaned socket
    // would linger, retransmitting, into later tests.
    ns.exec(&["nft", "delete table inet t"]);
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    let kernel = delta(&before, &after, "TcpExtTCPAbortOnTimeout");
    let errors: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "socket_error")
        .collect();
    let row = csv.last_of(pid);
    println!(
        "established timeout: {} socket errors ({:?}), CSV socket_errors {}, retransmits {}, kernel TcpExtTCPAbortOnTimeout +{kernel}",
        errors.len(),
        errors
            .iter()
            .map(|e| e["errno"].as_str())
            .collect::<Vec<_>>(),
        row["socket_errors"],
        row["retransmits"]
    );
    assert!(seen, "no ETIMEDOUT for pid {pid}: {errors:#?}");
    assert_eq!(kernel, 1);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["phase"], "established", "{}", errors[0]);
    assert_eq!(num(&row, "socket_errors"), 1, "{row:?}");
    assert!(num(&row, "retransmits") >= 3, "{row:?}");
    let found = findings_started(&events, "timeout_while_established");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        (found[0]["pid"].as_u64(), found[0]["remote"].as_str()),
        (
            Some(u64::from(pid)),
            Some(format!("{HOST}:{port}").as_str())
        ),
        "{}",
        found[0]
    );
}

/// A server that never reads and a client that writes until it cannot: the
/// server holds a full receive queue (`ss`'s Recv-Q) and is `not_reading`
/// what that client sends; the client probes a zero window and its peer is
/// `peer_not_reading`. Neither finding names the other process.
#[test]
fn slow_reader() {
    if !kernel_tests_enabled() {
        return;
    }
    let ns = Netns::new("slowreader");
    // A receive buffer well over the finding's 64 KiB of Recv-Q, whatever
    // the kernel's default (6.1 fills about 64 KiB with its own).
    ns.exec(&["sysctl", "-qw", "net.ipv4.tcp_rmem=4096 524288 6291456"]);
    let (server, port) = Peer::leaking_listener_in(&ns.name, HOST);
    let mut client = Peer::spawn_in(Some(&ns.name), &["flood", HOST, &port.to_string()]);
    let (s, c) = (server.pid(), client.pid());
    let tracer = Tracer::start(&["--pid", &s.to_string(), "--pid", &c.to_string()]);
    let sent: u64 = client.ask("go").parse().expect("bytes written");
    let both = |events: &[Value]| {
        !findings_started(events, "not_reading").is_empty()
            && !findings_started(events, "peer_not_reading").is_empty()
    };
    let seen = tracer.wait_for(Duration::from_secs(15), both);
    let queues = ns.exec(&["ss", "-tnH", "state", "established"]);
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    // The server's end: local port `port`; its Recv-Q is the first number.
    let recv_q: u64 = queues
        .lines()
        .find(|l| l.contains(&format!("{HOST}:{port} ")))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let not_reading = findings_started(&events, "not_reading");
    let peer_not_reading = findings_started(&events, "peer_not_reading");
    println!(
        "slow reader: client wrote {sent} bytes, server Recv-Q {recv_q}; not_reading {:?}, peer_not_reading {:?}",
        not_reading
            .iter()
            .map(|f| f["evidence"].as_str())
            .collect::<Vec<_>>(),
        peer_not_reading
            .iter()
            .map(|f| f["evidence"].as_str())
            .collect::<Vec<_>>(),
    );
    assert!(seen, "{stderr}");
    assert!(recv_q >= 2 * 65_536, "{queues}");
    assert!(sent > recv_q, "the rest waits in the client's Send-Q");
    assert_eq!(not_reading.len(), 1, "{not_reading:#?}");
    assert_eq!(
        (
            not_reading[0]["pid"].as_u64(),
            not_reading[0]["remote"].as_str()
        ),
        (Some(u64::from(s)), Some(HOST)),
        "{}",
        not_reading[0]
    );
    assert_eq!(peer_not_reading.len(), 1, "{peer_not_reading:#?}");
    assert_eq!(
        (
            peer_not_reading[0]["pid"].as_u64(),
            peer_not_reading[0]["remote"].as_str()
        ),
        (Some(u64::from(c)), Some(format!("{HOST}:{port}").as_str())),
        "{}",
        peer_not_reading[0]
    );
}

/// Two namespaces, each with a listener and a client that sends a known
/// number of bytes over one connection: each process's `bytes_sent` and
/// `bytes_received` are exactly what crossed its connection (and what `ss
/// -ti` says of it), its RTT percentiles are filled in, and the listeners,
/// started before tracer, have the backlog they asked for. The server keeps
/// its bytes once its client has gone and the connection closed.
#[test]
fn connection_health_per_namespace() {
    if !kernel_tests_enabled() {
        return;
    }
    let namespaces = [Netns::new("healtha"), Netns::new("healthb")];
    let mut peers = Vec::new();
    for ns in &namespaces {
        let (server, port) = Peer::listen_in(&ns.name, HOST);
        let client = Peer::spawn_in(
            Some(&ns.name),
            &["connect", HOST, &port.to_string(), "hold"],
        );
        peers.push((server, client, port));
    }
    let pids: Vec<String> = peers
        .iter()
        .flat_map(|(s, c, _)| [s.pid().to_string(), c.pid().to_string()])
        .collect();
    let csv = CsvFile::new();
    let mut args: Vec<&str> = pids.iter().flat_map(|p| ["--pid", p.as_str()]).collect();
    args.extend(csv.args());
    let tracer = Tracer::start(&args);
    // "hello" on connecting, then 16 KiB per "go": the second namespace's
    // client sends one more.
    let mut expected = Vec::new();
    for (i, (_, client, _)) in peers.iter_mut().enumerate() {
        for _ in 0..=(2 + i) {
            client.ask("go");
        }
        expected.push(5 + (2 + i as u64) * 16384);
    }
    let bytes_of = |pid: u32| {
        csv.rows_of(pid)
            .last()
            .map(|r| (r["bytes_sent"].clone(), r["bytes_received"].clone()))
    };
    let all_counted = || {
        peers.iter().zip(&expected).all(|((s, c, _), &n)| {
            bytes_of(c.pid()) == Some((n.to_string(), "0".into()))
                && bytes_of(s.pid()) == Some(("0".into(), n.to_string()))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !all_counted() && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(250));
    }
    for ((server, client, _), (ns, &n)) in peers.iter().zip(namespaces.iter().zip(&expected)) {
        // The namespace's one connection, both ends.
        let ss = ns.exec(&["ss", "-tinH", "state", "established"]);
        let client_row = csv.last_of(client.pid());
        let server_row = csv.last_of(server.pid());
        println!(
            "health in {}: client sent {n}; CSV client bytes_sent {} srtt p50/p99 {}/{} us, server bytes_received {}, accept_backlog {}; ss: {}",
            ns.name,
            client_row["bytes_sent"],
            client_row["srtt_p50_us"],
            client_row["srtt_p99_us"],
            server_row["bytes_received"],
            server_row["accept_backlog"],
            ss.split_whitespace()
                .filter(|w| w.starts_with("bytes_") || w.starts_with("rtt:"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        for seen in [format!("bytes_sent:{n}"), format!("bytes_received:{n}")] {
            assert!(
                ss.split_whitespace().any(|w| w == seen),
                "ss does not show {seen}: {ss}"
            );
        }
        assert_eq!(num(&client_row, "bytes_sent"), n, "{client_row:?}");
        assert_eq!(num(&client_row, "bytes_received"), 0, "{client_row:?}");
        assert_eq!(num(&server_row, "bytes_received"), n, "{server_row:?}");
        assert_eq!(num(&server_row, "bytes_sent"), 0, "{server_row:?}");
        let (p50, p99) = (
            num(&client_row, "srtt_p50_us"),
            num(&client_row, "srtt_p99_us"),
        );
        assert!(p50 > 0 && p50 <= p99, "{client_row:?}");
        assert_eq!(num(&server_row, "accept_backlog"), 128, "{server_row:?}");
    }
    // The first client leaves: its server's connection closes, and the
    // bytes it received stay counted.
    let (server, client, _) = peers.remove(0);
    let server_pid = server.pid();
    client.finish();
    let gone = |events: &[Value]| {
        events
            .iter()
            .any(|e| e["event"] == "state" && e["pid"] == server_pid && e["new_state"] == "CLOSE")
    };
    assert!(
        tracer.wait_for(Duration::from_secs(20), gone),
        "the server's connection did not close"
    );
    thread::sleep(Duration::from_millis(2_500));
    let (status, _, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    let row = csv.last_of(server_pid);
    assert_eq!(num(&row, "established"), 0, "{row:?}");
    assert_eq!(num(&row, "bytes_received"), expected[0], "{row:?}");
    assert!(!stderr.contains("sock_diag"), "{stderr}");
}
