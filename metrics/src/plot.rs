//! Bar charts of one use case and one metric group, written as SVG (inlined into the HTML report)
//! and PNG (linked from the Markdown report).
//!
//! One bar per library and category (a category is a metric or a metric's class); the bar sits
//! at the median, the whisker spans p5–p95, and reference measurements are dashed horizontal
//! lines over their category. The legend sits right of the plot so it never hides a bar.
//!
//! PNG text is rasterised with ab_glyph from a TTF read at run time (DejaVu Sans, Debian package
//! [`FONT_PACKAGE`]); plotters' default font path would need fontconfig and freetype.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::fmt;
use crate::stats::Summary;

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT_BOLD_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
pub const FONT_PACKAGE: &str = "fonts-dejavu-core";
/// Overrides [`FONT_PATH`] on machines that keep DejaVu elsewhere.
pub const FONT_ENV: &str = "BPF_EVAL_FONT";

/// Registered as the generic family, so the SVG text names a font every browser has.
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 440);
const LEGEND_WIDTH: u32 = 210;

pub type Rgb = (u8, u8, u8);

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const PALETTE: [Rgb; 6] = [
    (230, 159, 0),
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
];
const REFERENCE_COLORS: [Rgb; 3] = [(60, 60, 60), (204, 121, 167), (86, 180, 233)];

/// A library's colour: fixed for the libraries under study (by their place in
/// [`crate::catalogue::LIBRARIES`]) so every chart and every run agree; other names take the
/// rest of the palette by their position in the run.
pub fn lib_color(lib: &str, position: usize) -> Rgb {
    let known = crate::catalogue::LIBRARIES;
    match known.iter().position(|k| *k == lib) {
        Some(i) if i < PALETTE.len() => PALETTE[i],
        _ => {
            let fixed = known.len().min(PALETTE.len() - 1);
            PALETTE[fixed + position % (PALETTE.len() - fixed)]
        }
    }
}

pub fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[derive(Debug, Clone)]
pub struct Bar {
    /// Index into [`Chart::categories`].
    pub category: usize,
    /// Index into [`Chart::libs`].
    pub lib: usize,
    pub summary: Summary,
    /// The repetitions, drawn as dots over the bar so the distribution shows, not only its median.
    pub values: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub category: usize,
    pub label: String,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// With the unit, e.g. `time per packet (ns)`.
    pub y_label: String,
    /// Groups along the x axis. A chart with one category labels its bars by library instead.
    pub categories: Vec<String>,
    /// Bar slots within each category, with their colours.
    pub libs: Vec<(String, Rgb)>,
    pub bars: Vec<Bar>,
    pub references: Vec<Reference>,
}

/// Reads and registers the font once per process; fails naming the package to install.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = std::env::var(FONT_ENV).unwrap_or_else(|_| FONT_PATH.into());
            let regular = read_font(&path)?;
            register(FontStyle::Normal, regular)
                .map_err(|()| format!("{path} is not a usable TTF"))?;
            // Bold titles are a nicety: the same package ships the file, the regular face stands in.
            if let Ok(bold) = fs::read(FONT_BOLD_PATH) {
                let _ = register(FontStyle::Bold, bold);
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn read_font(path: &str) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| {
        format!("cannot read font {path} ({e}): install the Debian package {FONT_PACKAGE}")
    })
}

fn register(style: FontStyle, bytes: Vec<u8>) -> Result<(), ()> {
    // plotters keeps fonts for the life of the process and wants 'static bytes; this runs once.
    register_font(FAMILY, style, Box::leak(bytes.into_boxed_slice())).map_err(|_| ())
}

/// One cell of a [`Heatmap`]: the factor to the best library and how the ranking marks it.
#[derive(Debug, Clone)]
pub struct HeatCell {
    pub ratio: f64,
    /// Not ranked: drawn grey, whatever the ratio.
    pub ranked: bool,
    /// `★` leads, `=` tie, or nothing.
    pub mark: &'static str,
}

/// Rows (metrics or dimensions) × columns (libraries), coloured by ratio to the best.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub cells: Vec<Vec<Option<HeatCell>>>,
}

