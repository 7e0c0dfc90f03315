//! loadbalancer-cilium-ebpf: the shared Rust lifecycle (`bpfeval_shared::loadbalancer::run`)
//! with a backend whose library calls are the Go loader's (../loadbalancer.go). Tool glue.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::loadbalancer::abi::{Settings, BACKEND_SIZE, VERDICT_COUNT};
use bpfeval_shared::loadbalancer::Backend;
use cilium_ebpf_glue::{self as go, Loaded};

extern "C" {
    fn loadbalancer_load() -> *mut c_char;
    fn loadbalancer_attach(ifindex: c_int, skb: c_int) -> *mut c_char;
}

struct GoBalancer(Loaded);

impl Backend for GoBalancer {
    fn set_settings(&mut self, settings: &Settings) -> Result<()> {
        go::update("settings", &0u32.to_ne_bytes(), &settings.to_bytes(), go::ANY)
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        go::update("vips_v4", &addr, &index.to_ne_bytes(), go::NO_EXIST)
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        go::update("vips_v6", &addr, &index.to_ne_bytes(), go::NO_EXIST)
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        go::update("ports", &port, &index.to_ne_bytes(), go::NO_EXIST)
    }

    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()> {
        go::update("backends", &slot.to_ne_bytes(), &value, go::ANY)
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        go::update("maglev", &index.to_ne_bytes(), &slot.to_ne_bytes(), go::ANY)
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        go::percpu_sums("verdicts", VERDICT_COUNT)
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        go::percpu_sum("backend_hits", slot)
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        go::percpu_zero("backend_hits", slot)
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        // SAFETY: plain integers.
        go::check(unsafe { loadbalancer_attach(ifindex as c_int, (mode == XdpMode::Skb).into()) })
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        go::poll(timeout, sink)
    }
}

fn main() {
    bpfeval_shared::loadbalancer::run("cilium-ebpf", || {
        // SAFETY: no arguments; the Go side owns what it loads until `Loaded` is dropped.
        Ok(GoBalancer(Loaded::new(unsafe { loadbalancer_load() })?))
    })
}
