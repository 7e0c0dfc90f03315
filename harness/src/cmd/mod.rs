pub mod clean;
pub mod doctor;
pub mod kernels;
pub mod run;

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
