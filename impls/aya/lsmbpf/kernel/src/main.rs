//! lsmbpf BPF LSM program on `path_chroot`: a containerized process (PID namespace, or with
//! `CRITERION_MNT_NS` mount namespace, other than the loader's) may not chroot to its own root
//! directory (see `bpfeval_shared::lsmbpf::abi` for the layout this implements byte for byte).
//! Kernel structs are read with `bpf_probe_read_kernel` at the offsets the loader found in the
//! running kernel's BTF (`OFFSETS`): Rust BPF programs carry no CO-RE relocations.
// Only the bpfel build is the program; a host build (e.g. `cargo clippy --workspace`) compiles
// the same code as an inert binary instead of failing.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

use aya_ebpf::{
    bindings::bpf_pidns_info,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task, bpf_get_ns_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel, generated,
    },
    macros::{lsm, map},
    maps::{PerCpuArray, RingBuf},
    programs::LsmContext,
};
use lsmbpf_aya_types::*;

const EPERM: i32 = 1;
const MAX_ERRNO: i32 = 4095;

// Set by the loader before load (.rodata); read volatile so the compiler keeps the loads.
#[unsafe(no_mangle)]
static SETTINGS: Settings = Settings { pidns_dev: 0, pidns_ino: 0, mntns_ino: 0, criterion: 0, mode: 0, _reserved: 0 };
#[unsafe(no_mangle)]
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

#[map(name = "counters")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
#[map(name = "events")]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

#[lsm(hook = "path_chroot")]
pub fn lsmbpf(ctx: LsmContext) -> i32 {
    let path: *const u8 = ctx.arg(0);
    let ret: i32 = ctx.arg(1);
    // SAFETY: read-only globals the loader filled in.
    let (settings, off) = unsafe { (core::ptr::read_volatile(&SETTINGS), core::ptr::read_volatile(&OFFSETS)) };
    let task = unsafe { bpf_get_current_task() } as *const u8;
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
    let fs: *const u8 = read(task, off.task_fs);
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
fn read<T: Default>(base: *const u8, off: u32) -> T {
    // SAFETY: bpf_probe_read_kernel checks the address; a fault gives an error, not a crash.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize) as *const T) }.unwrap_or_default()
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
    unsafe { bpf_get_ns_current_pid_tgid(settings.pidns_dev, settings.pidns_ino, &mut ns, size) != 0 }
}

#[inline(always)]
fn mntns_of(off: &Offsets, task: *const u8) -> u32 {
    let nsproxy: *const u8 = read(task, off.task_nsproxy);
    let mnt_ns: *const u8 = read(nsproxy, off.nsproxy_mnt_ns);
    read(mnt_ns, off.mnt_namespace_ns + off.ns_common_inum)
}

/// The PID namespace the task lives in (task_active_pid_ns): `thread_pid->numbers[level].ns`.
#[inline(always)]
fn pidns_of(off: &Offsets, task: *const u8) -> u32 {
    let pid: *const u8 = read(task, off.task_thread_pid);
    let level: u32 = read(pid, off.pid_level);
    let ns: *const u8 = read(pid, off.pid_numbers + level * off.upid_size + off.upid_ns);
    read(ns, off.pid_namespace_ns + off.ns_common_inum)
}

#[inline(always)]
fn report(off: &Offsets, task: *const u8, path: *const u8, verdict: u8) {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        count(COUNTER_EVENTS_LOST);
        return;
    };
    let id = bpf_get_current_pid_tgid();
    let dentry: *const u8 = read(path, off.path_dentry);
    let name: *const u8 = read(dentry, off.dentry_name + off.qstr_name);
    // Written in place, as whole fields and words (layout in `types::Event`): an `Event` built on
    // the stack is zeroed and copied with memset/memcpy calls, which the BPF backend emits as
    // byte-wise loops. Reserved ring buffer memory is not zeroed and is mapped to user space.
    let e = entry.as_mut_ptr();
    let words = e.cast::<u64>();
    // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes; both
    // helpers bound their copies by the sizes passed and check the source addresses.
    unsafe {
        (*e).ts_ns = bpf_ktime_get_ns();
        (*e).pid = (id >> 32) as u32;
        (*e).tid = id as u32;
        (*e).pidns = pidns_of(off, task);
        (*e).mntns = mntns_of(off, task);
        // verdict, pad[7]
        words.add(3).write(u64::from(verdict));
        // comm[16] and path[32]: the helpers stop at the NUL, so the tails are zeroed first;
        // volatile, or LLVM merges the zero stores into a call to a byte-wise memset.
        for i in 4..10 {
            words.add(i).write_volatile(0);
        }
        generated::bpf_get_current_comm((*e).comm.as_mut_ptr().cast(), COMM_LEN as u32);
        generated::bpf_probe_read_kernel_str((*e).path.as_mut_ptr().cast(), PATH_LEN as u32, name.cast());
    }
    entry.submit(0);
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(index: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a live map value.
        unsafe { *p += 1 };
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("lsmbpf-aya-kernel is a BPF LSM program; it is built for bpfel-unknown-none by lsmbpf-aya's build.rs");
    std::process::exit(1);
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
