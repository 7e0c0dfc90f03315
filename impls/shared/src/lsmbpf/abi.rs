//! What every library's lsmbpf program implements, byte for byte. The kernel sides restate it
//! (C header, `#[repr(C)]` Rust); tests and the harness read `counters` by name.
//!
//! | object     | kind                          | content |
//! |------------|-------------------------------|---------|
//! | `settings` | read-only global, set before load | [`Settings`] |
//! | `counters` | per-CPU array[`COUNTER_COUNT`] | decisions u64, by [`COUNTER_NAMES`] index |
//! | `events`   | ring buffer, 256 KiB          | [`EVENT_SIZE`]-byte records, one per deny or audit |
//!
//! The program (`lsmbpf`, hook `path_chroot`) counts every call in `calls` and exactly one of
//! the decision counters; `events_lost` counts records the ring buffer had no room for.

/// `settings.criterion`: what makes a process containerized.
pub const CRITERION_PID_NS: u32 = 0;
pub const CRITERION_MNT_NS: u32 = 1;
/// `settings.mode`.
pub const MODE_ENFORCE: u32 = 0;
pub const MODE_AUDIT: u32 = 1;

/// The loader's namespaces and the policy: 32 bytes, native endian.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// `st_dev` and `st_ino` of the loader's `/proc/self/ns/pid` (for `bpf_get_ns_current_pid_tgid`).
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    /// The inode number of the loader's mount namespace (`/proc/self/ns/mnt`).
    pub mntns_ino: u32,
    pub criterion: u32,
    pub mode: u32,
    pub _reserved: u32,
}

impl Settings {
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.pidns_dev.to_ne_bytes());
        b[8..16].copy_from_slice(&self.pidns_ino.to_ne_bytes());
        b[16..20].copy_from_slice(&self.mntns_ino.to_ne_bytes());
        b[20..24].copy_from_slice(&self.criterion.to_ne_bytes());
        b[24..28].copy_from_slice(&self.mode.to_ne_bytes());
        b
    }
}

/// Indices of `counters`.
pub const COUNTER_CALLS: u32 = 0;
/// Not containerized: allowed.
pub const COUNTER_ALLOW_HOST: u32 = 1;
/// Containerized, but the target is not its root: allowed.
pub const COUNTER_ALLOW_OTHER: u32 = 2;
/// Containerized, chroot to its root: denied (enforce).
pub const COUNTER_DENY: u32 = 3;
/// Containerized, chroot to its root: allowed and reported (audit).
pub const COUNTER_AUDIT: u32 = 4;
/// An earlier program on the hook had denied already: its verdict is returned unchanged.
pub const COUNTER_PRIOR_DENY: u32 = 5;
pub const COUNTER_EVENTS_LOST: u32 = 6;
pub const COUNTER_COUNT: u32 = 7;

pub const COUNTER_NAMES: [&str; COUNTER_COUNT as usize] =
    ["calls", "allow_host", "allow_other", "deny", "audit", "prior_deny", "events_lost"];

/// `event.verdict`.
pub const VERDICT_DENY: u8 = 0;
pub const VERDICT_AUDIT: u8 = 1;
pub const VERDICT_NAMES: [&str; 2] = ["deny", "audit"];

pub const COMM_LEN: usize = 16;
/// The target's name as the dentry has it ("/" for a root), NUL-terminated.
pub const PATH_LEN: usize = 32;

/// One `events` record: `u64 ts_ns, u32 pid, u32 tid, u32 pidns, u32 mntns, u8 verdict,
/// u8 pad[7], char comm[16], char path[32]`. pid/tid are as seen from the initial namespace.
pub const EVENT_SIZE: usize = 80;
