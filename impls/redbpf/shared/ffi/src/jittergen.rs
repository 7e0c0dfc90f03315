//! `bpfeval_shared::jittergen`: the `Backend` trait as a table of C functions.

use std::ffi::c_void;
use std::os::raw::c_char;

use crate::{DropBackend, FreeError, Status};

/// `rules[i]` (`bpfeval_shared::jittergen::abi::Rule`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Rule {
    pub chance: u64,
    pub base_ns: u64,
    pub min_ns: u64,
    pub span_ns: u64,
    pub action: u32,
    pub flags: u32,
    pub port: u16,
    pub protocol: u8,
}

/// `bpfeval_shared::jittergen::TcMode`.
pub const TC_MODE_TCX: u32 = 0;
pub const TC_MODE_NETLINK: u32 = 1;

/// A jittergen `Backend` as C functions. `load` gets `loader` and returns the backend's handle
/// through `backend`; every other function gets that handle; `drop` detaches and frees.
#[repr(C)]
pub struct Backend {
    pub loader: *mut c_void,
    pub load: unsafe extern "C" fn(loader: *mut c_void, backend: *mut *mut c_void) -> Status,
    pub set_rule: unsafe extern "C" fn(b: *mut c_void, index: u32, rule: *const Rule) -> Status,
    /// `settings[0]` (`abi::Settings`): the number of rules.
    pub set_settings: unsafe extern "C" fn(b: *mut c_void, rule_count: u32) -> Status,
    /// Writes `len` counters to `out`.
    pub counters: unsafe extern "C" fn(b: *mut c_void, out: *mut u64, len: usize) -> Status,
    pub rule_hits: unsafe extern "C" fn(b: *mut c_void, rule: u32, out: *mut u64) -> Status,
    /// `iface` is the interface's NUL-terminated name, `tc_mode` a `TC_MODE_*`.
    pub attach: unsafe extern "C" fn(b: *mut c_void, iface: *const c_char, ifindex: u32, tc_mode: u32) -> Status,
    pub drop: DropBackend,
    pub free_error: FreeError,
}

/// `bpfeval_shared::jittergen::run`: never returns (the process exits with the contract's code).
pub type Run = unsafe extern "C" fn(lib: *const c_char, backend: *const Backend) -> !;

/// The symbol the lifecycle exports for [`Run`].
pub const RUN: &[u8] = b"bpfeval_jittergen_run\0";
