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

/// Significance level of the ranking test: of the whole report, not of each metric
/// ([`rank_all`]).
pub const ALPHA: f64 = 0.05;

/// The smallest difference a ranking calls, relative to the best's median (to the target, for a
/// metric ranked by its distance to one): a library significantly but less than this much worse
/// shares the lead. Differences of 1–5% that the test found significant in one run reversed in
/// the next run of the same revision (even `test_run_ns`, whose spread in a run is tiny):
/// shifts between runs that the repetitions of one run cannot see (README, Reproducibility).
pub const MIN_EFFECT: f64 = 0.05;

/// Fewer repetitions than this and a measured metric is shown but not ranked: with fewer, the
/// variances the test estimates are too rough to trust (and a run makes 5).
pub const MIN_RANKED_N: usize = 5;

/// Below this many values the "p5–p95" of [`Summary`] interpolates between the two extremes:
/// call it what it is.
pub const MIN_N_FOR_P5_P95: usize = 20;

/// How the report states the test, next to every ranking.
pub const TEST_STATEMENT: &str = "two-sided Welch t-test of the best library (by median) \
    against each other one, Holm correction across every comparison of the report (all its \
    metrics and use cases: the chance of any false ★ in the whole report is at most α), \
    α = 0.05; the other library also worse in mean, and in median by at least 5% of the \
    best's (of the target, where one is set); at least 5 repetitions per library";

/// Midranks (1-based) of `xs`, tied values sharing the mean of their positions.
fn midranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            ranks[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    ranks
}

/// Two-sided p-value of Welch's t-test of the means of `a` and `b` (variances not assumed
/// equal; Welch–Satterthwaite degrees of freedom). 1 with fewer than 2 values on a side or no
/// difference at all; 0 when both sides are constant and differ.
pub fn welch(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return 1.0;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (stddev(a).powi(2) / na, stddev(b).powi(2) / nb);
    let diff = mean(a) - mean(b);
    let se2 = va + vb;
    if se2 == 0.0 {
        return if diff == 0.0 { 1.0 } else { 0.0 };
    }
    let t2 = diff * diff / se2;
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    // P(|T| ≥ |t|) for Student's t with df degrees of freedom.
    incomplete_beta(df / 2.0, 0.5, df / (df + t2)).min(1.0)
}

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, 9 terms; relative error ~1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) = Γ(x + 1) / x.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let sum = C[1..].iter().enumerate().fold(C[0], |s, (i, c)| s + c / (x + i as f64 + 1.0));
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction, evaluated
/// where it converges fast (directly below x = (a + 1) / (a + b + 2), through
/// I_x(a, b) = 1 − I_{1−x}(b, a) above).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction 1/(1+ d1/(1+ d2/(1+ …))) of I_x(a, b), with
/// d(2m+1) = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and d(2m) = m(b−m)x / ((a+2m−1)(a+2m)),
/// evaluated by the modified Lentz method.
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let nonzero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let step = |d: f64, c: f64, coefficient: f64| (1.0 / nonzero(1.0 + coefficient * d), nonzero(1.0 + coefficient / c));
    let mut c = 1.0;
    let mut d = 1.0 / nonzero(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..=500 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        (d, c) = step(d, c, even);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        (d, c) = step(d, c, odd);
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
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

/// A metric's ranking up to the test's correction: the comparisons it needs, or its outcome
/// when it needs none (too few values, exact metrics). [`rank`] decides one metric alone,
/// [`rank_all`] a whole report under one correction.
#[derive(Debug, Clone)]
pub enum Plan {
    Done(Ranking),
    Test(Comparisons),
}

/// The best library (by median) against each other one.
#[derive(Debug, Clone)]
pub struct Comparisons {
    /// Input index of each library with values.
    index: Vec<usize>,
    medians: Vec<f64>,
    means: Vec<f64>,
    /// Position (in `index`) of the best.
    best: usize,
    /// Positions of the others, and the p-value of each against the best.
    others: Vec<usize>,
    p: Vec<f64>,
    /// What [`MIN_EFFECT`] is a fraction of.
    scale: f64,
}

impl Comparisons {
    /// The ranking, given the corrected p-value of each comparison (in the order of `p`). A
    /// library is behind when the test finds it worse than the best and its median is at least
    /// [`MIN_EFFECT`] above every leader's; the others lead. The second condition keeps a leader
    /// that the test could not separate from the best (a wide spread) from sitting level with
    /// or above one behind: every leader is then clearly before every library behind, which is
    /// what a ★ says to a reader and what `harness compare --rankings` checks.
    fn decide(&self, adjusted: &[f64]) -> Ranking {
        let b = self.best;
        let worse: Vec<(usize, bool)> =
            self.others.iter().zip(adjusted).map(|(&k, &p)| (k, p < ALPHA && self.means[k] > self.means[b])).collect();
        let mut leads = vec![false; self.index.len()];
        leads[b] = true;
        loop {
            let top = (0..leads.len()).filter(|&k| leads[k]).map(|k| self.medians[k]).fold(f64::MIN, f64::max);
            let joining: Vec<usize> = worse
                .iter()
                .filter(|(k, significant)| !leads[*k] && !(*significant && self.medians[*k] - top >= MIN_EFFECT * self.scale))
                .map(|(k, _)| *k)
                .collect();
            if joining.is_empty() {
                break;
            }
            for k in joining {
                leads[k] = true;
            }
        }
        if leads.iter().all(|l| *l) {
            return Ranking::Tie;
        }
        let mut leaders: Vec<usize> = (0..leads.len()).filter(|&k| leads[k]).map(|k| self.index[k]).collect();
        leaders.sort_unstable();
        Ranking::Ranked { leaders }
    }
}

/// What ranking libraries by `costs` takes (one sample per repetition, lower is better: the
/// caller turns "higher is better" and "closest to a target" into a cost). `None` or empty: the
/// library has no value and takes no part. `exact` metrics (lines of code, sizes) are single
/// true values and rank by their median alone; measured ones need [`MIN_RANKED_N`] repetitions
/// and the test of [`TEST_STATEMENT`]. `target`, for a metric ranked by its distance to one,
/// scales [`MIN_EFFECT`]; otherwise the best's median does.
pub fn plan(costs: &[Option<&[f64]>], exact: bool, target: Option<f64>) -> Plan {
    let present: Vec<(usize, &[f64])> = costs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.filter(|c| !c.is_empty()).map(|c| (i, c)))
        .collect();
    let not_ranked = |reason: &str| Plan::Done(Ranking::NotRanked { reason: reason.into() });
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
    let best = (0..present.len()).min_by(|&a, &b| medians[a].total_cmp(&medians[b])).unwrap_or(0);
    if exact {
        let leaders: Vec<usize> = (0..present.len()).filter(|&k| medians[k] == medians[best]).map(|k| present[k].0).collect();
        return Plan::Done(if leaders.len() == present.len() { Ranking::Tie } else { Ranking::Ranked { leaders } });
    }
    let others: Vec<usize> = (0..present.len()).filter(|&k| k != best).collect();
    Plan::Test(Comparisons {
        p: others.iter().map(|&k| welch(present[best].1, present[k].1)).collect(),
        index: present.iter().map(|(i, _)| *i).collect(),
        means: present.iter().map(|(_, c)| mean(c)).collect(),
        scale: target.unwrap_or(medians[best]).abs(),
        medians,
        best,
        others,
    })
}

