//! The five use cases as the harness sees them: what is implemented where, how to check it,
//! how to measure it, and which reference points it is compared against.

pub mod packetfilter;

use std::path::Path;

use anyhow::Result;
use metrics::record::{Capability, Row, Status};

use crate::measure::Ctx;
use crate::process::Implementation;

/// Every library of the comparison, in report order.
pub const LIBS: &[&str] = &["aya", "libbpf-rs", "redbpf"];

pub trait UseCase {
    fn name(&self) -> &'static str;

    /// Whether `lib` implements this use case, and how.
    fn capability(&self, workspace: &Path, lib: &str) -> Capability {
        let implemented = Implementation::source_dir_of(workspace, self.name(), lib).join("Cargo.toml").exists();
        let (status, note) = if implemented {
            (Status::Native, String::new())
        } else {
            (Status::Missing, self.missing_note(lib))
        };
        Capability { usecase: self.name().into(), lib: lib.into(), status, note }
    }

    /// Why `lib` has no implementation (yet).
    fn missing_note(&self, lib: &str) -> String {
        let _ = lib;
        "not implemented yet".into()
    }

    /// Runs the shared conformance vectors; returns one line per mismatch.
    fn conformance(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>>;

    /// Load and runtime metrics of one implementation.
    fn measure(&self, ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>>;

    /// The same runtime metrics of the reference points (rows with `lib = ref:<name>`).
    fn references(&self, ctx: &Ctx) -> Result<Vec<Row>>;
}

/// A use case that no library implements yet: the report lists it in the capability matrix.
struct Planned {
    name: &'static str,
    issue: u32,
}

impl UseCase for Planned {
    fn name(&self) -> &'static str {
        self.name
    }

    fn missing_note(&self, lib: &str) -> String {
        let issue = if lib == "redbpf" { 8 } else { self.issue };
        format!("not implemented yet (issue #{issue})")
    }

    fn conformance(&self, _: &Ctx, _: &Implementation) -> Result<Vec<String>> {
        anyhow::bail!("{} has no conformance suite yet", self.name)
    }

    fn measure(&self, _: &Ctx, _: &Implementation) -> Result<Vec<Row>> {
        anyhow::bail!("{} has no measurements yet", self.name)
    }

    fn references(&self, _: &Ctx) -> Result<Vec<Row>> {
        Ok(Vec::new())
    }
}

pub fn all() -> Vec<Box<dyn UseCase>> {
    ["packetfilter", "loadbalancer", "jittergen", "comtrace", "lsmbpf"]
        .into_iter()
        .filter_map(by_name)
        .collect()
}

pub fn by_name(name: &str) -> Option<Box<dyn UseCase>> {
    Some(match name {
        "packetfilter" => Box::new(packetfilter::PacketFilter),
        "loadbalancer" => Box::new(Planned { name: "loadbalancer", issue: 4 }),
        "comtrace" => Box::new(Planned { name: "comtrace", issue: 5 }),
        "lsmbpf" => Box::new(Planned { name: "lsmbpf", issue: 6 }),
        "jittergen" => Box::new(Planned { name: "jittergen", issue: 7 }),
        _ => return None,
    })
}
