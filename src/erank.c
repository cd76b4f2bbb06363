/*
 * erank.c — the paper's weight-level analysis (its Figures 1 and 2): the
 * effective rank of Base, Instruct and their delta for every tensor that
 * refinement would touch, from singular values only (Gram eigenvalues in
 * double precision, three Grams from one streamed pass).  The delta's
 * spectrum is taken from the SVD cache when a matching record exists.
 */
#include "timber.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cache.h"
#include "matrix.h"
#include "model.h"
#include "parallel.h"
#include "pathid.h"
#include "plan.h"
#include "resources.h"
#include "spectrum.h"
#include "util.h"

struct timber_erank_result {
    timber_model *base, *inst; /* rows point into their names and shapes */
    timber_erank_row *rows;
    size_t n;
    int pair;
    char **names; /* per row: "NAME[e]" for an expert, else NULL */
};

void timber_erank_options_init(timber_erank_options *o)
{
    memset(o, 0, sizeof *o);
}

void timber_erank_result_free(timber_erank_result *r)
{
    if (!r)
        return;
    timber_model_free(r->base);
    timber_model_free(r->inst);
    for (size_t i = 0; r->names && i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->rows);
    free(r);
}

size_t timber_erank_count(const timber_erank_result *r) { return r->n; }
int timber_erank_is_pair(const timber_erank_result *r) { return r->pair; }

const timber_erank_row *timber_erank_row_at(const timber_erank_result *r,
                                            size_t i)
{
    return i < r->n ? &r->rows[i] : NULL;
}

typedef struct job {
    const timber_erank_options *opt;
    timber_erank_result *res;
    const timber_tensor_info **inst, **base; /* per row */
    uint64_t *part, *parts;                  /* per row: which matrix */
    tb_cache *cache;
    atomic_int failed;
    pthread_mutex_t lock;
    size_t done;
    uint64_t work_done, work_total;
    double t0;
} job;


static int stop_job(const void *ctx)
{
    const job *J = ctx;
    return (J->opt->cancel && *J->opt->cancel) ||
           atomic_load(&((job *)J)->failed);
}

static double trace(const double *G, size_t S, size_t ld)
{
    double t = 0;
    for (size_t i = 0; i < S; i++)
        t += G[i * ld + i];
    return t;
}

/* eRank from a Gram matrix (destroyed). */
static timber_status erank_of(double *G, size_t S, size_t ld,
                              const char *name, double *out,
                              timber_error *err)
{
    tb_spectrum sp;
    const tb_backend *be = tb_backend_cpu();
    timber_status st =
        be->spectrum(be->route(S), NULL, G, S, ld, 0, &sp, name, err);
    if (!st)
        *out = sp.erank;
    tb_spectrum_clear(&sp);
    return st;
}

static double row_cost(void *ctx, size_t i)
{
    job *J = ctx;
    return tb_matrix_cost(J->res->rows[i].rows, J->res->rows[i].cols);
}

