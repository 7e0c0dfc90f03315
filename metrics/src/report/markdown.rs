//! `report.md`: the same content as the HTML for reading on a code host; charts are linked PNGs.

use std::fmt::Write;

use super::model::{self, Cell, Report, UseCase};
use super::overview;
use crate::fmt;
use crate::record::Run;

/// Table cells cannot hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table_header(h: &mut String, columns: &[String]) -> std::fmt::Result {
    writeln!(h, "| {} |", columns.join(" | "))?;
    writeln!(h, "|{}", "---|".repeat(columns.len()))
}

pub fn render(report: &Report, run: &Run) -> String {
    let mut h = String::new();
    let _ = write_doc(&mut h, report, run);
    h
}

fn write_doc(h: &mut String, report: &Report, run: &Run) -> std::fmt::Result {
    if report.partial.is_empty() {
        writeln!(h, "# bpf-eval report\n")?;
    } else {
        writeln!(h, "# bpf-eval report (partial)\n\n> **{}**\n>", model::PARTIAL_HEADER)?;
        for reason in &report.partial {
            writeln!(h, "> - {reason}")?;
        }
        writeln!(h)?;
    }
    let mut meta = Vec::new();
    if let Some(c) = &report.created {
        meta.push(format!("Recorded {c}"));
    }
    if let Some(g) = &report.git_revision {
        meta.push(format!("git `{g}`"));
    }
    meta.push("data: [results.csv](results.csv), [index.html](index.html)".into());
    writeln!(h, "{}\n", meta.join(" · "))?;
    write_summary(h, report)?;

    writeln!(h, "## Environment\n")?;
    match &run.environment {
        None => writeln!(h, "No environment.json in this run.\n")?,
        Some(env) => {
            table_header(h, &["".into(), "".into()])?;
            for (label, value) in model::environment_facts(env) {
                writeln!(h, "| **{label}** | {} |", cell(&value))?;
            }
            if !env.implementations.is_empty() {
                writeln!(h, "\n### Implementations\n")?;
                table_header(h, &["library".into(), "toolchains".into(), "crates".into()])?;
                for (lib, imp) in &env.implementations {
                    writeln!(
                        h,
                        "| {} | {} | {} |",
                        cell(lib),
                        cell(&model::versions(&imp.toolchains)),
                        cell(&model::versions(&imp.crates))
                    )?;
                }
            }
            writeln!(h)?;
            if !run.provenance.is_empty() {
                writeln!(h, "### Values this run did not measure itself\n")?;
                table_header(h, &["use case".into(), "library".into(), "metrics".into(), "source".into()])?;
                for p in &run.provenance {
                    writeln!(h, "| {} | {} | {} | {} |", cell(&p.usecase), cell(&p.lib), cell(&p.metrics.join(", ")), cell(&p.source))?;
                }
                writeln!(h)?;
            }
        }
    }

    writeln!(h, "## Capabilities\n")?;
    if run.capabilities.is_empty() {
        writeln!(h, "No capabilities.json in this run.\n")?;
    } else {
        let mut columns = vec!["use case".to_string()];
        columns.extend(report.matrix_libs.iter().cloned());
        table_header(h, &columns)?;
        for u in &report.matrix_usecases {
            let cells: Vec<String> = report
                .matrix_libs
                .iter()
                .map(|lib| match model::capability(&run.capabilities, u, lib) {
                    Some(c) if c.note.is_empty() => format!("**{}**", c.status.as_str()),
                    Some(c) => format!(
                        "**{}**: {}",
                        c.status.as_str(),
                        cell(overview::first_line(&c.note))
                    ),
                    None => "not recorded".into(),
                })
                .collect();
            writeln!(h, "| {} | {} |", cell(u), cells.join(" | "))?;
        }
        // The full notes, folded: the table keeps one line each.
        let long: Vec<_> = run
            .capabilities
            .iter()
            .filter(|c| overview::first_line(&c.note) != c.note.trim())
            .collect();
        if !long.is_empty() {
            writeln!(h, "\n<details><summary>Full capability notes</summary>\n")?;
            for c in long {
                writeln!(h, "- **{} / {}**: {}", c.usecase, c.lib, c.note.replace('\n', " "))?;
            }
            writeln!(h, "\n</details>")?;
        }
        writeln!(h)?;
    }

    for u in &report.usecases {
        write_usecase(h, u)?;
    }

    writeln!(h, "## Failures\n")?;
    if run.failures.is_empty() {
        writeln!(h, "None.\n")?;
    }
    for f in model::sorted_failures(&run.failures) {
        // Errors are often multi-line build output: a code block keeps them readable.
        writeln!(
            h,
            "- **{}** / **{}** at **{}**:\n\n  ```text",
            f.usecase,
            f.lib,
            f.stage.as_str()
        )?;
        for line in f.error.lines() {
            writeln!(h, "  {}", line.replace("```", "'''"))?;
        }
        writeln!(h, "  ```\n")?;
    }

    writeln!(h, "## Metrics\n")?;
    table_header(
        h,
        &[
            "metric".into(),
            "unit".into(),
            "better".into(),
            "description".into(),
        ],
    )?;
    for g in &report.glossary {
        writeln!(
            h,
            "| {} | {} | {} | {} |",
            cell(&g.metric),
            cell(&g.unit),
            g.better.as_str(),
            cell(&g.description)
        )?;
    }
    Ok(())
}

