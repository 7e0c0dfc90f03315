//! lsmbpf: a BPF LSM program on `path_chroot` that stops containerized processes from chroot-ing
//! to "/" (the thesis' use case).
//!
//! A process is *containerized* when its PID namespace differs from the loader's (the thesis'
//! definition), or, with `containerized: mnt`, its mount namespace. Such a process's chroot to
//! its own root directory ("/") gets -EPERM in `enforce` mode and is allowed but reported in
//! `audit` mode. Everything else is allowed, and a denial by an earlier program on the hook is
//! passed on unchanged.
//!
//! `cli` and `config` are the input, `abi` the layout the kernel programs of every library
//! agree on, `run` the loader lifecycle, generic over a library's [`Backend`].

pub mod abi;
pub mod cli;
pub mod config;
mod run;

pub use cli::Args;
pub use config::{Config, Criterion, Mode};
pub use run::{run, Backend, Event};
