//! lsmbpf BPF LSM program on `path_chroot`: a containerized process (PID namespace, or with
//! `CRITERION_MNT_NS` mount namespace, other than the loader's) may not chroot to its own root
//! directory (see `bpfeval_shared::lsmbpf::abi` for the layout this implements byte for byte).
//! Built by `cargo bpf build` (cargo-bpf 2.3.0, Rust 1.59, LLVM 13) from the loader's build.rs.
//!
//! RedBPF has no LSM program type: no `#[lsm]` macro, no context type, no loader support. The
//! program is a plain function in the section `lsm/path_chroot` (the name BPF loaders attach LSM
//! programs by), and its context is what the kernel passes to every BPF LSM program: the hook's
//! arguments as an array of u64 (`path`), then the return value so far (`ret`). It is loaded and
//! attached by lsmbpf-aya's loader (see ../src/main.rs).
//!
//! Kernel structs are read with `bpf_probe_read_kernel` at the offsets the loader found in the
//! running kernel's BTF (`OFFSETS`), as the Aya program does: Rust BPF programs carry no CO-RE
//! relocations, and redbpf-probes' own bindings are those of the build machine's 6.1 headers.
#![no_std]
#![no_main]

use core::ffi::c_void;
use core::mem::{size_of, MaybeUninit};
use core::ptr;

use lsmbpf_redbpf_types::*;
use redbpf_probes::bindings::*;
use redbpf_probes::helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, gen};
use redbpf_probes::maps::PerCpuArray;
use redbpf_macros::{map, program};

program!(0xFFFFFFFE, "Dual MIT/GPL");

const EPERM: i32 = 1;
const MAX_ERRNO: i32 = 4095;

// Set by the loader before load (.rodata); read volatile so the compiler keeps the loads.
#[no_mangle]
static SETTINGS: Settings = Settings { pidns_dev: 0, pidns_ino: 0, mntns_ino: 0, criterion: 0, mode: 0, _reserved: 0 };
#[no_mangle]
static OFFSETS: Offsets = Offsets {
    task_fs: 0,
    task_nsproxy: 0,
    task_thread_pid: 0,
    fs_root: 0,
    path_mnt: 0,
    path_dentry: 0,
    dentry_name: 0,
    qstr_name: 0,
    nsproxy_mnt_ns: 0,
    mnt_namespace_ns: 0,
    ns_common_inum: 0,
    pid_level: 0,
    pid_numbers: 0,
    upid_ns: 0,
    upid_size: 0,
    pid_namespace_ns: 0,
};

// aya names a map of a legacy `maps/` section after its symbol (RedBPF after the section), so
// the statics carry the maps' names.
#[map(link_section = "maps/counters")]
#[allow(non_upper_case_globals)]
static mut counters: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT);
// redbpf-probes has no ring buffer map, and its `#[map]` refuses map types it does not know: this
// is what `#[map]` itself emits for a map, a `bpf_map_def` in an ELF section `maps/<name>`.
#[no_mangle]
#[link_section = "maps/events"]
#[allow(non_upper_case_globals)]
static mut events: bpf_map_def = bpf_map_def {
    type_: bpf_map_type_BPF_MAP_TYPE_RINGBUF,
    key_size: 0,
    value_size: 0,
    max_entries: 256 * 1024,
    map_flags: 0,
};

#[no_mangle]
#[link_section = "lsm/path_chroot"]
pub extern "C" fn lsmbpf(ctx: *const u64) -> i32 {
    // SAFETY: an LSM program's context holds the hook's one argument and the return value so far.
    let (path, ret) = unsafe { (*ctx as *const u8, *ctx.add(1) as i32) };
    // SAFETY: read-only globals the loader filled in.
    let (settings, off) = unsafe { (ptr::read_volatile(&SETTINGS), ptr::read_volatile(&OFFSETS)) };
    let task = bpf_get_current_task() as *const u8;
    let audit = settings.mode == MODE_AUDIT;

    count(COUNTER_CALLS);
    // An earlier program on this hook denied: keep its verdict (within [-MAX_ERRNO, 0], the
    // range the verifier of kernels >= 6.12 demands).
    if ret != 0 {
        count(COUNTER_PRIOR_DENY);
        return if ret < 0 && ret >= -MAX_ERRNO { ret } else { -EPERM };
    }
    if !containerized(&settings, &off, task) {
        count(COUNTER_ALLOW_HOST);
        return 0;
    }
    // "/" is the caller's own root directory: the same dentry on the same mount.
    let fs = read_ptr(task, off.task_fs);
    let root = off.fs_root;
    if read::<u64>(path, off.path_dentry) != read::<u64>(fs, root + off.path_dentry)
        || read::<u64>(path, off.path_mnt) != read::<u64>(fs, root + off.path_mnt)
    {
        count(COUNTER_ALLOW_OTHER);
        return 0;
    }
    count(if audit { COUNTER_AUDIT } else { COUNTER_DENY });
    report(&off, task, path, if audit { VERDICT_AUDIT } else { VERDICT_DENY });
    if audit {
        0
    } else {
        -EPERM
    }
}

