//! The programs that trace the workload: tracer as a user runs it (every process,
//! or `--pid` of an unrelated process, so that only the in-kernel filter runs);
//! a bpftrace script counting the same tracepoints per pid, for comparison; and
//! `noop-hooks`, programs that return at once on the same hooks, for what the
//! hooks cost before any program does anything.

use std::{
    io::{self, BufRead as _, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::procfs;

/// Which program traces the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `tracer` with no filter.
    TracerAll,
    /// `tracer --pid P` of a process that makes no connections.
    TracerPid,
    /// `bpftrace` counting the tracer's tracepoints per pid.
    Bpftrace,
    /// `noop-hooks` on tracer's hooks: the hooks' own cost.
    NoopHooks,
    /// Nothing: both samples of a pair untraced, for the noise floor.
    Control,
}

impl Subject {
    /// Key in the JSON results.
    pub fn key(self) -> &'static str {
        match self {
            Self::TracerAll => "tracer_all",
            Self::TracerPid => "tracer_pid_other",
            Self::Bpftrace => "bpftrace_count",
            Self::NoopHooks => "noop_hooks",
            Self::Control => "control",
        }
    }

    /// Name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::TracerAll => "tracer, all processes",
            Self::TracerPid => "tracer --pid <other>",
            Self::Bpftrace => "bpftrace count per pid",
            Self::NoopHooks => "same hooks, no-op progs",
            Self::Control => "none (control)",
        }
    }

    pub fn is_tracer(self) -> bool {
        matches!(self, Self::TracerAll | Self::TracerPid)
    }
}

/// What the subjects need to start.
#[derive(Debug, Clone)]
pub struct Setup {
    pub tracer: PathBuf,
    pub bpftrace: Option<PathBuf>,
    /// The bpftrace script ([`bpftrace_script`]).
    pub script: PathBuf,
    /// A live process that makes no connections, for `--pid`.
    pub other_pid: u32,
    /// The `noop-hooks` binary and its arguments ([`Hook::noop_arg`]).
    pub noop_hooks: PathBuf,
    pub noop_args: Vec<String>,
}

/// What tracer writes while it is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// `--csv /dev/null`: a row per process every second, nothing kept; the
    /// usual headless run. Per-event JSON (`--events`) is left out: it is an
    /// extra output whose cost grows with every event.
    Csv,
    /// `--events -`, read by the benchmark only to see when the first event arrives.
    FirstEvent,
}

/// A line one of the child's outputs printed, and when.
#[derive(Debug)]
enum Output {
    Line {
        stderr: bool,
        at: Instant,
        text: String,
    },
    /// The first JSON line on stdout that is not a `stats` object.
    FirstEvent(Instant),
}

/// A subject that has attached its programs.
pub struct Running {
    pub subject: Subject,
    child: Child,
    pub pid: u32,
    started: Instant,
    /// From spawning the program until it said its programs were attached.
    pub attach: Duration,
    /// Its CPU seconds at that moment (start-up: loading, reading formats and BTF).
    pub cpu_at_attach: f64,
    /// Its main thread's voluntary context switches at that moment.
    switches_at_attach: u64,
    outputs: Receiver<Output>,
    lines: Vec<(bool, String)>,
    first_event: Option<Instant>,
    /// Set once the child has been reaped.
    reaped: bool,
}

/// What a subject reported when it stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stopped {
    /// tracer's closing summary line.
    pub summary: Option<Summary>,
    /// Events bpftrace counted (the sum of its per-pid map).
    pub counted: Option<u64>,
    /// CPU seconds after attaching, until exit.
    pub cpu_after_attach: f64,
    /// Times the main thread slept and was woken between attaching and Ctrl-C.
    pub wakeups: u64,
    /// Seconds from spawn to the first event on stdout ([`Writes::FirstEvent`]).
    pub first_event_s: Option<f64>,
}

