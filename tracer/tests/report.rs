//! `tracer report` end to end: the binary writes reports from the fixtures
//! (a current and an old capture, an events file), headless Chromium opens
//! one and takes a screenshot, and bad input gets one clear line and exit 1.
//!
//! Host only: `cargo xtask test` leaves this suite out of the Debian 6.1 VM
//! (it tests no kernel, and the VM has no browser). Without Chromium the
//! browser test skips with a message, except under CI, where it fails
//! (`cargo xtask setup` installs Debian's `chromium`).

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
const PROCESSES: [&str; 3] = [
    "leaky-api (pid 2300)",
    "worker (pid 3400)",
    "curl-loop (pid 1201)",
];
/// The screenshot's size; a blank page of this size is a PNG of about 14 KB.
const WINDOW: (u32, u32) = (1100, 2600);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/report/fixtures")
        .join(name)
}

fn tracer(args: &[&str]) -> Output {
    Command::new(TRACER)
        .args(args)
        .output()
        .expect("run tracer")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes the report of `capture` (with the events fixture) into `dir`.
fn report(dir: &Path, capture: &str) -> (PathBuf, String) {
    let out = dir.join(format!("{capture}.html"));
    let o = tracer(&[
        "report",
        fixture(capture).to_str().expect("UTF-8 path"),
        "--events",
        fixture("events.jsonl").to_str().expect("UTF-8 path"),
        "-o",
        out.to_str().expect("UTF-8 path"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!("tracer: report written to {}", out.display())
    );
    let html = std::fs::read_to_string(&out).expect("the report");
    (out, html)
}

/// The `points` of every `<polyline>` in `html`.
fn polylines(html: &str) -> Vec<&str> {
    html.split("<polyline")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find("points=\"")? + "points=\"".len();
            let len = rest[start..].find('"')?;
            Some(&rest[start..start + len])
        })
        .collect()
}

/// Every process is named, and each has a chart whose lines have points.
fn check_charts(html: &str, capture: &str) {
    for name in PROCESSES {
        assert!(html.contains(name), "{capture}: {name} not named");
    }
    assert_eq!(html.matches("<svg").count(), PROCESSES.len(), "{capture}");
    let lines = polylines(html);
    assert!(
        lines.len() >= 2 * PROCESSES.len(),
        "{capture}: {} lines",
        lines.len()
    );
    let drawn = lines
        .iter()
        .filter(|points| points.split_whitespace().count() >= 2)
        .count();
    assert!(drawn >= PROCESSES.len(), "{capture}: {lines:?}");
}

#[test]
fn reports_of_a_current_and_an_old_capture() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for capture in ["current.csv", "old.csv"] {
        let (_, html) = report(dir.path(), capture);
        check_charts(&html, capture);
    }
}

#[test]
fn headless_chromium_draws_the_report() {
    let Some(chromium) = chromium() else {
        support::tool_missing("chromium");
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let (page, html) = report(dir.path(), "current.csv");
    check_charts(&html, "current.csv");
    let profile = tempfile::tempdir().expect("temporary directory");
    let shot = dir.path().join("report.png");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish the screenshot in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "chromium: {status}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!((size(16), size(20)), WINDOW);
    // Text, tables and charts: far more than a blank page compresses to.
    assert!(
        png.len() > 60_000,
        "a screenshot of {} bytes looks empty",
        png.len()
    );
}

/// Debian's `chromium`, or another name it goes by, in PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let o = tracer(&["report", empty.to_str().expect("UTF-8 path")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "tracer: error: {} is empty: a tracer capture starts with its header line (tracer --csv writes one)",
            empty.display()
        )
    );
    assert!(
        !dir.path().join("empty.html").exists(),
        "no report from bad input"
    );

    let not_csv = dir.path().join("notes.txt");
    std::fs::write(&not_csv, "hello\nworld\n").expect("write");
    let o = tracer(&["report", not_csv.to_str().expect("UTF-8 path")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is not a tracer CSV capture"),
        "{}",
        stderr(&o)
    );

    // A report that exists is kept without --force.
    let capture = dir.path().join("capture.csv");
    std::fs::copy(fixture("current.csv"), &capture).expect("copy");
    let existing = dir.path().join("capture.html");
    std::fs::write(&existing, "keep me").expect("write");
    let o = tracer(&["report", capture.to_str().expect("UTF-8 path")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&existing).expect("read"), "keep me");
    let o = tracer(&["report", capture.to_str().expect("UTF-8 path"), "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read_to_string(&existing)
            .expect("read")
            .starts_with("<!DOCTYPE html>")
    );

    // Bad usage is clap's exit 2.
    let o = tracer(&["report"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
