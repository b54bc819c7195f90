//! Shared pieces of the kernel tests: running the real tracer binary, peers in
//! their own processes, and the rule that a kernel test that cannot run fails
//! under CI.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const TRACER: &str = env!("CARGO_BIN_EXE_tracer");
const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/peer.py");

/// Whether kernel tests can run here. Under CI (`CI=true`) they must: a missing
/// privilege fails the test instead of skipping it.
pub fn kernel_tests_enabled() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    assert!(
        !in_ci(),
        "kernel tests need root; under CI they must run, not skip"
    );
    eprintln!("skipping kernel test: not root (run the tests with sudo)");
    false
}

/// The hook plan the kernel tests force (`--hooks`), from `TRACER_TEST_HOOKS`
/// (`raw-tracepoint`, `tracepoint` or `kprobe`); unset or empty leaves
/// tracer's default (auto).
pub fn test_hooks() -> Option<String> {
    std::env::var("TRACER_TEST_HOOKS")
        .ok()
        .filter(|hooks| !hooks.is_empty())
}

/// A running `tracer --headless --events -`.
pub struct Tracer {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
    started: String,
}

impl Tracer {
    /// Starts tracer with `args` and waits until it reports that it is tracing.
    /// With `TRACER_TEST_HOOKS` set, forces that hook plan and checks that
    /// tracer says it uses it.
    pub fn start(args: &[&str]) -> Self {
        let hooks = test_hooks();
        let mut child = Command::new(TRACER)
            .args(["--headless", "--events", "-", "--interval", "1s"])
            .args(hooks.iter().flat_map(|h| ["--hooks", h.as_str()]))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tracer");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&events);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("tracer printed a non-JSON line {line:?}: {e}"));
                sink.lock().expect("lock").push(value);
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let text = Arc::clone(&stderr_text);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("tracer: tracing ") {
                    let _ = ready_tx.send(line.clone());
                }
                let mut t = text.lock().expect("lock");
                t.push_str(&line);
                t.push('\n');
            }
        });
        let mut tracer = Self {
            child,
            events,
            stderr: stderr_text,
            reader: Some(reader),
            started: String::new(),
        };
        // Generous: under emulation on a busy host, loading and attaching
        // (kprobes especially) has taken over 30 s.
        let Ok(ready) = ready_rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = tracer.child.kill();
            let _ = tracer.child.wait();
            panic!("tracer did not start tracing; stderr:\n{}", tracer.stderr());
        };
        if let Some(hooks) = hooks {
            assert!(
                ready.contains(&format!(" via the {hooks} plan ")),
                "--hooks {hooks} not in effect: {ready}"
            );
        }
        // The syscalls:* tracepoints slow every process on the host: only
        // ever attached when asked for.
        if !args.windows(2).any(|w| w == ["--syscall-errors", "on"]) {
            assert!(
                !ready.contains("syscall errors from tracepoints"),
                "taxing syscall tracepoints attached by default: {ready}"
            );
        }
        tracer.started = ready;
        tracer
    }

    /// The line tracer printed when it started tracing (the plan in use).
    pub fn started(&self) -> &str {
        &self.started
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// The nice value of each of tracer's threads, the main thread first.
    pub fn thread_nice(&self) -> Vec<(u32, i32)> {
        let pid = self.child.id();
        let mut tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tracer's threads")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        tids.sort_by_key(|&t| (t != pid, t));
        tids.into_iter()
            .filter_map(|tid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
                // Fields after the command name (which may hold spaces):
                // state is field 3, nice field 19.
                let rest = &stat[stat.rfind(')')? + 2..];
                Some((tid, rest.split(' ').nth(16)?.parse().ok()?))
            })
            .collect()
    }

    /// Events so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    /// Waits until `pred` holds for the events so far, or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if pred(&self.events()) {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        pred(&self.events())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops tracer with SIGINT; returns its exit status and every event it wrote.
    pub fn stop(self) -> (ExitStatus, Vec<Value>, String) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.wait(Duration::from_secs(30))
    }

    /// Waits for tracer to stop on its own (`--duration`), killing it after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> (ExitStatus, Vec<Value>, String) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let status = self.child.wait().expect("wait tracer");
            panic!(
                "tracer did not stop within {timeout:?} ({status}); stderr:\n{}",
                self.stderr()
            );
        }
        let status = self.child.wait().expect("wait tracer");
        if let Some(r) = self.reader.take() {
            r.join().expect("reader thread");
        }
        let stderr = self.stderr();
        (status, self.events(), stderr)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer process from `peer.py`.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Self {
        Self::spawn_in(None, args)
    }

    /// A peer inside network namespace `netns` (when given).
    pub fn spawn_in(netns: Option<&str>, args: &[&str]) -> Self {
        let mut cmd = match netns {
            // `ip netns exec` execs in place: the peer keeps this pid.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3"]);
                c
            }
            None => Command::new("python3"),
        };
        let mut child = cmd
            .arg(PEER)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3 peer (is python3 installed?)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// A listener on `host`; returns it and its port.
    pub fn listen(host: &str) -> (Self, u16) {
        let mut p = Self::spawn(&["listen", host]);
        let port = p.line().parse().expect("listener port");
        (p, port)
    }

    /// A client that connects to `host:port` each time `connect_once` is called.
    pub fn client(host: &str, port: u16) -> Self {
        Self::spawn(&["connect", host, &port.to_string()])
    }

    /// A listener inside `netns`.
    pub fn listen_in(netns: &str, host: &str) -> (Self, u16) {
        Self::listen_in_mode(netns, host, "drain")
    }

    /// A listener inside `netns` that never closes what it accepts.
    pub fn leaking_listener_in(netns: &str, host: &str) -> (Self, u16) {
        Self::listen_in_mode(netns, host, "leak")
    }

    /// A listener inside `netns` with a backlog of 1 that never accepts.
    pub fn stuck_listener_in(netns: &str, host: &str) -> (Self, u16) {
        Self::listen_in_mode(netns, host, "stuck")
    }

    fn listen_in_mode(netns: &str, host: &str, mode: &str) -> (Self, u16) {
        let mut p = Self::spawn_in(Some(netns), &["listen", host, mode]);
        let port = p.line().parse().expect("listener port");
        (p, port)
    }

    /// Sends one line to the peer and reads its one-line answer.
    pub fn ask(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to peer");
        stdin.flush().expect("flush peer");
        self.line()
    }

    /// Reads one line the peer prints on its own.
    pub fn read_line(&mut self) -> String {
        self.line()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the peer's stdin and waits for it to exit.
    pub fn finish(mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }

    /// Connects once; returns the local port used, or the errno on failure.
    pub fn connect_once(&mut self) -> Result<u16, i32> {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "go").expect("write to peer");
        stdin.flush().expect("flush peer");
        let line = self.line();
        match line.strip_prefix("error ") {
            Some(errno) => Err(errno.parse().expect("errno")),
            None => Ok(line.parse().expect("local port")),
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from peer");
        line.trim().to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin.take();
        end_child(&mut self.child);
    }
}

