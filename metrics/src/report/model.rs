//! What a report says, independent of how it is written: the HTML and Markdown writers only
//! format this model, so they cannot disagree on a number.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::{self, Better, LIBRARIES, SECOND_TARGET_REFERENCE, TARGET_REFERENCE, USECASES};
use crate::fmt;
use crate::plot::{self, Chart, Figure};
use crate::record::{Capability, Environment, Failure, Row, Run, REFERENCE_PREFIX};
use crate::stats::{self, Plan, Ranking, Summary};

/// Identity of one series of repetitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub usecase: String,
    /// A library, or a reference (`ref:...`).
    pub lib: String,
    pub metric: String,
    pub class: Option<String>,
}

impl SeriesKey {
    pub fn of(row: &Row) -> SeriesKey {
        SeriesKey {
            usecase: row.usecase.clone(),
            lib: row.lib.clone(),
            metric: row.metric.clone(),
            class: row.class.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Series {
    pub unit: String,
    pub values: Vec<f64>,
}

/// Groups rows into series. The unit is the first row's: a series has one unit.
pub fn series(rows: &[Row]) -> BTreeMap<SeriesKey, Series> {
    let mut out: BTreeMap<SeriesKey, Series> = BTreeMap::new();
    for row in rows {
        let s = out.entry(SeriesKey::of(row)).or_insert_with(|| Series {
            unit: row.unit.clone(),
            values: vec![],
        });
        s.values.push(row.value);
    }
    out
}

/// "metric" or "metric · class".
pub fn series_label(metric: &str, class: Option<&str>) -> String {
    match class {
        Some(c) => format!("{metric} · {c}"),
        None => metric.to_string(),
    }
}

pub struct Report {
    pub created: Option<String>,
    pub git_revision: Option<String>,
    /// Why the run's data is incomplete ([`crate::record::RunMeta::partial`]); empty when complete.
    pub partial: Vec<String>,
    pub usecases: Vec<UseCase>,
    /// Use cases × libraries, for the capability matrix.
    pub matrix_usecases: Vec<String>,
    pub matrix_libs: Vec<String>,
    pub glossary: Vec<GlossaryEntry>,
    pub overview: super::overview::Overview,
}

impl Report {
    /// Every figure to draw: the overview heatmaps, then each use case's charts.
    pub fn figures(&self) -> Vec<&PlannedChart> {
        let o = &self.overview;
        o.across
            .iter()
            .chain(o.usecases.iter().flat_map(|u| &u.heatmap))
            .chain(self.usecases.iter().flat_map(|u| u.charts.iter().chain(&u.distributions)))
            .collect()
    }
}

pub struct UseCase {
    pub name: String,
    /// Table columns.
    pub libs: Vec<String>,
    pub references: Vec<String>,
    pub rows: Vec<MetricRow>,
    pub charts: Vec<PlannedChart>,
    /// CDFs from `histograms.csv`: latency, and jittergen's delays per scenario.
    pub distributions: Vec<PlannedChart>,
    /// Said instead when the run has no `histograms.csv`.
    pub distributions_note: Option<String>,
}

pub struct MetricRow {
    pub metric: String,
    pub class: Option<String>,
    pub unit: String,
    pub better: Better,
    /// One per column of [`UseCase::libs`].
    pub cells: Vec<Cell>,
    pub references: Vec<(String, Summary)>,
    /// Over the columns of [`UseCase::libs`].
    pub ranking: Ranking,
    /// For [`Better::Target`]: the configured value the ranking measures distance to.
    pub target: Option<f64>,
    /// For [`Better::Target`]: the same ranking by distance to netem's value, when recorded.
    pub second: Option<(String, Ranking)>,
    /// Per column: how far the median is from the best one, as a factor ≥ 1 (for a target
    /// metric the distance to the target over the best distance). `None` without a value.
    pub to_best: Vec<Option<f64>>,
    /// `id` of the table row, for links from the summary.
    pub anchor: String,
    /// What `ranking` and `second` are decided from, across the report ([`decide`]).
    plans: Vec<Plan>,
}

impl MetricRow {
    pub fn label(&self) -> String {
        series_label(&self.metric, self.class.as_deref())
    }

    /// The ranking in words: `aya ★`, `aya = libbpf-rs ★`, `tie (no significant difference)`,
    /// `not ranked: n<5`; with the factor to the next library when one leads.
    pub fn outcome(&self, libs: &[String]) -> String {
        ranking_text(&self.ranking, libs, &self.to_best)
    }
}

impl MetricRow {
    /// The ranking cell: the outcome, and for a target metric the target and the second view.
    pub fn ranking_notes(&self, libs: &[String]) -> Vec<String> {
        let mut notes = vec![self.outcome(libs)];
        if let Some(t) = self.target {
            notes.push(format!("target (configured): {}", fmt::value(t)));
        }
        if let Some((label, r)) = &self.second {
            notes.push(format!("closest to {label}: {}", ranking_text(r, libs, &[])));
        }
        notes
    }
}

/// The legend of the tables' ranking, with the test.
/// The header's word on a partial run, before its reasons.
pub const PARTIAL_HEADER: &str = "Partial report: this run did not measure everything it set out to; \
     values are missing where a stage did not run or failed.";
/// The summary's word on a partial run.
pub const PARTIAL_SUMMARY: &str = "Partial data: the rankings below compare only what this run \
     measured before it stopped or where a stage failed (reasons in the header).";

pub fn ranking_legend() -> String {
    format!(
        "★ leads: the best median and every library not significantly worse than it (↓ lower \
         is better, ↑ higher, ◎ closest to the configured value); a tie when no library is \
         significantly worse. Test: {}. Exact metrics (lines of code, sizes, instruction \
         counts) rank by value. Ranges are min–max below {} values, else p5–p95.",
        stats::TEST_STATEMENT,
        stats::MIN_N_FOR_P5_P95
    )
}

/// See [`MetricRow::outcome`].
pub fn ranking_text(ranking: &Ranking, libs: &[String], to_best: &[Option<f64>]) -> String {
    match ranking {
        Ranking::Ranked { leaders } => {
            let names: Vec<&str> = leaders.iter().map(|&i| libs[i].as_str()).collect();
            let next = to_best
                .iter()
                .enumerate()
                .filter(|(i, _)| !leaders.contains(i))
                .filter_map(|(_, r)| *r)
                .fold(f64::INFINITY, f64::min);
            if next.is_finite() {
                format!("{} ★ (next {})", names.join(" = "), fmt::ratio(next))
            } else {
                format!("{} ★", names.join(" = "))
            }
        }
        Ranking::Tie => "tie (no significant difference)".into(),
        Ranking::NotRanked { reason } => format!("not ranked: {reason}"),
    }
}

pub enum Cell {
    Value {
        summary: Summary,
        /// The repetitions, for the strip plots.
        values: Vec<f64>,
        /// Leads the ranking: best, or not significantly worse than the best.
        best: bool,
        /// Median over each reference's median, by reference label.
        ratios: Vec<(String, f64)>,
    },
    /// No value; why, when the run knows (a failed stage, a capability status).
    Absent(Option<String>),
}

impl Cell {
    /// `p5–p95`, or `min–max` below [`stats::MIN_N_FOR_P5_P95`] values, where the
    /// interpolated percentiles are the extremes in all but name; none for a single shot or a
    /// constant series, where it would only repeat the median.
    pub fn range_text(summary: &Summary) -> Option<String> {
        let (lo, hi) = summary.range();
        (lo != hi).then(|| {
            format!(
                "{} {}–{}",
                range_name(summary.n),
                fmt::value(lo),
                fmt::value(hi)
            )
        })
    }

    pub fn cv_text(summary: &Summary) -> Option<String> {
        summary
            .cv_flag()
            .then(|| format!("CV {}", fmt::percent(summary.cv)))
    }

    pub fn ratio_texts(ratios: &[(String, f64)]) -> Vec<String> {
        ratios
            .iter()
            .map(|(label, r)| format!("{} {label}", fmt::ratio(*r)))
            .collect()
    }
}

/// What a spread of `n` values is honestly called.
pub fn range_name(n: usize) -> &'static str {
    if n < stats::MIN_N_FOR_P5_P95 {
        "min–max"
    } else {
        "p5–p95"
    }
}

/// A chart to draw: the file stem under `plots/` and what goes in it.
pub struct PlannedChart {
    pub stem: String,
    pub chart: Figure,
}

pub struct GlossaryEntry {
    pub metric: String,
    pub unit: String,
    pub better: Better,
    pub description: String,
}

pub fn build(run: &Run, weights: &crate::weights::Weights) -> Report {
    let all = series(&run.rows);
    let mut usecases: BTreeSet<&str> = all.keys().map(|k| k.usecase.as_str()).collect();
    usecases.extend(run.failures.iter().map(|f| f.usecase.as_str()));
    usecases.extend(run.capabilities.iter().map(|c| c.usecase.as_str()));
    let usecases = sorted_by(usecases, USECASES);

    // Failures do not add columns: the harness also files failures of non-libraries (such as
    // a reference that could not be measured); they are listed under Failures all the same.
    let run_libs = sorted_by(
        all.keys()
            .filter(|k| !is_reference(&k.lib))
            .map(|k| k.lib.as_str())
            .chain(run.capabilities.iter().map(|c| c.lib.as_str()))
            .collect(),
        LIBRARIES,
    );

    let mut usecases_built: Vec<UseCase> = usecases
        .iter()
        .map(|u| usecase(u, &all, run, &run_libs))
        .collect();
    decide(&mut usecases_built);
    let overview = super::overview::build(&usecases_built, run, &run_libs, weights);
    Report {
        overview,
        created: run
            .meta
            .as_ref()
            .map(|m| m.created.clone())
            .filter(|c| !c.is_empty()),
        git_revision: run.meta.as_ref().and_then(|m| m.git_revision.clone()),
        partial: run.meta.as_ref().map(|m| m.partial.clone()).unwrap_or_default(),
        usecases: usecases_built,
        matrix_usecases: usecases.clone(),
        matrix_libs: run_libs,
        glossary: glossary(&all),
    }
}

fn is_reference(lib: &str) -> bool {
    lib.starts_with(REFERENCE_PREFIX)
}

fn sorted_by(names: BTreeSet<&str>, known: &[&str]) -> Vec<String> {
    let mut v: Vec<&str> = names.into_iter().collect();
    v.sort_by_key(|n| catalogue::listed_order(known, n));
    v.into_iter().map(String::from).collect()
}

fn usecase(
    name: &str,
    all: &BTreeMap<SeriesKey, Series>,
    run: &Run,
    run_libs: &[String],
) -> UseCase {
    let mine: Vec<(&SeriesKey, &Series)> = all.iter().filter(|(k, _)| k.usecase == name).collect();
    let involved = |lib: &str| {
        mine.iter().any(|(k, _)| k.lib == lib)
            || run
                .capabilities
                .iter()
                .any(|c| c.usecase == name && c.lib == lib)
    };
    let libs: Vec<String> = run_libs.iter().filter(|l| involved(l)).cloned().collect();
    let references: Vec<String> = {
        let set: BTreeSet<&str> = mine
            .iter()
            .filter_map(|(k, _)| k.lib.strip_prefix(REFERENCE_PREFIX))
            .collect();
        set.into_iter().map(String::from).collect()
    };

    // One table row per (metric, class), in catalogue order.
    let mut metric_classes: Vec<(&str, Option<&str>)> = mine
        .iter()
        .map(|(k, _)| (k.metric.as_str(), k.class.as_deref()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    metric_classes.sort_by_key(|(m, c)| (catalogue::order(m), *c));

    let rows: Vec<MetricRow> = metric_classes
        .into_iter()
        .map(|(metric, class)| metric_row(name, metric, class, &libs, &references, all, run))
        .collect();

    let charts = plan_charts(name, &rows, &libs, run_libs);
    let distributions = run.histograms.as_deref().map_or_else(Vec::new, |h| {
        plan_distributions(name, h, run_libs)
    });
    // Only where a distribution would belong: a latency or wire delay metric.
    let wants = rows.iter().any(|r| {
        catalogue::dimension(&r.metric).is_some_and(|d| d.key == "latency")
            || r.metric.starts_with("wire_delay")
    });
    let distributions_note = (run.histograms.is_none() && wants).then(|| {
        format!(
            "No {} in this run: latency and delay distributions (CDFs) are not available, \
             only the percentiles in the table.",
            crate::hist::HISTOGRAMS_CSV
        )
    });
    UseCase {
        name: name.into(),
        libs,
        references,
        rows,
        charts,
        distributions,
        distributions_note,
    }
}

/// One (metric, class) of a use case across its libraries.
fn metric_row(
    usecase: &str,
    metric: &str,
    class: Option<&str>,
    libs: &[String],
    references: &[String],
    all: &BTreeMap<SeriesKey, Series>,
    run: &Run,
) -> MetricRow {
    let lookup = |lib: &str| {
        all.get(&SeriesKey {
            usecase: usecase.into(),
            lib: lib.into(),
            metric: metric.into(),
            class: class.map(String::from),
        })
    };
    let ref_libs: Vec<String> = references
        .iter()
        .map(|r| format!("{REFERENCE_PREFIX}{r}"))
        .collect();
    // Any series of the row names the unit, a reference's too when no library measured it.
    let unit = libs
        .iter()
        .chain(&ref_libs)
        .find_map(|l| lookup(l))
        .map_or_else(String::new, |s| s.unit.clone());
    let refs: Vec<(String, Summary)> = references
        .iter()
        .zip(&ref_libs)
        .filter_map(|(label, lib)| Some((label.clone(), Summary::of(&lookup(lib)?.values)?)))
        .collect();
    let better = catalogue::better(metric);
    let target = |reference: &str| lookup(reference).map(|s| stats::median(&s.values));
    let configured = target(TARGET_REFERENCE);
    // Every ranking works on costs, lower is better.
    let costs = |goal: Option<f64>| -> Vec<Option<Vec<f64>>> {
        libs.iter()
            .map(|lib| {
                let values = &lookup(lib)?.values;
                Some(match better {
                    Better::Lower => values.clone(),
                    Better::Higher => values.iter().map(|v| -v).collect(),
                    Better::Target => {
                        let goal = goal?;
                        values.iter().map(|v| (v - goal).abs()).collect()
                    }
                })
            })
            .collect()
    };
    let rank_by = |goal: Option<f64>| {
        let c = costs(goal);
        let refs: Vec<Option<&[f64]>> = c.iter().map(|c| c.as_deref()).collect();
        stats::plan(&refs, catalogue::is_exact(metric), goal)
    };
    let not_ranked = |reason: String| Plan::Done(Ranking::NotRanked { reason });
    let (plan, second) = match better {
        _ if catalogue::condition(metric).is_some() => {
            (not_ranked(catalogue::condition(metric).unwrap_or_default().to_string()), None)
        }
        Better::Target => (
            match configured {
                Some(t) => rank_by(Some(t)),
                None => not_ranked(format!("no {TARGET_REFERENCE} value")),
            },
            target(SECOND_TARGET_REFERENCE).map(|t| {
                let label = SECOND_TARGET_REFERENCE.trim_start_matches(REFERENCE_PREFIX);
                (label.to_string(), rank_by(Some(t)))
            }),
        ),
        _ if catalogue::is_ours(metric) => (not_ranked("ours, not the library's".into()), None),
        _ => (rank_by(None), None),
    };
    // Decided for the whole report by `decide`; until then, as if the metric were alone.
    let ranking = stats::rank_all(&[&plan]).remove(0);
    let mut plans = vec![plan];
    let second = second.map(|(label, p)| {
        let r = stats::rank_all(&[&p]).remove(0);
        plans.push(p);
        (label, r)
    });
    let medians: Vec<Option<f64>> = costs(configured)
        .iter()
        .map(|c| c.as_ref().map(|c| stats::median(c)))
        .collect();
    let best = medians.iter().flatten().copied().fold(f64::INFINITY, f64::min);
    let to_best = medians
        .iter()
        .map(|m| {
            let m = (*m)?;
            // Costs of "higher is better" are negated values: the factor is best / value.
            Some(match better {
                _ if m == best => 1.0,
                Better::Higher => best / m,
                _ => m / best,
            })
            .filter(|r| !r.is_nan())
        })
        .collect();
    let cells: Vec<Cell> = libs
        .iter()
        .enumerate()
        .map(|(i, lib)| match lookup(lib).and_then(|s| Some((s, Summary::of(&s.values)?))) {
            Some((series, summary)) => {
                let ratios = refs
                    .iter()
                    .filter(|(label, r)| r.median != 0.0 && !is_target_label(label))
                    .map(|(label, r)| (label.clone(), summary.median / r.median))
                    .collect();
                Cell::Value {
                    summary,
                    values: series.values.clone(),
                    best: ranking.leads(i),
                    ratios,
                }
            }
            None => Cell::Absent(absence(run, usecase, lib)),
        })
        .collect();
    MetricRow {
        metric: metric.into(),
        class: class.map(String::from),
        unit,
        better,
        cells,
        references: refs,
        ranking,
        target: configured,
        second,
        to_best,
        anchor: file_stem(&format!("row-{usecase}-{}", series_label(metric, class))),
        plans,
    }
}

/// Every ranking of the report decided under one correction across all its comparisons
/// ([`stats::rank_all`]), and the cells' ★ after them.
fn decide(usecases: &mut [UseCase]) {
    let plans: Vec<&Plan> = usecases.iter().flat_map(|u| &u.rows).flat_map(|r| &r.plans).collect();
    let mut decided = stats::rank_all(&plans).into_iter();
    for row in usecases.iter_mut().flat_map(|u| &mut u.rows) {
        row.ranking = decided.next().expect("one ranking per plan");
        if let Some((_, second)) = &mut row.second {
            *second = decided.next().expect("one ranking per plan");
        }
        for (i, cell) in row.cells.iter_mut().enumerate() {
            if let Cell::Value { best, .. } = cell {
                *best = row.ranking.leads(i);
            }
        }
    }
}

/// Ratios to the configured value say nothing: the distance does.
fn is_target_label(label: &str) -> bool {
    TARGET_REFERENCE.strip_prefix(REFERENCE_PREFIX) == Some(label)
}

/// Why a library has no value for a use case: its first failed stage, else a capability that
/// rules the use case out.
fn absence(run: &Run, usecase: &str, lib: &str) -> Option<String> {
    let failed = run
        .failures
        .iter()
        .filter(|f| f.usecase == usecase && f.lib == lib)
        .map(|f| f.stage)
        .min();
    if let Some(stage) = failed {
        return Some(format!("{} failed", stage.as_str()));
    }
    run.capabilities
        .iter()
        .find(|c| c.usecase == usecase && c.lib == lib && !c.status.is_implemented())
        .map(|c| c.status.as_str().to_string())
}

/// One CDF per (metric, class) of the use case's histograms: every library and reference.
fn plan_distributions(
    usecase: &str,
    histograms: &[crate::hist::Histogram],
    run_libs: &[String],
) -> Vec<PlannedChart> {
    let mine: Vec<_> = histograms.iter().filter(|h| h.usecase == usecase).collect();
    let mut keys: Vec<(&str, Option<&str>, &str)> = Vec::new();
    for h in &mine {
        let k = (h.metric.as_str(), h.class.as_deref(), h.unit.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.iter()
        .map(|&(metric, class, unit)| {
            let mut members: Vec<_> = mine
                .iter()
                .filter(|h| h.metric == metric && h.class.as_deref() == class)
                .collect();
            members.sort_by_key(|h| catalogue::listed_order(LIBRARIES, &h.lib));
            let mut refs = 0;
            let lines = members
                .iter()
                .map(|h| {
                    let (rgb, dashed) = match h.lib.strip_prefix(REFERENCE_PREFIX) {
                        Some(_) => {
                            refs += 1;
                            (plot::reference_rgb(refs - 1), true)
                        }
                        None => {
                            let pos = run_libs.iter().position(|l| *l == h.lib).unwrap_or(0);
                            (plot::lib_color(&h.lib, pos), false)
                        }
                    };
                    let label = h.lib.strip_prefix(REFERENCE_PREFIX).unwrap_or(&h.lib);
                    (format!("{label} (n={})", h.total()), rgb, dashed, h.cdf())
                })
                .collect();
            let label = series_label(metric, class);
            PlannedChart {
                stem: file_stem(&format!("{usecase}-cdf-{label}")),
                chart: Figure::Cdf(plot::Cdf {
                    title: format!("{usecase}: {label}, distribution"),
                    x_label: format!("{metric} ({unit})"),
                    lines,
                }),
            }
        })
        .collect()
}

/// One chart per metric group (and unit, should a run mix units within a group).
fn plan_charts(
    usecase: &str,
    rows: &[MetricRow],
    libs: &[String],
    run_libs: &[String],
) -> Vec<PlannedChart> {
    let mut groups: Vec<((&str, &str), Vec<&MetricRow>)> = Vec::new();
    for row in rows {
        let key = (catalogue::group(&row.metric), row.unit.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    let mut stems = BTreeSet::new();
    groups
        .into_iter()
        .filter(|(_, members)| {
            members
                .iter()
                .any(|r| r.cells.iter().any(|c| matches!(c, Cell::Value { .. })))
        })
        .map(|((group, unit), members)| {
            let mut stem = file_stem(&format!("{usecase}-{group}"));
            if !stems.insert(stem.clone()) {
                stem = file_stem(&format!("{usecase}-{group}-{unit}"));
                stems.insert(stem.clone());
            }
            PlannedChart {
                stem,
                chart: Figure::Bars(chart(usecase, group, unit, &members, libs, run_libs)),
            }
        })
        .collect()
}

fn chart(
    usecase: &str,
    group: &str,
    unit: &str,
    members: &[&MetricRow],
    libs: &[String],
    run_libs: &[String],
) -> Chart {
    let single_metric = members.iter().all(|r| r.metric == members[0].metric);
    let categories = members
        .iter()
        .map(|r| match (single_metric, &r.class) {
            (true, Some(c)) => c.clone(),
            (true, None) => String::new(),
            (false, _) => r.label(),
        })
        .collect();
    // Only libraries with a bar here get a slot; colours follow the run-wide order.
    let slots: Vec<usize> = (0..libs.len())
        .filter(|&i| {
            members
                .iter()
                .any(|r| matches!(r.cells[i], Cell::Value { .. }))
        })
        .collect();
    let mut bars = Vec::new();
    let mut references = Vec::new();
    for (category, row) in members.iter().enumerate() {
        for (slot, &i) in slots.iter().enumerate() {
            if let Cell::Value {
                summary, values, ..
            } = &row.cells[i]
            {
                bars.push(plot::Bar {
                    category,
                    lib: slot,
                    summary: *summary,
                    values: values.clone(),
                });
            }
        }
        for (label, s) in &row.references {
            references.push(plot::Reference {
                category,
                label: label.clone(),
                value: s.median,
            });
        }
    }
    let title = if single_metric {
        members[0].metric.clone()
    } else {
        catalogue::group_title(group)
    };
    Chart {
        title: format!("{usecase}: {title}"),
        y_label: format!(
            "{} ({unit})",
            if single_metric {
                &members[0].metric
            } else {
                group
            }
        ),
        categories,
        libs: slots
            .iter()
            .map(|&i| {
                let lib = &libs[i];
                let position = run_libs.iter().position(|l| l == lib).unwrap_or(i);
                (lib.clone(), plot::lib_color(lib, position))
            })
            .collect(),
        bars,
        references,
    }
}

/// Safe in a file name and a URL: letters, digits, `-`, `_`.
pub fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn glossary(all: &BTreeMap<SeriesKey, Series>) -> Vec<GlossaryEntry> {
    let mut metrics: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, s) in all {
        metrics.entry(k.metric.as_str()).or_insert(s.unit.as_str());
    }
    let mut names: Vec<&str> = metrics.keys().copied().collect();
    names.sort_by_key(|m| catalogue::order(m));
    names
        .into_iter()
        .map(|m| GlossaryEntry {
            metric: m.into(),
            unit: metrics[m].into(),
            better: catalogue::better(m),
            description: catalogue::lookup(m).map_or("", |c| c.description).into(),
        })
        .collect()
}

/// The environment as label/value pairs, in reading order.
pub fn environment_facts(env: &Environment) -> Vec<(&'static str, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    vec![
        (
            "kernel",
            format!(
                "{} {}",
                opt(&env.kernel_release),
                env.kernel_version.clone().unwrap_or_default()
            )
            .trim()
            .into(),
        ),
        ("OS", opt(&env.os)),
        (
            "CPU",
            format!(
                "{} ({} cores, {})",
                opt(&env.cpu_model),
                env.cores,
                env.arch
            ),
        ),
        (
            "memory",
            env.memory_kib.map_or("unknown".into(), |k| {
                format!("{:.1} GiB", k as f64 / 1_048_576.0)
            }),
        ),
        ("git revision", opt(&env.git_revision)),
        ("recorded", env.timestamp.clone()),
        ("command", env.command_line.join(" ")),
    ]
}

/// `name version, name version` of a toolchain or crate map.
pub fn versions(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn capability<'a>(caps: &'a [Capability], usecase: &str, lib: &str) -> Option<&'a Capability> {
    caps.iter().find(|c| c.usecase == usecase && c.lib == lib)
}

/// Failures in report order: use case, library, stage.
pub fn sorted_failures(failures: &[Failure]) -> Vec<&Failure> {
    let mut v: Vec<&Failure> = failures.iter().collect();
    v.sort_by(|a, b| {
        (
            catalogue::listed_order(USECASES, &a.usecase),
            catalogue::listed_order(LIBRARIES, &a.lib),
            a.stage,
        )
            .cmp(&(
                catalogue::listed_order(USECASES, &b.usecase),
                catalogue::listed_order(LIBRARIES, &b.lib),
                b.stage,
            ))
    });
    v
}
