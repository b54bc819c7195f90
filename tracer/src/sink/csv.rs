//! `--csv PATH`: one header line, then one row per process per snapshot. The
//! first columns and their order are a contract (README, "CSV columns");
//! columns are only ever added at the end.

use std::{
    fmt::Write as _,
    fs::File,
    io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
};

use crate::snapshot::{Latency, ProcessSnapshot, Snapshot};

/// The header line, without its newline.
pub const HEADER: &str = "timestamp,pid,comm,connects,connect_ok,connect_refused,connect_timeout,\
connect_failed_other,retransmits,syn_retransmits,rst_sent,rst_received,handshake_p50_us,\
handshake_p99_us,handshake_max_us,established,syn_sent,close_wait,time_wait,fds_open,fd_limit,\
socket_fds,emfile_errors,exited,accepted,synack_retransmits,rst_received_handshake,\
syscall_errors,handshake_p90_us,close_wait_oldest_s,syn_recv,listen,closed,lifetime_p50_ms";

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
    pub fn open(path: &Path) -> Result<Self, CsvError> {
        let open_err = |source| CsvError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        let mut sink = Self {
            file,
            path: path.to_owned(),
            rows: 0,
        };
        if len == 0 {
            sink.append(&format!("{HEADER}\n"))?;
            return Ok(sink);
        }
        let mut first = String::new();
        BufReader::new(&sink.file)
            .read_line(&mut first)
            .map_err(open_err)?;
        if first.trim_end_matches(['\n', '\r']) != HEADER {
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
/// directory, named after the snapshot's time; returns its full path.
pub fn save_new(snapshot: &Snapshot) -> Result<PathBuf, CsvError> {
    let stamp: String = humantime::format_rfc3339_seconds(snapshot.taken_at)
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let mut path = PathBuf::from(format!("tracer-{stamp}.csv"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = PathBuf::from(format!("tracer-{stamp}-{n}.csv"));
    }
    let mut csv = CsvSink::open(&path)?;
    csv.write(snapshot)?;
    Ok(std::env::current_dir().map_or(path.clone(), |dir| dir.join(&path)))
}

/// The rows of one snapshot, each ending in a newline.
pub fn rows(snapshot: &Snapshot) -> String {
    let ts = humantime::format_rfc3339_seconds(snapshot.taken_at).to_string();
    let mut out = String::new();
    for p in &snapshot.processes {
        row(&mut out, &ts, p);
    }
    out
}

fn row(out: &mut String, ts: &str, p: &ProcessSnapshot) {
    let c = &p.counts;
    let g = &p.gauges;
    let h = &p.handshake_us;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let pct = |l: &Latency, v: u64| {
        if l.is_empty() {
            String::new()
        } else {
            v.to_string()
        }
    };
    let fields: [String; 34] = [
        ts.to_owned(),
        p.id.pid.to_string(),
        quote(&p.comm),
        c.connects.to_string(),
        c.connect_ok.to_string(),
        c.connect_refused.to_string(),
        c.connect_timeout.to_string(),
        c.connect_failed_other.to_string(),
        c.retransmits.to_string(),
        c.syn_retransmits.to_string(),
        c.rst_sent.to_string(),
        c.rst_received.to_string(),
        pct(h, h.p50),
        pct(h, h.p99),
        pct(h, h.max),
        g.established.to_string(),
        g.syn_sent.to_string(),
        g.close_wait.to_string(),
        g.time_wait.to_string(),
        opt(p.fds.map(|f| f.open)),
        opt(p.fds.and_then(|f| f.limit)),
        opt(p.fds.map(|f| f.sockets)),
        c.emfile_errors.to_string(),
        u8::from(p.exited).to_string(),
        c.accepted.to_string(),
        c.synack_retransmits.to_string(),
        c.rst_received_handshake.to_string(),
        c.syscall_errors.to_string(),
        pct(h, h.p90),
        opt(g.oldest_close_wait.map(|d| d.as_secs())),
        g.syn_recv.to_string(),
        g.listen.to_string(),
        c.closed.to_string(),
        pct(&p.lifetime_ms, p.lifetime_ms.p50),
    ];
    let _ = writeln!(out, "{}", fields.join(","));
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180).
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests;
