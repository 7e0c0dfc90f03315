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
    #[serde(default)]
    pub min: f64,
    #[serde(default)]
    pub max: f64,
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
            min: s[0],
            max: s[s.len() - 1],
            mean: mean(&s),
            cv: cv(&s),
        })
    }

    /// True when the series is too noisy to trust at face value (CV above 5%).
    pub fn cv_flag(&self) -> bool {
        self.cv > CV_FLAG
    }

    /// The spread to show: min–max below [`MIN_N_FOR_P5_P95`] values (where p5 and p95 would
    /// only interpolate towards the extremes), else p5–p95.
    pub fn range(&self) -> (f64, f64) {
        if self.n < MIN_N_FOR_P5_P95 {
            (self.min, self.max)
        } else {
            (self.p5, self.p95)
        }
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

/// Significance level of the ranking test.
pub const ALPHA: f64 = 0.05;

/// The smallest difference a ranking calls, relative to the best's median (to the target, for a
/// metric ranked by its distance to one): a library significantly but less than this much worse
/// shares the lead. Differences of 1–5% that the test found significant in one run reversed in
/// the next run of the same revision (even `test_run_ns`, whose spread in a run is tiny):
/// shifts between runs that the repetitions of one run cannot see (README, Reproducibility).
pub const MIN_EFFECT: f64 = 0.05;

/// Fewer repetitions than this and a measured metric is shown but not ranked: with 4 against 4
/// even a complete separation gives p = 0.029, which a Holm correction over two comparisons
/// already rejects.
pub const MIN_RANKED_N: usize = 5;

/// Below this many values the "p5–p95" of [`Summary`] interpolates between the two extremes:
/// call it what it is.
pub const MIN_N_FOR_P5_P95: usize = 20;

/// How the report states the test, next to every ranking.
pub const TEST_STATEMENT: &str = "two-sided Mann–Whitney U test of the best library against \
    each other one (exact without ties for up to 20 values a side, else the normal \
    approximation with tie and continuity correction), Holm correction across the comparisons \
    of one metric, α = 0.05; at least 5 repetitions per library; a difference under 5% of the \
    best's median (of the target, where one is set) is not called";

/// Midranks (1-based) of `xs`, tied values sharing the mean of their positions, and the tie
/// term Σ(t³ − t) over the groups of ties.
fn midranks(xs: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        for &k in &order[i..=j] {
            ranks[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        ties += t * t * t - t;
        i = j + 1;
    }
    (ranks, ties)
}

/// Number of arrangements of `m` against `n` values (no ties) with U = 0, 1, ..., m·n:
/// f(m, n, u) = f(m − 1, n, u − n) + f(m, n − 1, u).
fn u_counts(m: usize, n: usize) -> Vec<f64> {
    // table[i][j] = counts for sizes (i, j), built up row by row.
    let mut table: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n + 1]; m + 1];
    for i in 0..=m {
        for j in 0..=n {
            table[i][j] = if i == 0 || j == 0 {
                vec![1.0]
            } else {
                let mut c = vec![0.0; i * j + 1];
                for (u, v) in table[i - 1][j].iter().enumerate() {
                    c[u + j] += v;
                }
                for (u, v) in table[i][j - 1].iter().enumerate() {
                    c[u] += v;
                }
                c
            };
        }
    }
    table[m][n].clone()
}

/// Two-sided p-value of the Mann–Whitney U test of `a` against `b`; 1 when either is empty or
/// every value is equal.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return 1.0;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let (ranks, ties) = midranks(&all);
    let r1: f64 = ranks[..m].iter().sum();
    let u = r1 - (m * (m + 1)) as f64 / 2.0;
    let (mf, nf) = (m as f64, n as f64);
    if ties == 0.0 && m <= 20 && n <= 20 {
        let counts = u_counts(m, n);
        let total: f64 = counts.iter().sum();
        let u = u.round() as usize;
        let lower: f64 = counts[..=u].iter().sum::<f64>() / total;
        let upper: f64 = counts[u..].iter().sum::<f64>() / total;
        return (2.0 * lower.min(upper)).min(1.0);
    }
    let big_n = mf + nf;
    let var = mf * nf / 12.0 * ((big_n + 1.0) - ties / (big_n * (big_n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - mf * nf / 2.0).abs() - 0.5).max(0.0) / var.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// Complementary error function, Numerical Recipes' `erfcc` (fractional error below 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Holm's step-down adjustment of `p` (any order in, same order out).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; p.len()];
    let mut running: f64 = 0.0;
    for (i, &k) in order.iter().enumerate() {
        running = running.max(((p.len() - i) as f64 * p[k]).min(1.0));
        adjusted[k] = running;
    }
    adjusted
}

