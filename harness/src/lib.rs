//! The bpf-eval test bed: library-neutral tools to run, check and measure every implementation
//! the same way.
//!
//! * [`bpf`]: a running implementation's BPF programs and maps through raw `bpf(2)` syscalls
//!   (find by name, info, `BPF_PROG_TEST_RUN`, map lookups).
//! * [`netns`]: network namespaces and veth pairs that clean up after themselves.
//! * [`process`]: implementation binaries, and a running one's JSON lines, signals and exit.
//! * [`frames`]: Ethernet frames from a structured spec (pnet builders).
//! * [`scenario`]: scenario files (`scenarios/packetfilter/vectors.yaml`) and the reference
//!   model of the packetfilter policy.
//! * [`traffic`]: raw frames on a veth inside a namespace: send, and capture what arrives.
//! * [`libs`]: the libraries of the comparison and what the harness knows about each.
//! * [`vm`]: the VM guest runner (Debian 6.1 under qemu TCG) for what the host kernel lacks.
//! * [`soak`]: an implementation under sustained load for minutes: loader RSS, events, errors.
//! * [`objects`]: every implementation's built kernel objects, and what their disassembly calls.
//! * [`usecases`]: one folder per use case, `usecases/<usecase>/`: its test bed (`bed.rs`: e.g.
//!   packetfilter's verdict counters, a running filter, the conformance run), which the tests,
//!   the guest binaries and the bench share, and its bench (`mod.rs`, the [`usecases::UseCase`]).
//!
//! The `harness` command line builds on these with [`measure`] and [`reference`].

pub mod bpf;
pub mod cleanup;
pub mod conformance;
pub mod fingerprint;
pub mod frames;
pub mod kernels;
pub mod libs;
pub mod lock;
pub mod measure;
pub mod netns;
pub mod objects;
pub mod process;
pub mod reference;
pub mod scenario;
pub mod soak;
pub mod throughput;
pub mod traffic;
pub mod usecases;
pub mod vm;

/// Bad input from the user (an argument, a file, a field of it): the `harness` command exits 2
/// with this message, after starting nothing.
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// `return Err(bad_input!(...))`: a [`BadInput`] error with a formatted message.
#[macro_export]
macro_rules! bad_input {
    ($($t:tt)*) => { anyhow::Error::new($crate::BadInput(format!($($t)*))) };
}