impl Running {
    /// Starts `subject` and waits until its programs are attached.
    pub fn start(subject: Subject, setup: &Setup, writes: Writes) -> Result<Self> {
        let mut cmd = match subject {
            Subject::TracerAll | Subject::TracerPid => {
                let mut cmd = Command::new(&setup.tracer);
                cmd.args(["--headless", "--interval", "1s"]);
                cmd.args(match writes {
                    Writes::Csv => ["--csv", "/dev/null"],
                    Writes::FirstEvent => ["--events", "-"],
                });
                if subject == Subject::TracerPid {
                    cmd.arg("--pid").arg(setup.other_pid.to_string());
                }
                cmd
            }
            Subject::Control => bail!("the control runs nothing"),
            Subject::Bpftrace => {
                let Some(bpftrace) = &setup.bpftrace else {
                    bail!("bpftrace is not installed (`cargo xtask setup` installs it)");
                };
                let mut cmd = Command::new(bpftrace);
                cmd.arg(&setup.script);
                cmd
            }
            Subject::NoopHooks => {
                let mut cmd = Command::new(&setup.noop_hooks);
                cmd.args(&setup.noop_args);
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", crate::tools::display(&cmd)))?;
        let pid = child.id();

        let (tx, outputs) = mpsc::channel();
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        let first_event_only = writes == Writes::FirstEvent && subject.is_tracer();
        {
            let tx = tx.clone();
            thread::spawn(move || {
                if first_event_only {
                    watch_for_first_event(stdout, &tx);
                } else {
                    forward_lines(stdout, false, &tx);
                }
            });
        }
        thread::spawn(move || forward_lines(stderr, true, &tx));

        let mut running = Self {
            subject,
            child,
            pid,
            started,
            attach: Duration::ZERO,
            cpu_at_attach: 0.0,
            switches_at_attach: 0,
            outputs,
            lines: Vec::new(),
            first_event: None,
            reaped: false,
        };
        let ready = |stderr: bool, text: &str| match subject {
            Subject::TracerAll | Subject::TracerPid => {
                stderr && text.starts_with("tracer: tracing ")
            }
            Subject::Bpftrace | Subject::NoopHooks => !stderr && text == READY,
            Subject::Control => false,
        };
        match running.wait_for(ready, Duration::from_secs(60)) {
            Ok(at) => {
                running.attach = at - started;
                running.cpu_at_attach = procfs::cpu_seconds(pid)?;
                running.switches_at_attach = procfs::voluntary_switches(pid)?;
                Ok(running)
            }
            Err(err) => {
                let _ = running.child.kill();
                let _ = running.child.wait();
                running.reaped = true;
                while running.receive(Duration::from_millis(200)) {}
                Err(err.context(format!(
                    "{} did not start; it said:\n{}",
                    subject.label(),
                    running.transcript()
                )))
            }
        }
    }

    /// The line that said the programs were attached (tracer's "tracing …" line).
    pub fn attach_line(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|(stderr, text)| *stderr && text.starts_with("tracer: tracing "))
            .map(|(_, text)| text.as_str())
    }

    /// Waits for a line matching `ready`; returns when it was printed.
    fn wait_for(
        &mut self,
        ready: impl Fn(bool, &str) -> bool,
        timeout: Duration,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.outputs.recv_timeout(left) {
                Ok(Output::Line { stderr, at, text }) => {
                    let matched = ready(stderr, &text);
                    self.lines.push((stderr, text));
                    if matched {
                        return Ok(at);
                    }
                }
                Ok(Output::FirstEvent(at)) => {
                    self.first_event.get_or_insert(at);
                }
                Err(RecvTimeoutError::Timeout) => bail!("timed out after {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().context("waiting for the child")?;
                    self.reaped = true;
                    bail!("exited ({status})");
                }
            }
        }
    }

