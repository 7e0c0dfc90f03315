//! comtrace: a TCP connection tracer like tcplife, on the tracepoint `sock:inet_sock_set_state`.
//! One record per TCP connection when it closes: owner PID and command, local and remote
//! address and port, payload bytes received and sent, lifetime.
//!
//! `cli` is the command line (comtrace has no interface and no config file, so it has its own
//! flags rather than the XDP ones of [`crate::cli::Cli`]); `abi` is the layout the kernel
//! programs of every library agree on; `table` the thesis' text table; `run` the loader
//! lifecycle, generic over a library's [`Backend`].

pub mod abi;
pub mod cli;
mod run;
pub mod table;

pub use cli::Args;
pub use run::{run, Backend, Conn, LoadParams, PortList};
