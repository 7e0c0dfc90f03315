//! `bpfeval_packetfilter_run`: `bpfeval_shared::packetfilter::run` over the loader's table.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::cli::XdpMode;
use bpfeval_shared::packetfilter::abi::{Settings, VERDICT_COUNT};
use bpfeval_shared::packetfilter::{Backend, LoadParams};
use bpfeval_shared_ffi::{self as ffi, packetfilter::Backend as Table};

use crate::Foreign;

/// # Safety
/// `lib` is a NUL-terminated string and `table` a valid function table, both living until exit.
#[no_mangle]
pub unsafe extern "C" fn bpfeval_packetfilter_run(lib: *const c_char, table: *const Table) -> ! {
    let lib = CStr::from_ptr(lib).to_string_lossy();
    let table = &*table;
    bpfeval_shared::packetfilter::run(&lib, |params| load(table, params))
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
fn load<'t>(table: &'t Table, params: &LoadParams) -> Result<Foreign<'t, Table>> {
    // SAFETY: the table's contract (see bpfeval-shared-ffi).
    Foreign::load(table, |handle| unsafe { (table.load)(table.loader, params.capacity, handle) })
}

// SAFETY (every call below): `handle` is the live backend `load` returned, used from this one
// thread, and every pointer passed points to memory valid for the call.
impl Backend for Foreign<'_, Table> {
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()> {
        self.check(unsafe {
            (self.table.set_rule_v4)(self.handle, prefixlen, &data, rule.is_some(), rule.unwrap_or(0))
        })
    }

    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()> {
        self.check(unsafe {
            (self.table.set_rule_v6)(self.handle, prefixlen, &data, rule.is_some(), rule.unwrap_or(0))
        })
    }

    fn set_settings(&mut self, generation: u32, s: &Settings) -> Result<()> {
        let settings = ffi::packetfilter::Settings {
            default_drop_v4: s.default_drop_v4,
            default_drop_v6: s.default_drop_v6,
            log_every: s.log_every,
            reserved: 0,
        };
        self.check(unsafe { (self.table.set_settings)(self.handle, generation, &settings) })
    }

    fn set_generation(&mut self, generation: u32) -> Result<()> {
        self.check(unsafe { (self.table.set_generation)(self.handle, generation) })
    }

    fn verdicts(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; VERDICT_COUNT as usize];
        self.check(unsafe { (self.table.verdicts)(self.handle, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        let mut out = 0;
        self.check(unsafe { (self.table.rule_hits)(self.handle, rule, &mut out) })?;
        Ok(out)
    }

    fn clear_rule_hits(&mut self, rule: u32) -> Result<()> {
        self.check(unsafe { (self.table.clear_rule_hits)(self.handle, rule) })
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
