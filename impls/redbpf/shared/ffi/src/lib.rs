//! The C ABI between the two halves of a RedBPF implementation.
//!
//! RedBPF builds only with Rust 1.59, and `bpfeval-shared` (CLI, config, output, lifecycle) needs
//! today's Rust. So the shared lifecycle is built as a shared object (`lifecycle/`) with today's
//! toolchain and loaded into the RedBPF loader's process (`bpfeval-shared-redbpf`), and the two
//! meet here: the loader hands the lifecycle a table of its `Backend` functions, the lifecycle
//! drives them exactly as it drives the Aya and libbpf-rs backends.
//!
//! Every function returns an error message, or null on success. The message is a
//! NUL-terminated string owned by the loader's side, released with the table's `free_error`.
//! No panic crosses the boundary (each side catches or aborts).

use std::ffi::c_void;
use std::os::raw::c_char;

/// An error message, or null for success (see the module docs).
pub type Status = *mut c_char;

/// Receives one ring buffer record.
pub type Sink = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);

/// `settings[generation]` (`bpfeval_shared::packetfilter::abi::Settings`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub default_drop_v4: u32,
    pub default_drop_v6: u32,
    pub log_every: u32,
    pub reserved: u32,
}

/// `bpfeval_shared::cli::XdpMode`.
pub const XDP_MODE_NATIVE: u32 = 0;
pub const XDP_MODE_SKB: u32 = 1;

/// A packetfilter `Backend` as C functions. `load` gets `loader` and returns the backend's
/// handle through `backend`; every other function gets that handle; `drop` detaches and frees.
#[repr(C)]
pub struct PacketfilterBackend {
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
    pub drop: unsafe extern "C" fn(b: *mut c_void),
    pub free_error: unsafe extern "C" fn(error: *mut c_char),
}

/// `bpfeval_shared::packetfilter::run`: never returns (the process exits with the contract's code).
pub type PacketfilterRun = unsafe extern "C" fn(lib: *const c_char, backend: *const PacketfilterBackend) -> !;

/// The symbol the lifecycle exports for [`PacketfilterRun`].
pub const PACKETFILTER_RUN: &[u8] = b"bpfeval_packetfilter_run\0";
