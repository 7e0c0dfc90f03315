//! The comtrace loader lifecycle, shared by every library:
//! validate -> load (filters set) -> fill the port lists -> attach -> `ready` -> serve (one
//! record per closed connection, periodic stats) until SIGINT/SIGTERM or `-d` -> final stats
//! -> detach (by dropping the backend).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use super::abi;
use super::cli::{Args, Format};
use super::table;
use crate::output;
use crate::signals::{Request, Signals};
use crate::InputError;

/// What a library provides: its own way to load, attach, and reach the maps in `abi`.
/// Dropping the backend must detach the program.
pub trait Backend {
    /// Adds one port to `lports` or `rports`.
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()>;
    /// Attaches the program to `sock:inet_sock_set_state`.
    fn attach(&mut self) -> Result<()>;
    /// The `counters`, summed over CPUs, in `abi` index order.
    fn counters(&self) -> Result<Vec<u64>>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortList {
    /// `lports`, the `-L` list.
    Local,
    /// `rports`, the `-D` list.
    Remote,
}

/// The read-only globals, set before the program is loaded.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadParams {
    /// Report only connections of this PID; 0 = all.
    pub target_pid: u32,
    /// Report only connections whose local port is in `lports`.
    pub filter_local_ports: bool,
    /// Report only connections whose remote port is in `rports`.
    pub filter_remote_ports: bool,
}

/// Runs the comtrace contract with one library's backend and exits the process.
pub fn run<B: Backend>(lib: &str, load: impl FnOnce(&LoadParams) -> Result<B>) -> ! {
    let args = Args::parse();
    match serve(lib, &args, load) {
        Ok(()) => std::process::exit(0),
        Err(e) => crate::error::exit_with(e),
    }
}

fn serve<B: Backend>(lib: &str, args: &Args, load: impl FnOnce(&LoadParams) -> Result<B>) -> Result<()> {
    let started = Instant::now();
    // Before anything is attached, so that no signal can kill us with a program attached.
    let signals = Signals::install().context("installing signal handlers")?;

    // All input is validated before anything is loaded: bad input leaves nothing behind.
    args.validate()?;
    let mut file = match &args.output {
        Some(path) => Some(BufWriter::new(
            File::create(path).map_err(|e| InputError::in_file(path, "--output", format!("cannot create: {e}")))?,
        )),
        None => None,
    };

    let params = LoadParams {
        target_pid: args.pid.unwrap_or(0),
        filter_local_ports: !args.local_ports.is_empty(),
        filter_remote_ports: !args.remote_ports.is_empty(),
    };
    let mut backend = load(&params).context("loading the BPF program")?;
    for (list, ports) in [(PortList::Local, &args.local_ports), (PortList::Remote, &args.remote_ports)] {
        for &port in ports {
            backend.allow_port(list, port).with_context(|| format!("adding port {port} to the {list:?} list"))?;
        }
    }
    backend.attach().context("attaching to the tracepoint sock:inet_sock_set_state")?;

    let mut tracer = Tracer { format: args.format, file: file.take(), connections: 0, write_error: None };
    tracer.header()?;
    if args.format == Format::Json {
        output::emit(
            "ready",
            json!({
                "usecase": "comtrace",
                "lib": lib,
                "pid": std::process::id(),
                "load_ms": started.elapsed().as_secs_f64() * 1e3,
                "filters": { "pid": args.pid, "local_ports": args.local_ports, "remote_ports": args.remote_ports },
            }),
        );
    }

    let deadline = args.duration().map(|d| Instant::now() + d);
    let mut next_stats = args.stats_interval().map(|i| Instant::now() + i);
    loop {
        // SIGHUP reloads a configuration; comtrace has none, so it changes nothing.
        if signals.take() == Some(Request::Stop) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let wait = deadline.map_or(POLL, |d| d.saturating_duration_since(Instant::now()).min(POLL));
        backend.poll_events(wait, &mut |raw| tracer.record(raw))?;
        if let Some(e) = tracer.write_error.take() {
            return Err(e);
        }
        if let (Some(due), Some(interval)) = (next_stats, args.stats_interval()) {
            if Instant::now() >= due {
                tracer.stats(&backend)?;
                next_stats = Some(due + interval);
            }
        }
    }
    // Records already in the ring buffer belong to connections closed while we were attached.
    backend.poll_events(Duration::ZERO, &mut |raw| tracer.record(raw))?;
    tracer.stats(&backend)?;
    drop(backend);
    if let Some(e) = tracer.write_error.take() {
        return Err(e);
    }
    if args.format == Format::Json {
        output::emit("exit", json!({ "detached": true }));
    }
    Ok(())
}

/// Longest wait for records before signals and stats are looked at again.
const POLL: Duration = Duration::from_millis(100);

struct Tracer {
    format: Format,
    file: Option<BufWriter<File>>,
    connections: u64,
    /// The first failure to write the table file; ends the run after the current poll.
    write_error: Option<anyhow::Error>,
}

impl Tracer {
    fn header(&mut self) -> Result<()> {
        if self.format == Format::Table {
            table_line(table::HEADER);
        }
        if let Some(f) = &mut self.file {
            writeln!(f, "{}", table::HEADER).and_then(|()| f.flush()).context("writing the table file")?;
        }
        Ok(())
    }

