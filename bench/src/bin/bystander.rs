//! `bystander`: a process that has nothing to do with the network, for
//! `cargo xtask bench`.
//!
//! Writes one byte into a pipe and reads it back, as fast as one thread can,
//! pinned to one core, for a fixed time after a short warm-up (so that a core
//! coming out of idle does not count against the sample), and prints one
//! result line:
//!
//!     bystander: seconds=2.000 syscalls=5234000 rate=2617000.0
//!
//! Each round trip is two cheap syscalls (`write`, `read`) that no TCP hook
//! sees, so what slows it down while a tracer is attached is a tax on every
//! syscall of every process on the host, such as the slow syscall path that
//! any enabled `syscalls:*` tracepoint sends all tasks through.

use std::{
    fs::File,
    io::{self, Read as _, Write as _},
    os::fd::{FromRawFd as _, OwnedFd},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use tracer_bench::pin_to;

/// A network-free, syscall-heavy loop (1-byte write + read over a pipe).
#[derive(Debug, Parser)]
#[command(name = "bystander")]
struct Cli {
    /// How long to run.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Core to run on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
}

/// Round trips between two looks at the clock: about a millisecond's worth, so
/// reading the clock costs nothing measurable and the run overshoots by little.
const BATCH: u64 = 1024;

/// Round trips before the clock starts.
const WARM_UP: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.seconds, cli.cpu) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bystander: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(seconds: f64, cpu: usize) -> Result<()> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    pin_to("bystander", cpu);
    let (mut reader, mut writer) = pipe()?;
    let mut round_trip = || -> Result<()> {
        let mut byte = [0u8; 1];
        for _ in 0..BATCH {
            // One syscall each: File's write and read go straight to the kernel.
            if writer.write(&byte).context("write to the pipe")? != 1
                || reader.read(&mut byte).context("read from the pipe")? != 1
            {
                bail!("a 1-byte write or read on the pipe moved no byte");
            }
        }
        Ok(())
    };
    let warm_up = Instant::now();
    while warm_up.elapsed() < WARM_UP {
        round_trip()?;
    }
    let window = Duration::from_secs_f64(seconds);
    let mut round_trips: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < window {
        round_trip()?;
        round_trips += BATCH;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let syscalls = round_trips * 2;
    println!(
        "bystander: seconds={elapsed:.3} syscalls={syscalls} rate={:.1}",
        syscalls as f64 / elapsed
    );
    Ok(())
}

/// A pipe: (read end, write end).
fn pipe() -> Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: a valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read), File::from(write)))
}
