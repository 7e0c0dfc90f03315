/* loadbalancer loader on libbpf (C): the library-specific part only (open, load, attach, map
 * access, ring buffer), called from the shared Rust lifecycle through glue/main.rs. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <linux/types.h>

#include "loadbalancer.h"
#include "loadbalancer.skel.h"
#include "helpers.h"

struct balancer {
	struct loadbalancer_bpf *skel;
	struct events events;
	int link_fd; /* the XDP bpf_link; the kernel detaches when it closes, even if we crash */
};

void balancer_destroy(struct balancer *b)
{
	if (!b)
		return;
	/* Detach first, then the ring buffer, then the BPF object. */
	if (b->link_fd >= 0)
		close(b->link_fd);
	events_close(&b->events);
	loadbalancer_bpf__destroy(b->skel);
	free(b);
}

int balancer_load(struct balancer **out)
{
	struct balancer *b = calloc(1, sizeof(*b));
	int err;

	if (!b)
		return -ENOMEM;
	b->link_fd = -1;
	/* No setrlimit(RLIMIT_MEMLOCK): libbpf 1.x raises it only on kernels without memcg
	 * accounting of BPF memory (< 5.11) and does not fail when it cannot. */
	b->skel = loadbalancer_bpf__open_and_load();
	if (!b->skel) {
		err = -errno;
		goto fail;
	}
	if ((err = events_open(&b->events, b->skel->maps.events)))
		goto fail;
	*out = b;
	return 0;
fail:
	balancer_destroy(b);
	return err;
}

int balancer_set_settings(struct balancer *b, const struct settings *settings)
{
	__u32 zero = 0;

	return bpf_map__update_elem(b->skel->maps.settings, &zero, sizeof(zero), settings, sizeof(*settings), BPF_ANY);
}

/* family 4 or 6: addr has 4 or 16 bytes. */
int balancer_add_vip(struct balancer *b, int family, const __u8 *addr, __u32 index)
{
	struct bpf_map *map = family == 6 ? b->skel->maps.vips_v6 : b->skel->maps.vips_v4;

	return bpf_map__update_elem(map, addr, family == 6 ? 16 : 4, &index, sizeof(index), BPF_NOEXIST);
}

int balancer_add_port(struct balancer *b, const __u8 port[2], __u32 index)
{
	return bpf_map__update_elem(b->skel->maps.ports, port, 2, &index, sizeof(index), BPF_NOEXIST);
}

int balancer_set_backend(struct balancer *b, __u32 slot, const struct backend *backend)
{
	return bpf_map__update_elem(b->skel->maps.backends, &slot, sizeof(slot), backend, sizeof(*backend), BPF_ANY);
}

int balancer_set_table_entry(struct balancer *b, __u32 index, __u32 slot)
{
	return bpf_map__update_elem(b->skel->maps.maglev, &index, sizeof(index), &slot, sizeof(slot), BPF_ANY);
}

int balancer_verdicts(struct balancer *b, __u64 out[VERDICT_COUNT])
{
	return percpu_sums(b->skel->maps.verdicts, VERDICT_COUNT, out);
}

int balancer_backend_hits(struct balancer *b, __u32 slot, __u64 *hits)
{
	return percpu_sum(b->skel->maps.backend_hits, slot, hits);
}

int balancer_clear_backend_hits(struct balancer *b, __u32 slot)
{
	return percpu_clear(b->skel->maps.backend_hits, slot);
}

int balancer_attach(struct balancer *b, int ifindex, int skb_mode)
{
	int fd = xdp_link(b->skel->progs.loadbalancer, ifindex, skb_mode);

	if (fd < 0)
		return fd;
	b->link_fd = fd;
	return 0;
}

int balancer_poll(struct balancer *b, int timeout_ms, record_sink sink, void *ctx)
{
	return events_poll(&b->events, timeout_ms, sink, ctx);
}
