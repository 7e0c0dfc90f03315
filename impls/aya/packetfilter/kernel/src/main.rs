//! packetfilter XDP program: drop or pass by IPv4/IPv6 source address (see
//! `bpfeval_shared::packetfilter::abi` for the map layout this implements byte for byte).
// Only the bpfel build is the program; a host build (e.g. `cargo clippy --workspace`) compiles
// the same code as an inert binary instead of failing.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_prandom_u32, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{lpm_trie::Key, Array, LpmTrie, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use packetfilter_aya_types::*;

/// Placeholder size: the loader sets the real one (2 * capacity) with `EbpfLoader::map_max_entries`.
const DEFAULT_ENTRIES: u32 = 1 << 17;

// LpmTrie's constructor adds BPF_F_NO_PREALLOC itself (the kernel requires it for LPM tries).
#[map(name = "rules_v4")]
static RULES_V4: LpmTrie<[u8; 8], u32> = LpmTrie::with_max_entries(DEFAULT_ENTRIES, 0);
#[map(name = "rules_v6")]
static RULES_V6: LpmTrie<[u8; 20], u32> = LpmTrie::with_max_entries(DEFAULT_ENTRIES, 0);
#[map(name = "settings")]
static SETTINGS: Array<Settings> = Array::with_max_entries(2, 0);
#[map(name = "generation")]
static GENERATION: Array<u32> = Array::with_max_entries(1, 0);
#[map(name = "verdicts")]
static VERDICTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VERDICT_COUNT, 0);
#[map(name = "rule_hits")]
static RULE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DEFAULT_ENTRIES, 0);
#[map(name = "events")]
static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

#[xdp]
pub fn packetfilter(ctx: XdpContext) -> u32 {
    let verdict = classify(&ctx);
    count(&VERDICTS, verdict);
    match verdict {
        VERDICT_DROP_BLOCK | VERDICT_DROP_DEFAULT | VERDICT_DROP_MALFORMED => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

/// The packet's bytes `[off, off + N)`, or `None` if the frame ends before them. The comparison
/// against `data_end` is what the verifier needs to see before every packet access.
#[inline(always)]
fn bytes<const N: usize>(ctx: &XdpContext, off: usize) -> Option<&[u8; N]> {
    let start = ctx.data() + off;
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
    let Some(eth) = bytes::<ETH_HLEN>(ctx, 0) else { return VERDICT_DROP_MALFORMED };
    let mut proto = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = ETH_HLEN;
    // Up to two VLAN tags (802.1Q / 802.1ad); unrolled so every offset is a constant.
    for _ in 0..2 {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        let Some(tag) = bytes::<4>(ctx, off) else { return VERDICT_DROP_MALFORMED };
        proto = u16::from_be_bytes([tag[2], tag[3]]);
        off += 4;
    }
    match proto {
        ETH_P_8021Q | ETH_P_8021AD => VERDICT_DROP_MALFORMED,
        ETH_P_IP => {
            let Some(ip) = bytes::<20>(ctx, off) else { return VERDICT_DROP_MALFORMED };
            let ihl = usize::from(ip[0] & 0x0f);
            if ip[0] >> 4 != 4 || ihl < 5 || ctx.data() + off + ihl * 4 > ctx.data_end() {
                return VERDICT_DROP_MALFORMED;
            }
            let saddr = [u64::from_ne_bytes([ip[12], ip[13], ip[14], ip[15], 0, 0, 0, 0]), 0];
            let mut key = [0u8; 8];
            key[4..].copy_from_slice(&ip[12..16]);
            decide(ctx, 4, &RULES_V4, key, saddr)
        }
        ETH_P_IPV6 => {
            let Some(ip) = bytes::<40>(ctx, off) else { return VERDICT_DROP_MALFORMED };
            if ip[0] >> 4 != 6 {
                return VERDICT_DROP_MALFORMED;
            }
            let mut key = [0u8; 20];
            key[4..].copy_from_slice(&ip[8..24]);
            let saddr = [word(ip, 8), word(ip, 16)];
            decide(ctx, 6, &RULES_V6, key, saddr)
        }
        _ => VERDICT_PASS_NON_IP,
    }
}

/// Eight bytes of `b` from `at` as a native-endian word (the event's address layout).
#[inline(always)]
fn word<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    u64::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5], b[at + 6], b[at + 7]])
}

/// Block list, then allow list, then the family's default. `key` holds the address from byte 4;
/// the generation and list bytes are filled in here. Prefix length = all `N` bytes. `saddr` is
/// the event's 16 address bytes as two words.
#[inline(always)]
fn decide<const N: usize>(
    ctx: &XdpContext,
    family: u8,
    trie: &LpmTrie<[u8; N], u32>,
    mut key: [u8; N],
    saddr: [u64; 2],
) -> u32 {
    let generation = GENERATION.get(0).copied().unwrap_or(0);
    let settings = SETTINGS.get(generation).copied().unwrap_or_default();
    let default_drop = if family == 4 { settings.default_drop_v4 } else { settings.default_drop_v6 };
    key[0] = generation as u8;
    let prefix_len = N as u32 * 8;

    key[1] = LIST_BLOCK;
    let (verdict, rule) = if let Some(&rule) = trie.get(Key::new(prefix_len, key)) {
        (VERDICT_DROP_BLOCK, rule)
    } else {
        key[1] = LIST_ALLOW;
        match trie.get(Key::new(prefix_len, key)) {
            Some(&rule) => (VERDICT_PASS_ALLOW, rule),
            None if default_drop == 1 => (VERDICT_DROP_DEFAULT, NO_RULE),
            None => (VERDICT_PASS_DEFAULT, NO_RULE),
        }
    };
    if rule != NO_RULE {
        count(&RULE_HITS, rule);
    }

    // SAFETY: a plain helper call without arguments.
    if settings.log_every != 0 && unsafe { bpf_get_prandom_u32() } % settings.log_every == 0 {
        match EVENTS.reserve::<Event>(0) {
            Some(mut entry) => {
                // Written as whole fields and words (layout in `types::Event`): zero padding
                // written byte by byte is merged by LLVM into a call to a byte-wise memset
                // subprogram, since the BPF backend does not expand memset inline.
                let e = entry.as_mut_ptr();
                let words = e.cast::<u64>();
                // SAFETY: `e` is a reserved, 8-byte aligned record of `size_of::<Event>()` bytes.
                unsafe {
                    (*e).ts_ns = bpf_ktime_get_ns();
                    (*e).rule = rule;
                    (*e).ifindex = ctx.ingress_ifindex() as u32;
                    // verdict, family, pad[6]
                    words.add(2).write(u64::from_ne_bytes([verdict as u8, family, 0, 0, 0, 0, 0, 0]));
                    words.add(3).write(saddr[0]);
                    words.add(4).write(saddr[1]);
                }
                entry.submit(0);
            }
            None => count(&VERDICTS, COUNTER_EVENTS_LOST),
        }
    }
    verdict
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(map: &PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_ptr_mut(index) {
        // SAFETY: the pointer is this CPU's slot of a live map value.
        unsafe { *p += 1 };
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // All indexing above is on constants, so no panic path survives optimization.
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!(
        "packetfilter-aya-kernel is an XDP program; it is built for bpfel-unknown-none by packetfilter-aya's build.rs"
    );
    std::process::exit(1);
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
