//! The second pass over a capture: the series charted for the processes the
//! report shows, each folded into at most [`MAX_POINTS`] time steps of equal
//! width, so a chart costs the same for a minute's capture as for a week's.

use std::collections::HashMap;

use super::{
    capture::Row,
    metrics::{self, FAILED_CONNECTS, Kind, METRICS, Metric, RETRANSMITS, RSTS, Values},
    summary::{ProcessKey, increase},
};

/// Time steps per chart.
pub const MAX_POINTS: usize = 300;

/// One time step of one process.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Seconds covered by the rows' increases (from each row's predecessor).
    covered: u64,
    /// Counters: their increase in this step; gauges: their peak.
    values: Values,
}

/// A process's series over the capture.
#[derive(Debug, Clone)]
pub struct Series {
    steps: Vec<Option<Step>>,
    prev: Option<(i64, Values)>,
}

/// Where a charted line takes its values from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The increase of these counters per second.
    Rate(&'static [Metric]),
    /// The peak of this gauge.
    Peak(Metric),
    /// The peak of this gauge divided by 1000 (microseconds as milliseconds).
    PeakThousandths(Metric),
}

/// The charts drawn per process, each with its lines: (chart title,
/// [(line label, source)]).
pub const PANELS: &[(&str, &[(&str, Source)])] = &[
    (
        "per second",
        &[
            ("connects", Source::Rate(&[Metric::Connects])),
            ("failed connects", Source::Rate(FAILED_CONNECTS)),
            ("retransmits", Source::Rate(RETRANSMITS)),
            ("RSTs", Source::Rate(RSTS)),
        ],
    ),
    (
        "sockets and FDs",
        &[
            ("established", Source::Peak(Metric::Established)),
            ("CLOSE_WAIT", Source::Peak(Metric::CloseWait)),
            ("TIME_WAIT", Source::Peak(Metric::TimeWait)),
            ("open FDs", Source::Peak(Metric::FdsOpen)),
        ],
    ),
    (
        "handshake p99 since start, ms",
        &[(
            "handshake p99",
            Source::PeakThousandths(Metric::HandshakeP99Us),
        )],
    ),
];

/// Series for a chosen set of processes over one time span.
#[derive(Debug)]
pub struct Collector {
    start: i64,
    /// Seconds per step.
    width: i64,
    series: HashMap<ProcessKey, Series>,
}

impl Collector {
    /// Collects for `keys` over `start..=end`, in steps no shorter than
    /// `interval` seconds (the capture's: a shorter step would be empty).
    pub fn new(
        keys: impl IntoIterator<Item = ProcessKey>,
        start: i64,
        end: i64,
        interval: i64,
    ) -> Self {
        let span = (end - start).max(1);
        let width = ((span + MAX_POINTS as i64 - 1) / MAX_POINTS as i64).max(interval);
        let series = keys
            .into_iter()
            .map(|k| {
                (
                    k,
                    Series {
                        steps: Vec::new(),
                        prev: None,
                    },
                )
            })
            .collect();
        Self {
            start,
            width: width.max(1),
            series,
        }
    }

    pub fn observe(&mut self, row: &Row<'_>) {
        let key = ProcessKey {
            pid: row.pid,
            start: row.start,
        };
        let Some(series) = self.series.get_mut(&key) else {
            return;
        };
        let index = usize::try_from((row.at - self.start) / self.width)
            .unwrap_or(0)
            .min(MAX_POINTS - 1);
        if series.steps.len() <= index {
            series.steps.resize(index + 1, None);
        }
        let step = series.steps[index].get_or_insert(Step {
            covered: 0,
            values: [None; metrics::COUNT],
        });
        // The first row of a process has no predecessor: what it counts
        // happened at some time before, so it adds to no rate.
        let prev = series.prev.as_ref();
        if let Some((prev_at, _)) = prev {
            step.covered += u64::try_from(row.at - prev_at).unwrap_or(0);
        }
        for (i, (_, _, kind)) in METRICS.iter().enumerate() {
            let Some(value) = row.values[i] else { continue };
            let slot = &mut step.values[i];
            match kind {
                Kind::Counter => {
                    if let Some((_, before)) = prev {
                        *slot = Some(slot.unwrap_or(0) + increase(before[i], value));
                    }
                }
                Kind::Gauge => *slot = Some(slot.map_or(value, |s| s.max(value))),
            }
        }
        series.prev = Some((row.at, row.values));
    }

    /// The series of `key`, if it was collected.
    pub fn series(&self, key: &ProcessKey) -> Option<&Series> {
        self.series.get(key)
    }

    /// The time, in seconds since the epoch, at the middle of step `index`.
    pub const fn time_of(&self, index: usize) -> f64 {
        self.start as f64 + (index as f64 + 0.5) * self.width as f64
    }

    pub const fn width(&self) -> i64 {
        self.width
    }
}

impl Series {
    /// The points of one line: (step index, value), steps without a value
    /// left out.
    pub fn points(&self, source: Source) -> Vec<(usize, f64)> {
        self.steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| Some((i, value(step.as_ref()?, source)?)))
            .collect()
    }
}

fn value(step: &Step, source: Source) -> Option<f64> {
    match source {
        Source::Rate(counters) => {
            let n = metrics::sum(&step.values, counters)?;
            (step.covered > 0).then(|| n as f64 / step.covered as f64)
        }
        Source::Peak(gauge) => metrics::get(&step.values, gauge).map(|v| v as f64),
        Source::PeakThousandths(gauge) => {
            metrics::get(&step.values, gauge).map(|v| v as f64 / 1000.0)
        }
    }
}
