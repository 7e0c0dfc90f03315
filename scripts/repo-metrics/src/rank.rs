//! Tertiles and the OSSPal-style score.
//!
//! For each metric the libraries are ordered from worst to best. A library's position is its
//! midrank r (0-based; tied libraries share the mean of their positions) among n libraries;
//! its percentile is p = (r + 1/2) / n and its tertile is 1 if p < 1/3, 3 if p > 2/3, else 2.
//! So with 3 libraries the worst gets 1, the middle 2 and the best 3; with 6 each tertile holds
//! two; ties always share a tertile; a lone library, or all libraries tied, get 2.
//! A metric is ranked only when every library has a value for it (issue metrics need an
//! export for each library). The score is the mean tertile over the ranked metrics (1..=3).

use serde::Serialize;

use crate::{CommitStats, IssueStats, LibraryReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Commits,
    Contributors,
    FilesPerCommit,
    IssuesOpened,
    IssuesClosed,
    IssuesShareClosed,
    IssuesMeanAgeDays,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Commits,
        Metric::Contributors,
        Metric::FilesPerCommit,
        Metric::IssuesOpened,
        Metric::IssuesClosed,
        Metric::IssuesShareClosed,
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
            Metric::IssuesShareClosed => "issues_share_closed",
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
            Metric::IssuesShareClosed => issues.and_then(|i| i.share_closed),
            Metric::IssuesMeanAgeDays => issues.and_then(|i| i.mean_age_days),
        }
    }
}

/// The tertile of each value, in input order (see the module documentation).
pub fn tertiles(values: &[f64], higher_is_better: bool) -> Vec<u8> {
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

/// Fills in every library's tertiles and score.
pub fn score(libraries: &mut [LibraryReport]) {
    for metric in Metric::ALL {
        let values: Option<Vec<f64>> = libraries.iter().map(|l| l.value(metric)).collect();
        let Some(values) = values else { continue };
        for (lib, t) in libraries.iter_mut().zip(tertiles(&values, metric.higher_is_better())) {
            lib.tertiles.insert(metric, t);
        }
    }
    for lib in libraries {
        let n = lib.tertiles.len();
        lib.score = (n > 0).then(|| lib.tertiles.values().map(|&t| f64::from(t)).sum::<f64>() / n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
