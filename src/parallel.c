/*
 * parallel.c — the per-tensor task runner (see parallel.h).
 */
#include "parallel.h"

#include <pthread.h>

#include <cblas.h>

int tb_matrix_is_big(uint64_t rows, uint64_t cols)
{
    uint64_t L = rows > cols ? rows : cols;
    uint64_t S = rows > cols ? cols : rows;
    return L >= 32768 || S >= 8192;
}

typedef struct pass {
    const tb_tasks *t;
    atomic_size_t next;
    int big;
    pthread_mutex_t lock;
    timber_status st;
    timber_error *err;
} pass;

static void *worker(void *arg)
{
    pass *P = arg;
    const tb_tasks *t = P->t;
    timber_error local;
    for (;;) {
        size_t i = atomic_fetch_add(&P->next, 1);
        if (i >= t->n || atomic_load(t->failed))
            break;
        int big = t->big ? t->big(t->ctx, i) : 0;
        if (big != P->big)
            continue;
        timber_status st = t->run(t->ctx, i, &local);
        if (st) {
            pthread_mutex_lock(&P->lock);
            if (!P->st || (P->st == TIMBER_ERR_INTERRUPTED &&
                           st != TIMBER_ERR_INTERRUPTED)) {
                P->st = st;
                if (P->err)
                    *P->err = local;
            }
            atomic_store(t->failed, 1);
            pthread_mutex_unlock(&P->lock);
            break;
        }
    }
    return NULL;
}

timber_status tb_tasks_run(const tb_tasks *t, timber_error *err)
{
    pass P = {0};
    P.t = t;
    P.err = err;
    pthread_mutex_init(&P.lock, NULL);
    int threads = t->threads < 1 ? 1 : t->threads > 64 ? 64 : t->threads;
    for (int p = 0; p < 2 && !P.st; p++) {
        P.big = p == 0;
        atomic_store(&P.next, 0);
        int workers = P.big ? 1 : threads;
        openblas_set_num_threads(P.big ? threads : 1);
        pthread_t tids[64];
        int started = 0;
        for (int w = 1; w < workers; w++)
            if (pthread_create(&tids[started], NULL, worker, &P) == 0)
                started++;
        worker(&P);
        for (int w = 0; w < started; w++)
            pthread_join(tids[w], NULL);
    }
    openblas_set_num_threads(threads);
    pthread_mutex_destroy(&P.lock);
    return P.st;
}
