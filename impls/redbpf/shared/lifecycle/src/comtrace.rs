//! `bpfeval_comtrace_run`: `bpfeval_shared::comtrace::run` over the loader's table.

use std::ffi::CStr;
use std::os::raw::c_char;
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared::comtrace::abi::COUNTER_COUNT;
use bpfeval_shared::comtrace::{Backend, LoadParams, PortList};
use bpfeval_shared_ffi::{self as ffi, comtrace::Backend as Table};

use crate::Foreign;

/// # Safety
/// `lib` is a NUL-terminated string and `table` a valid function table, both living until exit.
#[no_mangle]
pub unsafe extern "C" fn bpfeval_comtrace_run(lib: *const c_char, table: *const Table) -> ! {
    let lib = CStr::from_ptr(lib).to_string_lossy();
    let table = &*table;
    bpfeval_shared::comtrace::run(&lib, |params| load(table, params))
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
    let params = ffi::comtrace::LoadParams {
        target_pid: params.target_pid,
        filter_local_ports: params.filter_local_ports,
        filter_remote_ports: params.filter_remote_ports,
    };
    // SAFETY: the table's contract (see bpfeval-shared-ffi).
    Foreign::load(table, |handle| unsafe { (table.load)(table.loader, &params, handle) })
}

// SAFETY (every call below): `handle` is the live backend `load` returned, used from this one
// thread, and every pointer passed points to memory valid for the call.
impl Backend for Foreign<'_, Table> {
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()> {
        let list = match list {
            PortList::Local => ffi::comtrace::PORT_LIST_LOCAL,
            PortList::Remote => ffi::comtrace::PORT_LIST_REMOTE,
        };
        self.check(unsafe { (self.table.allow_port)(self.handle, list, port) })
    }

    fn attach(&mut self) -> Result<()> {
        self.check(unsafe { (self.table.attach)(self.handle) })
    }

    fn counters(&self) -> Result<Vec<u64>> {
        let mut out = vec![0u64; COUNTER_COUNT as usize];
        self.check(unsafe { (self.table.counters)(self.handle, out.as_mut_ptr(), out.len()) })?;
        Ok(out)
    }

    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        self.poll(timeout, sink, |ms, forward, ctx| unsafe { (self.table.poll_events)(self.handle, ms, forward, ctx) })
    }
}