    /// Takes one output; false when there is none within `timeout` or no more.
    fn receive(&mut self, timeout: Duration) -> bool {
        match self.outputs.recv_timeout(timeout) {
            Ok(Output::Line { stderr, text, .. }) => {
                self.lines.push((stderr, text));
                true
            }
            Ok(Output::FirstEvent(at)) => {
                self.first_event.get_or_insert(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        procfs::peak_rss_kib(self.pid)
    }

    /// Stops it as a user would (Ctrl-C) and collects what it reported.
    pub fn stop(mut self) -> Result<Stopped> {
        let wakeups = procfs::voluntary_switches(self.pid)
            .map_or(0, |n| n.saturating_sub(self.switches_at_attach));
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGINT) };
        let waited = wait_with_cpu(self.pid, Duration::from_secs(60));
        self.reaped = true;
        let (status, cpu_total) =
            waited.with_context(|| format!("stopping {}", self.subject.label()))?;
        // The output threads end when the pipes close.
        while self.receive(Duration::from_secs(5)) {}
        let first_event_s = self.first_event.map(|at| (at - self.started).as_secs_f64());
        let stopped = Stopped {
            summary: self
                .lines
                .iter()
                .rev()
                .find_map(|(stderr, text)| stderr.then(|| parse_summary(text)).flatten()),
            counted: (self.subject == Subject::Bpftrace)
                .then(|| bpftrace_total(self.lines.iter().map(|(_, text)| text.as_str()))),
            cpu_after_attach: (cpu_total - self.cpu_at_attach).max(0.0),
            wakeups,
            first_event_s,
        };
        // bpftrace leaves with status 0 on SIGINT; tracer too.
        if status != 0 {
            bail!(
                "{} exited with status {status}; it said:\n{}",
                self.subject.label(),
                self.transcript()
            );
        }
        if self.subject.is_tracer() && stopped.summary.is_none() {
            bail!(
                "{} printed no summary line; it said:\n{}",
                self.subject.label(),
                self.transcript()
            );
        }
        Ok(stopped)
    }

    /// The last lines of the child's stderr and stdout, indented.
    fn transcript(&self) -> String {
        let start = self.lines.len().saturating_sub(20);
        self.lines[start..]
            .iter()
            .map(|(_, text)| format!("    {text}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Running {
    /// A subject left running after an error is killed, so no programs stay
    /// attached behind the benchmark's back.
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(pipe: impl Read, stderr: bool, tx: &mpsc::Sender<Output>) {
    let mut reader = BufReader::new(pipe);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = line.trim_end().to_owned();
                let at = Instant::now();
                if tx.send(Output::Line { stderr, at, text }).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads JSON lines until the first one that is not a `stats` object, then
/// discards the rest unparsed, so the reader costs as little as possible.
fn watch_for_first_event(pipe: impl Read, tx: &mpsc::Sender<Output>) {
    let mut reader = BufReader::new(pipe);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let at = Instant::now();
                let is_stats = serde_json::from_str::<serde_json::Value>(&line)
                    .is_ok_and(|value| value["event"] == "stats");
                if !is_stats {
                    let _ = tx.send(Output::FirstEvent(at));
                    break;
                }
            }
        }
    }
    let _ = io::copy(&mut reader, &mut io::sink());
}

/// Waits for child `pid` to exit (killing it after `timeout`); returns its exit
/// status and the CPU seconds it used in all, from the kernel's accounting.
fn wait_with_cpu(pid: u32, timeout: Duration) -> Result<(i32, f64)> {
    let deadline = Instant::now() + timeout;
    let mut killed: Option<String> = None;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; wait4 fills it for a reaped child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; pid is our child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut usage) };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("wait4");
        }
        if rc > 0 {
            let cpu =
                procfs::timeval_seconds(usage.ru_utime) + procfs::timeval_seconds(usage.ru_stime);
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            if let Some(state) = killed {
                bail!("did not stop within {timeout:?} of Ctrl-C ({state}) and was killed");
            }
            return Ok((code, cpu));
        }
        if killed.is_none() && Instant::now() >= deadline {
            killed = Some(procfs::describe_wait(pid));
            // SAFETY: our unreaped child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// tracer's closing line, e.g. `tracer: 241320 events read; kernel: 241320
/// submitted, 0 dropped (ring buffer full), 0 filtered, 767 unattributed; 0
/// undecodable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub read: u64,
    pub submitted: u64,
    pub dropped: u64,
    pub filtered: u64,
    pub unattributed: u64,
    pub undecodable: u64,
}

/// Parses tracer's closing line: each count is the number before its word.
/// `None` unless it has at least the events read, submitted and dropped.
pub fn parse_summary(line: &str) -> Option<Summary> {
    let line = line.strip_prefix("tracer: ")?;
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| ";,:()".contains(c)))
        .collect();
    let mut summary = Summary::default();
    let (mut read, mut submitted, mut dropped) = (false, false, false);
    for (i, pair) in words.windows(2).enumerate() {
        let Ok(value) = pair[0].parse::<u64>() else {
            continue;
        };
        match pair[1] {
            "events" if words.get(i + 2) == Some(&"read") => {
                summary.read = value;
                read = true;
            }
            "submitted" => {
                summary.submitted = value;
                submitted = true;
            }
            "dropped" => {
                summary.dropped = value;
                dropped = true;
            }
            "filtered" => summary.filtered = value,
            "unattributed" => summary.unattributed = value,
            "undecodable" => summary.undecodable = value,
            _ => {}
        }
    }
    (read && submitted && dropped).then_some(summary)
}

