//! Reads a `--csv` capture as a stream of rows: columns are found by name
//! (older files have fewer, unknown ones are ignored), rows that cannot be
//! read are skipped and counted, and a last line cut short by a run that
//! died mid-write is left out. Nothing is kept between rows, so a capture
//! of any size reads in constant memory; the report reads it twice.

use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use super::metrics::{self, COMM, METRICS, PID, START_TIME, TIMESTAMP, Values};

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot read the capture {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is empty: a tracer capture starts with its header line (tracer --csv writes one)", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not a tracer CSV capture: {why}", path.display())]
    NotTracer { path: PathBuf, why: String },
    #[error("{} has tracer's header but no complete row: nothing to report", path.display())]
    NoRows { path: PathBuf },
    #[error("reading the capture {}: {source}", path.display())]
    Read { path: PathBuf, source: csv::Error },
}

/// A first line longer than this is not a header tracer wrote (its header is
/// under 1 KiB); checked before anything is parsed, so a binary file is not
/// read as one enormous field.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One row of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// Snapshot time, seconds since the Unix epoch.
    pub at: i64,
    pub pid: u32,
    pub comm: &'a str,
    /// When the process started, seconds since the epoch (newer files only).
    pub start: Option<i64>,
    pub values: Values,
}

/// What reading the capture found besides its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub bytes: u64,
    pub columns: usize,
    /// Columns the report reads that this file lacks (an older tracer).
    pub missing: Vec<&'static str>,
    /// Columns this file has that this version does not write (a newer
    /// tracer's): ignored.
    pub unknown: Vec<String>,
    pub rows: u64,
    /// Rows that could not be read, and the first of them.
    pub skipped: u64,
    pub first_skipped: Option<String>,
    /// Header lines met again among the rows (files joined with `cat`).
    pub repeated_headers: u64,
    /// The file did not end with a newline: its last line was left out.
    pub truncated_last_line: bool,
}

/// Where each column the report reads sits in this file.
struct Columns {
    /// How many the header names: a row with another number is not read.
    count: usize,
    timestamp: usize,
    pid: usize,
    comm: usize,
    start: Option<usize>,
    metrics: [Option<usize>; metrics::COUNT],
}

