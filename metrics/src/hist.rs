//! Distributions behind a percentile: `histograms.csv` in a run directory, one line per bucket,
//! header `usecase,lib,metric,class,unit,upper,count`.
//!
//! Buckets are log-spaced on one fixed grid ([`BUCKETS_PER_DECADE`] per decade, upper bounds
//! 10^(k/20)), so histograms of different repetitions add bucket by bucket: the harness records
//! each repetition with [`Histogram::from_samples`] and sums them with [`Histogram::merge`].
//! Values ≤ 0 fall in a bucket with upper bound 0. `count` is summed over repetitions.
//!
//! Used for latency (`latency_us`, `conn_latency_us`, `record_latency_us`) and jittergen's
//! `wire_delay_ms` (class = scenario; `lib` includes `ref:netem` and `ref:configured`).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const HISTOGRAMS_CSV: &str = "histograms.csv";
pub const BUCKETS_PER_DECADE: f64 = 20.0;

/// One line of `histograms.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    usecase: String,
    lib: String,
    metric: String,
    class: Option<String>,
    unit: String,
    upper: f64,
    count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub usecase: String,
    pub lib: String,
    pub metric: String,
    pub class: Option<String>,
    pub unit: String,
    /// (upper bound, count), ascending by bound, no empty buckets.
    pub buckets: Vec<(f64, u64)>,
}

/// The upper bound of the grid bucket holding `v`.
pub fn bucket_upper(v: f64) -> f64 {
    if v <= 0.0 {
        return 0.0;
    }
    // The epsilon keeps an exact bound (10, 100) in its own bucket despite rounding in log10.
    let k = (v.log10() * BUCKETS_PER_DECADE - 1e-9).ceil();
    10f64.powf(k / BUCKETS_PER_DECADE)
}

impl Histogram {
    pub fn new(usecase: &str, lib: &str, metric: &str, class: Option<&str>, unit: &str) -> Self {
        Histogram {
            usecase: usecase.into(),
            lib: lib.into(),
            metric: metric.into(),
            class: class.map(String::from),
            unit: unit.into(),
            buckets: Vec::new(),
        }
    }

    /// The histogram of `samples` (e.g. one repetition's latencies).
    pub fn from_samples(
        usecase: &str,
        lib: &str,
        metric: &str,
        class: Option<&str>,
        unit: &str,
        samples: &[f64],
    ) -> Self {
        let mut h = Histogram::new(usecase, lib, metric, class, unit);
        for &v in samples {
            h.add(bucket_upper(v), 1);
        }
        h
    }

    fn add(&mut self, upper: f64, count: u64) {
        match self
            .buckets
            .binary_search_by(|(u, _)| u.total_cmp(&upper))
        {
            Ok(i) => self.buckets[i].1 += count,
            Err(i) => self.buckets.insert(i, (upper, count)),
        }
    }

    /// Adds `other`'s counts (another repetition of the same series).
    pub fn merge(&mut self, other: &Histogram) {
        for &(upper, count) in &other.buckets {
            self.add(upper, count);
        }
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.1).sum()
    }

    /// (upper bound, share of values ≤ it), ascending.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let total = self.total().max(1) as f64;
        let mut seen = 0;
        self.buckets
            .iter()
            .map(|&(upper, count)| {
                seen += count;
                (upper, seen as f64 / total)
            })
            .collect()
    }

    /// The upper bound of the bucket where the share `q` (0..=1) is reached: an upper estimate
    /// of the quantile, within one bucket (12% at 20 per decade).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.cdf().into_iter().find(|(_, f)| *f >= q).map(|(u, _)| u)
    }

    fn key(&self) -> (&str, &str, &str, Option<&str>) {
        (
            &self.usecase,
            &self.lib,
            &self.metric,
            self.class.as_deref(),
        )
    }
}

pub fn write_histograms(path: &Path, histograms: &[Histogram]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    // serialize() writes the header with the first line; an empty file still gets one.
    if histograms.iter().all(|h| h.buckets.is_empty()) {
        w.write_record(["usecase", "lib", "metric", "class", "unit", "upper", "count"])?;
    }
    for h in histograms {
        for &(upper, count) in &h.buckets {
            w.serialize(Line {
                usecase: h.usecase.clone(),
                lib: h.lib.clone(),
                metric: h.metric.clone(),
                class: h.class.clone(),
                unit: h.unit.clone(),
                upper,
                count,
            })?;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads `histograms.csv`; lines of one series may come in any order and repeat (they add up).
pub fn read_histograms(path: &Path) -> Result<Vec<Histogram>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out: Vec<Histogram> = Vec::new();
    for line in r.deserialize() {
        let l: Line = line.with_context(|| format!("reading {}", path.display()))?;
        let key = (
            l.usecase.as_str(),
            l.lib.as_str(),
            l.metric.as_str(),
            l.class.as_deref(),
        );
        let h = match out.iter().position(|h| h.key() == key) {
            Some(i) => &mut out[i],
            None => {
                out.push(Histogram::new(
                    &l.usecase,
                    &l.lib,
                    &l.metric,
                    l.class.as_deref(),
                    &l.unit,
                ));
                out.last_mut().expect("just pushed")
            }
        };
        h.add(l.upper, l.count);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_buckets() {
        assert_eq!(bucket_upper(10.0), 10.0);
        assert_eq!(bucket_upper(0.0), 0.0);
        assert_eq!(bucket_upper(-3.0), 0.0);
        let b = bucket_upper(11.0);
        assert!((b - 10f64.powf(21.0 / 20.0)).abs() < 1e-9, "{b}");
        assert!(bucket_upper(10.5) == b && bucket_upper(11.2) == b);
    }

    #[test]
    fn samples_merge_and_cdf() {
        let mut a = Histogram::from_samples("comtrace", "aya", "record_latency_us", None, "µs", &[10.0, 10.0, 100.0]);
        let b = Histogram::from_samples("comtrace", "aya", "record_latency_us", None, "µs", &[100.0]);
        a.merge(&b);
        assert_eq!(a.buckets, vec![(10.0, 2), (100.0, 2)]);
        assert_eq!(a.total(), 4);
        assert_eq!(a.cdf(), vec![(10.0, 0.5), (100.0, 1.0)]);
        assert_eq!(a.quantile(0.5), Some(10.0));
        assert_eq!(a.quantile(0.51), Some(100.0));
    }

    #[test]
    fn csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HISTOGRAMS_CSV);
        let hs = vec![
            Histogram::from_samples("jittergen", "ref:netem", "wire_delay_ms", Some("jitter 10-30 ms, ordered"), "ms", &[12.0, 25.0, 29.0]),
            Histogram::from_samples("packetfilter", "aya", "latency_us", None, "µs", &[50.0, 52.0]),
        ];
        write_histograms(&path, &hs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("usecase,lib,metric,class,unit,upper,count\n"));
        assert!(text.contains("packetfilter,aya,latency_us,,µs,"));
        let back = read_histograms(&path).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in back.iter().zip(&hs) {
            assert_eq!(a.key(), b.key());
            assert_eq!(a.total(), b.total());
            for ((ua, ca), (ub, cb)) in a.buckets.iter().zip(&b.buckets) {
                assert!((ua - ub).abs() < 1e-9 * ub && ca == cb);
            }
        }
    }
}
