/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The lsmbpf ABI (impls/shared/src/lsmbpf/abi.rs) restated for the C program. */
#ifndef LSMBPF_H
#define LSMBPF_H

#define CRITERION_PID_NS 0
#define CRITERION_MNT_NS 1
#define MODE_ENFORCE 0
#define MODE_AUDIT 1

#define COUNTER_CALLS 0
#define COUNTER_ALLOW_HOST 1
#define COUNTER_ALLOW_OTHER 2
#define COUNTER_DENY 3
#define COUNTER_AUDIT 4
#define COUNTER_PRIOR_DENY 5
#define COUNTER_EVENTS_LOST 6
#define COUNTER_COUNT 7

#define VERDICT_DENY 0
#define VERDICT_AUDIT 1

#define COMM_LEN 16
#define PATH_LEN 32

struct settings {
	__u64 pidns_dev;
	__u64 pidns_ino;
	__u32 mntns_ino;
	__u32 criterion;
	__u32 mode;
	__u32 _reserved;
};

struct event {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 pidns;
	__u32 mntns;
	__u8 verdict;
	__u8 _pad[7];
	char comm[COMM_LEN];
	char path[PATH_LEN];
};

#endif
