//! The kernel compatibility matrix (`kernels.csv` of `harness kernels`, when the run has one):
//! library × use case, one column per kernel, a colour per status.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const KERNELS_CSV: &str = "kernels.csv";

/// One row of `kernels.csv`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub usecase: String,
    pub lib: String,
    pub kernel: String,
    pub status: String,
    pub detail: String,
    /// Instructions the verifier processed, per program the check loaded: `name=count ...`
    /// (`name=n/a` where the kernel's `bpf_prog_info` has no such field; empty: nothing loaded).
    #[serde(default)]
    pub verified_insns: String,
    /// The machine that ran it (`harness merge` adds it; empty for a single machine).
    #[serde(default)]
    pub host: String,
    /// Empty: checked by this run. Else the run whose check is reused (the binary, the kernel
    /// and the checks are unchanged since; `harness::kernels::CellCache`).
    #[serde(default)]
    pub reused_from: String,
}

/// `dir/kernels.csv`, or `None` if the run has none.
pub fn load(dir: &Path) -> Result<Option<Vec<Cell>>> {
    let path = dir.join(KERNELS_CSV);
    if !path.exists() {
        return Ok(None);
    }
    let mut r = csv::Reader::from_path(&path).with_context(|| format!("opening {}", path.display()))?;
    let cells = r.deserialize().collect::<Result<_, _>>().with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(cells))
}

/// Writes `kernels.csv` (one row per [`Cell`], header from its fields).
pub fn write_csv(path: &Path, cells: &[Cell]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    for c in cells {
        w.serialize(c).with_context(|| format!("writing {}", path.display()))?;
    }
    w.flush().with_context(|| format!("writing {}", path.display()))
}

fn column(c: &Cell) -> String {
    if c.host.is_empty() {
        c.kernel.clone()
    } else {
        format!("{}@{}", c.kernel, c.host)
    }
}

/// Rows (use case, library) and columns (kernel[@host]) in a stable order: kernels by version, host last.
fn axes(cells: &[Cell]) -> (Vec<(String, String)>, Vec<String>) {
    let rows: BTreeSet<(String, String)> = cells.iter().map(|c| (c.usecase.clone(), c.lib.clone())).collect();
    let mut cols: Vec<String> = cells.iter().map(column).collect::<BTreeSet<_>>().into_iter().collect();
    let key = |k: &String| -> (u8, Vec<u64>, String) {
        let v: Vec<u64> = k.split(['.', '@']).map_while(|p| p.parse().ok()).collect();
        (u8::from(v.is_empty()), v, k.clone())
    };
    cols.sort_by_key(key);
    (rows.into_iter().collect(), cols)
}

fn find<'a>(cells: &'a [Cell], row: &(String, String), col: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.usecase == row.0 && c.lib == row.1 && column(c) == col)
}

/// A cell's `verified_insns` as `name: count` lines (escaped for HTML and Markdown), `–` if none.
fn insns(c: &Cell) -> Vec<String> {
    let v: Vec<String> =
        c.verified_insns.split_whitespace().map(|p| esc(&p.replacen('=', ": ", 1)).replace('|', "\\|")).collect();
    if v.is_empty() {
        vec!["–".into()]
    } else {
        v
    }
}

