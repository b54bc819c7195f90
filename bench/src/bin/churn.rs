//! `churn`: the loopback workload `cargo xtask bench` measures tracer against.
//!
//! `churn run` connects, accepts and closes TCP connections on loopback as fast as
//! one client thread can, for a fixed time, with the client and the server pinned
//! to separate cores, and prints one result line:
//!
//!     churn: mode=reset seconds=2.000 connections=61234 rate=30617.0 failures=0
//!            slowest_connect_ms=0.412 window_waits=0 listen_drops=0
//!
//! (on one line). The client never gets more than [`ACCEPT_WINDOW`] connections
//! ahead of the server, so a slow server slows the client instead of overflowing
//! the accept queue.
//!
//! `--mode reset` closes the client side with `SO_LINGER {on, 0}` (a RST, no
//! TIME_WAIT); `--mode normal` closes it with a FIN, so TIME_WAIT sockets pile up:
//! run that mode in a private network namespace.
//!
//! `churn hold --connections N` opens N connections and keeps them open, printing
//! `churn: holding N connections` once all are established, until its stdin
//! closes; beyond what one process's descriptor limit allows, it spreads them over
//! child processes. Only loopback addresses are ever used.

use std::{
    io::{self, BufRead as _, BufReader, Read as _},
    mem,
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::{AsRawFd as _, RawFd},
    process::{self, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use tracer_bench::{Mode, pin_to};

/// Loopback TCP connection churn for benchmarks.
#[derive(Debug, Parser)]
#[command(name = "churn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect, accept and close connections for a fixed time; print the rate.
    Run {
        /// How the client closes: `reset` (SO_LINGER 0, a RST) or `normal` (a FIN).
        #[arg(long, value_enum, default_value_t = Mode::Reset)]
        mode: Mode,
        /// How long to run.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Core the client thread runs on.
        #[arg(long, default_value_t = 0)]
        client_cpu: usize,
        /// Core the server thread runs on.
        #[arg(long, default_value_t = 1)]
        server_cpu: usize,
    },
    /// Open N connections and hold them until stdin closes.
    Hold {
        #[arg(long, default_value_t = 100_000)]
        connections: u64,
        /// Connections per server address (127.0.0.1, 127.0.0.2, …), to stay within
        /// the local port range.
        #[arg(long, default_value_t = 25_000)]
        per_address: u64,
    },
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Run {
            mode,
            seconds,
            client_cpu,
            server_cpu,
        } => run(mode, seconds, client_cpu, server_cpu),
        Command::Hold {
            connections,
            per_address,
        } => hold(connections, per_address),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("churn: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Connections the client may have made that the server has not accepted yet.
/// Well below the listen backlog: a full accept queue drops SYNs, and each drop
/// stalls the client's connect for a whole SYN retransmit timeout (1 s), which
/// would swamp what the benchmark measures.
const ACCEPT_WINDOW: u64 = 1024;

fn run(mode: Mode, seconds: f64, client_cpu: usize, server_cpu: usize) -> Result<()> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .context("binding the server socket on 127.0.0.1")?;
    set_backlog(&listener, 4096)?;
    let addr = listener.local_addr().context("server address")?;
    let accepted = Arc::new(AtomicU64::new(0));

    // The server accepts and closes; in normal mode it first waits for the
    // client's FIN, so TIME_WAIT lands on the client side every time.
    {
        let accepted = Arc::clone(&accepted);
        thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                pin_to("churn", server_cpu);
                let mut byte = [0u8; 1];
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                            if mode == Mode::Normal {
                                let _ = stream.read(&mut byte);
                            }
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => {
                            eprintln!("churn: accept failed: {err}");
                            std::process::exit(1);
                        }
                    }
                }
            })
            .context("starting the server thread")?;
    }

    pin_to("churn", client_cpu);
    let drops_before = listen_drops();
    let window = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut connections: u64 = 0;
    let mut failures: u64 = 0;
    let mut waits: u64 = 0;
    let mut slowest = Duration::ZERO;
    loop {
        let before = Instant::now();
        if before - start >= window {
            break;
        }
        if connections >= accepted.load(Ordering::Relaxed) + ACCEPT_WINDOW {
            waits += 1;
            thread::sleep(Duration::from_micros(50));
            continue;
        }
        match TcpStream::connect(addr) {
            Ok(stream) => {
                slowest = slowest.max(before.elapsed());
                if mode == Mode::Reset {
                    set_linger_zero(stream.as_raw_fd())?;
                }
                drop(stream);
                connections += 1;
            }
            // A port still in TIME_WAIT and the like: count and go on, but give up
            // if nothing works.
            Err(err) => {
                failures += 1;
                if failures > 1000 && failures > connections {
                    bail!("connect to {addr} keeps failing: {err}");
                }
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let drops = listen_drops()
        .zip(drops_before)
        .map(|(after, before)| after - before);
    println!(
        "churn: mode={} seconds={elapsed:.3} connections={connections} rate={:.1} \
         failures={failures} slowest_connect_ms={:.3} window_waits={waits} listen_drops={}",
        mode.name(),
        connections as f64 / elapsed,
        slowest.as_secs_f64() * 1e3,
        drops.map_or_else(|| "unknown".to_owned(), |d| d.to_string()),
    );
    Ok(())
}

/// SYNs this network namespace's listeners dropped so far (TcpExt ListenDrops,
/// which includes ListenOverflows), from /proc/net/netstat.
fn listen_drops() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenDrops")
        .and_then(|(_, value)| value.parse().ok())
}

fn hold(connections: u64, per_address: u64) -> Result<()> {
    if per_address == 0 {
        bail!("--per-address must be at least 1");
    }
    // Both ends of every connection are in one process, so a process holds at
    // most half its descriptor limit; more connections take more processes.
    let limit = raise_nofile(connections * 2 + 64)?;
    let per_process = limit.saturating_sub(64) / 2;
    if per_process == 0 {
        bail!("RLIMIT_NOFILE {limit} leaves no room for connections");
    }
    if connections > per_process {
        return hold_in_processes(connections, per_process, per_address);
    }
    let addresses = connections.div_ceil(per_address).max(1);
    if addresses > 250 {
        bail!("{connections} connections need more than 250 loopback addresses");
    }

    // One listener per address, all on the same port.
    let first = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 0))
        .context("binding 127.0.0.1")?;
    let port = first.local_addr().context("server address")?.port();
    let mut listeners = vec![first];
    for i in 2..=addresses {
        let ip = Ipv4Addr::new(127, 0, 0, i as u8);
        let listener = TcpListener::bind(SocketAddrV4::new(ip, port))
            .with_context(|| format!("binding {ip}:{port}"))?;
        listeners.push(listener);
    }

    let accepted = Arc::new(AtomicU64::new(0));
    let mut servers = Vec::new();
    for listener in listeners {
        set_backlog(&listener, 4096)?;
        let accepted = Arc::clone(&accepted);
        let server = thread::Builder::new()
            .name("server".into())
            .spawn(move || -> io::Result<Vec<TcpStream>> {
                let mut held = Vec::new();
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            held.push(stream);
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(err),
                    }
                }
            })
            .context("starting a server thread")?;
        servers.push(server);
    }

    let started = Instant::now();
    let mut clients = Vec::with_capacity(usize::try_from(connections).unwrap_or(0));
    for n in 0..connections {
        let ip = Ipv4Addr::new(127, 0, 0, (n / per_address + 1) as u8);
        let stream = TcpStream::connect(SocketAddrV4::new(ip, port))
            .with_context(|| format!("connection {} of {connections} to {ip}:{port}", n + 1))?;
        // At exit the connections end with a RST: no TIME_WAIT left behind.
        set_linger_zero(stream.as_raw_fd())?;
        clients.push(stream);
    }
    while accepted.load(Ordering::Relaxed) < connections {
        if servers.iter().any(|server| server.is_finished()) {
            bail!("a server thread stopped accepting");
        }
        thread::sleep(Duration::from_millis(10));
    }
    println!(
        "churn: holding {connections} connections ({addresses} server addresses, opened in {:.1}s)",
        started.elapsed().as_secs_f64()
    );

    // Until whoever started us closes our stdin.
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    // Exiting closes every socket.
    std::process::exit(0);
}

