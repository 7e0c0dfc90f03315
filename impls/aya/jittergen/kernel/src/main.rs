//! jittergen TC program: drops, delays (jitter) or reorders a share of the packets matching a
//! protocol and port (see `bpfeval_shared::jittergen::abi` for the map layout this implements
//! byte for byte). Delays are earliest departure times honoured by the fq root qdisc.
// Only the bpfel build is the program; a host build (e.g. `cargo clippy --workspace`) compiles
// the same code as an inert binary instead of failing.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]

use aya_ebpf::{
    bindings::{BPF_ANY, TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_get_hash_recalc, bpf_get_prandom_u32, bpf_ktime_get_ns, bpf_set_hash, bpf_skb_set_tstamp},
    macros::{classifier, map},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::TcContext,
};
use jittergen_aya_types::*;

#[map(name = "rules")]
static RULES: Array<Rule> = Array::with_max_entries(MAX_RULES, 0);
#[map(name = "settings")]
static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);
#[map(name = "counters")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);
#[map(name = "rule_hits")]
static RULE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_RULES, 0);
/// Last departure time per flow (skb hash), for jitter that keeps the order.
#[map(name = "flow_last")]
static FLOW_LAST: LruHashMap<u32, u64> = LruHashMap::with_max_entries(FLOW_ENTRIES, 0);

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// aya-ebpf-bindings 0.2 has this only inside an anonymous bindgen module (`_bindgen_ty_28`).
const BPF_SKB_TSTAMP_DELIVERY_MONO: u32 = 1;
const OK: i32 = TC_ACT_OK as i32;
const SHOT: i32 = TC_ACT_SHOT as i32;

/// What the packet headers say, for rule matching.
#[derive(Default)]
struct Packet {
    protocol: u8,
    /// TCP/UDP ports read (not a later fragment, not cut off).
    ports: Option<(u16, u16)>,
}

#[classifier]
pub fn jittergen(ctx: TcContext) -> i32 {
    count(&COUNTERS, COUNTER_PACKETS);
    let Some(packet) = parse(&ctx) else { return finish(COUNTER_NOT_IP, OK) };
    let rule_count = SETTINGS.get(0).map_or(0, |s| s.rule_count);
    for i in 0..MAX_RULES {
        if i >= rule_count {
            break;
        }
        if let Some(rule) = RULES.get(i) {
            if matches(rule, &packet) {
                return apply(&ctx, rule, i);
            }
        }
    }
    finish(COUNTER_UNMATCHED, OK)
}

/// IPv4/IPv6 header and ports; `None` for anything else, and for an IP header that is cut off
/// or invalid (version, IHL): the ports' place is unknown. `load` (bpf_skb_load_bytes) also
/// reaches headers outside the linear part of the skb.
#[inline(always)]
fn parse(ctx: &TcContext) -> Option<Packet> {
    let (protocol, l4) = match u16::from_be(ctx.skb.protocol() as u16) {
        ETH_P_IP => {
            let ip: [u8; 20] = ctx.load(ETH_HLEN).ok()?;
            let l4 = ETH_HLEN + usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ip[0] & 0x0f < 5 || l4 > ctx.len() as usize {
                return None;
            }
            // A later fragment carries no L4 header.
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
                return Some(Packet { protocol: ip[9], ports: None });
            }
            (ip[9], l4)
        }
        // Extension headers are not walked: their packets match by address family only.
        ETH_P_IPV6 => {
            let ip6: [u8; 40] = ctx.load(ETH_HLEN).ok()?;
            if ip6[0] >> 4 != 6 {
                return None;
            }
            (ip6[6], ETH_HLEN + 40)
        }
        _ => return None,
    };
    let ports = match protocol {
        IPPROTO_TCP | IPPROTO_UDP => ctx
            .load::<[u8; 4]>(l4)
            .ok()
            .map(|p| (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))),
        _ => None,
    };
    Some(Packet { protocol, ports })
}

#[inline(always)]
fn matches(rule: &Rule, p: &Packet) -> bool {
    if rule.protocol == PROTO_ANY {
        return true;
    }
    if rule.protocol != p.protocol {
        return false;
    }
    rule.port == 0 || p.ports.is_some_and(|(src, dst)| src == rule.port || dst == rule.port)
}

/// What rule `index` does to a packet it matched.
#[inline(always)]
fn apply(ctx: &TcContext, rule: &Rule, index: u32) -> i32 {
    // SAFETY (all helper calls below): plain helpers on this program's own skb.
    let random = || u64::from(unsafe { bpf_get_prandom_u32() });
    let hit = random() < rule.chance;
    let keep_order = rule.action == ACTION_JITTER && rule.flags & FLAG_KEEP_ORDER != 0;
    let mut own_flow = false;
    let mut delay = rule.base_ns;

    count(&RULE_HITS, index);
    if hit && rule.action == ACTION_DROP {
        return finish(COUNTER_DROPPED, SHOT);
    }
    if hit && rule.action == ACTION_JITTER {
        let draw = random() << 32 | random();
        // checked_rem: no panic path for the verifier (span + 1 is never 0 for a loader's rule).
        delay += rule.min_ns + draw.checked_rem(rule.span_ns.wrapping_add(1)).unwrap_or(0);
        own_flow = !keep_order;
    }
    if hit && rule.action == ACTION_REORDER {
        delay += rule.min_ns;
        own_flow = true;
    }
    if delay == 0 && !keep_order {
        return finish(COUNTER_PASSED, OK);
    }

    let skb = ctx.skb.skb;
    let now = unsafe { bpf_ktime_get_ns() };
    let mut t = now + delay;
    if keep_order {
        // Never before an earlier packet of the flow (races between CPUs aside).
        let flow = unsafe { bpf_get_hash_recalc(skb) };
        if let Some(last) = FLOW_LAST.get_ptr(flow) {
            // SAFETY: a live map value; a concurrent update only makes the read stale.
            let last = unsafe { *last };
            if last > t {
                t = last;
                count(&COUNTERS, COUNTER_ORDER_KEPT);
            }
        }
        let _ = FLOW_LAST.insert(flow, t, BPF_ANY.into());
    }
    if t == now {
        return finish(COUNTER_PASSED, OK);
    }
    if own_flow {
        // fq releases a flow in order: a delayed packet in its flow would hold back every
        // later one. The low bit differs, so this is never the flow's own hash.
        unsafe { bpf_set_hash(skb, bpf_get_hash_recalc(skb) ^ (bpf_get_prandom_u32() | 1)) };
        count(&COUNTERS, COUNTER_OWN_FLOW);
    }
    if unsafe { bpf_skb_set_tstamp(skb, t, BPF_SKB_TSTAMP_DELIVERY_MONO) } != 0 {
        count(&COUNTERS, COUNTER_TSTAMP_FAILED);
        return finish(COUNTER_PASSED, OK);
    }
    finish(COUNTER_DELAYED, OK)
}

#[inline(always)]
fn finish(counter: u32, verdict: i32) -> i32 {
    count(&COUNTERS, counter);
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
    eprintln!("jittergen-aya-kernel is a TC program; it is built for bpfel-unknown-none by jittergen-aya's build.rs");
    std::process::exit(1);
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
