/* Types shared by the jittergen TC program and (as raw bytes) the loader.
 * The layout is the cross-library ABI in impls/shared/src/jittergen/abi.rs; keep both in step. */
#ifndef JITTERGEN_H
#define JITTERGEN_H

#include <linux/types.h>

#define MAX_RULES 16
#define FLOW_ENTRIES 65536

enum action {
	ACTION_DROP = 1,
	ACTION_JITTER = 2,
	ACTION_REORDER = 3,
};

#define FLAG_KEEP_ORDER 1

/* Rule protocol: 0 = any IP packet, else the IP protocol number (TCP, UDP). */
#define PROTO_ANY 0

enum counter {
	COUNTER_PACKETS = 0,
	COUNTER_NOT_IP = 1,
	COUNTER_UNMATCHED = 2,
	COUNTER_DROPPED = 3,
	COUNTER_DELAYED = 4,
	COUNTER_PASSED = 5,
	/* Not verdicts: */
	COUNTER_OWN_FLOW = 6,
	COUNTER_ORDER_KEPT = 7,
	COUNTER_TSTAMP_FAILED = 8,
	COUNTER_COUNT = 9,
};

/* rules[i], 48 bytes */
struct rule {
	__u64 chance;  /* act when a u32 random draw is below this; 1 << 32 = always */
	__u64 base_ns; /* delay of every matched packet */
	__u64 min_ns;  /* jitter: smallest extra delay; reorder: the extra delay */
	__u64 span_ns; /* jitter: max - min */
	__u32 action;
	__u32 flags;
	__u16 port;    /* source or destination port, host order; 0 = any */
	__u8 protocol;
	__u8 pad[5];
};

/* settings[0] */
struct settings {
	__u32 rule_count;
	__u32 reserved;
};

#endif
