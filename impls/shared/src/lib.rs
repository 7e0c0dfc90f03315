//! Everything a bpf-eval loader needs that is *not* what the library comparison is about.
//!
//! Each implementation under `impls/<lib>/<usecase>/` keeps only the library-specific part
//! (open, load, attach, map access, event polling) behind a small trait, and hands it to the
//! use case's `run` function here. The contract these functions implement is written down in
//! `impls/README.md`.

pub mod cli;
pub mod comtrace;
pub mod error;
pub mod jittergen;
pub mod loadbalancer;
pub mod lsmbpf;
pub mod output;
pub mod packetfilter;
pub mod signals;
pub mod state;
pub mod wait;
pub mod yaml;

pub use error::InputError;
