/* jittergen loader on libbpf (C): the library-specific part only (open, load, map access,
 * attach), called from the shared Rust lifecycle (which also owns the qdiscs) through glue/main.rs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "jittergen.h"
#include "jittergen.skel.h"
#include "helpers.h"

struct jitter {
	struct jittergen_bpf *skel;
	/* TCX: a bpf_link's fd, detached when it closes, even if we crash. */
	int link_fd;
	/* Netlink: a cls_bpf filter under clsact; not a link, so detached explicitly. */
	struct bpf_tc_hook hook;
	struct bpf_tc_opts tc;
	int tc_attached;
};

void jitter_destroy(struct jitter *j)
{
	if (!j)
		return;
	/* Detach first, then the BPF object. */
	if (j->link_fd >= 0)
		close(j->link_fd);
	if (j->tc_attached) {
		/* bpf_tc_detach wants only the handle and priority bpf_tc_attach filled in. */
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = j->tc.handle, .priority = j->tc.priority);
		int err = bpf_tc_detach(&j->hook, &opts);

		if (err)
			fprintf(stderr, "warning: detaching the TC filter: %s\n", strerror(-err));
	}
	jittergen_bpf__destroy(j->skel);
	free(j);
}

int jitter_load(struct jitter **out)
{
	struct jitter *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->link_fd = -1;
	j->skel = jittergen_bpf__open_and_load();
	if (!j->skel) {
		int err = -errno;

		jitter_destroy(j);
		return err;
	}
	*out = j;
	return 0;
}

int jitter_set_rule(struct jitter *j, __u32 index, const void *rule)
{
	return bpf_map__update_elem(j->skel->maps.rules, &index, sizeof(index), rule, sizeof(struct rule), BPF_ANY);
}

int jitter_set_settings(struct jitter *j, const void *settings)
{
	__u32 zero = 0;

	return bpf_map__update_elem(j->skel->maps.settings, &zero, sizeof(zero), settings, sizeof(struct settings),
				    BPF_ANY);
}

int jitter_counters(struct jitter *j, __u64 out[COUNTER_COUNT])
{
	return percpu_sums(j->skel->maps.counters, COUNTER_COUNT, out);
}

int jitter_rule_hits(struct jitter *j, __u32 rule, __u64 *hits)
{
	return percpu_sum(j->skel->maps.rule_hits, rule, hits);
}

/* tcx: a TCX egress link (kernel >= 6.6), else a netlink cls_bpf filter under clsact. */
int jitter_attach(struct jitter *j, int ifindex, int tcx)
{
	int err;

	if (tcx) {
		/* bpf_program__attach_tcx() takes the attach type from the section, and SEC("tc")
		 * has none: create the link with BPF_TCX_EGRESS ourselves. */
		int fd = bpf_link_create(bpf_program__fd(j->skel->progs.jittergen), ifindex, BPF_TCX_EGRESS, NULL);

		if (fd < 0)
			return fd;
		j->link_fd = fd;
		return 0;
	}
	j->hook = (struct bpf_tc_hook){ .sz = sizeof(j->hook), .ifindex = ifindex, .attach_point = BPF_TC_EGRESS };
	/* Adds the clsact qdisc; one that is there already is fine. */
	err = bpf_tc_hook_create(&j->hook);
	if (err && err != -EEXIST)
		return err;
	j->tc = (struct bpf_tc_opts){ .sz = sizeof(j->tc), .prog_fd = bpf_program__fd(j->skel->progs.jittergen) };
	err = bpf_tc_attach(&j->hook, &j->tc);
	if (err)
		return err;
	j->tc_attached = 1;
	return 0;
}
