//! Reports of a run directory: `index.html` (self-contained), `report.md` and the charts under
//! `plots/`; and [`compare`] of two runs.

mod compare;
mod html;
pub mod kernels;
mod markdown;
mod model;
mod overview;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::plot;
use crate::record::Run;
use crate::weights::Weights;

pub use compare::{compare, compare_into, rankings_reproduced, Moved, Reproduction, COMPARE_HTML, COMPARE_MD};
pub use html::page;
pub use model::{range_name, series, Series, SeriesKey};

pub const INDEX_HTML: &str = "index.html";
pub const REPORT_MD: &str = "report.md";
pub const PLOTS_DIR: &str = "plots";

/// What [`render`] wrote.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub html: PathBuf,
    pub markdown: PathBuf,
    /// SVG and PNG of every chart.
    pub plots: Vec<PathBuf>,
}

/// All written files: HTML, Markdown, then the plots.
impl IntoIterator for Rendered {
    type Item = PathBuf;
    type IntoIter = std::vec::IntoIter<PathBuf>;

    fn into_iter(self) -> Self::IntoIter {
        let mut files = vec![self.html, self.markdown];
        files.extend(self.plots);
        files.into_iter()
    }
}

/// Renders the run in `dir` (as written by [`crate::record`]) into `dir/index.html`,
/// `dir/report.md` and `dir/plots/`. This is what `harness report DIR` calls.
pub fn render(dir: &Path) -> Result<Rendered> {
    render_with(dir, &Weights::defaults())
}

