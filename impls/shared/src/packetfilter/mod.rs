//! packetfilter: XDP filter by source address (IPv4 and IPv6, single addresses or CIDR prefixes).
//!
//! `config` reads the thesis' `config.yml`; `abi` is the layout the kernel programs of every
//! library agree on; `run` is the loader lifecycle, generic over a library's [`Backend`].

pub mod abi;
pub mod config;
mod run;

pub use config::{Action, Config, Family, ListKind, Rule, Ruleset};
pub use run::{run, Backend, Event, LoadParams};
