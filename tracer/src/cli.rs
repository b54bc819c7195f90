//! Command-line interface.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracer_common::maps::{DEFAULT_RING_BYTES, OWNERS_CAPACITY};

use crate::ebpf::{
    hooks::HookKind,
    loader::{MAX_OWNER_MAP_SIZE, MIN_OWNER_MAP_SIZE},
    plan::Optional,
};
use crate::proc::sockets::Source;

/// Per-process TCP connection tracer.
///
/// Attaches eBPF programs to the kernel's TCP paths and reports, per process,
/// connection state changes, connects and their outcomes, handshake latency,
/// retransmits and resets, dropped packets by reason, errors on established
/// connections, accept queues, DNS lookups (answers by rcode, timeouts,
/// latency), sockets and FDs, with findings in plain words — naming the
/// process, its network namespace and its container even for events the
/// kernel handles in softirq context. Needs Linux 5.8 or newer and root, or the
/// capabilities CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
/// (README, "Least privilege"); once attached it drops all it no longer
/// needs and sets no_new_privs.
#[derive(Debug, Parser)]
#[command(name = "tracer", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub trace: TraceArgs,
}

const EXAMPLES: &str = "\
Examples:
  sudo tracer --pid 1234                          live view of one process
  sudo tracer --headless --events -               every event as JSON lines on stdout
  sudo tracer --pid 1234 --headless --duration 30s --csv out.csv
  sudo tracer --pid 1234 --headless --duration 30s --events out.jsonl
  sudo tracer doctor                              what this kernel supports
  tracer report out.csv                           an HTML report of a capture

