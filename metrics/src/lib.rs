//! Statistics, tidy result records, lines of code, plots and reports for bpf-eval runs.
//!
//! The harness records [`record::Row`]s (one per measured value) and the side files of a run
//! directory; [`report::render`] turns such a directory into `index.html` and `report.md`, and
//! [`report::compare`] tells which metrics moved between two runs.

pub mod browser;
pub mod catalogue;
pub mod fmt;
pub mod hist;
pub mod loc;
pub mod plot;
pub mod record;
pub mod report;
pub mod stats;
pub mod weights;

pub use report::{compare, render};
