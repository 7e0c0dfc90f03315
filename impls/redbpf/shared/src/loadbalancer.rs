//! `bpfeval_shared::loadbalancer` for RedBPF loaders: the same `Backend` trait, served by the
//! shared lifecycle through `bpfeval-shared-ffi`.

use std::ffi::{c_void, CString};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared_ffi::loadbalancer as ffi;
use bpfeval_shared_ffi::{Sink, Status, XDP_MODE_SKB};

use crate::cli::XdpMode;
use crate::lifecycle::{self, backend, copy_counters, drop_backend, forward, status};

/// The map layout and flow hash every library's program implements: the very file
/// `bpfeval-shared` compiles.
#[path = "../../../shared/src/loadbalancer/abi.rs"]
pub mod abi;

use abi::{Settings, BACKEND_SIZE};

/// `bpfeval_shared::loadbalancer::Backend`, method for method. Dropping the backend must
/// detach the program.
pub trait Backend {
    fn set_settings(&mut self, settings: &Settings) -> Result<()>;
    /// Adds one `vips_v4` entry.
    fn add_vip_v4(&mut self, addr: [u8; 4], index: u32) -> Result<()>;
    /// Adds one `vips_v6` entry.
    fn add_vip_v6(&mut self, addr: [u8; 16], index: u32) -> Result<()>;
    /// Adds one `ports` entry (the port in network byte order).
    fn add_port(&mut self, port: [u8; 2], index: u32) -> Result<()>;
    /// Writes `backends[slot]` (`abi::backend_bytes`).
    fn set_backend(&mut self, slot: u32, value: [u8; BACKEND_SIZE]) -> Result<()>;
    /// Writes `maglev[index]`.
    fn set_table_entry(&mut self, index: u32, slot: u32) -> Result<()>;
    /// The `verdicts` counters, summed over CPUs, in `abi` index order.
    fn verdicts(&self) -> Result<Vec<u64>>;
    /// One `backend_hits` counter, summed over CPUs.
    fn backend_hits(&self, slot: u32) -> Result<u64>;
    /// Zeroes one `backend_hits` counter on every CPU.
    fn clear_backend_hits(&mut self, slot: u32) -> Result<()>;
    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// Runs the loadbalancer contract (`bpfeval_shared::loadbalancer::run`) with this backend and
/// exits the process.
pub fn run<B: Backend, F: FnOnce() -> Result<B>>(lib: &str, load: F) -> ! {
    // SAFETY: bpfeval-shared-lifecycle exports `RUN` as a `Run`.
    let run: ffi::Run = unsafe { lifecycle::entry(ffi::RUN) };
    let mut loader = Some(load);
    let table = ffi::Backend {
        loader: &mut loader as *mut Option<F> as *mut c_void,
        load: load_backend::<B, F>,
        set_settings: set_settings::<B>,
        add_vip_v4: add_vip_v4::<B>,
        add_vip_v6: add_vip_v6::<B>,
        add_port: add_port::<B>,
        set_backend: set_backend::<B>,
        set_table_entry: set_table_entry::<B>,
        verdicts: verdicts::<B>,
        backend_hits: backend_hits::<B>,
        clear_backend_hits: clear_backend_hits::<B>,
        attach: attach::<B>,
        poll_events: poll_events::<B>,
        drop: drop_backend::<B>,
        free_error: lifecycle::free_error,
    };
    let lib = CString::new(lib).expect("library name without NUL");
    // SAFETY: both pointers stay valid until the process exits, which `run` does.
    unsafe { run(lib.as_ptr(), &table) }
}

// The table's functions. SAFETY (all of them): the lifecycle passes the handle `load` returned,
// from one thread, and pointers valid for the call (bpfeval-shared-ffi's contract).

unsafe extern "C" fn load_backend<B: Backend, F: FnOnce() -> Result<B>>(
    loader: *mut c_void,
    out: *mut *mut c_void,
) -> Status {
    let load = (*(loader as *mut Option<F>)).take();
    status(|| {
        let backend = load.expect("load is called once")()?;
        *out = Box::into_raw(Box::new(backend)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn set_settings<B: Backend>(b: *mut c_void, s: *const ffi::Settings) -> Status {
    let settings = Settings { any_vip: (*s).any_vip, log_every: (*s).log_every };
    status(|| backend::<B>(b).set_settings(&settings))
}

unsafe extern "C" fn add_vip_v4<B: Backend>(b: *mut c_void, addr: *const [u8; 4], index: u32) -> Status {
    status(|| backend::<B>(b).add_vip_v4(*addr, index))
}

unsafe extern "C" fn add_vip_v6<B: Backend>(b: *mut c_void, addr: *const [u8; 16], index: u32) -> Status {
    status(|| backend::<B>(b).add_vip_v6(*addr, index))
}

unsafe extern "C" fn add_port<B: Backend>(b: *mut c_void, port: *const [u8; 2], index: u32) -> Status {
    status(|| backend::<B>(b).add_port(*port, index))
}

unsafe extern "C" fn set_backend<B: Backend>(b: *mut c_void, slot: u32, value: *const [u8; 8]) -> Status {
    status(|| backend::<B>(b).set_backend(slot, *value))
}

unsafe extern "C" fn set_table_entry<B: Backend>(b: *mut c_void, index: u32, slot: u32) -> Status {
    status(|| backend::<B>(b).set_table_entry(index, slot))
}

unsafe extern "C" fn verdicts<B: Backend>(b: *mut c_void, out: *mut u64, len: usize) -> Status {
    status(|| copy_counters(backend::<B>(b).verdicts()?, out, len))
}

unsafe extern "C" fn backend_hits<B: Backend>(b: *mut c_void, slot: u32, out: *mut u64) -> Status {
    status(|| {
        *out = backend::<B>(b).backend_hits(slot)?;
        Ok(())
    })
}

unsafe extern "C" fn clear_backend_hits<B: Backend>(b: *mut c_void, slot: u32) -> Status {
    status(|| backend::<B>(b).clear_backend_hits(slot))
}

unsafe extern "C" fn attach<B: Backend>(b: *mut c_void, ifindex: u32, mode: u32) -> Status {
    let mode = if mode == XDP_MODE_SKB { XdpMode::Skb } else { XdpMode::Native };
    status(|| backend::<B>(b).attach(ifindex, mode))
}

unsafe extern "C" fn poll_events<B: Backend>(
    b: *mut c_void,
    timeout_ms: u64,
    sink: Sink,
    ctx: *mut c_void,
) -> Status {
    status(|| backend::<B>(b).poll_events(Duration::from_millis(timeout_ms), &mut forward(sink, ctx)))
}
