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

/// `harness compare --rankings A B`: whether every significant ranking of either run is the
/// other's too; prints those that are not.
pub fn compare_rankings(a: &Path, b: &Path) -> Result<bool> {
    let differ = metrics::report::rankings_not_reproduced(a, b)?;
    if differ.is_empty() {
        println!("every significant ranking of either run is reproduced by the other");
    }
    for d in &differ {
        println!("not reproduced: {d}");
    }
    Ok(differ.is_empty())
}
