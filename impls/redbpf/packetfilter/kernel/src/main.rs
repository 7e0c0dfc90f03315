//! packetfilter XDP program: drop or pass by IPv4/IPv6 source address (see
//! `bpfeval_shared::packetfilter::abi` for the map layout this implements byte for byte).
//! Built by `cargo bpf build` (cargo-bpf 2.3.0, Rust 1.59, LLVM 13) from the loader's build.rs.
#![no_std]
#![no_main]

use core::mem::size_of;

use packetfilter_redbpf_types::*;
use redbpf_probes::maps::{Array, PerCpuArray};
use redbpf_probes::xdp::prelude::*;

program!(0xFFFFFFFE, "Dual MIT/GPL");

/// Placeholder size: the loader sets the real one (2 * capacity) before the maps are created.
const DEFAULT_ENTRIES: u32 = 1 << 17;

// redbpf-probes has no LPM trie and no ring buffer map, and its `#[map]` refuses map types it
// does not know. These three maps are therefore written out as what `#[map]` itself emits for a
// map: a `bpf_map_def` in an ELF section `maps/<name>`, which RedBPF's loader creates as is.
#[no_mangle]
#[link_section = "maps/rules_v4"]
static mut RULES_V4: bpf_map_def = lpm_trie::<8>();
#[no_mangle]
#[link_section = "maps/rules_v6"]
static mut RULES_V6: bpf_map_def = lpm_trie::<20>();
#[no_mangle]
#[link_section = "maps/events"]
static mut EVENTS: bpf_map_def = bpf_map_def {
    type_: bpf_map_type_BPF_MAP_TYPE_RINGBUF,
    key_size: 0,
    value_size: 0,
    max_entries: 256 * 1024,
    map_flags: 0,
};

#[map(link_section = "maps/settings")]
static mut SETTINGS: Array<Settings> = Array::with_max_entries(2);
#[map(link_section = "maps/generation")]
static mut GENERATION: Array<u32> = Array::with_max_entries(1);
#[map(link_section = "maps/verdicts")]
static mut VERDICTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VERDICT_COUNT);
#[map(link_section = "maps/rule_hits")]
static mut RULE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DEFAULT_ENTRIES);

/// An LPM trie of `N` key data bytes and u32 rule ids. The kernel requires BPF_F_NO_PREALLOC.
const fn lpm_trie<const N: usize>() -> bpf_map_def {
    bpf_map_def {
        type_: bpf_map_type_BPF_MAP_TYPE_LPM_TRIE,
        key_size: size_of::<LpmKey<N>>() as u32,
        value_size: size_of::<u32>() as u32,
        max_entries: DEFAULT_ENTRIES,
        map_flags: BPF_F_NO_PREALLOC,
    }
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

#[xdp]
fn packetfilter(ctx: XdpContext) -> XdpResult {
    let verdict = classify(&ctx);
    count(unsafe { &mut VERDICTS }, verdict);
    Ok(match verdict {
        VERDICT_DROP_BLOCK | VERDICT_DROP_DEFAULT | VERDICT_DROP_MALFORMED => XdpAction::Drop,
        _ => XdpAction::Pass,
    })
}

/// The packet's bytes `[off, off + N)`, or `None` if the frame ends before them. The comparison
/// against `data_end` is what the verifier needs to see before every packet access.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<&[u8; N]> {
    let start = ctx.data_start() + off;
    if start + N > ctx.data_end() {
        return None;
    }
    // SAFETY: bounds checked against data_end just above.
    Some(unsafe { &*(start as *const [u8; N]) })
}

/// Parses the frame, looks the source up, and returns the verdict (counting rule hits and
/// emitting the sampled event on the way).
#[inline(always)]
fn classify(ctx: &XdpContext) -> u32 {
    let eth = match bytes::<ETH_HLEN>(ctx, 0) {
        Some(eth) => eth,
        None => return VERDICT_DROP_MALFORMED,
    };
    let mut proto = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = ETH_HLEN;
    // Up to two VLAN tags (802.1Q / 802.1ad); unrolled so every offset is a constant.
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let tag = match bytes::<4>(ctx, off) {
            Some(tag) => tag,
            None => return VERDICT_DROP_MALFORMED,
        };
        proto = u16::from_be_bytes([tag[2], tag[3]]);
        off += 4;
    }
    match proto {
        ETH_P_8021Q | ETH_P_8021AD => VERDICT_DROP_MALFORMED,
        ETH_P_IP => {
            let ip = match bytes::<20>(ctx, off) {
                Some(ip) => ip,
                None => return VERDICT_DROP_MALFORMED,
            };
            let ihl = usize::from(ip[0] & 0x0f);
            if ip[0] >> 4 != 4 || ihl < 5 || ctx.data_start() + off + ihl * 4 > ctx.data_end() {
                return VERDICT_DROP_MALFORMED;
            }
            let saddr = [u64::from_ne_bytes([ip[12], ip[13], ip[14], ip[15], 0, 0, 0, 0]), 0];
            let mut key = LpmKey { prefixlen: 0, data: [0u8; 8] };
            key.data[4..].copy_from_slice(&ip[12..16]);
            decide(ctx, 4, unsafe { &mut RULES_V4 }, key, saddr)
        }
        ETH_P_IPV6 => {
            let ip = match bytes::<40>(ctx, off) {
                Some(ip) => ip,
                None => return VERDICT_DROP_MALFORMED,
            };
            if ip[0] >> 4 != 6 {
                return VERDICT_DROP_MALFORMED;
            }
            let mut key = LpmKey { prefixlen: 0, data: [0u8; 20] };
            key.data[4..].copy_from_slice(&ip[8..24]);
            let saddr = [word(ip, 8), word(ip, 16)];
            decide(ctx, 6, unsafe { &mut RULES_V6 }, key, saddr)
        }
        _ => VERDICT_PASS_NON_IP,
    }
}

