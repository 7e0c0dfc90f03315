//! What the conformance runs of the use cases share: a mismatch, the report, and the loop that
//! runs every case and turns a case that could not run into a mismatch of its own.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bpf::{self, Prog, TestRun};
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

/// Which frames the kernel itself runs programs of one type on, asked of a constant program of
/// that type. `BPF_PROG_TEST_RUN` refuses frames shorter than an Ethernet header (EINVAL), and
/// frames over about a page by kernel and program type: on x86-64 6.18 XDP runs up to 3,520
/// bytes in one buffer and beyond as multi-buffer (since 5.18) up to MAX_SKB_FRAGS more pages,
/// TC none beyond 3,712 bytes (`bpf::tests::test_run_size_limits`); 6.18 also refuses TC runs
/// on an IPv4/IPv6 frame whose IP header is cut off (EINVAL). A vector the kernel refuses must
/// be refused for the implementation's program too: the same error, no counter.
pub struct KernelLimits {
    probe: Prog,
}

impl KernelLimits {
    /// For programs of `prog_type` (`bpf::BPF_PROG_TYPE_*`).
    pub fn new(prog_type: u32) -> Result<KernelLimits> {
        Ok(KernelLimits { probe: bpf::load_constant(prog_type, "hb_size_probe", 0)? })
    }

    /// `None` when the kernel runs a program on `frame`, else the errno it refuses it with
    /// (5.10 runs frames under 14 bytes, newer kernels refuse them).
    pub fn refusal(&self, frame: &[u8]) -> Result<Option<i32>> {
        let run = self.probe.test_run(&TestRun { data_in: frame, repeat: 1, ..Default::default() });
        let refused = match run {
            Ok(_) => None,
            Err(e) => Some(errno(&e).ok_or(e)?),
        };
        Ok(refused)
    }
}

/// A vector's `kernel_refuses` is set exactly for frames shorter than an Ethernet header (the
/// kernels that refuse any frame refuse those; [`KernelLimits`] asks about the rest).
pub fn check_kernel_refuses(kernel_refuses: bool, frame: &[u8]) -> Result<()> {
    anyhow::ensure!(
        kernel_refuses == (frame.len() < bpf::ETH_HLEN),
        "`kernel_refuses` must be set exactly for frames shorter than 14 bytes"
    );
    Ok(())
}

/// The errno of a failed system call in `err`'s chain.
pub fn errno(err: &anyhow::Error) -> Option<i32> {
    err.chain().find_map(|e| e.downcast_ref::<std::io::Error>().and_then(std::io::Error::raw_os_error))
}

/// What is wrong with an implementation's run on a frame the kernel refuses with `refused`
/// (see [`KernelLimits`]), as (expected, got): it must be refused alike, and `moved` (the
/// counters that moved, if any) must be `None`.
pub fn refusal_problems<T>(run: &Result<T>, refused: i32, len: usize, moved: Option<String>) -> Vec<(String, String)> {
    let expected = || format!("the kernel's refusal (errno {refused}) of the {len}-byte frame");
    let mut problems = Vec::new();
    match run {
        Err(e) if errno(e) == Some(refused) => {}
        Err(e) => problems.push((expected(), format!("{e:#}"))),
        Ok(_) => problems.push((expected(), "a run".into())),
    }
    if let Some(moved) = moved {
        problems.push(("no counter to move on a refused frame".into(), moved));
    }
    problems
}
