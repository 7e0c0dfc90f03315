//! The command line every implementation accepts (see `impls/README.md`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::InputError;

#[derive(Debug, Clone, Parser)]
#[command(about = "A bpf-eval implementation; every library's build of a use case takes the same flags.")]
pub struct Cli {
    /// YAML configuration file (the thesis' config.yml format works unchanged).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Network interface to attach to; overrides the config file's interface.
    #[arg(long, short = 'i', value_name = "IF")]
    pub iface: Option<String>,

    /// Stream per-packet verdicts as JSON lines through the library's ring buffer.
    /// `--log-packets` logs every packet, `--log-packets=N` about one in N.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "1")]
    pub log_packets: Option<u32>,

    /// Interval between `stats` lines in milliseconds; 0 prints stats only at exit.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,

    /// XDP attach mode. `native` is the driver mode (veth supports it), `skb` the generic one.
    #[arg(long, value_enum, default_value_t = XdpMode::Native)]
    pub xdp_mode: XdpMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpMode {
    Native,
    Skb,
}

impl XdpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Skb => "skb",
        }
    }
}

impl Cli {
    pub fn stats_interval(&self) -> Option<Duration> {
        (self.stats_interval_ms > 0).then(|| Duration::from_millis(self.stats_interval_ms))
    }

    /// Sampling period for `--log-packets` (0 = off), validated.
    pub fn log_every(&self) -> Result<u32, InputError> {
        match self.log_packets {
            None => Ok(0),
            Some(0) => Err(InputError::cli("--log-packets", "the sampling period must be at least 1")),
            Some(n) => Ok(n),
        }
    }
}

/// Resolves an interface name to its index, or explains why it cannot be used.
pub fn ifindex(name: &str, field: InputErrorSource<'_>) -> Result<u32, InputError> {
    let bad = |reason: String| match field {
        InputErrorSource::Cli => InputError::cli("--iface", reason),
        InputErrorSource::File(file, path) => InputError::in_file(file, path, reason),
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0']) {
        return Err(bad(format!("`{name}` is not a valid interface name")));
    }
    let c = std::ffi::CString::new(name).expect("checked for NUL above");
    // SAFETY: `c` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(bad(format!("no interface named `{name}` in this network namespace"))),
        idx => Ok(idx),
    }
}

/// Where an interface name came from, for the error message.
#[derive(Debug, Clone, Copy)]
pub enum InputErrorSource<'a> {
    Cli,
    File(&'a std::path::Path, &'a str),
}
