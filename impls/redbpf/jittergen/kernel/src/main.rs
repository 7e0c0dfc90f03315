//! jittergen TC program: drops, delays (jitter) or reorders a share of the packets matching a
//! protocol and port (see `bpfeval_shared::jittergen::abi` for the map layout this implements
//! byte for byte). Delays are earliest departure times honoured by the fq root qdisc.
//! Built by `cargo bpf build` (cargo-bpf 2.3.0, Rust 1.59, LLVM 13) from the loader's build.rs;
//! `#[tc_action]` puts it in the section `tc_action/jittergen`, a TC classifier in
//! direct-action mode.
#![no_std]
#![no_main]

use core::ffi::c_void;
use core::mem::MaybeUninit;

use jittergen_redbpf_types::*;
use redbpf_macros::map;
use redbpf_probes::maps::{Array, LruHashMap, PerCpuArray};
use redbpf_probes::tc::prelude::*;

program!(0xFFFFFFFE, "Dual MIT/GPL");

#[map(link_section = "maps/rules")]
static mut RULES: Array<Rule> = Array::with_max_entries(MAX_RULES);
#[map(link_section = "maps/settings")]
static mut SETTINGS: Array<Settings> = Array::with_max_entries(1);
#[map(link_section = "maps/counters")]
static mut COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT);
#[map(link_section = "maps/rule_hits")]
static mut RULE_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_RULES);
/// Last departure time per flow (skb hash), for jitter that keeps the order.
#[map(link_section = "maps/flow_last")]
static mut FLOW_LAST: LruHashMap<u32, u64> = LruHashMap::with_max_entries(FLOW_ENTRIES);

/// `bpf_skb_set_tstamp` (helper 192, Linux 5.18) is newer than the helper list redbpf-probes
/// generates its bindings from (bpf-sys' libbpf, up to helper 173). Declared here the way the
/// generated helpers are: the helper id, called as a function address.
#[inline(always)]
unsafe fn bpf_skb_set_tstamp(skb: *mut __sk_buff, tstamp: u64, tstamp_type: u32) -> i64 {
    let f: unsafe extern "C" fn(skb: *mut __sk_buff, tstamp: u64, tstamp_type: u32) -> i64 =
        core::mem::transmute(192usize);
    f(skb, tstamp, tstamp_type)
}

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// What the packet headers say, for rule matching.
struct Packet {
    protocol: u8,
    /// TCP/UDP ports read (not a later fragment, not cut off).
    ports: Option<(u16, u16)>,
}

#[tc_action]
fn jittergen(skb: SkBuff) -> TcActionResult {
    count(unsafe { &mut COUNTERS }, COUNTER_PACKETS);
    let packet = match parse(&skb) {
        Some(packet) => packet,
        None => return finish(COUNTER_NOT_IP, TcAction::Ok),
    };
    let rule_count = unsafe { SETTINGS.get(0) }.map_or(0, |s| s.rule_count);
    for i in 0..MAX_RULES {
        if i >= rule_count {
            break;
        }
        if let Some(rule) = unsafe { RULES.get(i) } {
            if matches(rule, &packet) {
                return apply(&skb, rule, i);
            }
        }
    }
    finish(COUNTER_UNMATCHED, TcAction::Ok)
}

/// `N` packet bytes from `offset`, also outside the linear part of the skb. `SkBuff::load` reads
/// one integer per helper call; this is the same helper, `bpf_skb_load_bytes`, for a whole header.
#[inline(always)]
fn load<const N: usize>(skb: &SkBuff, offset: usize) -> Option<[u8; N]> {
    let mut bytes = MaybeUninit::<[u8; N]>::uninit();
    // SAFETY: the helper writes at most `N` bytes into `bytes`, and all of them when it succeeds.
    unsafe {
        if bpf_skb_load_bytes(skb.skb as *const c_void, offset as u32, bytes.as_mut_ptr() as *mut c_void, N as u32) < 0 {
            return None;
        }
        Some(bytes.assume_init())
    }
}