/// The `T` at `base + off` in kernel memory; zero if it cannot be read.
#[inline(always)]
fn read<T: Copy + Default>(base: *const u8, off: u32) -> T {
    let mut value = MaybeUninit::<T>::uninit();
    // SAFETY: bpf_probe_read_kernel checks the address; a fault gives an error, not a crash.
    let err = unsafe {
        gen::bpf_probe_read_kernel(
            value.as_mut_ptr() as *mut c_void,
            size_of::<T>() as u32,
            base.wrapping_add(off as usize) as *const c_void,
        )
    };
    if err == 0 {
        // SAFETY: the helper filled `value` when it returned 0.
        unsafe { value.assume_init() }
    } else {
        T::default()
    }
}

/// The pointer at `base + off` (raw pointers have no `Default` in Rust 1.59).
#[inline(always)]
fn read_ptr(base: *const u8, off: u32) -> *const u8 {
    read::<u64>(base, off) as *const u8
}

#[inline(always)]
fn containerized(settings: &Settings, off: &Offsets, task: *const u8) -> bool {
    if settings.criterion == CRITERION_MNT_NS {
        return mntns_of(off, task) != settings.mntns_ino;
    }
    let mut ns = bpf_pidns_info { pid: 0, tgid: 0 };
    // Non-zero when the current PID namespace is not the one with this dev/inode.
    let size = size_of::<bpf_pidns_info>() as u32;
    // SAFETY: `ns` is a valid bpf_pidns_info of the size passed.
    unsafe { gen::bpf_get_ns_current_pid_tgid(settings.pidns_dev, settings.pidns_ino, &mut ns, size) != 0 }
}

#[inline(always)]
fn mntns_of(off: &Offsets, task: *const u8) -> u32 {
    let nsproxy = read_ptr(task, off.task_nsproxy);
    let mnt_ns = read_ptr(nsproxy, off.nsproxy_mnt_ns);
    read(mnt_ns, off.mnt_namespace_ns + off.ns_common_inum)
}

/// The PID namespace the task lives in (task_active_pid_ns): `thread_pid->numbers[level].ns`.
#[inline(always)]
fn pidns_of(off: &Offsets, task: *const u8) -> u32 {
    let pid = read_ptr(task, off.task_thread_pid);
    let level: u32 = read(pid, off.pid_level);
    let ns = read_ptr(pid, off.pid_numbers + level * off.upid_size + off.upid_ns);
    read(ns, off.pid_namespace_ns + off.ns_common_inum)
}

#[inline(always)]
fn report(off: &Offsets, task: *const u8, path: *const u8, verdict: u8) {
    // No ring buffer API in redbpf-probes: the raw helpers its bindings generate.
    // SAFETY: reserve on the ring buffer map above; a non-null record has room for an Event.
    let e = unsafe { gen::bpf_ringbuf_reserve(&mut events as *mut _ as *mut c_void, size_of::<Event>() as u64, 0) }
        as *mut Event;
    if e.is_null() {
        count(COUNTER_EVENTS_LOST);
        return;
    }
    let id = bpf_get_current_pid_tgid();
    let dentry = read_ptr(path, off.path_dentry);
    let name = read_ptr(dentry, off.dentry_name + off.qstr_name);
    // Written in place, as whole fields and words (layout in `types::Event`): the record is not
    // zeroed, and no byte-wise zeroing that LLVM could turn into a memset call.
    let words = e as *mut u64;
    // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes; both
    // helpers bound their copies by the sizes passed and check the source addresses.
    unsafe {
        (*e).ts_ns = bpf_ktime_get_ns();
        (*e).pid = (id >> 32) as u32;
        (*e).tid = id as u32;
        (*e).pidns = pidns_of(off, task);
        (*e).mntns = mntns_of(off, task);
        // verdict, pad[7]
        words.add(3).write(u64::from_ne_bytes([verdict, 0, 0, 0, 0, 0, 0, 0]));
        // comm[16] and path[32]: the helpers stop at the NUL, so the tails are zeroed first;
        // volatile, or LLVM merges the zero stores into a call to a byte-wise memset.
        for i in 4..10 {
            words.add(i).write_volatile(0);
        }
        gen::bpf_get_current_comm((*e).comm.as_mut_ptr() as *mut c_void, COMM_LEN as u32);
        gen::bpf_probe_read_kernel_str((*e).path.as_mut_ptr() as *mut c_void, PATH_LEN as u32, name as *const c_void);
        gen::bpf_ringbuf_submit(e as *mut c_void, 0);
    }
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(index: u32) {
    // SAFETY: a map lookup; the value is this CPU's slot.
    if let Some(p) = unsafe { counters.get_mut(index) } {
        *p += 1;
    }
}
