//! Kernel test: a Go service (`tests/go/service`) makes, one client process
//! per case, the connections tracer's connect and connection findings are
//! about: dial deadlines shorter and longer than the first SYN retransmit,
//! a dual-stack dial whose IPv6 SYNs are filtered, HTTP clients with
//! keep-alives off and with bodies never closed, their healthy variants, and
//! a `database/sql` pool capped at a few connections. All in one private
//! network namespace whose nftables rules drop the SYNs. Each finding must
//! fire for the process and server it concerns and for no other, and the
//! CSV's counts must be what the clients say they did.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{CsvFile, Netns, Row, Tracer, delta, kernel_tests_enabled, num};

/// Ports in the namespace, each with its nftables rule.
const HTTP: u16 = 8080; // answers
const DUAL: u16 = 8081; // IPv6 SYNs dropped, IPv4 answers
const LOSSY: u16 = 8082; // the first SYN of each connection dropped
const FILTERED: u16 = 8083; // every SYN dropped (nobody listens)
const DB: u16 = 5432; // the pool's server (IPv4 only)
/// A name with both loopback addresses (`/etc/netns/NAME/hosts`).
const DUAL_NAME: &str = "dual.test";

/// The kernel retransmits an unanswered SYN after 1 s, then 2 s later.
/// A deadline under the first retransmit abandons a connect after one SYN;
/// one between the first and the second, after two.
const SHORT_DEADLINE: &str = "300ms";
const SHORT_DEADLINE_US: u64 = 300_000;
const LONG_DEADLINE: &str = "2s";
const LONG_DEADLINE_US: u64 = 2_000_000;
/// Dials of each kind. Two to the lossy port stay under
/// `connect_unanswered`'s 3 SYN retransmits.
const SHORT_DIALS: u64 = 3;
const LONG_DIALS: u64 = 2;
const LOSSY_DIALS: u64 = 2;
const DUAL_DIALS: u64 = 3;
/// Requests of the keep-alive clients: `no_reuse` wants ≥ 100 closed
/// connections at ≥ 2 a second.
const REQUESTS: u64 = 150;
/// The pool's cap, and the most workers it gets: far more than the cap.
const POOL_MAX: u64 = 8;
const POOL_WORKERS: &str = "40";

/// nftables rules of the namespace: the drops behind the ports above. The
/// set remembers the source ports whose first SYN was dropped.
fn rules() -> String {
    format!(
        "add table inet gosvc; \
         add set inet gosvc seen {{ type inet_service; flags dynamic,timeout; timeout 5m; }}; \
         add chain inet gosvc in {{ type filter hook input priority 0; }}; \
         add rule inet gosvc in tcp dport {FILTERED} tcp flags syn drop; \
         add rule inet gosvc in meta nfproto ipv6 tcp dport {DUAL} tcp flags syn drop; \
         add rule inet gosvc in tcp dport {LOSSY} tcp flags syn tcp sport @seen accept; \
         add rule inet gosvc in tcp dport {LOSSY} tcp flags syn add @seen {{ tcp sport }} drop"
    )
}

/// The namespace's `/etc/hosts` (bound over the host's by `ip netns exec`),
/// removed on drop.
struct Hosts {
    dir: PathBuf,
}

impl Hosts {
    fn new(ns: &Netns) -> Self {
        let dir = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {DUAL_NAME}\n::1 {DUAL_NAME}\n"),
        )
        .expect("write /etc/netns/NAME/hosts");
        Self { dir }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One process of the Go service in the namespace; killed on drop if it
/// has not exited within 5 s of its stdin closing.
struct GoProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl GoProcess {
    /// Starts `exe args` in `ns` and waits for its first line (`expect`).
    fn start(ns: &Netns, exe: &Path, name: &'static str, args: &[&str], expect: &str) -> Self {
        // `ip netns exec` execs in place: the program keeps this pid.
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the Go service");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let p = Self {
            name,
            child,
            stdin,
            lines,
        };
        assert_eq!(p.line(Duration::from_secs(30)), expect, "{name}");
        p
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the Go service");
        stdin.flush().expect("flush");
    }