static timber_status analyse(void *ctx, size_t i, tb_scratch *scr,
                             timber_error *err)
{
    job *J = ctx;
    timber_erank_row *row = &J->res->rows[i];
    tb_mat M;
    tb_mat_init_part(&M, J->res->inst, J->inst[i], J->res->base, J->base[i],
                     row->rows, row->cols, J->part[i], J->parts[i]);
    uint64_t S = row->rank;
    uint64_t panel = tb_mat_panel_elems(&M);
    double *b0 = tb_scratch_get(scr, 0, (size_t)panel, sizeof(double));
    double *b1 = tb_scratch_get(scr, 1, (size_t)panel, sizeof(double));
    double *b2 = tb_scratch_get(scr, 2, (size_t)panel, sizeof(double));
    int pair = J->res->pair;
    size_t ld = tb_gram_ld((size_t)S), gn = (size_t)S * ld;
    double *gd = tb_scratch_get(scr, 3, gn, sizeof(double));
    double *gb = pair ? tb_scratch_get(scr, 4, gn, sizeof(double)) : NULL;
    double *gi = pair ? tb_scratch_get(scr, 5, gn, sizeof(double)) : NULL;
    timber_status st = TIMBER_OK;
    tb_spectrum cached = {0};
    if (!b0 || !b1 || !b2 || !gd || (pair && (!gb || !gi))) {
        st = tb_fail(err, TIMBER_ERR_NOMEM,
                     "tensor '%s': out of memory for a %llux%llu matrix",
                     row->name, (unsigned long long)row->rows,
                     (unsigned long long)row->cols);
        goto out;
    }
    memset(gd, 0, gn * sizeof(double)); /* tb_mat_gram accumulates */
    if (pair) {
        memset(gb, 0, gn * sizeof(double));
        memset(gi, 0, gn * sizeof(double));
    }
    int hit = 0;
    if (pair && J->cache) {
        /* The CRCs of this matrix's bytes (one expert's, for a stack),
         * under refinement's record name (tb_cache_part_name). */
        tb_crc_track track;
        tb_mat_track(&M, &track);
        tb_mat_track_finish(&M);
        tb_cache_key key = {row->name,    M.ii->ndim,   M.ii->shape,
                            M.dtb,        M.dti,        track.crc[0],
                            track.crc[1],
                            tb_backend_route(tb_backend_cpu(), (size_t)S)};
        hit = tb_cache_get(J->cache, &key, row->rows, row->cols, &cached);
        M.track = NULL;
    }
    double *const bufs[3] = {b0, b1, b2};
    /* With a cached delta spectrum the delta's Gram is not needed, but its
     * Frobenius norm is: sum of s^2. */
    st = tb_mat_gram(&M, tb_backend_cpu(), hit ? NULL : gd, gb, gi, ld, bufs,
                     stop_job, J, err);
    if (st)
        goto out;
    if (pair) {
        double d2 = 0, b2n = trace(gb, (size_t)S, ld);
        if (hit) {
            for (size_t k = 0; k < cached.S; k++)
                d2 += cached.s[k] * cached.s[k];
            row->erank_delta = cached.erank;
            row->from_cache = 1;
        } else {
            d2 = trace(gd, (size_t)S, ld);
            st = erank_of(gd, (size_t)S, ld, row->name, &row->erank_delta,
                          err);
        }
        row->delta_rel_norm = b2n > 0 ? sqrt(d2 / b2n) : 0.0;
        if (!st)
            st = erank_of(gb, (size_t)S, ld, row->name, &row->erank_base,
                          err);
        if (!st)
            st = erank_of(gi, (size_t)S, ld, row->name, &row->erank_instruct,
                          err);
        row->k = tb_cutoff(row->erank_delta, (size_t)S);
        row->delta_ratio = S ? row->erank_delta / (double)S : 0.0;
    } else {
        st = erank_of(gd, (size_t)S, ld, row->name, &row->erank_instruct,
                      err);
    }
    if (!st && J->opt->progress) {
        pthread_mutex_lock(&J->lock);
        J->done++;
        J->work_done += row->rows * row->cols;
        timber_progress p = {J->done, J->res->n, row->name, J->work_done,
                             J->work_total, tb_now() - J->t0, 0};
        J->opt->progress(&p, J->opt->user);
        pthread_mutex_unlock(&J->lock);
    }
out:
    tb_spectrum_clear(&cached);
    return st;
}

/* A row per analysed tensor: pairs follow refinement's plan exactly. */
static timber_status build_rows(job *J, timber_error *err)
{
    timber_erank_result *res = J->res;
    const timber_erank_options *o = J->opt;
    tb_plan plan = {0};
    tb_selection sel = {o->include, o->ninclude, o->exclude, o->nexclude};
    /* One model: pair it with itself for the selection rules; only the
     * Instruct side is analysed then. */
    timber_status st = tb_plan_build(res->pair ? res->base : res->inst,
                                     res->inst, &sel, 0, o->matrix_view,
                                     &plan, err);
    if (st)
        return st;
    /* A row per matrix: an expert stack gives one per expert. */
    size_t cap = 1;
    for (size_t i = 0; i < plan.ninstruct; i++)
        if (plan.items[i].action == TIMBER_ACTION_REFINED)
            cap += (size_t)plan.items[i].parts;
    res->rows = tb_calloc_array(cap, sizeof *res->rows);
    res->names = tb_calloc_array(cap, sizeof *res->names);
    J->inst = tb_calloc_array(cap, sizeof *J->inst);
    J->base = tb_calloc_array(cap, sizeof *J->base);
    J->part = tb_calloc_array(cap, sizeof *J->part);
    J->parts = tb_calloc_array(cap, sizeof *J->parts);
    if (!res->rows || !res->names || !J->inst || !J->base || !J->part ||
        !J->parts) {
        tb_plan_clear(&plan);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < plan.ninstruct; i++) {
        if (plan.items[i].action != TIMBER_ACTION_REFINED)
            continue;
        for (uint64_t e = 0; e < plan.items[i].parts; e++) {
            const tb_plan_item *it = &plan.items[i];
            timber_erank_row *r = &res->rows[res->n];
            J->inst[res->n] = it->instruct;
            J->base[res->n] = res->pair ? it->base : NULL;
            J->part[res->n] = e;
            J->parts[res->n] = it->parts;
            r->name = it->instruct->name;
            if (it->parts > 1) {
                size_t size = strlen(r->name) + 24;
                if (!(res->names[res->n] = malloc(size))) {
                    tb_plan_clear(&plan);
                    return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
                }
                tb_cache_part_name(res->names[res->n], size, r->name, e,
                                   it->parts);
                r->name = res->names[res->n];
            }
            r->ndim = it->instruct->ndim;
            r->shape = it->instruct->shape;
            r->dtype = it->instruct->dtype;
            r->rows = it->rows;
            r->cols = it->cols;
            r->rank = it->rows < it->cols ? it->rows : it->cols;
            r->erank_base = r->erank_delta = r->delta_ratio = NAN;
            r->delta_rel_norm = NAN;
            J->work_total += r->rows * r->cols;
            res->n++;
        }
    }
    tb_plan_clear(&plan);
    return TIMBER_OK;
}

