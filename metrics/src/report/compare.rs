//! Which metrics moved between two runs, beyond their noise.

use std::fmt::Write;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::model::{self, series, series_label, SeriesKey};
use crate::catalogue::{self, Better, LIBRARIES, USECASES};
use crate::fmt;
use crate::record::Run;
use crate::stats::{median, moved, Change, Direction};

pub const COMPARE_MD: &str = "compare.md";
pub const COMPARE_HTML: &str = "compare.html";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moved {
    pub usecase: String,
    pub lib: String,
    pub metric: String,
    pub class: Option<String>,
    pub unit: String,
    pub change: Change,
    /// Whether the move is for the better, by the catalogue's direction.
    pub improved: bool,
}

/// `packetfilter/aya test_run_ns · ipv4: 63.2 -> 79.0 ns (+25.0%, worse)`
impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} {}: {} -> {} {} ({}, {})",
            self.usecase,
            self.lib,
            series_label(&self.metric, self.class.as_deref()),
            fmt::value(self.change.before),
            fmt::value(self.change.after),
            self.unit,
            fmt::change(self.change.relative),
            if self.improved { "better" } else { "worse" }
        )
    }
}

/// Compares run `dir_a` (before) with run `dir_b` (after), writes `compare.md` and
/// `compare.html` into `dir_b`, and returns the series whose medians moved, in report order.
/// Series recorded in only one of the runs are listed in the files but are not moves.
pub fn compare(dir_a: &Path, dir_b: &Path) -> Result<Vec<Moved>> {
    compare_into(dir_a, dir_b, dir_b)
}

/// [`compare`], writing the files into `out` (created if needed).
pub fn compare_into(dir_a: &Path, dir_b: &Path, out_dir: &Path) -> Result<Vec<Moved>> {
    let (a, b) = (Run::load(dir_a)?, Run::load(dir_b)?);
    let (sa, sb) = (series(&a.rows), series(&b.rows));
    let mut out: Vec<Moved> = sa
        .iter()
        .filter_map(|(key, before)| {
            let after = sb.get(key)?;
            let change = moved(&before.values, &after.values)?;
            let improved = match catalogue::better(&key.metric) {
                Better::Lower => change.direction == Direction::Down,
                Better::Higher => change.direction == Direction::Up,
                // Closer to the configured value of the later run.
                Better::Target => sb
                    .get(&SeriesKey {
                        lib: catalogue::TARGET_REFERENCE.into(),
                        ..key.clone()
                    })
                    .is_some_and(|t| {
                        let t = median(&t.values);
                        (change.after - t).abs() < (change.before - t).abs()
                    }),
            };
            Some(Moved {
                usecase: key.usecase.clone(),
                lib: key.lib.clone(),
                metric: key.metric.clone(),
                class: key.class.clone(),
                unit: after.unit.clone(),
                change,
                improved,
            })
        })
        .collect();
    out.sort_by(|x, y| sort_key(x).cmp(&sort_key(y)));

    let compared = sa.keys().filter(|k| sb.contains_key(k)).count();
    let only_a: Vec<&SeriesKey> = sa.keys().filter(|k| !sb.contains_key(k)).collect();
    let only_b: Vec<&SeriesKey> = sb.keys().filter(|k| !sa.contains_key(k)).collect();
    let text = markdown(&a, &b, &out, compared, &only_a, &only_b);
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(COMPARE_MD);
    fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    let path = out_dir.join(COMPARE_HTML);
    fs::write(&path, super::html::page("bpf-eval comparison", &super::html::markdown_to_html(&text)))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(out)
}

/// How two runs of the same machine agree on what either calls significant. A significant
/// ranking claims, for each leader `x` and each library `y` outside the leaders, "`x` is better
/// than `y`". The other run reproduces the claim when it orders `x` before `y` (by median cost,
/// the ranking's own order); it need not reach significance again: with 5 repetitions a real
/// but small difference passes the test in one run and not in the next (the test's power, not
/// a change), and those are listed apart as `weaker`.
#[derive(Debug, Default, PartialEq)]
pub struct Reproduction {
    /// Claims the other run orders the opposite way, one line per metric and run.
    pub contradicted: Vec<String>,
    /// Claims the other run orders alike without calling the difference significant, or cannot
    /// check (a library without a value there).
    pub weaker: Vec<String>,
}

/// One metric row of a report: its columns, leaders (when significant) and cost order.
struct Claims {
    libs: Vec<String>,
    leaders: Option<Vec<String>>,
    to_best: Vec<Option<f64>>,
}

impl Claims {
    fn cost(&self, lib: &str) -> Option<f64> {
        self.libs.iter().position(|l| l == lib).and_then(|i| self.to_best[i])
    }

    fn leads(&self, lib: &str) -> bool {
        self.leaders.as_ref().is_some_and(|l| l.iter().any(|x| x == lib))
    }

    /// Pairs (better, worse) this ranking calls significant.
    fn pairs(&self) -> Vec<(&str, &str)> {
        let Some(leaders) = &self.leaders else { return Vec::new() };
        let behind = self.libs.iter().zip(&self.to_best).filter(|(l, c)| c.is_some() && !leaders.contains(l));
        behind.flat_map(|(y, _)| leaders.iter().map(move |x| (x.as_str(), y.as_str()))).collect()
    }
}

