//! comtrace with RedBPF: the library-specific part (settings, load, attach, map access, ring
//! buffer). CLI and output are `bpfeval_shared::comtrace::run`, reached through
//! `bpfeval_shared_redbpf` (RedBPF builds with Rust 1.59 only; see that crate).
//!
//! What RedBPF 2.3.0 lacks here, and how it is filled (README.md has the full account):
//! - tracepoints: its loader skipped `tracepoint/` sections, failed to attach without debugfs
//!   and never detached: patches 0004 and 0005;
//! - no CO-RE, and bindings from the 6.1 headers the program was built with: the loader looks
//!   the running kernel's offsets up with RedBPF's BTF parser (patch 0007 makes it read
//!   today's BTF and answer such questions) and hands them over in `settings`;
//! - no way to set globals before load: the filters go into `settings` as well;
//! - no ring buffer API: RedBPF creates the map from the object, libbpf's consumer from
//!   bpf-sys (RedBPF's libbpf binding) reads it, on the map's fd (patch 0003).

use std::ffi::c_void;
use std::io;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _, Result};
use bpfeval_shared_redbpf::comtrace::abi::{self, COUNTER_COUNT};
use bpfeval_shared_redbpf::comtrace::{Backend, LoadParams, PortList};
use comtrace_redbpf_types as types;
use redbpf::btf::KernelBtf;
use redbpf::{Array, Map, Module, PerCpuArray};
use redbpf_ext::RingBuffer;
use tracing_subscriber::filter::LevelFilter;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () =
    assert!(types::COUNTER_COUNT == abi::COUNTER_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::COUNTER_UNTRACKED == abi::COUNTER_UNTRACKED && types::MAX_PORTS == abi::MAX_PORTS);
const _: () = assert!(types::MAX_SOCKETS == abi::MAX_SOCKETS && types::EVENTS_BYTES == abi::EVENTS_BYTES);
const _: () = assert!(
    std::mem::size_of::<types::Event>() == abi::EVENT_SIZE && std::mem::size_of::<types::Ident>() == abi::IDENT_SIZE
);

const PROGRAM: &str = "comtrace";

/// The object `cargo bpf build` made of `kernel/` (see build.rs).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/comtrace.elf"));

/// Field order is drop order: the ring buffer consumer, then the module, whose tracepoint
/// program closes its perf event (detaching it) when dropped. RedBPF has no bpf_link; the perf
/// event fd does the same: the kernel detaches when it closes, also on a crash.
struct RedbpfTracer {
    events: RingBuffer,
    module: Module,
}

/// RedBPF's errors are bare enum values; the details went to `tracing` (stderr).
fn rb<T>(r: redbpf::Result<T>, what: &str) -> Result<T> {
    r.map_err(|e| anyhow!("{}: {:?} (RedBPF's log above has the details)", what, e))
}

impl RedbpfTracer {
    fn load(params: &LoadParams) -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK) here: RedBPF raises it only after the kernel said EPERM,
        // which kernels with memcg accounting of BPF memory (>= 5.11) do not.
        let settings = types::Settings {
            target_pid: params.target_pid,
            filter_lports: params.filter_local_ports.into(),
            filter_rports: params.filter_remote_ports.into(),
            _pad: [0; 2],
            offsets: kernel_offsets()?,
        };
        // Parses the object and creates its maps; the program is loaded below, after the
        // settings are in place (as the other libraries set their globals before load).
        let mut module = rb(Module::parse(OBJECT), "creating the maps")?;
        let array = rb(Array::<types::Settings>::new(map(&module, "settings")?), "settings")?;
        rb(array.set(0, settings), "settings: update")?;
        let (version, license) = (module.version, module.license.clone());
        for program in module.programs.iter_mut() {
            rb(program.load(version, license.clone()), "loading the BPF program (verifier)")?;
        }
        let events = RingBuffer::new(map(&module, "events")?)?;
        Ok(Self { events, module })
    }

    fn map(&self, name: &str) -> Result<&Map> {
        map(&self.module, name)
    }
}

fn map<'m>(module: &'m Module, name: &str) -> Result<&'m Map> {
    module.map(name).with_context(|| format!("no map `{}` in the object", name))
}

/// Where the running kernel keeps what the program reads, from its BTF: the others get this
/// from CO-RE (libbpf-rs) or from bindings of the build machine's BTF (Aya). Also checks the
/// program's hand-declared tracepoint record against the kernel's.
fn kernel_offsets() -> Result<types::Offsets> {
    let btf = rb(KernelBtf::from_sys_fs(), "reading the kernel BTF (/sys/kernel/btf/vmlinux)")?;
    let member = |strukt: &str, member: &str| rb(btf.member_offset(strukt, member), "kernel BTF");
    for (field, offset) in types::RECORD_LAYOUT {
        let kernel = member("trace_event_raw_inet_sock_set_state", field)?;
        ensure!(
            kernel == offset,
            "sock:inet_sock_set_state: `{}` is at {} in this kernel, the program expects {}",
            field,
            kernel,
            offset
        );
    }
    let sock_done = rb(btf.enum_value("sock_flags", "SOCK_DONE"), "kernel BTF")?;
    Ok(types::Offsets {
        sk_flags: member("sock", "__sk_common")? + member("sock_common", "skc_flags")?,
        sock_done: u32::try_from(sock_done).context("SOCK_DONE out of range")?,
        bytes_received: member("tcp_sock", "bytes_received")?,
        bytes_sent: member("tcp_sock", "bytes_sent")?,
        bytes_retrans: member("tcp_sock", "bytes_retrans")?,
        _pad: 0,
    })
}

/// Per-CPU u64 counter summed over all possible CPUs.
fn percpu_sum(map: &Map, index: u32) -> Result<u64> {
    let values = rb(PerCpuArray::<u64>::new(map), &map.name)?.get(index);
    let values = values.with_context(|| format!("{}[{}]: lookup failed", map.name, index))?;
    Ok(values.iter().sum())
}

impl Backend for RedbpfTracer {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let map = match list {
            PortList::Local => self.map("lports")?,
            PortList::Remote => self.map("rports")?,
        };
        // RedBPF's `HashMap::set` drops the kernel's answer: bpf-sys, on the map's fd.
        let value = 1u8;
        // SAFETY: key and value have the map's key and value sizes.
        let ret = unsafe {
            bpf_sys::bpf_map_update_elem(
                map.as_raw_fd(),
                &port as *const u16 as *const c_void,
                &value as *const u8 as *const c_void,
                0,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("{}: update", map.name));
        }
        Ok(())
    }

    fn attach(&mut self) -> Result<()> {
        let program = self.module.trace_point_mut(PROGRAM).context("no program `comtrace`")?;
        rb(program.attach_trace_point("sock", "inet_sock_set_state"), "attaching the tracepoint")
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let map = self.map("counters")?;
        (0..COUNTER_COUNT).map(|i| percpu_sum(map, i)).collect()
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.events.poll(timeout, sink)
    }
}

fn main() {
    // RedBPF's errors carry no detail; it logs the detail (verifier log, errno) through tracing.
    tracing_subscriber::fmt().with_writer(io::stderr).with_max_level(LevelFilter::ERROR).init();
    bpfeval_shared_redbpf::comtrace::run("redbpf", RedbpfTracer::load)
}
