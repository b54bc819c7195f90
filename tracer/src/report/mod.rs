//! `tracer report CAPTURE.csv`: one self-contained HTML page from a `--csv`
//! capture (and, when given, the run's `--events` file): the processes
//! ranked by trouble, a chart of each one's main series, the findings over
//! time, the remote endpoints and the capture's own facts.
//!
//! The capture is streamed twice and never held: the first pass
//! ([`summary`]) ranks the processes and follows their findings, the second
//! ([`series`]) collects bounded series for the processes charted. Then
//! [`render`] writes the page (charts drawn by [`chart`]) without I/O.

mod capture;
mod chart;
mod events;
mod html;
mod metrics;
mod render;
mod series;
mod summary;

use std::{
    fs::File,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

pub use capture::CaptureError;
pub use events::EventsError;

use crate::cli::ReportArgs;

/// What the findings rules are told of a capture: it does not record whether
/// failed syscalls were counted, so they are taken to be (a process at its
/// FD limit is then "about to run out", not "ran out").
const CAPTURED: crate::findings::Context = crate::findings::Context {
    syscall_errors_counted: true,
};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "{} already exists; give another path with -o, or --force to replace it",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("the report would replace the capture itself ({}); give another path with -o", path.display())]
    SameAsCapture { path: PathBuf },
    #[error("cannot write the report {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the report to standard output: {0}")]
    Stdout(std::io::Error),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
}

/// Where the report goes.
enum Output {
    Stdout,
    File { path: PathBuf, replace: bool },
}

/// Runs `tracer report`.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let output = output(args)?;
    let html = build(args)?;
    match &output {
        Output::Stdout => std::io::stdout()
            .lock()
            .write_all(html.as_bytes())
            .map_err(ReportError::Stdout)?,
        Output::File { path, replace } => {
            write(path, *replace, html.as_bytes())?;
            let _ = writeln!(
                std::io::stderr(),
                "tracer: report written to {}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The output `args` name (by default the capture's path ending in
/// `.html`), refused before anything is read when it exists without
/// `--force` or is the capture itself.
fn output(args: &ReportArgs) -> Result<Output, ReportError> {
    let path = match &args.output {
        Some(path) if path.as_os_str() == "-" => return Ok(Output::Stdout),
        Some(path) => path.clone(),
        None => default_output(&args.capture),
    };
    let same = match (path.canonicalize(), args.capture.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same || path == args.capture {
        return Err(ReportError::SameAsCapture { path });
    }
    if !args.force && path.symlink_metadata().is_ok() {
        return Err(ReportError::Exists { path });
    }
    Ok(Output::File {
        path,
        replace: args.force,
    })
}

/// `capture.csv` → `capture.html`; a name without `.csv` gets `.html` added.
fn default_output(capture: &Path) -> PathBuf {
    match capture.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("csv") => capture.with_extension("html"),
        _ => {
            let mut name = capture.as_os_str().to_owned();
            name.push(".html");
            PathBuf::from(name)
        }
    }
}

/// The page, from two passes over the capture.
pub fn build(args: &ReportArgs) -> Result<String, ReportError> {
    let mut summary = summary::Summary::default();
    let facts = capture::scan(&args.capture, |row| summary.observe(row))?;
    let events = args.events.as_deref().map(events::read).transpose()?;
    let ranked = summary.ranked();
    let charted = ranked.len().min(usize::from(args.top));
    let (first, last) = (summary.first.unwrap_or(0), summary.last.unwrap_or(0));
    let mut series = series::Collector::new(
        ranked.iter().take(charted).map(|p| p.key),
        first,
        last,
        summary.interval().unwrap_or(1),
    );
    capture::scan(&args.capture, |row| series.observe(row))?;
    let capture_name = args.capture.display().to_string();
    let events_name = args.events.as_ref().map(|p| p.display().to_string());
    let report = render::Report {
        capture: &capture_name,
        facts: &facts,
        summary: &summary,
        ranked: &ranked,
        charted,
        series: &series,
        events: events_name.as_deref().zip(events.as_ref()),
    };
    Ok(render::render(&report)?)
}

/// Writes `bytes` to a new file at `path` (owner-only, like the capture: it
/// names processes and addresses). With `replace`, through a temporary file
/// renamed over the old one, so a failed write leaves the old report whole.
fn write(path: &Path, replace: bool, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    let target = if replace {
        let mut name = path.file_name().unwrap_or_default().to_owned();
        name.push(format!(".tmp-{}", std::process::id()));
        path.with_file_name(name)
    } else {
        path.to_owned()
    };
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists if !replace => ReportError::Exists {
                path: path.to_owned(),
            },
            _ => err(e),
        })?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            if replace {
                std::fs::rename(&target, path)
            } else {
                Ok(())
            }
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&target);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
