/* lsmbpf loader on libbpf (C): the library-specific part only (open, settings, load, attach,
 * counters, ring buffer), called from the shared Rust lifecycle through glue/main.rs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

#include "lsmbpf.h"
#include "lsmbpf.skel.h"
#include "helpers.h"

struct lsm {
	struct lsmbpf_bpf *skel; /* holds the LSM bpf_link: detached with it, or if we crash */
	struct events events;
};

void lsm_destroy(struct lsm *l)
{
	if (!l)
		return;
	/* Detach first (the skeleton's link), then the ring buffer, then the BPF object. */
	if (l->skel)
		lsmbpf_bpf__detach(l->skel);
	events_close(&l->events);
	lsmbpf_bpf__destroy(l->skel);
	free(l);
}

/* settings: the 32 bytes of struct settings (any alignment). */
int lsm_load(struct lsm **out, const void *settings)
{
	struct lsm *l = calloc(1, sizeof(*l));
	int err;

	if (!l)
		return -ENOMEM;
	l->skel = lsmbpf_bpf__open();
	if (!l->skel) {
		err = -errno;
		goto fail;
	}
	/* A `const volatile` global in .rodata: written here, frozen by the load. */
	memcpy((void *)&l->skel->rodata->settings, settings, sizeof(struct settings));
	/* libbpf relocates the CO-RE field accesses against /sys/kernel/btf/vmlinux here. */
	if ((err = lsmbpf_bpf__load(l->skel)) || (err = events_open(&l->events, l->skel->maps.events)))
		goto fail;
	*out = l;
	return 0;
fail:
	lsm_destroy(l);
	return err;
}

int lsm_attach(struct lsm *l)
{
	l->skel->links.lsmbpf = bpf_program__attach_lsm(l->skel->progs.lsmbpf);
	return l->skel->links.lsmbpf ? 0 : -errno;
}

int lsm_counters(struct lsm *l, __u64 out[COUNTER_COUNT])
{
	return percpu_sums(l->skel->maps.counters, COUNTER_COUNT, out);
}

int lsm_poll(struct lsm *l, int timeout_ms, record_sink sink, void *ctx)
{
	return events_poll(&l->events, timeout_ms, sink, ctx);
}
