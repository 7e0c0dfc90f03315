//! The report files: a CSV table (one row per method and library), the JSON of the [`Report`],
//! an SVG plot with one bar chart per metric and one of the scores (a bar per method), and an
//! HTML page with the methods' tables side by side, the differences and the plot inline; and
//! the one-line explanations of where the methods' values differ.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{LibraryReport, Method, Metric, Report, Window, CSV_FILE, HTML_FILE, JSON_FILE, SVG_FILE};

/// The plot's text is laid out with this font (Debian package fonts-dejavu-core).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FAMILY: &str = "sans-serif";

pub fn write(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating output directory {}", dir.display()))?;
    let csv = dir.join(CSV_FILE);
    write_csv(report, &csv).with_context(|| format!("writing {}", csv.display()))?;
    let json = dir.join(JSON_FILE);
    let text = serde_json::to_string_pretty(report)? + "\n";
    std::fs::write(&json, text).with_context(|| format!("writing {}", json.display()))?;
    let svg = dir.join(SVG_FILE);
    plot(report, &svg).with_context(|| format!("plotting {}", svg.display()))?;
    let html = dir.join(HTML_FILE);
    let page = html_page(report, &std::fs::read_to_string(&svg)?);
    std::fs::write(&html, page).with_context(|| format!("writing {}", html.display()))
}

/// Rounded to `decimals`, shortest form ("2", "0.5", "3.3333"); empty when absent.
fn number(v: Option<f64>, decimals: i32) -> String {
    let scale = 10f64.powi(decimals);
    v.map(|v| ((v * scale).round() / scale).to_string()).unwrap_or_default()
}

