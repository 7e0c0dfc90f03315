//! loadbalancer with Aya: the library-specific part (load, map access, attach, ring buffer).
//! CLI, config, Maglev table, reload and output are `bpfeval_shared::loadbalancer::run`.

use std::os::fd::AsFd as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuValues, RingBuf};
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::util::nr_cpus;
use aya::{Ebpf, EbpfLoader};
use bpfeval_shared::cli::XdpMode as Mode;
use bpfeval_shared::loadbalancer::{abi, Backend};
use loadbalancer_aya_types as types;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () =
    assert!(types::VERDICT_COUNT == abi::VERDICT_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::TABLE_SIZE == abi::TABLE_SIZE && types::MAX_BACKENDS == abi::MAX_BACKENDS);
const _: () = assert!(types::NO_BACKEND == abi::NO_BACKEND && types::FLOW_HASH_SEED == abi::FLOW_HASH_SEED);
const _: () = assert!(size_of::<types::Flow>() == abi::FLOW_SIZE && size_of::<types::Event>() == abi::EVENT_SIZE);
const _: () = assert!(size_of::<types::Backend>() == abi::BACKEND_SIZE);

const PROGRAM: &str = "loadbalancer";

struct AyaBalancer {
    // Fields drop in declaration order: the link first, so the program is detached before
    // anything else goes away. Dropping an `XdpLink` detaches it (bpf_link fd close, or the
    // netlink fallback aya uses when bpf_link_create is refused).
    link: Option<XdpLink>,
    settings: Array<MapData, types::Settings>,
    vips_v4: HashMap<MapData, [u8; 4], u32>,
    vips_v6: HashMap<MapData, [u8; 16], u32>,
    ports: HashMap<MapData, [u8; 2], u32>,
    backends: Array<MapData, types::Backend>,
    maglev: Array<MapData, u32>,
    verdicts: PerCpuArray<MapData, u64>,
    backend_hits: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    ebpf: Ebpf,
}

impl AyaBalancer {
    fn load() -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK): the kernel charges BPF memory to the memory cgroup, and
        // aya only tries to raise the limit itself on kernels older than 5.11.
        // EbpfLoader, as in every Aya loader here: `Ebpf::load` would parse the kernel BTF twice
        // (EbpfLoader::new() and its own `.btf(Btf::from_sys_fs())`).
        let mut ebpf = EbpfLoader::new().load(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/loadbalancer")))?;
        let program: &mut Xdp =
            ebpf.program_mut(PROGRAM).context("no program `loadbalancer` in the object")?.try_into()?;
        program.load()?;
        // Typed handles owning their maps: no name lookup per access. The loaded program keeps
        // its own references to the maps (`conns` only the program uses).
        let mut take = |name: &str| -> Result<Map> {
            ebpf.take_map(name).with_context(|| format!("no map `{name}` in the object"))
        };
        Ok(Self {
            link: None,
            settings: take("settings")?.try_into()?,
            vips_v4: take("vips_v4")?.try_into()?,
            vips_v6: take("vips_v6")?.try_into()?,
            ports: take("ports")?.try_into()?,
            backends: take("backends")?.try_into()?,
            maglev: take("maglev")?.try_into()?,
            verdicts: take("verdicts")?.try_into()?,
            backend_hits: take("backend_hits")?.try_into()?,
            events: take("events")?.try_into()?,
            ebpf,
        })
    }
}

/// `BPF_NOEXIST`: each VIP and port is added once.
const NO_EXIST: u64 = 1;

impl Backend for AyaBalancer {
    fn set_settings(&mut self, s: &abi::Settings) -> Result<()> {
        let value = types::Settings { any_vip: s.any_vip, log_every: s.log_every };
        Ok(self.settings.set(0, value, 0)?)
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        Ok(self.vips_v4.insert(addr, index, NO_EXIST)?)
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        Ok(self.vips_v6.insert(addr, index, NO_EXIST)?)
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        Ok(self.ports.insert(port, index, NO_EXIST)?)
    }

    fn set_backend(&mut self, slot: u32, value: [u8; abi::BACKEND_SIZE]) -> Result<()> {
        let mac = value[..6].try_into().expect("6 bytes");
        let value = types::Backend { mac, flags: u16::from_ne_bytes([value[6], value[7]]) };
        Ok(self.backends.set(slot, value, 0)?)
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        Ok(self.maglev.set(index, slot, 0)?)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        (0..abi::VERDICT_COUNT).map(|i| Ok(self.verdicts.get(&i, 0)?.iter().sum())).collect()
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        Ok(self.backend_hits.get(&slot, 0)?.iter().sum())
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        let zeros = PerCpuValues::try_from(vec![0u64; nr_cpus().map_err(|(_, e)| e)?])?;
        Ok(self.backend_hits.set(slot, zeros, 0)?)
    }

    fn attach(&mut self, ifindex: u32, mode: Mode) -> Result<()> {
        let mode = match mode {
            Mode::Native => XdpMode::Driver,
            Mode::Skb => XdpMode::Skb,
        };
        let program: &mut Xdp = self.ebpf.program_mut(PROGRAM).context("program vanished")?.try_into()?;
        let id = program.attach_to_if_index(ifindex, mode)?;
        // Own the link rather than leave it in the program's link table, so detaching on drop
        // is explicit in this struct (see the field order above).
        self.link = Some(program.take_link(id)?);
        Ok(())
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
    bpfeval_shared::loadbalancer::run("aya", AyaBalancer::load)
}