fn colour(status: &str) -> &'static str {
    match status {
        "pass" => "#c8e6c9",
        "lacks-feature" => "#e0e0e0",
        "not-built" => "#f5f5f5",
        "wrong-results" => "#ffe0b2",
        _ => "#ffcdd2",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Curated findings (`metric: kernels`) about a use case and library that did not pass somewhere.
fn findings(cells: &[Cell]) -> Vec<crate::record::Finding> {
    let all: Vec<crate::record::Finding> =
        yaml_serde::from_str(include_str!("../../findings.yaml")).unwrap_or_default();
    all.into_iter()
        .filter(|f| f.metric == "kernels")
        .filter(|f| {
            cells.iter().any(|c| c.usecase == f.usecase && f.libs.contains(&c.lib) && c.status != "pass")
        })
        .collect()
}

/// The status, with ↻ when the cell is reused from an earlier run.
fn status_text(c: &Cell) -> String {
    if c.reused_from.is_empty() {
        c.status.clone()
    } else {
        format!("{} ↻", c.status)
    }
}

fn reused_note(c: &Cell) -> String {
    if c.reused_from.is_empty() {
        String::new()
    } else {
        format!(" (reused: checked by the run {})", c.reused_from)
    }
}

/// What ↻ means, and how many cells carry it; `None` when this run checked every cell.
fn reused_legend(cells: &[Cell]) -> Option<String> {
    let n = cells.iter().filter(|c| !c.reused_from.is_empty()).count();
    (n > 0).then(|| {
        format!(
            "↻ {n} of {} cells reused from an earlier run: the implementation's binary, the kernel and the checks \
             are unchanged since that run checked them (failures are always checked again; `harness run --rebuild` \
             checks everything).",
            cells.len()
        )
    })
}

/// A table of use case × library rows and kernel columns; `td` renders a cell (or its absence).
fn html_table(h: &mut String, cells: &[Cell], td: impl Fn(Option<&Cell>) -> String) {
    let (rows, cols) = axes(cells);
    let _ = write!(h, "<table class=\"kernels\"><tr><th>use case</th><th>library</th>");
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    let _ = writeln!(h, "</tr>");
    for r in &rows {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td>", esc(&r.0), esc(&r.1));
        for c in &cols {
            h.push_str(&td(find(cells, r, c)));
        }
        let _ = writeln!(h, "</tr>");
    }
    let _ = writeln!(h, "</table>");
}

/// The Markdown form of [`html_table`]; `text` renders a present cell, an absent one is `–`.
fn md_table(h: &mut String, cells: &[Cell], text: impl Fn(&Cell) -> String) {
    let (rows, cols) = axes(cells);
    let _ = writeln!(h, "| use case | library | {} |", cols.join(" | "));
    let _ = writeln!(h, "|---|---|{}", "---|".repeat(cols.len()));
    for r in &rows {
        let texts: Vec<String> = cols.iter().map(|c| find(cells, r, c).map_or("–".into(), &text)).collect();
        let _ = writeln!(h, "| {} | {} | {} |", r.0, r.1, texts.join(" | "));
    }
    h.push('\n');
}

/// The HTML section (the detail is each cell's tooltip).
pub fn html(cells: &[Cell]) -> String {
    let mut h = String::new();
    let _ = writeln!(h, "<section id=\"kernels\">\n<h2>Kernel compatibility</h2>");
    let _ = writeln!(
        h,
        "<p>The same binaries on each kernel (<a href=\"{KERNELS_CSV}\">{KERNELS_CSV}</a>): load and attach, the \
         conformance vectors through <code>BPF_PROG_TEST_RUN</code>, and the use case's guest checks. \
         Hover a cell for the detail.</p>"
    );
    html_table(&mut h, cells, |cell| match cell {
        Some(cell) => format!(
            "<td style=\"background:{}\" title=\"{}\">{}</td>",
            colour(&cell.status),
            esc(&format!("{}{}", cell.detail, reused_note(cell))),
            esc(&status_text(cell))
        ),
        None => "<td>–</td>".into(),
    });
    if let Some(legend) = reused_legend(cells) {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&legend));
    }
    let _ = writeln!(
        h,
        "<h3>Verifier instructions</h3>\n<p><code>verified_insns</code> of each program the checks loaded, per kernel \
         (the largest over the check's loads; n/a: the kernel does not report it).</p>"
    );
    html_table(&mut h, cells, |cell| format!("<td>{}</td>", cell.map_or("–".into(), |x| insns(x).join("<br>"))));
    for f in findings(cells) {
        let _ = writeln!(h, "<p class=\"note\"><b>{} {}</b>: {}</p>", esc(&f.usecase), esc(&f.libs.join(", ")), esc(&f.cause));
    }
    let _ = writeln!(h, "</section>");
    h
}

