//! Summaries of repeated samples: median and spread; rates.

use serde::Serialize;

/// The distribution of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub median: f64,
    /// First and third quartiles.
    pub p25: f64,
    pub p75: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    /// `None` for no samples. NaNs are ignored.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        Some(Self {
            median: quantile(&sorted, 0.5),
            p25: quantile(&sorted, 0.25),
            p75: quantile(&sorted, 0.75),
            min,
            max,
            n: sorted.len(),
        })
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of sorted, non-empty `sorted`, interpolating
/// linearly between the two nearest ranks (the common "type 7" definition, which
/// gives the usual median for an even count).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let Some(&last) = sorted.last() else {
        return f64::NAN;
    };
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let Some(&above) = sorted.get(below + 1) else {
        return last;
    };
    let low = sorted[below];
    low + (above - low) * (rank - below as f64)
}

/// `numerator / denominator`; `None` unless the denominator is positive.
pub fn per(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]).map(|s| s.median), Some(2.0));
        assert_eq!(
            Spread::of(&[4.0, 1.0, 3.0, 2.0]).map(|s| s.median),
            Some(2.5)
        );
        assert_eq!(Spread::of(&[7.0]).map(|s| s.median), Some(7.0));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn quartiles_interpolate_between_ranks() {
        let spread = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).expect("samples");
        assert_eq!((spread.p25, spread.median, spread.p75), (2.0, 3.0, 4.0));
        assert_eq!((spread.min, spread.max, spread.n), (1.0, 5.0, 5));
        // Ranks 0.75 and 2.25 of [10, 20, 30, 40].
        let spread = Spread::of(&[40.0, 10.0, 30.0, 20.0]).expect("samples");
        assert_eq!((spread.p25, spread.p75), (17.5, 32.5));
    }

    #[test]
    fn nan_is_ignored() {
        let spread = Spread::of(&[f64::NAN, 1.0, 3.0]).expect("samples");
        assert_eq!((spread.median, spread.n), (2.0, 2));
    }
}
