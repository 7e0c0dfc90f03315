//! Weights of the decision aid: how much each dimension counts in a library's score. The
//! defaults are `metrics/weights.yaml`, compiled in so a report renders the same anywhere.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::catalogue::DIMENSIONS;

pub const DEFAULT_WEIGHTS: &str = include_str!("../weights.yaml");
/// The dimension of the repository metrics (scripts/repo-metrics), besides the measured ones.
pub const REPOSITORY: &str = "repository";

#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub by_dimension: BTreeMap<String, f64>,
    /// Where they came from: `defaults (metrics/weights.yaml)` or the file given.
    pub source: String,
}

impl Weights {
    pub fn defaults() -> Weights {
        Weights::parse(DEFAULT_WEIGHTS, "defaults (metrics/weights.yaml)")
            .expect("the shipped weights parse")
    }

    pub fn load(path: &Path) -> Result<Weights> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?;
        Weights::parse(&text, &path.display().to_string())
            .with_context(|| format!("in {}", path.display()))
    }

    /// A YAML map of dimension → weight (≥ 0). Unknown dimensions are an error (a typo would
    /// otherwise silently weigh nothing); dimensions left out weigh 0.
    pub fn parse(text: &str, source: &str) -> Result<Weights> {
        let by_dimension: BTreeMap<String, f64> =
            yaml_serde::from_str::<Option<BTreeMap<String, f64>>>(text)?.unwrap_or_default();
        let known: Vec<&str> = DIMENSIONS
            .iter()
            .map(|d| d.key)
            .chain([REPOSITORY])
            .collect();
        for (k, w) in &by_dimension {
            if !known.contains(&k.as_str()) {
                bail!("unknown dimension {k:?}; known: {}", known.join(", "));
            }
            if !(w.is_finite() && *w >= 0.0) {
                bail!("weight of {k} must be a number ≥ 0, not {w}");
            }
        }
        Ok(Weights {
            by_dimension,
            source: source.into(),
        })
    }

    pub fn of(&self, dimension: &str) -> f64 {
        self.by_dimension.get(dimension).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_every_dimension() {
        let w = Weights::defaults();
        for d in DIMENSIONS {
            assert!(w.of(d.key) > 0.0, "{}", d.key);
        }
        assert!(w.of(REPOSITORY) > 0.0);
    }

    #[test]
    fn parse_checks_names_and_values() {
        let w = Weights::parse("cost: 5\nmemory: 0.5\n", "test").unwrap();
        assert_eq!(w.of("cost"), 5.0);
        assert_eq!(w.of("latency"), 0.0);
        assert!(Weights::parse("cots: 1", "t").unwrap_err().to_string().contains("unknown dimension"));
        assert!(Weights::parse("cost: -1", "t").is_err());
        assert!(Weights::parse("", "t").unwrap().by_dimension.is_empty());
    }
}
