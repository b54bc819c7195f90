//! Bad input gets one clear line and the documented exit status, before
//! anything is loaded into the kernel.

mod support;

use std::process::{Command, Output};

use support::TRACER;

fn tracer(args: &[&str]) -> Output {
    Command::new(TRACER)
        .args(args)
        .output()
        .expect("run tracer")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn missing_pid_is_a_usage_error() {
    let out = tracer(&["--headless", "--pid", "4000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "tracer: error: no process with pid 4000000 (check the pid with `ps -p 4000000`)"
    );
}

#[test]
fn bad_duration_is_a_usage_error() {
    let out = tracer(&["--headless", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a duration"), "{}", stderr(&out));
}

#[test]
fn unwritable_events_path_fails_before_loading() {
    if !support::kernel_tests_enabled() {
        return;
    }
    let out = tracer(&[
        "--headless",
        "--events",
        "/proc/no/such/dir/x.jsonl",
        "--duration",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cannot open --events file /proc/no/such/dir/x.jsonl"),
        "{err}"
    );
    assert!(
        !err.contains("tracing"),
        "must fail before attaching: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn unusable_csv_paths_fail_before_loading() {
    if !support::kernel_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let foreign = dir.path().join("foreign.csv");
    std::fs::write(&foreign, "name,value\nx,1\n").expect("write");
    let foreign = foreign.to_string_lossy().into_owned();
    for (path, says) in [
        (
            "/proc/no/such/dir/out.csv",
            "cannot open --csv file /proc/no/such/dir/out.csv",
        ),
        (foreign.as_str(), "already holds other data"),
    ] {
        let out = tracer(&["--headless", "--csv", path, "--duration", "1s"]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = stderr(&out);
        assert!(err.contains(says), "{err}");
        assert!(
            !err.contains("tracing"),
            "must fail before attaching: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(&foreign).expect("read"),
        "name,value\nx,1\n",
        "a foreign file is left alone"
    );
}

#[test]
fn unwritable_summary_path_fails_before_loading() {
    if !support::kernel_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let directory = dir.path().to_string_lossy().into_owned();
    for path in ["/proc/no/such/dir/summary.json", directory.as_str()] {
        let out = tracer(&["--headless", "--summary-json", path, "--duration", "1s"]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "cannot open --summary-json file {path} for writing"
            )),
            "{err}"
        );
        assert!(
            !err.contains("tracing"),
            "must fail before attaching: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn without_privileges_it_says_what_is_missing() {
    if !support::kernel_tests_enabled() {
        return;
    }
    // Drop to an unprivileged user with no capabilities.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(TRACER)
        .args(["--headless", "--duration", "1s"])
        .output()
        .expect("run setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "tracer: error: tracer needs root or the capabilities CAP_BPF and CAP_PERFMON (missing: CAP_BPF, CAP_PERFMON); run it with sudo"
    );
}

/// `--hooks kprobe` on a kernel without kprobes (CONFIG_KPROBES unset) is one
/// line and exit status 1; where kprobes exist (the 6.1 VM) the plan runs.
#[test]
fn forced_kprobes_need_kprobes() {
    if !support::kernel_tests_enabled() {
        return;
    }
    let out = tracer(&["--headless", "--hooks", "kprobe", "--duration", "1s"]);
    let err = stderr(&out);
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(" via the kprobe plan "), "{err}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "tracer: error: --hooks kprobe cannot work here: this kernel has no kprobes \
         (CONFIG_KPROBES is not set); use --hooks auto or --hooks tracepoint"
    );
}

#[test]
fn tiny_owner_map_is_a_usage_error() {
    let out = tracer(&["--headless", "--owner-map-size", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("4 is not in 16.."),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_hook_kind_is_a_usage_error() {
    let out = tracer(&["--headless", "--hooks", "fentry"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("possible values: auto, raw-tracepoint, tracepoint, kprobe"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_teaches_the_flags() {
    let out = tracer(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--pid",
        "--headless",
        "--duration",
        "--events",
        "--csv",
        "--summary-json",
        "--interval",
        "--hooks",
        "doctor",
        "Exit status",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn the_live_view_refuses_a_pipe() {
    // Standard output is a pipe here: the live view cannot run.
    let out = tracer(&["--pid", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("needs a terminal"), "{err}");
    assert!(err.contains("--headless"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Durations, intervals and sizes out of range are usage errors (exit 2),
/// never a panic: each of these once panicked or loaded the programs first.
#[test]
fn out_of_range_values_are_usage_errors() {
    for (flag, value, says) in [
        ("--duration", "18446744073709551615", "is too long"),
        ("--interval", "99999999999999999999999", "is too long"),
        (
            "--interval",
            "0.000000001ms",
            "out of range: use 100ms to 1day",
        ),
        ("--ring-buffer-size", "5000", "must be a power of two"),
        ("--owner-map-size", "100000000", "not in 16..=4194304"),
    ] {
        let out = tracer(&["--headless", flag, value]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
        assert!(!err.contains("panicked"), "{flag} {value}: {err}");
    }
}

/// One file named by two outputs would interleave them: refused before
/// anything is loaded, whichever spelling of the path is used.
#[test]
fn an_output_path_given_twice_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let x = dir.path().join("x");
    let dotted = dir.path().join(".").join("x");
    let out = tracer(&[
        "--headless",
        "--csv",
        x.to_str().expect("utf-8 path"),
        "--events",
        dotted.to_str().expect("utf-8 path"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--events and --csv name the same file"),
        "{err}"
    );
    assert!(!x.exists(), "nothing is created");
}

/// Output files hold every traced process's name and addresses: new ones
/// are owner-only whatever the umask.
#[test]
fn new_output_files_are_owner_only() {
    if !support::kernel_tests_enabled() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
    let (csv, events, summary) = (path("a.csv"), path("e.jsonl"), path("s.json"));
    let script = format!(
        "umask 000; exec {TRACER} --headless --duration 1s --csv {csv} --events {events} --summary-json {summary}"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run tracer");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for file in [csv, events, summary] {
        let mode = std::fs::metadata(&file)
            .expect("created")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
}

#[test]
fn a_kernel_thread_is_a_usage_error() {
    // kthreadd is pid 2 on every Linux.
    let out = tracer(&["--headless", "--pid", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "tracer: error: pid 2 is the kernel thread `kthreadd`, which makes no TCP connections \
         of its own; trace the process that uses the network"
    );
}

/// A process that names itself with bytes that are not UTF-8 can be traced,
/// and tracer says once when every traced process has exited.
#[test]
fn odd_names_are_traced_and_exits_are_said() {
    if !support::kernel_tests_enabled() {
        return;
    }
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import ctypes, time; ctypes.CDLL(None).prctl(15, b'bad\\xffname', 0, 0, 0); time.sleep(1.5)",
        ])
        .spawn()
        .expect("start python3");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    let out = tracer(&[
        "--headless",
        "--pid",
        &pid,
        "--interval",
        "200ms",
        "--duration",
        "3s",
    ]);
    let _ = child.wait();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("tracing pid {pid} ")), "{err}");
    assert_eq!(
        err.matches(&format!("every traced process has exited (pid {pid})"))
            .count(),
        1,
        "{err}"
    );
}
