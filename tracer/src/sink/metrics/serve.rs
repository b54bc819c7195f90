//! The `--prometheus` endpoint: a small HTTP/1.1 server on tokio that answers
//! `GET /metrics` with the latest [`Exposition`], one request per connection.
//! It is bound before anything is loaded, so a port in use is an error at once.

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use super::{Exposition, Format, render};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} for --prometheus: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
}

/// A request head larger than this is refused.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` (synchronously: the caller is about to load programs and
/// wants the error now).
pub fn bind(addr: SocketAddr) -> Result<StdListener, ServeError> {
    let bind_err = |source: std::io::Error| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another program listens there: choose another port)"
            }
            std::io::ErrorKind::AddrNotAvailable => " (no interface of this host has that address)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need root)",
            _ => "",
        };
        ServeError::Bind { addr, source, hint }
    };
    let listener = StdListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// Serves `/metrics` from `latest` until the runtime stops. Must be called
/// within a tokio runtime.
pub fn spawn(
    listener: StdListener,
    latest: watch::Receiver<Arc<Exposition>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::from_std(listener)?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let latest = latest.borrow().clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &latest).await {
                            tracing::debug!("--prometheus: a request failed: {e}");
                        }
                    });
                }
                // Out of descriptors, say: try again shortly rather than spin.
                Err(e) => {
                    tracing::warn!("--prometheus: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(addr)
}

/// Reads one request and answers it.
async fn answer(mut stream: TcpStream, latest: &Arc<Exposition>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() <= MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        std::io::Result::Ok(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let response = respond(&String::from_utf8_lossy(&head), latest);
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The response to a request head: pure, so it is unit-tested.
pub fn respond(head: &str, latest: &Arc<Exposition>) -> Vec<u8> {
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map_or("", |(_, value)| value.trim());
    let path = target.split('?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let format = Format::negotiate(accept);
            ("200 OK", format.content_type(), render(latest, format))
        }
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "tracer serves its metrics at /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET /metrics is served\n".to_owned(),
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
