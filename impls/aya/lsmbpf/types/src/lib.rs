//! The lsmbpf ABI (`bpfeval_shared::lsmbpf::abi`) restated for the Aya kernel program, which
//! cannot depend on the std-based shared crate, plus the kernel struct field offsets the Aya
//! loader resolves from the running kernel's BTF (Rust BPF programs get no CO-RE relocations).
//! The loader checks at compile time that the constants agree with the shared ones.
#![no_std]

pub const CRITERION_PID_NS: u32 = 0;
pub const CRITERION_MNT_NS: u32 = 1;
pub const MODE_ENFORCE: u32 = 0;
pub const MODE_AUDIT: u32 = 1;

pub const COUNTER_CALLS: u32 = 0;
pub const COUNTER_ALLOW_HOST: u32 = 1;
pub const COUNTER_ALLOW_OTHER: u32 = 2;
pub const COUNTER_DENY: u32 = 3;
pub const COUNTER_AUDIT: u32 = 4;
pub const COUNTER_PRIOR_DENY: u32 = 5;
pub const COUNTER_EVENTS_LOST: u32 = 6;
pub const COUNTER_COUNT: u32 = 7;

pub const VERDICT_DENY: u8 = 0;
pub const VERDICT_AUDIT: u8 = 1;

pub const COMM_LEN: usize = 16;
pub const PATH_LEN: usize = 32;

/// The global `SETTINGS`, set by the loader before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    pub mntns_ino: u32,
    pub criterion: u32,
    pub mode: u32,
    pub _reserved: u32,
}

/// The global `OFFSETS`: byte offsets of the kernel struct members the program reads, as the
/// running kernel lays them out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Offsets {
    pub task_fs: u32,
    pub task_nsproxy: u32,
    pub task_thread_pid: u32,
    pub fs_root: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_name: u32,
    pub qstr_name: u32,
    pub nsproxy_mnt_ns: u32,
    pub mnt_namespace_ns: u32,
    pub ns_common_inum: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    pub upid_ns: u32,
    pub upid_size: u32,
    pub pid_namespace_ns: u32,
}

/// One `events` ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub pidns: u32,
    pub mntns: u32,
    pub verdict: u8,
    pub _pad: [u8; 7],
    pub comm: [u8; COMM_LEN],
    pub path: [u8; PATH_LEN],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain #[repr(C)] integers without padding holes; any bit pattern is valid.
    unsafe impl aya::Pod for super::Settings {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Offsets {}
}

const _: () = assert!(core::mem::size_of::<Settings>() == 32);
const _: () = assert!(core::mem::size_of::<Event>() == 80);
