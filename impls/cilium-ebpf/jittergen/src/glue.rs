//! jittergen-cilium-ebpf: the shared Rust lifecycle (`bpfeval_shared::jittergen::run`) with a
//! backend whose library calls are the Go loader's (../jittergen.go). Tool glue.

use std::ffi::{c_char, c_int};

use anyhow::Result;
use bpfeval_shared::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared::jittergen::{Backend, Iface, TcMode};
use cilium_ebpf_glue::{self as go, Loaded};

extern "C" {
    fn jittergen_load() -> *mut c_char;
    fn jittergen_attach(ifindex: c_int, tcx: c_int) -> *mut c_char;
}

struct GoJitter(Loaded);

impl Backend for GoJitter {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()> {
        go::update("rules", &index.to_ne_bytes(), &rule.to_bytes(), go::ANY)
    }

    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()> {
        go::update("settings", &0u32.to_ne_bytes(), &settings.to_bytes(), go::ANY)
    }

    fn counters(&self) -> Result<Vec<u64>> {
        go::percpu_sums("counters", COUNTER_COUNT)
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        go::percpu_sum("rule_hits", rule)
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        // SAFETY: plain integers.
        go::check(unsafe { jittergen_attach(iface.index as c_int, (mode == TcMode::Tcx).into()) })
    }
}

fn main() {
    bpfeval_shared::jittergen::run("cilium-ebpf", || {
        // SAFETY: no arguments; the Go side owns what it loads until `Loaded` is dropped.
        Ok(GoJitter(Loaded::new(unsafe { jittergen_load() })?))
    })
}
