//! Kernel tests: DNS lookups per process. A DNS server (`support/dns_server.py`)
//! answers in a private network namespace whose resolver
//! (`/etc/netns/NAME/resolv.conf`) points at it; clients look names up
//! there: glibc's `getaddrinfo` (`getent ahostsv4`) over UDP and over TCP
//! (`options use-vc`), and Go's own resolver (`tests/go/dnsclient`). Every
//! query tracer counts under a client must be one the server received, and
//! each lookup must end as the client saw it.

mod support;

use std::{
    collections::HashMap,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{CsvFile, Netns, Tracer, kernel_tests_enabled, num};

const SERVER: &str = "10.53.0.1";
const DNS_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/dns_server.py");

/// The namespace's resolver configuration, removed on drop.
struct ResolvConf {
    dir: PathBuf,
}

impl ResolvConf {
    fn new(ns: &Netns) -> Self {
        let dir = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        Self { dir }
    }

    /// One try of 1 s per query (a name that is never answered fails fast),
    /// over TCP with `use_vc`.
    fn set(&self, use_vc: bool) {
        let vc = if use_vc { " use-vc" } else { "" };
        std::fs::write(
            self.dir.join("resolv.conf"),
            format!("nameserver {SERVER}\noptions timeout:1 attempts:1{vc}\n"),
        )
        .expect("write resolv.conf");
    }
}

impl Drop for ResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test DNS server in `ns`: the queries it received, as
/// `(transport, qtype, name)`.
struct DnsServer {
    child: std::process::Child,
    queries: Arc<Mutex<Vec<(String, u16, String)>>>,
}

impl DnsServer {
    fn start(ns: &Netns) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", DNS_SERVER, SERVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the DNS server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines.next().and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the DNS server did not start"
        );
        let queries = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&queries);
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut parts = line.splitn(3, ' ');
                let (Some(transport), Some(qtype), Some(name)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                sink.lock().expect("lock").push((
                    transport.to_owned(),
                    qtype.parse().expect("qtype"),
                    name.to_owned(),
                ));
            }
        });
        Self { child, queries }
    }

    /// Queries received for names that start with `prefix`.
    fn received(&self, prefix: &str) -> Vec<(String, u16, String)> {
        let all = self.queries.lock().expect("lock");
        all.iter()
            .filter(|(_, _, name)| name.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `args` in `ns` to completion; returns its pid and standard output.
fn run_in(ns: &Netns, args: &[&str]) -> (u32, String) {
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .args(args)
        .env("GODEBUG", "netdns=go")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a DNS client");
    // `ip netns exec` execs in place: the client keeps this pid.
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for the client");
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dns_events(events: &[Value], pid: u32) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event"] == "dns" && e["pid"] == pid)
        .collect()
}

/// A lookup's outcome as its `dns` event says it: the rcode, or `timeout`.
fn outcome(e: &Value) -> String {
    if e["timeout"] == true {
        "timeout".to_owned()
    } else {
        e["rcode"].as_str().unwrap_or("?").to_owned()
    }
}

/// How the test waits for the lookups that time out (5 s unanswered) to be
/// counted: the last one plus 5 s, plus snapshots every second.
const TIMEOUT_WAIT: Duration = Duration::from_secs(7);

#[test]
fn lookups_per_process_as_the_clients_made_them() {
    if !kernel_tests_enabled() {
        return;
    }
    let go = support::go_program("dnsclient");
    if go.is_none() {
        support::tool_missing("go");
    }
    let ns = Netns::new("dns");
    ns.exec(&["ip", "addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
    let resolv = ResolvConf::new(&ns);
    resolv.set(false);
    let server = DnsServer::start(&ns);
    let csv = CsvFile::new();
    let tracer = Tracer::start(&csv.args());
    assert!(
        tracer.started().contains("DNS from cgroup programs"),
        "{}",
        tracer.started()
    );

    // glibc over UDP: one A query a name (ahostsv4), one process a name.
    let mut glibc: Vec<(u32, &str, &str)> = Vec::new();
    for (name, expect) in [
        ("ok-c.test.", "NOERROR"),
        ("nx-c.test.", "NXDOMAIN"),
        ("fail-c.test.", "SERVFAIL"),
        ("silent-c.test.", "timeout"),
    ] {
        let (pid, _) = run_in(&ns, &["getent", "ahostsv4", name]);
        glibc.push((pid, name, expect));
    }
    // glibc over TCP.
    resolv.set(true);
    for (name, expect) in [("ok-tcp.test.", "NOERROR"), ("nx-tcp.test.", "NXDOMAIN")] {
        let (pid, _) = run_in(&ns, &["getent", "ahostsv4", name]);
        glibc.push((pid, name, expect));
    }
    resolv.set(false);
    // Go's resolver: A and AAAA for each name, each on a connected UDP socket.
    let go_run = go.as_ref().map(|client| {
        let client = client.to_string_lossy();
        run_in(
            &ns,
            &[&client, "ok-go.test.", "nx-go.test.", "silent-go.test."],
        )
    });
    let quiet_since = Instant::now();
    thread::sleep(TIMEOUT_WAIT.saturating_sub(quiet_since.elapsed()));
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");

    for (pid, name, expect) in &glibc {
        let bare = name.trim_end_matches('.');
        let received = server.received(bare);
        assert_eq!(received.len(), 1, "{name}: the server saw {received:?}");
        let transport = &received[0].0;
        let seen = dns_events(&events, *pid);
        assert_eq!(seen.len(), 1, "{name}: {seen:?}");
        let e = seen[0];
        assert_eq!(e["qname"], bare, "{e}");
        assert_eq!(e["qtype"], "A", "{e}");
        assert_eq!(e["transport"], transport.as_str(), "{e}");
        assert_eq!(e["server"], format!("{SERVER}:53"), "{e}");
        assert_eq!(outcome(e), *expect, "{e}");
        if *expect != "timeout" {
            assert!(e["latency_us"].as_u64().is_some(), "{e}");
        }
        let row = csv.last_of(*pid);
        assert_eq!(num(&row, "dns_queries"), 1, "{name}: {row:?}");
        let failed = u64::from(!matches!(*expect, "NOERROR" | "timeout"));
        assert_eq!(num(&row, "dns_failures"), failed, "{name}: {row:?}");
        assert_eq!(
            num(&row, "dns_timeouts"),
            u64::from(*expect == "timeout"),
            "{name}: {row:?}"
        );
        assert_eq!(
            row["dns_p50_us"].is_empty(),
            *expect == "timeout",
            "{name}: {row:?}"
        );
    }

    let Some((pid, said)) = go_run else {
        return;
    };
    // What the Go client saw of each name.
    let said: HashMap<&str, &str> = said
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, rest)| (name, rest.split(' ').next().unwrap_or("")))
        .collect();
    assert_eq!(said.get("ok-go.test."), Some(&"ok"), "{said:?}");
    assert_eq!(said.get("nx-go.test."), Some(&"notfound"), "{said:?}");
    assert_eq!(said.get("silent-go.test."), Some(&"timeout"), "{said:?}");
    let received = server.received("ok-go.test").len()
        + server.received("nx-go.test").len()
        + server.received("silent-go.test").len();
    let row = csv.last_of(pid);
    assert_eq!(num(&row, "dns_queries") as usize, received, "{row:?}");
    let seen = dns_events(&events, pid);
    assert_eq!(seen.len(), received, "{seen:?}");
    let by_outcome = |qname: &str, what: &str| {
        seen.iter()
            .filter(|e| e["qname"] == qname && outcome(e) == what)
            .count()
    };
    let nx = server.received("nx-go.test").len();
    let silent = server.received("silent-go.test").len();
    assert!(nx >= 2 && silent >= 2, "A and AAAA each: {nx} {silent}");
    assert_eq!(by_outcome("nx-go.test", "NXDOMAIN"), nx);
    assert_eq!(by_outcome("silent-go.test", "timeout"), silent);
    assert_eq!(num(&row, "dns_failures") as usize, nx, "{row:?}");
    assert_eq!(num(&row, "dns_timeouts") as usize, silent, "{row:?}");
    // The findings name the failing name and the silent server.
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "finding" && e["pid"] == pid && e["state"] == "start")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        started.contains(&"lookups of nx-go.test fail"),
        "{started:?}"
    );
    assert!(
        started.contains(&format!("DNS server {SERVER}:53 does not answer").as_str()),
        "{started:?}"
    );
}

