/*
 * resources.h — what a run will need of the process's resource limits,
 * checked before any work.  Under `ulimit -v` (RLIMIT_AS) or `ulimit -d`
 * (RLIMIT_DATA), OpenBLAS 0.3.21 retries its 128 MiB buffer mmap()
 * forever when it fails (measured: a run spinning in blas_memory_alloc,
 * deaf to SIGTERM), so it must never be where memory runs out: a run
 * whose estimated need does not fit under the limit is refused up front
 * with TIMBER_ERR_NOMEM, and one that fits fails, if at all, in timber's
 * own allocations, which report it.
 */
#ifndef TIMBER_RESOURCES_H
#define TIMBER_RESOURCES_H

#include <stdint.h>

#include "timber.h"

/* Address space a run may map, by this estimate: what the process maps
 * now, plus per worker its largest matrix's buffers (largest m x n and
 * smaller side S), an OpenBLAS buffer and a thread stack, plus OpenBLAS's
 * own threads' buffers and stacks.  what names the run in the message. */
timber_status tb_memory_check(uint64_t max_mn, uint64_t max_s, int threads,
                              const char *what, timber_error *err);

/* Whether RLIMIT_AS or RLIMIT_DATA limits this process (then nothing
 * beyond tb_memory_check's estimate is allocated: no read-once copies of
 * streamed matrices, matrix.h). */
int tb_memory_limited(void);

/* The largest refined matrix (rows x cols) and smaller side over items. */
void tb_matrix_extent(uint64_t rows, uint64_t cols, uint64_t *max_mn,
                      uint64_t *max_s);

#endif /* TIMBER_RESOURCES_H */
