//! `bpfeval_shared::comtrace` for RedBPF loaders: the same `Backend` trait, served by the shared
//! lifecycle through `bpfeval-shared-ffi`.

use std::ffi::{c_void, CString};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared_ffi::comtrace as ffi;
use bpfeval_shared_ffi::{Sink, Status};

use crate::lifecycle::{self, backend, copy_counters, drop_backend, forward, status};

/// The layout every library's program implements: the very file `bpfeval-shared` compiles.
#[path = "../../../shared/src/comtrace/abi.rs"]
pub mod abi;

/// The read-only settings, known before the program is loaded
/// (`bpfeval_shared::comtrace::LoadParams`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadParams {
    /// Report only connections of this PID; 0 = all.
    pub target_pid: u32,
    /// Report only connections whose local port is in `lports`.
    pub filter_local_ports: bool,
    /// Report only connections whose remote port is in `rports`.
    pub filter_remote_ports: bool,
}

/// `bpfeval_shared::comtrace::PortList`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortList {
    /// `lports`, the `-L` list.
    Local,
    /// `rports`, the `-D` list.
    Remote,
}

/// `bpfeval_shared::comtrace::Backend`, method for method. Dropping the backend must detach
/// the program.
pub trait Backend {
    /// Adds one port to `lports` or `rports`.
    fn allow_port(&mut self, list: PortList, port: u16) -> Result<()>;
    /// Attaches the program to `sock:inet_sock_set_state`.
    fn attach(&mut self) -> Result<()>;
    /// The `counters`, summed over CPUs, in `abi` index order.
    fn counters(&self) -> Result<Vec<u64>>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// Runs the comtrace contract (`bpfeval_shared::comtrace::run`) with this backend and exits the
/// process.
pub fn run<B: Backend, F: FnOnce(&LoadParams) -> Result<B>>(lib: &str, load: F) -> ! {
    // SAFETY: bpfeval-shared-lifecycle exports `RUN` as a `Run`.
    let run: ffi::Run = unsafe { lifecycle::entry(ffi::RUN) };
    let mut loader = Some(load);
    let table = ffi::Backend {
        loader: &mut loader as *mut Option<F> as *mut c_void,
        load: load_backend::<B, F>,
        allow_port: allow_port::<B>,
        attach: attach::<B>,
        counters: counters::<B>,
        poll_events: poll_events::<B>,
        drop: drop_backend::<B>,
        free_error: lifecycle::free_error,
    };
    let lib = CString::new(lib).expect("library name without NUL");
    // SAFETY: both pointers stay valid until the process exits, which `run` does.
    unsafe { run(lib.as_ptr(), &table) }
}

// The table's functions. SAFETY (all of them): the lifecycle passes the handle `load` returned,
// from one thread, and pointers valid for the call (bpfeval-shared-ffi's contract).

unsafe extern "C" fn load_backend<B: Backend, F: FnOnce(&LoadParams) -> Result<B>>(
    loader: *mut c_void,
    params: *const ffi::LoadParams,
    out: *mut *mut c_void,
) -> Status {
    let load = (*(loader as *mut Option<F>)).take();
    let p = &*params;
    let params = LoadParams {
        target_pid: p.target_pid,
        filter_local_ports: p.filter_local_ports,
        filter_remote_ports: p.filter_remote_ports,
    };
    status(|| {
        let backend = load.expect("load is called once")(&params)?;
        *out = Box::into_raw(Box::new(backend)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn allow_port<B: Backend>(b: *mut c_void, list: u32, port: u16) -> Status {
    let list = if list == ffi::PORT_LIST_REMOTE { PortList::Remote } else { PortList::Local };
    status(|| backend::<B>(b).allow_port(list, port))
}

unsafe extern "C" fn attach<B: Backend>(b: *mut c_void) -> Status {
    status(|| backend::<B>(b).attach())
}

unsafe extern "C" fn counters<B: Backend>(b: *mut c_void, out: *mut u64, len: usize) -> Status {
    status(|| copy_counters(backend::<B>(b).counters()?, out, len))
}

unsafe extern "C" fn poll_events<B: Backend>(b: *mut c_void, timeout_ms: u64, sink: Sink, ctx: *mut c_void) -> Status {
    status(|| backend::<B>(b).poll_events(Duration::from_millis(timeout_ms), &mut forward(sink, ctx)))
}