    fn line(&self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("{}: no line from the Go service: {e}", self.name))
    }

    /// The JSON object the client prints when its case is done.
    fn report(&self, timeout: Duration) -> Value {
        let line = self.line(timeout);
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON: {line:?}: {e}", self.name))
    }
}

impl Drop for GoProcess {
    fn drop(&mut self) {
        self.stdin.take();
        support::end_child(&mut self.child);
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The findings that started for `pid`, as `(id, remote)`, leaving out
/// `firewall_drops` (checked on its own: it names every remote whose
/// packets the rules dropped).
fn findings(events: &[Value], pid: u32) -> BTreeSet<(String, String)> {
    finding_events(events, pid)
        .filter(|e| e["finding"] != "firewall_drops")
        .map(|e| {
            (
                e["finding"].as_str().unwrap_or("?").to_owned(),
                e["remote"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn finding_events(events: &[Value], pid: u32) -> impl Iterator<Item = &Value> {
    events
        .iter()
        .filter(move |e| e["event"] == "finding" && e["pid"] == pid && e["state"] == "start")
}

fn connect_events<'a>(events: &'a [Value], pid: u32, result: &'a str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "connect" && e["pid"] == pid && e["result"] == result)
        .collect()
}

fn server(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn set(items: &[(&str, String)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(id, remote)| ((*id).to_owned(), remote.clone()))
        .collect()
}

/// `connects`, `connect_ok`, `connect_abandoned`, `connect_timeout` of a row.
fn connect_counts(row: &Row) -> [u64; 4] {
    [
        "connects",
        "connect_ok",
        "connect_abandoned",
        "connect_timeout",
    ]
    .map(|c| num(row, c))
}

#[test]
fn findings_fire_where_the_go_service_goes_wrong() {
    if !kernel_tests_enabled() {
        return;
    }
    let Some(exe) = support::go_program("service") else {
        support::tool_missing("go");
        return;
    };
    let started = Instant::now();
    let ns = Netns::new("gosvc");
    let _hosts = Hosts::new(&ns);
    ns.exec(&["nft", &rules()]);
    let _server = GoProcess::start(
        &ns,
        &exe,
        "server",
        &[
            "serve",
            "-http",
            &format!(":{HTTP},:{DUAL},:{LOSSY}"),
            "-db",
            &format!("127.0.0.1:{DB}"),
        ],
        "ready",
    );
    let http_url = format!("http://127.0.0.1:{HTTP}/");
    let filtered = server("127.0.0.1", FILTERED);
    let lossy = server("127.0.0.1", LOSSY);
    let http = server("127.0.0.1", HTTP);
    let client = |name, args: &[&str]| GoProcess::start(&ns, &exe, name, args, "waiting");
    let (short_n, long_n, lossy_n, dual_n, requests) = (
        SHORT_DIALS.to_string(),
        LONG_DIALS.to_string(),
        LOSSY_DIALS.to_string(),
        DUAL_DIALS.to_string(),
        REQUESTS.to_string(),
    );
    let mut short = client(
        "short deadline",
        &[
            "dial",
            "-deadline",
            SHORT_DEADLINE,
            "-count",
            &short_n,
            &filtered,
        ],
    );
    // Long enough for a SYN retransmit: to the filtered server, and in a
    // process of its own to the lossy one, where the retransmit is answered.
    let mut long = client(
        "long deadline",
        &[
            "dial",
            "-deadline",
            LONG_DEADLINE,
            "-count",
            &long_n,
            &filtered,
        ],
    );
    let mut long_lossy = client(
        "long deadline, lossy",
        &[
            "dial",
            "-deadline",
            LONG_DEADLINE,
            "-count",
            &lossy_n,
            &lossy,
        ],
    );
    let dual_addr = format!("{DUAL_NAME}:{DUAL}");
    let mut dual = client(
        "dual stack",
        &["dial", "-deadline", "5s", "-count", &dual_n, &dual_addr],
    );
    let mut no_keepalive = client(
        "keep-alives off",
        &[
            "http",
            "-keepalive=false",
            "-requests",
            &requests,
            "-every",
            "40ms",
            &http_url,
        ],
    );
    let mut keepalive = client(
        "keep-alives on",
        &["http", "-requests", &requests, "-every", "40ms", &http_url],
    );
    let mut leak = client(
        "bodies never closed",
        &["http", "-close=false", "-every", "1s", &http_url],
    );
    let mut pool = client(
        "capped pool",
        &[
            "pool",
            "-max",
            &POOL_MAX.to_string(),
            "-workers",
            POOL_WORKERS,
            "-ramp",
            "1s",
            &format!("127.0.0.1:{DB}"),
        ],
    );

    let csv = CsvFile::new();
    let pids: Vec<String> = [
        &short,
        &long,
        &long_lossy,
        &dual,
        &no_keepalive,
        &keepalive,
        &leak,
        &pool,
    ]
    .iter()
    .map(|p| p.pid().to_string())
    .collect();
    let mut args: Vec<&str> = pids.iter().flat_map(|p| ["--pid", p.as_str()]).collect();
    args.extend(csv.args());
    let tracer = Tracer::start(&args);
    let before = ns.counters();
    for p in [
        &mut short,
        &mut long,
        &mut long_lossy,
        &mut dual,
        &mut no_keepalive,
        &mut keepalive,
        &mut leak,
        &mut pool,
    ] {
        p.send("go");
    }
    let wait = Duration::from_secs(90);
    let short_said = short.report(wait);
    let long_said = long.report(wait);
    let lossy_said = long_lossy.report(wait);
    let dual_said = dual.report(wait);
    let no_keepalive_said = no_keepalive.report(wait);
    let keepalive_said = keepalive.report(wait);
    // The leak shows as growth over 8 samples 5 s apart: wait for it (the
    // pool runs as long, its workers ramping past its cap), then stop both.
    let leak_pid = leak.pid();
    let grew = tracer.wait_for(Duration::from_secs(120), |events| {
        findings(events, leak_pid).contains(&("connections_growing".to_owned(), http.clone()))
    });
    leak.send("stop");
    pool.send("stop");
    let leak_said = leak.report(wait);
    let pool_said = pool.report(wait);
    let after = ns.counters();
    // A snapshot after everything, with the leaked connections still open.
    thread::sleep(Duration::from_millis(1500));
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");
    println!("go service: ran for {:.0?}", started.elapsed());
    if !grew {
        let open: Vec<String> = csv
            .rows_of(leak_pid)
            .iter()
            .map(|r| r["established"].clone())
            .collect();
        println!("bodies never closed: {leak_said}; established at each snapshot: {open:?}");
    }
    assert!(grew, "no connections_growing for the leaking client");

    // Deadline shorter than the first SYN retransmit: one SYN each, no
    // retransmit, no ETIMEDOUT; only the abandoned connects show it.
    let said = &short_said[0];
    println!("short deadline: {said}");
    assert_eq!(said["sockets"]["tcp4"], SHORT_DIALS, "{said}");
    assert_eq!(said["timeouts"], SHORT_DIALS, "{said}");
    let row = csv.last_of(short.pid());
    assert_eq!(
        connect_counts(&row),
        [SHORT_DIALS, 0, SHORT_DIALS, 0],
        "{row:?}"
    );
    assert_eq!(num(&row, "syn_retransmits"), 0, "{row:?}");
    let max_elapsed = |said: &Value| {
        said["elapsed_us"]
            .as_array()
            .expect("elapsed_us")
            .iter()
            .map(u)
            .max()
            .unwrap_or(0)
    };
    let abandoned = connect_events(&events, short.pid(), "abandoned");
    assert_eq!(abandoned.len() as u64, SHORT_DIALS, "{abandoned:?}");
    for e in &abandoned {
        assert_eq!(e["syns"], 1, "{e}");
        assert!(e.get("race_lost").is_none(), "{e}");
        let after = u(&e["after_us"]);
        assert!(
            after >= SHORT_DEADLINE_US - 50_000 && after <= max_elapsed(said),
            "after_us {after} vs the deadline {SHORT_DEADLINE} and {said}"
        );
    }

    // Deadline longer than the first SYN retransmit: to the filtered server,
    // two SYNs each before giving up; to the lossy one, the retransmitted
    // SYN is answered and the connects succeed.
    let said = &long_said[0];
    println!("long deadline: {said}");
    assert_eq!(said["timeouts"], LONG_DIALS, "{said}");
    let row = csv.last_of(long.pid());
    assert_eq!(
        connect_counts(&row),
        [LONG_DIALS, 0, LONG_DIALS, 0],
        "{row:?}"
    );
    assert_eq!(num(&row, "syn_retransmits"), LONG_DIALS, "{row:?}");
    let abandoned = connect_events(&events, long.pid(), "abandoned");
    assert_eq!(abandoned.len() as u64, LONG_DIALS, "{abandoned:?}");
    for e in &abandoned {
        assert_eq!(e["syns"], 2, "{e}");
        let after = u(&e["after_us"]);
        assert!(
            after >= LONG_DEADLINE_US - 50_000 && after <= max_elapsed(said),
            "after_us {after} vs the deadline {LONG_DEADLINE} and {said}"
        );
    }
    let said = &lossy_said[0];
    println!("long deadline, lossy: {said}");
    assert_eq!(said["connected"][&lossy], LOSSY_DIALS, "{said}");
    let row = csv.last_of(long_lossy.pid());
    assert_eq!(
        connect_counts(&row),
        [LOSSY_DIALS, LOSSY_DIALS, 0, 0],
        "{row:?}"
    );
    assert_eq!(num(&row, "syn_retransmits"), LOSSY_DIALS, "{row:?}");
    for e in connect_events(&events, long_lossy.pid(), "ok") {
        assert!(u(&e["handshake_us"]) >= 1_000_000, "{e}");
    }

    // Dual stack: Go tries ::1 first, falls back to 127.0.0.1 after 300 ms,
    // and abandons the IPv6 connect once the IPv4 one connects: a lost race,
    // not a failure.
    let said = &dual_said[0];
    println!("dual stack: {said}");
    assert_eq!(said["sockets"]["tcp6"], DUAL_DIALS, "{said}");
    assert_eq!(said["sockets"]["tcp4"], DUAL_DIALS, "{said}");
    assert_eq!(
        said["connected"][server("127.0.0.1", DUAL)],
        DUAL_DIALS,
        "{said}"
    );
    let row = csv.last_of(dual.pid());
    assert_eq!(
        connect_counts(&row),
        [2 * DUAL_DIALS, DUAL_DIALS, 0, 0],
        "{row:?}"
    );
    let lost = connect_events(&events, dual.pid(), "abandoned");
    assert_eq!(lost.len() as u64, DUAL_DIALS, "{lost:?}");
    for e in &lost {
        assert_eq!(e["daddr"], "::1", "{e}");
        assert_eq!(e["dport"], DUAL, "{e}");
        assert_eq!(e["race_lost"], true, "{e}");
    }

    // Keep-alives off: a connection per request; on: one for them all.
    println!("keep-alives off: {no_keepalive_said}");
    println!("keep-alives on: {keepalive_said}");
    for (p, said) in [
        (&no_keepalive, &no_keepalive_said),
        (&keepalive, &keepalive_said),
    ] {
        assert_eq!(said["ok"], REQUESTS, "{}: {said}", p.name);
        let dials = u(&said["dials"]);
        let row = csv.last_of(p.pid());
        assert_eq!(connect_counts(&row), [dials, dials, 0, 0], "{row:?}");
    }
    assert_eq!(no_keepalive_said["dials"], REQUESTS);
    assert_eq!(keepalive_said["dials"], 1);

    // Bodies never closed: every request dialed, every connection still open.
    println!("bodies never closed: {leak_said}");
    let dials = u(&leak_said["dials"]);
    assert_eq!(leak_said["bodies_open"], dials, "{leak_said}");
    let row = csv.last_of(leak.pid());
    assert_eq!(connect_counts(&row), [dials, dials, 0, 0], "{row:?}");
    assert_eq!(num(&row, "established"), dials, "{row:?}");

    // The capped pool: as many connections as its cap, all open, though its
    // workers waited for them.
    println!("capped pool: {pool_said}");
    assert_eq!(pool_said["max_open"], POOL_MAX, "{pool_said}");
    assert_eq!(pool_said["open"], POOL_MAX, "{pool_said}");
    assert_eq!(pool_said["dials"], POOL_MAX, "{pool_said}");
    assert!(u(&pool_said["wait_count"]) > 0, "{pool_said}");
    let row = csv.last_of(pool.pid());
    assert_eq!(connect_counts(&row), [POOL_MAX, POOL_MAX, 0, 0], "{row:?}");
    assert_eq!(num(&row, "established"), POOL_MAX, "{row:?}");

    // Every SYN retransmit in the namespace is one of the clients'.
    let ours: u64 = pids
        .iter()
        .map(|p| num(&csv.last_of(p.parse().expect("pid")), "syn_retransmits"))
        .sum();
    let kernel = delta(&before, &after, "TcpExtTCPSynRetrans");
    println!("SYN retransmits: tracer {ours}, kernel TcpExtTCPSynRetrans +{kernel}");
    assert_eq!(ours, kernel);

    // Each finding where it should be, and nowhere else.
    let expected: HashMap<u32, BTreeSet<(String, String)>> = [
        (
            short.pid(),
            set(&[("connect_unanswered", filtered.clone())]),
        ),
        (long.pid(), set(&[("connect_unanswered", filtered.clone())])),
        (long_lossy.pid(), set(&[])),
        (dual.pid(), set(&[])),
        (no_keepalive.pid(), set(&[("no_reuse", http.clone())])),
        (keepalive.pid(), set(&[])),
        (leak.pid(), set(&[("connections_growing", http.clone())])),
        (pool.pid(), set(&[])),
    ]
    .into_iter()
    .collect();
    for p in [
        &short,
        &long,
        &long_lossy,
        &dual,
        &no_keepalive,
        &keepalive,
        &leak,
        &pool,
    ] {
        let fired = findings(&events, p.pid());
        let drops = num(&csv.last_of(p.pid()), "drops");
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e["event"] == "drop" && e["pid"] == p.pid())
        {
            *reasons
                .entry(e["reason"].as_str().unwrap_or("?"))
                .or_default() += 1;
        }
        println!("{}: findings {fired:?}, drops {drops} {reasons:?}", p.name);
        assert_eq!(fired, expected[&p.pid()], "{}", p.name);
        // Only a remote whose packets the rules drop can be behind a firewall.
        for e in finding_events(&events, p.pid()).filter(|e| e["finding"] == "firewall_drops") {
            let remote = e["remote"].as_str().unwrap_or("?");
            assert!(
                [&filtered, &lossy, &server("::1", DUAL)].contains(&&remote.to_owned()),
                "{}: {e}",
                p.name
            );
        }
    }
    // Nothing answered the filtered server: critical.
    for p in [&short, &long] {
        let e = finding_events(&events, p.pid())
            .find(|e| e["finding"] == "connect_unanswered")
            .expect("connect_unanswered");
        assert_eq!(e["severity"], "critical", "{e}");
        assert_eq!(e["remote_role"], "server", "{e}");
        assert!(
            e["message"].as_str().is_some_and(|m| m.contains(&filtered)),
            "{e}"
        );
    }
    // The rule dropped every SYN those clients sent. A drop is found by the
    // packet's addresses: a retransmitted SYN's always (its event told the
    // connect's port), a first SYN's unless both clients were connecting
    // from the same address to that server at the time (they run at once).
    // None is given to a process that did not send it.
    for p in [&short, &long] {
        let row = csv.last_of(p.pid());
        let (connects, retransmits) = (num(&row, "connects"), num(&row, "syn_retransmits"));
        let dropped = events
            .iter()
            .filter(|e| {
                e["event"] == "drop" && e["pid"] == p.pid() && e["reason"] == "NETFILTER_DROP"
            })
            .count() as u64;
        println!(
            "{}: {} SYNs sent ({retransmits} retransmitted), {dropped} of their drops attributed",
            p.name,
            connects + retransmits
        );
        assert!(
            dropped >= retransmits && dropped <= connects + retransmits,
            "{}",
            p.name
        );
    }
    assert!(
        finding_events(&events, long.pid())
            .any(|e| e["finding"] == "firewall_drops" && e["remote"] == filtered.as_str()),
        "no firewall_drops for {filtered}"
    );
}
