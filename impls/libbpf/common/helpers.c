#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>

#include "helpers.h"

int percpu_sum(const struct bpf_map *map, __u32 key, __u64 *sum)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *values;
	int err;

	if (ncpus < 0)
		return ncpus;
	values = calloc(ncpus, sizeof(*values));
	if (!values)
		return -ENOMEM;
	err = bpf_map__lookup_elem(map, &key, sizeof(key), values, ncpus * sizeof(*values), 0);
	*sum = 0;
	for (int i = 0; !err && i < ncpus; i++)
		*sum += values[i];
	free(values);
	return err;
}

int percpu_sums(const struct bpf_map *map, __u32 n, __u64 *out)
{
	int err = 0;

	for (__u32 i = 0; !err && i < n; i++)
		err = percpu_sum(map, i, &out[i]);
	return err;
}

int percpu_clear(const struct bpf_map *map, __u32 key)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *zeros;
	int err;

	if (ncpus < 0)
		return ncpus;
	zeros = calloc(ncpus, sizeof(*zeros));
	if (!zeros)
		return -ENOMEM;
	err = bpf_map__update_elem(map, &key, sizeof(key), zeros, ncpus * sizeof(*zeros), BPF_ANY);
	free(zeros);
	return err;
}

int xdp_link(const struct bpf_program *prog, int ifindex, bool skb_mode)
{
	/* bpf_program__attach_xdp() passes no mode flags (the kernel then silently falls back to
	 * generic XDP where the driver has no native support): create the link with the mode. */
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	int fd = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &opts);

	return fd < 0 ? -errno : fd;
}

static int forward(void *ctx, void *data, size_t len)
{
	struct events *ev = ctx;

	ev->sink(ev->ctx, data, len);
	return 0;
}

int events_open(struct events *ev, const struct bpf_map *map)
{
	ev->rb = ring_buffer__new(bpf_map__fd(map), forward, ev, NULL);
	return ev->rb ? 0 : -errno;
}

int events_poll(struct events *ev, int timeout_ms, record_sink sink, void *ctx)
{
	int n;

	ev->sink = sink;
	ev->ctx = ctx;
	n = ring_buffer__poll(ev->rb, timeout_ms);
	/* A signal (SIGHUP, SIGINT) interrupts epoll_wait; the caller handles it next. */
	return n < 0 && n != -EINTR ? n : 0;
}

void events_close(struct events *ev)
{
	ring_buffer__free(ev->rb);
	ev->rb = NULL;
}
