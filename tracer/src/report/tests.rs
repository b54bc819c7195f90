use std::path::PathBuf;

use super::{
    capture::{self, CaptureError},
    events,
    metrics::Metric,
    series::{Collector, MAX_POINTS, Source},
    summary::{Summary, increase},
    *,
};
use crate::findings::{Kind, Severity};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/report/fixtures")
        .join(name)
}

fn summarize(path: &Path) -> Result<(capture::Facts, Summary), CaptureError> {
    let mut summary = Summary::default();
    let facts = capture::scan(path, |row| summary.observe(row))?;
    Ok((facts, summary))
}

/// A file in a fresh temporary directory holding `text`.
fn file(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.csv");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn args(capture: PathBuf) -> ReportArgs {
    ReportArgs {
        capture,
        output: None,
        force: false,
        events: None,
        top: 12,
    }
}

#[test]
fn the_current_fixture_is_in_the_current_format() {
    let text = std::fs::read_to_string(fixture("current.csv")).unwrap();
    assert_eq!(text.lines().next(), Some(crate::sink::csv::header()));
}

#[test]
fn a_current_capture_is_ranked_by_trouble() {
    let (facts, summary) = summarize(&fixture("current.csv")).unwrap();
    assert_eq!(facts.rows, 33);
    assert_eq!((facts.skipped, facts.truncated_last_line), (0, false));
    assert!(
        facts.missing.is_empty() && facts.unknown.is_empty(),
        "{facts:?}"
    );
    assert_eq!(summary.interval(), Some(5));
    let ranked: Vec<&str> = summary.ranked().iter().map(|p| p.comm.as_str()).collect();
    // The CLOSE_WAIT leak is a critical finding; the refused worker has
    // more trouble events than the healthy client.
    assert_eq!(ranked, ["leaky-api", "worker", "curl-loop"]);
    let worker = summary.ranked()[1];
    assert!(worker.exited);
    assert_eq!(worker.total(Metric::ConnectRefused), Some(27));
    assert_eq!(worker.total(Metric::FdsOpen), Some(7));
}

#[test]
fn findings_are_followed_from_row_to_row() {
    let (_, summary) = summarize(&fixture("current.csv")).unwrap();
    let leaky = summary.ranked()[0];
    let close_wait: Vec<_> = leaky
        .episodes
        .iter()
        .filter(|e| e.kind == Kind::CloseWaitLeak)
        .collect();
    assert_eq!(close_wait.len(), 1, "{:?}", leaky.episodes);
    let e = close_wait[0];
    let t0 = capture::seconds("2024-03-14T14:00:00Z").unwrap();
    // One socket 5 s old at 14:00:20 is not yet a leak; 30 s old (14:00:45)
    // or 10 sockets (14:00:30) are.
    assert_eq!(e.start - t0, 30);
    assert_eq!(e.end - t0, 55);
    assert!(e.open);
    assert_eq!(e.severity, Severity::Critical);
    assert!(
        e.evidence.contains("32 sockets in CLOSE_WAIT"),
        "{}",
        e.evidence
    );
}

#[test]
fn an_old_capture_with_fewer_columns_is_read() {
    let (facts, summary) = summarize(&fixture("old.csv")).unwrap();
    assert_eq!(facts.rows, 33);
    assert!(facts.missing.contains(&"start_time"), "{:?}", facts.missing);
    assert!(facts.missing.contains(&"connect_abandoned"));
    assert_eq!(summary.processes.len(), 3);
    let worker = summary
        .processes
        .iter()
        .find(|p| p.comm == "worker")
        .unwrap();
    assert_eq!(worker.total(Metric::ConnectAbandoned), None);
    assert_eq!(worker.key.start, None);
}

#[test]
fn unknown_columns_are_ignored_and_columns_found_by_name() {
    let text = "comm,future_column,timestamp,pid,retransmits\n\
                a,x,2024-01-01T00:00:00Z,7,3\n\
                a,y,2024-01-01T00:00:10Z,7,5\n";
    let (_dir, path) = file(text.as_bytes());
    let (facts, summary) = summarize(&path).unwrap();
    assert_eq!(facts.unknown, ["future_column"]);
    assert_eq!(summary.processes[0].total(Metric::Retransmits), Some(5));
    assert_eq!(summary.processes[0].total(Metric::Connects), None);
}

#[test]
fn counters_that_go_down_start_again() {
    assert_eq!(increase(None, 5), 5);
    assert_eq!(increase(Some(5), 8), 3);
    assert_eq!(increase(Some(8), 2), 2);
}

