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
