/*
 * test_parallel.c — parallel.c's task runner: every task runs with BLAS
 * on one thread, whatever the thread count and however one task dominates
 * the run (OpenBLAS's threaded dgemm sums some shapes in another order),
 * so a task's result is the same bits for 1, 2 and 4 workers and alone or
 * among others; OpenBLAS's thread count is restored afterwards; every
 * task runs once, largest first on one worker.
 */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "parallel.h"
#include "testutil.h"

#define N 300 /* a shape whose threaded dgemm differs (timber-blas-threads) */

typedef struct ctx {
    size_t n;
    const double *A, *B;
    double *C[8];
    int blas[8];
    int runs[8];
    size_t order[8], next;
    atomic_int failed;
} ctx;

static timber_status run(void *p, size_t i, tb_scratch *s, timber_error *e)
{
    (void)s;
    (void)e;
    ctx *c = p;
    c->blas[i] = openblas_get_num_threads();
    __atomic_fetch_add(&c->runs[i], 1, __ATOMIC_SEQ_CST);
    size_t at = __atomic_fetch_add(&c->next, 1, __ATOMIC_SEQ_CST);
    c->order[at] = i;
    if (i == 0) /* the dominant task: a dgemm */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0,
                    c->A, N, c->B, N, 0.0, c->C[0], N);
    return TIMBER_OK;
}

static double cost(void *p, size_t i)
{
    (void)p;
    return i == 0 ? 1e9 : (double)i; /* task 0 dwarfs the others */
}

static void once(int threads, size_t n, const double *A, const double *B,
                 double *out)
{
    ctx c = {0};
    c.n = n;
    c.A = A;
    c.B = B;
    c.C[0] = out;
    tb_tasks t = {n, threads, run, cost, &c, &c.failed};
    openblas_set_num_threads(2);
    timber_error err;
    CHECK_OK("run", tb_tasks_run(&t, &err), &err);
    CHECKF(openblas_get_num_threads() == 2, "BLAS threads %d after the run",
           openblas_get_num_threads());
    for (size_t i = 0; i < n; i++) {
        CHECKF(c.runs[i] == 1, "task %zu ran %d times", i, c.runs[i]);
        CHECKF(c.blas[i] == 1, "task %zu ran with %d BLAS threads", i,
               c.blas[i]);
    }
    if (threads == 1)
        for (size_t i = 0; i < n; i++)
            CHECKF(c.order[i] == (i == 0 ? 0 : n - i),
                   "one worker: position %zu ran task %zu", i, c.order[i]);
}

int main(void)
{
    double *A = malloc(N * N * sizeof *A), *B = malloc(N * N * sizeof *B);
    double *ref = malloc(N * N * sizeof *ref), *got = malloc(N * N * sizeof *got);
    uint64_t seed = 7;
    for (size_t i = 0; i < N * N; i++) {
        A[i] = tu_gauss(&seed);
        B[i] = tu_gauss(&seed);
    }
    once(1, 1, A, B, ref);
    int threads[] = {1, 2, 4};
    size_t tasks[] = {1, 5};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            memset(got, 0, N * N * sizeof *got);
            once(threads[a], tasks[b], A, B, got);
            CHECKF(memcmp(ref, got, N * N * sizeof *got) == 0,
                   "%d workers, %zu tasks: the dgemm gave other bits",
                   threads[a], tasks[b]);
        }
    free(A);
    free(B);
    free(ref);
    free(got);
    return tu_report();
}
