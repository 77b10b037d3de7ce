/* Measured memory read bandwidth: decode of a batch of one reads every weight once per token,
 * so this figure bounds the decode rate, and `ominix bench` reports it beside that rate. */
#ifndef OM_MEMBW_H
#define OM_MEMBW_H

#include <stddef.h>

#include "core/threadpool.h"

/* GB/s (1e9 bytes per second) of reading a buffer of `bytes` (choose it much larger than the
 * last-level cache) with all of the pool's threads, each reading its own share with the best
 * SIMD kernel the CPU has; the best of a few runs. Returns 0 (with om_last_error) if the
 * buffer cannot be allocated. */
double om_measure_read_bandwidth(om_threadpool *pool, size_t bytes);

#endif