/// One metric ranked on its own: Holm across its comparisons only.
pub fn rank(costs: &[Option<&[f64]>], exact: bool, target: Option<f64>) -> Ranking {
    rank_all(&[&plan(costs, exact, target)]).remove(0)
}

/// The rankings of a whole report under one Holm correction across every comparison of every
/// plan. Each metric tested at α on its own lets a report of a hundred near-ties carry a few
/// false ★ in every run, other ones in the next (README, Reproducibility); across the report
/// the chance of any is at most α. Welch's test rather than a rank test for it: with 5 values
/// a side no rank test goes below p = 2/252, and several hundred comparisons need ~1e-4.
pub fn rank_all(plans: &[&Plan]) -> Vec<Ranking> {
    let all: Vec<f64> = plans
        .iter()
        .flat_map(|p| match p {
            Plan::Test(c) => c.p.clone(),
            Plan::Done(_) => Vec::new(),
        })
        .collect();
    let adjusted = holm(&all);
    let mut at = 0;
    plans
        .iter()
        .map(|p| match p {
            Plan::Done(r) => r.clone(),
            Plan::Test(c) => {
                at += c.p.len();
                c.decide(&adjusted[at - c.p.len()..at])
            }
        })
        .collect()
}

/// OSSPal's tertile of each value among all (lower cost is better): 3 for the best third, 1 for
/// the worst, by the midrank percentile (r + ½) / n — the rule of scripts/repo-metrics, so the
/// measured and the repository scores read alike. Equal costs share a tertile.
pub fn tertiles(costs: &[f64]) -> Vec<u8> {
    let n = costs.len() as f64;
    // Midrank from the worst: position among the costs sorted from highest to lowest.
    let negated: Vec<f64> = costs.iter().map(|c| -c).collect();
    let ranks = midranks(&negated);
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
    fn welch_matches_the_t_distribution() {
        // 1..5 against 6..10: t = −5 on 8 degrees of freedom; P(|T8| ≥ 5) = 0.001053.
        let p = welch(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 0.001_053).abs() < 2e-6, "{p}");
        // Table values of Student's t (two-sided): t = 2.306 at 8 df and 12.706 at 1 df give
        // 0.05, 5.041 at 8 df gives 0.001; 1.960 at 10⁶ df, the normal's 0.05.
        for (t, df, want) in [(2.306, 8.0, 0.05), (12.706, 1.0, 0.05), (5.041, 8.0, 0.001), (1.960, 1e6, 0.05)] {
            let got = incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
            assert!((got - want).abs() < want * 2e-3, "t = {t}, df = {df}: {got}");
        }
        // Unequal variances: a = 1..5 (s² = 2.5), b = 10 + 4·(1..5) (s² = 40): t = −19/√8.5,
        // df = 8.5² / (0.5²/4 + 8²/4) = 4.50.
        let b: Vec<f64> = (1..=5).map(|i| 10.0 + 4.0 * f64::from(i)).collect();
        let t2 = 361.0 / 8.5;
        let df = 8.5 * 8.5 / (0.25 / 4.0 + 64.0 / 4.0);
        assert!((welch(&[1.0, 2.0, 3.0, 4.0, 5.0], &b) - incomplete_beta(df / 2.0, 0.5, df / (df + t2))).abs() < 1e-12);
        assert_eq!(welch(&[1.0; 5], &[1.0; 5]), 1.0);
        assert_eq!(welch(&[1.0; 5], &[2.0; 5]), 0.0);
        assert_eq!(welch(&[1.0], &[2.0, 3.0]), 1.0);
        // Symmetric in its arguments; ln Γ(n) = ln (n − 1)!.
        assert!(close(welch(&[1.0, 4.0, 2.0], &[3.0, 5.0, 6.0]), welch(&[3.0, 5.0, 6.0], &[1.0, 4.0, 2.0])));
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn one_correction_across_the_report() {
        let a = [10.0, 11.0, 10.5, 10.2, 10.8];
        // 8.6% worse, p ≈ 0.008: called for the metric on its own ...
        let b: Vec<f64> = a.iter().map(|v| v + 0.9).collect();
        let modest = plan(&[Some(&a), Some(&b)], false, None);
        assert_eq!(rank_all(&[&modest]), vec![Ranking::Ranked { leaders: vec![0] }]);
        // ... not among a hundred such comparisons, where chance alone gives some p that small;
        // a difference far beyond the spread still is.
        let slow: Vec<f64> = a.iter().map(|v| v * 2.0).collect();
        let strong = plan(&[Some(&slow), Some(&a)], false, None);
        let mut report = vec![&strong];
        report.extend(std::iter::repeat(&modest).take(100));
        let ranked = rank_all(&report);
        assert_eq!(ranked[0], Ranking::Ranked { leaders: vec![1] });
        assert!(ranked[1..].iter().all(|r| *r == Ranking::Tie), "{ranked:?}");
        // Nothing to test: decided as it is.
        let exact = plan(&[Some(&[3.0]), Some(&[2.0])], true, None);
        assert_eq!(rank_all(&[&exact, &strong]), vec![Ranking::Ranked { leaders: vec![1] }; 2]);
    }

    #[test]
    fn no_library_behind_is_level_with_a_leader() {
        let best = [1.0, 1.01, 0.99, 1.0, 1.02];
        // Twice the best but spread so wide that the test cannot tell: it leads ...
        let wide = [0.5, 2.0, 4.0, 2.0, 0.6];
        // ... and a library as far off but tight, which the test does find worse, with it.
        let tight = [2.0, 2.01, 1.99, 2.0, 2.02];
        assert_eq!(rank(&[Some(&best), Some(&wide), Some(&tight)], false, None), Ranking::Tie);
        // Clearly beyond the wide one, it is behind.
        let far: Vec<f64> = tight.iter().map(|v| v * 1.5).collect();
        assert_eq!(rank(&[Some(&best), Some(&wide), Some(&far)], false, None), Ranking::Ranked { leaders: vec![0, 1] });
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
