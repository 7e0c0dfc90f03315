//! Library-neutral access to the BPF objects of a running implementation, through raw
//! `bpf(2)` syscalls only (no BPF library), so that the test bed measures and checks every
//! library the same way.
//!
//! * Which objects a process holds: [`prog_ids_of_pid`], [`map_ids_of_pid`] (from
//!   `/proc/<pid>/fdinfo/*`), and by kernel object name: [`find_prog`], [`find_map`].
//! * Handles by id: [`Prog::from_id`], [`Map::from_id`] (`BPF_*_GET_FD_BY_ID`); the fd is owned
//!   and closed on drop. Holding one keeps the object alive, so drop handles before checking
//!   that an implementation left nothing behind (see [`prog_exists`]).
//! * Metadata: [`Prog::info`], [`Map::info`] (`BPF_OBJ_GET_INFO_BY_FD`).
//! * Running a program on a frame without traffic: [`Prog::test_run`] (`BPF_PROG_TEST_RUN`).
//! * Reading a map: [`Map::lookup`], and for per-CPU maps [`Map::lookup_percpu`] /
//!   [`Map::lookup_percpu_u64_sum`].
//!
//! Attribute structs follow `<linux/bpf.h>`; each command gets its own `#[repr(C)]` prefix of
//! `union bpf_attr` (the kernel zero-fills what we do not pass).

use std::ffi::CStr;
use std::fs;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

// bpf(2) commands.
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TEST_RUN: libc::c_int = 10;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_int = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_ENABLE_STATS: libc::c_int = 32;

/// `enum bpf_attach_type`: XDP, and TC egress through a TCX link (kernel >= 6.6).
const BPF_XDP: u32 = 37;
const BPF_TCX_EGRESS: u32 = 47;
/// `BPF_PROG_TEST_RUN` flag: XDP verdicts act for real (XDP_TX and XDP_REDIRECT transmit the
/// frame), kernel >= 5.18.
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
/// `enum bpf_stats_type`: run time and run count.
const BPF_STATS_RUN_TIME: u32 = 0;

/// XDP attach flags (`<linux/if_link.h>`).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// XDP return codes (`enum xdp_action`).
pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// `enum bpf_prog_type` values used here.
pub const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
pub const BPF_PROG_TYPE_XDP: u32 = 6;

/// TC return code that drops the packet.
pub const TC_ACT_SHOT: u32 = 2;

/// `enum bpf_map_type` values the harness cares about.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
pub const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
pub const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: u32 = 21;
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// Kernel object names are at most this many bytes (`BPF_OBJ_NAME_LEN` - 1).
pub const OBJ_NAME_MAX: usize = 15;

/// Ethernet header length: `BPF_PROG_TEST_RUN` refuses shorter packet data.
pub const ETH_HLEN: usize = 14;

fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    loop {
        // SAFETY: `attr` points to a live, properly sized `#[repr(C)]` prefix of `union bpf_attr`;
        // pointers inside it (if any) are set by the caller to live buffers of the stated sizes.
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, cmd, attr as *mut T as *mut libc::c_void, size_of::<T>() as libc::c_uint)
        };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn fd_from_ret(r: libc::c_long) -> OwnedFd {
    // SAFETY: a successful bpf() command that returns a file descriptor hands us its ownership.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoByFdAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `struct bpf_prog_info` up to `attach_btf_id` (232 bytes, kernel 6.x).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
    ifindex: u32,
    gpl_compatible: u32,
    netns_dev: u64,
    netns_ino: u64,
    nr_jited_ksyms: u32,
    nr_jited_func_lens: u32,
    jited_ksyms: u64,
    jited_func_lens: u64,
    btf_id: u32,
    func_info_rec_size: u32,
    func_info: u64,
    nr_func_info: u32,
    nr_line_info: u32,
    line_info: u64,
    jited_line_info: u64,
    nr_jited_line_info: u32,
    line_info_rec_size: u32,
    jited_line_info_rec_size: u32,
    nr_prog_tags: u32,
    prog_tags: u64,
    run_time_ns: u64,
    run_cnt: u64,
    recursion_misses: u64,
    verified_insns: u32,
    attach_btf_obj_id: u32,
    attach_btf_id: u32,
    _pad: u32,
}

/// `struct bpf_map_info` up to `hash_size` (104 bytes, kernel 6.x).
#[repr(C)]
#[derive(Clone, Copy)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
    ifindex: u32,
    btf_vmlinux_value_type_id: u32,
    netns_dev: u64,
    netns_ino: u64,
    btf_id: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_id: u32,
    map_extra: u64,
    hash: u64,
    hash_size: u32,
    _pad: u32,
}

fn zeroed<T>() -> T {
    // SAFETY: only used for the plain-integer `#[repr(C)]` info structs above.
    unsafe { std::mem::zeroed() }
}

