/*
 * test_parallel.c — parallel.c's task runner: every task runs with BLAS
 * on one thread, whatever the thread count and however one task dominates
 * the run (OpenBLAS's threaded dgemm sums some shapes in another order),
 * so a task's result is the same bits for 1, 2 and 4 workers and alone or
 * among others; OpenBLAS's thread count is restored afterwards; every
 * task runs once, largest first on one worker.  The I/O lane: tasks
 * marked I/O run on a thread of their own while the only worker is still
 * busy computing, every task still once, and every thread's finish runs
 * once; an I/O task's failure and a finish's failure are the run's.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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
    tb_tasks t = {.n = n, .threads = threads, .run = run, .cost = cost,
                  .ctx = &c, .failed = &c.failed};
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

/* ------------------------------------------------------ the I/O lane */

typedef struct lanes {
    size_t n;
    int runs[16];
    pthread_t thread[16];
    atomic_int io_done;   /* I/O tasks finished */
    int wait_io;          /* every compute task waits for an I/O task */
    atomic_int waited_out; /* a compute task gave up waiting for one */
    int seq[16];          /* the order tasks started in */
    atomic_int started;
    int finishes;         /* finish calls */
    pthread_t finisher[8];
    size_t fail_task;     /* this task fails (SIZE_MAX: none) */
    int fail_finish;      /* the first finish fails */
    int (*io)(void *, size_t); /* which tasks are I/O tasks */
    atomic_int failed;
    pthread_mutex_t lock;
} lanes;

static int is_io(void *p, size_t i)
{
    (void)p;
    return i % 2 == 1;
}

static timber_status lane_run(void *p, size_t i, tb_scratch *s,
                              timber_error *e)
{
    (void)s;
    lanes *c = p;
    __atomic_fetch_add(&c->runs[i], 1, __ATOMIC_SEQ_CST);
    c->thread[i] = pthread_self();
    c->seq[i] = atomic_fetch_add(&c->started, 1);
    if (i == c->fail_task) {
        e->status = TIMBER_ERR_IO;
        snprintf(e->message, sizeof e->message, "task %zu failed", i);
        return TIMBER_ERR_IO;
    }
    if (c->io(p, i)) {
        atomic_fetch_add(&c->io_done, 1);
    } else if (c->wait_io) {
        /* every compute task waits (10 s at most) for an I/O task to
         * have run meanwhile: with every worker waiting, only a thread of
         * the I/O tasks' own can run one */
        for (int k = 0; k < 10000 && !atomic_load(&c->io_done); k++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (!atomic_load(&c->io_done))
            atomic_store(&c->waited_out, 1);
    }
    return TIMBER_OK;
}

static timber_status lane_finish(void *p, timber_error *e)
{
    lanes *c = p;
    pthread_mutex_lock(&c->lock);
    int first = c->finishes == 0;
    if (c->finishes < 8)
        c->finisher[c->finishes] = pthread_self();
    c->finishes++;
    pthread_mutex_unlock(&c->lock);
    if (first && c->fail_finish) {
        e->status = TIMBER_ERR_IO;
        snprintf(e->message, sizeof e->message, "finish failed");
        return TIMBER_ERR_IO;
    }
    return TIMBER_OK;
}

static double lane_cost(void *p, size_t i)
{
    (void)p;
    return (double)(100 - i);
}

static void lanes_init(lanes *c, size_t n)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->n = n;
    c->fail_task = SIZE_MAX;
}

static int all_io(void *p, size_t i)
{
    (void)p;
    (void)i;
    return 1;
}

static timber_status go(lanes *c, int threads, int (*io)(void *, size_t),
                        timber_error *err)
{
    c->io = io;
    tb_tasks t = {.n = c->n,        .threads = threads, .run = lane_run,
                  .cost = lane_cost, .ctx = c,          .failed = &c->failed,
                  .io = io,         .finish = lane_finish};
    return tb_tasks_run(&t, err);
}

static void check_lanes(void)
{
    lanes c;
    timber_error err;
    /* two workers: an I/O lane beside them runs the I/O tasks while both
     * compute (each compute task waits for one) */
    lanes_init(&c, 12);
    c.wait_io = 1;
    CHECK_OK("lanes", go(&c, 2, is_io, &err), &err);
    for (size_t i = 0; i < c.n; i++)
        CHECKF(c.runs[i] == 1, "lanes: task %zu ran %d times", i, c.runs[i]);
    CHECKF(!atomic_load(&c.waited_out),
           "2 workers: no I/O task ran while both computed");
    CHECKF(c.finishes == 3,
           "2 workers: %d finish calls, not one per worker and the I/O lane",
           c.finishes);
    for (int a = 0; a < c.finishes && a < 8; a++)
        for (int b = a + 1; b < c.finishes && b < 8; b++)
            CHECKF(!pthread_equal(c.finisher[a], c.finisher[b]),
                   "finish called twice on one thread");
    pthread_mutex_destroy(&c.lock);
    /* one worker (--threads 1): no lane, everything on the calling
     * thread, the compute tasks first, largest first, then the I/O ones */
    lanes_init(&c, 12);
    CHECK_OK("one worker", go(&c, 1, is_io, &err), &err);
    CHECKF(c.finishes == 1, "one worker: %d finish calls", c.finishes);
    for (size_t i = 0; i < c.n; i++) {
        CHECKF(c.runs[i] == 1 && pthread_equal(c.thread[i], pthread_self()),
               "one worker: task %zu ran %d times, or off the worker", i,
               c.runs[i]);
        int want = i % 2 == 0 ? (int)(i / 2) : (int)(c.n / 2 + i / 2);
        CHECKF(c.seq[i] == want, "one worker: task %zu started %d-th, not %d-th",
               i, c.seq[i], want);
    }
    pthread_mutex_destroy(&c.lock);
    /* only I/O tasks: no lane of their own, the one worker runs them all */
    lanes_init(&c, 12);
    CHECK_OK("all I/O", go(&c, 1, all_io, &err), &err);
    CHECKF(c.finishes == 1, "all I/O, one worker: %d finish calls",
           c.finishes);
    for (size_t i = 0; i < c.n; i++)
        CHECKF(c.runs[i] == 1 && pthread_equal(c.thread[i], pthread_self()),
               "all I/O: task %zu ran %d times, or off the worker", i,
               c.runs[i]);
    pthread_mutex_destroy(&c.lock);
    /* an I/O task fails: the run's failure, and every thread finishes */
    lanes_init(&c, 12);
    c.fail_task = 5;
    timber_status st = go(&c, 2, is_io, &err);
    CHECKF(st == TIMBER_ERR_IO && strstr(err.message, "task 5"),
           "a failed I/O task: status %d, \"%s\"", (int)st, err.message);
    CHECKF(c.finishes == 3, "a failed I/O task: %d finish calls", c.finishes);
    pthread_mutex_destroy(&c.lock);
    /* a finish fails: the run's failure */
    lanes_init(&c, 12);
    c.fail_finish = 1;
    st = go(&c, 2, is_io, &err);
    CHECKF(st == TIMBER_ERR_IO && strstr(err.message, "finish failed"),
           "a failed finish: status %d, \"%s\"", (int)st, err.message);
    pthread_mutex_destroy(&c.lock);
}

int main(void)
{
    check_lanes();
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
