/*
 * parallel.c — the per-tensor task runner (see parallel.h).
 */
#include "parallel.h"

#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cblas.h>

double tb_matrix_cost(uint64_t rows, uint64_t cols)
{
    double S = (double)(rows < cols ? rows : cols);
    return (double)rows * (double)cols * S + S * S * S;
}

int tb_thread_count(int requested)
{
    long t = requested > 0 ? requested : sysconf(_SC_NPROCESSORS_ONLN);
    if (t < 1)
        t = 1;
    return t > TIMBER_MAX_THREADS ? TIMBER_MAX_THREADS : (int)t;
}

/* Buffers from HUGE_MIN bytes on are aligned to and rounded up to
 * HUGE_PAGE, the x86-64 transparent huge page. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)

struct tb_scratch {
    void *p[TB_SCRATCH_SLOTS];
    size_t cap[TB_SCRATCH_SLOTS];
};

void *tb_scratch_get(tb_scratch *s, unsigned slot, size_t n, size_t size)
{
    assert(slot < TB_SCRATCH_SLOTS);
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t need = n * size;
    if (need == 0)
        need = 1;
    if (s->cap[slot] < need) {
        /* No realloc: the old contents are not wanted, so not copied. */
        free(s->p[slot]);
        s->p[slot] = NULL;
        if (need >= HUGE_MIN) {
            /* Big buffers (a Gram matrix, a matrix read whole or held)
             * in transparent huge pages where the system offers them:
             * 512 times fewer page faults to fill them, fewer TLB misses
             * in the memory-bound eigen-solve.  Advice only. */
            need = (need + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
            if (posix_memalign(&s->p[slot], HUGE_PAGE, need) == 0)
                madvise(s->p[slot], need, MADV_HUGEPAGE);
            else
                s->p[slot] = NULL;
        } else {
            s->p[slot] = malloc(need);
        }
        s->cap[slot] = s->p[slot] ? need : 0;
    }
    return s->p[slot];
}

static void scratch_free(tb_scratch *s)
{
    for (unsigned i = 0; i < TB_SCRATCH_SLOTS; i++)
        free(s->p[i]);
}

typedef struct pass {
    const tb_tasks *t;
    /* task indices: order[0..nfg) the compute tasks, largest first, then
     * the I/O tasks (tb_tasks.io), largest first */
    const size_t *order;
    size_t nfg;
    atomic_size_t next;  /* next compute task */
    atomic_size_t bnext; /* next I/O task, from nfg on */
    pthread_mutex_t lock;
    timber_status st;
    timber_error *err;
} pass;

/* Records a worker's failure: the first real one wins over the
 * "interrupted" of the tasks it stopped. */
static void pass_fail(pass *P, timber_status st, const timber_error *local)
{
    pthread_mutex_lock(&P->lock);
    if (!P->st || (P->st == TIMBER_ERR_INTERRUPTED &&
                   st != TIMBER_ERR_INTERRUPTED)) {
        P->st = st;
        if (P->err)
            *P->err = *local;
    }
    atomic_store(P->t->failed, 1);
    pthread_mutex_unlock(&P->lock);
}

/* The next task for a worker (io: the I/O lane, which takes only I/O
 * tasks; a compute worker takes them when no compute task is left), or
 * SIZE_MAX. */
static size_t next_task(pass *P, int io)
{
    if (!io) {
        size_t at = atomic_fetch_add(&P->next, 1);
        if (at < P->nfg)
            return P->order[at];
    }
    size_t at = P->nfg + atomic_fetch_add(&P->bnext, 1);
    return at < P->t->n ? P->order[at] : SIZE_MAX;
}

typedef struct lane {
    pass *P;
    int io;
} lane;

static void *worker(void *arg)
{
    const lane *L = arg;
    pass *P = L->P;
    const tb_tasks *t = P->t;
    timber_error local;
    tb_scratch scratch = {0};
    for (;;) {
        size_t i = next_task(P, L->io);
        if (i == SIZE_MAX || atomic_load(t->failed))
            break;
        timber_status st = t->run(t->ctx, i, &scratch, &local);
        if (st) {
            pass_fail(P, st, &local);
            break;
        }
    }
    if (t->finish) {
        timber_status st = t->finish(t->ctx, &local);
        if (st)
            pass_fail(P, st, &local);
    }
    scratch_free(&scratch);
    return NULL;
}

static const double *sort_costs; /* only while sorting, under sort_lock */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int by_cost_desc(const void *a, const void *b)
{
    double x = sort_costs[*(const size_t *)a];
    double y = sort_costs[*(const size_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    return (i > j) - (i < j);
}

timber_status tb_tasks_run(const tb_tasks *t, timber_error *err)
{
    pass P = {0};
    P.t = t;
    P.err = err;
    int threads = tb_thread_count(t->threads < 1 ? 1 : t->threads);
    size_t *order = malloc((t->n ? t->n : 1) * sizeof *order);
    double *cost = malloc((t->n ? t->n : 1) * sizeof *cost);
    if (!order || !cost) {
        free(order);
        free(cost);
        if (err) {
            err->status = TIMBER_ERR_NOMEM;
            snprintf(err->message, sizeof err->message, "out of memory");
        }
        return TIMBER_ERR_NOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        order[i] = i;
        cost[i] = t->cost ? t->cost(t->ctx, i) : 1.0;
    }
    pthread_mutex_lock(&sort_lock);
    sort_costs = cost;
    qsort(order, t->n, sizeof *order, by_cost_desc);
    sort_costs = NULL;
    pthread_mutex_unlock(&sort_lock);
    /* The compute tasks first, the I/O tasks after them, each in cost
     * order (a stable partition, through the cost array's room). */
    size_t *io = (size_t *)cost, nio = 0, nfg = 0;
    for (size_t a = 0; a < t->n; a++) {
        if (t->io && t->io(t->ctx, order[a]))
            io[nio++] = order[a];
        else
            order[nfg++] = order[a];
    }
    memcpy(order + nfg, io, nio * sizeof *order);
    P.order = order;
    P.nfg = nfg;
    pthread_mutex_init(&P.lock, NULL);
    /* BLAS on one thread in every task, whatever the task: OpenBLAS's
     * threaded dgemm was measured to give other bits than its one-thread
     * dgemm at some shapes (timber-blas-threads), so a tensor computed
     * with BLAS threads could depend on --threads, or on which other
     * tensors share its run (a distributed part). */
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    atomic_store(&P.next, 0);
    atomic_store(&P.bnext, 0);
    pthread_t tids[TIMBER_MAX_THREADS + 1];
    lane compute = {&P, 0}, io_lane = {&P, 1};
    int started = 0;
    /* The I/O lane, where there are I/O tasks and compute tasks to share
     * the run with: it waits on the disk while the workers compute.  One
     * worker (--threads 1) has none: its run stays one thread doing the
     * tasks in order, which is what one thread is asked for (and what
     * dist_slurm_fail's kill half-way through a part relies on). */
    if (nio && nfg && threads > 1 &&
        pthread_create(&tids[started], NULL, worker, &io_lane) == 0)
        started++;
    for (int w = 1; w < threads; w++)
        if (pthread_create(&tids[started], NULL, worker, &compute) == 0)
            started++;
    worker(&compute);
    for (int w = 0; w < started; w++)
        pthread_join(tids[w], NULL);
    openblas_set_num_threads(blas_threads);
    pthread_mutex_destroy(&P.lock);
    free(order);
    free(cost);
    return P.st;
}