/// Eight bytes of `b` from `at` as a native-endian word (the event's address layout).
#[inline(always)]
fn word<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    u64::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5], b[at + 6], b[at + 7]])
}

/// Longest-prefix match in an LPM trie declared above; the rule id, if any prefix matched.
#[inline(always)]
fn lookup<const N: usize>(trie: &mut bpf_map_def, key: &LpmKey<N>) -> Option<u32> {
    // SAFETY: a lookup helper call on a map of this key type; the value is a u32 rule id.
    unsafe {
        let value = bpf_map_lookup_elem(trie as *mut _ as *mut c_void, key as *const _ as *const c_void);
        if value.is_null() {
            None
        } else {
            Some(*(value as *const u32))
        }
    }
}

/// Block list, then allow list, then the family's default. `key` holds the address from byte 4;
/// the generation and list bytes are filled in here. Prefix length = all `N` bytes. `saddr` is
/// the event's 16 address bytes as two words.
#[inline(always)]
fn decide<const N: usize>(
    ctx: &XdpContext,
    family: u8,
    trie: &mut bpf_map_def,
    mut key: LpmKey<N>,
    saddr: [u64; 2],
) -> u32 {
    let generation = unsafe { GENERATION.get(0) }.copied().unwrap_or(0);
    let settings = unsafe { SETTINGS.get(generation) }.copied().unwrap_or_default();
    let default_drop = if family == 4 { settings.default_drop_v4 } else { settings.default_drop_v6 };
    key.data[0] = generation as u8;
    key.prefixlen = N as u32 * 8;

    key.data[1] = LIST_BLOCK;
    let (verdict, rule) = if let Some(rule) = lookup(trie, &key) {
        (VERDICT_DROP_BLOCK, rule)
    } else {
        key.data[1] = LIST_ALLOW;
        match lookup(trie, &key) {
            Some(rule) => (VERDICT_PASS_ALLOW, rule),
            None if default_drop == 1 => (VERDICT_DROP_DEFAULT, NO_RULE),
            None => (VERDICT_PASS_DEFAULT, NO_RULE),
        }
    };
    if rule != NO_RULE {
        count(unsafe { &mut RULE_HITS }, rule);
    }

    if settings.log_every != 0 && bpf_get_prandom_u32() % settings.log_every == 0 {
        // No ring buffer API in redbpf-probes: the raw helpers its bindings generate.
        // SAFETY: reserve on the ring buffer map above; a non-null record has room for an Event.
        let e = unsafe {
            bpf_ringbuf_reserve(&mut EVENTS as *mut _ as *mut c_void, size_of::<Event>() as u64, 0) as *mut Event
        };
        if e.is_null() {
            count(unsafe { &mut VERDICTS }, COUNTER_EVENTS_LOST);
        } else {
            // Written as whole fields and words (layout in `types::Event`), like the Aya program:
            // no byte-wise zeroing that LLVM could turn into a memset call.
            let words = e as *mut u64;
            // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes.
            unsafe {
                (*e).ts_ns = bpf_ktime_get_ns();
                (*e).rule = rule;
                (*e).ifindex = (*ctx.inner()).ingress_ifindex;
                // verdict, family, pad[6]
                words.add(2).write(u64::from_ne_bytes([verdict as u8, family, 0, 0, 0, 0, 0, 0]));
                words.add(3).write(saddr[0]);
                words.add(4).write(saddr[1]);
                bpf_ringbuf_submit(e as *mut c_void, 0);
            }
        }
    }
    verdict
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(map: &mut PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_mut(index) {
        *p += 1;
    }
}
