/* comtrace loader on libbpf (C): the library-specific part only (open, set the filters, load,
 * attach, map access, ring buffer), called from the shared Rust lifecycle through glue/main.rs. */
#include <errno.h>
#include <stdlib.h>
#include <linux/types.h>

#include "comtrace.h"
#include "comtrace.skel.h"
#include "helpers.h"

struct tracer {
	struct comtrace_bpf *skel; /* holds the tracepoint's link: detached with it, or if we crash */
	struct events events;
};

void tracer_destroy(struct tracer *t)
{
	if (!t)
		return;
	/* Detach first (the skeleton's link), then the ring buffer, then the BPF object. */
	if (t->skel)
		comtrace_bpf__detach(t->skel);
	events_close(&t->events);
	comtrace_bpf__destroy(t->skel);
	free(t);
}

int tracer_load(struct tracer **out, __u32 target_pid, int filter_lports, int filter_rports)
{
	struct tracer *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	t->skel = comtrace_bpf__open();
	if (!t->skel) {
		err = -errno;
		goto fail;
	}
	/* `const volatile` globals: written into .rodata before load, constants for the verifier. */
	t->skel->rodata->target_pid = target_pid;
	t->skel->rodata->filter_lports = filter_lports;
	t->skel->rodata->filter_rports = filter_rports;
	if ((err = comtrace_bpf__load(t->skel)) || (err = events_open(&t->events, t->skel->maps.events)))
		goto fail;
	*out = t;
	return 0;
fail:
	tracer_destroy(t);
	return err;
}

/* remote: the rports list (-D), else lports (-L). */
int tracer_allow_port(struct tracer *t, int remote, __u16 port)
{
	__u8 one = 1;

	return bpf_map__update_elem(remote ? t->skel->maps.rports : t->skel->maps.lports, &port, sizeof(port), &one,
				    sizeof(one), BPF_ANY);
}

int tracer_attach(struct tracer *t)
{
	t->skel->links.comtrace = bpf_program__attach_tracepoint(t->skel->progs.comtrace, "sock", "inet_sock_set_state");
	return t->skel->links.comtrace ? 0 : -errno;
}

int tracer_counters(struct tracer *t, __u64 out[COUNTER_COUNT])
{
	return percpu_sums(t->skel->maps.counters, COUNTER_COUNT, out);
}

int tracer_poll(struct tracer *t, int timeout_ms, record_sink sink, void *ctx)
{
	return events_poll(&t->events, timeout_ms, sink, ctx);
}