/// [`render`] with the decision aid's weights given (`harness report DIR --weights FILE`).
pub fn render_with(dir: &Path, weights: &Weights) -> Result<Rendered> {
    let run = Run::load(dir)?;
    let report = model::build(&run, weights);

    let plots_dir = dir.join(PLOTS_DIR);
    fs::create_dir_all(&plots_dir).with_context(|| format!("creating {}", plots_dir.display()))?;
    let mut svgs = BTreeMap::new();
    let mut plots = Vec::new();
    for planned in report.figures() {
        let (svg, png) = plot::render(&planned.chart, &plots_dir.join(&planned.stem))
            .with_context(|| format!("drawing {}", planned.chart.title()))?;
        svgs.insert(planned.stem.clone(), fs::read_to_string(&svg)?);
        plots.extend([svg, png]);
    }

    let rendered = Rendered {
        html: dir.join(INDEX_HTML),
        markdown: dir.join(REPORT_MD),
        plots,
    };
    let mut page = html::render(&report, &run, &svgs);
    let mut md = markdown::render(&report, &run);
    // The kernel matrix, when `harness kernels` or `run --kernels` wrote kernels.csv.
    if let Some(cells) = kernels::load(dir)? {
        let at = page.rfind("<footer>").unwrap_or(page.len());
        page.insert_str(at, &kernels::html(&cells));
        md.push_str(&kernels::markdown(&cells));
    }
    fs::write(&rendered.html, page)
        .with_context(|| format!("writing {}", rendered.html.display()))?;
    fs::write(&rendered.markdown, md)
        .with_context(|| format!("writing {}", rendered.markdown.display()))?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt;
    use crate::hist::Histogram;
    use crate::record::{
        read_csv, Capability, Environment, Failure, Finding, Implementation, Row, RunMeta, Stage,
        Status, RESULTS_CSV,
    };
    use crate::stats::median;

    /// Set to a directory to keep the rendered fixture report there for a look in a browser.
    const KEEP_ENV: &str = "METRICS_REPORT_FIXTURE";

    /// 2 use cases × 2 libraries × a few metrics × 5 repetitions (enough to rank), references, classes, a noisy
    /// series, a third library that failed to build, capabilities and an environment.
    fn fixture_run(scale: f64) -> Run {
        let mut rows = Vec::new();
        let mut series = |usecase: &str,
                          lib: &str,
                          metric: &str,
                          unit: &str,
                          class: Option<&str>,
                          values: &[f64]| {
            for (i, v) in values.iter().enumerate() {
                let row = Row::new(usecase, lib, metric, unit, i as u32 + 1, *v);
                rows.push(match class {
                    Some(c) => row.with_class(c),
                    None => row,
                });
            }
        };
        for (lib, k) in [("aya", 1.0f64), ("libbpf-rs", 1.3)] {
            series(
                "packetfilter",
                lib,
                "loc_kernel",
                "lines",
                None,
                &[(120.0 * k).round()],
            );
            series(
                "packetfilter",
                lib,
                "loc_loader",
                "lines",
                None,
                &[(340.0 / k).round()],
            );
            series(
                "packetfilter",
                lib,
                "obj_bytes",
                "bytes",
                None,
                &[(5120.0 * k).round()],
            );
            series(
                "packetfilter",
                lib,
                "load_attach_ms",
                "ms",
                None,
                &[31.2 * k, 33.9 * k, 30.4 * k, 32.0 * k, 31.5 * k],
            );
            series(
                "packetfilter",
                lib,
                "test_run_ns",
                "ns",
                Some("ipv4 allowed"),
                &[61.0, 64.5, 63.2, 62.0, 60.5].map(|v| v * k * scale),
            );
            series(
                "packetfilter",
                lib,
                "test_run_ns",
                "ns",
                Some("ipv6 blocked"),
                &[40.1 * k, 41.7 * k, 39.8 * k, 40.5 * k, 41.0 * k],
            );
            series(
                "loadbalancer",
                lib,
                "veth_pps",
                "pps",
                None,
                &[812_000.0, 805_500.0, 820_250.0, 815_000.0, 809_000.0].map(|v| v / k),
            );
            // libbpf-rs is noisy here: CV well above 5%.
            series(
                "loadbalancer",
                lib,
                "rss_kib",
                "KiB",
                None,
                &[2048.0 * k, 2900.0 * k.powi(3), 2100.0 * k, 2075.0 * k, 2060.0 * k],
            );
        }
        for (reference, v) in [("empty XDP program", 34.0), ("xdp-filter", 52.0)] {
            let lib = format!("ref:{reference}");
            series(
                "packetfilter",
                &lib,
                "test_run_ns",
                "ns",
                Some("ipv4 allowed"),
                &[v, v + 1.0, v - 0.5],
            );
            series(
                "packetfilter",
                &lib,
                "test_run_ns",
                "ns",
                Some("ipv6 blocked"),
                &[v - 4.0, v - 3.5, v - 4.5],
            );
        }
        let cap = |usecase: &str, lib: &str, status, note: &str| Capability {
            usecase: usecase.into(),
            lib: lib.into(),
            status,
            note: note.into(),
        };
        Run {
            dir: PathBuf::new(),
            meta: Some(RunMeta {
                created: "2026-05-01T12:00:00Z".into(),
                git_revision: Some("0123abcd".into()),
                ..Default::default()
            }),
            rows,
            environment: Some(Environment::collect(BTreeMap::from([
                (
                    "aya".to_string(),
                    Implementation {
                        toolchains: BTreeMap::from([
                            ("rustc".into(), "1.95.0".into()),
                            ("bpf-linker".into(), "0.10.3".into()),
                        ]),
                        crates: BTreeMap::from([("aya".into(), "0.14.0".into())]),
                    },
                ),
                (
                    "libbpf-rs".to_string(),
                    Implementation {
                        toolchains: BTreeMap::from([("clang".into(), "14.0.6".into())]),
                        crates: BTreeMap::from([("libbpf-rs".into(), "0.25.0".into())]),
                    },
                ),
            ]))),
            failures: vec![Failure {
                usecase: "packetfilter".into(),
                lib: "redbpf".into(),
                stage: Stage::Build,
                error: "error: linking with `cc` failed\nnote: <llvm-13> not found | see log"
                    .into(),
            }],
            capabilities: vec![
                cap("packetfilter", "aya", Status::Native, ""),
                cap(
                    "packetfilter",
                    "libbpf-rs",
                    Status::Hybrid,
                    "kernel side in C",
                ),
                cap("packetfilter", "redbpf", Status::Native, ""),
                cap("loadbalancer", "aya", Status::Native, ""),
                cap("loadbalancer", "libbpf-rs", Status::Native, ""),
                cap(
                    "loadbalancer",
                    "redbpf",
                    Status::Impossible,
                    "no XDP_TX redirect helper",
                ),
                cap("packetfilter", "libbpfgo", Status::NotBuildable, "no Go module proxy here"),
            ],
            findings: vec![Finding {
                usecase: "loadbalancer".into(),
                metric: "rss_kib".into(),
                libs: vec!["libbpf-rs".into()],
                cause: "maps are pre-allocated".into(),
                evidence: vec!["results.csv".into()],
            }],
            provenance: vec![crate::record::Provenance {
                usecase: "packetfilter".into(),
                lib: "aya".into(),
                metrics: vec!["toolchain_build_s (target/toolchain-cost/bpf_linker_build_s)".into()],
                source: "replayed from set-up's timing".into(),
            }],
            histograms: Some(
                [("aya", 50.0), ("libbpf-rs", 65.0)]
                    .iter()
                    .map(|(lib, base)| {
                        let samples: Vec<f64> = (0..200).map(|i| base + (i % 40) as f64).collect();
                        Histogram::from_samples("packetfilter", lib, "latency_us", None, "µs", &samples)
                    })
                    .collect(),
            ),
            repo_metrics: None,
        }
    }

    /// The `<tr>` of a table row in a use case's section.
    fn table_row<'a>(html: &'a str, usecase: &str, label: &str) -> &'a str {
        let section = &html[html
            .find(&format!("<section id=\"uc-{usecase}\">"))
            .unwrap()..];
        let section = &section[..section.find("</section>").unwrap()];
        let start = section
            .find(&format!(">{label}<span class=\"dir\">"))
            .unwrap_or_else(|| panic!("row {label}"));
        let row = &section[start..];
        &row[..row.find("</tr>").unwrap()]
    }

    #[test]
    fn renders_a_recorded_run() {
        let tmp = tempfile::tempdir().unwrap();
        let dir =
            std::env::var_os(KEEP_ENV).map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
        fixture_run(1.0).save(&dir).unwrap();
        let out = render(&dir).unwrap();

        let html = fs::read_to_string(&out.html).unwrap();
        let md = fs::read_to_string(&out.markdown).unwrap();
        assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
        // Self-contained: no external style sheets or scripts, the charts inline.
        assert!(!html.contains("<link") && !html.contains("<script"));
        assert_eq!(html.matches("<svg").count(), out.plots.len() / 2);

        // Charts: packetfilter loc, object_size, load_time, test_run; loadbalancer throughput,
        // memory; heatmaps across use cases and of each; the packetfilter latency CDF.
        assert_eq!(out.plots.len(), 20);
        // The summary comes first and names every library with a value; findings and scores.
        let summary = &html[html.find("<section id=\"summary\">").unwrap()..];
        assert!(html.find("<section id=\"summary\">") < html.find("<section id=\"environment\">"));
        assert!(summary.contains("aya leads") && summary.contains("redbpf: build failed"));
        assert!(summary.contains("href=\"#row-packetfilter-test_run_ns___ipv4_allowed\""));
        assert!(html.contains("id=\"row-packetfilter-test_run_ns___ipv4_allowed\""));
        assert!(summary.contains("maps are pre-allocated"));
        assert!(html.contains("id=\"plot-overview-heatmap\"") && html.contains("id=\"plot-packetfilter-cdf-latency_us\""));
        assert!(html.contains("id=\"provenance\"") && html.contains("replayed from set-up"));
        assert!(md.contains("### Values this run did not measure itself"));
        assert!(md.starts_with("# bpf-eval report") && md.find("## Summary") < md.find("## Environment"));
        assert!(md.contains("No repo-metrics.csv"));
        for plot in &out.plots {
            assert!(
                fs::metadata(plot).unwrap().len() > 1000,
                "{} is too small",
                plot.display()
            );
            let name = plot.file_name().unwrap().to_str().unwrap();
            if name.ends_with(".png") {
                assert!(
                    md.contains(&format!("](plots/{name})")),
                    "report.md does not link {name}"
                );
            }
        }

        // Every library and metric is in the tables; every cell holds the median of the CSV.
        let rows = read_csv(&dir.join(RESULTS_CSV)).unwrap();
        let libs = ["aya", "libbpf-rs", "redbpf"];
        for lib in libs {
            assert!(
                html.contains(&format!("</span>{lib}</th>")),
                "no column for {lib}"
            );
        }
        for (key, s) in series(&rows) {
            let Some(col) = libs.iter().position(|l| *l == key.lib) else {
                continue;
            };
            let label = model::series_label(&key.metric, key.class.as_deref());
            let cells: Vec<&str> = table_row(&html, &key.usecase, &label)
                .split("<td class=\"num")
                .skip(1)
                .collect();
            let m = median(&s.values);
            assert!(
                cells[col].contains(&format!("data-median=\"{m}\"")),
                "{label} {}: {}",
                key.lib,
                cells[col]
            );
            assert!(
                cells[col].contains(&format!("<span class=\"median\">{}</span>", fmt::value(m)))
            );
            assert!(md.contains(&fmt::value(m)));
        }

        // References shown as ratios, best marked by direction, noise flagged, failure explained.
        let v4 = table_row(&html, "packetfilter", "test_run_ns · ipv4 allowed");
        assert!(
            v4.contains("1.82× empty XDP program") && v4.contains("xdp-filter: 52"),
            "{v4}"
        );
        assert!(
            v4.split("<td").nth(2).unwrap().contains("best"),
            "aya is faster"
        );
        let pps = table_row(&html, "loadbalancer", "veth_pps");
        assert!(
            pps.split("<td")
                .nth(2)
                .unwrap()
                .starts_with(" class=\"num best\""),
            "higher pps is better"
        );
        assert!(table_row(&html, "loadbalancer", "rss_kib").contains("⚠ CV"));
        assert!(table_row(&html, "packetfilter", "obj_bytes").contains("build failed"));
        assert!(table_row(&html, "loadbalancer", "veth_pps").contains("impossible"));

        // Capability matrix, failures (escaped), environment.
        assert!(html.contains("<span class=\"status hybrid\">hybrid</span><span class=\"capnote\">kernel side in C</span>"));
        assert!(html.contains("&lt;llvm-13&gt; not found"));
        assert!(html.contains("bpf-linker 0.10.3"));
        assert!(md.contains("**impossible**: no XDP_TX redirect helper"));
        // A library that cannot be built here is a column with its reason, not absent.
        assert!(html.contains("<span class=\"status not_buildable\">not_buildable</span><span class=\"capnote\">no Go module proxy here</span>"));
        assert!(md.contains("**not_buildable**: no Go module proxy here"));
        assert!(md.contains("  note: <llvm-13> not found | see log"));
    }

    #[test]
    fn a_partial_run_says_so_in_header_and_summary() {
        let tmp = tempfile::tempdir().unwrap();
        let reason = "interrupted by SIGINT during packetfilter/libbpf-rs: repetition 3/5 <later steps did not run>";
        let mut run = fixture_run(1.0);
        run.meta.as_mut().unwrap().partial = vec![reason.into()];
        run.save(tmp.path()).unwrap();
        let out = render(tmp.path()).unwrap();
        let html = fs::read_to_string(&out.html).unwrap();
        let header = &html[html.find("<header>").unwrap()..html.find("</header>").unwrap()];
        assert!(html.contains("<title>bpf-eval report (partial)</title>"));
        assert!(header.contains("<h1>bpf-eval report (partial)</h1>") && header.contains(model::PARTIAL_HEADER), "{header}");
        assert!(header.contains(&format!("<li>{}</li>", esc_for_test(reason))), "{header}");
        let summary = &html[html.find("<section id=\"summary\">").unwrap()..];
        assert!(summary[..summary.find("</section>").unwrap()].contains(model::PARTIAL_SUMMARY));
        let md = fs::read_to_string(&out.markdown).unwrap();
        assert!(md.starts_with("# bpf-eval report (partial)") && md.contains(&format!("> - {reason}")));
        let md_summary = &md[md.find("## Summary").unwrap()..md.find("## Environment").unwrap()];
        assert!(md_summary.contains(model::PARTIAL_SUMMARY));
        // compare names the partial side.
        let b = tmp.path().join("b");
        fixture_run(1.0).save(&b).unwrap();
        compare(tmp.path(), &b).unwrap();
        assert!(fs::read_to_string(b.join(COMPARE_MD)).unwrap().contains(&format!("**partial**: {reason}")));

        // A complete run says nothing of the kind.
        let complete = tmp.path().join("complete");
        fixture_run(1.0).save(&complete).unwrap();
        let html = fs::read_to_string(render(&complete).unwrap().html).unwrap();
        assert!(!html.contains("(partial)") && !html.contains(model::PARTIAL_SUMMARY));
    }

    fn esc_for_test(s: &str) -> String {
        s.replace('<', "&lt;").replace('>', "&gt;")
    }

    #[test]
    fn compare_finds_what_moved() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fixture_run(1.0).save(&a).unwrap();
        let mut after = fixture_run(1.25);
        after.rows.retain(|r| r.metric != "obj_bytes");
        after.save(&b).unwrap();

        let moved = compare(&a, &b).unwrap();
        assert_eq!(moved.len(), 2, "{moved:#?}");
        for m in &moved {
            assert_eq!(
                (m.metric.as_str(), m.class.as_deref()),
                ("test_run_ns", Some("ipv4 allowed"))
            );
            assert!((m.change.relative - 0.25).abs() < 1e-9 && !m.improved);
        }
        let text = fs::read_to_string(b.join(COMPARE_MD)).unwrap();
        assert!(text.contains("## Moved: 2 of"));
        assert!(text.contains("+25.0%") && text.contains("**worse**"));
        assert!(text.contains("## Only in A") && text.contains("packetfilter / aya / obj_bytes"));
        let html = fs::read_to_string(b.join(COMPARE_HTML)).unwrap();
        assert!(html.contains("<h2>Moved: 2 of") && html.contains("<td><b>worse</b></td>"));
        assert!(html.find("Moved:") < html.find("Only in A"));
    }

    #[test]
    fn only_significant_large_differences_need_an_explanation() {
        let mut run = fixture_run(1.0);
        let weights = crate::weights::Weights::defaults();
        let unexplained = |run: &Run| model::build(run, &weights).overview.unexplained;
        assert!(unexplained(&run).is_empty(), "{:?}", unexplained(&run));
        // libbpf-rs 3x aya in every repetition: significant, and no finding is about it.
        let series = |run: &mut Run, values: [(f64, f64); 5]| {
            for (rep, (a, b)) in values.iter().enumerate() {
                for (lib, v) in [("aya", a), ("libbpf-rs", b)] {
                    run.rows.push(Row::new("loadbalancer", lib, "spread_max_dev_pct", "%", rep as u32 + 1, *v));
                }
            }
        };
        series(&mut run, [(1.0, 3.0), (1.1, 3.2), (0.9, 2.9), (1.05, 3.1), (0.95, 3.05)]);
        assert_eq!(unexplained(&run), ["loadbalancer / spread_max_dev_pct: libbpf-rs is 3.05× aya"]);
        // The same medians in overlapping noise: a tie, nothing to explain.
        let mut noisy = fixture_run(1.0);
        series(&mut noisy, [(1.0, 3.0), (4.0, 0.5), (0.2, 6.0), (5.0, 0.1), (0.1, 3.0)]);
        assert!(unexplained(&noisy).is_empty(), "{:?}", unexplained(&noisy));
    }

    #[test]
    fn rankings_reproduce_unless_the_order_reverses() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        fixture_run(1.0).save(&a).unwrap();
        // Scaled alike for both libraries: the same rankings.
        fixture_run(1.25).save(&b).unwrap();
        assert_eq!(rankings_reproduced(&a, &b).unwrap(), Reproduction::default());
        // The libraries swap places in one metric: its ranking is contradicted, both ways.
        let mut swapped = fixture_run(1.0);
        for r in swapped.rows.iter_mut().filter(|r| r.metric == "veth_pps") {
            r.lib = if r.lib == "aya" { "libbpf-rs" } else { "aya" }.into();
        }
        swapped.save(&b).unwrap();
        let r = rankings_reproduced(&a, &b).unwrap();
        assert_eq!(r.contradicted.len(), 2, "{r:#?}");
        assert!(r.contradicted[0].starts_with("loadbalancer: veth_pps: A ranks aya first; B orders libbpf-rs 1.00x before aya "), "{r:#?}");
        assert!(r.weaker.is_empty(), "{r:#?}");
        // The same order with the difference within the noise: weaker, not contradicted.
        let mut close = fixture_run(1.0);
        let rows: Vec<_> = close.rows.iter().filter(|r| r.metric == "veth_pps" && r.lib == "aya").cloned().collect();
        for r in close.rows.iter_mut().filter(|r| r.metric == "veth_pps" && r.lib == "libbpf-rs") {
            let twin = rows.iter().find(|a| a.rep == r.rep && a.class == r.class).unwrap();
            r.value = twin.value * 0.999;
        }
        close.save(&b).unwrap();
        let r = rankings_reproduced(&a, &b).unwrap();
        assert!(r.contradicted.is_empty(), "{r:#?}");
        assert_eq!(r.weaker.len(), 1, "{r:#?}");
        assert!(r.weaker[0].starts_with("loadbalancer: veth_pps: A ranks aya first; B has aya before libbpf-rs, not significant"), "{r:#?}");
    }
}