/// One hook of the plan `tracer doctor` lists (`  raw tracepoint tcp:tcp_destroy_sock`,
/// `  tracepoint sock:...`, `  kprobe tcp_set_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// `raw tracepoint`, `tracepoint`, `kprobe` or `kretprobe`.
    pub kind: &'static str,
    /// `CATEGORY:NAME` for tracepoints, the function for probes.
    pub target: String,
}

impl Hook {
    /// The bpftrace probe for it. The peer counts on classic tracepoints, as a
    /// bpftrace user would write it, where tracer uses their raw form.
    pub fn bpftrace_probe(&self) -> String {
        let kind = match self.kind {
            "raw tracepoint" => "tracepoint",
            kind => kind,
        };
        format!("{kind}:{}", self.target)
    }

    /// The `noop-hooks` argument for it; `None` for probes, which it does not attach.
    pub fn noop_arg(&self) -> Option<String> {
        match self.kind {
            "raw tracepoint" => Some(format!(
                "raw:{}",
                self.target.rsplit(':').next().unwrap_or_default()
            )),
            "tracepoint" => Some(format!("tracepoint:{}", self.target)),
            _ => None,
        }
    }
}

/// The hooks of the plan `tracer doctor` lists, and the plan lines that name a
/// hook of another kind (fentry and the like).
pub fn hooks_from_doctor(text: &str) -> (Vec<Hook>, Vec<String>) {
    let mut hooks = Vec::new();
    let mut other = Vec::new();
    let plan = text
        .lines()
        .skip_while(|l| !l.starts_with("plan ("))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    for line in plan.map(str::trim) {
        // Lines such as `connect errors from ...` describe, not attach.
        let first = line.split(' ').next().unwrap_or_default();
        if !matches!(
            first,
            "raw" | "tracepoint" | "kprobe" | "kretprobe" | "fentry" | "fexit"
        ) {
            continue;
        }
        let kind = match line.rsplit_once(' ') {
            Some(("raw tracepoint", _)) => "raw tracepoint",
            Some(("tracepoint", _)) => "tracepoint",
            Some(("kprobe", _)) => "kprobe",
            Some(("kretprobe", _)) => "kretprobe",
            _ => {
                other.push(line.to_owned());
                continue;
            }
        };
        let target = line.rsplit(' ').next().unwrap_or_default().to_owned();
        hooks.push(Hook { kind, target });
    }
    (hooks, other)
}

