//! tracer's own counts at exit, from its closing line on stderr.

use serde::Serialize;

/// tracer's closing line, e.g. `tracer: 241320 events read; kernel: 241320
/// submitted, 0 dropped (ring buffer full), 0 filtered, 767 unattributed; 0
/// undecodable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub read: u64,
    pub submitted: u64,
    pub dropped: u64,
    pub filtered: u64,
    pub unattributed: u64,
    pub undecodable: u64,
}

impl Summary {
    /// Adds the counts of `other`.
    pub fn add(&mut self, other: &Self) {
        self.read += other.read;
        self.submitted += other.submitted;
        self.dropped += other.dropped;
        self.filtered += other.filtered;
        self.unattributed += other.unattributed;
        self.undecodable += other.undecodable;
    }
}

/// Parses tracer's closing line: each count is the number before its word.
/// `None` unless it has at least the events read, submitted and dropped.
pub fn parse_summary(line: &str) -> Option<Summary> {
    let line = line.strip_prefix("tracer: ")?;
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| ";,:()".contains(c)))
        .collect();
    let mut summary = Summary::default();
    let (mut read, mut submitted, mut dropped) = (false, false, false);
    for (i, pair) in words.windows(2).enumerate() {
        let Ok(value) = pair[0].parse::<u64>() else {
            continue;
        };
        match pair[1] {
            "events" if words.get(i + 2) == Some(&"read") => {
                summary.read = value;
                read = true;
            }
            "submitted" => {
                summary.submitted = value;
                submitted = true;
            }
            "dropped" => {
                summary.dropped = value;
                dropped = true;
            }
            "filtered" => summary.filtered = value,
            "unattributed" => summary.unattributed = value,
            "undecodable" => summary.undecodable = value,
            _ => {}
        }
    }
    (read && submitted && dropped).then_some(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line() {
        let line = "tracer: 241320 events read; kernel: 241322 submitted, 2 dropped (ring buffer \
                    full), 5 filtered, 767 unattributed; 1 undecodable";
        assert_eq!(
            parse_summary(line),
            Some(Summary {
                read: 241_320,
                submitted: 241_322,
                dropped: 2,
                filtered: 5,
                unattributed: 767,
                undecodable: 1,
            })
        );
    }

    #[test]
    fn other_lines_are_not_summaries() {
        assert_eq!(
            parse_summary("tracer: tracing all processes via tracepoint tcp:tcp_destroy_sock"),
            None
        );
        assert_eq!(parse_summary("tracer: 12 events read"), None);
        assert_eq!(
            parse_summary("error: 1 events read; 2 submitted, 0 dropped"),
            None
        );
    }
}
