//! Checks a rendered report the way a reader meets it: headless Chromium (Debian's `chromium`)
//! loads each page from disk, and the check fails on a console error, a missing image, a broken
//! local link, a missing summary or heatmap, or a library of the tables absent from the summary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub const CHROMIUM: &str = "chromium";

/// Runs Chromium headless on `page`: the DOM after load, and its stderr (console messages).
fn load(page: &Path) -> Result<(String, String)> {
    let profile = tempfile::tempdir()?;
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.canonicalize()?.display()))
        .output()
        .with_context(|| format!("running {CHROMIUM} (Debian package chromium)"))?;
    if !out.status.success() {
        bail!("{CHROMIUM} failed on {}: {}", page.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok((String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into()))
}

/// Values of `attr="..."` in `dom`.
fn attributes<'a>(dom: &'a str, attr: &str) -> Vec<&'a str> {
    let pat = format!(" {attr}=\"");
    dom.match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &dom[i + pat.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// Problems of one page: console errors, images and local links that lead nowhere.
fn page_problems(page: &Path, dom: &str, stderr: &str) -> Vec<String> {
    let dir = page.parent().unwrap_or(Path::new("."));
    // Chromium logs every console message as `INFO:CONSOLE`, whatever its level; the report
    // runs no script, so any message at all (a failed resource, a script error) is a problem.
    let mut problems: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(|l| format!("console: {l}"))
        .collect();
    let ids = attributes(dom, "id");
    for (attr, what) in [("src", "image"), ("href", "link")] {
        for target in attributes(dom, attr) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = file.replace("&amp;", "&");
            if !file.is_empty() && !dir.join(&file).exists() {
                problems.push(format!("{what} to a missing file: {target}"));
            } else if file.is_empty() && !anchor.is_empty() && !ids.contains(&anchor) {
                problems.push(format!("{what} to a missing anchor: {target}"));
            }
        }
    }
    problems
}

/// Checks `dir/index.html` (and `compare.html`, when present) and returns what is wrong.
pub fn check_report(dir: &Path) -> Result<Vec<String>> {
    let index = dir.join(crate::report::INDEX_HTML);
    let (dom, stderr) = load(&index)?;
    let mut problems = page_problems(&index, &dom, &stderr);
    let Some(start) = dom.find("<section id=\"summary\">") else {
        problems.push("no <section id=\"summary\">".into());
        return Ok(problems);
    };
    let summary = &dom[start..dom[start..].find("</section>").map_or(dom.len(), |e| start + e)];
    if !summary.contains("heatmap") || !summary.contains("<svg") {
        problems.push("no heatmap in the summary".into());
    }
    // Every library that heads a table column must appear in the summary.
    for lib in dom
        .match_indices("<span class=\"swatch\"")
        .filter_map(|(i, _)| {
            let rest = &dom[i..];
            let name = &rest[rest.find("</span>")? + 7..];
            Some(&name[..name.find('<')?])
        })
        .collect::<std::collections::BTreeSet<_>>()
    {
        if !summary.contains(lib) {
            problems.push(format!("library {lib} is absent from the summary"));
        }
    }
    let compare: PathBuf = dir.join(crate::report::COMPARE_HTML);
    if compare.exists() {
        let (dom, stderr) = load(&compare)?;
        problems.extend(page_problems(&compare, &dom, &stderr).into_iter().map(|p| format!("compare.html: {p}")));
    }
    Ok(problems)
}
