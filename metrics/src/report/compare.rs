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

/// Every ranking either run calls significant (one library or several lead, the others are
/// significantly worse) that the other run does not reproduce: the same metric and class
/// ranked with the same leaders. One line per disagreement, empty when all reproduce.
/// Rankings that are ties or not ranked in one run claim nothing and need no counterpart.
pub fn rankings_not_reproduced(dir_a: &Path, dir_b: &Path) -> Result<Vec<String>> {
    let weights = crate::weights::Weights::defaults();
    let (a, b) = (Run::load(dir_a)?, Run::load(dir_b)?);
    let (ra, rb) = (model::build(&a, &weights), model::build(&b, &weights));
    let leaders = |r: &model::Report| {
        let mut out = std::collections::BTreeMap::new();
        for u in &r.usecases {
            for row in &u.rows {
                let named = match &row.ranking {
                    crate::stats::Ranking::Ranked { leaders } => {
                        let mut l: Vec<String> = leaders.iter().map(|&i| u.libs[i].clone()).collect();
                        l.sort();
                        Some(l)
                    }
                    _ => None,
                };
                out.insert((u.name.clone(), row.label()), named);
            }
        }
        out
    };
    let (la, lb) = (leaders(&ra), leaders(&rb));
    let mut out = Vec::new();
    for ((first, this), (second, other)) in [(("A", &la), ("B", &lb)), (("B", &lb), ("A", &la))] {
        for (key, lead) in this {
            let Some(lead) = lead else { continue };
            let there = other.get(key).cloned().flatten();
            if there.as_ref() != Some(lead) {
                let said = there.map_or("no significant ranking".to_string(), |l| format!("{} lead", l.join(" = ")));
                let line = format!("{}: {}: {first} ranks {} first, {second}: {said}", key.0, key.1, lead.join(" = "));
                if !out.contains(&line) {
                    out.push(line);
                }
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