/// Holds `connections` in child processes of at most `per_process` each.
fn hold_in_processes(connections: u64, per_process: u64, per_address: u64) -> Result<()> {
    let exe = std::env::current_exe().context("locating the churn binary")?;
    let started = Instant::now();
    let mut workers = Vec::new();
    let mut left = connections;
    while left > 0 {
        let n = left.min(per_process);
        let child = process::Command::new(&exe)
            .args(["hold", "--connections", &n.to_string()])
            .arg(format!("--per-address={per_address}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        workers.push(child);
        left -= n;
    }
    for worker in &mut workers {
        let stdout = worker.stdout.take().context("worker stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading a worker's output")?;
        if !line.starts_with("churn: holding") {
            bail!("a worker process failed to open its connections");
        }
    }
    println!(
        "churn: holding {connections} connections ({} processes, opened in {:.1}s)",
        workers.len(),
        started.elapsed().as_secs_f64()
    );
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    for worker in &mut workers {
        drop(worker.stdin.take());
    }
    for worker in &mut workers {
        let _ = worker.wait();
    }
    Ok(())
}

/// `listen(2)` again with a longer backlog than std's default of 128.
fn set_backlog(listener: &TcpListener, backlog: i32) -> Result<()> {
    // SAFETY: a valid listening socket.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), backlog) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("listen");
    }
    Ok(())
}

/// `SO_LINGER {on, 0}`: close sends a RST and skips TIME_WAIT.
fn set_linger_zero(fd: RawFd) -> Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("setsockopt(SO_LINGER)");
    }
    Ok(())
}

/// Raises RLIMIT_NOFILE towards `wanted` (the hard limit too, where allowed);
/// returns the soft limit in force.
fn raise_nofile(wanted: u64) -> Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid resource and pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    if limit.rlim_cur >= wanted {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: limit.rlim_max.max(wanted),
    };
    // SAFETY: valid resource and pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(wanted);
    }
    // Without CAP_SYS_RESOURCE the hard limit stays: go up to it.
    let capped = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: valid resource and pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } != 0 {
        return Err(io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
    }
    Ok(limit.rlim_max)
}