/// The Markdown section: the matrix, then every cell that did not pass with its detail.
pub fn markdown(cells: &[Cell]) -> String {
    let mut h = String::from("## Kernel compatibility\n\n");
    md_table(&mut h, cells, status_text);
    if let Some(legend) = reused_legend(cells) {
        let _ = writeln!(h, "{legend}\n");
    }
    let _ = writeln!(h, "Verifier instructions (`verified_insns` per program; n/a: the kernel does not report it):\n");
    md_table(&mut h, cells, |x| insns(x).join("<br>"));
    for c in cells.iter().filter(|c| c.status != "pass" || c.detail.contains("fallback") || c.detail.contains("no TCX")) {
        let _ = writeln!(h, "- {} {} on {}: **{}**: {}", c.usecase, c.lib, column(c), c.status, c.detail.replace('|', "\\|"));
    }
    for f in findings(cells) {
        let _ = writeln!(h, "- finding, {} {}: {}", f.usecase, f.libs.join(", "), f.cause);
    }
    h.push('\n');
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(kernel: &str, status: &str) -> Cell {
        Cell {
            usecase: "jittergen".into(),
            lib: "aya".into(),
            kernel: kernel.into(),
            status: status.into(),
            detail: "bpf_skb_set_tstamp needs 5.18".into(),
            ..Default::default()
        }
    }

    #[test]
    fn kernels_sort_by_version_and_host_last() {
        let cells = [cell("host", "pass"), cell("6.12", "pass"), cell("5.10", "lacks-feature"), cell("6.1", "pass")];
        let (_, cols) = axes(&cells);
        assert_eq!(cols, ["5.10", "6.1", "6.12", "host"]);
        let md = markdown(&cells);
        assert!(md.contains("| jittergen | aya | lacks-feature | pass | pass | pass |"), "{md}");
        assert!(html(&cells).contains("title=\"bpf_skb_set_tstamp needs 5.18\">lacks-feature"));
    }

    #[test]
    fn verifier_counts_show_per_program_and_kernel() {
        let mut a = cell("5.10", "pass");
        a.verified_insns = "jittergen=n/a".into();
        let mut b = cell("6.12", "pass");
        b.verified_insns = "jittergen=1823 other=12".into();
        let c = cell("host", "lacks-feature");
        let md = markdown(&[a.clone(), b.clone(), c.clone()]);
        assert!(md.contains("| jittergen | aya | jittergen: n/a | jittergen: 1823<br>other: 12 | – |"), "{md}");
        assert!(html(&[a, b, c]).contains("<td>jittergen: 1823<br>other: 12</td>"));
        // Written and read back with the column.
        let dir = std::env::temp_dir().join(format!("kernels-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut d = cell("6.1", "pass");
        d.verified_insns = "x=1 y=2".into();
        write_csv(&dir.join(KERNELS_CSV), &[d.clone()]).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(vec![d]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reused_cells_are_marked_and_counted() {
        let mut reused = cell("6.1", "pass");
        reused.reused_from = "reports/run-1".into();
        let cells = [reused.clone(), cell("6.12", "pass")];
        let md = markdown(&cells);
        assert!(md.contains("| jittergen | aya | pass ↻ | pass |"), "{md}");
        assert!(md.contains("↻ 1 of 2 cells reused from an earlier run"), "{md}");
        let h = html(&cells);
        assert!(h.contains("title=\"bpf_skb_set_tstamp needs 5.18 (reused: checked by the run reports/run-1)\">pass ↻</td>"), "{h}");
        assert!(!markdown(&[cell("6.12", "pass")]).contains('↻'));
        // The column survives the CSV; files without it (older runs) read as checked.
        let dir = std::env::temp_dir().join(format!("kernels-reused-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_csv(&dir.join(KERNELS_CSV), &[reused.clone()]).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(vec![reused]));
        std::fs::write(dir.join(KERNELS_CSV), "usecase,lib,kernel,status,detail\njittergen,aya,6.1,pass,d\n").unwrap();
        assert_eq!(load(&dir).unwrap().unwrap()[0].reused_from, "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_curated_finding_shows_where_its_library_fails() {
        let mut c = cell("6.1", "wrong-results");
        c.usecase = "comtrace".into();
        assert!(markdown(&[c.clone()]).contains("finding, comtrace aya"));
        c.status = "pass".into();
        assert!(!markdown(&[c]).contains("finding"));
    }
}