/// IPv4/IPv6 header and ports; `None` for anything else, and for an IP header that is cut off
/// or invalid (version, IHL): the ports' place is unknown.
#[inline(always)]
fn parse(skb: &SkBuff) -> Option<Packet> {
    // SAFETY: the context the kernel passed; `protocol` and `len` are readable __sk_buff fields.
    let (protocol, len) = unsafe { ((*skb.skb).protocol, (*skb.skb).len) };
    let (protocol, l4) = match u16::from_be(protocol as u16) {
        ETH_P_IP => {
            let ip = load::<20>(skb, ETH_HLEN)?;
            let l4 = ETH_HLEN + usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || ip[0] & 0x0f < 5 || l4 > len as usize {
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
            let ip6 = load::<40>(skb, ETH_HLEN)?;
            if ip6[0] >> 4 != 6 {
                return None;
            }
            (ip6[6], ETH_HLEN + 40)
        }
        _ => return None,
    };
    let ports = match protocol {
        IPPROTO_TCP | IPPROTO_UDP => {
            load::<4>(skb, l4).map(|p| (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
        }
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
    rule.port == 0 || matches!(p.ports, Some((src, dst)) if src == rule.port || dst == rule.port)
}

/// What rule `index` does to a packet it matched.
#[inline(always)]
fn apply(skb: &SkBuff, rule: &Rule, index: u32) -> TcActionResult {
    let random = || u64::from(bpf_get_prandom_u32());
    let hit = random() < rule.chance;
    let keep_order = rule.action == ACTION_JITTER && rule.flags & FLAG_KEEP_ORDER != 0;
    let mut own_flow = false;
    let mut delay = rule.base_ns;

    count(unsafe { &mut RULE_HITS }, index);
    if hit && rule.action == ACTION_DROP {
        return finish(COUNTER_DROPPED, TcAction::Shot);
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
        return finish(COUNTER_PASSED, TcAction::Ok);
    }

    // The helpers below take the skb as `*mut`; RedBPF's `SkBuff` holds it as `*const`.
    let ctx = skb.skb as *mut __sk_buff;
    let now = bpf_ktime_get_ns();
    let mut t = now + delay;
    // SAFETY (all helper calls below): plain helpers on this program's own skb.
    if keep_order {
        // Never before an earlier packet of the flow (races between CPUs aside).
        let flow = unsafe { bpf_get_hash_recalc(ctx) };
        let flow_last = unsafe { &mut FLOW_LAST };
        if let Some(&last) = flow_last.get(&flow) {
            if last > t {
                t = last;
                count(unsafe { &mut COUNTERS }, COUNTER_ORDER_KEPT);
            }
        }
        flow_last.set(&flow, &t);
    }
    if t == now {
        return finish(COUNTER_PASSED, TcAction::Ok);
    }
    if own_flow {
        // fq releases a flow in order: a delayed packet in its flow would hold back every
        // later one. The low bit differs, so this is never the flow's own hash.
        unsafe { bpf_set_hash(ctx, bpf_get_hash_recalc(ctx) ^ (bpf_get_prandom_u32() | 1)) };
        count(unsafe { &mut COUNTERS }, COUNTER_OWN_FLOW);
    }
    if unsafe { bpf_skb_set_tstamp(ctx, t, BPF_SKB_TSTAMP_DELIVERY_MONO) } != 0 {
        count(unsafe { &mut COUNTERS }, COUNTER_TSTAMP_FAILED);
        return finish(COUNTER_PASSED, TcAction::Ok);
    }
    finish(COUNTER_DELAYED, TcAction::Ok)
}

#[inline(always)]
fn finish(counter: u32, verdict: TcAction) -> TcActionResult {
    count(unsafe { &mut COUNTERS }, counter);
    Ok(verdict)
}

/// Per-CPU counter: a plain add is race-free since each CPU has its own slot.
#[inline(always)]
fn count(map: &mut PerCpuArray<u64>, index: u32) {
    if let Some(p) = map.get_mut(index) {
        *p += 1;
    }
}