/// Waits up to 5 s for a child told to end (its stdin closed), then kills it.
pub fn end_child(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The `(old_state, new_state)` pairs of the state events matching `pred`, in order.
pub fn transitions(events: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "state" && pred(e))
        .map(|e| {
            (
                e["old_state"].as_str().unwrap_or("?").to_owned(),
                e["new_state"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// A private network namespace with loopback up, removed on drop. Faults
/// injected there (nft rules, sysctls) and its counters (`nstat`) touch
/// nothing else on the machine.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = format!("tracer-{tag}-{}", std::process::id());
        // A namespace left by an earlier, interrupted run.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ns = Self { name };
        ns.run(&["ip", "netns", "add", &ns.name]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("run command");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command inside the namespace; panics if it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        self.run(&full)
    }

    /// How many sockets `ss` lists in `state` (e.g. `close-wait`), optionally
    /// only those of process `pid`.
    pub fn ss_count(&self, state: &str, pid: Option<u32>) -> usize {
        let out = self.exec(&["ss", "-tanpH", "state", state]);
        out.lines()
            .filter(|l| pid.is_none_or(|p| l.contains(&format!("pid={p},"))))
            .count()
    }

    /// The namespace's SNMP/netstat counters (`nstat -asz`), by name.
    pub fn counters(&self) -> std::collections::HashMap<String, u64> {
        self.exec(&["nstat", "-asz"])
            .lines()
            .filter_map(|l| {
                let mut cols = l.split_whitespace();
                let name = cols.next()?;
                let value = cols.next()?.parse().ok()?;
                Some((name.to_owned(), value))
            })
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// `after[name] - before[name]`.
pub fn delta(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
    name: &str,
) -> u64 {
    let get = |m: &std::collections::HashMap<String, u64>| m.get(name).copied().unwrap_or(0);
    get(after).saturating_sub(get(before))
}

pub fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

/// A `--csv` file in a private temporary directory, read back after a run.
pub struct CsvFile {
    _dir: tempfile::TempDir,
    pub path: String,
}

/// One CSV row: column name → cell.
pub type Row = std::collections::HashMap<String, String>;

impl CsvFile {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("out.csv").to_string_lossy().into_owned();
        Self { _dir: dir, path }
    }

    /// `--csv PATH`, to pass to [`Tracer::start`].
    pub fn args(&self) -> [&str; 2] {
        ["--csv", &self.path]
    }

    /// Every row, checking that the file has exactly one header line.
    pub fn rows(&self) -> Vec<Row> {
        let text = std::fs::read_to_string(&self.path).expect("read the CSV file");
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().expect("header line").split(',').collect();
        assert_eq!(header[0], "timestamp");
        lines
            .map(|line| {
                assert!(!line.starts_with("timestamp,"), "header repeated");
                let cells: Vec<&str> = line.split(',').collect();
                assert_eq!(cells.len(), header.len(), "row {line:?}");
                header
                    .iter()
                    .zip(cells)
                    .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                    .collect()
            })
            .collect()
    }

    /// The rows of process `pid`, oldest first.
    pub fn rows_of(&self, pid: u32) -> Vec<Row> {
        let pid = pid.to_string();
        self.rows()
            .into_iter()
            .filter(|r| r["pid"] == pid)
            .collect()
    }

    /// The last row of process `pid`.
    pub fn last_of(&self, pid: u32) -> Row {
        self.rows_of(pid)
            .pop()
            .unwrap_or_else(|| panic!("no CSV row for pid {pid} in {}", self.path))
    }
}

/// A numeric CSV cell.
pub fn num(row: &Row, column: &str) -> u64 {
    row.get(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} is not a number", row[column]))
}

/// Whether `tool` runs here (`tool -V`). Under CI it must: a missing tool
/// fails the test instead of skipping it.
pub fn tool_available(tool: &str) -> bool {
    tool_available_as(tool, "-V")
}

/// Whether `tool` runs here, asked with `tool ARG` (e.g. `go version`);
/// as [`tool_available`].
pub fn tool_available_as(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        tool_missing(tool);
    }
    ok
}

/// Says that `tool` is missing, so the test is skipped; under CI
/// (`CI=true`) the test fails instead: there it must run.
pub fn tool_missing(tool: &str) {
    assert!(
        !in_ci(),
        "{tool} is not installed (cargo xtask setup installs it); under CI this test must run, not skip"
    );
    eprintln!("skipping: {tool} is not installed (cargo xtask setup installs it)");
}

/// The Go program in `tests/go/NAME`, built once (`go build`, standard
/// library only, no module downloads) and kept in the test's target
/// directory; where that cannot be written (the VM's read-only view of the
/// host), one built by an earlier run there, else a fresh build in a
/// temporary directory. `None` when Go is not installed.
pub fn go_program(name: &str) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/go")
        .join(name);
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // The newest of its files: a build older than that is stale.
    let written = std::fs::read_dir(&source)
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()))
        .filter_map(|e| modified(&e.ok()?.path()))
        .max();
    if let (Some(built), Some(written)) = (modified(&kept), written)
        && built >= written
    {
        return Some(kept);
    }
    if !tool_available_as("go", "version") {
        return None;
    }
    let probe = kept.with_extension("probe");
    let writable = std::fs::create_dir_all(kept.parent()?).is_ok()
        && std::fs::File::create(&probe).is_ok()
        && std::fs::remove_file(&probe).is_ok();
    let out = if writable {
        kept
    } else {
        std::env::temp_dir().join(format!("tracer-{name}-{}", std::process::id()))
    };
    let cache = std::env::temp_dir().join("tracer-go-cache");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        .env("GOCACHE", &cache)
        .env("GOPATH", cache.join("path"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("run go build");
    assert!(status.success(), "go build of {} failed", source.display());
    Some(out)
}

/// Whether the tests run under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A detached tmux session on a private server, so the test drives a real
/// terminal: it reads the screen and types keys. Killed on drop.
pub struct Tmux {
    socket: String,
    target: String,
}

impl Tmux {
    /// Runs `sh -c script` in a `width`×`height` terminal.
    pub fn start(tag: &str, width: u16, height: u16, script: &str) -> Self {
        let tmux = Self {
            socket: format!("tracer-{tag}-{}", std::process::id()),
            target: "t".to_owned(),
        };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", &tmux.target])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["sh", "-c", script])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// The text on screen now.
    pub fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-t", &self.target])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types keys, in tmux's names (`Enter`, `Escape`, `q`).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", &self.target])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Resizes the terminal, as a user dragging its window would.
    pub fn resize(&self, width: u16, height: u16) {
        let status = self
            .command()
            .args(["resize-window", "-t", &self.target])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .status()
            .expect("tmux resize-window");
        assert!(status.success());
    }

    /// A tmux format evaluated for the pane, e.g. `#{alternate_on}`.
    pub fn query(&self, format: &str) -> String {
        let out = self
            .command()
            .args(["display-message", "-p", "-t", &self.target, format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Waits until the screen satisfies `pred`, calling `meanwhile` between
    /// looks; returns the screen, or panics with it after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut meanwhile: impl FnMut(),
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            meanwhile();
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}