/// What the bpftrace script and `noop-hooks` print once every probe is attached
/// (the script's BEGIN probe runs after attaching).
pub const READY: &str = "bench: attached";

/// A bpftrace script counting events per pid on `probes`, and nothing else.
pub fn bpftrace_script(probes: &[String]) -> String {
    format!(
        "BEGIN {{ printf(\"{READY}\\n\"); }}\n\n{}\n{{ @[pid] = count(); }}\n",
        probes.join(",\n")
    )
}

/// The sum of the `@[pid]: count` lines bpftrace prints at exit.
pub fn bpftrace_total<'a>(lines: impl IntoIterator<Item = &'a str>) -> u64 {
    lines
        .into_iter()
        .filter(|line| line.starts_with("@["))
        .filter_map(|line| line.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let line = "tracer: 241320 events read; kernel: 241322 submitted, 2 dropped (ring buffer \
                    full), 5 filtered, 767 unattributed; 1 undecodable";
        assert_eq!(
            parse_summary(line),
            Some(Summary {
                read: 241_320,
                submitted: 241_322,
                dropped: 2,
                filtered: 5,
                unattributed: 767,
                undecodable: 1,
            })
        );
    }

    #[test]
    fn other_lines_are_not_summaries() {
        assert_eq!(
            parse_summary("tracer: tracing all processes via tracepoint tcp:tcp_destroy_sock"),
            None
        );
        assert_eq!(parse_summary("tracer: 12 events read"), None);
        assert_eq!(
            parse_summary("error: 1 events read; 2 submitted, 0 dropped"),
            None
        );
    }

    #[test]
    fn hooks_from_the_doctor_plan() {
        let text = "hook plans (--hooks; ...)\n  tracepoint      loads\n\
                    plan (--hooks auto): the raw-tracepoint plan (...)\n\
                    \x20 raw tracepoint tcp:tcp_destroy_sock\n\
                    \x20 tracepoint sock:inet_sock_set_state\n\
                    \x20 kretprobe tcp_retransmit_skb\n\
                    \x20 fentry tcp_connect\n\
                    \x20 connect errors from struct sock.sk_err (BTF offset 284)\n\
                    missing: nothing\n";
        let (hooks, other) = hooks_from_doctor(text);
        let probes: Vec<String> = hooks.iter().map(Hook::bpftrace_probe).collect();
        assert_eq!(
            probes,
            vec![
                "tracepoint:tcp:tcp_destroy_sock",
                "tracepoint:sock:inet_sock_set_state",
                "kretprobe:tcp_retransmit_skb"
            ]
        );
        let noop: Vec<Option<String>> = hooks.iter().map(Hook::noop_arg).collect();
        assert_eq!(
            noop,
            vec![
                Some("raw:tcp_destroy_sock".to_owned()),
                Some("tracepoint:sock:inet_sock_set_state".to_owned()),
                None
            ]
        );
        assert_eq!(other, vec!["fentry tcp_connect"]);
        assert_eq!(hooks_from_doctor("tracer: 3 events read"), (vec![], vec![]));
    }

    #[test]
    fn script_counts_per_pid() {
        let script = bpftrace_script(&["tracepoint:a:b".into(), "tracepoint:c:d".into()]);
        assert_eq!(
            script,
            "BEGIN { printf(\"bench: attached\\n\"); }\n\ntracepoint:a:b,\ntracepoint:c:d\n\
             { @[pid] = count(); }\n"
        );
    }

    #[test]
    fn bpftrace_map_total() {
        let out = [
            "Attaching 13 probes...",
            "bench: attached",
            "",
            "@[1]: 5",
            "@[4242]: 120000",
        ];
        assert_eq!(bpftrace_total(out), 120_005);
    }
}
