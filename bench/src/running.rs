//! A subject while it runs: started and waited for until it has attached, its
//! output collected on threads of its own, then stopped as a user stops it
//! (Ctrl-C), with what it reported and the CPU it used.

use std::{
    io::{self, BufRead as _, BufReader, Read},
    path::PathBuf,
    process::{Child, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::{
    cmd,
    hooks::bpftrace_total,
    procfs,
    subject::{Setup, Subject, Writes},
    summary::Summary,
};

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
    /// The file tracer writes its counts to at exit; `None` for the others.
    summary: Option<PathBuf>,
    /// Set once the child has been reaped.
    reaped: bool,
}

/// What a subject reported when it stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stopped {
    /// tracer's counts (`--summary-json`).
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
        let mut cmd = subject.command(setup, writes)?;
        let summary = subject.is_tracer().then(|| setup.summary.clone());
        if let Some(path) = &summary {
            Summary::clear(path)?;
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", cmd::display(&cmd)))?;
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
            summary,
            reaped: false,
        };
        match running.wait_until_ready(Duration::from_secs(60)) {
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

    /// Waits for the line saying it has attached ([`Subject::is_ready`]);
    /// returns when it was printed.
    fn wait_until_ready(&mut self, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.outputs.recv_timeout(left) {
                Ok(Output::Line { stderr, at, text }) => {
                    let matched = self.subject.is_ready(stderr, &text);
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
        // bpftrace leaves with status 0 on SIGINT; tracer too.
        if status != 0 {
            bail!(
                "{} exited with status {status}; it said:\n{}",
                self.subject.label(),
                self.transcript()
            );
        }
        let summary = match &self.summary {
            Some(path) => match Summary::take(path)? {
                Some(summary) => Some(summary),
                None => bail!(
                    "{} wrote no summary to {}; it said:\n{}",
                    self.subject.label(),
                    path.display(),
                    self.transcript()
                ),
            },
            None => None,
        };
        let stopped = Stopped {
            summary,
            counted: (self.subject == Subject::Bpftrace)
                .then(|| bpftrace_total(self.lines.iter().map(|(_, text)| text.as_str()))),
            cpu_after_attach: (cpu_total - self.cpu_at_attach).max(0.0),
            wakeups,
            first_event_s,
        };
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
