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
    use std::{
        io::{BufRead as _, BufReader},
        process::Stdio,
        time::{Duration, Instant},
    };
    // Renames itself, says so, and exits when its stdin closes.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import ctypes, sys; ctypes.CDLL(None).prctl(15, b'bad\\xffname', 0, 0, 0); \
             print('named', flush=True); sys.stdin.read()",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut named = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut named)
        .expect("python3 renamed itself");
    let pid = child.id().to_string();
    let mut tracer = Command::new(TRACER)
        .args(["--headless", "--pid", &pid, "--interval", "200ms"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tracer");
    let mut err = BufReader::new(tracer.stderr.take().expect("stderr"));
    let mut lines = Vec::new();
    let mut line = String::new();
    err.read_line(&mut line).expect("start-up line");
    assert!(line.contains(&format!("tracing pid {pid} ")), "{line}");
    lines.push(std::mem::take(&mut line));
    // The process exits (and is reaped): tracer says so once, and goes on.
    drop(child.stdin.take());
    child.wait().expect("python3 exits");
    let gone = format!("every traced process has exited (pid {pid})");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l| l.contains(&gone)) && Instant::now() < deadline {
        if err.read_line(&mut line).expect("stderr") == 0 {
            break;
        }
        lines.push(std::mem::take(&mut line));
    }
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGTERM) };
    let status = tracer.wait().expect("tracer exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("stderr");
    let all = lines.concat() + &rest;
    assert_eq!(status.code(), Some(0), "{all}");
    assert_eq!(all.matches(&gone).count(), 1, "{all}");
}

/// A reader of `--events` that stops reading (`tracer --events - | sleep`)
/// must not stop tracer: SIGTERM still ends it promptly, with the summary
/// line, and the lines it could not write are counted.
#[test]
fn a_stalled_events_reader_stops_nothing() {
    if !support::kernel_tests_enabled() {
        return;
    }
    use std::{
        process::Stdio,
        time::{Duration, Instant},
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("summary.json");
    // stdout is a pipe that is never read.
    let mut child = Command::new(TRACER)
        .args(["--headless", "--events", "-", "--summary-json"])
        .arg(&summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tracer");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("start-up line");
    assert!(line.contains("tracing all processes"), "{line}");
    // Enough events to fill the pipe many times over.
    let (listener, port) = support::Peer::listen("127.0.0.1");
    let mut client = support::Peer::client("127.0.0.1", port);
    for _ in 0..600 {
        client.connect_once().expect("connects");
    }
    let asked = Instant::now();
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tracer") {
            break status;
        }
        if asked.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tracer ignored SIGTERM for 20 s behind a stalled --events reader");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = asked.elapsed();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("stderr");
    drop((listener, client));
    assert!(status.success(), "{status:?}: {rest}");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    assert!(rest.contains(" events read; kernel: "), "{rest}");
    assert!(rest.contains("--events lines not written"), "{rest}");
    let text = std::fs::read_to_string(&summary).expect("summary written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let unwritten = v["events_unwritten"].as_u64().expect("events_unwritten");
    println!("stalled reader: exit {took:?} after SIGTERM, {unwritten} lines not written");
    assert!(unwritten > 0, "{text}");
    // The first sample and the last, at least.
    assert!(v["samples"].as_u64().is_some_and(|n| n >= 2), "{text}");
}

/// Least privilege: as an unprivileged user with only CAP_BPF, CAP_PERFMON,
/// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (ambient, via setpriv), tracer
/// traces a root process fully (its events and its descriptors), and once
/// attached keeps only CAP_BPF, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, with
/// no_new_privs set.
#[test]
fn runs_with_only_the_capabilities_it_needs() {
    if !support::kernel_tests_enabled() {
        return;
    }
    use std::{
        io::{BufRead as _, BufReader},
        os::unix::fs::PermissionsExt as _,
        process::Stdio,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let csv = dir.path().join("out.csv");
    let (server, port) = support::Peer::listen("127.0.0.1");
    let mut client = support::Peer::client("127.0.0.1", port);
    let caps = "+bpf,+perfmon,+sys_ptrace,+dac_read_search";
    let mut tracer = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps=-all,{caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(format!("--bounding-set=-all,{caps}"))
        .args([TRACER, "--headless", "--pid"])
        .arg(client.pid().to_string())
        .arg("--csv")
        .arg(&csv)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv (util-linux)");
    let mut err = BufReader::new(tracer.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("start-up line");
    // Debian's kernels (the 6.1 VM) default to a perf_event_paranoid of 3,
    // under which only CAP_SYS_ADMIN may open tracepoints: tracer says so.
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .is_ok_and(|level| level.trim().parse::<i32>().is_ok_and(|l| l >= 3));
    if paranoid {
        let exit = tracer.wait().expect("tracer exits");
        assert_eq!(exit.code(), Some(1), "{line}");
        assert!(
            line.contains("kernel.perf_event_paranoid is 3") && line.contains("CAP_SYS_ADMIN"),
            "{line}"
        );
        return;
    }
    assert!(line.contains("tracing pid"), "{line}");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", tracer.id())).expect("tracer's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    // Each thread's own: the one that opens sock_diag sockets in other
    // network namespaces keeps at most CAP_SYS_ADMIN (21, not given here)
    // and CAP_SYS_PTRACE (19); no other keeps more than the main thread.
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", tracer.id())).expect("tasks") {
        let status =
            std::fs::read_to_string(task.expect("task").path().join("status")).unwrap_or_default();
        let get = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let caps = u64::from_str_radix(&get("CapEff:"), 16).expect("CapEff");
        threads.push((get("Name:"), caps));
    }
    for (name, caps) in &threads {
        if name == "netns-opener" {
            assert_eq!(*caps, 1 << 19, "{threads:x?}");
        } else {
            assert_eq!(caps & !0x0000_0080_0008_0004, 0, "{threads:x?}");
        }
    }
    assert!(
        threads.iter().any(|(name, _)| name == "netns-opener"),
        "{threads:x?}"
    );
    for _ in 0..3 {
        client.connect_once().expect("connects");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let exit = tracer.wait().expect("tracer exits");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("stderr");
    drop(server);
    assert!(exit.success(), "{line}{rest}");
    // CAP_BPF (39), CAP_SYS_PTRACE (19), CAP_DAC_READ_SEARCH (2), nothing else.
    assert_eq!(field("CapEff:"), "0000008000080004", "{status}");
    assert_eq!(field("NoNewPrivs:"), "1", "{status}");
    let text = std::fs::read_to_string(&csv).expect("CSV written");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let row: Vec<&str> = text.lines().last().expect("a row").split(',').collect();
    let cell = |name: &str| row[header.iter().position(|h| *h == name).expect("column")];
    assert_eq!(cell("pid"), client.pid().to_string(), "{text}");
    assert_eq!(cell("connect_ok"), "3", "{text}");
    // Its descriptors were read, though it is root's and tracer is not.
    assert!(
        cell("fds_open").parse::<u64>().is_ok_and(|n| n > 0),
        "{text}"
    );
}