/* The caller's files may not be, or lie inside, an input or the cache,
 * or be one another (pathid.h). */
static timber_status check_places(const char *base, const char *instruct,
                                  const char *cache,
                                  const timber_erank_options *o,
                                  timber_error *err)
{
    return tb_check_run_places(base, instruct, NULL, cache, o->outputs,
                               o->noutputs, err);
}

timber_status timber_erank(const char *base, const char *instruct,
                           const timber_erank_options *options,
                           timber_erank_result **result, timber_error *err)
{
    timber_erank_options defaults;
    if (!options) {
        timber_erank_options_init(&defaults);
        options = &defaults;
    }
    *result = NULL;
    tb_error_clear(err);
    timber_erank_result *res = calloc(1, sizeof *res);
    if (!res)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    job J = {0};
    J.opt = options;
    J.res = res;
    J.t0 = tb_now();
    pthread_mutex_init(&J.lock, NULL);
    res->pair = instruct != NULL;
    timber_status st = timber_model_open(res->pair ? instruct : base,
                                         &res->inst, err);
    if (!st && res->pair)
        st = timber_model_open(base, &res->base, err);
    if (!st) {
        if (res->pair)
            tb_model_note(res->base, options->warning, options->user);
        tb_model_note(res->inst, options->warning, options->user);
        st = build_rows(&J, err);
    }
    char *path = NULL;
    uint64_t h = 0; /* the pair's fingerprint: names its cache */
    if (!st && res->pair && !options->no_cache) {
        h = tb_pair_fingerprint(res->base, res->inst);
        path = options->cache_path ? tb_strdup(options->cache_path)
                                   : tb_cache_default_path(h);
        if (!path && options->cache_path)
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    int threads = tb_thread_count(options->threads);
    if (!st)
        st = check_places(timber_model_path(res->pair ? res->base : res->inst),
                          res->pair ? timber_model_path(res->inst) : NULL,
                          path, options, err);
    if (!st) {
        uint64_t mn = 0, S = 0;
        for (size_t i = 0; i < res->n; i++)
            tb_matrix_extent(res->rows[i].rows, res->rows[i].cols, &mn, &S);
        st = tb_memory_check(mn, S, threads, res->pair ? instruct : base,
                             err);
    }
    if (!st && path) {
        /* Lookups only (no lock, no change to the file).  The default
         * cache may simply not exist yet; an explicit --cache must be a
         * cache. */
        if (options->cache_path)
            st = tb_cache_open_read(path, h, &J.cache, err);
        else if (access(path, R_OK) == 0)
            tb_cache_open_read(path, h, &J.cache, NULL);
        tb_cache_warnings(J.cache, options->warning, options->user);
    }
    free(path);
    if (!st) {
        tb_tasks t = {.n = res->n, .threads = threads, .run = analyse,
                      .cost = row_cost, .ctx = &J, .failed = &J.failed};
        st = tb_tasks_run(&t, err);
        if (!st && options->cancel && *options->cancel)
            st = tb_fail(err, TIMBER_ERR_INTERRUPTED, "interrupted");
    }
    /* A shard truncated or rewritten while it was read: the numbers may
     * come from zero pages (see tb_shard_check); refuse them. */
    if (!st)
        st = tb_model_check(res->inst, err);
    if (!st && res->pair)
        st = tb_model_check(res->base, err);
    tb_cache_close(J.cache);
    free(J.inst);
    free(J.base);
    free(J.part);
    free(J.parts);
    pthread_mutex_destroy(&J.lock);
    if (st) {
        timber_erank_result_free(res);
        return st;
    }
    *result = res;
    return TIMBER_OK;
}
