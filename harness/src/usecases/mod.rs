//! The five use cases as the harness sees them: what is implemented where, how to check it,
//! how to measure it, and which reference points it is compared against. Each use case is a
//! folder: `<usecase>/bed.rs`, its test bed (tests and guest binaries use it too), and
//! `<usecase>/mod.rs`, its bench.

pub mod comtrace;
pub mod jittergen;
pub mod loadbalancer;
pub mod lsmbpf;
pub mod packetfilter;

use std::path::{Path, PathBuf};

use anyhow::Result;
use metrics::record::{Row, Status};

use crate::kernels::Features;
use crate::measure::Ctx;
use crate::process::Implementation;

/// A use case as the harness drives it; which library implements it, and how, is
/// [`crate::libs::Library::capability`].
pub trait UseCase {
    fn name(&self) -> &'static str;

    /// Runs the shared conformance vectors; returns one line per mismatch.
    fn conformance(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>>;

    /// Load and runtime metrics of one implementation: the repetitions of
    /// [`Ctx::rep_range`] (one; `harness run` interleaves them across libraries).
    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>>;

    /// The same runtime metrics of the reference points (rows with `lib = ref:<name>`), for the
    /// repetitions of [`Ctx::rep_range`].
    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>>;

    /// Its cell of the kernel matrix ([`crate::kernels`]) on the running kernel, a VM guest's or
    /// the host's: status (`kernels::PASS`, …) and detail.
    fn on_kernel(&self, imp: &Implementation, f: &Features) -> (String, String);

    /// Whether a warm-up round precedes the counted ones (not for the VM guest, whose times
    /// are emulated and whose every boot is a fresh machine).
    fn warm_up(&self) -> bool {
        true
    }

    /// What every library of a counted round (and the references, if `references`) measures
    /// together, after their [`UseCase::measure`] and [`UseCase::references`]: jittergen's wire
    /// scenarios, all subjects in one VM guest boot. Each subject's rows or its failure, by
    /// library name or [`REFERENCES`]; an error when nobody measured.
    fn together(&self, _ctx: &Ctx, _imps: &[Implementation], _references: bool) -> Result<Vec<(String, Result<Vec<Row>>)>> {
        Ok(Vec::new())
    }
}

/// The subject name of the reference points in [`UseCase::together`] and in failures.
pub const REFERENCES: &str = "references";

/// An implementation's own `capability.yml` (`status`, `note`) if it has one, else native:
/// with a patch, hybrid or impossible is said by the implementation, next to its code.
pub(crate) fn declared_capability(dir: &Path) -> (Status, String) {
    let d = declared(dir);
    (d.status, d.note.trim().to_string())
}

/// The patches to its library an implementation needs (`patches:` in its `capability.yml`,
/// file names in `impls/<lib>/patches/`), which its user carries: they count in its lines of code.
pub fn declared_patches(dir: &Path) -> Vec<PathBuf> {
    let patches = dir.parent().map(|lib| lib.join("patches")).unwrap_or_default();
    declared(dir).patches.iter().map(|p| patches.join(p)).collect()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    status: Status,
    note: String,
    #[serde(default)]
    patches: Vec<String>,
}

fn declared(dir: &Path) -> Declared {
    let path = dir.join("capability.yml");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Declared { status: Status::Native, note: String::new(), patches: Vec::new() };
    };
    match yaml_serde::from_str::<Declared>(&text) {
        Ok(d) => {
            // A broken declaration is a bug in the repository: no report with a made-up status.
            let lib_dir = dir.parent().unwrap_or(dir);
            if let Some(p) = d.patches.iter().find(|p| !lib_dir.join("patches").join(p).is_file()) {
                panic!("{}: field `patches`: {p} is not a file in {}/patches", path.display(), lib_dir.display());
            }
            d
        }
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// `<name>_p50_us` and `<name>_p99_us` of one repetition's latencies (µs), whose distribution
/// goes to `histograms.csv` as `<name>_us`.
pub fn latency_rows(ctx: &Ctx, usecase: &str, lib: &str, name: &str, rep: u32, mut samples: Vec<f64>) -> Vec<Row> {
    samples.sort_by(f64::total_cmp);
    ctx.record_distribution(&Row::new(usecase, lib, &format!("{name}_us"), "µs", rep, 0.0), &samples);
    [50.0, 99.0]
        .map(|p| {
            let v = metrics::stats::percentile(&samples, p);
            Row::new(usecase, lib, &format!("{name}_p{p:.0}_us"), "µs", rep, v)
        })
        .into()
}

/// The use cases, in report order: metrics' list (the report renders without the harness), each
/// with its entry in [`by_name`].
pub const NAMES: &[&str] = metrics::catalogue::USECASES;

pub fn all() -> Vec<Box<dyn UseCase>> {
    NAMES
        .iter()
        .map(|n| by_name(n).unwrap_or_else(|| panic!("use case `{n}` (metrics::catalogue::USECASES) has no entry in usecases::by_name")))
        .collect()
}

pub fn by_name(name: &str) -> Option<Box<dyn UseCase>> {
    Some(match name {
        "packetfilter" => Box::new(packetfilter::PacketFilter),
        "loadbalancer" => Box::new(loadbalancer::LoadBalancer),
        "comtrace" => Box::new(comtrace::ComTrace),
        "lsmbpf" => Box::new(lsmbpf::LsmBpf),
        "jittergen" => Box::new(jittergen::JitterGen),
        _ => return None,
    })
}

#[cfg(test)]
mod capability_tests {
    use super::*;

    /// Every `capability.yml` parses (a broken one would panic in a run's report).
    #[test]
    fn declared_capabilities_parse() {
        let workspace = crate::process::workspace_dir();
        for usecase in all() {
            for lib in crate::libs::LIBS {
                let _ = lib.capability(&workspace, usecase.name());
            }
        }
        let redbpf = crate::libs::get("redbpf").capability(&workspace, "packetfilter");
        assert_eq!(redbpf.status, Status::WithPatch, "{}", redbpf.note);
        assert!(redbpf.note.contains("patches"), "{}", redbpf.note);
    }
}
