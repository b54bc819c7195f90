//! The programs that trace the workload: tracer as a user runs it (every process,
//! or `--pid` of an unrelated process, so that only the in-kernel filter runs;
//! for the bystander also with `--syscall-errors on`, the opt-in that may tax
//! every process's syscalls);
//! a bpftrace script counting the same tracepoints per pid, for comparison; and
//! `noop-hooks`, programs that return at once on the same hooks, for what the
//! hooks cost before any program does anything. What each is started with, and
//! how it says it has attached.

use std::{path::PathBuf, process::Command};

use anyhow::{Result, bail};

use crate::hooks::READY;

/// Which program traces the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// `tracer` with no filter.
    TracerAll,
    /// `tracer --pid P` of a process that makes no connections.
    TracerPid,
    /// `tracer --syscall-errors on`, every process: failed syscalls counted
    /// even where only the `syscalls:*` tracepoints can count them.
    TracerSyscallErrors,
    /// `tracer --socket-tables proc`, every process: the socket tables read
    /// from /proc text rather than sock_diag.
    TracerProcTables,
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
            Self::TracerSyscallErrors => "tracer_syscall_errors_on",
            Self::TracerProcTables => "tracer_proc_tables",
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
            Self::TracerSyscallErrors => "tracer --syscall-errors on",
            Self::TracerProcTables => "tracer --socket-tables proc",
            Self::Bpftrace => "bpftrace count per pid",
            Self::NoopHooks => "same hooks, no-op progs",
            Self::Control => "none (control)",
        }
    }

    pub fn is_tracer(self) -> bool {
        matches!(
            self,
            Self::TracerAll | Self::TracerPid | Self::TracerSyscallErrors | Self::TracerProcTables
        )
    }

    /// The command that starts it.
    pub fn command(self, setup: &Setup, writes: Writes) -> Result<Command> {
        Ok(match self {
            Self::TracerAll
            | Self::TracerPid
            | Self::TracerSyscallErrors
            | Self::TracerProcTables => {
                let mut cmd = Command::new(&setup.tracer);
                cmd.args(["--headless", "--interval", "1s"]);
                cmd.args(match writes {
                    Writes::Csv => ["--csv", "/dev/null"],
                    Writes::FirstEvent => ["--events", "-"],
                });
                cmd.arg("--summary-json").arg(&setup.summary);
                if self == Self::TracerPid {
                    cmd.arg("--pid").arg(setup.other_pid.to_string());
                }
                if self == Self::TracerSyscallErrors {
                    cmd.args(["--syscall-errors", "on"]);
                }
                if self == Self::TracerProcTables {
                    cmd.args(["--socket-tables", "proc"]);
                }
                cmd
            }
            Self::Control => bail!("the control runs nothing"),
            Self::Bpftrace => {
                let Some(bpftrace) = &setup.bpftrace else {
                    bail!("bpftrace is not installed (`cargo xtask setup` installs it)");
                };
                let mut cmd = Command::new(bpftrace);
                cmd.arg(&setup.script);
                cmd
            }
            Self::NoopHooks => {
                let mut cmd = Command::new(&setup.noop_hooks);
                cmd.args(&setup.noop_args);
                cmd
            }
        })
    }

    /// Whether a line it printed (on stderr or stdout) says its programs are attached.
    pub fn is_ready(self, stderr: bool, text: &str) -> bool {
        match self {
            Self::TracerAll
            | Self::TracerPid
            | Self::TracerSyscallErrors
            | Self::TracerProcTables => stderr && text.starts_with(TRACER_ATTACHED),
            Self::Bpftrace | Self::NoopHooks => !stderr && text == READY,
            Self::Control => false,
        }
    }
}

/// What the subjects need to start.
#[derive(Debug, Clone)]
pub struct Setup {
    pub tracer: PathBuf,
    /// Where tracer writes its counts at exit (`--summary-json`); one tracer runs
    /// at a time.
    pub summary: PathBuf,
    pub bpftrace: Option<PathBuf>,
    /// The bpftrace script ([`crate::hooks::bpftrace_script`]).
    pub script: PathBuf,
    /// A live process that makes no connections, for `--pid`.
    pub other_pid: u32,
    /// The `noop-hooks` binary and its arguments ([`crate::hooks::Hook::noop_arg`]).
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

/// How tracer's line on stderr saying what it traces begins: it has attached.
const TRACER_ATTACHED: &str = "tracer: tracing ";

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            tracer: "/t/tracer".into(),
            summary: "/t/summary.json".into(),
            bpftrace: None,
            script: "/t/count.bt".into(),
            other_pid: 42,
            noop_hooks: "/t/noop-hooks".into(),
            noop_args: vec!["raw:tcp_destroy_sock".into()],
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_tracer_run_writes_a_summary() {
        let cmd = Subject::TracerPid
            .command(&setup(), Writes::Csv)
            .expect("a command");
        assert_eq!(
            args(&cmd),
            [
                "--headless",
                "--interval",
                "1s",
                "--csv",
                "/dev/null",
                "--summary-json",
                "/t/summary.json",
                "--pid",
                "42"
            ]
        );
        let cmd = Subject::TracerAll
            .command(&setup(), Writes::FirstEvent)
            .expect("a command");
        assert!(
            args(&cmd)
                .join(" ")
                .contains("--events - --summary-json /t/summary.json")
        );
        let cmd = Subject::TracerSyscallErrors
            .command(&setup(), Writes::Csv)
            .expect("a command");
        let args = args(&cmd).join(" ");
        assert!(args.ends_with("--summary-json /t/summary.json --syscall-errors on"));
        assert!(!args.contains("--pid"));
    }

    #[test]
    fn the_others_start_without_tracer_flags() {
        let cmd = Subject::NoopHooks
            .command(&setup(), Writes::Csv)
            .expect("a command");
        assert_eq!(args(&cmd), ["raw:tcp_destroy_sock"]);
        assert!(Subject::Bpftrace.command(&setup(), Writes::Csv).is_err());
        assert!(Subject::Control.command(&setup(), Writes::Csv).is_err());
    }
}
