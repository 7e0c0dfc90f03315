/* Types shared by the packetfilter XDP program and (as raw bytes) the loader.
 * The layout is the cross-library ABI in impls/shared/src/packetfilter/abi.rs; keep both in step. */
#ifndef PACKETFILTER_H
#define PACKETFILTER_H

#include <linux/types.h>

/* The (generation, list, pad, pad) key header, in bits. */
#define KEY_HEADER_BITS 32
#define LIST_BLOCK 0
#define LIST_ALLOW 1

enum verdict {
	VERDICT_PASS_NON_IP = 0,
	VERDICT_PASS_ALLOW = 1,
	VERDICT_PASS_DEFAULT = 2,
	VERDICT_DROP_BLOCK = 3,
	VERDICT_DROP_DEFAULT = 4,
	VERDICT_DROP_MALFORMED = 5,
	/* Not a verdict: events the ring buffer had no room for. */
	COUNTER_EVENTS_LOST = 6,
	VERDICT_COUNT = 7,
};

#define NO_RULE 0xffffffffu

/* LPM trie keys: prefixlen covers the 32 header bits plus the address prefix. */
struct key_v4 {
	__u32 prefixlen;
	__u8 data[4 + 4]; /* gen, list, 0, 0, IPv4 address */
};

struct key_v6 {
	__u32 prefixlen;
	__u8 data[4 + 16]; /* gen, list, 0, 0, IPv6 address */
};

/* settings[generation] */
struct settings {
	__u32 default_drop_v4; /* 1 = drop IPv4 packets no rule matched */
	__u32 default_drop_v6;
	__u32 log_every;       /* one event per about log_every packets; 0 = none */
	__u32 reserved;
};

/* One ring buffer record, 40 bytes. */
struct event {
	__u64 ts_ns;
	__u32 rule;
	__u32 ifindex;
	__u8 verdict;
	__u8 family; /* 4 or 6 */
	__u8 pad[6];
	__u8 saddr[16]; /* IPv4: first 4 bytes, rest 0 */
};

/* An 802.1Q / 802.1ad tag (not in the uapi headers). */
struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

#define MAX_VLAN_TAGS 2
#define EVENTS_BYTES (256 * 1024)

#endif
