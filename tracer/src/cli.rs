//! Command-line interface.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracer_common::maps::{DEFAULT_RING_BYTES, OWNERS_CAPACITY};

use crate::ebpf::{hooks::HookKind, loader::MIN_OWNER_MAP_SIZE};

/// Per-process TCP connection tracer.
///
/// Attaches eBPF programs to the kernel's TCP paths and reports, per process,
/// connection state changes, connects and their outcomes, handshake latency,
/// retransmits and resets — naming the process even for events the kernel
/// handles in softirq context. Needs root (or CAP_BPF + CAP_PERFMON) and
/// Linux 5.8 or newer.
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
    /// Write the man pages (tracer.1 and one per subcommand) to DIR and print
    /// their paths; `cargo xtask man` runs it.
    #[command(hide = true)]
    Man {
        /// Where to write the pages (created when missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace only this process (all its threads). Repeat for several. A pid that
    /// does not exist is an error. Without --pid every process is traced.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Run without the live view; stop on Ctrl-C, SIGTERM or after --duration.
    /// Without it tracer shows the live view, which needs a terminal on
    /// standard output (press ? there for its keys).
    #[arg(long)]
    pub headless: bool,

    /// Stop after this long, e.g. 30s, 5m, 1h (default: until Ctrl-C).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Write every event as one JSON object per line to PATH (`-` for stdout),
    /// plus a `stats` object every --interval.
    #[arg(long, value_name = "PATH|-")]
    pub events: Option<PathBuf>,

    /// Append a snapshot to this CSV file every --interval and at exit: one row
    /// per process (columns in README, "CSV columns"). A new file gets a header;
    /// an existing tracer CSV is continued; anything else is refused.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,

    /// At exit, write the numbers of the summary line as one JSON object to
    /// PATH: `read`, `submitted`, `dropped`, `filtered`, `unattributed`,
    /// `owners`, `owners_evicted`, `decode_errors`, and `csv_rows` (null
    /// without --csv). The file is created (mode 0600) at start, so a path
    /// that cannot be written is an error before anything is loaded.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// How often snapshots are taken: CSV rows, /proc gauges, `stats` lines.
    /// On a host where reading /proc would take over 2% of a core at this
    /// pace, gauges are sampled less often (every 30 s at most) and said so.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// Ring-buffer size in bytes shared by all programs (a power of two).
    /// Events that do not fit are counted as dropped. The thread draining it
    /// runs at nice -10, so busy CPUs do not keep it from emptying the buffer
    /// (unless tracer is started with a nice value of its own).
    #[arg(long, default_value_t = DEFAULT_RING_BYTES, value_name = "BYTES")]
    pub ring_buffer_size: u32,

    /// How many sockets' owners tracer remembers at once. When full, recording
    /// a new socket evicts the least recently used one (whose later events are
    /// unattributed); stats count that as `owners_evicted`.
    #[arg(
        long,
        default_value_t = OWNERS_CAPACITY,
        value_name = "ENTRIES",
        value_parser = clap::value_parser!(u32).range(i64::from(MIN_OWNER_MAP_SIZE)..)
    )]
    pub owner_map_size: u32,

    /// Which kernel hooks report state changes and retransmits. `auto` picks,
    /// for each, the cheapest that works on this kernel: raw tracepoints
    /// (which need the kernel's BTF), then classic tracepoints, then kprobes;
    /// `raw-tracepoint`, `tracepoint` and `kprobe` insist on one kind. Teardown
    /// comes from a raw tracepoint along with the state changes; resets,
    /// SYN-ACK retransmits and syscall errors always come from classic
    /// tracepoints. The start-up line and `tracer doctor` show the plan.
    #[arg(long, value_enum, default_value_t = Hooks::Auto, value_name = "KIND")]
    pub hooks: Hooks,
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
    Ok(Duration::from_secs_f64(seconds))
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
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