fn name_of(raw: &[u8; 16]) -> String {
    CStr::from_bytes_until_nul(raw)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

fn obj_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<u32> {
    let mut attr =
        InfoByFdAttr { bpf_fd: fd.as_raw_fd() as u32, info_len: size_of::<T>() as u32, info: info as *mut T as u64 };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(attr.info_len)
}

/// Metadata of a loaded program (`struct bpf_prog_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    /// `enum bpf_prog_type` ([`BPF_PROG_TYPE_XDP`] = 6).
    pub prog_type: u32,
    /// Kernel object name, at most [`OBJ_NAME_MAX`] bytes.
    pub name: String,
    pub tag: [u8; 8],
    /// Instructions the verifier processed (a measure of verification cost); `None` when the
    /// kernel's `bpf_prog_info` is too short to have the field (it came with 5.16).
    pub verified_insns: Option<u32>,
    /// Size of the program after verifier rewrites, in bytes (8 per instruction).
    pub xlated_prog_len: u32,
    /// Size of the JIT-compiled machine code in bytes.
    pub jited_prog_len: u32,
    /// Cumulative run time and run count; only counted while `kernel.bpf_stats_enabled=1`.
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
}

/// Metadata of a map (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    pub id: u32,
    /// `enum bpf_map_type` (see the `BPF_MAP_TYPE_*` constants).
    pub map_type: u32,
    /// Kernel object name, at most [`OBJ_NAME_MAX`] bytes.
    pub name: String,
    pub key_size: u32,
    /// Size of one value as declared (per CPU for per-CPU maps).
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
}

impl MapInfo {
    /// Whether lookups return one value per possible CPU.
    pub fn is_percpu(&self) -> bool {
        matches!(
            self.map_type,
            BPF_MAP_TYPE_PERCPU_HASH
                | BPF_MAP_TYPE_PERCPU_ARRAY
                | BPF_MAP_TYPE_LRU_PERCPU_HASH
                | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
        )
    }
}

/// An open handle on a loaded BPF program (closed on drop).
#[derive(Debug)]
pub struct Prog {
    fd: OwnedFd,
}

/// What [`Prog::test_run`] runs the program on.
#[derive(Debug, Clone, Default)]
pub struct TestRun<'a> {
    /// Packet data (for XDP: the Ethernet frame).
    pub data_in: &'a [u8],
    /// Room for the packet as the program left it; `None` asks for no output data.
    pub data_out_size: Option<usize>,
    /// How often to run the program (0 and 1 both mean once); `duration` is the mean per run.
    pub repeat: u32,
    /// Context (for XDP a `struct xdp_md`), or `None` for the kernel's default.
    pub ctx_in: Option<&'a [u8]>,
    /// Room for the context as the program left it (for TC a `struct __sk_buff`); `None` asks
    /// for none.
    pub ctx_out_size: Option<usize>,
}

/// The outcome of [`Prog::test_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value of the last run (for XDP one of the `XDP_*` codes).
    pub retval: u32,
    /// Mean run time per repetition as the kernel measured it.
    pub duration: Duration,
    /// The packet after the program ran, if `data_out_size` was given.
    pub data_out: Option<Vec<u8>>,
    /// The context after the program ran, if `ctx_out_size` was given.
    pub ctx_out: Option<Vec<u8>>,
}

