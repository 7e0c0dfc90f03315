//! jittergen loader on libbpf-rs: the library-specific part only (open, load, map access,
//! attach). CLI, config, qdiscs, output and signals live in `bpfeval_shared`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};
use bpfeval_shared::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared::jittergen::{Backend, Iface, TcMode};
use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, TcHook, TcHookBuilder, TC_EGRESS};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/jittergen.skel.rs"));
}
use skel::{JittergenSkel, JittergenSkelBuilder};

/// How the program is attached; dropping it detaches.
enum Attachment {
    /// A TCX bpf_link; the kernel detaches when its last fd closes, even if we crash.
    Tcx(#[allow(dead_code)] OwnedFd),
    /// A netlink cls_bpf filter; libbpf-rs' `TcHook` is `Copy` and does not detach on drop.
    Netlink(TcHook),
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Attachment::Netlink(hook) = self {
            if let Err(e) = hook.detach() {
                eprintln!("warning: detaching the TC filter: {e}");
            }
        }
    }
}

/// Field order is drop order: detach first, then the BPF object.
struct LibbpfJitter {
    attachment: Option<Attachment>,
    skel: JittergenSkel<'static>,
}

impl LibbpfJitter {
    fn load() -> Result<Self> {
        // libbpf-rs skeletons borrow caller-provided storage for the object; leaking it gives a
        // 'static skeleton for this one-object, process-lifetime loader. Dropping the skeleton
        // still closes the object (maps, program).
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let open = JittergenSkelBuilder::default().open(storage).context("opening the BPF object")?;
        let skel = open.load().context("loading the BPF object (verifier)")?;
        Ok(Self { attachment: None, skel })
    }
}

/// Per-CPU u64 counter summed over all possible CPUs.
fn percpu_sum(map: &dyn MapCore, index: u32) -> Result<u64> {
    let values = map.lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)?.unwrap_or_default();
    Ok(values.iter().map(|v| u64::from_ne_bytes(v[..8].try_into().expect("u64 values"))).sum())
}

impl Backend for LibbpfJitter {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()> {
        Ok(self.skel.maps.rules.update(&index.to_ne_bytes(), &rule.to_bytes(), MapFlags::ANY)?)
    }

    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()> {
        Ok(self.skel.maps.settings.update(&0u32.to_ne_bytes(), &settings.to_bytes(), MapFlags::ANY)?)
    }

    fn counters(&self) -> Result<Vec<u64>> {
        (0..COUNTER_COUNT).map(|i| percpu_sum(&self.skel.maps.counters, i)).collect()
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        percpu_sum(&self.skel.maps.rule_hits, rule)
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let prog = self.skel.progs.jittergen.as_fd();
        self.attachment = Some(match mode {
            TcMode::Tcx => {
                // libbpf-rs 0.25 has no TCX attach of its own; libbpf's bpf_link_create does it.
                let opts = libbpf_sys::bpf_link_create_opts {
                    sz: size_of::<libbpf_sys::bpf_link_create_opts>() as _,
                    ..Default::default()
                };
                // SAFETY: `opts` is a valid, fully initialised options struct of the size it declares.
                let fd = unsafe {
                    libbpf_sys::bpf_link_create(
                        prog.as_raw_fd(),
                        iface.index as i32,
                        libbpf_sys::BPF_TCX_EGRESS,
                        &opts,
                    )
                };
                if fd < 0 {
                    return Err(io::Error::from_raw_os_error(-fd)).context("bpf_link_create(BPF_TCX_EGRESS)");
                }
                // SAFETY: a non-negative return is a new link fd that nothing else owns.
                Attachment::Tcx(unsafe { OwnedFd::from_raw_fd(fd) })
            }
            TcMode::Netlink => {
                let mut hook = TcHookBuilder::new(prog).ifindex(iface.index as i32).hook(TC_EGRESS);
                // Adds the clsact qdisc; one that is there already is fine.
                hook.create().context("adding the clsact qdisc")?;
                Attachment::Netlink(hook.attach().context("attaching the cls_bpf filter")?)
            }
        });
        Ok(())
    }
}

fn main() {
    bpfeval_shared::jittergen::run("libbpf-rs", LibbpfJitter::load)
}
