//! The parts of a report that answer "which library should I use?": the summary lines per use
//! case and dimension, the heatmaps of ratios to the best, the decision aid's weighted scores
//! and the findings. Built from the [`UseCase`] tables, so they cannot disagree with them.

use std::collections::BTreeMap;

use super::model::{PlannedChart, UseCase};
use crate::catalogue::{self, DIMENSIONS};
use crate::plot::{Figure, HeatCell, Heatmap};
use crate::record::{Finding, Run};
use crate::stats::{self, Ranking};
use crate::weights::{Weights, REPOSITORY};

/// Curated causes shipped with the repository (see the file's header).
const CURATED_FINDINGS: &str = include_str!("../../findings.yaml");
/// A curated finding shows only where the run's worst library is this many times the best.
const CURATED_MIN_RATIO: f64 = 1.5;

pub struct Overview {
    pub usecases: Vec<UseCaseSummary>,
    /// The library × dimension heatmap across use cases.
    pub across: Option<PlannedChart>,
    pub aid: DecisionAid,
    pub findings: Vec<Finding>,
    /// Rows whose worst library is more than 1.5× the best, significantly worse (not a tie), and
    /// that no finding explains:
    /// `usecase / metric · class (ratio: best … worst)`.
    pub unexplained: Vec<String>,
}

pub struct UseCaseSummary {
    pub usecase: String,
    pub lines: Vec<SummaryLine>,
    /// `lib: why` for every library with a failure or a capability short of native.
    pub gaps: Vec<String>,
    pub heatmap: Option<PlannedChart>,
}

/// One dimension of one use case: who leads how often, and every row behind it.
pub struct SummaryLine {
    pub dimension: &'static str,
    pub verdict: String,
    /// (row label, table row anchor, outcome).
    pub rows: Vec<(String, String, String)>,
}

pub struct DecisionAid {
    pub libs: Vec<String>,
    /// (key, title, weight) of each dimension with a score for some library.
    pub dimensions: Vec<(String, String, f64)>,
    /// Per library, per dimension: the mean tertile (1 worst … 3 best).
    pub scores: Vec<Vec<Option<f64>>>,
    /// Per library: the weighted mean over its scored dimensions.
    pub totals: Vec<Option<f64>>,
    pub weights_source: String,
    /// Why the repository dimension is missing, if it is.
    pub repository_note: Option<String>,
}

pub fn build(usecases: &[UseCase], run: &Run, libs: &[String], weights: &Weights) -> Overview {
    Overview {
        usecases: usecases.iter().map(|u| summarise(u, run)).collect(),
        across: across_heatmap(usecases, libs),
        aid: decision_aid(usecases, run, libs, weights),
        findings: findings(usecases, run),
        unexplained: unexplained(usecases, &findings(usecases, run)),
    }
}

fn summarise(u: &UseCase, run: &Run) -> UseCaseSummary {
    let lines = DIMENSIONS
        .iter()
        .filter_map(|d| {
            let rows: Vec<_> = u
                .rows
                .iter()
                .filter(|r| catalogue::dimension(&r.metric).is_some_and(|x| x.key == d.key))
                .collect();
            if rows.is_empty() {
                return None;
            }
            let mut leads: BTreeMap<usize, usize> = BTreeMap::new();
            let (mut ties, mut unranked) = (0, 0);
            for r in &rows {
                match &r.ranking {
                    Ranking::Ranked { leaders } => {
                        for l in leaders {
                            *leads.entry(*l).or_default() += 1;
                        }
                    }
                    Ranking::Tie => ties += 1,
                    Ranking::NotRanked { .. } => unranked += 1,
                }
            }
            let mut parts: Vec<String> = {
                let mut v: Vec<(usize, usize)> = leads.into_iter().collect();
                v.sort_by_key(|(lib, n)| (std::cmp::Reverse(*n), *lib));
                v.into_iter()
                    .map(|(lib, n)| format!("{} leads {n} of {}", u.libs[lib], rows.len()))
                    .collect()
            };
            if ties > 0 {
                parts.push(format!("tie in {ties}"));
            }
            if unranked > 0 {
                parts.push(format!("not ranked in {unranked}"));
            }
            Some(SummaryLine {
                dimension: d.title,
                verdict: parts.join("; "),
                rows: rows
                    .iter()
                    .map(|r| (r.label(), r.anchor.clone(), r.outcome(&u.libs)))
                    .collect(),
            })
        })
        .collect();
    let gaps = u
        .libs
        .iter()
        .filter_map(|lib| {
            let mut why: Vec<String> = run
                .failures
                .iter()
                .filter(|f| f.usecase == u.name && &f.lib == lib)
                .map(|f| format!("{} failed", f.stage.as_str()))
                .collect();
            if let Some(c) = super::model::capability(&run.capabilities, &u.name, lib)
                .filter(|c| c.status != crate::record::Status::Native)
            {
                why.push(format!("{}: {}", c.status.as_str(), first_line(&c.note)));
            }
            (!why.is_empty()).then(|| format!("{lib}: {}", why.join("; ")))
        })
        .collect();
    UseCaseSummary {
        usecase: u.name.clone(),
        lines,
        gaps,
        heatmap: usecase_heatmap(u),
    }
}

