/* Types shared by the comtrace program and (as raw bytes) the loader.
 * The layout is the cross-library ABI in impls/shared/src/comtrace/abi.rs; keep both in step. */
#ifndef COMTRACE_H
#define COMTRACE_H

enum counter {
	COUNTER_EVENTS_LOST = 0, /* records the ring buffer had no room for */
	COUNTER_UNTRACKED = 1,   /* connections not tracked: births or idents was full */
	COUNTER_COUNT = 2,
};

#define MAX_SOCKETS 65536
#define MAX_PORTS 1024
#define EVENTS_BYTES (256 * 1024)
#define TASK_COMM_LEN 16

/* idents[socket]: who owns the connection. */
struct ident {
	__u32 pid;
	__u32 pad;
	char comm[TASK_COMM_LEN];
};

/* One ring buffer record, 96 bytes. */
struct event {
	__u64 start_ns;
	__u64 end_ns;
	__u64 rx_bytes;
	__u64 tx_bytes;
	__u32 pid;
	__u16 lport; /* host byte order */
	__u16 rport;
	__u8 family; /* 4 or 6 */
	__u8 pad[7];
	__u8 laddr[16]; /* network byte order; IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[TASK_COMM_LEN];
};

#endif