#[test]
fn bad_input_is_a_clear_error() {
    let (_dir, path) = file(b"");
    let err = summarize(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "is empty: a tracer capture starts with its header line (tracer --csv writes one)"
        ),
        "{err}"
    );

    let (_dir, path) = file(b"name,age\nbob,3\n");
    let err = summarize(&path).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "is not a tracer CSV capture: its header has no timestamp, pid, comm column \
             (tracer --csv writes timestamp, pid, comm, … first)"
        ),
        "{err}"
    );

    let (_dir, path) = file(b"\x7fELF\x02\x01\x01\x00\x00\x00binary");
    let err = summarize(&path).unwrap_err().to_string();
    assert!(err.ends_with("its first line is not text"), "{err}");

    let (_dir, path) = file(&vec![b'x'; 100_000]);
    let err = summarize(&path).unwrap_err().to_string();
    assert!(err.contains("longer than 65536 bytes"), "{err}");

    let header = format!("{}\n", crate::sink::csv::header());
    let (_dir, path) = file(header.as_bytes());
    let err = summarize(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("has tracer's header but no complete row: nothing to report"),
        "{err}"
    );

    let missing = PathBuf::from("/nonexistent/capture.csv");
    let err = summarize(&missing).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot read the capture /nonexistent/capture.csv: "),
        "{err}"
    );
}

#[test]
fn a_truncated_last_line_and_bad_rows_are_left_out() {
    let mut text = std::fs::read(fixture("current.csv")).unwrap();
    // A bad row in the middle, a repeated header, a row cut short.
    text.extend_from_slice(b"2024-03-14T14:01:00Z,99,x,lots\n");
    text.extend_from_slice(format!("{}\n", crate::sink::csv::header()).as_bytes());
    text.extend_from_slice(b"2024-03-14T14:01:00Z,99,x,\xff\xfe\n");
    let mut bad_number = crate::sink::csv::header().replace(|c: char| c != ',', "");
    bad_number.insert_str(0, "2024-03-14T14:01:00Z,99,x,lots");
    text.extend_from_slice(format!("{bad_number}\n").as_bytes());
    text.extend_from_slice(b"2024-03-14T14:01:05Z,1201,curl-loop,12");
    let (_dir, path) = file(&text);
    let (facts, summary) = summarize(&path).unwrap();
    assert_eq!(facts.rows, 33);
    assert_eq!(facts.skipped, 3);
    assert_eq!(facts.repeated_headers, 1);
    assert!(facts.truncated_last_line);
    assert_eq!(
        facts.first_skipped.as_deref(),
        Some(
            format!(
                "line 35: it has 4 fields where the header has {}",
                crate::sink::csv::header().split(',').count()
            )
            .as_str()
        )
    );
    assert_eq!(summary.processes.len(), 3);
}

#[test]
fn series_have_a_bounded_number_of_points() {
    let mut text = String::from("timestamp,pid,comm,connects,close_wait\n");
    for i in 0..20_000u64 {
        let t = humantime::format_rfc3339_seconds(capture::time(1_700_000_000 + i as i64));
        text += &format!("{t},1,a,{},{}\n", i * 2, i % 7);
    }
    let (_dir, path) = file(text.as_bytes());
    let (_, summary) = summarize(&path).unwrap();
    let key = summary.processes[0].key;
    let mut collector = Collector::new([key], summary.first.unwrap(), summary.last.unwrap(), 1);
    capture::scan(&path, |row| collector.observe(row)).unwrap();
    let series = collector.series(&key).unwrap();
    let rates = series.points(Source::Rate(&[Metric::Connects]));
    assert!(
        rates.len() <= MAX_POINTS && rates.len() >= MAX_POINTS - 1,
        "{}",
        rates.len()
    );
    assert!(
        rates.iter().all(|&(_, r)| (r - 2.0).abs() < 1e-9),
        "{rates:?}"
    );
    let peaks = series.points(Source::Peak(Metric::CloseWait));
    assert!(peaks.iter().all(|&(_, p)| p == 6.0));
}