/// The outcome of ranking one metric across libraries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Ranking {
    /// `leaders` (indices into the input): the best and every library not significantly worse
    /// (for exact metrics: those equal to the best). The others are significantly worse.
    Ranked { leaders: Vec<usize> },
    /// No library is significantly worse than the best.
    Tie,
    /// Shown but not ranked, and why (`n<5`, `all values equal`, ...).
    NotRanked { reason: String },
}

impl Ranking {
    pub fn leads(&self, i: usize) -> bool {
        matches!(self, Ranking::Ranked { leaders } if leaders.contains(&i))
    }

    pub fn is_ranked(&self) -> bool {
        !matches!(self, Ranking::NotRanked { .. })
    }
}

/// Ranks libraries by `costs` (one sample per repetition, lower is better: the caller turns
/// "higher is better" and "closest to a target" into a cost). `None` or empty: the library has
/// no value and takes no part. `exact` metrics (lines of code, sizes) are single true values and
/// rank by their median alone; measured ones need [`MIN_RANKED_N`] repetitions and the test of
/// [`TEST_STATEMENT`]. `target`, for a metric ranked by its distance to one, scales
/// [`MIN_EFFECT`]; otherwise the best's median does.
pub fn rank(costs: &[Option<&[f64]>], exact: bool, target: Option<f64>) -> Ranking {
    let present: Vec<(usize, &[f64])> = costs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.filter(|c| !c.is_empty()).map(|c| (i, c)))
        .collect();
    let not_ranked = |reason: &str| Ranking::NotRanked {
        reason: reason.into(),
    };
    if present.len() < 2 {
        return not_ranked("one library");
    }
    let medians: Vec<f64> = present.iter().map(|(_, c)| median(c)).collect();
    let first = present[0].1[0];
    if present.iter().all(|(_, c)| c.iter().all(|v| *v == first)) {
        return not_ranked("all values equal");
    }
    let n_min = present.iter().map(|(_, c)| c.len()).min().unwrap_or(0);
    if !exact && n_min < MIN_RANKED_N {
        return not_ranked(&format!("n<{MIN_RANKED_N}"));
    }
    let best = (0..present.len())
        .min_by(|&a, &b| medians[a].total_cmp(&medians[b]))
        .unwrap_or(0);
    let leaders: Vec<usize> = if exact {
        (0..present.len())
            .filter(|&k| medians[k] == medians[best])
            .collect()
    } else {
        let others: Vec<usize> = (0..present.len()).filter(|&k| k != best).collect();
        let p: Vec<f64> = others
            .iter()
            .map(|&k| mann_whitney(present[best].1, present[k].1))
            .collect();
        let adjusted = holm(&p);
        let scale = target.unwrap_or(medians[best]).abs();
        std::iter::once(best)
            .chain(
                others
                    .iter()
                    .zip(&adjusted)
                    .filter(|(k, p)| **p >= ALPHA || medians[**k] - medians[best] < MIN_EFFECT * scale)
                    .map(|(k, _)| *k),
            )
            .collect()
    };
    if leaders.len() == present.len() {
        return Ranking::Tie;
    }
    let mut leaders: Vec<usize> = leaders.into_iter().map(|k| present[k].0).collect();
    leaders.sort_unstable();
    Ranking::Ranked { leaders }
}

