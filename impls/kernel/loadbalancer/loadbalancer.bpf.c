// SPDX-License-Identifier: MIT OR Apache-2.0
/* loadbalancer: XDP layer-4 load balancer with direct server return. TCP to a VIP and a
 * balanced port goes to the backend its connection is pinned to (conns), or for a new flow to
 * the one the Maglev table names; the frame leaves through the same interface with the
 * backend's destination MAC. Semantics, map layout and the flow hash are shared with every
 * other library's build (impls/shared/src/loadbalancer/abi.rs). XDP reads only packet bytes,
 * so there is no CO-RE and no vmlinux.h: the uapi headers are enough. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "loadbalancer.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, __u32);
	__type(value, __u32);
} vips_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_VIPS);
	__type(key, struct in6_addr);
	__type(value, __u32);
} vips_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __be16);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TABLE_SIZE);
	__type(key, __u32);
	__type(value, __u32);
} maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONN_TABLE_SIZE);
	__type(key, struct flow);
	__type(value, __u32);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VERDICT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u64);
} backend_hits SEC(".maps");

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

static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* MurmurHash3 (x86, 32-bit) of the 40 flow bytes, read as ten little-endian words. */
static __always_inline __u32 flow_hash(const struct flow *flow)
{
	const __u32 *w = (const __u32 *)flow;
	__u32 h = FLOW_HASH_SEED;

#pragma unroll
	for (int i = 0; i < sizeof(*flow) / 4; i++) {
		__u32 k = rotl32(w[i] * 0xcc9e2d51u, 15) * 0x1b873593u;

		h = rotl32(h ^ k, 13) * 5 + 0xe6546b64u;
	}
	h ^= sizeof(*flow);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

/* The backend for a balanced flow: its connection's if the slot is still in use, else the
 * Maglev table's (and the flow is remembered). A SYN opens a new connection, which may reuse
 * an old 4-tuple: it always goes by the table. NULL: the table names no backend. */
static __always_inline struct backend *pick(struct flow *flow, int syn, __u32 *slot, __u32 *verdict)
{
	struct backend *b;
	__u32 *known = syn ? NULL : bpf_map_lookup_elem(&conns, flow);
	__u32 index, *entry;

	if (known) {
		*slot = *known;
		b = bpf_map_lookup_elem(&backends, slot);
		if (b && (b->flags & BACKEND_IN_USE)) {
			*verdict = VERDICT_TX_CONN;
			return b;
		}
	}
	index = flow_hash(flow) % TABLE_SIZE;
	entry = bpf_map_lookup_elem(&maglev, &index);
	if (!entry || *entry == NO_BACKEND)
		return NULL;
	*slot = *entry;
	b = bpf_map_lookup_elem(&backends, slot);
	if (!b || !(b->flags & BACKEND_IN_USE))
		return NULL;
	bpf_map_update_elem(&conns, flow, slot, BPF_ANY);
	*verdict = VERDICT_TX_NEW;
	return b;
}

/* Parses the frame into `flow` (as far as it gets) and forwards balanced TCP. */
static __always_inline __u32 classify(struct xdp_md *ctx, const struct settings *s, struct flow *flow,
				      __u32 *slot)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	struct backend *b;
	__u32 verdict;
	int listed;

	if ((void *)(eth + 1) > data_end)
		return VERDICT_DROP_MALFORMED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl < 5 ||
		    (void *)ip + ip->ihl * 4 > data_end)
			return VERDICT_DROP_MALFORMED;
		__builtin_memcpy(flow->saddr, &ip->saddr, 4);
		__builtin_memcpy(flow->daddr, &ip->daddr, 4);
		flow->family = 4;
		listed = s->any_vip || bpf_map_lookup_elem(&vips_v4, flow->daddr);
		if (!listed || ip->protocol != IPPROTO_TCP)
			return VERDICT_PASS_OTHER;
		/* Only the first fragment has ports: fragments cannot be balanced per flow. */
		if (ip->frag_off & bpf_htons(0x3fff))
			return VERDICT_DROP_FRAGMENT;
		tcp = (void *)ip + ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6)
			return VERDICT_DROP_MALFORMED;
		__builtin_memcpy(flow->saddr, &ip6->saddr, 16);
		__builtin_memcpy(flow->daddr, &ip6->daddr, 16);
		flow->family = 6;
		listed = s->any_vip || bpf_map_lookup_elem(&vips_v6, flow->daddr);
		if (!listed)
			return VERDICT_PASS_OTHER;
		if (ip6->nexthdr == IPPROTO_FRAGMENT)
			return VERDICT_DROP_FRAGMENT;
		/* Other extension headers are not walked: such packets are not ours. */
		if (ip6->nexthdr != IPPROTO_TCP)
			return VERDICT_PASS_OTHER;
		tcp = (void *)(ip6 + 1);
	} else {
		/* ARP, VLAN-tagged frames and everything else: the balancer serves the untagged
		 * segment it is attached to. */
		return VERDICT_PASS_NON_IP;
	}

	if ((void *)tcp + 4 > data_end)
		return VERDICT_DROP_MALFORMED;
	flow->sport = tcp->source;
	flow->dport = tcp->dest;
	if (!bpf_map_lookup_elem(&ports, &flow->dport))
		return VERDICT_PASS_OTHER;
	if ((void *)(tcp + 1) > data_end)
		return VERDICT_DROP_MALFORMED;
	flow->proto = IPPROTO_TCP;

	b = pick(flow, tcp->syn && !tcp->ack, slot, &verdict);
	if (!b)
		return VERDICT_DROP_NO_BACKEND;
	/* Direct server return at layer 2: from the balancer (the frame's old destination) to
	 * the backend; IP and TCP stay untouched. */
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, b->mac, ETH_ALEN);
	bump(&backend_hits, *slot);
	return verdict;
}

SEC("xdp")
int loadbalancer(struct xdp_md *ctx)
{
	struct settings none = {}, *s;
	struct flow flow = {};
	__u32 zero = 0, slot = NO_BACKEND, verdict;

	s = bpf_map_lookup_elem(&settings, &zero);
	if (!s)
		s = &none;
	verdict = classify(ctx, s, &flow, &slot);
	bump(&verdicts, verdict);

	if (s->log_every != 0 && bpf_get_prandom_u32() % s->log_every == 0) {
		struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

		if (!e) {
			bump(&verdicts, COUNTER_EVENTS_LOST);
		} else {
			/* Reserved ring buffer memory is not zeroed and is mapped to user space:
			 * write every byte. */
			e->ts_ns = bpf_ktime_get_ns();
			e->backend = slot;
			e->verdict = verdict;
			e->family = flow.family;
			e->sport = flow.sport;
			__builtin_memcpy(e->saddr, flow.saddr, 16);
			bpf_ringbuf_submit(e, 0);
		}
	}
	switch (verdict) {
	case VERDICT_TX_CONN:
	case VERDICT_TX_NEW:
		return XDP_TX;
	case VERDICT_DROP_MALFORMED:
	case VERDICT_DROP_FRAGMENT:
	case VERDICT_DROP_NO_BACKEND:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
}
