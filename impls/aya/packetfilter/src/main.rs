//! packetfilter with Aya: the library-specific part (load, map access, attach, ring buffer).
//! CLI, config, reload protocol and output are `bpfeval_shared::packetfilter::run`.

use std::os::fd::AsFd as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::lpm_trie::Key;
use aya::maps::{Array, LpmTrie, Map, MapData, MapError, PerCpuArray, PerCpuValues, RingBuf};
use aya::util::nr_cpus;
use aya::programs::xdp::XdpLink;
use aya::programs::{Xdp, XdpMode};
use aya::sys::SyscallError;
use aya::{Ebpf, EbpfLoader};
use bpfeval_shared::cli::XdpMode as Mode;
use bpfeval_shared::packetfilter::{abi, Backend, LoadParams};
use packetfilter_aya_types as types;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () =
    assert!(types::VERDICT_COUNT == abi::VERDICT_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::LIST_BLOCK == abi::LIST_BLOCK && types::LIST_ALLOW == abi::LIST_ALLOW);
const _: () = assert!(types::NO_RULE == abi::NO_RULE && size_of::<types::Event>() == abi::EVENT_SIZE);

const PROGRAM: &str = "packetfilter";

struct AyaFilter {
    // Fields drop in declaration order: the link first, so the program is detached before
    // anything else goes away. Dropping an `XdpLink` detaches it (bpf_link fd close, or the
    // netlink fallback aya uses when bpf_link_create is refused).
    link: Option<XdpLink>,
    rules_v4: LpmTrie<MapData, [u8; 8], u32>,
    rules_v6: LpmTrie<MapData, [u8; 20], u32>,
    settings: Array<MapData, types::Settings>,
    generation: Array<MapData, u32>,
    verdicts: PerCpuArray<MapData, u64>,
    rule_hits: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    ebpf: Ebpf,
}

impl AyaFilter {
    fn load(params: &LoadParams) -> Result<Self> {
        let entries = 2 * params.capacity;
        // No setrlimit(RLIMIT_MEMLOCK): the kernel charges BPF memory to the memory cgroup, and
        // aya only tries to raise the limit itself on kernels older than 5.11.
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("rules_v4", entries)
            .map_max_entries("rules_v6", entries)
            .map_max_entries("rule_hits", entries)
            .load(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/packetfilter")))?;
        let program: &mut Xdp =
            ebpf.program_mut(PROGRAM).context("no program `packetfilter` in the object")?.try_into()?;
        program.load()?;
        // Typed handles owning their maps: no name lookup per access. The loaded program keeps
        // its own references to the maps.
        let mut take = |name: &str| -> Result<Map> {
            ebpf.take_map(name).with_context(|| format!("no map `{name}` in the object"))
        };
        Ok(Self {
            link: None,
            rules_v4: take("rules_v4")?.try_into()?,
            rules_v6: take("rules_v6")?.try_into()?,
            settings: take("settings")?.try_into()?,
            generation: take("generation")?.try_into()?,
            verdicts: take("verdicts")?.try_into()?,
            rule_hits: take("rule_hits")?.try_into()?,
            events: take("events")?.try_into()?,
            ebpf,
        })
    }
}

/// A delete of an absent key is not an error (the shared lifecycle deletes idempotently).
fn ignore_not_found(r: Result<(), MapError>) -> Result<()> {
    match r {
        Err(MapError::SyscallError(SyscallError { io_error, .. })) if io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(())
        }
        r => Ok(r?),
    }
}

impl Backend for AyaFilter {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        let key = Key::new(prefixlen, data);
        match rule {
            Some(id) => Ok(self.rules_v4.insert(&key, id, 0)?),
            None => ignore_not_found(self.rules_v4.remove(&key)),
        }
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        let key = Key::new(prefixlen, data);
        match rule {
            Some(id) => Ok(self.rules_v6.insert(&key, id, 0)?),
            None => ignore_not_found(self.rules_v6.remove(&key)),
        }
    }

    fn set_settings(&mut self, generation: u32, s: &abi::Settings) -> Result<()> {
        let value = types::Settings {
            default_drop_v4: s.default_drop_v4,
            default_drop_v6: s.default_drop_v6,
            log_every: s.log_every,
            _reserved: 0,
        };
        Ok(self.settings.set(generation, value, 0)?)
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        Ok(self.generation.set(0, generation, 0)?)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        (0..abi::VERDICT_COUNT).map(|i| Ok(self.verdicts.get(&i, 0)?.iter().sum())).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        Ok(self.rule_hits.get(&rule, 0)?.iter().sum())
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        let zeros = PerCpuValues::try_from(vec![0u64; nr_cpus().map_err(|(_, e)| e)?])?;
        Ok(self.rule_hits.set(rule, zeros, 0)?)
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
    bpfeval_shared::packetfilter::run("aya", AyaFilter::load)
}
