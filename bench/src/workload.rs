//! The workloads: the `churn` program (src/bin/churn.rs) run in a private
//! network namespace, so TIME_WAIT sockets and the sysctls it needs stay there;
//! the `stream` program (src/bin/stream.rs), one bulk TCP transfer in the same
//! namespace, whose packets every cgroup_skb program on the cgroup v2 root
//! sees; and the `bystander` program (src/bin/bystander.rs), a network-free,
//! syscall-heavy process.
//!
//! The bystander runs on its own, pinned to one core, while the churn is idle.
//! What it measures is the tax a tracer puts on processes it does not trace:
//! hooks that fire for every syscall of every task (any enabled `syscalls:*`
//! tracepoint sends all of them through the kernel's slow syscall path). That
//! tax does not depend on network traffic, and next to the churn it could not
//! be told apart from other costs: on this project's 2-core machine the churn's
//! client and server take both cores, so a bystander beside them would measure
//! its share of a contended core, and the tracer's userspace busy with the
//! churn's events, not what each of its own syscalls costs. Alone, with the
//! tracer attached and left running (its sampler wakes every interval as it
//! does on an idle host), the bystander's rate changes only through what the
//! tracer adds to its syscalls.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;
use serde::Serialize;

use crate::cmd;

/// How the client closes its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `SO_LINGER {on, 0}`: a RST, no TIME_WAIT.
    Reset,
    /// A FIN: the client's side ends in TIME_WAIT.
    Normal,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Normal => "normal",
        }
    }
}

/// A network namespace with loopback up, deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name` afresh (a namespace left by an interrupted run is deleted
    /// first), brings loopback up and widens the local port range.
    pub fn create(name: &str) -> Result<Self> {
        if Path::new("/run/netns").join(name).exists() {
            let _ = cmd::output(Command::new("ip").args(["netns", "del", name]));
        }
        cmd::run(Command::new("ip").args(["netns", "add", name]))?;
        let netns = Self {
            name: name.to_owned(),
        };
        cmd::run(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        // Room for the held connections, and TIME_WAIT ports reused for new
        // connects (both only in this namespace).
        cmd::run(netns.exec("sysctl").args([
            "-q",
            "-w",
            "net.ipv4.ip_local_port_range=10000 65000",
            "net.ipv4.tcp_tw_reuse=1",
        ]))?;
        Ok(netns)
    }

    /// `program` run inside the namespace.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = cmd::output(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// One `churn run`: how many connections it made in how long.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChurnResult {
    pub connections: u64,
    pub seconds: f64,
    /// Connections per second.
    pub rate: f64,
    pub failures: u64,
    /// The longest single connect, in milliseconds (a dropped SYN shows as ~1000).
    pub slowest_connect_ms: f64,
    /// How often the client waited for the server to catch up.
    pub window_waits: u64,
    /// SYNs the listener dropped (`None` when churn could not read the counter).
    pub listen_drops: Option<u64>,
}

/// The `churn` binary and the cores it pins its threads to.
#[derive(Debug, Clone)]
pub struct Churn {
    pub bin: PathBuf,
    pub client_cpu: usize,
    pub server_cpu: usize,
}

impl Churn {
    fn run_command(&self, netns: &Netns, mode: Mode, seconds: f64) -> Command {
        let mut cmd = netns.exec(&self.bin);
        cmd.args(["run", "--mode", mode.name()])
            .arg(format!("--seconds={seconds}"))
            .arg(format!("--client-cpu={}", self.client_cpu))
            .arg(format!("--server-cpu={}", self.server_cpu));
        cmd
    }

    /// Runs the churn for `seconds` and returns its result.
    pub fn sample(&self, netns: &Netns, mode: Mode, seconds: f64) -> Result<ChurnResult> {
        result_line(
            &mut self.run_command(netns, mode, seconds),
            parse_churn_line,
        )
    }

    /// Starts a churn run in the background (for a subject starting under load).
    pub fn spawn(&self, netns: &Netns, mode: Mode, seconds: f64) -> Result<Child> {
        let mut cmd = self.run_command(netns, mode, seconds);
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd.spawn()
            .with_context(|| format!("cannot start {}", cmd::display(&cmd)))
    }

    /// Opens `connections` connections and returns once all are established.
    pub fn hold(&self, netns: &Netns, connections: u64) -> Result<Held> {
        let mut cmd = netns.exec(&self.bin);
        cmd.args(["hold", "--connections", &connections.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", cmd::display(&cmd)))?;
        let stdout = child.stdout.take().context("churn's stdout")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let held = Held { child };
        match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(line) if line.starts_with("churn: holding") => Ok(held),
            Ok(line) => bail!("unexpected output from churn hold: {line}"),
            Err(_) => bail!("churn hold did not establish {connections} connections"),
        }
    }
}

/// Connections held open by `churn hold`; closed when this is released or dropped.
pub struct Held {
    child: Child,
}

impl Held {
    /// Closes churn's stdin, which closes every connection, and waits for it.
    pub fn release(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait().context("waiting for churn hold")?;
        if !status.success() {
            bail!("churn hold failed ({status})");
        }
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A measured sample of a workload.
pub trait Sample {
    /// What it did per second: connections, syscalls, or bytes.
    fn per_second(&self) -> f64;

    /// The rate as a progress line shows it (9 characters wide and more).
    fn shown(&self) -> String {
        format!("{:>9.0}/s", self.per_second())
    }
}

impl Sample for ChurnResult {
    fn per_second(&self) -> f64 {
        self.rate
    }
}

/// One `bystander` run: how many syscalls it made in how long.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BystanderResult {
    pub syscalls: u64,
    pub seconds: f64,
    /// Syscalls per second.
    pub rate: f64,
}

impl Sample for BystanderResult {
    fn per_second(&self) -> f64 {
        self.rate
    }
}

/// The `bystander` binary and the core it runs on.
#[derive(Debug, Clone)]
pub struct Bystander {
    pub bin: PathBuf,
    pub cpu: usize,
}

impl Bystander {
    /// Runs the bystander for `seconds` (in the benchmark's own network
    /// namespace: it makes no connections) and returns its result.
    pub fn sample(&self, seconds: f64) -> Result<BystanderResult> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--seconds={seconds}"))
            .arg(format!("--cpu={}", self.cpu));
        result_line(&mut cmd, parse_bystander_line)
    }
}

/// One `stream` run: how many bytes went through in how long.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamResult {
    pub bytes: u64,
    pub seconds: f64,
    /// Bytes per second.
    pub rate: f64,
}

