// SPDX-License-Identifier: MIT OR Apache-2.0
/* jittergen: TC egress program that drops, delays (jitter) or reorders a share of the packets
 * matching a protocol and port. Delays are earliest departure times honoured by the fq root
 * qdisc the loader installs. Semantics and map layout are shared with every other library's
 * build (impls/shared/src/jittergen/abi.rs). Only packet bytes are read: no CO-RE needed. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "jittergen.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, struct rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

/* Last departure time per flow (skb hash), for jitter that keeps the order. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} flow_last SEC(".maps");

/* What the packet headers say, for rule matching. */
struct packet {
	__u8 protocol;
	__u8 has_ports; /* TCP/UDP header read (not a later fragment, not cut off) */
	__u16 sport;
	__u16 dport;
};

static __always_inline void bump(void *map, __u32 index)
{
	/* Per-CPU counters: no other CPU writes this slot, so no atomic is needed. */
	__u64 *n = bpf_map_lookup_elem(map, &index);

	if (n)
		*n += 1;
}

static __always_inline int finish(__u32 counter, int verdict)
{
	bump(&counters, counter);
	return verdict;
}

/* IPv4/IPv6 header and ports; -1 for anything else, and for an IP header that is cut off or
 * invalid (version, IHL): the ports' place is unknown. bpf_skb_load_bytes also reaches headers
 * outside the linear part of the skb. */
static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	__u32 l4;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 ip[20];

		if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(ip)))
			return -1;
		l4 = ETH_HLEN + (ip[0] & 0x0f) * 4;
		if (ip[0] >> 4 != 4 || (ip[0] & 0x0f) < 5 || l4 > skb->len)
			return -1;
		p->protocol = ip[9];
		/* A later fragment carries no L4 header. */
		if ((((__u16)ip[6] << 8 | ip[7]) & 0x1fff) != 0)
			return 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 ip6[40];

		/* Extension headers are not walked: their packets match by address family only. */
		if (bpf_skb_load_bytes(skb, ETH_HLEN, ip6, sizeof(ip6)) || ip6[0] >> 4 != 6)
			return -1;
		p->protocol = ip6[6];
		l4 = ETH_HLEN + 40;
	} else {
		return -1;
	}
	if (p->protocol == IPPROTO_TCP || p->protocol == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports)) == 0) {
			p->has_ports = 1;
			p->sport = bpf_ntohs(ports[0]);
			p->dport = bpf_ntohs(ports[1]);
		}
	}
	return 0;
}

static __always_inline int matches(const struct rule *r, const struct packet *p)
{
	if (r->protocol == PROTO_ANY)
		return 1;
	if (r->protocol != p->protocol)
		return 0;
	return r->port == 0 || (p->has_ports && (p->sport == r->port || p->dport == r->port));
}

/* What rule `index` does to a packet it matched. */
static __always_inline int apply(struct __sk_buff *skb, const struct rule *r, __u32 index)
{
	int hit = (__u64)bpf_get_prandom_u32() < r->chance;
	int keep_order = r->action == ACTION_JITTER && (r->flags & FLAG_KEEP_ORDER);
	int own_flow = 0;
	__u64 delay = r->base_ns, now, t;

	bump(&rule_hits, index);
	if (hit && r->action == ACTION_DROP)
		return finish(COUNTER_DROPPED, TC_ACT_SHOT);
	if (hit && r->action == ACTION_JITTER) {
		__u64 draw = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32();

		delay += r->min_ns + draw % (r->span_ns + 1);
		own_flow = !keep_order;
	}
	if (hit && r->action == ACTION_REORDER) {
		delay += r->min_ns;
		own_flow = 1;
	}
	if (delay == 0 && !keep_order)
		return finish(COUNTER_PASSED, TC_ACT_OK);

	now = bpf_ktime_get_ns();
	t = now + delay;
	if (keep_order) {
		/* Never before an earlier packet of the flow (races between CPUs aside). */
		__u32 flow = bpf_get_hash_recalc(skb);
		__u64 *last = bpf_map_lookup_elem(&flow_last, &flow);

		if (last && *last > t) {
			t = *last;
			bump(&counters, COUNTER_ORDER_KEPT);
		}
		bpf_map_update_elem(&flow_last, &flow, &t, BPF_ANY);
	}
	if (t == now)
		return finish(COUNTER_PASSED, TC_ACT_OK);
	if (own_flow) {
		/* fq releases a flow in order: a delayed packet in its flow would hold back every
		 * later one. The low bit differs, so this is never the flow's own hash. */
		bpf_set_hash(skb, bpf_get_hash_recalc(skb) ^ (bpf_get_prandom_u32() | 1));
		bump(&counters, COUNTER_OWN_FLOW);
	}
	if (bpf_skb_set_tstamp(skb, t, BPF_SKB_TSTAMP_DELIVERY_MONO)) {
		bump(&counters, COUNTER_TSTAMP_FAILED);
		return finish(COUNTER_PASSED, TC_ACT_OK);
	}
	return finish(COUNTER_DELAYED, TC_ACT_OK);
}

SEC("tc")
int jittergen(struct __sk_buff *skb)
{
	struct packet p = {};
	struct settings *s;
	__u32 zero = 0, count;

	bump(&counters, COUNTER_PACKETS);
	if (parse(skb, &p))
		return finish(COUNTER_NOT_IP, TC_ACT_OK);
	s = bpf_map_lookup_elem(&settings, &zero);
	count = s ? s->rule_count : 0;
	/* Unrolled: every key is a constant (the 6.1 verifier also took the rolled loop, with its
	 * counter on the stack for the lookup, for an infinite one). */
#pragma unroll
	for (__u32 i = 0; i < MAX_RULES; i++) {
		__u32 key = i;
		struct rule *r;

		if (i >= count)
			break;
		r = bpf_map_lookup_elem(&rules, &key);
		if (r && matches(r, &p))
			return apply(skb, r, i);
	}
	return finish(COUNTER_UNMATCHED, TC_ACT_OK);
}
