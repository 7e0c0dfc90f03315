pub mod clean;
pub mod doctor;
pub mod kernels;
pub mod run;
pub mod soak;

use std::path::Path;

use anyhow::Result;

/// `harness compare A B [--out DIR]`: prints the metrics that moved beyond their noise (and
/// writes compare.md and compare.html into DIR); false if any did.
pub fn compare(a: &Path, b: &Path, out: &Path) -> Result<bool> {
    let moved = metrics::report::compare_into(a, b, out)?;
    if moved.is_empty() {
        println!("no metric moved beyond its noise");
    }
    for m in &moved {
        println!("{m}");
    }
    Ok(moved.is_empty())
}

/// `harness compare --rankings A B`: whether the other run orders alike every pair of libraries
/// either run calls significantly different; prints those it reverses (failure), and those it
/// orders alike without significance (not a failure: see `metrics::report::Reproduction`).
pub fn compare_rankings(a: &Path, b: &Path) -> Result<bool> {
    let r = metrics::report::rankings_reproduced(a, b)?;
    for w in &r.weaker {
        println!("weaker: {w}");
    }
    for c in &r.contradicted {
        println!("CONTRADICTED: {c}");
    }
    if r.contradicted.is_empty() {
        println!("every significant ranking of either run is ordered alike by the other ({} not significant there)", r.weaker.len());
    }
    Ok(r.contradicted.is_empty())
}
