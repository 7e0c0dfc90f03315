//! The embedded `bpfeval-shared-lifecycle` library and the error convention of its C ABI.

use std::ffi::{c_void, CStr, CString};
use std::io;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{bail, Context, Result};
use bpfeval_shared_ffi::{Sink, Status};

/// `libbpfeval_shared_lifecycle.so`, built by build.rs with the workspace's toolchain. Embedded,
/// so that a RedBPF loader is one file like every other implementation.
static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libbpfeval_shared_lifecycle.so"));

/// A use case's `run` function from the embedded library (`symbol`, NUL-terminated); if it
/// cannot be had, the process exits with the error.
///
/// # Safety
/// `F` is the function pointer type the library exports `symbol` as.
pub unsafe fn entry<F>(symbol: &[u8]) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>(), "a function pointer");
    match self::symbol(symbol) {
        Ok(addr) => std::mem::transmute_copy::<*mut c_void, F>(&addr),
        Err(e) => {
            eprintln!("error: {:#}", e);
            std::process::exit(1)
        }
    }
}

/// Loads the embedded library from an in-memory file and returns the address of `symbol`.
/// The library stays loaded: the process exits from inside it.
fn symbol(symbol: &[u8]) -> Result<*mut c_void> {
    // SAFETY: plain system calls on a file descriptor we own and close; dlopen and dlsym get
    // NUL-terminated strings.
    unsafe {
        let fd = libc::memfd_create(b"bpfeval-shared-lifecycle\0".as_ptr() as *const c_char, libc::MFD_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("memfd_create");
        }
        let mut written = 0;
        while written < LIBRARY.len() {
            let n = libc::write(fd, LIBRARY[written..].as_ptr() as *const c_void, LIBRARY.len() - written);
            if n < 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e).context("writing the lifecycle library to a memfd");
            }
            written += n as usize;
        }
        let path = CString::new(format!("/proc/self/fd/{}", fd)).expect("no NUL");
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        // The mapping keeps the file alive; the descriptor is not needed any more.
        libc::close(fd);
        if handle.is_null() {
            bail!("dlopen of the lifecycle library: {}", CStr::from_ptr(libc::dlerror()).to_string_lossy());
        }
        let addr = libc::dlsym(handle, symbol.as_ptr() as *const c_char);
        if addr.is_null() {
            bail!("the lifecycle library has no `{}`", String::from_utf8_lossy(&symbol[..symbol.len() - 1]));
        }
        Ok(addr)
    }
}

/// Runs one backend call for the C side: null on success, else the error (or panic) message.
pub fn status(call: impl FnOnce() -> Result<()>) -> Status {
    let message = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => return std::ptr::null_mut(),
        Ok(Err(e)) => format!("{:#}", e),
        Err(panic) => match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
            (Some(s), _) => format!("panic: {}", s),
            (_, Some(s)) => format!("panic: {}", s),
            _ => "panic".to_string(),
        },
    };
    CString::new(message.replace('\0', " ")).expect("NULs replaced").into_raw()
}

/// Gives an error message from [`status`] back.
pub unsafe extern "C" fn free_error(error: *mut c_char) {
    drop(CString::from_raw(error));
}

// The parts of every use case's table that do not depend on the use case. SAFETY: the lifecycle
// passes the handle `load` returned, from one thread (bpfeval-shared-ffi's contract).

/// The backend behind a table handle.
pub unsafe fn backend<'a, B>(b: *mut c_void) -> &'a mut B {
    &mut *(b as *mut B)
}

/// The table's `drop`: drops (and so detaches) the backend.
pub unsafe extern "C" fn drop_backend<B>(b: *mut c_void) {
    // A panic must not unwind into the lifecycle.
    if catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(b as *mut B)))).is_err() {
        eprintln!("error: panic while detaching the program");
        std::process::abort();
    }
}

/// Writes a backend's counters to the lifecycle's `out`, which has room for `len`.
pub unsafe fn copy_counters(counters: Vec<u64>, out: *mut u64, len: usize) -> Result<()> {
    anyhow::ensure!(counters.len() == len, "{} counters, expected {}", counters.len(), len);
    std::slice::from_raw_parts_mut(out, len).copy_from_slice(&counters);
    Ok(())
}

/// The lifecycle's C sink as the `FnMut` a backend's `poll_events` takes.
pub fn forward(sink: Sink, ctx: *mut c_void) -> impl FnMut(&[u8]) {
    // SAFETY: the lifecycle keeps `ctx` valid for the poll call this closure lives in.
    move |record: &[u8]| unsafe { sink(ctx, record.as_ptr(), record.len()) }
}
