//! `bpfeval_shared::packetfilter`: the `Backend` trait as a table of C functions.

use std::ffi::c_void;
use std::os::raw::c_char;

use crate::{DropBackend, FreeError, Sink, Status};

/// `settings[generation]` (`bpfeval_shared::packetfilter::abi::Settings`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub default_drop_v4: u32,
    pub default_drop_v6: u32,
    pub log_every: u32,
    pub reserved: u32,
}

/// A packetfilter `Backend` as C functions. `load` gets `loader` and returns the backend's
/// handle through `backend`; every other function gets that handle; `drop` detaches and frees.
#[repr(C)]
pub struct Backend {
    pub loader: *mut c_void,
    pub load: unsafe extern "C" fn(loader: *mut c_void, capacity: u32, backend: *mut *mut c_void) -> Status,
    pub set_rule_v4:
        unsafe extern "C" fn(b: *mut c_void, prefixlen: u32, data: *const [u8; 8], insert: bool, rule: u32) -> Status,
    pub set_rule_v6:
        unsafe extern "C" fn(b: *mut c_void, prefixlen: u32, data: *const [u8; 20], insert: bool, rule: u32) -> Status,
    pub set_settings: unsafe extern "C" fn(b: *mut c_void, generation: u32, settings: *const Settings) -> Status,
    pub set_generation: unsafe extern "C" fn(b: *mut c_void, generation: u32) -> Status,
    /// Writes `len` counters to `out`.
    pub verdicts: unsafe extern "C" fn(b: *mut c_void, out: *mut u64, len: usize) -> Status,
    pub rule_hits: unsafe extern "C" fn(b: *mut c_void, rule: u32, out: *mut u64) -> Status,
    pub clear_rule_hits: unsafe extern "C" fn(b: *mut c_void, rule: u32) -> Status,
    pub attach: unsafe extern "C" fn(b: *mut c_void, ifindex: u32, xdp_mode: u32) -> Status,
    pub poll_events: unsafe extern "C" fn(b: *mut c_void, timeout_ms: u64, sink: Sink, sink_ctx: *mut c_void) -> Status,
    pub drop: DropBackend,
    pub free_error: FreeError,
}

/// `bpfeval_shared::packetfilter::run`: never returns (the process exits with the contract's code).
pub type Run = unsafe extern "C" fn(lib: *const c_char, backend: *const Backend) -> !;

/// The symbol the lifecycle exports for [`Run`].
pub const RUN: &[u8] = b"bpfeval_packetfilter_run\0";