Exit status: 0 on a clean stop (Ctrl-C, --duration elapsed), 2 on bad usage,
1 on any other failure.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check kernel support (root, tracefs, BTF, lockdown, which program kinds
    /// load), try each hook plan and print the one tracer would use.
    ///
    /// Exits 1 when something tracer needs is missing (listed under `missing`).
    Doctor {
        /// Print the same facts as one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for SHELL to standard output.
    ///
    /// Install it where your shell looks for completions, e.g.
    /// `tracer completions bash > /etc/bash_completion.d/tracer`.
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write a self-contained HTML report from a --csv capture: the processes
    /// ranked by trouble, a chart of each one's connects, failures,
    /// retransmits, RSTs, sockets, FDs and handshake p99 over the capture, the
    /// findings over time and the capture's facts.
    ///
    /// No script or network is needed to read it: charts are inline SVG. The
    /// capture may come from any tracer version (columns are found by name)
    /// and of any size (it is streamed; charts have at most 300 points). The
    /// report is created owner-only (mode 0600), like the capture. Exits 1 on
    /// a file that is not a tracer capture, or when the report exists.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Write the man pages (tracer.1 and one per subcommand) to DIR and print
    /// their paths; `cargo xtask man` runs it.
    #[command(hide = true)]
    Man {
        /// Where to write the pages (created when missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

const REPORT_EXAMPLES: &str = "\
Examples:
  tracer report out.csv                           writes out.html
  tracer report out.csv --events out.jsonl -o incident.html
  tracer report out.csv -o - > report.html";

/// `tracer report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The capture: a file written by `tracer --csv`.
    #[arg(value_name = "CAPTURE.csv")]
    pub capture: PathBuf,

    /// Where to write the report (`-` for standard output). Default: CAPTURE
    /// with `.html` in place of `.csv`. An existing file is not replaced
    /// without --force.
    #[arg(short, long, value_name = "PATH|-")]
    pub output: Option<PathBuf>,

    /// Replace the output file if it exists (the old one stays whole if
    /// writing fails).
    #[arg(long)]
    pub force: bool,

    /// The same run's `tracer --events` file (JSON lines): adds connects,
    /// retransmits and resets per remote endpoint, the findings about them,
    /// and the kernel's counts of dropped and unattributed events.
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,

    /// How many processes get a chart, most trouble first (1 to 100); the
    /// others are listed.
    #[arg(long, default_value_t = 12, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub top: u8,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace only this process (all its threads). Repeat for several. A pid that
    /// does not exist, has exited or is a kernel thread is an error. Without
    /// --pid every process is traced.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Trace only the processes in this cgroup (v2) and the cgroups below it,
    /// filtered in the kernel like --pid: a container's or pod's cgroup, a
    /// systemd unit's. Give the directory (/sys/fs/cgroup/system.slice/
    /// nginx.service) or the path as /proc/PID/cgroup shows it
    /// (/system.slice/nginx.service); the CSV's `cgroup` column shows them.
    /// Repeat for up to 8; with --pid, a process given either way is traced.
    #[arg(long = "cgroup", value_name = "PATH")]
    pub cgroups: Vec<PathBuf>,

    /// Run without the live view; stop on Ctrl-C, SIGTERM or after --duration.
    /// Without it tracer shows the live view, which needs a terminal on
    /// standard output (press ? there for its keys).
    #[arg(long)]
    pub headless: bool,

    /// Stop after this long, e.g. 30s, 5m, 1h, at most 365 days (default:
    /// until Ctrl-C).
    #[arg(long, value_parser = parse_run_time, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Write every event as one JSON object per line to PATH (`-` for stdout),
    /// plus a `stats` object every --interval. A reader that falls behind
    /// costs lines (counted at exit), never the tracing.
    #[arg(long, value_name = "PATH|-")]
    pub events: Option<PathBuf>,

    /// Append a snapshot to this CSV file every --interval and at exit: one row
    /// per process (columns in README, "CSV columns"). A new file gets a header;
    /// an existing tracer CSV is continued; anything else is refused.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,

    /// At exit, write the numbers of the summary line as one JSON object to
    /// PATH: `read`, `submitted`, `dropped`, `filtered`, `unattributed`,
    /// `owners`, `owners_evicted`, `decode_errors`, `closed_port_resets`,
    /// `csv_rows` (null without --csv) and `events_unwritten` (null without
    /// --events). The file is created (mode 0600) at start, so a path that
    /// cannot be written is an error before anything is loaded.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (ADDR is IP:PORT, or
    /// :PORT for every address), updated at every snapshot: per command and
    /// container, never per pid (README, "Prometheus metrics"). A port in use
    /// is an error before anything is loaded.
    #[arg(long, value_parser = parse_listen_addr, value_name = "ADDR")]
    pub prometheus: Option<SocketAddr>,

    /// How often snapshots are taken: CSV rows, /proc gauges, `stats` lines;
    /// from 100ms to 1 day. On a host where reading /proc would take over 2%
    /// of a core at this pace, gauges are sampled less often (every 30 s at
    /// most) and said so.
    #[arg(long, default_value = "5s", value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Duration,

    /// Ring-buffer size in bytes shared by all programs: a power of two from
    /// 4096 to 1 GiB. Events that do not fit are counted as dropped. The
    /// thread draining it runs at nice -10, so busy CPUs do not keep it from
    /// emptying the buffer (unless tracer is started with a nice value of its
    /// own).
    #[arg(long, default_value_t = DEFAULT_RING_BYTES, value_parser = parse_ring_bytes, value_name = "BYTES")]
    pub ring_buffer_size: u32,

    /// How many sockets' owners tracer remembers at once, from 16 to
    /// 4194304. Each entry pins about 104 bytes of kernel memory: the default
    /// about 26 MiB, the maximum about 416 MiB. When full, recording a new
    /// socket evicts the least recently used one (whose later events are
    /// unattributed); stats count that as `owners_evicted`.
    #[arg(
        long,
        default_value_t = OWNERS_CAPACITY,
        value_name = "ENTRIES",
        value_parser = clap::value_parser!(u32)
            .range(i64::from(MIN_OWNER_MAP_SIZE)..=i64::from(MAX_OWNER_MAP_SIZE))
    )]
    pub owner_map_size: u32,

    /// Which kernel hooks report state changes and retransmits. `auto` picks,
    /// for each, the cheapest that works on this kernel: raw tracepoints
    /// (which need the kernel's BTF), then classic tracepoints, then kprobes;
    /// `raw-tracepoint`, `tracepoint` and `kprobe` insist on one kind. Teardown
    /// comes from a raw tracepoint along with the state changes; resets and
    /// SYN-ACK retransmits always come from classic tracepoints. With
    /// `kprobe`, syscall errors come from kretprobes where they would
    /// otherwise come from fexit. The start-up line and `tracer doctor` show
    /// the plan.
    #[arg(long, value_enum, default_value_t = Hooks::Auto, value_name = "KIND")]
    pub hooks: Hooks,

    /// Whether failed network syscalls (socket, connect, accept, bind, listen:
    /// EMFILE, EADDRINUSE, ECONNREFUSED …) are counted. `auto` counts them
    /// where a hook that costs other processes nothing works: fexit, else
    /// kretprobes. Where only the `syscalls:*` tracepoints could (kernels
    /// without kprobes that refuse fexit), it leaves them off: enabling any
    /// of those tracepoints sends every syscall of every process on the host
    /// through the kernel's slow path (measured: network-free processes ran
    /// 5-15% slower). `on` accepts that cost; `off` never counts them. Open
    /// FDs against the limit come from /proc either way.
    #[arg(long, value_enum, default_value_t = SyscallErrors::Auto, value_name = "WHEN")]
    pub syscall_errors: SyscallErrors,

    /// Where each network namespace's TCP sockets are read. `sock-diag`
    /// (netlink, as `ss` does) also gives each connection's RTT and bytes
    /// sent and received and each listener's backlog; a namespace it cannot
    /// reach is read from /proc instead, with a warning. `proc` reads only
    /// `/proc/<pid>/net/tcp{,6}`, without those figures.
    #[arg(long, value_enum, default_value_t = Source::SockDiag, value_name = "SOURCE")]
    pub socket_tables: Source,
}

