//! `bpfeval_shared`'s lifecycles behind the C ABI of `bpfeval-shared-ffi`, for loaders built with
//! another Rust toolchain (RedBPF's 1.59). Each exported `run` wraps the loader's function table
//! in a `Backend` and hands it to the very same `bpfeval_shared::<usecase>::run` the Aya and
//! libbpf-rs loaders call. One module per use case, behind a feature of the same name.

use std::ffi::{c_void, CStr};
use std::time::Duration;

use anyhow::{anyhow, Result};
use bpfeval_shared_ffi as ffi;

#[cfg(feature = "packetfilter")]
mod packetfilter;
#[cfg(feature = "loadbalancer")]
mod loadbalancer;
#[cfg(feature = "comtrace")]
mod comtrace;
#[cfg(feature = "jittergen")]
mod jittergen;

/// What every use case's function table has besides its backend's methods.
#[allow(dead_code)] // with no use case enabled
trait Table {
    fn free_error(&self) -> ffi::FreeError;
    fn drop_backend(&self) -> ffi::DropBackend;
}

/// The loader's backend, seen through its function table: each use case implements its
/// `bpfeval_shared::<usecase>::Backend` for `Foreign<'_, its table>`.
#[allow(dead_code)] // with no use case enabled
struct Foreign<'t, T: Table> {
    table: &'t T,
    handle: *mut c_void,
}

#[allow(dead_code)] // with no use case enabled
impl<'t, T: Table> Foreign<'t, T> {
    /// Calls the table's `load` through `call`, which passes on where to write the handle.
    fn load(table: &'t T, call: impl FnOnce(*mut *mut c_void) -> ffi::Status) -> Result<Self> {
        let mut handle = std::ptr::null_mut();
        check(table.free_error(), call(&mut handle))?;
        Ok(Foreign { table, handle })
    }

    fn check(&self, status: ffi::Status) -> Result<()> {
        check(self.table.free_error(), status)
    }

    /// Calls the table's `poll_events` through `call` (timeout in ms, C sink, its context),
    /// forwarding each record to `sink`.
    fn poll(
        &self,
        timeout: Duration,
        mut sink: &mut dyn FnMut(&[u8]),
        call: impl FnOnce(u64, ffi::Sink, *mut c_void) -> ffi::Status,
    ) -> Result<()> {
        let (forward, ctx) = self::sink(&mut sink);
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.check(call(ms, forward, ctx))
    }
}

impl<T: Table> Drop for Foreign<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the handle is not used after this.
        unsafe { (self.table.drop_backend())(self.handle) };
    }
}

/// Turns a returned error message into an error (and gives the message back to its owner).
#[allow(dead_code)] // with no use case enabled
fn check(free_error: ffi::FreeError, status: ffi::Status) -> Result<()> {
    if status.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null status is a NUL-terminated message the loader gave up to us until
    // we hand it back with `free_error`.
    let msg = unsafe { CStr::from_ptr(status) }.to_string_lossy().into_owned();
    unsafe { free_error(status) };
    Err(anyhow!(msg))
}

/// A C sink that forwards each ring buffer record to `sink`, and its context (which borrows
/// `sink`: valid while that borrow lives).
#[allow(dead_code)] // with no use case enabled
fn sink(sink: &mut &mut dyn FnMut(&[u8])) -> (ffi::Sink, *mut c_void) {
    unsafe extern "C" fn forward(ctx: *mut c_void, data: *const u8, len: usize) {
        // SAFETY: `ctx` is the `&mut &mut dyn FnMut` below, alive for the call; `data` has `len` bytes.
        let sink = unsafe { &mut *(ctx as *mut &mut dyn FnMut(&[u8])) };
        sink(unsafe { std::slice::from_raw_parts(data, len) });
    }
    (forward, sink as *mut &mut dyn FnMut(&[u8]) as *mut c_void)
}
