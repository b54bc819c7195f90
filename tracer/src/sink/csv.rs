//! `--csv PATH`: one header line, then one row per process per snapshot.
//!
//! [`Row`] is the whole format: its field names are the header, its field
//! order the column order, and serde writes both. The first columns and their
//! order are a contract (README, "CSV columns", checked by a test); columns
//! are only ever added at the end.

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::LazyLock,
};

use serde::Serialize;

use crate::snapshot::{Latency, ProcessSnapshot, Snapshot};

/// One process in one snapshot. Counters are cumulative since start; `None`
/// is an empty cell.
#[derive(Debug, Default, Serialize)]
struct Row<'a> {
    /// RFC 3339, UTC, whole seconds.
    timestamp: &'a str,
    pid: u32,
    comm: &'a str,
    connects: u64,
    connect_ok: u64,
    connect_refused: u64,
    connect_timeout: u64,
    connect_failed_other: u64,
    retransmits: u64,
    syn_retransmits: u64,
    rst_sent: u64,
    rst_received: u64,
    /// Empty until a handshake completes, like every percentile.
    handshake_p50_us: Option<u64>,
    handshake_p99_us: Option<u64>,
    handshake_max_us: Option<u64>,
    established: u64,
    syn_sent: u64,
    close_wait: u64,
    time_wait: u64,
    /// Empty once the process has exited.
    fds_open: Option<u64>,
    /// Empty when unlimited or the process has exited.
    fd_limit: Option<u64>,
    socket_fds: Option<u64>,
    emfile_errors: u64,
    /// `0` or `1`.
    exited: u8,
    accepted: u64,
    synack_retransmits: u64,
    rst_received_handshake: u64,
    syscall_errors: u64,
    handshake_p90_us: Option<u64>,
    close_wait_oldest_s: Option<u64>,
    syn_recv: u64,
    listen: u64,
    closed: u64,
    lifetime_p50_ms: Option<u64>,
    /// When the process started (RFC 3339, UTC): with the pid, it tells a
    /// reused pid from the process that had it before.
    start_time: Option<String>,
    connect_abandoned: u64,
    socket_errors: u64,
    accept_queue: Option<u32>,
    accept_backlog: Option<u32>,
    listen_overflows: u64,
    drops: u64,
    /// The container's short id (12 hex digits); empty outside containers.
    container: Option<&'a str>,
    /// The cgroup path (v2's, on a hybrid host too).
    cgroup: Option<&'a str>,
    /// The Kubernetes pod's uid; empty outside pods.
    pod: Option<&'a str>,
    /// The systemd unit, for a process in no container.
    unit: Option<&'a str>,
    dns_queries: u64,
    /// Answers with an error code (NXDOMAIN, SERVFAIL …).
    dns_failures: u64,
    dns_timeouts: u64,
    dns_p50_us: Option<u64>,
    dns_p99_us: Option<u64>,
    srtt_p50_us: Option<u32>,
    srtt_p99_us: Option<u32>,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
}

impl<'a> Row<'a> {
    fn new(timestamp: &'a str, p: &'a ProcessSnapshot) -> Self {
        let c = &p.counts;
        let g = &p.gauges;
        let h = &p.handshake_us;
        let pct = |l: &Latency, v: u64| (!l.is_empty()).then_some(v);
        Self {
            timestamp,
            pid: p.id.pid,
            comm: &p.comm,
            connects: c.connects,
            connect_ok: c.connect_ok,
            connect_refused: c.connect_refused,
            connect_timeout: c.connect_timeout,
            connect_failed_other: c.connect_failed_other,
            retransmits: c.retransmits,
            syn_retransmits: c.syn_retransmits,
            rst_sent: c.rst_sent,
            rst_received: c.rst_received,
            handshake_p50_us: pct(h, h.p50),
            handshake_p99_us: pct(h, h.p99),
            handshake_max_us: pct(h, h.max),
            established: g.established,
            syn_sent: g.syn_sent,
            close_wait: g.close_wait,
            time_wait: g.time_wait,
            fds_open: p.fds.map(|f| f.open),
            fd_limit: p.fds.and_then(|f| f.limit),
            socket_fds: p.fds.map(|f| f.sockets),
            emfile_errors: c.emfile_errors,
            exited: u8::from(p.exited),
            accepted: c.accepted,
            synack_retransmits: c.synack_retransmits,
            rst_received_handshake: c.rst_received_handshake,
            syscall_errors: c.syscall_errors,
            handshake_p90_us: pct(h, h.p90),
            close_wait_oldest_s: g.oldest_close_wait.map(|d| d.as_secs()),
            syn_recv: g.syn_recv,
            listen: g.listen,
            closed: c.closed,
            lifetime_p50_ms: pct(&p.lifetime_ms, p.lifetime_ms.p50),
            start_time: crate::proc::process::started_at(p.id.start_ticks)
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            connect_abandoned: c.connect_abandoned,
            socket_errors: c.socket_errors,
            accept_queue: p.listeners.first().map(|l| l.queue),
            accept_backlog: p.listeners.first().and_then(|l| l.backlog),
            listen_overflows: c.listen_overflows,
            drops: c.drops,
            container: p.cgroup.as_deref().and_then(|g| g.short_container()),
            cgroup: p.cgroup.as_deref().map(|g| g.path.as_str()),
            pod: p.cgroup.as_deref().and_then(|g| g.pod.as_deref()),
            unit: p.cgroup.as_deref().and_then(|g| g.unit.as_deref()),
            dns_queries: c.dns_queries,
            dns_failures: c.dns_failures,
            dns_timeouts: c.dns_timeouts,
            dns_p50_us: pct(&p.dns.latency_us, p.dns.latency_us.p50),
            dns_p99_us: pct(&p.dns.latency_us, p.dns.latency_us.p99),
            srtt_p50_us: g.srtt_p50_us,
            srtt_p99_us: g.srtt_p99_us,
            bytes_sent: g.bytes_sent,
            bytes_received: g.bytes_received,
        }
    }
}