impl TraceArgs {
    /// Refuses an output path given twice (`--csv X --events X`): the
    /// outputs would interleave in one file.
    pub fn check_outputs(&self) -> Result<(), String> {
        let outputs = [
            ("--events", self.events.as_deref()),
            ("--csv", self.csv.as_deref()),
            ("--summary-json", self.summary_json.as_deref()),
        ];
        let mut seen: Vec<(&str, PathBuf)> = Vec::new();
        for (flag, path) in outputs {
            let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
                continue;
            };
            let same = same_file(path);
            if let Some((other, _)) = seen.iter().find(|(_, p)| *p == same) {
                return Err(format!(
                    "{other} and {flag} name the same file ({}); give each output its own path",
                    path.display()
                ));
            }
            seen.push((flag, same));
        }
        Ok(())
    }
}

/// What identifies the file `path` names: its canonical path when it exists
/// (so `./x` and `x`, or a symlink and its target, are the same), else the
/// canonical directory joined with the name.
fn same_file(path: &std::path::Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    path.file_name().map_or(dir.clone(), |name| dir.join(name))
}

/// `--hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hooks {
    Auto,
    RawTracepoint,
    Tracepoint,
    Kprobe,
}

impl Hooks {
    /// The kind to insist on; `None` for auto.
    pub fn kind(self) -> Option<HookKind> {
        match self {
            Self::Auto => None,
            Self::RawTracepoint => Some(HookKind::RawTracepoint),
            Self::Tracepoint => Some(HookKind::Tracepoint),
            Self::Kprobe => Some(HookKind::Kprobe),
        }
    }
}

/// `--syscall-errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyscallErrors {
    Auto,
    On,
    Off,
}

