/* The Rust side's ring buffer callback; Go cannot call a C function pointer itself. */
#include <stddef.h>
typedef void (*bpfeval_sink)(void *ctx, const void *data, size_t len);
static inline void bpfeval_call_sink(bpfeval_sink f, void *ctx, const void *data, size_t len) { f(ctx, data, len); }