#[test]
fn events_give_remotes_findings_and_counts() {
    let e = events::read(&fixture("events.jsonl")).unwrap();
    assert_eq!(e.lines, 27);
    // The run's own facts, from its start line.
    let start = e.start.as_ref().unwrap();
    assert_eq!(start[0], ("host", "web-1".to_owned()));
    assert_eq!(start[1], ("kernel", "6.18.44".to_owned()));
    assert_eq!(start[4], ("interval (ms)", "1000".to_owned()));
    assert_eq!(e.unattributed_events, 1);
    let stats = e.stats.as_ref().unwrap();
    assert!(stats.contains(&("dropped", 2)) && stats.contains(&("unattributed", 1)));
    let findings = e.findings();
    let refused = findings
        .iter()
        .find(|f| f.kind == Kind::NothingListening)
        .unwrap();
    assert_eq!(
        refused.headline,
        "connects to 10.0.0.9:5432 are refused: nothing listening there"
    );
    assert_eq!(refused.severity, Severity::Critical);
    assert!(
        findings
            .iter()
            .any(|f| f.kind == Kind::PacketLoss && f.pid == 2300)
    );
    let remotes = e.remotes();
    assert_eq!(
        remotes[0].pid, 2300,
        "retransmits to one peer, grouped by address"
    );
    assert_eq!(remotes[0].stats.snapshot.counts.retransmits, 12);
}

#[test]
fn events_files_that_are_not_are_refused() {
    let (_dir, path) = file(b"");
    let err = events::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("is not a tracer --events file: it is empty"),
        "{err}"
    );
    let (_dir, path) = file(b"hello\n{\"a\":1}\n");
    let err = events::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("no line is an event (line 1: not JSON"),
        "{err}"
    );
    // A truncated last line is skipped.
    let mut text = std::fs::read(fixture("events.jsonl")).unwrap();
    text.extend_from_slice(b"{\"ts_ns\":1,\"event\":\"conn");
    let (_dir, path) = file(&text);
    let e = events::read(&path).unwrap();
    assert_eq!((e.lines, e.skipped), (27, 1));
}

#[test]
fn the_page_names_every_process_and_draws_their_charts() {
    for name in ["current.csv", "old.csv"] {
        let mut a = args(fixture(name));
        a.events = Some(fixture("events.jsonl"));
        let html = build(&a).unwrap();
        for comm in [
            "leaky-api (pid 2300)",
            "worker (pid 3400)",
            "curl-loop (pid 1201)",
        ] {
            assert!(html.contains(comm), "{name}: {comm}");
        }
        assert_eq!(html.matches("<svg").count(), 3, "{name}");
        assert!(html.contains("<polyline"), "{name}");
        assert!(html.contains("nothing listening there"), "{name}");
        assert!(!html.contains("<script"), "{name}");
        let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for fetch in ["http:", "https:", "<link", "<img", "url("] {
            assert!(!without_namespace.contains(fetch), "{name}: {fetch}");
        }
    }
}

#[test]
fn the_output_path() {
    assert_eq!(
        default_output(Path::new("a/x.csv")),
        PathBuf::from("a/x.html")
    );
    assert_eq!(default_output(Path::new("x.CSV")), PathBuf::from("x.html"));
    assert_eq!(
        default_output(Path::new("capture")),
        PathBuf::from("capture.html")
    );
    let (dir, path) = file(b"x");
    let mut a = args(path.clone());
    a.output = Some(dir.path().join(".").join("capture.csv"));
    assert!(matches!(output(&a), Err(ReportError::SameAsCapture { .. })));
    a.output = None;
    std::fs::write(dir.path().join("capture.html"), "old").unwrap();
    let err = output(&a).err().unwrap().to_string();
    assert!(
        err.ends_with(
            "capture.html already exists; give another path with -o, or --force to replace it"
        ),
        "{err}"
    );
    a.force = true;
    assert!(output(&a).is_ok());
}

#[test]
fn writing_refuses_to_replace_without_force_and_replaces_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    write(&path, false, b"one").unwrap();
    assert!(matches!(
        write(&path, false, b"two"),
        Err(ReportError::Exists { .. })
    ));
    write(&path, true, b"three").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "three");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn a_capture_of_very_many_processes_keeps_the_troubled_ones() {
    let mut text = String::from("timestamp,pid,comm,retransmits\n");
    text += "2024-01-01T00:00:00Z,1,troubled,500\n";
    for pid in 2..25_000 {
        text += &format!("2024-01-01T00:00:01Z,{pid},quiet,0\n");
    }
    let (_dir, path) = file(text.as_bytes());
    let (facts, summary) = summarize(&path).unwrap();
    assert_eq!(facts.rows, 24_999);
    assert!(summary.forgotten > 0 && summary.processes.len() <= 20_000);
    assert_eq!(summary.ranked()[0].comm, "troubled");
}
