//! `bpfeval_loadbalancer_run`: `bpfeval_shared::loadbalancer::run` over the loader's table.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::loadbalancer::abi::{Settings, BACKEND_SIZE, VERDICT_COUNT};
use bpfeval_shared::loadbalancer::Backend;
use bpfeval_shared_ffi::{self as ffi, loadbalancer::Backend as Table};

use crate::Foreign;

/// # Safety
/// `lib` is a NUL-terminated string and `table` a valid function table, both living until exit.
#[no_mangle]
pub unsafe extern "C" fn bpfeval_loadbalancer_run(lib: *const c_char, table: *const Table) -> ! {
    let lib = CStr::from_ptr(lib).to_string_lossy();
    let table = &*table;
    bpfeval_shared::loadbalancer::run(&lib, || load(table))
}

impl crate::Table for Table {
    fn free_error(&self) -> ffi::FreeError {
        self.free_error
    }

    fn drop_backend(&self) -> ffi::DropBackend {
        self.drop
    }
}

/// Loads the loader's backend through its table.
fn load(table: &Table) -> Result<Foreign<'_, Table>> {
    // SAFETY: the table's contract (see bpfeval-shared-ffi).
    Foreign::load(table, |handle| unsafe { (table.load)(table.loader, handle) })
}

// SAFETY (every call below): `handle` is the live backend `load` returned, used from this one
// thread, and every pointer passed points to memory valid for the call.
impl Backend for Foreign<'_, Table> {
    fn set_settings(&mut self, s: &Settings) -> Result<()> {
        let settings = ffi::loadbalancer::Settings { any_vip: s.any_vip, log_every: s.log_every };
        self.check(unsafe { (self.table.set_settings)(self.handle, &settings) })
    }

    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()> {
        self.check(unsafe { (self.table.add_vip_v4)(self.handle, &addr, index) })
    }

    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()> {
        self.check(unsafe { (self.table.add_vip_v6)(self.handle, &addr, index) })
    }

    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()> {
        self.check(unsafe { (self.table.add_port)(self.handle, &port, index) })
    }

    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()> {
        self.check(unsafe { (self.table.set_backend)(self.handle, slot, &value) })
    }

    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()> {
        self.check(unsafe { (self.table.set_table_entry)(self.handle, index, slot) })
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; VERDICT_COUNT as usize];
        self.check(unsafe { (self.table.verdicts)(self.handle, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    fn backend_hits(&self, slot: u32) -> Result<u64> {
        let mut out = 0;
        self.check(unsafe { (self.table.backend_hits)(self.handle, slot, &mut out) })?;
        Ok(out)
    }

    fn clear_backend_hits(&mut self, slot: u32) -> Result<()> {
        self.check(unsafe { (self.table.clear_backend_hits)(self.handle, slot) })
    }

    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let mode = match mode {
            XdpMode::Native => ffi::XDP_MODE_NATIVE,
            XdpMode::Skb => ffi::XDP_MODE_SKB,
        };
        self.check(unsafe { (self.table.attach)(self.handle, ifindex, mode) })
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.poll(timeout, sink, |ms, forward, ctx| unsafe { (self.table.poll_events)(self.handle, ms, forward, ctx) })
    }
}
