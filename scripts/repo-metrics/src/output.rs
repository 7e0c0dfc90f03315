//! The report files: a CSV table (one row per library), the JSON of the [`Report`], and an SVG
//! plot with one bar chart per metric and one of the scores.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Metric, Report, CSV_FILE, JSON_FILE, SVG_FILE};

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
    plot(report, &svg).with_context(|| format!("plotting {}", svg.display()))
}

/// Rounded to `decimals`, shortest form ("2", "0.5", "3.3333"); empty when absent.
fn number(v: Option<f64>, decimals: i32) -> String {
    let scale = 10f64.powi(decimals);
    v.map(|v| ((v * scale).round() / scale).to_string()).unwrap_or_default()
}

fn write_csv(report: &Report, path: &Path) -> Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    let mut header = vec!["library".to_string(), "repo".into(), "since".into(), "until".into()];
    header.extend(Metric::ALL.iter().map(|m| m.name().to_string()));
    header.extend(Metric::ALL.iter().map(|m| format!("tertile_{}", m.name())));
    header.push("score".into());
    w.write_record(&header)?;
    for lib in &report.libraries {
        let mut row = vec![
            lib.name.clone(),
            lib.repo.display().to_string(),
            report.window.since.to_string(),
            report.window.until.to_string(),
        ];
        row.extend(Metric::ALL.iter().map(|&m| number(lib.value(m), 4)));
        row.extend(Metric::ALL.iter().map(|m| lib.tertiles.get(m).map(u8::to_string).unwrap_or_default()));
        row.push(number(lib.score, 4));
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
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
    /// Per library: value and tertile.
    bars: Vec<(Option<f64>, Option<u8>)>,
    /// Fixed y range top, for values with a known scale.
    top: Option<f64>,
}

fn panels(report: &Report) -> Vec<Panel> {
    let mut out: Vec<Panel> = Metric::ALL
        .iter()
        .map(|&m| Panel {
            title: format!("{} ({} is better)", m.name(), if m.higher_is_better() { "higher" } else { "lower" }),
            bars: report.libraries.iter().map(|l| (l.value(m), l.tertiles.get(&m).copied())).collect(),
            top: (m == Metric::IssuesShareClosed).then_some(1.0),
        })
        .filter(|p| p.bars.iter().any(|(v, _)| v.is_some()))
        .collect();
    out.push(Panel {
        title: "score: mean tertile".into(),
        bars: report.libraries.iter().map(|l| (l.score, None)).collect(),
        top: Some(3.0),
    });
    out
}

fn plot(report: &Report, path: &Path) -> Result<()> {
    register_font()?;
    let names: Vec<&str> = report.libraries.iter().map(|l| l.name.as_str()).collect();
    let panels = panels(report);
    let cols = panels.len().min(4);
    let rows = panels.len().div_ceil(cols);
    let (width, height) = (330 * cols as u32, 300 * rows as u32 + 40);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let title =
        format!("Repository metrics, {} to {} (bar labels: value, tertile)", report.window.since, report.window.until);
    let root = root.titled(&title, (FAMILY, 20)).map_err(|e| anyhow!("{e}"))?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(&panels) {
        draw_panel(area, panel, &names).map_err(|e| anyhow!("panel {}: {e}", panel.title))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    names: &[&str],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let max = panel.bars.iter().filter_map(|(v, _)| *v).fold(0.0, f64::max);
    let top = panel.top.unwrap_or(if max > 0.0 { max } else { 1.0 }) * 1.15;
    // Library i is centred on x = i. A continuous axis, because plotters' discrete and
    // segmented axes collapse when there is a single library.
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
    let present = || panel.bars.iter().enumerate().filter_map(|(i, (v, t))| v.map(|v| (i as f64, i, v, *t)));
    chart.draw_series(
        present().map(|(x, i, v, _)| Rectangle::new([(x - 0.35, 0.0), (x + 0.35, v)], Palette99::pick(i).filled())),
    )?;
    let label = (FAMILY, 11).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(present().map(|(x, _, v, t)| {
        // Two decimals: six labels side by side must fit a panel.
        let text = match t {
            Some(t) => format!("{}, T{t}", number(Some(v), 2)),
            None => number(Some(v), 2),
        };
        Text::new(text, (x, v), label.clone())
    }))?;
    Ok(())
}