    fn record(&mut self, raw: &[u8]) {
        let Some(conn) = Conn::parse(raw) else {
            output::emit("bad_event", json!({ "len": raw.len() }));
            return;
        };
        self.connections += 1;
        match self.format {
            Format::Json => output::emit("conn", conn.to_json()),
            Format::Table => table_line(&table::row(&conn)),
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = writeln!(f, "{}", table::row(&conn)).and_then(|()| f.flush()) {
                self.write_error.get_or_insert(anyhow::Error::new(e).context("writing the table file"));
            }
        }
    }

    fn stats(&self, backend: &impl Backend) -> Result<()> {
        let counters = backend.counters()?;
        let mut line = json!({ "connections": self.connections });
        for (name, value) in abi::COUNTER_NAMES.iter().zip(&counters) {
            line[*name] = json!(value);
        }
        match self.format {
            Format::Json => output::emit("stats", line),
            // The table owns stdout; the counters are diagnostics then.
            Format::Table => eprintln!("stats: {line}"),
        }
        Ok(())
    }
}

fn table_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // As in `output::emit`: a closed stdout must not take the loader down while attached.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A decoded ring buffer record (layout in `abi::EVENT_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// Birth and close, `CLOCK_MONOTONIC` nanoseconds (the clock of `bpf_ktime_get_ns`).
    pub start_ns: u64,
    pub end_ns: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub pid: u32,
    pub comm: String,
    pub laddr: IpAddr,
    pub lport: u16,
    pub raddr: IpAddr,
    pub rport: u16,
}

impl Conn {
    pub fn parse(raw: &[u8]) -> Option<Conn> {
        if raw.len() < abi::EVENT_SIZE {
            return None;
        }
        let u64_at = |o: usize| u64::from_ne_bytes(raw[o..o + 8].try_into().unwrap());
        let u16_at = |o: usize| u16::from_ne_bytes(raw[o..o + 2].try_into().unwrap());
        let addr = |o: usize| -> Option<IpAddr> {
            let b: [u8; 16] = raw[o..o + 16].try_into().unwrap();
            match raw[40] {
                4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
                6 => Some(Ipv6Addr::from(b).into()),
                _ => None,
            }
        };
        let comm = &raw[80..80 + abi::TASK_COMM_LEN];
        let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())];
        Some(Conn {
            start_ns: u64_at(0),
            end_ns: u64_at(8),
            rx_bytes: u64_at(16),
            tx_bytes: u64_at(24),
            pid: u32::from_ne_bytes(raw[32..36].try_into().unwrap()),
            lport: u16_at(36),
            rport: u16_at(38),
            laddr: addr(48)?,
            raddr: addr(64)?,
            comm: String::from_utf8_lossy(comm).into_owned(),
        })
    }

    /// Lifetime in milliseconds.
    pub fn ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }

    /// The fields of a `conn` line.
    pub fn to_json(&self) -> Value {
        json!({
            "pid": self.pid,
            "comm": self.comm,
            "laddr": self.laddr.to_string(),
            "lport": self.lport,
            "raddr": self.raddr.to_string(),
            "rport": self.rport,
            "rx_bytes": self.rx_bytes,
            "tx_bytes": self.tx_bytes,
            "ms": self.ms(),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
        })
    }

    /// Reads a `conn` line back (the harness and the tests use this).
    pub fn from_json(v: &Value) -> Option<Conn> {
        let u = |k: &str| v[k].as_u64();
        Some(Conn {
            start_ns: u("start_ns")?,
            end_ns: u("end_ns")?,
            rx_bytes: u("rx_bytes")?,
            tx_bytes: u("tx_bytes")?,
            pid: u32::try_from(u("pid")?).ok()?,
            comm: v["comm"].as_str()?.to_string(),
            laddr: v["laddr"].as_str()?.parse().ok()?,
            lport: u16::try_from(u("lport")?).ok()?,
            raddr: v["raddr"].as_str()?.parse().ok()?,
            rport: u16::try_from(u("rport")?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_record_and_json_round_trip() {
        let mut raw = [0u8; abi::EVENT_SIZE];
        raw[0..8].copy_from_slice(&1_000u64.to_ne_bytes());
        raw[8..16].copy_from_slice(&2_501_000u64.to_ne_bytes());
        raw[16..24].copy_from_slice(&5000u64.to_ne_bytes());
        raw[24..32].copy_from_slice(&1234u64.to_ne_bytes());
        raw[32..36].copy_from_slice(&77u32.to_ne_bytes());
        raw[36..38].copy_from_slice(&40000u16.to_ne_bytes());
        raw[38..40].copy_from_slice(&8080u16.to_ne_bytes());
        raw[40] = 6;
        raw[48..64].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        raw[64..80].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        raw[80..84].copy_from_slice(b"curl");
        let c = Conn::parse(&raw).unwrap();
        assert_eq!((c.pid, c.comm.as_str(), c.lport, c.rport), (77, "curl", 40000, 8080));
        assert_eq!(c.laddr.to_string(), "2001:db8::1");
        assert_eq!(c.raddr, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(c.ms(), 2.5);
        assert_eq!(Conn::from_json(&c.to_json()), Some(c));

        raw[40] = 4;
        raw[48..52].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(Conn::parse(&raw).unwrap().laddr.to_string(), "10.0.0.1");
        raw[40] = 9;
        assert_eq!(Conn::parse(&raw), None);
        assert_eq!(Conn::parse(&raw[..50]), None);
    }
}
