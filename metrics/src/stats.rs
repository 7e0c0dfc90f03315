//! Descriptive statistics over the repetitions of one measurement.
//!
//! Every function takes the raw samples in any order. Empty input gives `NaN` from the scalar
//! functions and `None` from [`Summary::of`] and [`moved`], so a missing series never panics.

use serde::{Deserialize, Serialize};

/// Above this coefficient of variation a series is flagged as noisy.
pub const CV_FLAG: f64 = 0.05;

/// Medians closer than this fraction of the median never count as moved, however tight the
/// spreads: below it run-to-run drift of the machine dominates.
pub const MIN_RELATIVE_CHANGE: f64 = 0.02;

fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Percentile of already sorted samples, `p` in 0..=100, linear interpolation between closest
/// ranks (NumPy's default).
fn percentile_sorted(s: &[f64], p: f64) -> f64 {
    match s.len() {
        0 => f64::NAN,
        1 => s[0],
        n => {
            let h = (n - 1) as f64 * (p.clamp(0.0, 100.0) / 100.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            s[lo] + (h - lo as f64) * (s[hi] - s[lo])
        }
    }
}

/// Percentile `p` (0..=100) with linear interpolation between closest ranks.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    percentile_sorted(&sorted(xs), p)
}

pub fn median(xs: &[f64]) -> f64 {
    percentile(xs, 50.0)
}

pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1 in the denominator); 0 for a single sample.
pub fn stddev(xs: &[f64]) -> f64 {
    match xs.len() {
        0 => f64::NAN,
        1 => 0.0,
        n => {
            let m = mean(xs);
            (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        }
    }
}

/// Coefficient of variation as a fraction (0.05 = 5%). A constant series has CV 0, even at mean 0.
pub fn cv(xs: &[f64]) -> f64 {
    let sd = stddev(xs);
    if sd == 0.0 {
        0.0
    } else {
        sd / mean(xs).abs()
    }
}

/// What the report shows for one series of repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p5: f64,
    pub p95: f64,
    pub mean: f64,
    /// Coefficient of variation as a fraction.
    pub cv: f64,
}

impl Summary {
    pub fn of(xs: &[f64]) -> Option<Summary> {
        if xs.is_empty() {
            return None;
        }
        let s = sorted(xs);
        Some(Summary {
            n: s.len(),
            median: percentile_sorted(&s, 50.0),
            p5: percentile_sorted(&s, 5.0),
            p95: percentile_sorted(&s, 95.0),
            mean: mean(&s),
            cv: cv(&s),
        })
    }

    /// True when the series is too noisy to trust at face value (CV above 5%).
    pub fn cv_flag(&self) -> bool {
        self.cv > CV_FLAG
    }

    /// Half the p5–p95 spread: the noise band used by [`moved`].
    pub fn half_spread(&self) -> f64 {
        (self.p95 - self.p5) / 2.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// A median that moved between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub before: f64,
    pub after: f64,
    pub direction: Direction,
    /// (after − before) / |before|; infinite when `before` is 0.
    pub relative: f64,
    /// The threshold the difference had to exceed.
    pub noise: f64,
}

/// Whether the median of `b` differs from that of `a` by more than the combined noise: the
/// larger of the two p5–p95 half-spreads and [`MIN_RELATIVE_CHANGE`] of the larger median.
pub fn moved(a: &[f64], b: &[f64]) -> Option<Change> {
    let (sa, sb) = (Summary::of(a)?, Summary::of(b)?);
    let noise = sa
        .half_spread()
        .max(sb.half_spread())
        .max(MIN_RELATIVE_CHANGE * sa.median.abs().max(sb.median.abs()));
    let diff = sb.median - sa.median;
    (diff.abs() > noise).then(|| Change {
        before: sa.median,
        after: sb.median,
        direction: if diff > 0.0 {
            Direction::Up
        } else {
            Direction::Down
        },
        relative: diff / sa.median.abs(),
        noise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_interpolate_linearly() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(median(&xs), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        // h = 4 * 0.05 = 0.2 -> 1 + 0.2 * (2 - 1)
        assert!(close(percentile(&xs, 5.0), 1.2));
        assert!(close(percentile(&xs, 95.0), 4.8));
        assert_eq!(percentile(&xs, 0.0), 1.0);
        assert_eq!(percentile(&xs, 100.0), 5.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        // 1..=100: NumPy gives 5.95 and 95.05.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!(close(percentile(&hundred, 5.0), 5.95));
        assert!(close(percentile(&hundred, 95.0), 95.05));
    }

    #[test]
    fn mean_stddev_cv() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), 5.0);
        // Sample variance 32 / 7.
        assert!(close(stddev(&xs), (32.0f64 / 7.0).sqrt()));
        assert!(close(cv(&xs), (32.0f64 / 7.0).sqrt() / 5.0));
        assert_eq!(stddev(&[3.0]), 0.0);
        assert_eq!(cv(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn empty_input_is_nan_or_none() {
        assert!(median(&[]).is_nan());
        assert!(mean(&[]).is_nan());
        assert!(stddev(&[]).is_nan());
        assert!(Summary::of(&[]).is_none());
        assert!(moved(&[], &[1.0]).is_none());
    }

    #[test]
    fn summary_flags_noisy_series() {
        let quiet = Summary::of(&[100.0, 101.0, 99.0]).unwrap();
        assert_eq!(quiet.n, 3);
        assert_eq!(quiet.median, 100.0);
        assert!(close(quiet.p5, 99.1));
        assert!(close(quiet.p95, 100.9));
        assert!(!quiet.cv_flag());
        let noisy = Summary::of(&[100.0, 120.0, 80.0]).unwrap();
        assert!(close(noisy.cv, 0.2));
        assert!(noisy.cv_flag());
    }

    #[test]
    fn moved_needs_more_than_noise() {
        // Within 2% of the median: not moved even with zero spread.
        assert!(moved(&[100.0; 3], &[101.5; 3]).is_none());
        let c = moved(&[100.0; 3], &[110.0; 3]).unwrap();
        assert_eq!(c.direction, Direction::Up);
        assert!(close(c.relative, 0.1));
        assert!(close(c.noise, 2.2));
        // A wide spread in either run swallows the same shift.
        assert!(moved(&[80.0, 100.0, 120.0], &[110.0; 3]).is_none());
        let down = moved(&[100.0, 101.0, 99.0], &[50.0, 51.0, 49.0]).unwrap();
        assert_eq!(down.direction, Direction::Down);
        assert!(close(down.relative, -0.5));
    }
}
