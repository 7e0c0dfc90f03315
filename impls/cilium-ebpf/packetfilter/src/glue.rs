//! packetfilter-cilium-ebpf: the shared Rust lifecycle (`bpfeval_shared::packetfilter::run`)
//! with a backend whose library calls are the Go loader's (../packetfilter.go). Tool glue.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::packetfilter::abi::{Settings, VERDICT_COUNT};
use bpfeval_shared::packetfilter::{Backend, LoadParams};
use cilium_ebpf_glue::{self as go, Loaded};

extern "C" {
    fn packetfilter_load(capacity: u32) -> *mut c_char;
    fn packetfilter_attach(ifindex: c_int, skb: c_int) -> *mut c_char;
}

struct GoFilter(Loaded);

/// LPM key bytes: `u32 prefixlen` (native endian) followed by the key data.
fn set_rule(map: &str, prefixlen: u32, data: &[u8], rule: Option<u32>) -> Result<()> {
    let key = [&prefixlen.to_ne_bytes()[..], data].concat();
    match rule {
        Some(id) => go::update(map, &key, &id.to_ne_bytes(), go::ANY),
        None => go::delete(map, &key),
    }
}

impl Backend for GoFilter {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        set_rule("rules_v4", prefixlen, &data, rule)
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        set_rule("rules_v6", prefixlen, &data, rule)
    }

    fn set_settings(&mut self, generation: u32, settings: &Settings) -> Result<()> {
        go::update("settings", &generation.to_ne_bytes(), &settings.to_bytes(), go::ANY)
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        go::update("generation", &0u32.to_ne_bytes(), &generation.to_ne_bytes(), go::ANY)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        go::percpu_sums("verdicts", VERDICT_COUNT)
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        go::percpu_sum("rule_hits", rule)
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        go::percpu_zero("rule_hits", rule)
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        // SAFETY: plain integers.
        go::check(unsafe { packetfilter_attach(ifindex as c_int, (mode == XdpMode::Skb).into()) })
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        go::poll(timeout, sink)
    }
}

fn main() {
    bpfeval_shared::packetfilter::run("cilium-ebpf", |params: &LoadParams| {
        // SAFETY: a plain integer; the Go side owns what it loads until `Loaded` is dropped.
        Ok(GoFilter(Loaded::new(unsafe { packetfilter_load(params.capacity) })?))
    })
}
