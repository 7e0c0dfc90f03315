pub mod clean;
pub mod doctor;
pub mod run;

use std::path::Path;

use anyhow::Result;

/// `harness compare A B`: prints the metrics that moved beyond their noise; false if any did.
pub fn compare(a: &Path, b: &Path) -> Result<bool> {
    let moved = metrics::report::compare(a, b)?;
    if moved.is_empty() {
        println!("no metric moved beyond its noise");
    }
    for m in &moved {
        println!("{m}");
    }
    Ok(moved.is_empty())
}
