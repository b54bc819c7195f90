//! `--summary-json PATH`: at exit, one JSON object with the numbers of the
//! stderr summary line, for scripts that would otherwise parse that line.
//! The keys are a contract (README, Usage): the kernel counts under their
//! [`KernelCounts::named`] names, then `csv_rows`, `events_unwritten`,
//! `samples` and `sample_cpu_ms`.

use std::{
    fs::File,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Map, Value};

use crate::snapshot::KernelCounts;

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("cannot open --summary-json file {path} for writing: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing --summary-json file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What reading /proc and the socket tables cost over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sampling {
    /// Samples read.
    pub samples: u64,
    /// CPU time they took to read (not to apply).
    pub cpu: Duration,
}

/// The file the summary is written to at exit.
#[derive(Debug)]
pub struct SummaryFile {
    file: File,
    path: PathBuf,
}

impl SummaryFile {
    /// Creates `path` now (mode 0600 when new; an existing file is emptied,
    /// so it never shows an earlier run's numbers), so that a path that
    /// cannot be written is an error before tracing starts.
    pub fn create(path: &Path) -> Result<Self, SummaryError> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| SummaryError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Writes the summary, once, at exit.
    pub fn write(
        &mut self,
        kernel: &KernelCounts,
        csv_rows: Option<u64>,
        events_unwritten: Option<u64>,
        sampling: Sampling,
    ) -> Result<(), SummaryError> {
        let mut text = render(kernel, csv_rows, events_unwritten, sampling).to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .map_err(|source| SummaryError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// The summary object: every kernel count, and `csv_rows` (null without `--csv`).
pub fn render(
    kernel: &KernelCounts,
    csv_rows: Option<u64>,
    events_unwritten: Option<u64>,
    sampling: Sampling,
) -> Value {
    let mut object: Map<String, Value> = kernel
        .named()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), n.into()))
        .collect();
    object.insert("csv_rows".to_owned(), csv_rows.into());
    object.insert("events_unwritten".to_owned(), events_unwritten.into());
    object.insert("samples".to_owned(), sampling.samples.into());
    let cpu_ms = u64::try_from(sampling.cpu.as_millis()).unwrap_or(u64::MAX);
    object.insert("sample_cpu_ms".to_owned(), cpu_ms.into());
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn every_key_once_as_an_integer() {
        let kernel = KernelCounts {
            read: 1,
            submitted: 2,
            dropped: 3,
            filtered: 4,
            unattributed: 5,
            owners: 6,
            owners_evicted: 7,
            decode_errors: 8,
            closed_port_resets: 10,
        };
        let sampling = Sampling {
            samples: 12,
            cpu: Duration::from_micros(13_400),
        };
        let v = render(&kernel, Some(9), Some(11), sampling);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "read",
                "submitted",
                "dropped",
                "filtered",
                "unattributed",
                "owners",
                "owners_evicted",
                "decode_errors",
                "closed_port_resets",
                "csv_rows",
                "events_unwritten",
                "samples",
                "sample_cpu_ms"
            ]
        );
        let numbers: Vec<u64> = v
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12, 13]);
        assert!(render(&kernel, None, None, sampling)["csv_rows"].is_null());
    }

    #[test]
    fn created_private_at_start_and_written_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        std::fs::write(&path, "stale").unwrap();
        let mut file = SummaryFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "emptied at start"
        );
        file.write(&KernelCounts::default(), None, None, Sampling::default())
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["read"], 0);
        assert!(text.ends_with("}\n"));

        let fresh = dir.path().join("fresh.json");
        SummaryFile::create(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_unwritable_path_is_an_error_naming_it() {
        let err = SummaryFile::create(Path::new("/proc/no/such/dir/s.json")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "cannot open --summary-json file /proc/no/such/dir/s.json for writing"
            ),
            "{err}"
        );
    }
}