impl SyscallErrors {
    pub fn optional(self) -> Optional {
        match self {
            Self::Auto => Optional::Auto,
            Self::On => Optional::On,
            Self::Off => Optional::Off,
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 30s, 5m, 1h)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("`{text}`: a duration must be greater than zero"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is too long"))
}

/// A duration from `min` to `max`, said in the error as the flag's bounds.
fn bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value < min || value > max {
        return Err(format!(
            "`{text}` is out of range: use {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(value)
}

/// `--duration`: up to 365 days.
pub fn parse_run_time(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        Duration::from_millis(1),
        Duration::from_secs(365 * 86_400),
    )
}

/// `--interval`: from 100ms (a shorter one would spend the run sampling
/// /proc) to 1 day.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    bounded(
        text,
        Duration::from_millis(100),
        Duration::from_secs(86_400),
    )
}

/// `--prometheus`: `IP:PORT` (`[IPv6]:PORT` for IPv6), or `:PORT` for every
/// IPv4 address. Port 0 picks a free port (tracer says which).
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not an address to listen on: use IP:PORT (127.0.0.1:9100, \
             [::1]:9100) or :PORT"
        )
    };
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    text.parse().map_err(|_| bad())
}

/// `--ring-buffer-size`: a power of two from 4096 bytes to 1 GiB.
pub fn parse_ring_bytes(text: &str) -> Result<u32, String> {
    let bytes: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    if !bytes.is_power_of_two() || !(4096..=1 << 30).contains(&bytes) {
        return Err(format!(
            "{bytes} must be a power of two from 4096 to 1073741824 (e.g. 4194304)"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("18446744073709551615").is_err());
        assert!(parse_duration("99999999999999999999999").is_err());
    }

    #[test]
    fn an_output_path_given_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let x = dir.path().join("x");
        let mut cli = Cli::parse_from(["tracer", "--headless"]);
        cli.trace.csv = Some(x.clone());
        cli.trace.events = Some(dir.path().join(".").join("x"));
        assert_eq!(
            cli.trace.check_outputs().unwrap_err(),
            format!(
                "--events and --csv name the same file ({}); give each output its own path",
                x.display()
            )
        );
        cli.trace.events = Some("-".into());
        cli.trace.summary_json = Some(dir.path().join("y"));
        assert_eq!(cli.trace.check_outputs(), Ok(()));
    }

    #[test]
    fn bounds() {
        assert!(parse_run_time("18446744073709551615").is_err());
        assert!(parse_run_time("8785h").is_err());
        assert_eq!(parse_run_time("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_interval("0.000000001ms").is_err());
        assert!(parse_interval("99ms").is_err());
        assert!(parse_interval("99999999999999999999999").is_err());
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_ring_bytes("5000").is_err());
        assert!(parse_ring_bytes("2048").is_err());
        assert!(parse_ring_bytes("2147483648").is_err());
        assert_eq!(parse_ring_bytes("8192"), Ok(8192));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr("127.0.0.1:9100"),
            Ok("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(
            parse_listen_addr("[::1]:9100"),
            Ok("[::1]:9100".parse().unwrap())
        );
        assert_eq!(
            parse_listen_addr(":9100"),
            Ok("0.0.0.0:9100".parse().unwrap())
        );
        assert_eq!(parse_listen_addr(" :0 "), Ok("0.0.0.0:0".parse().unwrap()));
        for bad in [
            "",
            "9100",
            "localhost:9100",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:65536",
            ":http",
            "::1:9100",
            "http://127.0.0.1:9100/metrics",
        ] {
            let err = parse_listen_addr(bad).unwrap_err();
            assert!(err.contains("IP:PORT"), "{bad}: {err}");
        }
        let cli = Cli::try_parse_from(["tracer", "--prometheus", "nope"]).unwrap_err();
        assert_eq!(cli.exit_code(), 2, "bad usage");
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
