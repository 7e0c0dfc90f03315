//! The C ABI between the two halves of a RedBPF implementation.
//!
//! RedBPF builds only with Rust 1.59, and `bpfeval-shared` (CLI, config, output, lifecycle) needs
//! today's Rust. So the shared lifecycle is built as a shared object (`lifecycle/`) with today's
//! toolchain and loaded into the RedBPF loader's process (`bpfeval-shared-redbpf`), and the two
//! meet here: the loader hands the lifecycle a table of its `Backend` functions, the lifecycle
//! drives them exactly as it drives the Aya and libbpf-rs backends. One module per use case,
//! behind a feature of the same name, so that a loader embeds only its own lifecycle.
//!
//! Every function returns an error message, or null on success. The message is a
//! NUL-terminated string owned by the loader's side, released with the table's `free_error`.
//! No panic crosses the boundary (each side catches or aborts).

use std::ffi::c_void;
use std::os::raw::c_char;

#[cfg(feature = "packetfilter")]
pub mod packetfilter;
#[cfg(feature = "loadbalancer")]
pub mod loadbalancer;
#[cfg(feature = "comtrace")]
pub mod comtrace;
#[cfg(feature = "jittergen")]
pub mod jittergen;

/// An error message, or null for success (see the module docs).
pub type Status = *mut c_char;

/// Gives an error message back to the side that made it.
pub type FreeError = unsafe extern "C" fn(error: *mut c_char);

/// Drops the backend behind a handle (which detaches its program).
pub type DropBackend = unsafe extern "C" fn(b: *mut c_void);

/// Receives one ring buffer record.
pub type Sink = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);

/// `bpfeval_shared::cli::XdpMode`.
pub const XDP_MODE_NATIVE: u32 = 0;
pub const XDP_MODE_SKB: u32 = 1;