/// Every significant claim of either run checked against the other (see [`Reproduction`]).
pub fn rankings_reproduced(dir_a: &Path, dir_b: &Path) -> Result<Reproduction> {
    let weights = crate::weights::Weights::defaults();
    let (a, b) = (Run::load(dir_a)?, Run::load(dir_b)?);
    let (ra, rb) = (model::build(&a, &weights), model::build(&b, &weights));
    let claims = |r: &model::Report| {
        let mut out = std::collections::BTreeMap::new();
        for u in &r.usecases {
            for row in &u.rows {
                let leaders = match &row.ranking {
                    crate::stats::Ranking::Ranked { leaders } => Some(leaders.iter().map(|&i| u.libs[i].clone()).collect()),
                    _ => None,
                };
                out.insert((u.name.clone(), row.label()), Claims { libs: u.libs.clone(), leaders, to_best: row.to_best.clone() });
            }
        }
        out
    };
    let (ca, cb) = (claims(&ra), claims(&rb));
    let mut out = Reproduction::default();
    for ((first, this), (second, other)) in [(("A", &ca), ("B", &cb)), (("B", &cb), ("A", &ca))] {
        for ((usecase, label), claims) in this {
            let there = other.get(&(usecase.clone(), label.clone()));
            let (mut reversed, mut unsure) = (Vec::new(), Vec::new());
            for (x, y) in claims.pairs() {
                let (cx, cy) = (there.and_then(|t| t.cost(x)), there.and_then(|t| t.cost(y)));
                match (cx, cy) {
                    (Some(cx), Some(cy)) if cx > cy => reversed.push(format!("{y} {cy:.2}x before {x} {cx:.2}x")),
                    (Some(_), Some(_)) if there.is_some_and(|t| t.leads(x) && !t.leads(y)) => {}
                    (Some(_), Some(_)) => unsure.push(format!("{x} before {y}")),
                    _ => unsure.push(format!("{x} before {y}: no value in {second}")),
                }
            }
            let claim = format!("{usecase}: {label}: {first} ranks {} first", claims.leaders.iter().flatten().cloned().collect::<Vec<_>>().join(" = "));
            if !reversed.is_empty() {
                out.contradicted.push(format!("{claim}; {second} orders {} (times the best cost)", reversed.join(", ")));
            }
            if !unsure.is_empty() {
                out.weaker.push(format!("{claim}; {second} has {}, not significant", unsure.join(", ")));
            }
        }
    }
    Ok(out)
}

fn sort_key(m: &Moved) -> impl Ord + '_ {
    (
        catalogue::listed_order(USECASES, &m.usecase),
        catalogue::listed_order(LIBRARIES, &m.lib),
        catalogue::order(&m.metric),
        m.class.as_deref(),
    )
}

fn describe(run: &Run) -> String {
    let mut parts = vec![format!("`{}`", run.dir.display())];
    if let Some(meta) = &run.meta {
        if !meta.created.is_empty() {
            parts.push(format!("recorded {}", meta.created));
        }
        if let Some(g) = &meta.git_revision {
            parts.push(format!("git `{g}`"));
        }
        if meta.is_partial() {
            parts.push(format!("**partial**: {}", meta.partial.join("; ")));
        }
    }
    parts.join(", ")
}

fn key_label(k: &SeriesKey) -> String {
    format!(
        "{} / {} / {}",
        k.usecase,
        k.lib,
        series_label(&k.metric, k.class.as_deref())
    )
}

fn markdown(
    a: &Run,
    b: &Run,
    moves: &[Moved],
    compared: usize,
    only_a: &[&SeriesKey],
    only_b: &[&SeriesKey],
) -> String {
    let mut h = String::new();
    // Writing into a String cannot fail.
    let _ = write_markdown(&mut h, a, b, moves, compared, only_a, only_b);
    h
}

fn write_markdown(
    h: &mut String,
    a: &Run,
    b: &Run,
    moves: &[Moved],
    compared: usize,
    only_a: &[&SeriesKey],
    only_b: &[&SeriesKey],
) -> std::fmt::Result {
    writeln!(
        h,
        "# Comparison\n\n- A (before): {}\n- B (after): {}\n",
        describe(a),
        describe(b)
    )?;

    // What moved first: it is what the comparison is for.
    writeln!(h, "## Moved: {} of {compared} series\n", moves.len())?;
    writeln!(
        h,
        "A series moved when its median changed by more than the larger of both runs' p5–p95 \
             half-spreads and 2% of the median.\n"
    )?;
    if !moves.is_empty() {
        writeln!(h, "| use case | library | metric | unit | A median | B median | change | |\n|---|---|---|---|---|---|---|---|")?;
        for m in moves {
            writeln!(
                h,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                m.usecase,
                m.lib,
                series_label(&m.metric, m.class.as_deref()),
                m.unit,
                fmt::value(m.change.before),
                fmt::value(m.change.after),
                fmt::change(m.change.relative),
                if m.improved { "better" } else { "**worse**" }
            )?;
        }
        writeln!(h)?;
    }
    if let (Some(ea), Some(eb)) = (&a.environment, &b.environment) {
        // Timestamps and command lines always differ; what matters is the machine.
        let differing: Vec<_> = model::environment_facts(ea)
            .into_iter()
            .zip(model::environment_facts(eb))
            .filter(|((label, va), (_, vb))| va != vb && !matches!(*label, "recorded" | "command"))
            .collect();
        if !differing.is_empty() {
            writeln!(h, "## Environment differences\n\nMeasurements across these differences may not be comparable.\n")?;
            writeln!(h, "| | A | B |\n|---|---|---|")?;
            for ((label, va), (_, vb)) in differing {
                writeln!(h, "| **{label}** | {va} | {vb} |")?;
            }
            writeln!(h)?;
        }
    }

    for (title, keys) in [("Only in A", only_a), ("Only in B", only_b)] {
        if !keys.is_empty() {
            writeln!(h, "## {title}\n")?;
            for k in keys {
                writeln!(h, "- {}", key_label(k))?;
            }
            writeln!(h)?;
        }
    }
    Ok(())
}