/// A process that looks `name` up (glibc's `getaddrinfo`, from Python) when
/// a line arrives on its stdin, prints `done`, and exits.
struct LateClient {
    child: std::process::Child,
}

impl LateClient {
    fn start(ns: &Netns, name: &str) -> Self {
        let script = format!(
            "import socket, sys\nsys.stdin.readline()\n\
             try:\n    socket.getaddrinfo({name:?}, 80, socket.AF_INET)\nexcept OSError:\n    pass\n\
             print('done', flush=True)\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3");
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn look_up(mut self) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin).expect("write");
        let out = self.child.wait_with_output().expect("wait for the client");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    }
}

/// Two network namespaces, each with its own DNS server on the same
/// address, and `--pid`: every lookup is counted under the process that made
/// it, against its own namespace's server, and an untraced process's
/// lookups are not counted at all.
#[test]
fn same_server_address_in_two_namespaces_and_pid() {
    if !kernel_tests_enabled() {
        return;
    }
    let (ns1, ns2) = (Netns::new("dns1"), Netns::new("dns2"));
    let mut kept = Vec::new();
    for ns in [&ns1, &ns2] {
        ns.exec(&["ip", "addr", "add", &format!("{SERVER}/32"), "dev", "lo"]);
        let resolv = ResolvConf::new(ns);
        resolv.set(false);
        kept.push((resolv, DnsServer::start(ns)));
    }
    let a = LateClient::start(&ns1, "nx-a.test.");
    let b = LateClient::start(&ns2, "ok-b.test.");
    let untraced = LateClient::start(&ns1, "ok-untraced.test.");
    let (pa, pb, pu) = (a.pid(), b.pid(), untraced.pid());
    let csv = CsvFile::new();
    let (sa, sb) = (pa.to_string(), pb.to_string());
    let mut args = vec!["--pid", &sa, "--pid", &sb];
    args.extend(csv.args());
    let tracer = Tracer::start(&args);
    a.look_up();
    b.look_up();
    untraced.look_up();
    thread::sleep(Duration::from_millis(1500));
    let (status, events, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");

    let (server1, server2) = (&kept[0].1, &kept[1].1);
    assert_eq!(server1.received("nx-a.test").len(), 1);
    assert_eq!(server1.received("ok-untraced.test").len(), 1);
    assert_eq!(server2.received("ok-b.test").len(), 1);
    assert!(server2.received("nx-a.test").is_empty());

    let seen_a = dns_events(&events, pa);
    assert_eq!(seen_a.len(), 1, "{seen_a:?}");
    assert_eq!(seen_a[0]["qname"], "nx-a.test");
    assert_eq!(outcome(seen_a[0]), "NXDOMAIN");
    let seen_b = dns_events(&events, pb);
    assert_eq!(seen_b.len(), 1, "{seen_b:?}");
    assert_eq!(seen_b[0]["qname"], "ok-b.test");
    assert_eq!(outcome(seen_b[0]), "NOERROR");
    assert!(dns_events(&events, pu).is_empty());
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "dns" && e["qname"] == "ok-untraced.test"),
        "an untraced lookup was reported"
    );
    let (row_a, row_b) = (csv.last_of(pa), csv.last_of(pb));
    assert_eq!(
        (num(&row_a, "dns_queries"), num(&row_a, "dns_failures")),
        (1, 1)
    );
    assert_eq!(
        (num(&row_b, "dns_queries"), num(&row_b, "dns_failures")),
        (1, 0)
    );
    assert!(csv.rows_of(pu).is_empty());
}

/// The names of tracer's DNS programs that the kernel has loaded now.
fn dns_programs_loaded() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with("dns_"))
        .collect()
}

/// The cgroup programs are links owned by tracer's process: SIGKILL, which
/// runs no clean-up of tracer's own, still leaves none attached or loaded.
#[test]
fn killed_tracer_leaves_no_cgroup_program() {
    if !kernel_tests_enabled() {
        return;
    }
    assert!(
        dns_programs_loaded().is_empty(),
        "DNS programs loaded before tracer started (another tracer running?)"
    );
    let tracer = Tracer::start(&[]);
    let loaded = dns_programs_loaded();
    assert!(
        loaded.iter().any(|n| n == "dns_egress") && loaded.iter().any(|n| n == "dns_connect4"),
        "{loaded:?}"
    );
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGKILL) };
    let (status, _, _) = tracer.wait(Duration::from_secs(10));
    assert!(!status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dns_programs_loaded().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(dns_programs_loaded(), Vec::<String>::new());
}
