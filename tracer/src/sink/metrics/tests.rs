use std::{sync::Arc, time::Duration};

use super::{serve::respond, *};
use crate::fixtures;

fn exposition(snapshot: &Snapshot) -> Arc<Exposition> {
    Arc::new(Metrics::new(Duration::from_secs(5)).update(snapshot))
}

fn text(snapshot: &Snapshot) -> String {
    render(&exposition(snapshot), Format::Text)
}

/// The value of the sample written exactly as `sample` (name and labels).
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_fixed_snapshot_renders_every_metric() {
    let t = text(&fixtures::misbehaving());
    for m in METRICS {
        assert!(
            t.contains(&format!("# TYPE {} ", m.exposed()))
                || t.contains(&format!("# TYPE {} ", m.name)),
            "{} missing:\n{t}",
            m.name
        );
    }
    let billing = r#"comm="billing",container="9c1f0e4b7a2d""#;
    assert_eq!(
        value(
            &t,
            &format!("tracer_connects_total{{{billing},result=\"refused\"}}")
        ),
        Some(64.0)
    );
    assert_eq!(
        value(
            &t,
            &format!("tracer_resets_total{{{billing},direction=\"received\",phase=\"handshake\"}}")
        ),
        Some(0.0),
        "the fixture's counts carry no phases"
    );
    assert_eq!(
        value(
            &t,
            &format!(
                "tracer_syscall_errors_total{{{billing},syscall=\"connect\",errno=\"ECONNREFUSED\"}}"
            )
        ),
        Some(64.0)
    );
    assert_eq!(
        value(
            &t,
            r#"tracer_findings{comm="billing",container="9c1f0e4b7a2d",finding="connect_refused",severity="critical"}"#
        ),
        Some(1.0)
    );
    // fetcher is in a pod's containerd container; proxy a unit, in no container.
    assert_eq!(
        value(
            &t,
            r#"tracer_fds_open{comm="fetcher",container="e5f6a7b8c9d0"}"#
        ),
        Some(64.0)
    );
    assert_eq!(
        value(
            &t,
            r#"tracer_sockets{comm="proxy",container="",state="close_wait"}"#
        ),
        Some(37.0)
    );
    // An exited process keeps its counters but has no gauges.
    assert_eq!(
        value(
            &t,
            r#"tracer_connects_total{comm="cron-job",container="",result="ok"}"#
        ),
        Some(3.0)
    );
    assert!(!t.contains(r#"tracer_fds_open{comm="cron-job""#), "{t}");
    assert_eq!(value(&t, "tracer_events_dropped_total"), Some(1022.0));
    assert_eq!(value(&t, "tracer_events_unattributed_total"), Some(57.0));
    assert_eq!(value(&t, "tracer_sampling_period_seconds"), Some(5.0));
    assert!(!t.contains("pid="), "no pid label");
}

#[test]
fn the_handshake_histogram_is_cumulative_in_seconds() {
    let mut p = fixtures::process(1, "api");
    // log2 buckets from 64 µs: 2 at 64 µs, 3 at 256 µs, 1 at 1024 µs.
    p.handshake_us = fixtures::latency(&[2, 0, 3, 0, 1]);
    let t = text(&fixtures::snapshot(vec![p]));
    let bucket = |le: &str| {
        value(
            &t,
            &format!("tracer_handshake_seconds_bucket{{comm=\"api\",container=\"\",le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("6.4e-05"), Some(2.0), "{t}");
    assert_eq!(bucket("0.000256"), Some(5.0), "{t}");
    assert_eq!(bucket("0.001024"), Some(6.0));
    assert_eq!(bucket("+Inf"), Some(6.0));
    assert_eq!(
        value(
            &t,
            r#"tracer_handshake_seconds_count{comm="api",container=""}"#
        ),
        Some(6.0)
    );
    let sum = value(
        &t,
        r#"tracer_handshake_seconds_sum{comm="api",container=""}"#,
    )
    .unwrap();
    assert!(
        (sum - (2.0 * 64e-6 + 3.0 * 256e-6 + 1024e-6)).abs() < 1e-9,
        "{sum}"
    );
}

#[test]
fn same_command_and_container_are_summed() {
    let mut a = fixtures::process(10, "worker");
    let mut b = fixtures::process(11, "worker");
    let mut c = fixtures::process(12, "worker");
    a.counts.connect_ok = 2;
    b.counts.connect_ok = 3;
    c.counts.connect_ok = 100;
    c.cgroup = fixtures::cgroup(&format!("0::/docker/{}", "ab".repeat(32)));
    let t = text(&fixtures::snapshot(vec![a, b, c]));
    assert_eq!(
        value(
            &t,
            r#"tracer_connects_total{comm="worker",container="",result="ok"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &t,
            r#"tracer_connects_total{comm="worker",container="abababababab",result="ok"}"#
        ),
        Some(100.0)
    );
    assert_eq!(
        value(&t, r#"tracer_fds_open{comm="worker",container=""}"#),
        Some(24.0)
    );
    assert_eq!(
        value(&t, r#"tracer_fds_limit{comm="worker",container=""}"#),
        Some(2048.0)
    );
}

#[test]
fn counters_never_go_down_and_the_gone_age_out() {
    let mut metrics = Metrics::new(Duration::from_secs(5));
    let ok = |e: Exposition| {
        value(
            &render(&Arc::new(e), Format::Text),
            r#"tracer_connects_total{comm="worker",container="",result="ok"}"#,
        )
    };
    let mut a = fixtures::process(10, "worker");
    let mut b = fixtures::process(11, "worker");
    a.counts.connect_ok = 2;
    b.counts.connect_ok = 3;
    let mut s = fixtures::snapshot(vec![a.clone(), b.clone()]);
    assert_eq!(ok(metrics.update(&s)), Some(5.0));
    // b exits, then leaves the snapshots (the aggregator keeps a bounded number).
    b.exited = true;
    s = fixtures::snapshot(vec![a.clone(), b]);
    assert_eq!(ok(metrics.update(&s)), Some(5.0));
    s = fixtures::snapshot(vec![a.clone()]);
    assert_eq!(ok(metrics.update(&s)), Some(5.0), "kept while a runs");
    s.taken_at += AGE_OUT;
    assert_eq!(
        ok(metrics.update(&s)),
        Some(5.0),
        "b aged out into its set's total"
    );
    // a exits too: the set goes AGE_OUT later.
    a.exited = true;
    s = fixtures::snapshot(vec![a]);
    s.taken_at += AGE_OUT + Duration::from_secs(1);
    assert_eq!(ok(metrics.update(&s)), Some(5.0));
    s.taken_at += AGE_OUT;
    assert_eq!(ok(metrics.update(&s)), None, "aged out");
}

#[test]
fn openmetrics_when_asked() {
    let e = exposition(&fixtures::healthy());
    let om = render(&e, Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE tracer_connects counter"), "{om}");
    assert_eq!(
        Format::negotiate(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        ),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate("*/*"), Format::Text);
}

#[test]
fn http_answers() {
    let e = exposition(&fixtures::healthy());
    let get = |head: &str| String::from_utf8(respond(head, &e)).unwrap();
    let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.contains("Content-Type: text/plain; version=0.0.4"),
        "{ok}"
    );
    let body = ok.split_once("\r\n\r\n").unwrap().1;
    assert!(ok.contains(&format!("Content-Length: {}\r\n", body.len())));
    assert!(body.contains("tracer_events_read_total"));
    let om = get(
        "GET /metrics?x=1 HTTP/1.1\r\naccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert!(
        om.contains("Content-Type: application/openmetrics-text"),
        "{om}"
    );
    let head = get("HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head.ends_with("\r\n\r\n"), "{head}");
    assert!(get("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(get("").starts_with("HTTP/1.1 405"));
}

/// The metric names README's "Prometheus metrics" table gives, in order:
/// the first `name` in backticks of each row.
#[test]
fn readme_lists_every_metric_in_order() {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n### Prometheus metrics\n")
        .nth(1)
        .expect("README has a Prometheus metrics section");
    let section = section.split("\n#").next().unwrap_or_default();
    let documented: Vec<(String, String)> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[3].to_owned())
        })
        .collect();
    let expected: Vec<(String, String)> = METRICS
        .iter()
        .map(|m| {
            let labels: Vec<String> = m.labels.iter().map(|l| format!("`{l}`")).collect();
            (m.exposed(), labels.join(", "))
        })
        .collect();
    assert_eq!(documented, expected);
}
