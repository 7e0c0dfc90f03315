//! `harness soak <usecase>... --minutes N [--libs a,b]`: each library's implementation of each
//! use case in turn under sustained load (see `harness::soak`). Not part of `make test`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use harness::process::{available_libs, Implementation};
use harness::soak;

#[derive(Debug, Args)]
pub struct Options {
    /// Use cases: loadbalancer, comtrace.
    #[arg(required = true)]
    usecases: Vec<String>,
    /// Minutes per implementation (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Libraries (default: every one built for the use case).
    #[arg(long, value_delimiter = ',')]
    libs: Vec<String>,
    /// Seconds between RSS samples.
    #[arg(long, default_value_t = 5)]
    sample_s: u64,
    /// Where `<usecase>-<lib>.csv` and `.json` go.
    #[arg(long, default_value = "reports/soak")]
    out: PathBuf,
}

pub fn run(opts: &Options) -> Result<bool> {
    for u in &opts.usecases {
        if !soak::USECASES.contains(&u.as_str()) {
            bail!("no soak for `{u}`: soaks exist for {}", soak::USECASES.join(", "));
        }
    }
    if opts.minutes.is_nan() || opts.minutes <= 0.0 || opts.sample_s == 0 {
        bail!("--minutes and --sample-s must be positive");
    }
    harness::bpf::check_privileges()?;
    let stop = soak::stop_flag()?;
    let mut passed = true;
    for usecase in &opts.usecases {
        let libs = if opts.libs.is_empty() { available_libs(usecase) } else { opts.libs.clone() };
        if libs.is_empty() {
            bail!("no {usecase} implementation is built: run `make build`");
        }
        for lib in libs {
            let imp = Implementation::new(usecase, &lib)?;
            println!("soak: {usecase}-{lib} for {} min ...", opts.minutes);
            let summary = soak::run(&imp, opts.minutes, Duration::from_secs(opts.sample_s), &opts.out, &stop)?;
            println!("{}", soak::describe(&summary));
            passed &= summary.passed;
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                println!("soak: interrupted");
                return Ok(false);
            }
        }
    }
    println!("soak: results in {}", Path::new(&opts.out).display());
    Ok(passed)
}