impl Prog {
    /// Opens the program with this id (`BPF_PROG_GET_FD_BY_ID`).
    pub fn from_id(id: u32) -> Result<Prog> {
        let mut attr = GetFdByIdAttr { id, ..Default::default() };
        let r = sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).with_context(|| format!("BPF_PROG_GET_FD_BY_ID {id}"))?;
        Ok(Prog { fd: fd_from_ret(r) })
    }

    /// Wraps an fd that refers to a BPF program (for example one loaded by a test).
    pub fn from_fd(fd: OwnedFd) -> Prog {
        Prog { fd }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The program's metadata, including the ids of the maps it uses.
    pub fn info(&self) -> Result<ProgInfo> {
        let mut raw: RawProgInfo = zeroed();
        let len = obj_info(self.fd(), &mut raw).context("BPF_OBJ_GET_INFO_BY_FD (prog)")? as usize;
        let mut map_ids = vec![0u32; raw.nr_map_ids as usize];
        if !map_ids.is_empty() {
            // Second call: only ask for the map ids.
            let mut again: RawProgInfo = zeroed();
            again.nr_map_ids = map_ids.len() as u32;
            again.map_ids = map_ids.as_mut_ptr() as u64;
            obj_info(self.fd(), &mut again).context("BPF_OBJ_GET_INFO_BY_FD (prog map ids)")?;
            map_ids.truncate(again.nr_map_ids.min(raw.nr_map_ids) as usize);
        }
        Ok(ProgInfo {
            id: raw.id,
            prog_type: raw.prog_type,
            name: name_of(&raw.name),
            tag: raw.tag,
            // The kernel says how much of the struct it filled.
            verified_insns: (len >= std::mem::offset_of!(RawProgInfo, verified_insns) + size_of::<u32>())
                .then_some(raw.verified_insns),
            xlated_prog_len: raw.xlated_prog_len,
            jited_prog_len: raw.jited_prog_len,
            run_time_ns: raw.run_time_ns,
            run_cnt: raw.run_cnt,
            map_ids,
        })
    }

    /// Runs the program once (or `repeat` times) on `data_in` (`BPF_PROG_TEST_RUN`).
    pub fn test_run(&self, run: &TestRun<'_>) -> Result<TestRunResult> {
        let mut out = vec![0u8; run.data_out_size.unwrap_or(0)];
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: run.data_in.len() as u32,
            data_in: run.data_in.as_ptr() as u64,
            repeat: run.repeat,
            ..Default::default()
        };
        if run.data_out_size.is_some() {
            attr.data_out = out.as_mut_ptr() as u64;
            attr.data_size_out = out.len() as u32;
        }
        if let Some(ctx) = run.ctx_in {
            attr.ctx_in = ctx.as_ptr() as u64;
            attr.ctx_size_in = ctx.len() as u32;
        }
        let mut ctx_out = vec![0u8; run.ctx_out_size.unwrap_or(0)];
        if run.ctx_out_size.is_some() {
            attr.ctx_out = ctx_out.as_mut_ptr() as u64;
            attr.ctx_size_out = ctx_out.len() as u32;
        }
        match sys_bpf(BPF_PROG_TEST_RUN, &mut attr) {
            Ok(_) => {}
            // ENOSPC: the output did not fit; the kernel still reports the full size.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && run.data_out_size.is_some() => {}
            Err(e) => return Err(e).with_context(|| format!("BPF_PROG_TEST_RUN with {} bytes", run.data_in.len())),
        }
        let data_out = run.data_out_size.map(|_| {
            out.truncate(attr.data_size_out as usize);
            out
        });
        let ctx_out = run.ctx_out_size.map(|_| {
            ctx_out.truncate(attr.ctx_size_out as usize);
            ctx_out
        });
        Ok(TestRunResult { retval: attr.retval, duration: Duration::from_nanos(attr.duration.into()), data_out, ctx_out })
    }

    /// Transmits `frame` `repeat` times for real (`BPF_F_TEST_XDP_LIVE_FRAMES`): the program
    /// (for a generator one that returns `XDP_TX`) runs as if the frame had arrived on
    /// `ifindex` of the *calling thread's* namespace, and its `XDP_TX` sends the frame out of
    /// that interface, to a veth's peer, in batches of `batch_size` (at most 256). Returns the
    /// kernel's mean time per frame.
    pub fn test_run_live(&self, frame: &[u8], ifindex: u32, repeat: u32, batch_size: u32) -> Result<Duration> {
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
        let xdp_md: [u32; 6] = [0, frame.len() as u32, 0, ifindex, 0, 0];
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: frame.len() as u32,
            data_in: frame.as_ptr() as u64,
            repeat,
            ctx_size_in: std::mem::size_of_val(&xdp_md) as u32,
            ctx_in: xdp_md.as_ptr() as u64,
            flags: BPF_F_TEST_XDP_LIVE_FRAMES,
            batch_size,
            ..Default::default()
        };
        sys_bpf(BPF_PROG_TEST_RUN, &mut attr)
            .with_context(|| format!("BPF_PROG_TEST_RUN with live frames on ifindex {ifindex} (kernel >= 5.18)"))?;
        Ok(Duration::from_nanos(attr.duration.into()))
    }

    /// Runs an XDP program once on an Ethernet frame and returns the verdict and the frame as
    /// the program left it.
    ///
    /// Frames shorter than an Ethernet header ([`ETH_HLEN`]) are refused by the kernel with
    /// EINVAL (since 6.x also when XDP metadata pads the input); they cannot reach an XDP program
    /// on a veth either (`AF_PACKET` refuses to send them). See [`is_kernel_refusal`].
    pub fn test_run_xdp(&self, frame: &[u8]) -> Result<TestRunResult> {
        self.test_run(&TestRun { data_in: frame, data_out_size: Some(frame.len() + 256), repeat: 1, ..Default::default() })
    }
}

/// Whether an error from [`Prog::test_run`] is the kernel refusing the input (EINVAL), as it
/// does for packet data shorter than [`ETH_HLEN`].
pub fn is_kernel_refusal(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error) == Some(libc::EINVAL))
}

/// An open handle on a BPF map (closed on drop), with its metadata.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    info: MapInfo,
}

