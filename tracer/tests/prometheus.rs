//! `--prometheus` scraped by a real Prometheus server (Debian's `prometheus`,
//! installed by `cargo xtask setup`) while loopback traffic runs in a private
//! network namespace: what Prometheus's HTTP API answers equals tracer's CSV
//! of the same run, and `promtool check metrics` accepts the endpoint's body.
//! Runs on the host only (`cargo xtask test` leaves it out of the VM, which
//! has no Prometheus).

mod support;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use support::{CsvFile, Netns, Peer, Tracer, kernel_tests_enabled, num};

const HOST: &str = "127.0.0.1";

/// A Prometheus server on a loopback port, scraping `target` every second;
/// killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: tracer\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = format!("{HOST}:{}", free_port());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let prometheus = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while curl(&format!("http://{}/-/ready", prometheus.addr)).is_none() {
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready; its log:\n{}",
                prometheus.log()
            );
            thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant query that returns one series; `None` when it
    /// returns none.
    fn query(&self, promql: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", "--data-urlencode", &format!("query={promql}")])
            .arg(format!("http://{}/api/v1/query", self.addr))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "query {promql} failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON answer");
        assert_eq!(v["status"], "success", "{v}");
        let result = v["data"]["result"].as_array().expect("a vector");
        assert!(result.len() <= 1, "{promql}: {v}");
        result.first().map(|r| {
            r["value"][1]
                .as_str()
                .expect("value")
                .parse()
                .expect("number")
        })
    }

    /// Waits until `promql` returns `want`; returns what it returned last.
    fn wait_for(&self, promql: &str, want: f64, timeout: Duration) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.query(promql);
            if got == Some(want) || Instant::now() > deadline {
                return got;
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now.
fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The body of a GET, or `None` on any failure.
fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl").args(["-sf", url]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where tracer says it serves its metrics (`--prometheus 127.0.0.1:0`).
fn metrics_addr(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("tracer: serving Prometheus metrics at http://"))
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("tracer did not say where it serves metrics:\n{stderr}"))
        .to_owned()
}

#[test]
fn prometheus_scrapes_what_the_csv_says() {
    if !kernel_tests_enabled() {
        return;
    }
    // This suite runs on the host only, where `cargo xtask setup` installs
    // both: a missing one is a failure, never a skip.
    for tool in ["prometheus", "promtool"] {
        let runs = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            runs,
            "{tool} does not run: install it with `cargo xtask setup`"
        );
    }
    let started = Instant::now();
    let ns = Netns::new("prom");
    let (server, port) = Peer::listen_in(&ns.name, HOST);
    let mut client = Peer::spawn_in(Some(&ns.name), &["connect", HOST, &port.to_string()]);
    let mut refused = Peer::spawn_in(Some(&ns.name), &["connect", HOST, "9"]);
    let csv = CsvFile::new();
    let pids: Vec<String> = [&server, &client, &refused]
        .iter()
        .map(|p| p.pid().to_string())
        .collect();
    let mut args = vec!["--prometheus", "127.0.0.1:0", "--csv", &csv.path];
    for pid in &pids {
        args.extend(["--pid", pid]);
    }
    let tracer = Tracer::start(&args);
    let target = metrics_addr(&tracer.stderr());
    let prometheus = Prometheus::start(&target);

    for _ in 0..5 {
        client.connect_once().expect("connect");
    }
    for _ in 0..3 {
        assert_eq!(refused.connect_once(), Err(libc::ECONNREFUSED));
    }
    // Every peer is python3 in no container: one label set, summed.
    let ok = r#"sum(tracer_connects_total{comm="python3",container="",result="ok"})"#;
    let seen = prometheus.wait_for(ok, 5.0, Duration::from_secs(30));
    assert_eq!(seen, Some(5.0), "prometheus log:\n{}", prometheus.log());
    // Nothing moves any more: one more scrape, then every number is final.
    thread::sleep(Duration::from_millis(2500));

    let body = curl(&format!("http://{target}/metrics")).expect("GET /metrics");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    std::io::Write::write_all(&mut promtool.stdin.take().expect("stdin"), body.as_bytes())
        .expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let query = |metric: &str, labels: &str| {
        let promql = format!(r#"sum({metric}{{comm="python3",container=""{labels}}})"#);
        (promql.clone(), prometheus.query(&promql))
    };
    let answers = [
        (
            "connect_ok",
            query("tracer_connects_total", r#",result="ok""#),
        ),
        (
            "connect_refused",
            query("tracer_connects_total", r#",result="refused""#),
        ),
        ("accepted", query("tracer_accepted_total", "")),
        (
            "retransmits",
            query("tracer_retransmits_total", r#",kind="data""#),
        ),
        ("listen", query("tracer_sockets", r#",state="listen""#)),
        ("fds_open", query("tracer_fds_open", "")),
    ];
    let handshakes = query("tracer_handshake_seconds_count", "");
    let up = prometheus.query(r#"up{job="tracer"}"#);
    let (status, _, stderr) = tracer.stop();
    assert!(status.success(), "{stderr}");

    // The CSV's last snapshot of each process, summed as the label set is.
    let last: Vec<_> = [&server, &client, &refused]
        .iter()
        .map(|p| csv.last_of(p.pid()))
        .collect();
    let csv_sum = |column: &str| last.iter().map(|r| num(r, column)).sum::<u64>() as f64;
    println!("prometheus up {up:?}; query → prometheus vs CSV:");
    for (column, (promql, value)) in &answers {
        println!("  {promql} → {value:?}; CSV {column} {}", csv_sum(column));
    }
    println!(
        "  {} → {:?}; CSV connect_ok {}",
        handshakes.0,
        handshakes.1,
        csv_sum("connect_ok")
    );
    assert_eq!(up, Some(1.0));
    for (column, (promql, value)) in &answers {
        if *column == "fds_open" {
            // A gauge of the moment: equal when sampled at the same time, so
            // only its presence is compared.
            assert!(value.is_some_and(|v| v > 0.0), "{promql}: {value:?}");
            continue;
        }
        assert_eq!(*value, Some(csv_sum(column)), "{promql} vs CSV {column}");
    }
    assert_eq!(handshakes.1, Some(csv_sum("connect_ok")));
    assert_eq!(csv_sum("connect_ok"), 5.0);
    assert_eq!(csv_sum("connect_refused"), 3.0);
    println!("prometheus test took {:?}", started.elapsed());
}
