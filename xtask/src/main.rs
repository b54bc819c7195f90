//! `cargo xtask`: the project's tasks — install the toolchain and tools, build the
//! eBPF programs, run the tracer, run every test (on this kernel and in a VM),
//! measure what tracing costs, and write the man pages.

mod bench;
mod ebpf;
mod man;
mod run;
mod setup;
mod test;
mod tools;
mod vm;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project tasks for `tracer`. Run them as `cargo xtask <TASK>`.
#[derive(Debug, Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install everything the build and the tests need (idempotent).
    ///
    /// Steps: the nightly toolchain's rust-src; bpf-linker built against nightly's own
    /// libLLVM; Debian packages (iproute2, nftables, qemu, Debian's 6.1 kernel, …);
    /// virtme-ng; kubernetes-validate; a mounted tracefs. Steps already done are
    /// reported as "already set up", so a second run is quick. Debian packages and
    /// tracefs need root. `--build-only` stops after the first two: enough to build
    /// tracer (as the Dockerfile does), not to test it.
    Setup(setup::SetupArgs),

    /// Build the eBPF programs (nightly, bpfel-unknown-none) and the tracer binary.
    ///
    /// Prints the path and size of the eBPF object, then rebuilds the userspace binary,
    /// which embeds that object.
    BuildEbpf(ebpf::BuildArgs),

    /// Build the tracer and run it with the given arguments (through `sudo -E` when
    /// not root).
    ///
    /// Example: `cargo xtask run -- --pid 1234 --headless --duration 10s`
    Run(run::RunArgs),

    /// Run every test: the workspace tests on this kernel, then the kernel tests
    /// again inside Debian's 6.1 kernel under virtme-ng, where the state and
    /// fault suites run once per hook plan (`--hooks raw-tracepoint`, `tracepoint`,
    /// `kprobe`).
    ///
    /// Ends with a line `N passed, N failed` counting the host run and the VM run as
    /// one suite each, and exits non-zero if any failed.
    Test(test::TestArgs),

    /// Measure what tracing costs (a benchmark; needs root, takes several minutes).
    ///
    /// A network-free bystander, one bulk TCP transfer over loopback (the stream)
    /// and a loopback connect/accept/close churn run untraced and traced in
    /// alternating pairs, for tracer tracing every process, tracer with --pid of an
    /// unrelated process, a bpftrace script counting the same tracepoints per pid,
    /// programs that return at once on tracer's hooks (the hooks' own cost, the
    /// floor for any tool on them), and untraced against untraced (the noise
    /// floor). Reports median throughput and the traced/untraced ratio with its
    /// spread, kernel time per program, userspace CPU, peak RSS, emitted and
    /// dropped events, start-up time, and memory with many live connections.
    /// Prints tables and writes target/bench/results.json.
    Bench(tracer_bench::BenchArgs),

    /// Write tracer's man pages (tracer.1 and one per subcommand).
    ///
    /// Builds tracer (release, as for installing it), which writes the pages from
    /// the same definition as its `--help`, to target/man unless --out says
    /// otherwise, and prints their paths. Install them with
    /// `sudo install -m644 target/man/*.1 /usr/local/share/man/man1/`.
    Man(man::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup(args) => setup::setup(&args),
        Task::BuildEbpf(args) => ebpf::build_ebpf(&args),
        Task::Run(args) => run::run(&args),
        Task::Test(args) => test::test(&args),
        Task::Bench(args) => bench::bench(&args),
        Task::Man(args) => man::man(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
