//! `bpfeval-shared` for the RedBPF loaders.
//!
//! RedBPF needs Rust 1.59; `bpfeval-shared` (clap 4, serde_yaml 0.9, let-else) needs today's
//! Rust, so a RedBPF loader cannot link it. This crate gives the RedBPF loaders the same API
//! the Aya and libbpf-rs loaders use — `packetfilter::{Backend, LoadParams, run, abi}`,
//! `cli::XdpMode` — and `run` hands the backend to the real `bpfeval_shared::packetfilter::run`,
//! built with today's toolchain into a shared object (`lifecycle/`) that is embedded in the
//! loader and loaded into its process. So CLI, config, output, signals and the reload protocol
//! are the very same code for every library; only the backend is RedBPF's.

pub mod cli;
mod lifecycle;
pub mod packetfilter;
