//! lsmbpf with Aya: the library-specific part (settings and offsets as globals, load by BTF
//! hook name, attach, counters, ring buffer). CLI, config and output are
//! `bpfeval_shared::lsmbpf::run`. A library, so that lsmbpf-redbpf (impls/redbpf/lsmbpf) loads
//! and attaches RedBPF's build of the program with the very same code: RedBPF cannot.

mod offsets;

use std::os::fd::AsFd as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::lsm::LsmLink;
use aya::programs::Lsm;
use aya::{Btf, Ebpf, EbpfLoader, Endianness};
use bpfeval_shared::lsmbpf::abi::{self, Settings};
use bpfeval_shared::lsmbpf::Backend;
use lsmbpf_aya_types as types;

// The kernel program restates the ABI in `types`; keep the two in step.
const _: () =
    assert!(types::COUNTER_COUNT == abi::COUNTER_COUNT && types::COUNTER_EVENTS_LOST == abi::COUNTER_EVENTS_LOST);
const _: () = assert!(types::MODE_AUDIT == abi::MODE_AUDIT && types::CRITERION_MNT_NS == abi::CRITERION_MNT_NS);
const _: () = assert!(types::VERDICT_AUDIT == abi::VERDICT_AUDIT && size_of::<types::Event>() == abi::EVENT_SIZE);

const PROGRAM: &str = "lsmbpf";
/// The running kernel's BTF.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct AyaLsm {
    // Fields drop in declaration order: the link first, so the program is detached before
    // anything else goes away (dropping an `LsmLink` closes the bpf_link).
    link: Option<LsmLink>,
    counters: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    ebpf: Ebpf,
}

impl AyaLsm {
    /// Loads `object`, an ELF object with the program `lsmbpf` in `lsm/path_chroot`, the globals
    /// `SETTINGS` and `OFFSETS` and the maps `counters` and `events`.
    pub fn load(object: &[u8], s: &Settings) -> Result<Self> {
        let settings = types::Settings {
            pidns_dev: s.pidns_dev,
            pidns_ino: s.pidns_ino,
            mntns_ino: s.mntns_ino,
            criterion: s.criterion,
            mode: s.mode,
            _reserved: 0,
        };
        // The kernel BTF is read once for our code: the struct offsets (aya does not expose its
        // type graph) and the `Btf` that `Lsm::load` takes the hook's BTF id from.
        // EbpfLoader::new() reads and parses it once more for itself (aya's cost, as in every
        // Aya loader here).
        let raw = std::fs::read(KERNEL_BTF).with_context(|| format!("reading {KERNEL_BTF}"))?;
        let offsets = offsets::from_btf(&raw)?;
        let btf = Btf::parse(&raw, Endianness::default()).context("parsing the kernel BTF")?;
        drop(raw);
        let mut ebpf = EbpfLoader::new()
            .override_global("SETTINGS", &settings, true)
            .override_global("OFFSETS", &offsets, true)
            .load(object)?;
        let program: &mut Lsm = ebpf.program_mut(PROGRAM).context("no program `lsmbpf` in the object")?.try_into()?;
        program.load("path_chroot", &btf)?;
        let mut take = |name: &str| ebpf.take_map(name).with_context(|| format!("no map `{name}` in the object"));
        Ok(Self { link: None, counters: take("counters")?.try_into()?, events: take("events")?.try_into()?, ebpf })
    }
}

impl Backend for AyaLsm {
    fn attach(&mut self) -> Result<()> {
        let program: &mut Lsm = self.ebpf.program_mut(PROGRAM).context("program vanished")?.try_into()?;
        let id = program.attach()?;
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
