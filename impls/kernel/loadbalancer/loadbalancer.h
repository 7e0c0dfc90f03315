/* Types shared by the loadbalancer XDP program and (as raw bytes) the loader.
 * The layout is the cross-library ABI in impls/shared/src/loadbalancer/abi.rs; keep both in step. */
#ifndef LOADBALANCER_H
#define LOADBALANCER_H

#include <linux/types.h>

#define TABLE_SIZE 65537
#define MAX_BACKENDS 256
#define MAX_VIPS 64
#define MAX_PORTS 64
#define CONN_TABLE_SIZE 65536
#define NO_BACKEND 0xffffffffu
#define BACKEND_IN_USE 1
#define FLOW_HASH_SEED 0x6c627066u
#define EVENTS_BYTES (256 * 1024)

enum verdict {
	VERDICT_PASS_NON_IP = 0,
	VERDICT_PASS_OTHER = 1,
	VERDICT_TX_CONN = 2,
	VERDICT_TX_NEW = 3,
	VERDICT_DROP_MALFORMED = 4,
	VERDICT_DROP_FRAGMENT = 5,
	VERDICT_DROP_NO_BACKEND = 6,
	/* Not a verdict: events the ring buffer had no room for. */
	COUNTER_EVENTS_LOST = 7,
	VERDICT_COUNT = 8,
};

/* settings[0] */
struct settings {
	__u32 any_vip;   /* 1 = no VIP configured: any destination address */
	__u32 log_every; /* one event per about log_every packets; 0 = none */
};

/* backends[slot] */
struct backend {
	__u8 mac[6];
	__u16 flags; /* BACKEND_IN_USE */
};

/* The conns key and the hash input: 40 bytes, hashed as ten little-endian words. 8-byte
 * aligned like the Rust programs' Flow, so `= {}` is five word stores there and here. */
struct flow {
	__u8 saddr[16]; /* IPv4: first 4 bytes */
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* IPPROTO_TCP */
	__u8 pad[2];
} __attribute__((aligned(8)));

/* One ring buffer record, 32 bytes. */
struct event {
	__u64 ts_ns;
	__u32 backend; /* slot, or NO_BACKEND */
	__u8 verdict;
	__u8 family; /* 0 (not IP), 4 or 6 */
	__be16 sport;
	__u8 saddr[16];
};

#endif
