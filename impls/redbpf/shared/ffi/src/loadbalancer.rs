//! `bpfeval_shared::loadbalancer`: the `Backend` trait as a table of C functions.

use std::ffi::c_void;
use std::os::raw::c_char;

use crate::{DropBackend, FreeError, Sink, Status};

/// `settings[0]` (`bpfeval_shared::loadbalancer::abi::Settings`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub any_vip: u32,
    pub log_every: u32,
}

/// A loadbalancer `Backend` as C functions. `load` gets `loader` and returns the backend's
/// handle through `backend`; every other function gets that handle; `drop` detaches and frees.
#[repr(C)]
pub struct Backend {
    pub loader: *mut c_void,
    pub load: unsafe extern "C" fn(loader: *mut c_void, backend: *mut *mut c_void) -> Status,
    pub set_settings: unsafe extern "C" fn(b: *mut c_void, settings: *const Settings) -> Status,
    pub add_vip_v4: unsafe extern "C" fn(b: *mut c_void, addr: *const [u8; 4], index: u32) -> Status,
    pub add_vip_v6: unsafe extern "C" fn(b: *mut c_void, addr: *const [u8; 16], index: u32) -> Status,
    /// The port in network byte order.
    pub add_port: unsafe extern "C" fn(b: *mut c_void, port: *const [u8; 2], index: u32) -> Status,
    /// `value`: `abi::backend_bytes`.
    pub set_backend: unsafe extern "C" fn(b: *mut c_void, slot: u32, value: *const [u8; 8]) -> Status,
    pub set_table_entry: unsafe extern "C" fn(b: *mut c_void, index: u32, slot: u32) -> Status,
    /// Writes `len` counters to `out`.
    pub verdicts: unsafe extern "C" fn(b: *mut c_void, out: *mut u64, len: usize) -> Status,
    pub backend_hits: unsafe extern "C" fn(b: *mut c_void, slot: u32, out: *mut u64) -> Status,
    pub clear_backend_hits: unsafe extern "C" fn(b: *mut c_void, slot: u32) -> Status,
    pub attach: unsafe extern "C" fn(b: *mut c_void, ifindex: u32, xdp_mode: u32) -> Status,
    pub poll_events: unsafe extern "C" fn(b: *mut c_void, timeout_ms: u64, sink: Sink, sink_ctx: *mut c_void) -> Status,
    pub drop: DropBackend,
    pub free_error: FreeError,
}

/// `bpfeval_shared::loadbalancer::run`: never returns (the process exits with the contract's code).
pub type Run = unsafe extern "C" fn(lib: *const c_char, backend: *const Backend) -> !;

/// The symbol the lifecycle exports for [`Run`].
pub const RUN: &[u8] = b"bpfeval_loadbalancer_run\0";
