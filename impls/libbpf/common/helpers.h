/* What every libbpf loader of bpf-eval needs beyond its skeleton: per-CPU counters, an XDP link
 * in a given mode, and ring buffer records handed to the caller. Functions return 0 or a
 * negative errno, as libbpf 1.x does. */
#ifndef BPFEVAL_HELPERS_H
#define BPFEVAL_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <bpf/libbpf.h>

/* Receives one ring buffer record; `ctx` is the caller's. */
typedef void (*record_sink)(void *ctx, const void *data, size_t len);

struct events {
	struct ring_buffer *rb;
	record_sink sink;
	void *ctx;
};

/* Sum of the u64 at `key` of a per-CPU array over all possible CPUs. */
int percpu_sum(const struct bpf_map *map, __u32 key, __u64 *sum);
/* percpu_sum of keys 0..n-1 into out[0..n-1]. */
int percpu_sums(const struct bpf_map *map, __u32 n, __u64 *out);
/* Sets the u64 at `key` to 0 on every CPU. */
int percpu_clear(const struct bpf_map *map, __u32 key);
/* An XDP bpf_link in driver (native) or generic (skb) mode; returns its fd. */
int xdp_link(const struct bpf_program *prog, int ifindex, bool skb_mode);

int events_open(struct events *ev, const struct bpf_map *map);
/* Waits up to timeout_ms and hands every record to `sink`; a signal ends the wait early. */
int events_poll(struct events *ev, int timeout_ms, record_sink sink, void *ctx);
void events_close(struct events *ev);

#endif
