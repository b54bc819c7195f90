//! tracer's own counts at exit, from the file its `--summary-json PATH` writes.

use std::{fs, io, path::Path};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// What tracer counted, as it writes it at exit:
/// `{"read": 241320, "submitted": 241320, "dropped": 0, "filtered": 0,
/// "unattributed": 767, "owners": 12, "owners_evicted": 0, "decode_errors": 0,
/// "csv_rows": 40}`. The benchmark keeps the counts it reports; other keys are
/// ignored. In the results the decode errors keep their old name, `undecodable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Events userspace read from the ring buffer.
    pub read: u64,
    /// Records the kernel programs submitted to the ring buffer.
    pub submitted: u64,
    /// Records lost because the ring buffer was full.
    pub dropped: u64,
    /// Events the in-kernel filter left out.
    pub filtered: u64,
    /// Events no process could be named for.
    pub unattributed: u64,
    #[serde(rename(deserialize = "decode_errors"))]
    pub undecodable: u64,
    /// Samples of /proc and the socket tables read, and the CPU time that
    /// took in all.
    #[serde(default)]
    pub samples: u64,
    #[serde(default)]
    pub sample_cpu_ms: u64,
}

impl Summary {
    /// Parses the object tracer wrote.
    pub fn parse(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }

    /// Removes a summary left at `path` by an earlier run, so that it cannot
    /// pass for the next one's.
    pub fn clear(path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                Err(err).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Reads and parses `path`, then removes it (a file that does not parse is
    /// left for a look); `None` when tracer wrote no such file.
    pub fn take(path: &Path) -> Result<Option<Self>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        };
        let summary = Self::parse(&text).with_context(|| {
            format!("unexpected summary in {}: {}", path.display(), text.trim())
        })?;
        Self::clear(path)?;
        Ok(Some(summary))
    }

    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &Self) {
        self.read += other.read;
        self.submitted += other.submitted;
        self.dropped += other.dropped;
        self.filtered += other.filtered;
        self.unattributed += other.unattributed;
        self.undecodable += other.undecodable;
        self.samples += other.samples;
        self.sample_cpu_ms += other.sample_cpu_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"read": 241320, "submitted": 241322, "dropped": 2, "filtered": 5,
        "unattributed": 767, "owners": 12, "owners_evicted": 3, "decode_errors": 1,
        "csv_rows": 40, "samples": 7, "sample_cpu_ms": 910}"#;

    #[test]
    fn summary_object() {
        assert_eq!(
            Summary::parse(SAMPLE).expect("a summary"),
            Summary {
                read: 241_320,
                submitted: 241_322,
                dropped: 2,
                filtered: 5,
                unattributed: 767,
                undecodable: 1,
                samples: 7,
                sample_cpu_ms: 910,
            }
        );
        let no_csv = SAMPLE.replace("\"csv_rows\": 40", "\"csv_rows\": null");
        assert_eq!(Summary::parse(&no_csv).map(|s| s.read).ok(), Some(241_320));
    }

    #[test]
    fn a_missing_count_is_an_error() {
        let without = SAMPLE.replace("\"dropped\": 2,", "");
        assert!(Summary::parse(&without).is_err());
        assert!(Summary::parse("tracer: 12 events read").is_err());
    }

    #[test]
    fn results_keep_their_key_names() {
        let json = serde_json::to_value(Summary::default()).expect("encodes");
        let mut keys: Vec<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "dropped",
                "filtered",
                "read",
                "sample_cpu_ms",
                "samples",
                "submitted",
                "unattributed",
                "undecodable"
            ]
        );
    }

    #[test]
    fn the_file_is_taken_once() {
        let path = std::env::temp_dir().join(format!(
            "tracer-bench-summary-test-{}.json",
            std::process::id()
        ));
        fs::write(&path, SAMPLE).expect("writes");
        assert_eq!(
            Summary::take(&path).expect("reads").map(|s| s.dropped),
            Some(2)
        );
        assert_eq!(Summary::take(&path).expect("no file is no error"), None);
        fs::write(&path, "{}").expect("writes");
        assert!(Summary::take(&path).is_err());
        Summary::clear(&path).expect("removes");
        Summary::clear(&path).expect("nothing to remove is fine");
        assert!(!path.exists());
    }

    #[test]
    fn counts_add_up() {
        let one = Summary::parse(SAMPLE).expect("a summary");
        let mut total = Summary::default();
        total.add(&one);
        total.add(&one);
        assert_eq!((total.read, total.undecodable), (482_640, 2));
    }
}