fn write_usecase(h: &mut String, u: &UseCase) -> std::fmt::Result {
    writeln!(h, "## {}\n", u.name)?;
    if u.rows.is_empty() {
        return writeln!(h, "No measurements for this use case; see the failures.\n");
    }
    writeln!(
        h,
        "Each cell: median (range). {} ⚠ CV above 5%; ratios are to the reference medians.\n",
        model::ranking_legend()
    )?;
    let mut columns = vec!["metric".to_string(), "unit".to_string()];
    columns.extend(u.libs.iter().cloned());
    if !u.references.is_empty() {
        columns.push("references".into());
    }
    columns.push("ranking".into());
    table_header(h, &columns)?;
    for row in &u.rows {
        let mut cells = vec![
            // An anchor for the summary's links (GitHub keeps `<a id>` working).
            format!(
                "<a id=\"{}\"></a>{} {}",
                row.anchor,
                cell(&row.label()),
                row.better.arrow()
            ),
            cell(&row.unit),
        ];
        for c in &row.cells {
            cells.push(match c {
                Cell::Value {
                    summary,
                    best,
                    ratios,
                    ..
                } => {
                    let median = fmt::value(summary.median);
                    let median = if *best {
                        format!("**{median}** ★")
                    } else {
                        median
                    };
                    let mut parts = vec![match Cell::range_text(summary) {
                        Some(range) => format!("{median} ({range})"),
                        None => median,
                    }];
                    parts.extend(Cell::cv_text(summary).map(|cv| format!("⚠ {cv}")));
                    parts.extend(Cell::ratio_texts(ratios));
                    cell(&parts.join("<br>"))
                }
                Cell::Absent(reason) => format!("*{}*", reason.as_deref().unwrap_or("—")),
            });
        }
        if !u.references.is_empty() {
            let refs: Vec<String> = row
                .references
                .iter()
                .map(|(label, s)| format!("{label}: {}", fmt::value(s.median)))
                .collect();
            cells.push(cell(&refs.join("<br>")));
        }
        cells.push(cell(&row.ranking_notes(&u.libs).join("<br>")));
        writeln!(h, "| {} |", cells.join(" | "))?;
    }
    writeln!(h)?;
    for c in u.charts.iter() {
        image(h, c)?;
    }
    writeln!(h, "### Distributions ({})\n", u.name)?;
    if let Some(note) = &u.distributions_note {
        writeln!(h, "{note}\n")?;
    }
    for c in &u.distributions {
        image(h, c)?;
    }
    Ok(())
}

fn image(h: &mut String, c: &model::PlannedChart) -> std::fmt::Result {
    writeln!(h, "![{}](plots/{}.png)\n", c.chart.title(), c.stem)
}

fn write_summary(h: &mut String, report: &Report) -> std::fmt::Result {
    let o = &report.overview;
    writeln!(h, "## Summary: which library leads where\n")?;
    if !report.partial.is_empty() {
        writeln!(h, "**⚠ {}**\n", model::PARTIAL_SUMMARY)?;
    }
    writeln!(h, "{}\n", model::ranking_legend())?;
    if let Some(c) = &o.across {
        image(h, c)?;
    }
    for u in &o.usecases {
        writeln!(h, "### {}\n", u.usecase)?;
        for line in &u.lines {
            let links: Vec<String> = line
                .rows
                .iter()
                .map(|(label, anchor, outcome)| format!("[{label}](#{anchor}) {outcome}"))
                .collect();
            writeln!(h, "- **{}**: {} — {}", line.dimension, line.verdict, links.join(" · "))?;
        }
        for gap in &u.gaps {
            writeln!(h, "- ⚠ {gap}")?;
        }
        writeln!(h)?;
        if let Some(c) = &u.heatmap {
            image(h, c)?;
        }
    }
    writeln!(h, "### Findings\n")?;
    if o.findings.is_empty() {
        writeln!(h, "No findings recorded (findings.json) or curated (metrics/findings.yaml) for the differences of this run.\n")?;
    }
    for f in &o.findings {
        let evidence: Vec<String> = f.evidence.iter().map(|e| format!("[{e}]({e})")).collect();
        writeln!(
            h,
            "- **{} / {}** ({}): {} — evidence: {}",
            f.usecase,
            f.metric,
            f.libs.join(", "),
            f.cause,
            evidence.join(", ")
        )?;
    }
    if !o.unexplained.is_empty() {
        writeln!(h, "\nDifferences above 1.5× that no finding explains yet:\n")?;
        for u in &o.unexplained {
            writeln!(h, "- {u}")?;
        }
    }
    let a = &o.aid;
    writeln!(
        h,
        "\n### Decision aid\n\nAs the thesis' OSSPal scoring: per ranked row, tertiles (3 best, 1 \
         worst), averaged per dimension, then a weighted mean. Weights: {} (`harness report DIR \
         --weights FILE`).\n",
        a.weights_source
    )?;
    let mut columns = vec!["library".to_string()];
    columns.extend(a.dimensions.iter().map(|(k, _, w)| format!("{k} (×{})", fmt::value(*w))));
    columns.push("score".into());
    table_header(h, &columns)?;
    let num = |v: &Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}"));
    for (i, lib) in a.libs.iter().enumerate() {
        let cells: Vec<String> = a.scores[i].iter().map(num).collect();
        writeln!(h, "| {lib} | {} | **{}** |", cells.join(" | "), num(&a.totals[i]))?;
    }
    if let Some(note) = &a.repository_note {
        writeln!(h, "\n{note}")?;
    }
    writeln!(h)
}
