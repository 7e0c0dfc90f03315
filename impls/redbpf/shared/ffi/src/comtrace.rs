//! `bpfeval_shared::comtrace`: the `Backend` trait as a table of C functions.

use std::ffi::c_void;
use std::os::raw::c_char;

use crate::{DropBackend, FreeError, Sink, Status};

/// `bpfeval_shared::comtrace::LoadParams`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadParams {
    pub target_pid: u32,
    pub filter_local_ports: bool,
    pub filter_remote_ports: bool,
}

/// `bpfeval_shared::comtrace::PortList`.
pub const PORT_LIST_LOCAL: u32 = 0;
pub const PORT_LIST_REMOTE: u32 = 1;

/// A comtrace `Backend` as C functions. `load` gets `loader` and returns the backend's handle
/// through `backend`; every other function gets that handle; `drop` detaches and frees.
#[repr(C)]
pub struct Backend {
    pub loader: *mut c_void,
    pub load: unsafe extern "C" fn(loader: *mut c_void, params: *const LoadParams, backend: *mut *mut c_void) -> Status,
    pub allow_port: unsafe extern "C" fn(b: *mut c_void, list: u32, port: u16) -> Status,
    pub attach: unsafe extern "C" fn(b: *mut c_void) -> Status,
    /// Writes `len` counters to `out`.
    pub counters: unsafe extern "C" fn(b: *mut c_void, out: *mut u64, len: usize) -> Status,
    pub poll_events: unsafe extern "C" fn(b: *mut c_void, timeout_ms: u64, sink: Sink, sink_ctx: *mut c_void) -> Status,
    pub drop: DropBackend,
    pub free_error: FreeError,
}

/// `bpfeval_shared::comtrace::run`: never returns (the process exits with the contract's code).
pub type Run = unsafe extern "C" fn(lib: *const c_char, backend: *const Backend) -> !;

/// The symbol the lifecycle exports for [`Run`].
pub const RUN: &[u8] = b"bpfeval_comtrace_run\0";
