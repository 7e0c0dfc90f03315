//! jittergen with Aya: the library-specific part (load, map access, attach). CLI, config,
//! qdiscs and output are `bpfeval_shared::jittergen::run`.

use anyhow::{Context as _, Result};
use aya::maps::{Array, Map, MapData, PerCpuArray};
use aya::programs::tc::{self, NlOptions, SchedClassifierLink, TcAttachOptions};
use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, TcError};
use aya::{Ebpf, EbpfLoader};
use bpfeval_shared::jittergen::{abi, Backend, Iface, TcMode};
use jittergen_aya_types as types;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () = assert!(types::MAX_RULES == abi::MAX_RULES && types::COUNTER_COUNT == abi::COUNTER_COUNT);
const _: () = assert!(types::ACTION_REORDER == abi::ACTION_REORDER && types::FLAG_KEEP_ORDER == abi::FLAG_KEEP_ORDER);
const _: () = assert!(size_of::<types::Rule>() == abi::RULE_SIZE);

const PROGRAM: &str = "jittergen";

struct AyaJitter {
    // Fields drop in declaration order: the link first, so the program is detached before
    // anything else goes away. Dropping a `SchedClassifierLink` detaches it (closes the TCX
    // link fd, or deletes the netlink filter).
    link: Option<SchedClassifierLink>,
    rules: Array<MapData, types::Rule>,
    settings: Array<MapData, types::Settings>,
    counters: PerCpuArray<MapData, u64>,
    rule_hits: PerCpuArray<MapData, u64>,
    ebpf: Ebpf,
}

impl AyaJitter {
    fn load() -> Result<Self> {
        // No setrlimit(RLIMIT_MEMLOCK): the kernel charges BPF memory to the memory cgroup, and
        // aya only tries to raise the limit itself on kernels older than 5.11.
        // EbpfLoader, as in every Aya loader here: `Ebpf::load` would parse the kernel BTF twice
        // (EbpfLoader::new() and its own `.btf(Btf::from_sys_fs())`).
        let mut ebpf = EbpfLoader::new().load(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/jittergen")))?;
        let program: &mut SchedClassifier =
            ebpf.program_mut(PROGRAM).context("no program `jittergen` in the object")?.try_into()?;
        program.load()?;
        // Typed handles owning their maps: no name lookup per access. The loaded program keeps
        // its own references to the maps.
        let mut take = |name: &str| -> Result<Map> {
            ebpf.take_map(name).with_context(|| format!("no map `{name}` in the object"))
        };
        Ok(Self {
            link: None,
            rules: take("rules")?.try_into()?,
            settings: take("settings")?.try_into()?,
            counters: take("counters")?.try_into()?,
            rule_hits: take("rule_hits")?.try_into()?,
            ebpf,
        })
    }
}

impl Backend for AyaJitter {
    fn set_rule(&mut self, index: u32, r: &abi::Rule) -> Result<()> {
        let value = types::Rule {
            chance: r.chance,
            base_ns: r.base_ns,
            min_ns: r.min_ns,
            span_ns: r.span_ns,
            action: r.action,
            flags: r.flags,
            port: r.port,
            protocol: r.protocol,
            _pad: [0; 5],
        };
        Ok(self.rules.set(index, value, 0)?)
    }

    fn set_settings(&mut self, s: &abi::Settings) -> Result<()> {
        Ok(self.settings.set(0, types::Settings { rule_count: s.rule_count, _reserved: 0 }, 0)?)
    }

    fn counters(&self) -> Result<Vec<u64>> {
        (0..abi::COUNTER_COUNT).map(|i| Ok(self.counters.get(&i, 0)?.iter().sum())).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        Ok(self.rule_hits.get(&rule, 0)?.iter().sum())
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let options = match mode {
            TcMode::Tcx => TcAttachOptions::TcxOrder(LinkOrder::default()),
            TcMode::Netlink => {
                // Netlink filters need the clsact qdisc; one that is there already is fine.
                match tc::qdisc_add_clsact(&iface.name) {
                    Err(TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    r => r.context("adding the clsact qdisc")?,
                }
                TcAttachOptions::Netlink(NlOptions::default())
            }
        };
        let program: &mut SchedClassifier = self.ebpf.program_mut(PROGRAM).context("program vanished")?.try_into()?;
        // `attach` would pick TCX or netlink by kernel version; the shared lifecycle probes and
        // says which, so both paths are explicit here.
        let id = program.attach_with_options(&iface.name, TcAttachType::Egress, options)?;
        // Own the link rather than leave it in the program's link table, so detaching on drop
        // is explicit in this struct (see the field order above).
        self.link = Some(program.take_link(id)?);
        Ok(())
    }
}

fn main() {
    bpfeval_shared::jittergen::run("aya", AyaJitter::load)
}
