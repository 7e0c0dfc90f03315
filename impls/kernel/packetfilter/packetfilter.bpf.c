// SPDX-License-Identifier: MIT OR Apache-2.0
/* packetfilter: XDP filter by source address. Semantics and map layout are shared with every
 * other library's build (impls/shared/src/packetfilter/abi.rs). XDP reads only packet bytes,
 * so there is no CO-RE and no vmlinux.h: the uapi headers are enough. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "packetfilter.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* max_entries of rules_v4, rules_v6 and rule_hits are placeholders: the loader sets them to
 * 2 * capacity before loading. LPM tries require BPF_F_NO_PREALLOC. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct key_v4);
	__type(value, __u32);
} rules_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct key_v6);
	__type(value, __u32);
} rules_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} generation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rule_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_BYTES);
} events SEC(".maps");

static __always_inline void bump(void *map, __u32 index)
{
	/* Per-CPU counters: no other CPU writes this slot, so no atomic is needed. */
	__u64 *n = bpf_map_lookup_elem(map, &index);

	if (n)
		*n += 1;
}

/* For packets that get no rule lookup (non-IP, malformed). */
static __always_inline int verdict_only(__u32 verdict)
{
	bump(&verdicts, verdict);
	return verdict == VERDICT_DROP_MALFORMED ? XDP_DROP : XDP_PASS;
}

/* The active generation, and its settings in *s (NULL if missing). Looked up only for a
 * packet whose IP header is valid, as in the Rust programs. */
static __always_inline __u8 active(struct settings **s)
{
	__u32 zero = 0, gen = 0, *g = bpf_map_lookup_elem(&generation, &zero);

	if (g)
		gen = *g;
	*s = bpf_map_lookup_elem(&settings, &gen);
	return gen;
}

/* Steps 6-8 for one IP packet. `key` is a key_v4 or key_v6 whose data[0] already holds the
 * generation; `list` points at its data[1]. */
static __always_inline int decide(struct xdp_md *ctx, void *rules, void *key, __u8 *list,
				  const struct settings *s, __u8 family, const __u8 saddr[16])
{
	__u32 verdict, rule = NO_RULE, *hit;
	__u32 log_every = s ? s->log_every : 0;

	/* Block wins over allow: the block list is consulted first. */
	*list = LIST_BLOCK;
	hit = bpf_map_lookup_elem(rules, key);
	if (hit) {
		verdict = VERDICT_DROP_BLOCK;
		rule = *hit;
	} else {
		*list = LIST_ALLOW;
		hit = bpf_map_lookup_elem(rules, key);
		if (hit) {
			verdict = VERDICT_PASS_ALLOW;
			rule = *hit;
		} else {
			__u32 drop = s ? (family == 4 ? s->default_drop_v4 : s->default_drop_v6) : 0;

			verdict = drop == 1 ? VERDICT_DROP_DEFAULT : VERDICT_PASS_DEFAULT;
		}
	}

	bump(&verdicts, verdict);
	if (rule != NO_RULE)
		bump(&rule_hits, rule);

	if (log_every != 0 && bpf_get_prandom_u32() % log_every == 0) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			bump(&verdicts, COUNTER_EVENTS_LOST);
		} else {
			/* Reserved ring buffer memory is not zeroed and is mapped to user space:
			 * write every byte. */
			e->ts_ns = bpf_ktime_get_ns();
			e->rule = rule;
			e->ifindex = ctx->ingress_ifindex;
			e->verdict = verdict;
			e->family = family;
			__builtin_memset(e->pad, 0, sizeof(e->pad));
			__builtin_memcpy(e->saddr, saddr, 16);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return verdict == VERDICT_DROP_BLOCK || verdict == VERDICT_DROP_DEFAULT ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int packetfilter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 saddr[16] = {};
	struct settings *s;
	__be16 proto;
	void *cur;

	if ((void *)(eth + 1) > data_end)
		return verdict_only(VERDICT_DROP_MALFORMED);
	proto = eth->h_proto;
	cur = eth + 1;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_hdr *tag = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > data_end)
			return verdict_only(VERDICT_DROP_MALFORMED);
		proto = tag->encapsulated_proto;
		cur = tag + 1;
	}
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return verdict_only(VERDICT_DROP_MALFORMED); /* a third tag */

	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return verdict_only(VERDICT_PASS_NON_IP);

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur;
		struct key_v4 key = { .prefixlen = KEY_HEADER_BITS + 32 };

		/* Options need no parsing (the source is in the fixed header), but the header
		 * must be complete. Fragments carry the source in every fragment. */
		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5 ||
		    cur + ip->ihl * 4 > data_end)
			return verdict_only(VERDICT_DROP_MALFORMED);
		key.data[0] = active(&s);
		__builtin_memcpy(&key.data[4], &ip->saddr, 4);
		__builtin_memcpy(saddr, &ip->saddr, 4);
		return decide(ctx, &rules_v4, &key, &key.data[1], s, 4, saddr);
	} else {
		struct ipv6hdr *ip6 = cur;
		struct key_v6 key = { .prefixlen = KEY_HEADER_BITS + 128 };

		/* Extension headers are not walked: the source is in the fixed header. */
		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return verdict_only(VERDICT_DROP_MALFORMED);
		key.data[0] = active(&s);
		__builtin_memcpy(&key.data[4], &ip6->saddr, 16);
		__builtin_memcpy(saddr, &ip6->saddr, 16);
		return decide(ctx, &rules_v6, &key, &key.data[1], s, 6, saddr);
	}
}
