/* pool_internal.h: what the benchmark and stress loops need from pool.c beyond the public API. */
#ifndef AETHER_POOL_INTERNAL_H
#define AETHER_POOL_INTERNAL_H

#include "internal.h"

/* A pool whose per-thread caches are off: every alloc and free goes to the shared CAS list (the baseline that
 * shows why the caches exist). Unbounded; destroy with aether_pool_destroy. */
aether_pool *_ae_pool_create_uncached(size_t block_size, size_t alignment, size_t initial_blocks);

/* aether_pool_destroy without the outstanding-blocks report (the stress runner, after a violation). */
void _ae_pool_destroy_quiet(aether_pool *pool);

#endif
