//! `index.html`: one self-contained file (inline CSS, inline SVG charts) that opens from disk.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::model::{self, Cell, MetricRow, PlannedChart, Report, UseCase};
use super::overview::{self, Overview};
use crate::catalogue;
use crate::fmt;
use crate::plot;
use crate::record::{Run, Status};

const CSS: &str = r#"
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --best: #dafbe1; --warn: #9a6700; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg);
       max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); font-size: 22px; }
h3 { margin: 24px 0 8px; font-size: 17px; }
.meta, .note { color: var(--muted); margin: 4px 0 12px; }
nav a { margin-right: 14px; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 6px 10px; vertical-align: top; text-align: left; }
thead th { background: #f6f8fa; }
table.summary td.num { text-align: right; min-width: 130px; }
table.summary tbody th { font-weight: 600; white-space: nowrap; }
.dir { color: var(--muted); font-weight: normal; margin-left: 4px; }
.unit { color: var(--muted); white-space: nowrap; }
td.best { background: var(--best); }
.median { font-weight: 600; font-size: 16px; }
.star { color: #1a7f37; margin-left: 4px; }
.range, .ratio, .absent { display: block; color: var(--muted); font-size: 13px; }
.absent { font-style: italic; }
.cv { display: block; color: var(--warn); font-size: 13px; font-weight: 600; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; }
.status.native { background: #dafbe1; color: #116329; }
.status.with_patch { background: #fff8c5; color: #7d4e00; }
.status.hybrid { background: #ddf4ff; color: #0550ae; }
.status.impossible { background: #ffebe9; color: #a40e26; }
.status.missing { background: #eaeef2; color: #57606a; }
.status.not_buildable { background: #eaeef2; color: #a40e26; }
.capnote { display: block; color: var(--muted); font-size: 13px; max-width: 320px; }
details.capnote summary { cursor: pointer; }
#summary ul { padding-left: 20px; }
#summary li { margin: 3px 0; }
#summary li.gap { color: #a40e26; }
.verdict { font-weight: 600; }
.rowlinks { color: var(--muted); font-size: 13px; }
td.rank { color: var(--muted); font-size: 13px; max-width: 260px; }
table.aid td { text-align: right; }
.charts { display: flex; flex-direction: column; gap: 18px; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 13px; }
pre { margin: 0; max-height: 16em; overflow: auto; white-space: pre-wrap; font-size: 13px; }
.partial { border: 2px solid #a40e26; border-radius: 6px; padding: 8px 14px; color: #a40e26; background: #fff5f5; }
.partial ul { margin: 4px 0; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; }
"#;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `svgs` maps a chart's stem to its SVG text.
pub fn render(report: &Report, run: &Run, svgs: &BTreeMap<String, String>) -> String {
    let mut h = String::new();
    let _ = write_page(&mut h, report, run, svgs);
    h
}

fn write_page(
    h: &mut String,
    report: &Report,
    run: &Run,
    svgs: &BTreeMap<String, String>,
) -> std::fmt::Result {
    if report.partial.is_empty() {
        h.push_str(&head("bpf-eval report"));
        writeln!(h, "<header>\n<h1>bpf-eval report</h1>")?;
    } else {
        h.push_str(&head("bpf-eval report (partial)"));
        writeln!(h, "<header>\n<h1>bpf-eval report (partial)</h1>")?;
        writeln!(h, "<div class=\"partial\" id=\"partial\"><b>{}</b>\n<ul>", esc(model::PARTIAL_HEADER))?;
        for reason in &report.partial {
            writeln!(h, "<li>{}</li>", esc(reason))?;
        }
        writeln!(h, "</ul></div>")?;
    }
    let mut meta = Vec::new();
    if let Some(c) = &report.created {
        meta.push(format!("recorded {}", esc(c)));
    }
    if let Some(g) = &report.git_revision {
        meta.push(format!("git <code>{}</code>", esc(g)));
    }
    meta.push(
        "data: <a href=\"results.csv\">results.csv</a>, <a href=\"report.md\">report.md</a>".into(),
    );
    writeln!(h, "<p class=\"meta\">{}</p>", meta.join(" · "))?;
    write!(
        h,
        "<nav><a href=\"#summary\">Summary</a><a href=\"#decision\">Decision aid</a>\
         <a href=\"#environment\">Environment</a><a href=\"#capabilities\">Capabilities</a>"
    )?;
    for u in &report.usecases {
        write!(h, "<a href=\"#uc-{0}\">{0}</a>", esc(&u.name))?;
    }
    writeln!(
        h,
        "<a href=\"#failures\">Failures ({})</a><a href=\"#metrics\">Metrics</a></nav>\n</header>",
        run.failures.len()
    )?;

    write_summary(h, report, svgs)?;
    write_environment(h, run)?;
    write_capabilities(h, report, run)?;
    for u in &report.usecases {
        write_usecase(h, report, u, svgs)?;
    }
    write_failures(h, run)?;
    write_glossary(h, report)?;
    writeln!(h, "<footer>Generated by the bpf-eval <code>metrics</code> crate from <code>results.csv</code>.</footer>\n</body>\n</html>")
}

/// The page up to and including `<body>`: one style for the report and the comparison.
fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(title)
    )
}

/// A whole page around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!("{}{body}</body>\n</html>\n", head(title))
}

/// The Markdown the comparison writes, as HTML: headings, paragraphs, lists, tables, `**bold**`
/// and `code`. A converter for that subset, so compare.md and compare.html come from one text.
pub fn markdown_to_html(md: &str) -> String {
    let inline = |t: &str| {
        let mut out = String::new();
        for (i, part) in esc(t).split('`').enumerate() {
            if i % 2 == 1 {
                let _ = write!(out, "<code>{part}</code>");
            } else {
                for (j, p) in part.split("**").enumerate() {
                    out.push_str(&if j % 2 == 1 { format!("<b>{p}</b>") } else { p.to_string() });
                }
            }
        }
        out
    };
    let mut h = String::new();
    let mut lines = md.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(t) = line.strip_prefix("# ") {
            let _ = writeln!(h, "<h1>{}</h1>", inline(t));
        } else if let Some(t) = line.strip_prefix("## ") {
            let _ = writeln!(h, "<h2>{}</h2>", inline(t));
        } else if line.starts_with('|') {
            let cells = |l: &str| -> Vec<String> {
                l.trim().trim_matches('|').split(" | ").map(|c| inline(c.trim())).collect()
            };
            let _ = write!(h, "<table class=\"summary\">\n<thead><tr>");
            for c in cells(line) {
                let _ = write!(h, "<th>{c}</th>");
            }
            let _ = writeln!(h, "</tr></thead>\n<tbody>");
            lines.next_if(|l| l.starts_with("|---"));
            while let Some(row) = lines.next_if(|l| l.starts_with('|')) {
                let tds: Vec<String> = cells(row).iter().map(|c| format!("<td>{c}</td>")).collect();
                let _ = writeln!(h, "<tr>{}</tr>", tds.concat());
            }
            let _ = writeln!(h, "</tbody>\n</table>");
        } else if let Some(t) = line.strip_prefix("- ") {
            let _ = write!(h, "<ul>\n<li>{}</li>\n", inline(t));
            while let Some(item) = lines.next_if(|l| l.starts_with("- ")) {
                let _ = writeln!(h, "<li>{}</li>", inline(&item[2..]));
            }
            let _ = writeln!(h, "</ul>");
        } else if !line.trim().is_empty() {
            let _ = writeln!(h, "<p>{}</p>", inline(line));
        }
    }
    h
}

fn lib_header(report: &Report, lib: &str) -> String {
    let position = report
        .matrix_libs
        .iter()
        .position(|l| l == lib)
        .unwrap_or(0);
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
        plot::hex(plot::lib_color(lib, position)),
        esc(lib)
    )
}

fn write_environment(h: &mut String, run: &Run) -> std::fmt::Result {
    writeln!(h, "<section id=\"environment\">\n<h2>Environment</h2>")?;
    let Some(env) = &run.environment else {
        return writeln!(
            h,
            "<p class=\"note\">No environment.json in this run.</p>\n</section>"
        );
    };
    writeln!(h, "<table class=\"facts\">")?;
    for (label, value) in model::environment_facts(env) {
        writeln!(h, "<tr><th>{label}</th><td>{}</td></tr>", esc(&value))?;
    }
    writeln!(h, "</table>")?;
    if !env.implementations.is_empty() {
        writeln!(h, "<h3>Implementations</h3>\n<table>\n<thead><tr><th>library</th><th>toolchains</th><th>crates</th></tr></thead>\n<tbody>")?;
        for (lib, imp) in &env.implementations {
            writeln!(
                h,
                "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
                esc(lib),
                esc(&model::versions(&imp.toolchains)),
                esc(&model::versions(&imp.crates))
            )?;
        }
        writeln!(h, "</tbody>\n</table>")?;
    }
    if !run.provenance.is_empty() {
        writeln!(h, "<h3 id=\"provenance\">Values this run did not measure itself</h3>\n<table>\n<thead><tr><th>use case</th><th>library</th><th>metrics</th><th>source</th></tr></thead>\n<tbody>")?;
        for p in &run.provenance {
            writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.usecase),
                esc(&p.lib),
                esc(&p.metrics.join(", ")),
                esc(&p.source)
            )?;
        }
        writeln!(h, "</tbody>\n</table>")?;
    }
    writeln!(h, "</section>")
}

fn write_capabilities(h: &mut String, report: &Report, run: &Run) -> std::fmt::Result {
    writeln!(h, "<section id=\"capabilities\">\n<h2>Capabilities</h2>")?;
    if run.capabilities.is_empty() {
        return writeln!(
            h,
            "<p class=\"note\">No capabilities.json in this run.</p>\n</section>"
        );
    }
    write!(h, "<table class=\"matrix\">\n<thead><tr><th>use case</th>")?;
    for lib in &report.matrix_libs {
        write!(h, "<th>{}</th>", lib_header(report, lib))?;
    }
    writeln!(h, "</tr></thead>\n<tbody>")?;
    for u in &report.matrix_usecases {
        write!(h, "<tr><th>{}</th>", esc(u))?;
        for lib in &report.matrix_libs {
            match model::capability(&run.capabilities, u, lib) {
                // One line; the full note behind a <details>.
                Some(c) => {
                    let line = overview::first_line(&c.note);
                    write!(h, "<td><span class=\"status {0}\">{0}</span>", c.status.as_str())?;
                    if line == c.note.trim() {
                        write!(h, "<span class=\"capnote\">{}</span></td>", esc(line))?;
                    } else {
                        write!(
                            h,
                            "<details class=\"capnote\"><summary>{}</summary>{}</details></td>",
                            esc(line),
                            esc(&c.note)
                        )?;
                    }
                }
                None => write!(h, "<td><span class=\"absent\">not recorded</span></td>")?,
            }
        }
        writeln!(h, "</tr>")?;
    }
    writeln!(
        h,
        "</tbody>\n</table>\n<p class=\"note\">{}</p>\n</section>",
        status_legend()
    )
}

fn status_legend() -> String {
    [
        (Status::Native, "with the library as released"),
        (Status::WithPatch, "needs a patch to the library"),
        (Status::Hybrid, "partly outside the library"),
        (Status::Impossible, "the library cannot express it"),
        (Status::Missing, "not implemented"),
        (Status::NotBuildable, "the library cannot be built here"),
    ]
    .iter()
    .map(|(s, text)| format!("<span class=\"status {0}\">{0}</span> {text}", s.as_str()))
    .collect::<Vec<_>>()
    .join(" &nbsp; ")
}

fn write_usecase(
    h: &mut String,
    report: &Report,
    u: &UseCase,
    svgs: &BTreeMap<String, String>,
) -> std::fmt::Result {
    writeln!(h, "<section id=\"uc-{0}\">\n<h2>{0}</h2>", esc(&u.name))?;
    if u.rows.is_empty() {
        return writeln!(h, "<p class=\"note\">No measurements for this use case; see the failures.</p>\n</section>");
    }
    writeln!(
        h,
        "<p class=\"note\">Each cell: median, its range below. {} <span class=\"cv\" \
         style=\"display:inline\">CV</span> flags a coefficient of variation above 5%; ratios are \
         to the reference medians.</p>",
        esc(&model::ranking_legend())
    )?;
    write!(
        h,
        "<table class=\"summary\">\n<thead><tr><th>metric</th><th>unit</th>"
    )?;
    for lib in &u.libs {
        write!(h, "<th>{}</th>", lib_header(report, lib))?;
    }
    if !u.references.is_empty() {
        write!(h, "<th>references</th>")?;
    }
    writeln!(h, "<th>ranking</th></tr></thead>\n<tbody>")?;
    for row in &u.rows {
        write_row(h, u, row)?;
    }
    writeln!(h, "</tbody>\n</table>")?;

    writeln!(h, "<div class=\"charts\">")?;
    for c in &u.charts {
        write_figure(h, c, svgs)?;
    }
    writeln!(h, "</div>\n<h3 id=\"dist-{}\">Distributions</h3>", esc(&u.name))?;
    if let Some(note) = &u.distributions_note {
        writeln!(h, "<p class=\"note\">{}</p>", esc(note))?;
    }
    writeln!(h, "<div class=\"charts\">")?;
    for c in &u.distributions {
        write_figure(h, c, svgs)?;
    }
    writeln!(h, "</div>\n</section>")
}

/// A chart inline as SVG, with its PNG and SVG files linked beside it.
fn write_figure(
    h: &mut String,
    c: &PlannedChart,
    svgs: &BTreeMap<String, String>,
) -> std::fmt::Result {
    match svgs.get(&c.stem) {
        Some(svg) => writeln!(
            h,
            "<figure id=\"plot-{0}\">{1}<figcaption>as <a href=\"plots/{0}.png\">PNG</a> · \
             <a href=\"plots/{0}.svg\">SVG</a></figcaption></figure>",
            c.stem,
            strip_prolog(svg),
        ),
        None => Ok(()),
    }
}

fn write_summary(
    h: &mut String,
    report: &Report,
    svgs: &BTreeMap<String, String>,
) -> std::fmt::Result {
    let o = &report.overview;
    writeln!(h, "<section id=\"summary\">\n<h2>Summary: which library leads where</h2>")?;
    if !report.partial.is_empty() {
        writeln!(h, "<p class=\"partial\"><a href=\"#partial\">{}</a></p>", esc(model::PARTIAL_SUMMARY))?;
    }
    writeln!(h, "<p class=\"note\">{}</p>", esc(&model::ranking_legend()))?;
    if let Some(c) = &o.across {
        write_figure(h, c, svgs)?;
    }
    for u in &o.usecases {
        writeln!(h, "<h3>{0} <a class=\"rowlinks\" href=\"#uc-{0}\">table</a></h3>\n<ul>", esc(&u.usecase))?;
        for line in &u.lines {
            let links: Vec<String> = line
                .rows
                .iter()
                .map(|(label, anchor, outcome)| {
                    format!("<a href=\"#{anchor}\">{}</a> {}", esc(label), esc(outcome))
                })
                .collect();
            writeln!(
                h,
                "<li><b>{}</b>: <span class=\"verdict\">{}</span> <span class=\"rowlinks\">— {}</span></li>",
                esc(line.dimension),
                esc(&line.verdict),
                links.join(" · ")
            )?;
        }
        for gap in &u.gaps {
            writeln!(h, "<li class=\"gap\">{}</li>", esc(gap))?;
        }
        writeln!(h, "</ul>")?;
        if let Some(c) = &u.heatmap {
            write_figure(h, c, svgs)?;
        }
    }
    writeln!(h, "<h3 id=\"findings\">Findings</h3>")?;
    if o.findings.is_empty() {
        writeln!(h, "<p class=\"note\">No findings recorded (findings.json) or curated (metrics/findings.yaml) for the differences of this run.</p>")?;
    } else {
        writeln!(h, "<ul>")?;
        for f in &o.findings {
            let evidence: Vec<String> = f
                .evidence
                .iter()
                .map(|e| format!("<a href=\"{0}\">{0}</a>", esc(e)))
                .collect();
            writeln!(
                h,
                "<li><b>{} / {}</b> ({}): {} <span class=\"rowlinks\">evidence: {}</span></li>",
                esc(&f.usecase),
                esc(&f.metric),
                esc(&f.libs.join(", ")),
                esc(&f.cause),
                evidence.join(", ")
            )?;
        }
        writeln!(h, "</ul>")?;
    }
    if !o.unexplained.is_empty() {
        writeln!(h, "<p class=\"note\">Differences above 1.5× that no finding explains yet:</p><ul class=\"unexplained\">")?;
        for u in &o.unexplained {
            writeln!(h, "<li>{}</li>", esc(u))?;
        }
        writeln!(h, "</ul>")?;
    }
    write_aid(h, o)?;
    writeln!(h, "</section>")
}

fn write_aid(h: &mut String, o: &Overview) -> std::fmt::Result {
    let a = &o.aid;
    writeln!(
        h,
        "<h3 id=\"decision\">Decision aid</h3>\n<p class=\"note\">As the thesis' OSSPal scoring: per \
         ranked row, tertiles (3 best, 1 worst; leaders share the best, ties the middle), averaged \
         per dimension, then a weighted mean. Weights: {}; change them with <code>harness report \
         DIR --weights FILE</code> (YAML, dimension: weight).</p>",
        esc(&a.weights_source)
    )?;
    write!(h, "<table class=\"aid\">\n<thead><tr><th>library</th>")?;
    for (key, title, w) in &a.dimensions {
        write!(h, "<th title=\"{}\">{}<br><span class=\"dir\">weight {}</span></th>", esc(title), esc(key), fmt::value(*w))?;
    }
    writeln!(h, "<th>score</th></tr></thead>\n<tbody>")?;
    for (i, lib) in a.libs.iter().enumerate() {
        write!(h, "<tr><th>{}</th>", esc(lib))?;
        for v in &a.scores[i] {
            write!(h, "<td>{}</td>", v.map_or("—".into(), |v| format!("{v:.2}")))?;
        }
        writeln!(h, "<td><b>{}</b></td></tr>", a.totals[i].map_or("—".into(), |v| format!("{v:.2}")))?;
    }
    writeln!(h, "</tbody>\n</table>")?;
    if let Some(note) = &a.repository_note {
        writeln!(h, "<p class=\"note\">{}</p>", esc(note))?;
    }
    Ok(())
}

fn write_row(h: &mut String, u: &UseCase, row: &MetricRow) -> std::fmt::Result {
    let description = catalogue::lookup(&row.metric).map_or("", |m| m.description);
    write!(
        h,
        "<tr id=\"{}\"><th title=\"{}\">{}<span class=\"dir\">{}</span></th><td class=\"unit\">{}</td>",
        row.anchor,
        esc(description),
        esc(&row.label()),
        row.better.arrow(),
        esc(&row.unit)
    )?;
    for cell in &row.cells {
        match cell {
            Cell::Value {
                summary,
                best,
                ratios,
                ..
            } => {
                write!(
                    h,
                    "<td class=\"num{}\" data-median=\"{}\" title=\"n={}, mean={}, CV={}\"><span class=\"median\">{}</span>{}",
                    if *best { " best" } else { "" },
                    summary.median,
                    summary.n,
                    fmt::value(summary.mean),
                    fmt::percent(summary.cv),
                    fmt::value(summary.median),
                    if *best { "<span class=\"star\">★</span>" } else { "" },
                )?;
                if let Some(range) = Cell::range_text(summary) {
                    write!(h, "<span class=\"range\">{range}</span>")?;
                }
                if let Some(cv) = Cell::cv_text(summary) {
                    write!(h, "<span class=\"cv\">⚠ {cv}</span>")?;
                }
                for r in Cell::ratio_texts(ratios) {
                    write!(h, "<span class=\"ratio\">{}</span>", esc(&r))?;
                }
                write!(h, "</td>")?;
            }
            Cell::Absent(reason) => write!(
                h,
                "<td class=\"num\"><span class=\"absent\">{}</span></td>",
                esc(reason.as_deref().unwrap_or("—"))
            )?,
        }
    }
    if !u.references.is_empty() {
        let refs: Vec<String> = row
            .references
            .iter()
            .map(|(label, s)| format!("{}: {}", esc(label), fmt::value(s.median)))
            .collect();
        write!(
            h,
            "<td><span class=\"ratio\">{}</span></td>",
            refs.join("<br>")
        )?;
    }
    let notes: Vec<String> = row.ranking_notes(&u.libs).iter().map(|n| esc(n)).collect();
    writeln!(h, "<td class=\"rank\">{}</td></tr>", notes.join("<br>"))
}

/// An SVG file may start with an XML declaration, which is not allowed inside HTML.
fn strip_prolog(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

fn write_failures(h: &mut String, run: &Run) -> std::fmt::Result {
    writeln!(h, "<section id=\"failures\">\n<h2>Failures</h2>")?;
    if run.failures.is_empty() {
        return writeln!(h, "<p class=\"note\">None.</p>\n</section>");
    }
    writeln!(h, "<table>\n<thead><tr><th>use case</th><th>library</th><th>stage</th><th>error</th></tr></thead>\n<tbody>")?;
    for f in model::sorted_failures(&run.failures) {
        writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            esc(&f.usecase),
            esc(&f.lib),
            f.stage.as_str(),
            esc(&f.error)
        )?;
    }
    writeln!(h, "</tbody>\n</table>\n</section>")
}

fn write_glossary(h: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(h, "<section id=\"metrics\">\n<h2>Metrics</h2>")?;
    writeln!(h, "<table>\n<thead><tr><th>metric</th><th>unit</th><th>better</th><th>description</th></tr></thead>\n<tbody>")?;
    for g in &report.glossary {
        writeln!(
            h,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&g.metric),
            esc(&g.unit),
            g.better.as_str(),
            esc(&g.description)
        )?;
    }
    writeln!(h, "</tbody>\n</table>\n</section>")
}
