//! comtrace with Aya: the library-specific part (set the filters, load, attach, map access,
//! ring buffer). CLI and output are `bpfeval_shared::comtrace::run`.

use std::os::fd::AsFd as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{HashMap, Map, MapData, PerCpuArray, RingBuf};
use aya::programs::trace_point::TracePointLink;
use aya::programs::TracePoint;
use aya::{Ebpf, EbpfLoader};
use bpfeval_shared::comtrace::{abi, Backend, LoadParams, PortList};
use comtrace_aya_types as types;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () = assert!(types::COUNTER_COUNT == abi::COUNTER_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::COUNTER_UNTRACKED == abi::COUNTER_UNTRACKED && types::MAX_PORTS == abi::MAX_PORTS);
const _: () = assert!(types::MAX_SOCKETS == abi::MAX_SOCKETS && types::EVENTS_BYTES == abi::EVENTS_BYTES);
const _: () = assert!(size_of::<types::Event>() == abi::EVENT_SIZE && size_of::<types::Ident>() == abi::IDENT_SIZE);

const PROGRAM: &str = "comtrace";

struct AyaTracer {
    // Fields drop in declaration order: the link first, so the program is detached before
    // anything else goes away. Dropping a `TracePointLink` closes its perf event (and link).
    link: Option<TracePointLink>,
    lports: HashMap<MapData, u16, u8>,
    rports: HashMap<MapData, u16, u8>,
    counters: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    ebpf: Ebpf,
}

impl AyaTracer {
    fn load(params: &LoadParams) -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK): the kernel charges BPF memory to the memory cgroup, and
        // aya only tries to raise the limit itself on kernels older than 5.11.
        //
        // The filters are read-only globals: written into .rodata before load, constants for
        // the verifier afterwards.
        let mut ebpf = EbpfLoader::new()
            .override_global("TARGET_PID", &params.target_pid, true)
            .override_global("FILTER_LPORTS", &u8::from(params.filter_local_ports), true)
            .override_global("FILTER_RPORTS", &u8::from(params.filter_remote_ports), true)
            .load(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/comtrace")))?;
        let program: &mut TracePoint =
            ebpf.program_mut(PROGRAM).context("no program `comtrace` in the object")?.try_into()?;
        program.load()?;
        // Typed handles owning their maps: no name lookup per access. The loaded program keeps
        // its own references to the maps (births and idents are only the program's).
        let mut take = |name: &str| -> Result<Map> {
            ebpf.take_map(name).with_context(|| format!("no map `{name}` in the object"))
        };
        Ok(Self {
            link: None,
            lports: take("lports")?.try_into()?,
            rports: take("rports")?.try_into()?,
            counters: take("counters")?.try_into()?,
            events: take("events")?.try_into()?,
            ebpf,
        })
    }
}

impl Backend for AyaTracer {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let map = match list {
            PortList::Local => &mut self.lports,
            PortList::Remote => &mut self.rports,
        };
        Ok(map.insert(port, 1, 0)?)
    }

    fn attach(&mut self) -> Result<()> {
        let program: &mut TracePoint = self.ebpf.program_mut(PROGRAM).context("program vanished")?.try_into()?;
        let id = program.attach("sock", "inet_sock_set_state")?;
        // Own the link rather than leave it in the program's link table, so detaching on drop
        // is explicit in this struct (see the field order above).
        self.link = Some(program.take_link(id)?);
        Ok(())
    }

    fn counters(&self) -> Result<Vec<u64>> {
        (0..abi::COUNTER_COUNT).map(|i| Ok(self.counters.get(&i, 0)?.iter().sum())).collect()
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        // aya's RingBuf does not wait itself; its map fd is pollable.
        bpfeval_shared::wait::readable(self.events.as_fd(), timeout).context("waiting on the ring buffer")?;
        // Each record in place: released when the item is dropped, after the sink (see PollSink).
        while let Some(record) = self.events.next() {
            sink(&record);
        }
        Ok(())
    }
}

fn main() {
    bpfeval_shared::comtrace::run("aya", AyaTracer::load)
}
