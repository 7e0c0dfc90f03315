//! What the conformance runs of the use cases share: a mismatch, the report, and the loop that
//! runs every case and turns a case that could not run into a mismatch of its own.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::netns::{NetNs, VethConfig, VethPair};
use crate::process::Implementation;

/// One deviation from a use case's conformance vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub lib: String,
    pub case: String,
    /// The packet vector, or `-` / `(exit)` / `(final stats)` for checks around the packets.
    pub packet: String,
    pub problem: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} / {}: {}", self.lib, self.case, self.packet, self.problem)
    }
}

/// The outcome of a conformance run.
#[derive(Debug, Clone)]
pub struct ConformanceReport {
    pub cases: usize,
    pub packets: usize,
    pub elapsed: Duration,
    pub mismatches: Vec<Mismatch>,
}

impl ConformanceReport {
    /// One line per mismatch (empty: conformant).
    pub fn lines(&self) -> Vec<String> {
        self.mismatches.iter().map(ToString::to_string).collect()
    }
}

/// Runs `run_case` on every case; it reports what the implementation does wrong through
/// `fail(packet, problem)`, and returns an error only when the case itself cannot run.
pub fn run_cases<C>(
    imp: &Implementation,
    cases: &[C],
    packets: usize,
    name: impl Fn(&C) -> &str,
    mut run_case: impl FnMut(&C, &mut dyn FnMut(&str, String)) -> Result<()>,
) -> ConformanceReport {
    let started = Instant::now();
    let mut mismatches = Vec::new();
    for case in cases {
        let mut fail = |packet: &str, problem: String| {
            mismatches.push(Mismatch { lib: imp.lib.clone(), case: name(case).into(), packet: packet.into(), problem })
        };
        if let Err(e) = run_case(case, &mut fail) {
            fail("-", format!("the case did not run: {e:#}"));
        }
    }
    ConformanceReport { cases: cases.len(), packets, elapsed: started.elapsed(), mismatches }
}

/// A namespace with a veth whose `iface` end an implementation can attach to (the other end is
/// `peer`). The veth is silent (IPv6 off, no addresses), so only `BPF_PROG_TEST_RUN` moves the
/// counters of a program attached there.
pub fn silent_veth(prefix: &str, iface: &str, peer: &str) -> Result<(NetNs, VethPair)> {
    let ns = NetNs::new(prefix)?;
    let cfg = VethConfig { a_name: iface.into(), b_name: peer.into(), ..Default::default() };
    let veth = VethPair::new(&ns, &ns, &cfg)?;
    Ok((ns, veth))
}