/// Cumulative distributions, one line per library or reference (references dashed).
#[derive(Debug, Clone)]
pub struct Cdf {
    pub title: String,
    pub x_label: String,
    /// (label, colour, dashed, points (x, share ≤ x) ascending).
    pub lines: Vec<(String, Rgb, bool, Vec<(f64, f64)>)>,
}

#[derive(Debug, Clone)]
pub enum Figure {
    Bars(Chart),
    Heatmap(Heatmap),
    Cdf(Cdf),
}

impl Figure {
    pub fn title(&self) -> &str {
        match self {
            Figure::Bars(c) => &c.title,
            Figure::Heatmap(h) => &h.title,
            Figure::Cdf(c) => &c.title,
        }
    }

    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Heatmap(h) => (
                (330 + 150 * h.cols.len() as u32).max(640),
                110 + 30 * h.rows.len() as u32,
            ),
            _ => SIZE,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        match self {
            Figure::Bars(c) => draw(root, c),
            Figure::Heatmap(h) => draw_heatmap(root, h),
            Figure::Cdf(c) => draw_cdf(root, c),
        }
    }
}

/// Writes `<stem>.svg` and `<stem>.png`, returning their paths.
pub fn render(figure: &Figure, stem: &Path) -> Result<(PathBuf, PathBuf)> {
    ensure_font()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let size = figure.size();
    figure.draw(SVGBackend::new(&svg, size).into_drawing_area())?;
    figure.draw(BitMapBackend::new(&png, size).into_drawing_area())?;
    Ok((svg, png))
}

/// Green at the best, yellow at 1.5×, red from 3× on (log scale); light, so text stays legible.
fn heat_color(cell: &HeatCell) -> RGBColor {
    if !cell.ranked {
        return RGBColor(234, 238, 242);
    }
    let t = (cell.ratio.max(1.0).ln() / 3f64.ln()).clamp(0.0, 1.0);
    let stops = [(199.0, 233.0, 192.0), (255.0, 237.0, 160.0), (244.0, 165.0, 130.0)];
    let (a, b, f) = if t < 0.37 {
        (stops[0], stops[1], t / 0.37)
    } else {
        (stops[1], stops[2], (t - 0.37) / 0.63)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * f) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_heatmap<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, h: &Heatmap) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let title = TextStyle::from((FAMILY, 20, FontStyle::Bold).into_font());
    root.draw(&Text::new(h.title.as_str(), (12, 10), title))?;
    let (label_w, cell_w, cell_h, top) = (310, 150, 30, 44);
    let centred = TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let left = TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (j, col) in h.cols.iter().enumerate() {
        let x = label_w + j as i32 * cell_w + cell_w / 2;
        root.draw(&Text::new(col.as_str(), (x, top + cell_h / 2), centred.clone()))?;
    }
    for (i, row) in h.rows.iter().enumerate() {
        let y = top + (i as i32 + 1) * cell_h;
        // Long labels are cut: the table beside the picture has them in full.
        let label: String = if row.chars().count() > 38 {
            row.chars().take(37).chain(['…']).collect()
        } else {
            row.clone()
        };
        root.draw(&Text::new(label, (12, y + cell_h / 2), left.clone()))?;
        for (j, cell) in h.cells[i].iter().enumerate() {
            let x = label_w + j as i32 * cell_w;
            let (fill, text) = match cell {
                Some(c) => (
                    heat_color(c),
                    format!("{} {}", c.mark, if c.ratio.is_finite() { fmt::ratio(c.ratio) } else { "∞".into() })
                        .trim()
                        .to_string(),
                ),
                None => (WHITE, "—".to_string()),
            };
            root.draw(&Rectangle::new([(x + 1, y + 1), (x + cell_w - 1, y + cell_h - 1)], fill.filled()))?;
            root.draw(&Text::new(text, (x + cell_w / 2, y + cell_h / 2), centred.clone()))?;
        }
    }
    let y = top + (h.rows.len() as i32 + 1) * cell_h + 18;
    root.draw(&Text::new(
        "★ leads (significant) · = tie · grey: not ranked · green 1× → yellow 1.5× → red ≥3×",
        (12, y),
        left,
    ))?;
    root.present()?;
    Ok(())
}