/// Calls `visit` with every readable row of the capture at `path`, in file
/// order; returns what it found on the way.
pub fn scan(path: &Path, mut visit: impl FnMut(&Row<'_>)) -> Result<Facts, CaptureError> {
    let open = |source| CaptureError::Open {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(open)?;
    let bytes = file.metadata().map_err(open)?.len();
    if bytes == 0 {
        return Err(CaptureError::Empty {
            path: path.to_owned(),
        });
    }
    check_first_line(&mut file, path)?;
    let complete = complete_length(&mut file, bytes).map_err(open)?;
    file.seek(SeekFrom::Start(0)).map_err(open)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(file.take(complete));
    let not_tracer = |why: String| CaptureError::NotTracer {
        path: path.to_owned(),
        why,
    };
    let header = reader
        .headers()
        .map_err(|e| not_tracer(format!("its first line is not CSV text ({e})")))?
        .clone();
    let (columns, mut facts) = locate(&header).map_err(not_tracer)?;
    facts.bytes = bytes;
    facts.truncated_last_line = complete < bytes;

    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            // A row that is not UTF-8 is a bad row, not a bad file.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                skip(&mut facts, line_of(&e), "not UTF-8 text");
                continue;
            }
            Err(source) => {
                return Err(CaptureError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if record.get(columns.timestamp) == Some(TIMESTAMP) {
            facts.repeated_headers += 1;
            continue;
        }
        match parse(&record, &columns) {
            Ok(row) => {
                facts.rows += 1;
                visit(&row);
            }
            Err(why) => skip(&mut facts, line, &why),
        }
    }
    if facts.rows == 0 {
        return Err(CaptureError::NoRows {
            path: path.to_owned(),
        });
    }
    Ok(facts)
}

fn skip(facts: &mut Facts, line: u64, why: &str) {
    facts.skipped += 1;
    facts
        .first_skipped
        .get_or_insert_with(|| format!("line {line}: {why}"));
}

fn line_of(e: &csv::Error) -> u64 {
    e.position().map_or(0, csv::Position::line)
}

/// Refuses a file whose first line is not short text.
fn check_first_line(file: &mut File, path: &Path) -> Result<(), CaptureError> {
    let mut head = Vec::with_capacity(4096);
    file.by_ref()
        .take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| CaptureError::Open {
            path: path.to_owned(),
            source,
        })?;
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let why = if line.len() >= MAX_HEADER_BYTES {
        Some(format!(
            "its first line is longer than {MAX_HEADER_BYTES} bytes"
        ))
    } else if line.contains(&0) || std::str::from_utf8(line).is_err() {
        Some("its first line is not text".to_owned())
    } else {
        None
    };
    match why {
        Some(why) => Err(CaptureError::NotTracer {
            path: path.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// The length up to and including the last newline: what follows it is a
/// line a run did not finish writing. A file without any newline is taken
/// whole (a header alone).
fn complete_length(file: &mut File, bytes: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = bytes;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let len = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..len])?;
        if let Some(at) = buf[..len].iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(bytes)
}

/// Finds the columns by name in `header`.
fn locate(header: &csv::StringRecord) -> Result<(Columns, Facts), String> {
    let find = |name: &str| header.iter().position(|h| h.trim() == name);
    let required: Vec<Option<usize>> = [TIMESTAMP, PID, COMM].iter().map(|n| find(n)).collect();
    let (Some(timestamp), Some(pid), Some(comm)) = (required[0], required[1], required[2]) else {
        let absent: Vec<&str> = [TIMESTAMP, PID, COMM]
            .into_iter()
            .zip(&required)
            .filter(|(_, at)| at.is_none())
            .map(|(name, _)| name)
            .collect();
        return Err(format!(
            "its header has no {} column (tracer --csv writes timestamp, pid, comm, … first)",
            absent.join(", ")
        ));
    };
    let mut metric_columns = [None; metrics::COUNT];
    let mut missing = Vec::new();
    for (i, (_, name, _)) in METRICS.iter().enumerate() {
        metric_columns[i] = find(name);
        if metric_columns[i].is_none() {
            missing.push(*name);
        }
    }
    let start = find(START_TIME);
    if start.is_none() {
        missing.push(START_TIME);
    }
    // Unknown: not a column this version writes (a newer tracer's).
    let written: Vec<&str> = crate::sink::csv::header().split(',').collect();
    let known = |h: &str| written.contains(&h);
    let unknown = header
        .iter()
        .map(str::trim)
        .filter(|h| !known(h))
        .map(str::to_owned)
        .collect();
    let columns = Columns {
        count: header.len(),
        timestamp,
        pid,
        comm,
        start,
        metrics: metric_columns,
    };
    let facts = Facts {
        columns: header.len(),
        missing,
        unknown,
        ..Facts::default()
    };
    Ok((columns, facts))
}

/// One record as a row, or why it is not one.
fn parse<'a>(record: &'a csv::StringRecord, columns: &Columns) -> Result<Row<'a>, String> {
    if record.len() != columns.count {
        return Err(format!(
            "it has {} fields where the header has {}",
            record.len(),
            columns.count
        ));
    }
    let field = |at: usize, name: &str| {
        record
            .get(at)
            .ok_or_else(|| format!("the row ends before its `{name}` column"))
    };
    let at = seconds(field(columns.timestamp, TIMESTAMP)?)
        .ok_or_else(|| "its timestamp is not an RFC 3339 time".to_owned())?;
    let pid = field(columns.pid, PID)?
        .parse()
        .map_err(|_| "its pid is not a number".to_owned())?;
    let comm = field(columns.comm, COMM)?;
    let start = match columns.start {
        Some(at) => match field(at, START_TIME)? {
            "" => None,
            text => Some(seconds(text).ok_or_else(|| "its start_time is not a time".to_owned())?),
        },
        None => None,
    };
    let mut values = [None; metrics::COUNT];
    for (i, at) in columns.metrics.iter().enumerate() {
        let Some(at) = *at else { continue };
        let name = METRICS[i].1;
        values[i] = match field(at, name)? {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| format!("its `{name}` is not a count ({text:?})"))?,
            ),
        };
    }
    Ok(Row {
        at,
        pid,
        comm,
        start,
        values,
    })
}

/// Seconds since the epoch of an RFC 3339 time.
pub fn seconds(text: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
}

/// The time `secs` after the epoch.
pub fn time(secs: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}