/// The header line, without its newline: [`Row`]'s field names.
pub fn header() -> &'static str {
    static HEADER: LazyLock<String> = LazyLock::new(|| {
        let text = encode(true, [Row::default()]);
        text.lines().next().unwrap_or_default().to_owned()
    });
    &HEADER
}

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot open --csv file {path} for writing: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--csv file {path} already holds other data (its first line is not tracer's CSV header); \
         choose another path or move the file away"
    )]
    OtherHeader { path: PathBuf },
    #[error("writing --csv file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot save the snapshot to {path}: {source}")]
    Save {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Appends snapshots to a CSV file.
#[derive(Debug)]
pub struct CsvSink {
    file: File,
    path: PathBuf,
    /// Rows written so far (this run).
    pub rows: u64,
}

impl CsvSink {
    /// Opens `path` for appending. A new or empty file gets the header; a file
    /// that starts with the same header is continued; anything else is refused.
    /// A new file is readable by its owner only (it names every traced
    /// process, address and port), whatever the umask.
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let open_err = |source| CsvError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::options()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(open_err)?;
        Self::start(file, path)
    }

    /// Continues or starts the file opened at `path`.
    fn start(file: File, path: &Path) -> Result<Self, CsvError> {
        let open_err = |source| CsvError::Open {
            path: path.to_owned(),
            source,
        };
        let len = file.metadata().map_err(open_err)?.len();
        let mut sink = Self {
            file,
            path: path.to_owned(),
            rows: 0,
        };
        if len == 0 {
            sink.append(&format!("{}\n", header()))?;
            return Ok(sink);
        }
        let mut first = String::new();
        BufReader::new(&sink.file)
            .read_line(&mut first)
            .map_err(open_err)?;
        if first.trim_end_matches(['\n', '\r']) != header() {
            return Err(CsvError::OtherHeader {
                path: path.to_owned(),
            });
        }
        // A run that died mid-row left no newline: start on a fresh line.
        let mut last = [0u8; 1];
        sink.file.seek(SeekFrom::End(-1)).map_err(open_err)?;
        sink.file.read_exact(&mut last).map_err(open_err)?;
        if last[0] != b'\n' {
            sink.append("\n")?;
        }
        Ok(sink)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one row per process. Rows are written in one call, so a failure
    /// never leaves earlier snapshots' rows incomplete.
    pub fn write(&mut self, snapshot: &Snapshot) -> Result<(), CsvError> {
        let text = rows(snapshot);
        self.append(&text)?;
        self.rows += snapshot.processes.len() as u64;
        Ok(())
    }

    fn append(&mut self, text: &str) -> Result<(), CsvError> {
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| CsvError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// The live view's `s`: `snapshot` to a new CSV file in the current
/// directory, named after the snapshot's time; returns its full path. The
/// file is created, never opened: a name that exists (a file, or a symlink
/// planted in a shared directory) gets the next suffix, `-2`, `-3` …
pub fn save_new(snapshot: &Snapshot) -> Result<PathBuf, CsvError> {
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    save_in(&dir, snapshot)
}

/// [`save_new`] into `dir`.
pub fn save_in(dir: &Path, snapshot: &Snapshot) -> Result<PathBuf, CsvError> {
    let stamp: String = humantime::format_rfc3339_seconds(snapshot.taken_at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut n = 1;
    let (file, path) = loop {
        let path = dir.join(match n {
            1 => format!("tracer-{stamp}.csv"),
            n => format!("tracer-{stamp}-{n}.csv"),
        });
        let created = File::options()
            .read(true)
            .append(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(file) => break (file, path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(source) => return Err(CsvError::Save { path, source }),
        }
    };
    let mut csv = CsvSink::start(file, &path).map_err(|e| match e {
        CsvError::Open { path, source } | CsvError::Write { path, source } => {
            CsvError::Save { path, source }
        }
        other => other,
    })?;
    csv.write(snapshot).map_err(|e| match e {
        CsvError::Write { path, source } => CsvError::Save { path, source },
        other => other,
    })?;
    Ok(path)
}

/// The rows of one snapshot, each ending in a newline.
pub fn rows(snapshot: &Snapshot) -> String {
    let ts = humantime::format_rfc3339_seconds(snapshot.taken_at).to_string();
    encode(false, snapshot.processes.iter().map(|p| Row::new(&ts, p)))
}

/// `rows` as CSV text (RFC 4180 quoting, `\n` line ends), after the header
/// line when `header` is set.
fn encode<'a>(header: bool, rows: impl IntoIterator<Item = Row<'a>>) -> String {
    let mut out = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    for row in rows {
        // Into memory, a record of numbers and strings cannot fail to encode:
        // the writer's errors are I/O errors and shapes CSV has no cell for.
        out.serialize(row)
            .expect("a flat record encodes into memory");
    }
    let bytes = out.into_inner().expect("flushing into memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

#[cfg(test)]
mod tests;
