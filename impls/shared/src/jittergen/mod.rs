//! jittergen: a TC egress program that drops, delays (jitter) and reorders a share of the
//! packets matching a protocol and port, with earliest-departure-time delays under `fq`.
//!
//! `config` reads the thesis' `config.yml`; `abi` is the layout the kernel programs of every
//! library agree on; `qdisc` installs `fq` and puts the previous qdiscs back; `run` is the
//! loader lifecycle, generic over a library's [`Backend`].

pub mod abi;
pub mod config;
pub mod qdisc;
mod run;

pub use config::{Config, Effect, FqConfig, Protocol, Rule, TcAttach};
pub use run::{kernel_has_tcx, run, tcx_egress_progs, Backend, Iface, TcMode};
