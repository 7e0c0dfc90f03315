//! Tertiles and the OSSPal-style score, per [`Method`].
//!
//! Corrected: for each metric the libraries are ordered from worst to best. A library's
//! position is its midrank r (0-based; tied libraries share the mean of their positions) among
//! n libraries; its percentile is p = (r + 1/2) / n and its tertile is 1 if p < 1/3, 3 if
//! p > 2/3, else 2. So with 3 libraries the worst gets 1, the middle 2 and the best 3; with 6
//! each tertile holds two; ties always share a tertile; a lone library, or all libraries tied,
//! get 2.
//!
//! Thesis: `quantiles.py` cuts each metric's values with Python's
//! `statistics.quantiles(values, n=3)` (method 'exclusive'); a value below the first cut is in
//! the lower third, above the second in the upper third, else in the middle (the worse third
//! is tertile 1, so for a lower-is-better metric the order flips). It needs two values.
//!
//! Either way a metric is ranked only when every library has a value for it (ticket metrics
//! need an export for each library), and the score is the mean tertile over the ranked metrics
//! (1..=3): OSSPal's weighted average with equal weights.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{CommitStats, IssueStats, LibraryReport, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Commits,
    Contributors,
    FilesPerCommit,
    IssuesOpened,
    IssuesClosed,
    IssuesClosedPercent,
    IssuesMeanAgeDays,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Commits,
        Metric::Contributors,
        Metric::FilesPerCommit,
        Metric::IssuesOpened,
        Metric::IssuesClosed,
        Metric::IssuesClosedPercent,
        Metric::IssuesMeanAgeDays,
    ];

    /// The column name in the CSV and JSON reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Commits => "commits",
            Metric::Contributors => "contributors",
            Metric::FilesPerCommit => "files_per_commit",
            Metric::IssuesOpened => "issues_opened",
            Metric::IssuesClosed => "issues_closed",
            Metric::IssuesClosedPercent => "issues_closed_percent",
            Metric::IssuesMeanAgeDays => "issues_mean_age_days",
        }
    }

    /// Whether a higher value ranks better. Activity (commits, contributors, files changed,
    /// issues opened and closed) counts as a sign of a living project, as in OSSPal's
    /// community criteria; issues should get closed, and quickly.
    pub fn higher_is_better(self) -> bool {
        self != Metric::IssuesMeanAgeDays
    }

    pub fn value(self, commits: &CommitStats, issues: Option<&IssueStats>) -> Option<f64> {
        match self {
            Metric::Commits => Some(commits.commits as f64),
            Metric::Contributors => Some(commits.contributors as f64),
            Metric::FilesPerCommit => Some(commits.files_per_commit),
            Metric::IssuesOpened => issues.map(|i| i.opened as f64),
            Metric::IssuesClosed => issues.map(|i| i.closed as f64),
            Metric::IssuesClosedPercent => issues.and_then(|i| i.closed_percent),
            Metric::IssuesMeanAgeDays => issues.and_then(|i| i.mean_age_days),
        }
    }
}

/// How a method turns values into tertiles and a score, for the reports.
pub fn scoring(method: Method) -> &'static str {
    match method {
        Method::Thesis => {
            "cut points statistics.quantiles(values, n=3) per metric, as quantiles.py; below the first cut tertile 1, \
             above the second 3, else 2 (reversed for issues_mean_age_days); score = mean tertile. Only the cut points \
             are the thesis' own: its scripts and repository do not publish how it assigned tertiles and weighted \
             them, so the tertile rule and the equal-weight mean are this tool's reading"
        }
        Method::Corrected => {
            "tertile by midrank percentile p = (r + 1/2) / n among the libraries: 1 if p < 1/3, 3 if p > 2/3, else \
             2; score = mean tertile over the metrics every library has"
        }
    }
}

/// The tertile of each value, in input order (see the module documentation); None when the
/// thesis' quantiles are undefined (fewer than two values).
pub fn tertiles(values: &[f64], higher_is_better: bool, method: Method) -> Option<Vec<u8>> {
    match method {
        Method::Corrected => Some(midrank_tertiles(values, higher_is_better)),
        Method::Thesis => {
            let [low, high] = python_tertile_cuts(values)?;
            // Below the first cut 1, above the second 3, else (on or between the cuts) 2.
            let third = |v: f64| 1 + u8::from(v >= low) + u8::from(v > high);
            Some(values.iter().map(|&v| if higher_is_better { third(v) } else { 4 - third(v) }).collect())
        }
    }
}

/// Python's `statistics.quantiles(values, n=3)` with its default method 'exclusive', in the
/// same arithmetic (integer positions, then one interpolation in floating point).
pub fn python_tertile_cuts(values: &[f64]) -> Option<[f64; 2]> {
    let mut data = values.to_vec();
    data.sort_by(f64::total_cmp);
    let (ld, n) = (data.len() as i64, 3i64);
    if ld < 2 {
        return None;
    }
    let m = ld + 1;
    Some([1, 2].map(|i| {
        let j = (i * m / n).clamp(1, ld - 1);
        let delta = i * m - j * n;
        (data[j as usize - 1] * (n - delta) as f64 + data[j as usize] * delta as f64) / n as f64
    }))
}

