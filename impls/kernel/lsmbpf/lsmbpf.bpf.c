// SPDX-License-Identifier: MIT OR Apache-2.0
/* lsmbpf: BPF LSM on path_chroot. A containerized process (PID namespace, or with
 * CRITERION_MNT_NS mount namespace, other than the loader's) may not chroot to its own root
 * directory. Semantics and layout are shared with every other library's build
 * (impls/shared/src/lsmbpf/abi.rs). Kernel structs are read with CO-RE: vmlinux.h is generated
 * from the build machine's BTF and libbpf relocates the field offsets to the running kernel. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lsmbpf.h"

#define EPERM 1
#define MAX_ERRNO 4095

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Filled in by the loader before load (.rodata). */
const volatile struct settings settings = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &index);
	if (n)
		*n += 1;
}

static __always_inline __u32 mntns_of(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* The PID namespace the task lives in (task_active_pid_ns). */
static __always_inline __u32 pidns_of(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct pid_namespace *ns = NULL;

	bpf_core_read(&ns, sizeof(ns), &pid->numbers[level].ns);
	return BPF_CORE_READ(ns, ns.inum);
}

static __always_inline bool containerized(struct task_struct *task)
{
	struct bpf_pidns_info ns;

	if (settings.criterion == CRITERION_MNT_NS)
		return mntns_of(task) != settings.mntns_ino;
	/* Non-zero when the current PID namespace is not the one with this dev/inode. */
	return bpf_get_ns_current_pid_tgid(settings.pidns_dev, settings.pidns_ino, &ns, sizeof(ns)) != 0;
}

static __always_inline void report(struct task_struct *task, const struct path *path, __u8 verdict)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 id;

	if (!e) {
		count(COUNTER_EVENTS_LOST);
		return;
	}
	/* Reserved ring buffer memory is not zeroed and is mapped to user space: write every
	 * byte. */
	id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->pidns = pidns_of(task);
	e->mntns = mntns_of(task);
	e->verdict = verdict;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	/* The helpers stop at the NUL: the tails of comm and path are zeroed first. */
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	__builtin_memset(e->path, 0, sizeof(e->path));
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), BPF_CORE_READ(path, dentry, d_name.name));
	bpf_ringbuf_submit(e, 0);
}

/* bpf_get_current_task_btf came with 5.11: on 5.10 (Debian bullseye) the verifier refuses the
 * program ("unknown func bpf_get_current_task_btf#158", EINVAL). libbpf's CO-RE answers the
 * enum check from the running kernel's BTF at load, and the verifier never walks the branch not
 * taken. Every read of the task below is a CO-RE probe read, which either pointer allows. */
static __always_inline struct task_struct *current_task(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

SEC("lsm/path_chroot")
int BPF_PROG(lsmbpf, const struct path *path, int ret)
{
	struct task_struct *task = current_task();
	bool audit = settings.mode == MODE_AUDIT;

	count(COUNTER_CALLS);
	/* An earlier program on this hook denied: keep its verdict (within [-MAX_ERRNO, 0], the
	 * range the verifier of kernels >= 6.12 demands). */
	if (ret != 0) {
		count(COUNTER_PRIOR_DENY);
		return ret < 0 && ret >= -MAX_ERRNO ? ret : -EPERM;
	}
	if (!containerized(task)) {
		count(COUNTER_ALLOW_HOST);
		return 0;
	}
	/* "/" is the caller's own root directory: the same dentry on the same mount. */
	if (BPF_CORE_READ(path, dentry) != BPF_CORE_READ(task, fs, root.dentry) ||
	    BPF_CORE_READ(path, mnt) != BPF_CORE_READ(task, fs, root.mnt)) {
		count(COUNTER_ALLOW_OTHER);
		return 0;
	}
	count(audit ? COUNTER_AUDIT : COUNTER_DENY);
	report(task, path, audit ? VERDICT_AUDIT : VERDICT_DENY);
	return audit ? 0 : -EPERM;
}