impl Map {
    /// Opens the map with this id (`BPF_MAP_GET_FD_BY_ID`) and reads its metadata.
    pub fn from_id(id: u32) -> Result<Map> {
        let mut attr = GetFdByIdAttr { id, ..Default::default() };
        let r = sys_bpf(BPF_MAP_GET_FD_BY_ID, &mut attr).with_context(|| format!("BPF_MAP_GET_FD_BY_ID {id}"))?;
        Map::from_fd(fd_from_ret(r))
    }

    /// Wraps an fd that refers to a BPF map.
    pub fn from_fd(fd: OwnedFd) -> Result<Map> {
        let mut raw: RawMapInfo = zeroed();
        use std::os::fd::AsFd;
        obj_info(fd.as_fd(), &mut raw).context("BPF_OBJ_GET_INFO_BY_FD (map)")?;
        let info = MapInfo {
            id: raw.id,
            map_type: raw.map_type,
            name: name_of(&raw.name),
            key_size: raw.key_size,
            value_size: raw.value_size,
            max_entries: raw.max_entries,
            map_flags: raw.map_flags,
        };
        Ok(Map { fd, info })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Metadata read when the handle was opened.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// Bytes a lookup writes: the value size, or for per-CPU maps the value size rounded up to
    /// 8 times the number of possible CPUs.
    pub fn lookup_size(&self) -> Result<usize> {
        if self.info.is_percpu() {
            Ok((self.info.value_size as usize).next_multiple_of(8) * possible_cpus()?)
        } else {
            Ok(self.info.value_size as usize)
        }
    }

    /// Looks up `key` (`BPF_MAP_LOOKUP_ELEM`); `None` if there is no such element. For per-CPU
    /// maps the value is the raw concatenation of the per-CPU slots (see [`Map::lookup_percpu`]).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() != self.info.key_size as usize {
            bail!("map {}: key has {} bytes, the map wants {}", self.info.name, key.len(), self.info.key_size);
        }
        let mut value = vec![0u8; self.lookup_size()?];
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value.as_mut_ptr() as u64,
            ..Default::default()
        };
        match sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("BPF_MAP_LOOKUP_ELEM in {}", self.info.name)),
        }
    }

    /// Per-CPU lookup: one value (of `value_size` bytes) per possible CPU.
    pub fn lookup_percpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        if !self.info.is_percpu() {
            bail!("map {} (type {}) is not a per-CPU map", self.info.name, self.info.map_type);
        }
        let stride = (self.info.value_size as usize).next_multiple_of(8);
        let vs = self.info.value_size as usize;
        Ok(self.lookup(key)?.map(|raw| raw.chunks(stride).map(|c| c[..vs].to_vec()).collect()))
    }

    /// For per-CPU maps of `u64` counters: the sum over CPUs; 0 if the key is absent.
    pub fn lookup_percpu_u64_sum(&self, key: &[u8]) -> Result<u64> {
        if self.info.value_size != 8 {
            bail!("map {}: values are {} bytes, not a u64", self.info.name, self.info.value_size);
        }
        Ok(self
            .lookup_percpu(key)?
            .unwrap_or_default()
            .iter()
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
            .fold(0u64, u64::wrapping_add))
    }

    /// Updates `key` to `value` (`BPF_MAP_UPDATE_ELEM`, flags `BPF_ANY`). For per-CPU maps
    /// `value` holds all per-CPU slots ([`Map::lookup_size`] bytes). The harness only reads
    /// an implementation's maps; this exists for self-tests and fixtures.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            ..Default::default()
        };
        if key.len() != self.info.key_size as usize || value.len() != self.lookup_size()? {
            bail!("map {}: wrong key or value size", self.info.name);
        }
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
            .with_context(|| format!("BPF_MAP_UPDATE_ELEM in {}", self.info.name))?;
        Ok(())
    }
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`), the number of slots a per-CPU
/// map lookup returns.
pub fn possible_cpus() -> Result<usize> {
    let text =
        fs::read_to_string("/sys/devices/system/cpu/possible").context("reading /sys/devices/system/cpu/possible")?;
    parse_cpu_list(&text)
}

/// Parses a CPU list like `0-3,6,8-9` into the highest CPU number + 1.
fn parse_cpu_list(text: &str) -> Result<usize> {
    let mut max = None;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let last = part.rsplit('-').next().unwrap_or(part);
        let n: usize = last.trim().parse().with_context(|| format!("bad CPU list `{}`", text.trim()))?;
        max = Some(max.map_or(n, |m: usize| m.max(n)));
    }
    max.map(|m| m + 1).ok_or_else(|| anyhow!("empty CPU list"))
}

/// Ids listed under `key` (`prog_id` or `map_id`) in a process's `/proc/<pid>/fdinfo/*`,
/// sorted and without duplicates.
fn ids_of_pid(pid: u32, key: &str) -> Result<Vec<u32>> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut ids = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let Ok(entry) = entry else { continue };
        // An fd may close while we read: skip what vanished.
        let Ok(text) = fs::read_to_string(entry.path()) else { continue };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
                if let Ok(id) = rest.trim().parse::<u32>() {
                    ids.push(id);
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Ids of the BPF programs a process holds file descriptors of (programs and links).
pub fn prog_ids_of_pid(pid: u32) -> Result<Vec<u32>> {
    ids_of_pid(pid, "prog_id")
}

/// Ids of the BPF maps a process holds file descriptors of.
pub fn map_ids_of_pid(pid: u32) -> Result<Vec<u32>> {
    ids_of_pid(pid, "map_id")
}

/// Whether `name` (as written in source) matches a kernel object name (truncated to 15 bytes).
pub fn name_matches(kernel_name: &str, name: &str) -> bool {
    let mut cut = name.len().min(OBJ_NAME_MAX);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    kernel_name == &name[..cut]
}

/// The one program named `name` among those process `pid` holds.
pub fn find_prog(pid: u32, name: &str) -> Result<Prog> {
    let mut found = Vec::new();
    let mut names = Vec::new();
    for id in prog_ids_of_pid(pid)? {
        let Ok(prog) = Prog::from_id(id) else { continue };
        let info = prog.info()?;
        if name_matches(&info.name, name) {
            found.push(prog);
        } else {
            names.push(info.name);
        }
    }
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        0 => bail!("process {pid} holds no BPF program named `{name}` (it holds: {names:?})"),
        n => bail!("process {pid} holds {n} BPF programs named `{name}`"),
    }
}

/// The one map named `name` among those process `pid` holds.
pub fn find_map(pid: u32, name: &str) -> Result<Map> {
    let mut found = Vec::new();
    let mut names = Vec::new();
    for id in map_ids_of_pid(pid)? {
        let Ok(map) = Map::from_id(id) else { continue };
        if name_matches(&map.info.name, name) {
            found.push(map);
        } else {
            names.push(map.info.name.clone());
        }
    }
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        0 => bail!("process {pid} holds no BPF map named `{name}` (it holds: {names:?})"),
        n => bail!("process {pid} holds {n} BPF maps named `{name}`"),
    }
}

/// The one map named `name` that program `prog` uses (independent of which process holds it).
pub fn find_map_of_prog(prog: &Prog, name: &str) -> Result<Map> {
    let info = prog.info()?;
    let mut found = Vec::new();
    for id in &info.map_ids {
        let map = Map::from_id(*id)?;
        if name_matches(&map.info.name, name) {
            found.push(map);
        }
    }
    match found.len() {
        1 => Ok(found.pop().unwrap()),
        n => bail!("program {} (id {}) uses {n} maps named `{name}`", info.name, info.id),
    }
}

/// Whether a program with this id is still loaded.
pub fn prog_exists(id: u32) -> bool {
    let mut attr = GetFdByIdAttr { id, ..Default::default() };
    match sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
        Ok(r) => {
            drop(fd_from_ret(r));
            true
        }
        Err(e) => e.raw_os_error() != Some(libc::ENOENT),
    }
}

/// Whether a map with this id still exists.
pub fn map_exists(id: u32) -> bool {
    let mut attr = GetFdByIdAttr { id, ..Default::default() };
    match sys_bpf(BPF_MAP_GET_FD_BY_ID, &mut attr) {
        Ok(r) => {
            drop(fd_from_ret(r));
            true
        }
        Err(e) => e.raw_os_error() != Some(libc::ENOENT),
    }
}

/// Whether BPF is usable here at all (root, or at least `CAP_BPF` and `CAP_SYS_ADMIN` for
/// `*_GET_FD_BY_ID`): an explanation if not. Tests call this first to fail with a reason.
pub fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the harness needs root (BPF object access, network namespaces, XDP); run the tests as root");
    }
    // Everything that needs root attaches things: one such process tree at a time.
    crate::lock::hold_for_process()
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// A BPF link (an attachment); dropping it detaches the program.
#[derive(Debug)]
pub struct Link {
    fd: OwnedFd,
}

impl Link {
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

/// Attaches an XDP program to interface `ifindex` of the *calling thread's* network namespace
/// with a BPF link (`BPF_LINK_CREATE`), in the mode the kernel prefers (driver mode where the
/// driver has it, as veth does). Use [`crate::netns::NetNs::run_in`] for an interface inside
/// a namespace. The program stays attached while the returned [`Link`] lives.
pub fn attach_xdp(prog: &Prog, ifindex: u32) -> Result<Link> {
    attach_xdp_with_flags(prog, ifindex, 0)
}

/// [`attach_xdp`] with explicit XDP flags ([`XDP_FLAGS_DRV_MODE`], [`XDP_FLAGS_SKB_MODE`]).
pub fn attach_xdp_with_flags(prog: &Prog, ifindex: u32, flags: u32) -> Result<Link> {
    let mut attr =
        LinkCreateAttr { prog_fd: prog.fd.as_raw_fd() as u32, target_ifindex: ifindex, attach_type: BPF_XDP, flags };
    let r =
        sys_bpf(BPF_LINK_CREATE, &mut attr).with_context(|| format!("BPF_LINK_CREATE (XDP on ifindex {ifindex})"))?;
    Ok(Link { fd: fd_from_ret(r) })
}

/// Attaches a TC program to the egress of interface `ifindex` of the calling thread's
/// namespace with a TCX link (kernel >= 6.6), after whatever is attached there already.
pub fn attach_tcx_egress(prog: &Prog, ifindex: u32) -> Result<Link> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.fd.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: BPF_TCX_EGRESS,
        flags: 0,
    };
    let r = sys_bpf(BPF_LINK_CREATE, &mut attr)
        .with_context(|| format!("BPF_LINK_CREATE (TCX egress on ifindex {ifindex}, kernel >= 6.6)"))?;
    Ok(Link { fd: fd_from_ret(r) })
}

#[repr(C)]
#[derive(Default)]
struct EnableStatsAttr {
    stat_type: u32,
}

/// While this lives, the kernel counts `run_time_ns` and `run_cnt` of every program
/// ([`ProgInfo`]); as `kernel.bpf_stats_enabled=1`, but released with the handle.
#[derive(Debug)]
pub struct StatsEnabled {
    _fd: OwnedFd,
}

/// Turns on run-time statistics for all programs (`BPF_ENABLE_STATS`) until the returned
/// handle is dropped. Statistics cost a few nanoseconds per program run.
pub fn enable_stats() -> Result<StatsEnabled> {
    let mut attr = EnableStatsAttr { stat_type: BPF_STATS_RUN_TIME };
    let r = sys_bpf(BPF_ENABLE_STATS, &mut attr).context("BPF_ENABLE_STATS")?;
    Ok(StatsEnabled { _fd: fd_from_ret(r) })
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

fn obj_name(name: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    let b = name.as_bytes();
    n[..b.len().min(OBJ_NAME_MAX)].copy_from_slice(&b[..b.len().min(OBJ_NAME_MAX)]);
    n
}

/// Loads a minimal XDP program that returns `verdict` (`r0 = verdict; exit`), named `name`.
/// A baseline for cost measurements ("what does an empty XDP program cost") and a fixture for
/// the harness' own tests; the program lives as long as the returned handle.
pub fn load_constant_xdp(name: &str, verdict: u32) -> Result<Prog> {
    load_constant(BPF_PROG_TYPE_XDP, name, verdict)
}

/// [`load_constant_xdp`] for any program type (a TC program returning [`TC_ACT_SHOT`] is the
/// floor of a TC egress path).
pub fn load_constant(prog_type: u32, name: &str, verdict: u32) -> Result<Prog> {
    load_insns(prog_type, name, &[insn(0xb7, 0, 0, 0, verdict as i32), insn(0x95, 0, 0, 0, 0)])
}

/// An XDP program that writes `frame` over the start of the packet (as far as the packet
/// reaches) and returns `verdict`: a generator whose every run sends `frame` as built. Live
/// frames come from a page pool that recycles pages, and a router that forwarded a frame
/// rewrote its MACs, TTL and checksum in that page: sent again as it was, it is not for the
/// router any more (it dropped all but the frames of fresh pages, ~1,400 a second).
pub fn load_frame_writer_xdp(name: &str, frame: &[u8], verdict: u32) -> Result<Prog> {
    let frame = &frame[..frame.len().min(256)];
    let mut stores = Vec::new();
    let mut off = 0;
    while off < frame.len() {
        // BPF_ST | BPF_MEM | size, [r2 + off] = imm: 4, 2 or 1 bytes.
        let (op, n) = match frame.len() - off {
            4.. => (0x62, 4),
            2..=3 => (0x6a, 2),
            _ => (0x72, 1),
        };
        let mut imm = [0u8; 4];
        imm[..n].copy_from_slice(&frame[off..off + n]);
        stores.push(insn(op, 2, 0, off as i16, i32::from_le_bytes(imm)));
        off += n;
    }
    let mut insns = vec![
        insn(0x61, 2, 1, 0, 0),                  // r2 = xdp_md->data
        insn(0x61, 3, 1, 4, 0),                  // r3 = xdp_md->data_end
        insn(0xbf, 4, 2, 0, 0),                  // r4 = r2
        insn(0x07, 4, 0, 0, frame.len() as i32), // r4 += len
        insn(0x2d, 4, 3, stores.len() as i16, 0), // if r4 > r3: skip the stores
    ];
    insns.extend(stores);
    insns.extend([insn(0xb7, 0, 0, 0, verdict as i32), insn(0x95, 0, 0, 0, 0)]);
    load_insns(BPF_PROG_TYPE_XDP, name, &insns)
}

/// One instruction: opcode, destination and source register, offset, immediate.
fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut i = [0u8; 8];
    i[0] = op;
    i[1] = (src << 4) | dst;
    i[2..4].copy_from_slice(&off.to_le_bytes());
    i[4..8].copy_from_slice(&imm.to_le_bytes());
    i
}

fn load_insns(prog_type: u32, name: &str, insns: &[[u8; 8]]) -> Result<Prog> {
    let license = b"GPL\0";
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: obj_name(name),
        ..Default::default()
    };
    let r = sys_bpf(BPF_PROG_LOAD, &mut attr)
        .with_context(|| format!("BPF_PROG_LOAD of {name} ({} instructions, type {prog_type})", insns.len()))?;
    Ok(Prog { fd: fd_from_ret(r) })
}

/// Creates a map (for the harness' own tests and fixtures).
pub fn create_map(name: &str, map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> Result<Map> {
    let mut attr =
        MapCreateAttr { map_type, key_size, value_size, max_entries, map_name: obj_name(name), ..Default::default() };
    let r = sys_bpf(BPF_MAP_CREATE, &mut attr).with_context(|| format!("BPF_MAP_CREATE {name}"))?;
    Map::from_fd(fd_from_ret(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list() {
        assert_eq!(parse_cpu_list("0-1\n").unwrap(), 2);
        assert_eq!(parse_cpu_list("0\n").unwrap(), 1);
        assert_eq!(parse_cpu_list("0-3,6,8-9").unwrap(), 10);
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn names_truncate_to_15() {
        assert!(name_matches("packetfilter", "packetfilter"));
        assert!(name_matches("a_very_long_map", "a_very_long_map_name"));
        assert!(!name_matches("verdicts", "verdict"));
    }

    /// The generator's program passes the verifier and rewrites whatever a recycled page holds
    /// into the frame as built, for every frame length up to the 256 bytes it covers. It loads
    /// and test-runs a program, attaching nothing: no run lock.
    #[test]
    fn frame_writer_sends_the_frame_as_built() {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "loading BPF programs needs root");
        for len in [14usize, 15, 17, 60, 61, 62, 63, 256, 300] {
            let frame: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let prog = load_frame_writer_xdp("hb_writer", &frame, XDP_TX).unwrap();
            let r = prog.test_run_xdp(&vec![0xee; len]).unwrap();
            assert_eq!(r.retval, XDP_TX, "{len} bytes");
            let out = r.data_out.unwrap();
            let covered = len.min(256);
            assert_eq!(out[..covered], frame[..covered], "{len} bytes");
            assert!(out[covered..].iter().all(|b| *b == 0xee), "{len} bytes");
        }
        // A packet shorter than the frame is left alone.
        let prog = load_frame_writer_xdp("hb_writer", &[1u8; 60], XDP_TX).unwrap();
        assert_eq!(prog.test_run_xdp(&[0xee; 20]).unwrap().data_out.unwrap(), vec![0xee; 20]);
    }

    /// The sizes `BPF_PROG_TEST_RUN` runs programs on, which the conformance vectors' comments
    /// cite (x86-64, 4 KiB pages, kernel 6.18): XDP holds 4096 - 256 (headroom) - 320
    /// (skb_shared_info) bytes in one buffer and takes up to MAX_SKB_FRAGS (17) pages more as
    /// multi-buffer, also for a program without `xdp.frags`; TC has no multi-buffer test runs
    /// and holds 4096 - 64 (NET_SKB_PAD) - 320. The vectors themselves ask the running kernel
    /// (`conformance::KernelLimits`); this test says when the machine's kernel moved.
    #[test]
    fn test_run_size_limits() {
        check_privileges().unwrap();
        let runs = |prog: &Prog, len: usize| match prog.test_run(&TestRun { data_in: &vec![0u8; len], repeat: 1, ..Default::default() }) {
            Ok(_) => Ok(()),
            Err(e) => Err(crate::conformance::errno(&e).unwrap_or_else(|| panic!("{len} bytes: {e:#}"))),
        };
        let xdp = load_constant_xdp("hb_size_xdp", XDP_PASS).unwrap();
        let tc = load_constant(BPF_PROG_TYPE_SCHED_CLS, "hb_size_tc", 0).unwrap();
        let got = [
            ("xdp", 3520, runs(&xdp, 3520)),
            ("xdp", 3521, runs(&xdp, 3521)),
            ("xdp", 73152, runs(&xdp, 73152)),
            ("xdp", 73153, runs(&xdp, 73153)),
            ("tc", 13, runs(&tc, 13)),
            ("tc", 3712, runs(&tc, 3712)),
            ("tc", 3713, runs(&tc, 3713)),
        ];
        let want = [Ok(()), Ok(()), Ok(()), Err(libc::ENOMEM), Err(libc::EINVAL), Ok(()), Err(libc::EINVAL)];
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        for ((what, len, got), want) in got.iter().zip(want) {
            assert_eq!(*got, want, "{what} test run of {len} bytes on kernel {}", release.trim());
        }
    }

    #[test]
    fn info_test_run_and_fdinfo() {
        check_privileges().unwrap();
        let prog = load_constant_xdp("hb_selftest_prog", XDP_DROP).unwrap();
        let info = prog.info().unwrap();
        assert_eq!(info.name, "hb_selftest_pro");
        assert_eq!(info.prog_type, BPF_PROG_TYPE_XDP);
        assert_eq!(info.xlated_prog_len, 16);
        assert!(info.verified_insns.is_some_and(|n| n >= 2), "{info:?}");
        let frame = [0xffu8; 60];
        let r = prog.test_run_xdp(&frame).unwrap();
        assert_eq!(r.retval, XDP_DROP);
        assert_eq!(r.data_out.as_deref(), Some(&frame[..]));
        // Shorter than an Ethernet header: the kernel refuses to run it.
        for len in [0usize, 1, 13] {
            let e = prog.test_run_xdp(&vec![0xabu8; len]).unwrap_err();
            assert!(is_kernel_refusal(&e), "{len} bytes: {e:#}");
        }
        assert_eq!(prog.test_run_xdp(&frame[..14]).unwrap().retval, XDP_DROP);
        let r = prog.test_run(&TestRun { data_in: &frame, repeat: 1000, ..Default::default() }).unwrap();
        assert_eq!(r.retval, XDP_DROP);
        assert!(r.data_out.is_none());

        let me = std::process::id();
        assert!(prog_ids_of_pid(me).unwrap().contains(&info.id));
        let found = find_prog(me, "hb_selftest_prog").unwrap();
        assert_eq!(found.info().unwrap().id, info.id);
        assert!(prog_exists(info.id));
        drop(found);
        drop(prog);
        // Freed after an RCU grace period.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while prog_exists(info.id) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!prog_exists(info.id));
    }

    #[test]
    fn attach_and_stats() {
        check_privileges().unwrap();
        let ns = crate::netns::NetNs::new("selftest-attach").unwrap();
        let veth = crate::netns::VethPair::new(&ns, &ns, &Default::default()).unwrap();
        let prog = load_constant_xdp("hb_selftest_att", XDP_PASS).unwrap();
        let id = prog.info().unwrap().id;
        let link = ns.run_in(|| attach_xdp(&prog, veth.a.ifindex)).unwrap().unwrap();
        let x = ns.xdp(&veth.a.ifname).unwrap().expect("attached");
        assert_eq!(x.prog_ids, vec![id]);
        assert_eq!(x.mode, crate::netns::XdpAttachment::MODE_NATIVE);
        {
            let _stats = enable_stats().unwrap();
            prog.test_run(&TestRun { data_in: &[0u8; 64], repeat: 10, ..Default::default() }).unwrap();
        }
        drop(link);
        assert!(ns.xdp(&veth.a.ifname).unwrap().is_none());
    }

    #[test]
    fn percpu_lookup() {
        check_privileges().unwrap();
        let map = create_map("hb_selftest_pcpu", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 7).unwrap();
        assert!(map.info().is_percpu());
        assert_eq!(map.info().max_entries, 7);
        let cpus = possible_cpus().unwrap();
        let mut value = Vec::new();
        for cpu in 0..cpus {
            value.extend_from_slice(&(10 + cpu as u64).to_ne_bytes());
        }
        map.update(&3u32.to_ne_bytes(), &value).unwrap();
        let per = map.lookup_percpu(&3u32.to_ne_bytes()).unwrap().unwrap();
        assert_eq!(per.len(), cpus);
        let want: u64 = (0..cpus as u64).map(|c| 10 + c).sum();
        assert_eq!(map.lookup_percpu_u64_sum(&3u32.to_ne_bytes()).unwrap(), want);
        assert_eq!(map.lookup_percpu_u64_sum(&4u32.to_ne_bytes()).unwrap(), 0);
        // Out of range for an array: no element.
        assert_eq!(map.lookup(&9u32.to_ne_bytes()).unwrap(), None);
        let me = std::process::id();
        let found = find_map(me, "hb_selftest_pcpu_longer").unwrap();
        assert_eq!(found.info().id, map.info().id);
    }
}
