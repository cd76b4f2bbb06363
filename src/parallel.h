/*
 * parallel.h — running per-tensor tasks on every core.  Tasks go one per
 * worker with single-threaded BLAS, largest first (their eigen-solves are
 * sequential and memory-bound, so two at once beat one on two threads,
 * and largest-first keeps every core busy to the end).  BLAS never runs
 * threaded, not even for a task that dominates the run: OpenBLAS's
 * threaded dgemm sums some shapes in another order than its one-thread
 * dgemm.  Only who computes what changes, never the arithmetic: results
 * are identical for any thread count and any set of tasks.
 */
#ifndef TIMBER_PARALLEL_H
#define TIMBER_PARALLEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "timber.h"

/* The cost of refining or analysing a rows x cols matrix (flops of its
 * Gram matrix, the dominant term), for scheduling. */
double tb_matrix_cost(uint64_t rows, uint64_t cols);

/* Memory a worker keeps from one task to the next.  Fresh buffers for
 * each of ~200 matrices cost ~2 s of CPU in the kernel (1.3 million page
 * faults zeroing pages, then unmapping them again); a worker's buffers
 * only ever grow to what its largest task needs, which that task needed
 * anyway, so peak memory is unchanged. */
typedef struct tb_scratch tb_scratch;

#define TB_SCRATCH_SLOTS 10

/* Buffer `slot` (< TB_SCRATCH_SLOTS) with room for n elements of `size`
 * bytes, contents undefined; NULL when out of memory or when n * size
 * overflows.  Valid until the next call for the same slot; owned by the
 * scratch (the caller never frees it). */
void *tb_scratch_get(tb_scratch *s, unsigned slot, size_t n, size_t size);

/* Workers for a run asked for `requested` threads (0 or less: one per
 * online core), within 1..TIMBER_MAX_THREADS: the one place the cap is. */
int tb_thread_count(int requested);

typedef struct tb_tasks {
    size_t n;
    int threads;
    /* Runs task i with the worker's scratch memory; errors go to err (a
     * per-worker buffer). */
    timber_status (*run)(void *ctx, size_t i, tb_scratch *scratch,
                         timber_error *err);
    /* Relative cost of task i (NULL: all equal). */
    double (*cost)(void *ctx, size_t i);
    void *ctx;
    /* Set to 1 by the first failure; tasks should poll it to stop early. */
    atomic_int *failed;
    /* Nonzero: task i is bound by I/O, not by the CPU (a tensor copied
     * verbatim), so one extra thread, the I/O lane, runs such tasks from
     * the start while the workers compute, and a worker with no compute
     * task left takes them too (NULL: none is).  The I/O lane is not one
     * of `threads`: it spends its time waiting for the disk.  With one
     * worker there is no lane: that worker runs every task, the compute
     * tasks first. */
    int (*io)(void *ctx, size_t i);
    /* Called once by every worker when it takes no more tasks, failed or
     * not, on its own thread (NULL: nothing to do): what a task may leave
     * running on the thread that ran it, a write in flight, ends here.
     * Its failure counts as a task's. */
    timber_status (*finish)(void *ctx, timber_error *err);
} tb_tasks;

/* Runs the tasks on `threads` workers (tb_thread_count), largest first,
 * OpenBLAS on one thread; its thread count is restored to what it was
 * before the call.
 * Returns the first real failure (preferring it over the "interrupted" of
 * the tasks it stopped), copied into err. */
timber_status tb_tasks_run(const tb_tasks *t, timber_error *err);

#endif /* TIMBER_PARALLEL_H */
