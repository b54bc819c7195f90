//! `stream`: a bulk TCP transfer over loopback, for `cargo xtask bench`.
//!
//! One sender thread writes to one TCP connection on 127.0.0.1 as fast as it
//! can, one receiver thread reads it, pinned to separate cores; after a short
//! warm-up (slow start, cores coming out of idle) the bytes received in a fixed
//! window are counted, and one result line is printed:
//!
//!     stream: seconds=2.000 bytes=6234000000 rate=3117000000.0
//!
//! A connection that is only ever written and read makes no connect, accept
//! or state change while it is measured: what slows it down under a tracer is
//! what runs for every packet (cgroup_skb programs see each segment and each
//! ACK, in both directions), not what runs per connection. Run it in a private
//! network namespace; only loopback is used.

use std::{
    io::{self, Read as _, Write as _},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use tracer_bench::pin_to;

/// Bulk TCP over loopback: bytes/s through one connection.
#[derive(Debug, Parser)]
#[command(name = "stream")]
struct Cli {
    /// How long to measure, after the warm-up.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Core the sender thread runs on.
    #[arg(long, default_value_t = 0)]
    sender_cpu: usize,
    /// Core the receiver thread runs on.
    #[arg(long, default_value_t = 1)]
    receiver_cpu: usize,
}

/// Bytes per write and per read: large enough that the syscalls cost little
/// beside the copying and the packets.
const CHUNK: usize = 256 * 1024;

/// Transfer before the window opens.
const WARM_UP: Duration = Duration::from_millis(300);

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        // The threads still stream: leave without waiting for them.
        Ok(()) => std::process::exit(0),
        Err(err) => {
            eprintln!("stream: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    if !(cli.seconds > 0.0 && cli.seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .context("binding the receiver's socket on 127.0.0.1")?;
    let addr = listener.local_addr().context("receiver address")?;
    let received = Arc::new(AtomicU64::new(0));

    {
        let received = Arc::clone(&received);
        let cpu = cli.receiver_cpu;
        thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                pin_to("stream", cpu);
                if let Err(err) = receive(&listener, &received) {
                    eprintln!("stream: error: {err:#}");
                    std::process::exit(1);
                }
            })
            .context("starting the receiver thread")?;
    }
    {
        let cpu = cli.sender_cpu;
        thread::Builder::new()
            .name("sender".into())
            .spawn(move || {
                pin_to("stream", cpu);
                if let Err(err) = send(addr) {
                    eprintln!("stream: error: {err:#}");
                    std::process::exit(1);
                }
            })
            .context("starting the sender thread")?;
    }

    // Until the first bytes arrive, then the warm-up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) == 0 {
        if Instant::now() >= deadline {
            bail!("no byte arrived within 10 s");
        }
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(WARM_UP);
    let (start, before) = (Instant::now(), received.load(Ordering::Relaxed));
    thread::sleep(Duration::from_secs_f64(cli.seconds));
    let (elapsed, after) = (
        start.elapsed().as_secs_f64(),
        received.load(Ordering::Relaxed),
    );
    let bytes = after - before;
    println!(
        "stream: seconds={elapsed:.3} bytes={bytes} rate={:.1}",
        bytes as f64 / elapsed
    );
    Ok(())
}

/// Accepts the one connection and reads it until it ends, counting bytes.
fn receive(listener: &TcpListener, received: &AtomicU64) -> Result<()> {
    let (mut stream, _) = listener.accept().context("accept")?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => bail!("the sender closed the connection"),
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).context("read"),
        }
    }
}

/// Connects and writes until the process exits.
fn send(addr: std::net::SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connect to {addr}"))?;
    let buf = vec![0x5au8; CHUNK];
    loop {
        stream.write_all(&buf).context("write")?;
    }
}