fn write_csv(report: &Report, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    let mut header: Vec<String> =
        ["method", "library", "repo", "head", "window", "merges", "bot_commits", "bots", "files_over", "tickets"]
            .map(String::from)
            .into();
    header.extend(Metric::ALL.iter().map(|m| m.name().to_string()));
    header.extend(Metric::ALL.iter().map(|m| format!("tertile_{}", m.name())));
    header.extend(["score".into(), "score_over".into()]);
    w.write_record(&header)?;
    for lib in &report.libraries {
        let c = &lib.commits;
        let mut row = vec![
            lib.method.name().to_string(),
            lib.name.clone(),
            lib.repo.display().to_string(),
            lib.head.clone(),
            lib.window.clone(),
            c.merges.to_string(),
            c.bot_commits.to_string(),
            c.bots.join(" "),
            c.files_over.clone(),
            lib.tickets.clone(),
        ];
        row.extend(Metric::ALL.iter().map(|&m| number(lib.value(m), 4)));
        row.extend(Metric::ALL.iter().map(|m| lib.tertiles.get(m).map(u8::to_string).unwrap_or_default()));
        row.push(number(lib.score, 4));
        row.push(lib.score_over.iter().map(|m| m.name()).collect::<Vec<_>>().join(" "));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// With both methods: one line per library and metric whose values differ, saying why.
pub fn differences(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for t in report.of(Method::Thesis) {
        let Some(c) = report.of(Method::Corrected).find(|c| c.name == t.name) else { continue };
        for m in Metric::ALL {
            let (a, b) = (t.value(m), c.value(m));
            if a != b {
                let show = |v: Option<f64>| if v.is_some() { number(v, 4) } else { "none".into() };
                let why = why(m, t, c, &report.window);
                out.push(format!("{} {}: thesis {} vs corrected {}: {why}", t.name, m.name(), show(a), show(b)));
            }
        }
        if t.tertiles != c.tertiles {
            out.push(format!(
                "{} tertiles: the thesis cuts at statistics.quantiles(n=3) of its values; corrected ranks by midrank \
                 percentile",
                t.name
            ));
        }
    }
    out
}

fn why(metric: Metric, t: &LibraryReport, c: &LibraryReport, w: &Window) -> String {
    let tickets = "the thesis lists tickets (pull requests included) updated since the start and created by the \
                   cutoff, closed meaning closed when exported; corrected counts issues of the window";
    match metric {
        Metric::Commits => {
            // Commits of any kind in the corrected window beyond the thesis' ones: the end day's.
            let all = (c.commits.commits + c.commits.merges + c.commits.bot_commits) as i64;
            format!(
                "the thesis counts merges ({}) and ends at {} 00:00:00 UTC; corrected leaves out merges ({}) and bot \
                 commits ({}) and includes the rest of {} ({:+} commits of any kind)",
                t.commits.merges,
                w.until,
                c.commits.merges,
                c.commits.bot_commits,
                w.until,
                all - t.commits.commits as i64
            )
        }
        Metric::Contributors => format!(
            "the thesis counts distinct raw committer e-mails (noreply@github.com included); corrected counts \
             author e-mails through .mailmap, lower-cased, without bots ({})",
            c.commits.bots.len()
        ),
        Metric::FilesPerCommit => format!(
            "the thesis averages over {}, merges as 0 files, rounded to a whole number; corrected averages {}, \
             unrounded",
            t.commits.files_over, c.commits.files_over
        ),
        Metric::IssuesOpened | Metric::IssuesClosed => format!("{tickets} (created, resp. closed, in it)"),
        Metric::IssuesClosedPercent => format!("{tickets}; the thesis floors to a whole percent"),
        Metric::IssuesMeanAgeDays => format!(
            "{tickets}; the thesis averages whole days over closed tickets only, truncated; corrected averages \
             exact days over the issues created, open ones up to the window's end"
        ),
    }
}

/// `&`, `<`, `>` and `"` as HTML entities.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A page that opens from disk without network: per method a table (metrics down, libraries
/// across; value and tertile), side by side; the differences, the scoring and the notes, one
/// line each; the plot inline.
fn html_page(report: &Report, svg: &str) -> String {
    let title = format!("Repository metrics, {} to {}", report.window.since, report.window.until);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>\
         body{{font-family:sans-serif;margin:1em}} \
         .methods{{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}} section{{width:min-content}} \
         table{{border-collapse:collapse;font-size:90%}} th,td{{border:1px solid #bbb;padding:1px 4px;text-align:right;\
         white-space:nowrap}} th:first-child,td:first-child{{text-align:left}} \
         li{{margin:2px 0;overflow-wrap:anywhere}} svg{{max-width:100%;height:auto}}</style></head><body>\n\
         <h1>{t}</h1>\n<p>{tool}; methods: {methods}{preset}</p>\n<div class=\"methods\">\n",
        t = esc(&title),
        tool = esc(&report.tool),
        methods = report.methods.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
        preset = report.preset.map_or(String::new(), |_| "; preset: thesis".into()),
    );
    for &method in &report.methods {
        let libs: Vec<&LibraryReport> = report.of(method).collect();
        let window = libs.first().map_or(String::new(), |l| l.window.clone());
        let _ = write!(
            h,
            "<section><h2>{} method</h2>\n<p>window {}</p>\n<table>\n<tr><th>metric</th>",
            method.name(),
            esc(&window)
        );
        for l in &libs {
            let _ = write!(h, "<th>{}</th>", esc(&l.name));
        }
        let row = |h: &mut String, name: &str, cell: &dyn Fn(&LibraryReport) -> String| {
            let _ = write!(h, "</tr>\n<tr><td>{name}</td>");
            for l in &libs {
                let _ = write!(h, "<td>{}</td>", cell(l));
            }
        };
        row(&mut h, "HEAD", &|l| {
            format!("<code title=\"{0}\">{1}</code>", esc(&l.head), esc(&l.head[..8.min(l.head.len())]))
        });
        row(&mut h, "merges", &|l| l.commits.merges.to_string());
        for m in Metric::ALL {
            row(&mut h, m.name(), &|l| {
                let value = l.value(m).map_or("–".into(), |v| number(Some(v), 4));
                l.tertiles.get(&m).map_or(value.clone(), |t| format!("{value} <small>T{t}</small>"))
            });
        }
        row(&mut h, "<b>score</b>", &|l| l.score.map_or("–".into(), |s| format!("<b>{}</b>", number(Some(s), 2))));
        h.push_str("</tr>\n</table>\n<ul>\n");
        for l in &libs {
            let c = &l.commits;
            let bots =
                if c.bots.is_empty() { String::new() } else { format!("; bots left out: {}", c.bots.join(", ")) };
            let _ = writeln!(
                h,
                "<li>{}: files per commit over {}: {} files; tickets: {}; score over {}{}</li>",
                esc(&l.name),
                esc(&c.files_over),
                c.files_changed,
                esc(&l.tickets),
                l.score_over.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
                esc(&bots)
            );
        }
        let _ =
            writeln!(h, "</ul>\n<p>Scoring: {}</p></section>", esc(report.scoring.get(&method).copied().unwrap_or("")));
    }
    h.push_str("</div>\n");
    for (heading, lines) in [("Where the methods differ, and why", &report.differences), ("Notes", &report.notes)] {
        if !lines.is_empty() {
            let _ = writeln!(h, "<h2>{heading}</h2>\n<ul>");
            for line in lines {
                let _ = writeln!(h, "<li>{}</li>", esc(line));
            }
            h.push_str("</ul>\n");
        }
    }
    // The plot as plotters wrote it, minus an XML declaration (not allowed inside HTML).
    let svg = svg.trim_start();
    let svg = if svg.starts_with("<?xml") { svg.split_once("?>").map_or(svg, |(_, rest)| rest) } else { svg };
    let _ = write!(h, "<h2>Plot</h2>\n{}\n</body></html>\n", svg.trim());
    h
}

/// plotters lays text out with ab_glyph, which knows only registered fonts.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT)
                .map_err(|e| format!("reading the plot font {FONT} (Debian package fonts-dejavu-core): {e}"))?;
            plotters::style::register_font(FAMILY, FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
                .map_err(|_| format!("{FONT} is not a usable font"))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

struct Panel {
    title: String,
    bars: Vec<Bar>,
    /// Fixed y range top, for values with a known scale.
    top: Option<f64>,
}

struct Bar {
    /// Centre; library i is centred on x = i, its methods' bars side by side.
    x: f64,
    color: usize,
    value: Option<f64>,
    tertile: Option<u8>,
}

/// Bar width in x units, per library and method.
fn bar_width(methods: usize) -> f64 {
    0.7 / methods as f64
}

/// A bar's value and tertile, per library.
type BarOf<'a> = dyn Fn(&LibraryReport) -> (Option<f64>, Option<u8>) + 'a;

fn panels(report: &Report) -> Vec<Panel> {
    let k = report.methods.len();
    let bars = |value: &BarOf| -> Vec<Bar> {
        let mut out = Vec::new();
        for (j, &method) in report.methods.iter().enumerate() {
            for (i, lib) in report.of(method).enumerate() {
                let x = i as f64 + (j as f64 - (k as f64 - 1.0) / 2.0) * bar_width(k);
                let (value, tertile) = value(lib);
                out.push(Bar { x, color: if k > 1 { j } else { i }, value, tertile });
            }
        }
        out
    };
    let mut out: Vec<Panel> = Metric::ALL
        .iter()
        .map(|&m| Panel {
            title: format!("{} ({} is better)", m.name(), if m.higher_is_better() { "higher" } else { "lower" }),
            bars: bars(&|l| (l.value(m), l.tertiles.get(&m).copied())),
            top: (m == Metric::IssuesClosedPercent).then_some(100.0),
        })
        .filter(|p| p.bars.iter().any(|b| b.value.is_some()))
        .collect();
    out.push(Panel { title: "score: mean tertile".into(), bars: bars(&|l| (l.score, None)), top: Some(3.0) });
    out
}

fn plot(report: &Report, path: &Path) -> Result<()> {
    register_font()?;
    let names: Vec<&str> = report.of(report.methods[0]).map(|l| l.name.as_str()).collect();
    let panels = panels(report);
    let cols = panels.len().min(4);
    let rows = panels.len().div_ceil(cols);
    let k = report.methods.len();
    let (width, height) = (330 * k as u32 * cols as u32, 300 * rows as u32 + 40);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let methods = match report.methods[..] {
        [one] => format!("{} method, window {}", one.name(), report.window.describe(one)),
        _ => "bars: thesis method (left), corrected (right)".into(),
    };
    let title = format!(
        "Repository metrics, {} to {}; {methods}; bar labels: value, tertile",
        report.window.since, report.window.until
    );
    let root = root.titled(&title, (FAMILY, 20)).map_err(|e| anyhow!("{e}"))?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(&panels) {
        draw_panel(area, panel, &names, bar_width(k)).map_err(|e| anyhow!("panel {}: {e}", panel.title))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    names: &[&str],
    width: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let max = panel.bars.iter().filter_map(|b| b.value).fold(0.0, f64::max);
    let top = panel.top.unwrap_or(if max > 0.0 { max } else { 1.0 }) * 1.15;
    // A continuous axis, because plotters' discrete and segmented axes collapse when there is
    // a single library.
    let n = names.len();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 14))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(44)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // At most n labels over a range n wide: plotters puts them on the integers.
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-9 && i >= 0.0 { names.get(i as usize).map(|s| s.to_string()) } else { None }
                .unwrap_or_default()
        })
        .label_style((FAMILY, 11))
        .draw()?;
    let present = || panel.bars.iter().filter_map(|b| b.value.map(|v| (b, v)));
    chart.draw_series(present().map(|(b, v)| {
        Rectangle::new([(b.x - width / 2.0, 0.0), (b.x + width / 2.0, v)], Palette99::pick(b.color).filled())
    }))?;
    let label = (FAMILY, 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(present().map(|(b, v)| {
        // Two decimals: six labels side by side must fit a panel.
        let text = match b.tertile {
            Some(t) => format!("{}, T{t}", number(Some(v), 2)),
            None => number(Some(v), 2),
        };
        Text::new(text, (b.x, v), label.clone())
    }))?;
    Ok(())
}
