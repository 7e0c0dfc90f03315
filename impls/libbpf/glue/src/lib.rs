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
