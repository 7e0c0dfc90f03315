//! `bpfeval_jittergen_run`: `bpfeval_shared::jittergen::run` over the loader's table.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use anyhow::{Context, Result};
use bpfeval_shared::jittergen::abi::{self, COUNTER_COUNT};
use bpfeval_shared::jittergen::{Backend, Iface, TcMode};
use bpfeval_shared_ffi::{self as ffi, jittergen::Backend as Table};

use crate::Foreign;

/// # Safety
/// `lib` is a NUL-terminated string and `table` a valid function table, both living until exit.
#[no_mangle]
pub unsafe extern "C" fn bpfeval_jittergen_run(lib: *const c_char, table: *const Table) -> ! {
    let lib = CStr::from_ptr(lib).to_string_lossy();
    let table = &*table;
    bpfeval_shared::jittergen::run(&lib, || load(table))
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
    fn set_rule(&mut self, index: u32, r: &abi::Rule) -> Result<()> {
        let rule = ffi::jittergen::Rule {
            chance: r.chance,
            base_ns: r.base_ns,
            min_ns: r.min_ns,
            span_ns: r.span_ns,
            action: r.action,
            flags: r.flags,
            port: r.port,
            protocol: r.protocol,
        };
        self.check(unsafe { (self.table.set_rule)(self.handle, index, &rule) })
    }

    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()> {
        self.check(unsafe { (self.table.set_settings)(self.handle, settings.rule_count) })
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; COUNTER_COUNT as usize];
        self.check(unsafe { (self.table.counters)(self.handle, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    fn rule_hits(&self, rule: u32) -> Result<u64> {
        let mut out = 0;
        self.check(unsafe { (self.table.rule_hits)(self.handle, rule, &mut out) })?;
        Ok(out)
    }

    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()> {
        let name = CString::new(iface.name.as_str()).context("interface name with a NUL")?;
        let mode = match mode {
            TcMode::Tcx => ffi::jittergen::TC_MODE_TCX,
            TcMode::Netlink => ffi::jittergen::TC_MODE_NETLINK,
        };
        self.check(unsafe { (self.table.attach)(self.handle, name.as_ptr(), iface.index, mode) })
    }
}