/// A capability note's first sentence or line: the summary and the matrix show only that.
pub fn first_line(note: &str) -> &str {
    let line = note.lines().next().unwrap_or("");
    match line.find(". ") {
        Some(i) => &line[..=i],
        None => line,
    }
    .trim()
}

fn heat_cell(ranking: &Ranking, lib: usize, ratio: Option<f64>) -> Option<HeatCell> {
    Some(HeatCell {
        ratio: ratio?,
        ranked: ranking.is_ranked(),
        mark: match ranking {
            Ranking::Ranked { leaders } if leaders.contains(&lib) => "★",
            Ranking::Tie => "=",
            _ => "",
        },
    })
}

fn usecase_heatmap(u: &UseCase) -> Option<PlannedChart> {
    let rows: Vec<_> = u
        .rows
        .iter()
        .filter(|r| r.to_best.iter().flatten().count() >= 2)
        .collect();
    (!rows.is_empty()).then(|| PlannedChart {
        stem: format!("{}-heatmap", super::model::file_stem(&u.name)),
        chart: Figure::Heatmap(Heatmap {
            title: format!("{}: ratio to the best library", u.name),
            rows: rows.iter().map(|r| r.label()).collect(),
            cols: u.libs.clone(),
            cells: rows
                .iter()
                .map(|r| {
                    (0..u.libs.len())
                        .map(|i| heat_cell(&r.ranking, i, r.to_best[i]))
                        .collect()
                })
                .collect(),
        }),
    })
}

/// Per library and dimension, the geometric mean of its ratios to the best over the ranked
/// rows of every use case; marked ★ where it led every one of them.
fn across_heatmap(usecases: &[UseCase], libs: &[String]) -> Option<PlannedChart> {
    let mut cells = Vec::new();
    let mut titles = Vec::new();
    for d in DIMENSIONS {
        // Per global library: (sum of ln ratio, rows, rows led).
        let mut acc = vec![(0.0f64, 0usize, 0usize); libs.len()];
        for u in usecases {
            for r in u.rows.iter().filter(|r| {
                r.ranking.is_ranked()
                    && catalogue::dimension(&r.metric).is_some_and(|x| x.key == d.key)
            }) {
                for (i, lib) in u.libs.iter().enumerate() {
                    let (Some(ratio), Some(g)) = (r.to_best[i], libs.iter().position(|l| l == lib))
                    else {
                        continue;
                    };
                    if ratio.is_finite() {
                        acc[g].0 += ratio.ln();
                        acc[g].1 += 1;
                        acc[g].2 += usize::from(!matches!(&r.ranking, Ranking::Ranked { leaders } if !leaders.contains(&i)));
                    }
                }
            }
        }
        if acc.iter().all(|a| a.1 == 0) {
            continue;
        }
        titles.push(d.title.split(" (").next().unwrap_or(d.title).to_string());
        cells.push(
            acc.iter()
                .map(|&(ln, n, led)| {
                    (n > 0).then(|| HeatCell {
                        ratio: (ln / n as f64).exp(),
                        ranked: true,
                        mark: if led == n { "★" } else { "" },
                    })
                })
                .collect(),
        );
    }
    (!cells.is_empty()).then(|| PlannedChart {
        stem: "overview-heatmap".into(),
        chart: Figure::Heatmap(Heatmap {
            title: "All use cases: geometric mean ratio to the best, per dimension".into(),
            rows: titles,
            cols: libs.to_vec(),
            cells,
        }),
    })
}

