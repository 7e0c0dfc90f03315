//! `bpfeval_shared::jittergen` for RedBPF loaders: the same `Backend` trait, served by the
//! shared lifecycle through `bpfeval-shared-ffi`.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::c_char;

use anyhow::Result;
use bpfeval_shared_ffi::jittergen as ffi;
use bpfeval_shared_ffi::Status;

use crate::lifecycle::{self, backend, copy_counters, drop_backend, status};

/// The map layout every library's program implements: the very file `bpfeval-shared` compiles.
#[path = "../../../shared/src/jittergen/abi.rs"]
pub mod abi;

/// How the TC program is attached (`bpfeval_shared::jittergen::TcMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcMode {
    /// A TCX bpf_link (kernel >= 6.6): detached when the process dies, however it dies.
    Tcx,
    /// A cls_bpf filter in direct-action mode under a `clsact` qdisc, through netlink. Not a
    /// link: a SIGKILLed loader leaves it attached.
    Netlink,
}

/// The interface to attach to (`bpfeval_shared::jittergen::Iface`).
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub index: u32,
}

/// `bpfeval_shared::jittergen::Backend`, method for method. Dropping the backend must detach
/// the program.
pub trait Backend {
    fn set_rule(&mut self, index: u32, rule: &abi::Rule) -> Result<()>;
    fn set_settings(&mut self, settings: &abi::Settings) -> Result<()>;
    /// The `counters`, summed over CPUs, in `abi` index order.
    fn counters(&self) -> Result<Vec<u64>>;
    /// One `rule_hits` counter, summed over CPUs.
    fn rule_hits(&self, rule: u32) -> Result<u64>;
    /// Attaches the program to the egress of `iface` the way `mode` says (for `Netlink`, after
    /// adding the `clsact` qdisc if it is missing).
    fn attach(&mut self, iface: &Iface, mode: TcMode) -> Result<()>;
}

/// Runs the jittergen contract (`bpfeval_shared::jittergen::run`) with this backend and exits
/// the process.
pub fn run<B: Backend, F: FnOnce() -> Result<B>>(lib: &str, load: F) -> ! {
    // SAFETY: bpfeval-shared-lifecycle exports `RUN` as a `Run`.
    let run: ffi::Run = unsafe { lifecycle::entry(ffi::RUN) };
    let mut loader = Some(load);
    let table = ffi::Backend {
        loader: &mut loader as *mut Option<F> as *mut c_void,
        load: load_backend::<B, F>,
        set_rule: set_rule::<B>,
        set_settings: set_settings::<B>,
        counters: counters::<B>,
        rule_hits: rule_hits::<B>,
        attach: attach::<B>,
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

unsafe extern "C" fn set_rule<B: Backend>(b: *mut c_void, index: u32, r: *const ffi::Rule) -> Status {
    let r = &*r;
    let rule = abi::Rule {
        chance: r.chance,
        base_ns: r.base_ns,
        min_ns: r.min_ns,
        span_ns: r.span_ns,
        action: r.action,
        flags: r.flags,
        port: r.port,
        protocol: r.protocol,
    };
    status(|| backend::<B>(b).set_rule(index, &rule))
}

unsafe extern "C" fn set_settings<B: Backend>(b: *mut c_void, rule_count: u32) -> Status {
    status(|| backend::<B>(b).set_settings(&abi::Settings { rule_count }))
}

unsafe extern "C" fn counters<B: Backend>(b: *mut c_void, out: *mut u64, len: usize) -> Status {
    status(|| copy_counters(backend::<B>(b).counters()?, out, len))
}

unsafe extern "C" fn rule_hits<B: Backend>(b: *mut c_void, rule: u32, out: *mut u64) -> Status {
    status(|| {
        *out = backend::<B>(b).rule_hits(rule)?;
        Ok(())
    })
}

unsafe extern "C" fn attach<B: Backend>(b: *mut c_void, iface: *const c_char, ifindex: u32, mode: u32) -> Status {
    let iface = Iface { name: CStr::from_ptr(iface).to_string_lossy().into_owned(), index: ifindex };
    let mode = if mode == ffi::TC_MODE_NETLINK { TcMode::Netlink } else { TcMode::Tcx };
    status(|| backend::<B>(b).attach(&iface, mode))
}
