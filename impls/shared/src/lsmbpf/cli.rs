//! lsmbpf's command line. It attaches to an LSM hook, not to an interface, so the XDP flags of
//! [`crate::cli::Cli`] do not apply; `--config` is optional and the policy flags override it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::config::{Criterion, Mode};

#[derive(Debug, Clone, Parser)]
#[command(about = "lsmbpf: a BPF LSM on path_chroot that denies containerized processes a chroot to \"/\".")]
pub struct Args {
    /// YAML configuration file (`mode`, `containerized`); optional.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// enforce (deny with EPERM) or audit (allow and report); overrides the config file.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Which namespace, differing from the loader's, makes a process containerized; overrides
    /// the config file.
    #[arg(long, value_enum, value_name = "NS")]
    pub containerized: Option<Criterion>,

    /// Interval between `stats` lines in milliseconds; 0 prints stats only at exit.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,
}

impl Args {
    pub fn stats_interval(&self) -> Option<Duration> {
        (self.stats_interval_ms > 0).then(|| Duration::from_millis(self.stats_interval_ms))
    }
}
