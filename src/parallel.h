/*
 * parallel.h — running per-tensor tasks on every core.  Small matrices go
 * one per worker with single-threaded BLAS (their eigen-solves are
 * sequential and memory-bound, so two at once beat one on two threads);
 * "big" ones (embeddings: very tall) run one at a time with BLAS threads on
 * every core.  Only who computes what changes, never the arithmetic, so
 * results are identical for any thread count.
 */
#ifndef TIMBER_PARALLEL_H
#define TIMBER_PARALLEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "timber.h"

/* A matrix of rows x cols is big enough to want every core's BLAS. */
int tb_matrix_is_big(uint64_t rows, uint64_t cols);

typedef struct tb_tasks {
    size_t n;
    int threads;
    /* Runs task i; errors go to err (a per-worker buffer). */
    timber_status (*run)(void *ctx, size_t i, timber_error *err);
    /* 1 when task i is big (NULL: none are). */
    int (*big)(void *ctx, size_t i);
    void *ctx;
    /* Set to 1 by the first failure; tasks should poll it to stop early. */
    atomic_int *failed;
} tb_tasks;

/* Runs the big tasks one by one, then the rest on `threads` workers.
 * Returns the first real failure (preferring it over the "interrupted" of
 * the tasks it stopped), copied into err. */
timber_status tb_tasks_run(const tb_tasks *t, timber_error *err);

#endif /* TIMBER_PARALLEL_H */
