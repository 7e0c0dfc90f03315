//! Tool glue of every libbpf (C) implementation: the C loaders (`impls/libbpf/<usecase>/*.c`)
//! return 0 or a negative errno and hand ring buffer records to a callback; this turns both into
//! what the shared Rust lifecycle (`bpfeval_shared::<usecase>::run`) expects.

use std::ffi::{c_int, c_void};
use std::io;
use std::time::Duration;

use anyhow::{Context, Result};

/// `ret` of a C loader function as a result: a negative errno is the error, `what` its context.
pub fn check(ret: c_int, what: &str) -> Result<()> {
    if ret < 0 {
        return Err(io::Error::from_raw_os_error(-ret)).context(what.to_string());
    }
    Ok(())
}

/// The C side's `record_sink` (impls/libbpf/common/helpers.h).
pub type RecordSink = unsafe extern "C" fn(ctx: *mut c_void, data: *const c_void, len: usize);

/// Polls through `poll(timeout_ms, sink, ctx)`, a C function that calls `sink(ctx, record)` for
/// every ring buffer record, handing each record to `sink`.
pub fn poll(
    timeout: Duration,
    sink: &mut dyn FnMut(&[u8]),
    poll: impl FnOnce(c_int, RecordSink, *mut c_void) -> c_int,
) -> Result<()> {
    unsafe extern "C" fn forward(ctx: *mut c_void, data: *const c_void, len: usize) {
        // SAFETY: `ctx` is the `&mut &mut dyn FnMut` below, alive for the whole poll call, and
        // libbpf hands a record of `len` readable bytes.
        let sink = unsafe { &mut *(ctx as *mut &mut dyn FnMut(&[u8])) };
        sink(unsafe { std::slice::from_raw_parts(data as *const u8, len) });
    }
    let timeout_ms = timeout.as_millis().min(c_int::MAX as u128) as c_int;
    let mut sink = sink;
    check(poll(timeout_ms, forward, &mut sink as *mut &mut dyn FnMut(&[u8]) as *mut c_void), "ring_buffer__poll")
}

/// A C loader's state, the pointer its `*_load` function made; dropped, its `*_destroy`
/// function detaches and closes everything.
pub struct Loaded<T> {
    ptr: *mut T,
    destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Loaded<T> {
    /// `load(&mut ptr)`, a C function that sets `ptr` on success; `what` is the error's context.
    pub fn new(what: &str, load: impl FnOnce(*mut *mut T) -> c_int, destroy: unsafe extern "C" fn(*mut T)) -> Result<Self> {
        let mut ptr = std::ptr::null_mut();
        check(load(&mut ptr), what)?;
        Ok(Loaded { ptr, destroy })
    }

    /// For the C functions' first argument.
    pub fn ptr(&self) -> *mut T {
        self.ptr
    }
}

impl<T> Drop for Loaded<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from the matching load function and is destroyed once.
        unsafe { (self.destroy)(self.ptr) }
    }
}

/// `n` counters that `read(out)` writes to `out[0..n]`.
pub fn counters(n: u32, what: &str, read: impl FnOnce(*mut u64) -> c_int) -> Result<Vec<u64>> {
    let mut out = vec![0u64; n as usize];
    check(read(out.as_mut_ptr()), what)?;
    Ok(out)
}

/// One counter that `read(out)` writes.
pub fn counter(what: &str, read: impl FnOnce(*mut u64) -> c_int) -> Result<u64> {
    let mut out = 0;
    check(read(&mut out), what)?;
    Ok(out)
}
