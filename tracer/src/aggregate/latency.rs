//! Latency distributions on HdrHistogram, summarised as [`Latency`].

use hdrhistogram::Histogram;

use crate::snapshot::Latency;

/// A histogram of values in one unit (microseconds, milliseconds, …), from 1
/// to `max`; larger values are clamped to `max`.
#[derive(Debug, Clone)]
pub struct Distribution {
    hist: Histogram<u32>,
}

/// Significant figures for a process's distributions (< 1 % error).
pub const PRECISE: u8 = 2;
/// Significant figures for per-remote distributions, which are more numerous
/// (about 6 % error, a twelfth of the memory).
pub const COARSE: u8 = 1;

impl Distribution {
    pub fn new(max: u64, sigfig: u8) -> Self {
        // Bounds and precision are constants chosen in range, so this cannot fail.
        let hist = Histogram::new_with_bounds(1, max.max(2), sigfig)
            .unwrap_or_else(|_| Histogram::new(sigfig.min(5)).expect("valid precision"));
        Self { hist }
    }

    pub fn record(&mut self, value: u64) {
        let v = value.clamp(1, self.hist.high());
        self.hist.saturating_record(v);
    }

    pub fn summary(&self) -> Latency {
        if self.hist.is_empty() {
            return Latency::default();
        }
        let q = |q: f64| self.hist.highest_equivalent(self.hist.value_at_quantile(q));
        let mut buckets: Vec<(u64, u64)> = self
            .hist
            .iter_log(1, 2.0)
            .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
            .collect();
        while buckets.first().is_some_and(|b| b.1 == 0) {
            buckets.remove(0);
        }
        Latency {
            count: self.hist.len(),
            sum: (self.hist.mean() * self.hist.len() as f64).round() as u64,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: self.hist.highest_equivalent(self.hist.max()),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_all_zero() {
        let d = Distribution::new(60_000_000, PRECISE);
        assert!(d.summary().is_empty());
        assert_eq!(d.summary(), Latency::default());
    }

    #[test]
    fn percentiles_within_precision() {
        let mut d = Distribution::new(60_000_000, PRECISE);
        for v in 1..=1000 {
            d.record(v * 10);
        }
        let s = d.summary();
        assert_eq!(s.count, 1000);
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(near(s.p50, 5000), "p50 {}", s.p50);
        assert!(near(s.p90, 9000), "p90 {}", s.p90);
        assert!(near(s.p99, 9900), "p99 {}", s.p99);
        assert!(near(s.max, 10_000), "max {}", s.max);
        assert_eq!(s.buckets.iter().map(|b| b.1).sum::<u64>(), 1000);
        assert!(s.buckets.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut d = Distribution::new(1000, COARSE);
        d.record(0);
        d.record(5_000_000);
        let s = d.summary();
        assert_eq!(s.count, 2);
        assert!(s.max >= 1000);
    }
}
