//! loadbalancer: XDP layer-4 load balancer with direct server return (IPv4 and IPv6 TCP).
//!
//! `config` reads the thesis' `config.yml` (and its extensions); `neigh` resolves backends
//! given by IP; `maglev` computes the consistent-hashing table; `abi` is the layout and flow
//! hash the kernel programs of every library agree on; `run` is the loader lifecycle, generic
//! over a library's [`Backend`].

pub mod abi;
pub mod config;
pub mod maglev;
pub mod neigh;
mod run;

pub use config::{Config, Server, ServerAddr, ServerSpec};
pub use run::{run, Backend, Event};
