//! `bpfeval-shared` for the RedBPF loaders.
//!
//! RedBPF needs Rust 1.59; `bpfeval-shared` (clap 4, yaml_serde 0.10, let-else) needs today's
//! Rust, so a RedBPF loader cannot link it. This crate gives the RedBPF loaders the same API
//! the Aya and libbpf-rs loaders use — `<usecase>::{Backend, LoadParams, run, abi}`,
//! `cli::XdpMode` — and `run` hands the backend to the real `bpfeval_shared::<usecase>::run`,
//! built with today's toolchain into a shared object (`lifecycle/`) that is embedded in the
//! loader and loaded into its process. So CLI, config, output, signals and the reload protocol
//! are the very same code for every library; only the backend is RedBPF's. One module per use
//! case, behind a feature of the same name: a loader embeds only its own use case's lifecycle.

pub mod cli;
#[allow(dead_code)] // with no use case enabled
mod lifecycle;
#[cfg(feature = "packetfilter")]
pub mod packetfilter;
#[cfg(feature = "loadbalancer")]
pub mod loadbalancer;
#[cfg(feature = "comtrace")]
pub mod comtrace;
#[cfg(feature = "jittergen")]
pub mod jittergen;