fn decision_aid(usecases: &[UseCase], run: &Run, libs: &[String], weights: &Weights) -> DecisionAid {
    // Per dimension key, per global library: (sum of tertiles, count).
    let mut acc: BTreeMap<&str, Vec<(f64, usize)>> = BTreeMap::new();
    for u in usecases {
        for r in &u.rows {
            let Some(d) = catalogue::dimension(&r.metric) else { continue };
            let present: Vec<usize> = (0..u.libs.len()).filter(|&i| r.to_best[i].is_some()).collect();
            let costs: Vec<f64> = match &r.ranking {
                Ranking::NotRanked { .. } => continue,
                Ranking::Tie => vec![0.0; present.len()],
                Ranking::Ranked { leaders } => present
                    .iter()
                    .map(|&i| if leaders.contains(&i) { 0.0 } else { r.to_best[i].unwrap_or(f64::INFINITY) })
                    .collect(),
            };
            let slot = acc.entry(d.key).or_insert_with(|| vec![(0.0, 0); libs.len()]);
            for (&i, t) in present.iter().zip(stats::tertiles(&costs)) {
                if let Some(g) = libs.iter().position(|l| *l == u.libs[i]) {
                    slot[g].0 += f64::from(t);
                    slot[g].1 += 1;
                }
            }
        }
    }
    let mut dimensions = Vec::new();
    let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
    for d in DIMENSIONS {
        if let Some(v) = acc.get(d.key) {
            dimensions.push((d.key.to_string(), d.title.to_string(), weights.of(d.key)));
            columns.push(v.iter().map(|&(s, n)| (n > 0).then(|| s / n as f64)).collect());
        }
    }
    let repository_note = match &run.repo_metrics {
        Some(repo) => {
            dimensions.push((REPOSITORY.into(), "repository activity (OSSPal score of scripts/repo-metrics)".into(), weights.of(REPOSITORY)));
            columns.push(
                libs.iter()
                    .map(|l| repo.libraries.iter().find(|r| &r.name == l).and_then(|r| r.score))
                    .collect(),
            );
            None
        }
        None => Some("No repo-metrics.csv in this run directory (scripts/repo-metrics writes it): the repository dimension is absent.".into()),
    };
    let scores: Vec<Vec<Option<f64>>> = (0..libs.len())
        .map(|g| columns.iter().map(|c| c[g]).collect())
        .collect();
    let totals = scores
        .iter()
        .map(|s| {
            let (sum, w) = s.iter().zip(&dimensions).fold((0.0, 0.0), |(sum, w), (v, d)| match v {
                Some(v) => (sum + v * d.2, w + d.2),
                None => (sum, w),
            });
            (w > 0.0).then(|| sum / w)
        })
        .collect();
    DecisionAid {
        libs: libs.to_vec(),
        dimensions,
        scores,
        totals,
        weights_source: weights.source.clone(),
        repository_note,
    }
}

/// The best and the worst library of a ranked row, and their ratio, when it is above 1.5×.
fn large_difference(u: &UseCase, r: &super::model::MetricRow) -> Option<(String, String, f64)> {
    if !r.ranking.is_ranked() {
        return None;
    }
    let (worst, ratio) =
        r.to_best.iter().enumerate().filter_map(|(i, x)| Some((i, (*x)?))).max_by(|a, b| a.1.total_cmp(&b.1))?;
    let best = r.to_best.iter().position(|x| *x == Some(1.0))?;
    (ratio > CURATED_MIN_RATIO && ratio.is_finite()).then(|| (u.libs[best].clone(), u.libs[worst].clone(), ratio))
}

/// Whether a finding (usecase `*` = every use case) is about this row.
fn explains(f: &Finding, usecase: &str, metric: &str) -> bool {
    (f.usecase == usecase || f.usecase == "*") && f.metric == metric
}

/// The run's own findings (measured causes, shown as recorded), then the curated ones where the
/// run bears them out: a ranked row of its metric whose worst library is more than 1.5× the best
/// (and, when the finding names libraries, one of them). A finding for use case `*` applies to
/// each; `{usecase}` in its evidence is that use case's name.
fn findings(usecases: &[UseCase], run: &Run) -> Vec<Finding> {
    let curated: Vec<Finding> = yaml_serde::from_str(CURATED_FINDINGS).unwrap_or_default();
    let mut out = Vec::new();
    for u in usecases {
        let for_this = |f: &&Finding| f.usecase == u.name || f.usecase == "*";
        let localise = |f: &Finding, libs: Vec<String>| {
            let evidence = f.evidence.iter().map(|e| e.replace("{usecase}", &u.name)).collect();
            Finding { usecase: u.name.clone(), libs, evidence, ..f.clone() }
        };
        out.extend(run.findings.iter().filter(for_this).map(|f| localise(f, f.libs.clone())));
        for f in curated.iter().filter(for_this) {
            let shown = u.rows.iter().filter(|r| r.metric == f.metric).find_map(|r| large_difference(u, r));
            if let Some((best, worst, _)) = shown.filter(|(_, worst, _)| f.libs.is_empty() || f.libs.contains(worst)) {
                out.push(localise(f, vec![best, worst]));
            }
        }
    }
    out
}

/// Large differences no finding explains: the report says so rather than leave them uncommented.
fn unexplained(usecases: &[UseCase], findings: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    for u in usecases {
        for r in &u.rows {
            let Some((best, worst, ratio)) = large_difference(u, r) else { continue };
            // A tie, or a worst library within the leaders' noise: no difference the test can
            // tell from chance, so none to explain (the table says so).
            let significant = match &r.ranking {
                crate::stats::Ranking::Ranked { leaders } => !leaders.iter().any(|&i| u.libs[i] == worst),
                _ => false,
            };
            if !significant {
                continue;
            }
            if !findings.iter().any(|f| explains(f, &u.name, &r.metric)) {
                let class = r.class.as_deref().map(|c| format!(" · {c}")).unwrap_or_default();
                out.push(format!("{} / {}{class}: {worst} is {ratio:.2}× {best}", u.name, r.metric));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curated_findings_parse() {
        let _: Vec<Finding> = yaml_serde::from_str(CURATED_FINDINGS).unwrap();
    }

    #[test]
    fn first_line_of_a_note() {
        assert_eq!(first_line("Kernel side in C. Because of X.\nMore."), "Kernel side in C.");
        assert_eq!(first_line("short"), "short");
    }
}
