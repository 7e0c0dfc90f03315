//! `bpfeval_shared::packetfilter` for RedBPF loaders: the same `Backend` trait, served by the
//! shared lifecycle through `bpfeval-shared-ffi`.

use std::ffi::{c_void, CString};
use std::time::Duration;

use anyhow::Result;
use bpfeval_shared_ffi::packetfilter as ffi;
use bpfeval_shared_ffi::{Sink, Status, XDP_MODE_SKB};

use crate::cli::XdpMode;
use crate::lifecycle::{self, backend, copy_counters, drop_backend, forward, status};

/// The map layout every library's program implements: the very file `bpfeval-shared` compiles.
#[path = "../../../shared/src/packetfilter/abi.rs"]
pub mod abi;

use abi::Settings;

/// What the loader needs to know before loading (`bpfeval_shared::packetfilter::LoadParams`).
#[derive(Debug, Clone, Copy)]
pub struct LoadParams {
    /// Rules per generation; `rule_hits` needs `2 * capacity` entries and each LPM trie
    /// `2 * capacity` max entries.
    pub capacity: u32,
}

/// `bpfeval_shared::packetfilter::Backend`, method for method. Dropping the backend must
/// detach the program.
pub trait Backend {
    /// Inserts (`Some(rule id)`) or deletes (`None`) one `rules_v4` entry.
    fn set_rule_v4(&mut self, prefixlen: u32, data: [u8; 8], rule: Option<u32>) -> Result<()>;
    /// Inserts (`Some(rule id)`) or deletes (`None`) one `rules_v6` entry.
    fn set_rule_v6(&mut self, prefixlen: u32, data: [u8; 20], rule: Option<u32>) -> Result<()>;
    fn set_settings(&mut self, generation: u32, settings: &Settings) -> Result<()>;
    fn set_generation(&mut self, generation: u32) -> Result<()>;
    /// The `verdicts` counters, summed over CPUs, in `abi` index order.
    fn verdicts(&self) -> Result<Vec<u64>>;
    /// One `rule_hits` counter, summed over CPUs.
    fn rule_hits(&self, rule: u32) -> Result<u64>;
    /// Zeroes one `rule_hits` counter on every CPU.
    fn clear_rule_hits(&mut self, rule: u32) -> Result<()>;
    fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()>;
    /// Waits at most `timeout` for ring buffer records and hands each one to `sink`.
    fn poll_events(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()>;
}

/// Runs the packetfilter contract (`bpfeval_shared::packetfilter::run`) with this backend and
/// exits the process.
pub fn run<B: Backend, F: FnOnce(&LoadParams) -> Result<B>>(lib: &str, load: F) -> ! {
    // SAFETY: bpfeval-shared-lifecycle exports `RUN` as a `Run`.
    let run: ffi::Run = unsafe { lifecycle::entry(ffi::RUN) };
    let mut loader = Some(load);
    let table = ffi::Backend {
        loader: &mut loader as *mut Option<F> as *mut c_void,
        load: load_backend::<B, F>,
        set_rule_v4: set_rule_v4::<B>,
        set_rule_v6: set_rule_v6::<B>,
        set_settings: set_settings::<B>,
        set_generation: set_generation::<B>,
        verdicts: verdicts::<B>,
        rule_hits: rule_hits::<B>,
        clear_rule_hits: clear_rule_hits::<B>,
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

unsafe extern "C" fn load_backend<B: Backend, F: FnOnce(&LoadParams) -> Result<B>>(
    loader: *mut c_void,
    capacity: u32,
    out: *mut *mut c_void,
) -> Status {
    let load = (*(loader as *mut Option<F>)).take();
    status(|| {
        let backend = load.expect("load is called once")(&LoadParams { capacity })?;
        *out = Box::into_raw(Box::new(backend)) as *mut c_void;
        Ok(())
    })
}

unsafe extern "C" fn set_rule_v4<B: Backend>(
    b: *mut c_void,
    len: u32,
    data: *const [u8; 8],
    insert: bool,
    rule: u32,
) -> Status {
    status(|| backend::<B>(b).set_rule_v4(len, *data, if insert { Some(rule) } else { None }))
}

unsafe extern "C" fn set_rule_v6<B: Backend>(
    b: *mut c_void,
    len: u32,
    data: *const [u8; 20],
    insert: bool,
    rule: u32,
) -> Status {
    status(|| backend::<B>(b).set_rule_v6(len, *data, if insert { Some(rule) } else { None }))
}

unsafe extern "C" fn set_settings<B: Backend>(b: *mut c_void, generation: u32, s: *const ffi::Settings) -> Status {
    let s = &*s;
    let settings = Settings {
        default_drop_v4: s.default_drop_v4,
        default_drop_v6: s.default_drop_v6,
        log_every: s.log_every,
        _reserved: 0,
    };
    status(|| backend::<B>(b).set_settings(generation, &settings))
}

unsafe extern "C" fn set_generation<B: Backend>(b: *mut c_void, generation: u32) -> Status {
    status(|| backend::<B>(b).set_generation(generation))
}

unsafe extern "C" fn verdicts<B: Backend>(b: *mut c_void, out: *mut u64, len: usize) -> Status {
    status(|| copy_counters(backend::<B>(b).verdicts()?, out, len))
}

unsafe extern "C" fn rule_hits<B: Backend>(b: *mut c_void, rule: u32, out: *mut u64) -> Status {
    status(|| {
        *out = backend::<B>(b).rule_hits(rule)?;
        Ok(())
    })
}

unsafe extern "C" fn clear_rule_hits<B: Backend>(b: *mut c_void, rule: u32) -> Status {
    status(|| backend::<B>(b).clear_rule_hits(rule))
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