fn draw_cdf<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Cdf) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(&c.title, (FAMILY, 22, FontStyle::Bold).into_font())?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let points = c.lines.iter().flat_map(|l| &l.3);
    let x_max = points.map(|p| p.0).filter(|x| x.is_finite()).fold(0.0, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.05 } else { 1.0 };
    let mut cc = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
    let x_fmt = |x: &f64| fmt::value(*x);
    cc.configure_mesh()
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(220, 220, 220))
        .x_label_formatter(&x_fmt)
        .x_desc(c.x_label.as_str())
        .y_desc("share of values ≤ x")
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 17))
        .draw()?;
    for (_, rgb, dashed, pts) in &c.lines {
        // A step function: the share holds until the next bucket's bound.
        let mut path = vec![(0.0, 0.0)];
        for &(x, f) in pts {
            path.push((x, path.last().map_or(0.0, |p| p.1)));
            path.push((x, f));
        }
        let style = color(*rgb).stroke_width(if *dashed { 2 } else { 3 });
        if *dashed {
            cc.draw_series([DashedPathElement::new(path, 8, 5, style)])?;
        } else {
            cc.draw_series([PathElement::new(path, style)])?;
        }
    }
    let font = TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, rgb, dashed, _)) in c.lines.iter().enumerate() {
        let y = 24 + 28 * i as i32;
        let style = color(*rgb).stroke_width(3);
        if *dashed {
            legend_area.draw(&DashedPathElement::new(vec![(8, y), (26, y)], 6, 3, style))?;
        } else {
            legend_area.draw(&PathElement::new(vec![(8, y), (26, y)], style))?;
        }
        legend_area.draw(&Text::new(label.as_str(), (32, y), font.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// The colour of reference number `i` of a chart.
pub fn reference_rgb(i: usize) -> Rgb {
    REFERENCE_COLORS[i % REFERENCE_COLORS.len()]
}

fn color(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Horizontal layout of the bars: category `i` is centred on x = i.
struct Layout {
    slots: usize,
}

impl Layout {
    const GROUP_WIDTH: f64 = 0.8;

    fn slot_width(&self) -> f64 {
        Self::GROUP_WIDTH / self.slots as f64
    }

    fn bar_center(&self, category: usize, lib: usize) -> f64 {
        category as f64 - Self::GROUP_WIDTH / 2.0 + (lib as f64 + 0.5) * self.slot_width()
    }

    fn category_span(&self, category: usize) -> (f64, f64) {
        let c = category as f64;
        (
            c - Self::GROUP_WIDTH / 2.0 - 0.05,
            c + Self::GROUP_WIDTH / 2.0 + 0.05,
        )
    }
}

/// The x axis: linear, with ticks only at bar or category centres, labelled by name.
struct CategoryAxis {
    linear: RangedCoordf64,
    ticks: Vec<(f64, String)>,
}

impl Ranged for CategoryAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.iter().map(|t| t.0).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

impl ValueFormatter<f64> for CategoryAxis {
    fn format_ext(&self, value: &f64) -> String {
        let tick = self.ticks.iter().find(|t| (t.0 - value).abs() < 1e-9);
        tick.map(|t| t.1.clone()).unwrap_or_default()
    }
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(&chart.title, (FAMILY, 22, FontStyle::Bold).into_font())?;
    let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);

    let layout = Layout {
        slots: chart.libs.len().max(1),
    };
    let n = chart.categories.len().max(1) as f64;
    // Ticks: with one category, one per bar named by library; else one per category.
    let ticks: Vec<(f64, String)> = if chart.categories.len() <= 1 {
        chart
            .libs
            .iter()
            .enumerate()
            .map(|(i, (lib, _))| (layout.bar_center(0, i), lib.clone()))
            .collect()
    } else {
        chart
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (i as f64, c.clone()))
            .collect()
    };
    let top = chart
        .bars
        .iter()
        .flat_map(|b| [b.summary.range().1, b.summary.median])
        .chain(chart.references.iter().map(|r| r.value))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let y_max = if top > 0.0 { top * 1.12 } else { 1.0 };

    // Room for the widest tick label (about 10 px a character) and the rotated axis title.
    let y_label_width = 36 + 10 * fmt::value(y_max).len() as u32;
    let mut cc = ChartBuilder::on(&plot_area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(
            CategoryAxis {
                linear: (-0.5..n - 0.5).into(),
                ticks,
            },
            0.0..y_max,
        )?;
    let y_label = |y: &f64| fmt::value(*y);
    cc.configure_mesh()
        .disable_x_mesh()
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(220, 220, 220))
        .y_label_formatter(&y_label)
        .y_desc(chart.y_label.as_str())
        .label_style((FAMILY, 16))
        .axis_desc_style((FAMILY, 17))
        .draw()?;

    let half = layout.slot_width() * 0.4;
    for bar in &chart.bars {
        let c = color(chart.libs[bar.lib].1);
        let x = layout.bar_center(bar.category, bar.lib);
        let s = bar.summary;
        cc.draw_series([Rectangle::new(
            [(x - half, 0.0), (x + half, s.median)],
            c.filled(),
        )])?;
        let (lo, hi) = s.range();
        if lo == hi {
            continue; // A single shot has no spread to show.
        }
        // Each repetition, spread sideways by its rank so equal values stay visible.
        let dots = bar.values.len().max(1) as f64;
        cc.draw_series(bar.values.iter().enumerate().map(|(i, v)| {
            let dx = (i as f64 / dots - 0.5) * half * 1.2;
            Circle::new((x + dx, *v), 3, BLACK.mix(0.55).filled())
        }))?;
        let cap = half * 0.35;
        let whisker = BLACK.stroke_width(2);
        cc.draw_series([
            PathElement::new(vec![(x, lo), (x, hi)], whisker),
            PathElement::new(vec![(x - cap, lo), (x + cap, lo)], whisker),
            PathElement::new(vec![(x - cap, hi), (x + cap, hi)], whisker),
        ])?;
    }

    let ref_labels = reference_labels(chart);
    for r in &chart.references {
        let style = color(reference_color(&ref_labels, &r.label)).stroke_width(2);
        let (x0, x1) = layout.category_span(r.category);
        cc.draw_series([DashedPathElement::new(
            vec![(x0, r.value), (x1, r.value)],
            8,
            5,
            style,
        )])?;
    }

    draw_legend(&legend_area, chart, &ref_labels)?;
    root.present()?;
    Ok(())
}

/// Distinct reference labels in order of first appearance: one legend entry and colour each.
fn reference_labels(chart: &Chart) -> Vec<&str> {
    let mut labels: Vec<&str> = Vec::new();
    for r in &chart.references {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    labels
}

fn reference_color(labels: &[&str], label: &str) -> Rgb {
    let i = labels.iter().position(|l| *l == label).unwrap_or(0);
    REFERENCE_COLORS[i % REFERENCE_COLORS.len()]
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    refs: &[&str],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // Text centred on the swatch's middle line, 8 px below its top.
    let font = TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let (x, mut y) = (8, 24);
    for (lib, c) in &chart.libs {
        area.draw(&Rectangle::new(
            [(x, y), (x + 16, y + 16)],
            color(*c).filled(),
        ))?;
        area.draw(&Text::new(lib.as_str(), (x + 24, y + 8), font.clone()))?;
        y += 28;
    }
    if let Some(n) = chart
        .bars
        .iter()
        .filter(|b| b.summary.max > b.summary.min)
        .map(|b| b.summary.n)
        .min()
    {
        area.draw(&PathElement::new(
            vec![(x + 8, y), (x + 8, y + 16)],
            BLACK.stroke_width(2),
        ))?;
        area.draw(&Text::new(
            crate::report::range_name(n),
            (x + 24, y + 8),
            font.clone(),
        ))?;
        y += 28;
        area.draw(&Circle::new((x + 8, y + 8), 3, BLACK.mix(0.55).filled()))?;
        area.draw(&Text::new("repetition", (x + 24, y + 8), font.clone()))?;
        y += 28;
    }
    for label in refs {
        let style = color(reference_color(refs, label)).stroke_width(2);
        area.draw(&DashedPathElement::new(
            vec![(x, y + 8), (x + 18, y + 8)],
            6,
            3,
            style,
        ))?;
        area.draw(&Text::new(*label, (x + 24, y + 8), font.clone()))?;
        y += 28;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(values: &[f64]) -> Summary {
        Summary::of(values).unwrap()
    }

    #[test]
    fn renders_grouped_bars_with_references() {
        let dir = tempfile::tempdir().unwrap();
        let chart = Chart {
            title: "packetfilter: test run".into(),
            y_label: "time per packet (ns)".into(),
            categories: vec!["ipv4 allowed".into(), "ipv6 blocked".into()],
            libs: vec![
                ("aya".into(), lib_color("aya", 0)),
                ("libbpf-rs".into(), lib_color("libbpf-rs", 1)),
            ],
            bars: vec![
                Bar {
                    category: 0,
                    lib: 0,
                    summary: summary(&[60.0, 64.0, 70.0]),
                    values: vec![60.0, 64.0, 70.0],
                },
                Bar {
                    category: 0,
                    lib: 1,
                    summary: summary(&[55.0, 58.0, 61.0]),
                    values: vec![55.0, 58.0, 61.0],
                },
                Bar {
                    category: 1,
                    lib: 0,
                    summary: summary(&[40.0, 41.0, 45.0]),
                    values: vec![40.0, 41.0, 45.0],
                },
                Bar {
                    category: 1,
                    lib: 1,
                    summary: summary(&[38.0, 39.0, 42.0]),
                    values: vec![38.0, 39.0, 42.0],
                },
            ],
            references: vec![
                Reference {
                    category: 0,
                    label: "empty XDP program".into(),
                    value: 30.0,
                },
                Reference {
                    category: 1,
                    label: "empty XDP program".into(),
                    value: 29.0,
                },
                Reference {
                    category: 0,
                    label: "xdp-filter".into(),
                    value: 50.0,
                },
            ],
        };
        let (svg, png) = render(&Figure::Bars(chart), &dir.path().join("chart")).unwrap();
        let text = fs::read_to_string(svg).unwrap();
        assert!(
            text.contains("<svg")
                && text.contains("empty XDP program")
                && text.contains("libbpf-rs")
        );
        let bytes = fs::read(png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn renders_heatmap_and_cdf() {
        let dir = tempfile::tempdir().unwrap();
        let cell = |ratio, mark| Some(HeatCell { ratio, ranked: true, mark });
        let heat = Figure::Heatmap(Heatmap {
            title: "packetfilter: ratio to the best library".into(),
            rows: vec!["test_run_ns · ipv4".into(), "obj_bytes".into()],
            cols: vec!["aya".into(), "libbpf-rs".into()],
            cells: vec![vec![cell(1.0, "★"), cell(2.4, "")], vec![cell(1.0, "="), None]],
        });
        let (svg, png) = render(&heat, &dir.path().join("heat")).unwrap();
        let text = fs::read_to_string(svg).unwrap();
        assert!(text.contains("2.40×") && text.contains("★"));
        assert!(fs::metadata(png).unwrap().len() > 1000);
        let cdf = Figure::Cdf(Cdf {
            title: "latency".into(),
            x_label: "latency_us (µs)".into(),
            lines: vec![
                ("aya".into(), lib_color("aya", 0), false, vec![(10.0, 0.5), (20.0, 1.0)]),
                ("netem".into(), reference_rgb(0), true, vec![(12.0, 0.4), (25.0, 1.0)]),
            ],
        });
        let (svg, _) = render(&cdf, &dir.path().join("cdf")).unwrap();
        assert!(fs::read_to_string(svg).unwrap().contains("netem"));
    }

    #[test]
    fn missing_font_names_the_package() {
        let err = read_font("/nonexistent/DejaVuSans.ttf").unwrap_err();
        assert!(err.contains(FONT_PACKAGE), "{err}");
    }

    #[test]
    fn colours_are_stable() {
        assert_eq!(lib_color("aya", 5), lib_color("aya", 0));
        assert_eq!(hex((0, 114, 178)), "#0072b2");
    }
}
