//! Calls into the Go side of a cilium/ebpf loader (`impls/cilium-ebpf/common/glue.go`): map
//! access by map name, per-CPU counters, the ring buffer, and closing. Each use case's
//! `src/glue.rs` adds its own load and attach calls and implements the lifecycle's `Backend`.
//! Tool glue, not the library's cost: a Go program would make these calls directly.

use std::ffi::{c_char, c_void, CStr, CString};
use std::time::Duration;

use anyhow::{anyhow, Result};

extern "C" {
    fn cebpf_map_update(name: *const c_char, key: *const c_void, key_len: usize, value: *const c_void, value_len: usize, flags: u64) -> *mut c_char;
    fn cebpf_map_delete(name: *const c_char, key: *const c_void, key_len: usize) -> *mut c_char;
    fn cebpf_percpu_sum(name: *const c_char, index: u32, out: *mut u64) -> *mut c_char;
    fn cebpf_percpu_zero(name: *const c_char, index: u32) -> *mut c_char;
    fn cebpf_poll(timeout_ms: u32, sink: extern "C" fn(*mut c_void, *const c_void, usize), ctx: *mut c_void) -> *mut c_char;
    fn cebpf_close() -> *mut c_char;
}

/// `BPF_ANY`, `BPF_NOEXIST`: the update flags the loaders use.
pub const ANY: u64 = 0;
pub const NO_EXIST: u64 = 1;

/// The Go side's result: NULL, or an error text in C memory that is ours to free.
pub fn check(err: *mut c_char) -> Result<()> {
    if err.is_null() {
        return Ok(());
    }
    // SAFETY: a non-NULL result is a NUL-terminated string from C.CString (malloc).
    let text = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    // SAFETY: allocated by malloc, freed once.
    unsafe { libc::free(err.cast()) };
    Err(anyhow!(text))
}

fn cname(map: &str) -> CString {
    CString::new(map).expect("map names have no NUL")
}

pub fn update(map: &str, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
    let name = cname(map);
    // SAFETY: the pointers are valid for the lengths given, for the duration of the call.
    check(unsafe { cebpf_map_update(name.as_ptr(), key.as_ptr().cast(), key.len(), value.as_ptr().cast(), value.len(), flags) })
}

/// Deletes `key`; a missing key is not an error.
pub fn delete(map: &str, key: &[u8]) -> Result<()> {
    let name = cname(map);
    // SAFETY: as for `update`.
    check(unsafe { cebpf_map_delete(name.as_ptr(), key.as_ptr().cast(), key.len()) })
}

/// One per-CPU u64 counter summed over all possible CPUs.
pub fn percpu_sum(map: &str, index: u32) -> Result<u64> {
    let name = cname(map);
    let mut sum = 0;
    // SAFETY: `sum` outlives the call.
    check(unsafe { cebpf_percpu_sum(name.as_ptr(), index, &mut sum) })?;
    Ok(sum)
}

/// All `count` counters of a per-CPU u64 array, each summed over CPUs.
pub fn percpu_sums(map: &str, count: u32) -> Result<Vec<u64>> {
    (0..count).map(|i| percpu_sum(map, i)).collect()
}

/// Zeroes one per-CPU u64 counter on every CPU.
pub fn percpu_zero(map: &str, index: u32) -> Result<()> {
    let name = cname(map);
    // SAFETY: a valid C string for the duration of the call.
    check(unsafe { cebpf_percpu_zero(name.as_ptr(), index) })
}

/// Waits at most `timeout` for `events` records and hands each one to `sink`.
pub fn poll(timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
    extern "C" fn trampoline(ctx: *mut c_void, data: *const c_void, len: usize) {
        // SAFETY: `ctx` is the `&mut &mut dyn FnMut` below, alive during `cebpf_poll`; `data`
        // points at `len` bytes of the record for the duration of this call.
        let (sink, record) = unsafe { (&mut *ctx.cast::<&mut dyn FnMut(&[u8])>(), std::slice::from_raw_parts(data.cast::<u8>(), len)) };
        sink(record);
    }
    let mut sink = sink;
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: `sink` outlives the call; the trampoline is only called during it.
    check(unsafe { cebpf_poll(ms, trampoline, (&mut sink as *mut &mut dyn FnMut(&[u8])).cast()) })
}

/// The loaded object on the Go side: dropping it detaches and closes everything.
pub struct Loaded(());

impl Loaded {
    /// After a successful load call.
    pub fn new(load_result: *mut c_char) -> Result<Loaded> {
        check(load_result).map(|()| Loaded(()))
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: no arguments; the Go side forgets its state.
        if let Err(e) = check(unsafe { cebpf_close() }) {
            eprintln!("warning: closing the BPF objects: {e:#}");
        }
    }
}