fn midrank_tertiles(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    // Position of each value from worst to best; equal values form one tie group.
    let better = |a: f64, b: f64| if higher_is_better { a.total_cmp(&b) } else { b.total_cmp(&a) };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| better(values[a], values[b]));
    let mut out = vec![0; n];
    let mut lo = 0;
    while lo < n {
        let mut hi = lo;
        while hi + 1 < n && values[order[hi + 1]] == values[order[lo]] {
            hi += 1;
        }
        // p = (r + 1/2) / n with r = (lo + hi) / 2, compared with 1/3 and 2/3 in integers:
        // 3p = 3(lo + hi + 1) / 2n.
        let (x, d) = (3 * (lo + hi + 1), 2 * n);
        let t = if x < d {
            1
        } else if x > 2 * d {
            3
        } else {
            2
        };
        for &i in &order[lo..=hi] {
            out[i] = t;
        }
        lo = hi + 1;
    }
    out
}

/// Fills in the tertiles and scores of one method's libraries; returns the thesis' cut points.
pub fn score(libraries: &mut [LibraryReport], method: Method) -> BTreeMap<Metric, [f64; 2]> {
    let mut cuts = BTreeMap::new();
    for metric in Metric::ALL {
        let values: Option<Vec<f64>> = libraries.iter().map(|l| l.value(metric)).collect();
        let Some(values) = values else { continue };
        let Some(thirds) = tertiles(&values, metric.higher_is_better(), method) else { continue };
        if method == Method::Thesis {
            cuts.extend(python_tertile_cuts(&values).map(|c| (metric, c)));
        }
        for (lib, t) in libraries.iter_mut().zip(thirds) {
            lib.tertiles.insert(metric, t);
        }
    }
    for lib in libraries {
        let n = lib.tertiles.len();
        lib.score = (n > 0).then(|| lib.tertiles.values().map(|&t| f64::from(t)).sum::<f64>() / n as f64);
        lib.score_over = lib.tertiles.keys().copied().collect();
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tertiles(values: &[f64], higher_is_better: bool) -> Vec<u8> {
        super::tertiles(values, higher_is_better, Method::Corrected).unwrap()
    }

    #[test]
    fn pythons_quantiles() {
        let r2 = |v: [f64; 2]| v.map(|x| (x * 100.0).round() / 100.0);
        // quantiles.py's example values (the thesis' closed %): it prints [82.67, 93.67].
        let closed = [86.0, 89.0, 97.0, 81.0, 96.0, 36.0];
        assert_eq!(r2(python_tertile_cuts(&closed).unwrap()), [82.67, 93.67]);
        assert_eq!(python_tertile_cuts(&[1.0, 5.0]), Some([1.0, 5.0]));
        assert_eq!(python_tertile_cuts(&[1.0, 2.0, 3.0]), Some([4.0 / 3.0, 8.0 / 3.0]));
        assert_eq!(python_tertile_cuts(&[4.0]), None);
        let thesis = |v: &[f64], hib| super::tertiles(v, hib, Method::Thesis);
        assert_eq!(thesis(&closed, true), Some(vec![2, 2, 3, 1, 3, 1]));
        assert_eq!(thesis(&closed, false), Some(vec![2, 2, 1, 3, 1, 3]));
        assert_eq!(thesis(&[7.0, 7.0, 7.0], true), Some(vec![2, 2, 2]));
        assert_eq!(thesis(&[4.0], true), None);
    }

    #[test]
    fn tertiles_by_position() {
        assert_eq!(tertiles(&[5.0], true), [2]);
        assert_eq!(tertiles(&[1.0, 2.0], true), [1, 3]);
        assert_eq!(tertiles(&[30.0, 10.0, 20.0], true), [3, 1, 2]);
        assert_eq!(tertiles(&[30.0, 10.0, 20.0], false), [1, 3, 2]);
        assert_eq!(tertiles(&[1.0, 2.0, 3.0, 4.0], true), [1, 2, 2, 3]);
        assert_eq!(tertiles(&[1.0, 2.0, 3.0, 4.0, 5.0], true), [1, 1, 2, 3, 3]);
        assert_eq!(tertiles(&[6.0, 5.0, 4.0, 3.0, 2.0, 1.0], true), [3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn ties_share_a_tertile_symmetrically() {
        assert_eq!(tertiles(&[7.0, 7.0, 7.0], true), [2, 2, 2]);
        assert_eq!(tertiles(&[1.0, 1.0, 9.0], true), [2, 2, 3]);
        assert_eq!(tertiles(&[1.0, 9.0, 9.0], true), [1, 2, 2]);
        assert_eq!(tertiles(&[1.0, 2.0, 2.0, 2.0, 2.0, 3.0], true), [1, 2, 2, 2, 2, 3]);
        assert_eq!(tertiles(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], true), [1, 1, 2, 2, 3, 3]);
    }
}
