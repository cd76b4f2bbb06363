/*
 * resources.c — the up-front check of a run's memory need against
 * RLIMIT_AS and RLIMIT_DATA (see resources.h for why it must come first).
 */
#include "resources.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "safetensors.h"
#include "util.h"

/* OpenBLAS 0.3.21 (Debian) maps 128 MiB per buffer (measured: the
 * mmap() it retries is 134217728 bytes); each thread that calls it, and
 * each of its own pool threads, holds one. */
#define BLAS_BUFFER (128ull << 20)
/* glibc's default thread stack. */
#define THREAD_STACK (8ull << 20)
/* Libraries, the models' tables, cJSON, the cache index: slack. */
#define SLACK (96ull << 20)
/* A matrix of at most this many elements is read whole (matrix.h). */
#define WHOLE_ELEMS (1ull << 22)
#define PANEL_BYTES (4ull << 20)

int tb_memory_limited(void)
{
    struct rlimit r;
    return (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY) ||
           (getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY);
}

void tb_matrix_extent(uint64_t rows, uint64_t cols, uint64_t *max_mn,
                      uint64_t *max_s)
{
    uint64_t s = rows < cols ? rows : cols;
    uint64_t mn = rows * cols; /* both below 2^53 / dtype size: no overflow
                                  worth guarding for an estimate */
    if (mn > *max_mn)
        *max_mn = mn;
    if (s > *max_s)
        *max_s = s;
}

/* Current mapping sizes, from /proc/self/statm: total and data. */
static void current_use(uint64_t *vm, uint64_t *data)
{
    *vm = *data = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f)
        return;
    unsigned long long size, res, shared, text, lib, dat;
    if (fscanf(f, "%llu %llu %llu %llu %llu %llu", &size, &res, &shared,
               &text, &lib, &dat) == 6) {
        long page = sysconf(_SC_PAGESIZE);
        *vm = size * (uint64_t)page;
        *data = dat * (uint64_t)page;
    }
    fclose(f);
}

timber_status tb_memory_check(uint64_t max_mn, uint64_t max_s, int threads,
                              const char *what, timber_error *err)
{
    struct rlimit as, ds;
    uint64_t limit = UINT64_MAX;
    const char *which = NULL;
    int by_data = 0;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
        limit = (uint64_t)as.rlim_cur;
        which = "ulimit -v";
    }
    if (getrlimit(RLIMIT_DATA, &ds) == 0 && ds.rlim_cur != RLIM_INFINITY &&
        (uint64_t)ds.rlim_cur < limit) {
        limit = (uint64_t)ds.rlim_cur;
        which = "ulimit -d";
        by_data = 1;
    }
    if (!which)
        return TIMBER_OK;
    uint64_t vm, data;
    current_use(&vm, &data);
    uint64_t in_use = by_data ? data : vm;
    /* Per worker: the Gram matrix and the eigen-solver's copies (about
     * 4 S^2 doubles with the basis), the matrix read whole or its
     * panels, a wide matrix's Z (at most S/2 x cols), and the writer's
     * two bounce buffers for direct writes (one filled, one in flight). */
    uint64_t s2 = max_s * (max_s + 8) * 8;
    uint64_t whole = max_mn <= WHOLE_ELEMS ? 16 * max_mn : 4 * PANEL_BYTES;
    uint64_t per_worker = 4 * s2 + whole + 4 * max_mn + BLAS_BUFFER +
                          THREAD_STACK + 2 * (uint64_t)TB_WRITER_BOUNCE;
    uint64_t t = threads > 0 ? (uint64_t)threads : 1;
    /* The I/O lane that copies tensors (parallel.h): a thread, its write
     * in flight and the two bounce buffers. */
    uint64_t io_lane = 2 * THREAD_STACK + 2 * (uint64_t)TB_WRITER_BOUNCE;
    uint64_t need = in_use + t * per_worker +
                    t * (BLAS_BUFFER + THREAD_STACK) + io_lane + SLACK;
    if (need <= limit)
        return TIMBER_OK;
    return tb_fail(err, TIMBER_ERR_NOMEM,
                   "%s: out of memory: this run needs about %llu MiB of "
                   "address space with %llu thread%s, and %s allows %llu "
                   "MiB (%llu MiB already in use); raise the limit or use "
                   "fewer --threads; nothing was done",
                   what, (unsigned long long)(need >> 20),
                   (unsigned long long)t, t == 1 ? "" : "s", which,
                   (unsigned long long)(limit >> 20),
                   (unsigned long long)(in_use >> 20));
}
