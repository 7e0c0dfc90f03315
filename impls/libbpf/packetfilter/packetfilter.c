/* packetfilter loader on libbpf (C): the library-specific part only (open, size, load, attach,
 * map access, ring buffer), called from the shared Rust lifecycle through glue/main.rs. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>

#include "packetfilter.h"
#include "packetfilter.skel.h"
#include "helpers.h"

struct filter {
	struct packetfilter_bpf *skel;
	struct events events;
	int link_fd; /* the XDP bpf_link; the kernel detaches when it closes, even if we crash */
};

void filter_destroy(struct filter *f)
{
	if (!f)
		return;
	/* Detach first, then the ring buffer, then the BPF object. */
	if (f->link_fd >= 0)
		close(f->link_fd);
	events_close(&f->events);
	packetfilter_bpf__destroy(f->skel);
	free(f);
}

int filter_load(struct filter **out, __u32 capacity)
{
	struct filter *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return -ENOMEM;
	f->link_fd = -1;
	/* No setrlimit(RLIMIT_MEMLOCK): libbpf 1.x raises it only on kernels without memcg
	 * accounting of BPF memory (< 5.11) and does not fail when it cannot. */
	f->skel = packetfilter_bpf__open();
	if (!f->skel) {
		err = -errno;
		goto fail;
	}
	if ((err = bpf_map__set_max_entries(f->skel->maps.rules_v4, 2 * capacity)) ||
	    (err = bpf_map__set_max_entries(f->skel->maps.rules_v6, 2 * capacity)) ||
	    (err = bpf_map__set_max_entries(f->skel->maps.rule_hits, 2 * capacity)) ||
	    (err = packetfilter_bpf__load(f->skel)) ||
	    (err = events_open(&f->events, f->skel->maps.events)))
		goto fail;
	*out = f;
	return 0;
fail:
	filter_destroy(f);
	return err;
}

/* rule < 0 deletes the prefix (absent is fine). */
int filter_set_rule(struct filter *f, int v6, __u32 prefixlen, const __u8 *data, long long rule)
{
	struct bpf_map *map = v6 ? f->skel->maps.rules_v6 : f->skel->maps.rules_v4;
	struct key_v6 key = { .prefixlen = prefixlen }; /* large enough for both */
	size_t key_size = v6 ? sizeof(struct key_v6) : sizeof(struct key_v4);
	__u32 id = rule;
	int err;

	memcpy(key.data, data, key_size - sizeof(key.prefixlen));
	if (rule >= 0)
		return bpf_map__update_elem(map, &key, key_size, &id, sizeof(id), BPF_ANY);
	err = bpf_map__delete_elem(map, &key, key_size, 0);
	return err == -ENOENT ? 0 : err;
}

int filter_set_settings(struct filter *f, __u32 generation, const struct settings *settings)
{
	return bpf_map__update_elem(f->skel->maps.settings, &generation, sizeof(generation), settings,
				    sizeof(*settings), BPF_ANY);
}

int filter_set_generation(struct filter *f, __u32 generation)
{
	__u32 zero = 0;

	return bpf_map__update_elem(f->skel->maps.generation, &zero, sizeof(zero), &generation,
				    sizeof(generation), BPF_ANY);
}

int filter_verdicts(struct filter *f, __u64 out[VERDICT_COUNT])
{
	return percpu_sums(f->skel->maps.verdicts, VERDICT_COUNT, out);
}

int filter_rule_hits(struct filter *f, __u32 rule, __u64 *hits)
{
	return percpu_sum(f->skel->maps.rule_hits, rule, hits);
}

int filter_clear_rule_hits(struct filter *f, __u32 rule)
{
	return percpu_clear(f->skel->maps.rule_hits, rule);
}

int filter_attach(struct filter *f, int ifindex, int skb_mode)
{
	int fd = xdp_link(f->skel->progs.packetfilter, ifindex, skb_mode);

	if (fd < 0)
		return fd;
	f->link_fd = fd;
	return 0;
}

int filter_poll(struct filter *f, int timeout_ms, record_sink sink, void *ctx)
{
	return events_poll(&f->events, timeout_ms, sink, ctx);
}
