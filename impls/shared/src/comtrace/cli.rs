//! comtrace's command line: the thesis' `-d SECONDS` and `-o FILE`, tcplife's filters, and the
//! contract's output flags. comtrace attaches to a tracepoint, not to an interface, and has no
//! config file, so the XDP flags of [`crate::cli::Cli`] do not apply to it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::abi::MAX_PORTS;
use crate::InputError;

#[derive(Debug, Clone, Parser)]
#[command(about = "comtrace: one line per TCP connection when it closes (like tcplife), IPv4 and IPv6.")]
pub struct Args {
    /// Only connections owned by this process (thread group id).
    #[arg(long, short = 'p', value_name = "PID", value_parser = clap::value_parser!(u32).range(1..))]
    pub pid: Option<u32>,

    /// Only connections with one of these local ports (comma-separated).
    #[arg(long = "localport", short = 'L', value_name = "PORTS", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..))]
    pub local_ports: Vec<u16>,

    /// Only connections with one of these remote ports (comma-separated).
    #[arg(long = "remoteport", short = 'D', value_name = "PORTS", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..))]
    pub remote_ports: Vec<u16>,

    /// Stop after this many seconds (as on SIGINT); without it, run until signalled.
    #[arg(long, short = 'd', value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: Option<u64>,

    /// Also write the table to this file (created or truncated).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// What goes to stdout: the contract's JSON lines, or the thesis' table.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// Interval between `stats` lines in milliseconds; 0 prints stats only at exit.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub stats_interval_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON lines: `ready`, one `conn` per connection, `stats`, `exit`.
    Json,
    /// The table `PID COMM LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT RX_BYTES TX_BYTES MS`.
    Table,
}

impl Args {
    pub fn stats_interval(&self) -> Option<Duration> {
        (self.stats_interval_ms > 0).then(|| Duration::from_millis(self.stats_interval_ms))
    }

    pub fn duration(&self) -> Option<Duration> {
        self.duration.map(Duration::from_secs)
    }

    /// What clap cannot check: the size of the port lists.
    pub fn validate(&self) -> Result<(), InputError> {
        for (flag, ports) in [("--localport", &self.local_ports), ("--remoteport", &self.remote_ports)] {
            if ports.len() > MAX_PORTS as usize {
                return Err(InputError::cli(flag, format!("at most {MAX_PORTS} ports, got {}", ports.len())));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("comtrace").chain(args.iter().copied()))
    }

    #[test]
    fn thesis_and_tcplife_flags() {
        let a = parse(&["-d", "5", "-o", "out.txt", "-p", "42", "-L", "80,443", "-D", "22"]).unwrap();
        assert_eq!(a.duration(), Some(Duration::from_secs(5)));
        assert_eq!(a.output.as_deref(), Some(std::path::Path::new("out.txt")));
        assert_eq!((a.pid, a.local_ports.as_slice(), a.remote_ports.as_slice()), (Some(42), &[80, 443][..], &[22][..]));
        assert_eq!(a.format, Format::Json);
        a.validate().unwrap();
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [&["-p", "0"][..], &["-p", "x"], &["-L", "70000"], &["-D", "0"], &["-d", "0"], &["--iface", "lo"]] {
            let e = parse(bad).unwrap_err();
            // clap exits with 2 for usage errors, as the contract wants for bad input.
            assert_eq!(e.exit_code(), crate::error::EXIT_BAD_INPUT, "{bad:?}");
        }
        let many: Vec<String> = (1..=MAX_PORTS + 1).map(|p| p.to_string()).collect();
        let a = parse(&["-L", &many.join(",")]).unwrap();
        assert!(a.validate().unwrap_err().to_string().contains("--localport"));
    }
}