impl Sample for StreamResult {
    fn per_second(&self) -> f64 {
        self.rate
    }

    fn shown(&self) -> String {
        format!("{:>6.0} MB/s", self.rate / 1e6)
    }
}

/// The `stream` binary and the cores its sender and receiver run on (the
/// churn's client and server cores).
#[derive(Debug, Clone)]
pub struct Stream {
    pub bin: PathBuf,
    pub sender_cpu: usize,
    pub receiver_cpu: usize,
}

impl Stream {
    /// Streams for `seconds` (after its warm-up) in `netns` and returns the
    /// result.
    pub fn sample(&self, netns: &Netns, seconds: f64) -> Result<StreamResult> {
        let mut cmd = netns.exec(&self.bin);
        cmd.arg(format!("--seconds={seconds}"))
            .arg(format!("--sender-cpu={}", self.sender_cpu))
            .arg(format!("--receiver-cpu={}", self.receiver_cpu));
        result_line(&mut cmd, parse_stream_line)
    }
}

/// Runs `cmd` to the end and returns the first line of its output that `parse`
/// takes.
fn result_line<T>(cmd: &mut Command, parse: fn(&str) -> Option<T>) -> Result<T> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", cmd::display(cmd)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            cmd::display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    stdout
        .lines()
        .find_map(parse)
        .with_context(|| format!("no result line from `{}` in {stdout:?}", cmd::display(cmd)))
}

/// `bystander: seconds=2.000 syscalls=5234000 rate=2617000.0`.
pub fn parse_bystander_line(line: &str) -> Option<BystanderResult> {
    let fields = line.strip_prefix("bystander: ")?;
    let value = |key: &str| {
        fields
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
    };
    Some(BystanderResult {
        syscalls: value("syscalls")?.parse().ok()?,
        seconds: value("seconds")?.parse().ok()?,
        rate: value("rate")?.parse().ok()?,
    })
}

/// `stream: seconds=2.000 bytes=6234000000 rate=3117000000.0`.
pub fn parse_stream_line(line: &str) -> Option<StreamResult> {
    let fields = line.strip_prefix("stream: ")?;
    let value = |key: &str| {
        fields
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
    };
    Some(StreamResult {
        bytes: value("bytes")?.parse().ok()?,
        seconds: value("seconds")?.parse().ok()?,
        rate: value("rate")?.parse().ok()?,
    })
}

/// `churn: mode=reset seconds=2.000 connections=61234 rate=30617.0 failures=0`.
pub fn parse_churn_line(line: &str) -> Option<ChurnResult> {
    let fields = line.strip_prefix("churn: ")?;
    let value = |key: &str| {
        fields
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
    };
    Some(ChurnResult {
        connections: value("connections")?.parse().ok()?,
        seconds: value("seconds")?.parse().ok()?,
        rate: value("rate")?.parse().ok()?,
        failures: value("failures")?.parse().ok()?,
        slowest_connect_ms: value("slowest_connect_ms")?.parse().ok()?,
        window_waits: value("window_waits")?.parse().ok()?,
        listen_drops: value("listen_drops")?.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_result_line() {
        let line = "churn: mode=reset seconds=2.004 connections=66382 rate=33125.4 failures=3 \
                    slowest_connect_ms=1.250 window_waits=7 listen_drops=0";
        assert_eq!(
            parse_churn_line(line),
            Some(ChurnResult {
                connections: 66_382,
                seconds: 2.004,
                rate: 33_125.4,
                failures: 3,
                slowest_connect_ms: 1.25,
                window_waits: 7,
                listen_drops: Some(0),
            })
        );
        let unknown = line.replace("listen_drops=0", "listen_drops=unknown");
        assert_eq!(
            parse_churn_line(&unknown).and_then(|r| r.listen_drops),
            None
        );
        assert_eq!(parse_churn_line("churn: holding 10 connections"), None);
    }

    #[test]
    fn bystander_result_line() {
        let line = "bystander: seconds=2.001 syscalls=5234688 rate=2616036.0";
        assert_eq!(
            parse_bystander_line(line),
            Some(BystanderResult {
                syscalls: 5_234_688,
                seconds: 2.001,
                rate: 2_616_036.0,
            })
        );
        assert_eq!(parse_bystander_line("bystander: seconds=2.001"), None);
        assert_eq!(parse_churn_line(line), None);
        assert_eq!(parse_bystander_line("churn: mode=reset"), None);
    }

    #[test]
    fn stream_result_line() {
        let line = "stream: seconds=2.000 bytes=5385154681 rate=2692363469.9";
        let result = parse_stream_line(line).expect("a result");
        assert_eq!(
            result,
            StreamResult {
                bytes: 5_385_154_681,
                seconds: 2.0,
                rate: 2_692_363_469.9,
            }
        );
        assert_eq!(result.shown(), "  2692 MB/s");
        assert_eq!(parse_stream_line("stream: seconds=2.000 bytes=1"), None);
        assert_eq!(parse_bystander_line(line), None);
    }
}