/// OSSPal's tertile of each value among all (lower cost is better): 3 for the best third, 1 for
/// the worst, by the midrank percentile (r + ½) / n — the rule of scripts/repo-metrics, so the
/// measured and the repository scores read alike. Equal costs share a tertile.
pub fn tertiles(costs: &[f64]) -> Vec<u8> {
    let n = costs.len() as f64;
    // Midrank from the worst: position among the costs sorted from highest to lowest.
    let negated: Vec<f64> = costs.iter().map(|c| -c).collect();
    let (ranks, _) = midranks(&negated);
    ranks
        .iter()
        .map(|r| {
            let p = (r - 1.0 + 0.5) / n;
            if costs.iter().all(|c| *c == costs[0]) {
                2
            } else if p < 1.0 / 3.0 {
                1
            } else if p > 2.0 / 3.0 {
                3
            } else {
                2
            }
        })
        .collect()
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

    #[test]
    fn mann_whitney_matches_hand_computed_values() {
        // Complete separation, 5 against 5: exact p = 2 / C(10, 5) = 2 / 252.
        let p = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!(close(p, 2.0 / 252.0), "{p}");
        // Interleaved: U = 10; P(U <= 10) = 87/252 from the 5×5 partition counts.
        let p = mann_whitney(&[1.0, 3.0, 5.0, 7.0, 9.0], &[2.0, 4.0, 6.0, 8.0, 10.0]);
        assert!(close(p, 2.0 * 87.0 / 252.0), "{p}");
        // Ties: R1 = 24, U = 3, σ² = 36/12 · (13 − 18/132), z = 14.5/σ = 2.3341, p = 0.019589.
        let p = mann_whitney(
            &[1.0, 2.0, 2.0, 3.0, 4.0, 5.0],
            &[3.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        );
        assert!((p - 0.019_588_8).abs() < 1e-6, "{p}");
        assert_eq!(mann_whitney(&[1.0; 5], &[1.0; 5]), 1.0);
        assert_eq!(mann_whitney(&[], &[1.0]), 1.0);
        // Symmetric in its arguments.
        assert!(close(
            mann_whitney(&[1.0, 4.0, 2.0], &[3.0, 5.0, 6.0]),
            mann_whitney(&[3.0, 5.0, 6.0], &[1.0, 4.0, 2.0])
        ));
    }

    #[test]
    fn holm_steps_down_and_stays_monotone() {
        let adjusted = holm(&[0.01, 0.04, 0.03]);
        // Sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, max(0.06, 0.04) = 0.06.
        assert!(close(adjusted[0], 0.03) && close(adjusted[2], 0.06) && close(adjusted[1], 0.06));
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
    }

    #[test]
    fn ranking_needs_significance_and_repetitions() {
        let fast = [10.0, 11.0, 10.5, 10.2, 10.8];
        let slow = [20.0, 21.0, 20.5, 20.2, 20.8];
        let fast_too = [10.1, 10.9, 10.4, 10.3, 10.7];
        assert_eq!(
            rank(&[Some(&slow), Some(&fast), None], false, None),
            Ranking::Ranked { leaders: vec![1] }
        );
        // A library not significantly different from the best shares the lead.
        assert_eq!(
            rank(&[Some(&fast), Some(&slow), Some(&fast_too)], false, None),
            Ranking::Ranked {
                leaders: vec![0, 2]
            }
        );
        assert_eq!(rank(&[Some(&fast), Some(&fast_too)], false, None), Ranking::Tie);
        assert_eq!(
            rank(&[Some(&fast[..3]), Some(&slow[..3])], false, None),
            Ranking::NotRanked {
                reason: "n<5".into()
            }
        );
        assert!(!rank(&[Some(&[0.0; 5]), Some(&[0.0; 5])], false, None).is_ranked());
        assert!(!rank(&[Some(&fast), None], false, None).is_ranked());
        // Exact metrics: by value, one value is enough, equal values tie.
        assert_eq!(
            rank(&[Some(&[120.0]), Some(&[100.0]), Some(&[100.0])], true, None),
            Ranking::Ranked {
                leaders: vec![1, 2]
            }
        );
    }

    #[test]
    fn a_difference_under_the_minimum_effect_is_not_called() {
        let best = [100.0, 100.5, 101.0, 100.2, 100.8];
        // Completely separated (p = 0.008), but 3% worse: shares the lead.
        let close_by: Vec<f64> = best.iter().map(|v| v * 1.03).collect();
        assert_eq!(rank(&[Some(&best), Some(&close_by)], false, None), Ranking::Tie);
        let far: Vec<f64> = best.iter().map(|v| v * 1.10).collect();
        assert_eq!(rank(&[Some(&best), Some(&far)], false, None), Ranking::Ranked { leaders: vec![0] });
        // Ranked by the distance to a target of 20: 0.5 from it against 1.5 is 5% of the
        // target, called; 0.5 against 1.2 is not.
        let (near, off, nearly) = ([0.5, 0.52, 0.48, 0.51, 0.49], [1.5, 1.52, 1.48, 1.51, 1.49], [1.2, 1.22, 1.18, 1.21, 1.19]);
        assert_eq!(rank(&[Some(&near), Some(&off)], false, Some(20.0)), Ranking::Ranked { leaders: vec![0] });
        assert_eq!(rank(&[Some(&near), Some(&nearly)], false, Some(20.0)), Ranking::Tie);
    }

    #[test]
    fn tertiles_follow_repo_metrics() {
        assert_eq!(tertiles(&[3.0, 1.0, 2.0]), vec![1, 3, 2]);
        // Two tied best of three share midrank 1.5: p = 2/3, not above it.
        assert_eq!(tertiles(&[1.0, 1.0, 2.0]), vec![2, 2, 1]);
        assert_eq!(tertiles(&[5.0, 5.0]), vec![2, 2]);
        assert_eq!(tertiles(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), vec![3, 3, 2, 2, 1, 1]);
    }
}
