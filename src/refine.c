/*
 * refine.c — drives one refinement run: plan the pair, stream every
 * Instruct tensor through the spectrum and the update, write the shards,
 * the index and the carried-over files into a temporary directory beside
 * OUT, and rename it into place only when everything is on disk.
 *
 * Per refined tensor (rows x cols, A = D or D^T so A is L x S, L >= S):
 *   cache   with a cache, CRC-32 of both inputs' bytes; a matching record
 *           replaces pass 1 and the maths;
 *   pass 1  G = A^T A, streamed in panels of A's rows (matrix.c), D =
 *           W_I - W_B decoded to double and checked finite on the way;
 *   maths   spectrum.c: s, eRank, k and a basis V of the smaller side,
 *           appended to the cache;
 *   pass 2  (rows < cols only) Z = U^T D, streamed by row blocks;
 *   pass 3  per row block: P = projection of D onto V's span (DGEMMs),
 *           T = P (tail side) or D - P (head side), out = W_I -
 *           (1 - gamma) T in double for each gamma, rounded to Instruct's
 *           dtype, appended to the shard.
 * Memory is a few panels plus G and V: never a whole matrix in double.
 * Every BLAS/LAPACK step goes through the backend R->be (backend.h); a
 * meter per tensor (meter.h) times its phases into its report row and
 * ticks the progress within it.
 * Tensors are tasks on every core (parallel.c); every output shard of
 * every gamma is open at once and filled in any order.
 *
 * timber_refine is a sequence of phases with one cleanup path
 * (tb_run_close): open_and_plan -> stage_output -> compute_part (any subset
 * of the plan's items: the unit a distributed run computes) -> finish_dirs
 * -> publish.  The run's state is in run.h; the phases of a run split into
 * parts (stage_part, complete_part, finalize) are distrib.c's and reuse
 * these.  Every shard is written in place inside the directory being
 * built, the temporary beside OUT or a distributed run's staging.
 */
#include "timber.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>


#include "backend.h"
#include "cache.h"
#include "card.h"
#include "dtype.h"
#include "matrix.h"
#include "meter.h"
#include "model.h"
#include "outdir.h"
#include "parallel.h"
#include "parts.h"
#include "run.h"
#include "pathid.h"
#include "resources.h"
#include "plan.h"
#include "safetensors.h"
#include "spectrum.h"
#include "util.h"

/* Bytes per chunk when copying a tensor verbatim. */
#define COPY_CHUNK (8u << 20)

const char *timber_action_name(timber_action a)
{
    switch (a) {
    case TIMBER_ACTION_REFINED:
        return "refined";
    case TIMBER_ACTION_COPIED:
        return "copied";
    case TIMBER_ACTION_DROPPED:
        return "dropped";
    }
    return "unknown";
}

void timber_refine_options_init(timber_refine_options *o)
{
    memset(o, 0, sizeof *o);
}

void timber_result_free(timber_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->reasons[i]);
    for (size_t i = 0; i < r->ngammas; i++)
        free(r->gamma_dirs[i]);
    free(r->reasons);
    free(r->reports);
    free(r->gammas);
    free(r->gamma_dirs);
    free(r->cache_path);
    timber_model_free(r->base);
    timber_model_free(r->inst);
    free(r);
}

size_t timber_result_count(const timber_result *r) { return r->n; }
size_t timber_result_gamma_count(const timber_result *r) { return r->ngammas; }
uint64_t timber_result_bytes_written(const timber_result *r)
{
    return r->bytes_written;
}
size_t timber_result_shards_written(const timber_result *r)
{
    return r->shards_written;
}
double timber_result_seconds(const timber_result *r) { return r->seconds; }
const char *timber_result_cache_path(const timber_result *r)
{
    return r->cache_path ? r->cache_path : "";
}
uint64_t timber_result_cache_bytes(const timber_result *r)
{
    return r->cache_bytes;
}
size_t timber_result_cache_hits(const timber_result *r)
{
    return r->cache_hits;
}
size_t timber_result_cache_misses(const timber_result *r)
{
    return r->cache_misses;
}

const timber_tensor_report *timber_result_tensor(const timber_result *r,
                                                 size_t i)
{
    return i < r->n ? &r->reports[i] : NULL;
}

const char *timber_result_gamma_dir(const timber_result *r, size_t i)
{
    return i < r->ngammas ? r->gamma_dirs[i] : NULL;
}

double timber_result_gamma(const timber_result *r, size_t i)
{
    return i < r->ngammas ? r->gammas[i] : 0.0;
}

size_t timber_result_part_index(const timber_result *r)
{
    return r->part_index;
}
size_t timber_result_part_count(const timber_result *r)
{
    return r->part_count;
}
size_t timber_result_part_kept(const timber_result *r)
{
    return r->part_kept;
}


/* ------------------------------------------------------------ the run */

int tb_run_cancelled(const run *R)
{
    return (R->opt->cancel && *R->opt->cancel) ||
           atomic_load_explicit(&((run *)R)->failed, memory_order_relaxed);
}

timber_status tb_run_interrupted(timber_error *err)
{
    return tb_fail(err, TIMBER_ERR_INTERRUPTED, "interrupted");
}

static uint64_t work_of(const tb_plan_item *it)
{
    if (it->action == TIMBER_ACTION_REFINED)
        return it->instruct->nelems * 16 + 1;
    return it->instruct->nbytes / 4 + 1;
}

/* Whether this run's inputs faulted under their mappings (safetensors.h,
 * "SIGBUS"): checked before every write of an output shard or a cache
 * record.  Only this run's shards: another run in the process is not
 * stopped by a fault in ours, nor ours by one in its. */
static timber_status sources_faulted(const void *ctx, timber_error *err)
{
    const run *R = ctx;
    timber_status st = tb_model_faulted(R->base, err);
    return st ? st : tb_model_faulted(R->inst, err);
}

/* ------------------------------------------------------ one refinement */

/* Elements of O computed and encoded at a time (16 KiB of doubles: they
 * stay in L1 between the two steps). */
#define ENCODE_CHUNK 2048

/* A refinement's buffers: slots of the worker's scratch memory. */
typedef struct bufs {
    double *D, *W, *P, *G, *Y, *Z;
    unsigned char *enc;
} bufs;

enum {
    SLOT_D, SLOT_W, SLOT_P, SLOT_G, SLOT_Y, SLOT_Z, SLOT_ENC,
    SLOT_WHOLE, /* D and W_I of a matrix read whole: 2 x rows x cols */
    SLOT_HOLD   /* the raw bytes of a streamed matrix (tb_mat_hold) */
};

/* The smallest magnitude that the dtype's round-to-nearest-even encoding
 * turns into +-Inf (halfway between its largest finite value and the
 * next power of two); INFINITY for F64, which cannot overflow here. */
static double overflow_limit(timber_dtype dt)
{
    switch (dt) {
    case TIMBER_DT_F16:
        return 0x1.ffep15; /* 65520: max 65504 */
    case TIMBER_DT_BF16:
        return 0x1.ffp127;
    case TIMBER_DT_F32:
        return 0x1.ffffffp127;
    default:
        return INFINITY;
    }
}

static size_t first_beyond(const double *x, size_t n, double lim)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) /* vectorised: no early exit */
        any |= fabs(x[i]) >= lim;
    if (!any)
        return n;
    size_t i = 0;
    while (fabs(x[i]) < lim)
        i++;
    return i;
}

/* A refined value from finite inputs that the output dtype cannot hold:
 * stored, it would be +-Inf.  An error naming the tensor, the element
 * and the value, never a silent Inf in a checkpoint. */
static timber_status overflow(const tb_mat *M, uint64_t r0, uint64_t n,
                              size_t at, double v, double gamma,
                              timber_error *err)
{
    return tb_fail(err, TIMBER_ERR_NONFINITE,
                   "%s: tensor '%s': the refined element [%llu, %llu] is %g "
                   "(gamma %g), beyond what %s can hold: it would be "
                   "stored as %sInf; refusing to write it",
                   tb_shard_path(M->si), M->ii->name,
                   (unsigned long long)(r0 + at / n),
                   (unsigned long long)(at % n), v, gamma,
                   timber_dtype_name(M->dti), v < 0 ? "-" : "+");
}

static int stop_run(const void *ctx)
{
    return tb_run_cancelled(ctx);
}

/* ------------------------------------------- progress within a tensor */

double tb_progress_interval = 0.25;

/* A refined tensor is worth work_of() units; ticks from its passes
 * (meter.h) credit them as they go, so the progress line moves within a
 * large tensor.  Each of its matrices is an equal share, in quarters:
 * pass 1 (the reads and the Gram) 0..2, the update 2..4 (a wide matrix's
 * Z pass 2..3, its output pass 3..4).  What the ticks did not credit
 * (a cache hit skips pass 1) comes with the tensor's end. */
typedef struct tensor_progress {
    run *R;
    const tb_plan_item *it;
    uint64_t budget;     /* work_of(it) - 1: the most ticks may credit */
    uint64_t base, span; /* the current pass's units */
    uint64_t credited;
} tensor_progress;

static void progress_pass(tb_meter *mt, const tb_mat *M, unsigned from,
                          unsigned to)
{
    if (!mt || !mt->tick)
        return;
    tensor_progress *tp = mt->ctx;
    uint64_t share = tp->budget / M->parts;
    tp->base = M->part * share + share / 4 * from;
    tp->span = share / 4 * (to - from);
}

/* The meter's tick: credits the pass's share done so far and, at most
 * every tb_progress_interval seconds, tells the caller. */
static void progress_tick(void *ctx, uint64_t done, uint64_t total)
{
    tensor_progress *tp = ctx;
    uint64_t c = tp->base + (uint64_t)((double)tp->span * (double)done /
                                       (double)total);
    if (c > tp->budget)
        c = tp->budget;
    if (c <= tp->credited)
        return;
    run *R = tp->R;
    pthread_mutex_lock(&R->lock);
    R->work_partial += c - tp->credited;
    tp->credited = c;
    double now = tb_now();
    if (R->opt->progress && now - R->last_progress >= tb_progress_interval) {
        R->last_progress = now;
        timber_progress p = {R->done,
                             R->total,
                             tp->it->instruct->name,
                             R->work_done + R->work_partial,
                             R->work_total,
                             now - R->t0,
                             1};
        R->opt->progress(&p, R->opt->user);
    }
    pthread_mutex_unlock(&R->lock);
}

/* The update for every gamma, by row blocks, into writers w[g] at tensor
 * index `idx`: from Dall / Wall when the matrix was read whole (then the
 * inputs are not touched), else streamed from the inputs, feeding M's
 * CRC tracker.  For a wide matrix the first pass (Z) writes nothing, so a
 * cache record found stale by then stops the update before any output. */
static timber_status update_pass(const run *R, const tb_mat *M,
                                 const tb_spectrum *sp, tb_writer **w,
                                 size_t idx, bufs *B, const double *Dall,
                                 const double *Wall, timber_error *err)
{
    uint64_t m = M->rows, n = M->cols;
    int tall = m >= n;
    uint64_t step = tb_mat_row_step(M);
    double lim = overflow_limit(M->dti);
    tb_meter *mt = M->meter;
    timber_status st;

    /* The projection runs in double on the double basis: float32 for
     * either was measured to put outputs that cancel to nearly zero
     * several ULP off the float64 reference (docs/numerics.md). */
    tb_projection pj = {m, n, sp->p, sp->basis, B->Y, B->Z};
    if (!tall) {
        /* Z = U^T D (p x n), where U = basis is rows x p. */
        memset(B->Z, 0, sp->p * (size_t)n * sizeof(double));
        progress_pass(mt, M, 2, 3);
        for (uint64_t r0 = 0; r0 < m; r0 += step) {
            if (tb_run_cancelled(R))
                return tb_run_interrupted(err);
            uint64_t nr = m - r0 < step ? m - r0 : step;
            const double *D = Dall ? Dall + r0 * n : B->D;
            if (!Dall) {
                tb_meter_phase(mt, TIMBER_PHASE_READ);
                st = tb_mat_load(M, r0, nr, 0, n, B->D, NULL, NULL, B->W, 0,
                                 err);
                if (st)
                    return st;
            }
            tb_meter_phase(mt, TIMBER_PHASE_PROJECT);
            R->be->project_accumulate(&pj, r0, nr, D);
            if (!Dall) {
                tb_meter_phase(mt, TIMBER_PHASE_READ);
                tb_mat_track_rows(M, r0, nr);
                tb_mat_release_rows(M, r0, nr);
            }
            tb_meter_tick(mt, r0 + nr, m);
        }
        if (tb_mat_track_stale(M))
            return TIMBER_OK;
    }
    progress_pass(mt, M, tall ? 2 : 3, 4);
    for (uint64_t r0 = 0; r0 < m; r0 += step) {
        if (tb_run_cancelled(R))
            return tb_run_interrupted(err);
        uint64_t nr = m - r0 < step ? m - r0 : step;
        size_t count = (size_t)(nr * n);
        const double *D = Dall ? Dall + r0 * n : B->D;
        const double *W = Wall ? Wall + r0 * n : B->W;
        if (!Dall) {
            tb_meter_phase(mt, TIMBER_PHASE_READ);
            st = tb_mat_load(M, r0, nr, 0, n, B->D, B->W, NULL, NULL, 0,
                             err);
            if (st)
                return st;
        }
        tb_meter_phase(mt, TIMBER_PHASE_PROJECT);
        R->be->project(&pj, r0, nr, D, B->P);
        /* T = P on the tail side, D - P on the head side. */
        if (!sp->tail_side)
            for (size_t i = 0; i < count; i++)
                B->P[i] = D[i] - B->P[i];
        tb_meter_phase(mt, TIMBER_PHASE_WRITE);
        for (size_t g = 0; g < R->ng; g++) {
            double f = 1.0 - R->res->gammas[g];
            /* O in cache-sized pieces, each encoded while it is hot.
             * Streaming, D is no longer needed; whole, B->D is unused. */
            double *O = B->D;
            for (size_t c0 = 0; c0 < count; c0 += ENCODE_CHUNK) {
                size_t cn = count - c0 < ENCODE_CHUNK ? count - c0
                                                      : ENCODE_CHUNK;
                for (size_t i = 0; i < cn; i++)
                    O[i] = W[c0 + i] - f * B->P[c0 + i];
                if (lim < INFINITY) {
                    size_t bad = first_beyond(O, cn, lim);
                    if (bad < cn)
                        return overflow(M, r0, n, c0 + bad, O[bad],
                                        R->res->gammas[g], err);
                }
                tb_encode(M->dti, O, B->enc + c0 * M->esi, cn);
            }
            st = tb_writer_put(w[g], idx, B->enc, count * M->esi, err);
            if (st)
                return st;
        }
        if (!Dall) {
            tb_meter_phase(mt, TIMBER_PHASE_READ);
            tb_mat_track_rows(M, r0, nr);
            tb_mat_release_rows(M, r0, nr);
        }
        tb_meter_tick(mt, r0 + nr, m);
    }
    return TIMBER_OK;
}

/* Copies Instruct's bytes [from, from + nbytes) of one tensor into every
 * writer, file to file in the kernel (tb_writer_copy: no page faults, no
 * copy through this process). */
static timber_status copy_bytes(const run *R, const timber_tensor_info *t,
                                uint64_t from, uint64_t nbytes,
                                tb_writer **w, size_t idx, timber_error *err)
{
    tb_shard *s = tb_model_shard_of(R->inst, t);
    int fd = tb_shard_reopen(s);
    timber_status st = TIMBER_OK;
    for (uint64_t off = from; off < from + nbytes && !st; off += COPY_CHUNK) {
        if (tb_run_cancelled(R)) {
            st = tb_run_interrupted(err);
            break;
        }
        uint64_t left = from + nbytes - off;
        size_t len = (size_t)(left < COPY_CHUNK ? left : COPY_CHUNK);
        for (size_t g = 0; g < R->ng && !st; g++)
            st = tb_writer_copy(w[g], idx, s, fd, t, off, len, err);
    }
    if (fd >= 0)
        close(fd);
    return st;
}

/* Copies Instruct's bytes of one tensor into every writer. */
static timber_status copy_tensor(const run *R, const timber_tensor_info *t,
                                 tb_writer **w, size_t idx,
                                 timber_error *err)
{
    return copy_bytes(R, t, 0, t->nbytes, w, idx, err);
}

static timber_status nomem_for(const tb_mat *M, const char *what,
                               timber_error *err)
{
    return tb_fail(err, TIMBER_ERR_NOMEM,
                   "tensor '%s': out of memory for %sa %llux%llu matrix",
                   M->ii->name, what, (unsigned long long)M->rows,
                   (unsigned long long)M->cols);
}

/* The spectrum of M's delta from its Gram matrix (pass 1 and the maths). */
static timber_status compute_spectrum(run *R, const tb_mat *M, bufs *B,
                                      const double *Dall, tb_spectrum *sp,
                                      timber_error *err)
{
    uint64_t m = M->rows, n = M->cols, S = m < n ? m : n;
    size_t ldg = tb_gram_ld((size_t)S);
    tb_meter_phase(M->meter, TIMBER_PHASE_GRAM);
    memset(B->G, 0, (size_t)S * ldg * sizeof(double));
    if (Dall) {
        tb_mat_gram_of(M, R->be, Dall, B->G, ldg);
    } else {
        double *const gbufs[3] = {B->D, B->W, B->P};
        progress_pass(M->meter, M, 0, 2);
        timber_status st = tb_mat_gram(M, R->be, B->G, NULL, NULL, ldg,
                                       gbufs, stop_run, R, err);
        if (st)
            return st;
    }
    return R->be->spectrum(R->be->route((size_t)S), M->meter, B->G,
                           (size_t)S, ldg, 1, sp, M->ii->name, err);
}

/* Writes the tensor's output for every gamma from its spectrum (unless
 * M's tracker finds the cache record in use stale on the way). */
static timber_status apply_spectrum(run *R, const tb_mat *M,
                                    const tb_spectrum *sp, tb_writer **w,
                                    size_t idx, bufs *B, tb_scratch *scr,
                                    const double *Dall, const double *Wall,
                                    timber_error *err)
{
    uint64_t m = M->rows, n = M->cols, S = m < n ? m : n;
    int all_one = 1;
    for (size_t g = 0; g < R->ng; g++)
        all_one &= R->res->gammas[g] == 1.0;
    /* Nothing to attenuate: D = 0 (k = 0), an empty tail (k = r), or
     * gamma = 1 everywhere.  The output is Instruct exactly: copy its
     * bytes (which also keeps -0.0). */
    if (sp->k == 0 || sp->k == S || all_one) {
        tb_meter_phase(M->meter, TIMBER_PHASE_READ);
        tb_mat_track_finish(M);
        tb_meter_phase(M->meter, TIMBER_PHASE_WRITE);
        return tb_mat_track_stale(M)
                   ? TIMBER_OK
                   : copy_bytes(R, M->ii, M->elem0 * M->esi,
                                m * n * M->esi, w, idx, err);
    }
    uint64_t step = tb_mat_row_step(M);
    B->Z = NULL;
    B->Y = tb_scratch_get(scr, SLOT_Y, (size_t)(step * sp->p),
                          sizeof(double));
    if (m < n)
        B->Z = tb_scratch_get(scr, SLOT_Z, (size_t)(sp->p * n),
                              sizeof(double));
    if (!B->Y || (m < n && !B->Z))
        return nomem_for(M, "the update of ", err);
    return update_pass(R, M, sp, w, idx, B, Dall, Wall, err);
}

/* The cache key holds the CRC-32 of both inputs' bytes, gathered by M's
 * read-tracking source on the way through a pass that reads the rows in
 * order anyway.  A matrix read whole knows its CRCs first and looks its
 * record up by the full key; a streamed one takes the latest record of
 * its name and shape, and that record is applied only if the CRCs the
 * passes gathered confirm it: a stale one is one check, after which its
 * output is forgotten and the tensor recomputed (or served by an exact
 * record). */
static timber_status refine_matrix(run *R, const tb_plan_item *it,
                                   uint64_t part, tb_writer **w, size_t idx,
                                   timber_tensor_report *rep,
                                   tb_scratch *scr, tb_meter *meter,
                                   timber_error *err)
{
    tb_mat M;
    tb_mat_init_part(&M, R->inst, it->instruct, R->base, it->base, it->rows,
                     it->cols, part, it->parts);
    M.meter = meter;
    uint64_t m = M.rows, n = M.cols;
    uint64_t S = m < n ? m : n, L = m < n ? n : m;
    if (L > INT32_MAX || S > 65536)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: tensor '%s': a %llux%llu matrix is beyond what "
                       "this version can factorise",
                       tb_shard_path(M.si), M.ii->name,
                       (unsigned long long)m, (unsigned long long)n);

    bufs B = {0};
    tb_spectrum sp = {0};
    timber_status st = TIMBER_OK;
    uint64_t panel = tb_mat_panel_elems(&M);
    B.D = tb_scratch_get(scr, SLOT_D, (size_t)panel, sizeof(double));
    B.W = tb_scratch_get(scr, SLOT_W, (size_t)panel, sizeof(double));
    B.P = tb_scratch_get(scr, SLOT_P, (size_t)panel, sizeof(double));
    B.enc = tb_scratch_get(scr, SLOT_ENC, (size_t)panel, M.esi);
    size_t ldg = tb_gram_ld((size_t)S);
    B.G = tb_scratch_get(scr, SLOT_G, (size_t)S * ldg, sizeof(double));
    if (!B.D || !B.W || !B.P || !B.enc || !B.G)
        return nomem_for(&M, "", err);
    tb_crc_track track;
    if (R->cache)
        tb_mat_track(&M, &track);
    /* One expert of a stacked tensor has a record of its own. */
    char part_name[1100];
    tb_cache_part_name(part_name, sizeof part_name, M.ii->name, part,
                       it->parts);
    tb_cache_key key = {part_name, M.ii->ndim, M.ii->shape, M.dtb, M.dti,
                        0, 0, tb_backend_route(R->be, (size_t)S)};
    /* Where this matrix's bytes start in the output tensor: the parts
     * are written in order, each whole. */
    uint64_t start = M.elem0 * M.esi;
    /* Read whole (once) or streamed (twice); see TB_WHOLE_ELEMS. */
    double *Dall = NULL, *Wall = NULL;
    if (m * n <= tb_whole_elems) {
        Dall = tb_scratch_get(scr, SLOT_WHOLE, (size_t)(m * n),
                              2 * sizeof(double));
        if (!Dall)
            return nomem_for(&M, "", err);
        Wall = Dall + m * n;
        progress_pass(meter, &M, 0, 2);
        st = tb_mat_load_all(&M, Dall, Wall, stop_run, R, err);
        if (st)
            return st;
    } else if (tb_mat_hold_size(&M)) {
        /* Read once into memory (raw); the passes decode from there.
         * Out of memory for the copy: streamed from the mapping. */
        unsigned char *h = tb_scratch_get(scr, SLOT_HOLD,
                                          (size_t)tb_mat_hold_size(&M), 1);
        if (h) {
            st = tb_mat_hold(&M, h, stop_run, R, err);
            if (st)
                return st;
            tb_mat_track_finish(&M);
        }
    }
    int cached = 0;
    tb_meter_phase(meter, TIMBER_PHASE_CACHE);
    if (R->cache && tb_mat_track_done(&M)) {
        key.crc_base = track.crc[0];
        key.crc_inst = track.crc[1];
        cached = tb_cache_get(R->cache, &key, m, n, &sp);
    } else if (R->cache) {
        cached = tb_cache_get_latest(R->cache, &key, m, n, &sp,
                                     track.expect);
        track.expect_set = cached;
    }
    if (!cached)
        st = compute_spectrum(R, &M, &B, Dall, &sp, err);
    if (!st)
        st = apply_spectrum(R, &M, &sp, w, idx, &B, scr, Dall, Wall, err);
    if (!st && tb_mat_track_stale(&M)) {
        /* The record was for other bytes (the CRCs are complete now):
         * forget what it produced; an exact record, else compute. */
        for (size_t g = 0; g < R->ng; g++)
            tb_writer_rewind(w[g], idx, start);
        tb_spectrum_clear(&sp);
        track.expect_set = 0;
        key.crc_base = track.crc[0];
        key.crc_inst = track.crc[1];
        tb_meter_phase(meter, TIMBER_PHASE_CACHE);
        cached = tb_cache_get(R->cache, &key, m, n, &sp);
        if (!cached)
            st = compute_spectrum(R, &M, &B, Dall, &sp, err);
        if (!st)
            st = apply_spectrum(R, &M, &sp, w, idx, &B, scr, Dall, Wall,
                                err);
    }
    if (st)
        goto out;
    if (cached) {
        rep->from_cache = 1;
    } else if (R->cache) {
        /* Every path above read the rows in order once: the CRCs are
         * complete. */
        assert(tb_mat_track_done(&M));
        /* The key names the route the spectrum was computed by. */
        assert(tb_route_test_id ||
               sp.route == tb_route_spectral(key.route));
        key.crc_base = track.crc[0];
        key.crc_inst = track.crc[1];
        tb_meter_phase(meter, TIMBER_PHASE_CACHE);
        st = sources_faulted(R, err);
        if (!st)
            st = tb_cache_put(R->cache, &key, m, n, &sp, err);
        if (st)
            goto out;
    }
    rep->rows = m;
    rep->cols = n;
    rep->rank = S;
    rep->erank = sp.erank;
    rep->k = sp.k;
    rep->tail_energy = sp.tail_energy;
out:
    tb_spectrum_clear(&sp);
    return st;
}

/* A tensor is one matrix, or E experts refined one after the other (their
 * bytes are consecutive in the output); the report sums them up: eRank
 * and tail energy averaged, the largest k, from the cache if all were. */
static timber_status refine_tensor(run *R, const tb_plan_item *it,
                                   tb_writer **w, size_t idx,
                                   timber_tensor_report *rep,
                                   tb_scratch *scr, tb_meter *meter,
                                   timber_error *err)
{
    timber_tensor_report one = {0}, sum = {0};
    sum.from_cache = 1;
    for (uint64_t e = 0; e < it->parts; e++) {
        one.from_cache = 0;
        timber_status st =
            refine_matrix(R, it, e, w, idx, &one, scr, meter, err);
        if (st)
            return st;
        sum.erank += one.erank / (double)it->parts;
        sum.tail_energy += one.tail_energy / (double)it->parts;
        sum.k = one.k > sum.k ? one.k : sum.k;
        sum.from_cache &= one.from_cache;
    }
    rep->rows = one.rows;
    rep->cols = one.cols;
    rep->rank = one.rank;
    rep->erank = it->parts == 1 ? one.erank : sum.erank;
    rep->tail_energy = it->parts == 1 ? one.tail_energy : sum.tail_energy;
    rep->k = sum.k;
    rep->from_cache = sum.from_cache;
    /* Counted per tensor: one whose experts were not all cached was
     * (partly) computed. */
    if (R->cache)
        atomic_fetch_add(sum.from_cache ? &R->hits : &R->misses, 1);
    return TIMBER_OK;
}

/* Called by workers under R->lock when a tensor is done (tp: what its
 * ticks credited, or NULL). */
static void report_progress(run *R, const tb_plan_item *it,
                            const tensor_progress *tp)
{
    R->done++;
    R->work_done += work_of(it);
    if (tp)
        R->work_partial -= tp->credited;
    R->last_progress = tb_now();
    if (!R->opt->progress)
        return;
    timber_progress p = {R->done,       R->total,
                         it->instruct->name,
                         R->work_done + R->work_partial,
                         R->work_total, R->last_progress - R->t0,
                         0};
    R->opt->progress(&p, R->opt->user);
}

/* ---------------------------------------------------------- scheduling */

/* Every tensor of every shard is one task: all output shards are open at
 * once, so no core waits at a shard boundary. */
static size_t part_item(const run *R, size_t i)
{
    return R->part ? R->part[i] : i;
}

static double item_cost(void *ctx, size_t i)
{
    run *R = ctx;
    const tb_plan_item *it = &R->plan.items[part_item(R, i)];
    if (it->action == TIMBER_ACTION_REFINED)
        return tb_matrix_cost(it->rows, it->cols);
    return (double)it->instruct->nbytes; /* a copy: cheap */
}

/* A tensor copied verbatim waits on the disk, not the CPU: the I/O
 * lane's (parallel.h), so its writes overlap the refined tensors'
 * arithmetic instead of idling a core. */
static int item_is_copy(void *ctx, size_t i)
{
    run *R = ctx;
    return R->plan.items[part_item(R, i)].action != TIMBER_ACTION_REFINED;
}

static timber_status do_item(void *ctx, size_t task, tb_scratch *scr,
                             timber_error *err)
{
    run *R = ctx;
    size_t i = part_item(R, task);
    const tb_plan_item *it = &R->plan.items[i];
    timber_tensor_report *rep = &R->res->reports[i];
    out_shard *o = &R->shards[R->item_shard[i]];
    size_t idx = i - o->first;
    int refined = it->action == TIMBER_ACTION_REFINED;
    /* Where its time goes: into the report, phase by phase (meter.h). */
    tensor_progress tp = {R, it, work_of(it) - 1, 0, 0, 0};
    tb_meter meter = {0};
    memset(rep->phase_seconds, 0, sizeof rep->phase_seconds);
    tb_meter_start(&meter, rep->phase_seconds,
                   refined ? TIMBER_PHASE_READ : TIMBER_PHASE_WRITE);
    double t0 = meter.wall;
    if (refined && R->opt->progress) {
        meter.tick = progress_tick;
        meter.ctx = &tp;
    }
    timber_status st = refined
                           ? refine_tensor(R, it, o->w, idx, rep, scr,
                                           &meter, err)
                           : copy_tensor(R, it->instruct, o->w, idx, err);
    /* A part's tensor is read back for its journal record, so its last
     * direct write must have landed (or failed) first.  Otherwise that
     * write stays in flight while this worker reads and computes its next
     * tensor, the worker's next put waits for it (its failure is that
     * put's error), and the worker's finish (worker_done) waits for its
     * last one before the writers are committed. */
    if (R->nparts || st) {
        tb_meter_phase(&meter, TIMBER_PHASE_WRITE);
        timber_status fl = tb_writer_flush(st ? NULL : err);
        if (!st)
            st = fl;
    }
    tb_meter_flush(&meter);
    rep->seconds = meter.wall - t0;
    if (!st && R->nparts)
        st = tb_run_journal_item(R, i, err);
    pthread_mutex_lock(&R->lock);
    if (!st)
        report_progress(R, it, &tp);
    else
        R->work_partial -= tp.credited;
    pthread_mutex_unlock(&R->lock);
    return st;
}

/* A worker's finish: its last direct write in flight lands (or fails)
 * before the writers are committed. */
static timber_status worker_done(void *ctx, timber_error *err)
{
    (void)ctx;
    return tb_writer_flush(err);
}

/* Phase "compute a part": refines or copies plan items part[0..n) (all
 * of Instruct's when part is NULL) into the open output shards, on every
 * core.  The items may be any subset, in any order: each writes only its
 * own tensor's place, so parts can be computed separately. */
timber_status tb_run_compute_part(run *R, const size_t *part, size_t n,
                                  timber_error *err)
{
    R->be = tb_backend_cpu(); /* the one backend today */
    R->part = part;
    R->npart = part ? n : R->plan.ninstruct;
    R->done = 0;
    R->total = R->npart;
    R->work_done = R->work_total = R->work_partial = 0;
    R->last_progress = tb_now();
    for (size_t i = 0; i < R->npart; i++)
        R->work_total += work_of(&R->plan.items[part_item(R, i)]);
    tb_tasks t = {.n = R->npart,
                  .threads = R->threads,
                  .run = do_item,
                  .cost = item_cost,
                  .ctx = R,
                  .failed = &R->failed,
                  .io = item_is_copy,
                  .finish = worker_done};
    timber_status st = tb_tasks_run(&t, err);
    if (!st && R->opt->cancel && *R->opt->cancel)
        st = tb_run_interrupted(err);
    return st;
}

/* --------------------------------------------------------- the shards */

/* Creates the writers of one output shard (for every gamma): Instruct's
 * tensors of that shard, items[o->first .. o->first + o->n). */
static timber_status open_shard(run *R, out_shard *o, timber_error *err)
{
    size_t n = o->n, first = o->first;
    const char *shard_name = R->plan.items[first].instruct->shard;
    tb_tensor_spec *specs = tb_calloc_array(n, sizeof *specs);
    o->w = tb_calloc_array(R->ng, sizeof *o->w);
    const tb_shard *src =
        tb_model_shard_of(R->inst, R->plan.items[first].instruct);
    tb_meta *meta = tb_calloc_array(tb_shard_meta_count(src) + 6,
                                    sizeof *meta);
    size_t nmeta = 0;
    timber_status st = TIMBER_OK;
    if (!specs || !o->w || !meta) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = R->plan.items[first + i].instruct;
        specs[i] = (tb_tensor_spec){t->name, t->dtype, t->ndim, t->shape};
    }
    /* Provenance: Instruct's own metadata is kept (but "format", which
     * must be "pt" for transformers), then timber's. */
    meta[nmeta++] = (tb_meta){"format", "pt"};
    for (size_t i = 0; i < tb_shard_meta_count(src); i++) {
        const char *k = tb_shard_meta_key(src, i);
        if (strcmp(k, "format") != 0 && strncmp(k, "timber.", 7) != 0)
            meta[nmeta++] = (tb_meta){k, tb_shard_meta_value(src, i)};
    }
    char gbuf[64];
    meta[nmeta++] = (tb_meta){"timber.version", TIMBER_VERSION_STRING};
    size_t gamma_slot = nmeta;
    meta[nmeta++] = (tb_meta){"timber.gamma", ""};
    meta[nmeta++] = (tb_meta){"timber.include", R->include_json};
    meta[nmeta++] = (tb_meta){"timber.exclude", R->exclude_json};
    meta[nmeta++] = (tb_meta){"timber.fingerprint", R->fingerprint};

    for (size_t g = 0; g < R->ng; g++) {
        char *path = tb_path_join(R->gdirs[g], shard_name);
        if (!path) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            goto out;
        }
        tb_format_double(gbuf, sizeof gbuf, R->res->gammas[g]);
        meta[gamma_slot].value = gbuf;
        /* In place: one run writes them inside its temporary directory,
         * the parts of a distributed run all into the same files. */
        st = tb_writer_open_in_place(path, meta, nmeta, specs, n, &o->w[g],
                                     err);
        free(path);
        if (st)
            goto out;
        tb_writer_set_sources(o->w[g], sources_faulted, R);
    }
out:
    free(meta);
    free(specs);
    return st;
}

static timber_status commit_shard(run *R, out_shard *o, timber_error *err)
{
    timber_status st = TIMBER_OK;
    for (size_t g = 0; g < R->ng && !st; g++) {
        R->res->bytes_written += tb_writer_file_size(o->w[g]);
        st = tb_writer_commit(o->w[g], err);
    }
    if (!st)
        R->res->shards_written += R->ng;
    return st;
}

static void free_shards(run *R)
{
    for (size_t s = 0; R->shards && s < R->nshards; s++) {
        for (size_t g = 0; R->shards[s].w && g < R->ng; g++)
            tb_writer_free(R->shards[s].w[g]);
        free(R->shards[s].w);
    }
    free(R->shards);
    free(R->item_shard);
    R->shards = NULL;
    R->item_shard = NULL;
    R->nshards = 0;
}

/* Groups Instruct's items by shard (file order keeps each shard's tensors
 * together) and opens every output shard of every gamma. */
timber_status tb_run_open_shards(run *R, timber_error *err)
{
    size_t n = R->plan.ninstruct;
    R->shards = tb_calloc_array(n, sizeof *R->shards);
    R->item_shard = tb_calloc_array(n, sizeof *R->item_shard);
    if (!R->shards || !R->item_shard)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || R->plan.items[i].instruct->shard !=
                          R->plan.items[i - 1].instruct->shard)
            R->shards[R->nshards++].first = i;
        R->shards[R->nshards - 1].n++;
        R->item_shard[i] = R->nshards - 1;
    }
    timber_status st = TIMBER_OK;
    for (size_t s = 0; s < R->nshards && !st; s++)
        st = open_shard(R, &R->shards[s], err);
    return st;
}


/* --------------------------------------------------------------- setup */

/* A list of regexes as a JSON array string, for shard metadata (whose
 * values must be strings). */
static char *json_list(const char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    char *text = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return text;
}

/* Per gamma, the checkpoint directory being built: the temporary itself
 * for one gamma, gamma-<g>/ inside it for several. */
timber_status tb_run_make_gamma_dirs(run *R, timber_error *err)
{
    R->gdirs = tb_calloc_array(R->ng, sizeof(char *));
    if (!R->gdirs)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t g = 0; g < R->ng; g++) {
        R->gdirs[g] = R->ng == 1
                          ? tb_strdup(R->build)
                          : tb_path_join(R->build, R->res->gamma_dirs[g]);
        if (!R->gdirs[g])
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        /* A distributed run's directories are made by whichever part
         * comes first. */
        if (R->ng > 1 && mkdir(R->gdirs[g], 0777) != 0 &&
            !(errno == EEXIST && R->nparts))
            return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                 "%s: cannot create", R->gdirs[g]);
    }
    return TIMBER_OK;
}

/* Refuses, before any work, an OUT, cache or caller's output file that
 * is, or lies inside, an input, OUT or one another (pathid.h).  The
 * cache's path is settled here: R->cache_file (NULL: none). */
static timber_status check_places(run *R, const char *base,
                                  const char *instruct, timber_error *err)
{
    const timber_refine_options *o = R->opt;
    if (!o->no_cache) {
        R->cache_file = o->cache_path ? tb_strdup(o->cache_path)
                                      : tb_cache_default_path(R->fp);
        if (!R->cache_file && o->cache_path)
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    return tb_check_run_places(base, instruct, R->out, R->cache_file,
                               o->outputs, o->noutputs, err);
}

/* Opens the SVD cache.  An explicit --cache that cannot be used is an
 * error (it may be someone's file); trouble with the default location
 * only costs speed, so it is a warning and the run goes on without. */
static timber_status open_cache(run *R, timber_error *err)
{
    const timber_refine_options *o = R->opt;
    if (o->no_cache)
        return TIMBER_OK;
    char *path = R->cache_file;
    R->cache_file = NULL;
    if (!path) {
        if (o->warning && !o->cache_path)
            o->warning("no cache: XDG_CACHE_HOME is not an absolute path "
                       "and HOME is not set",
                       o->user);
        return o->cache_path ? tb_fail(err, TIMBER_ERR_NOMEM, "out of memory")
                             : TIMBER_OK;
    }
    timber_error cerr;
    timber_status st = tb_cache_open(path, R->fp, &R->cache, &cerr);
    free(path);
    if (!st) {
        tb_cache_warnings(R->cache, o->warning, o->user);
        return TIMBER_OK;
    }
    if (o->cache_path && st != TIMBER_ERR_EXISTS) {
        if (err)
            *err = cerr;
        return st;
    }
    if (o->warning) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s; continuing without the cache",
                 cerr.message);
        o->warning(msg, o->user);
    }
    return TIMBER_OK;
}

static timber_status setup_result(run *R, timber_error *err)
{
    const timber_refine_options *o = R->opt;
    static const double default_gamma = 0.2;
    const double *gs = o->ngammas ? o->gammas : &default_gamma;
    size_t ng = o->ngammas ? o->ngammas : 1;
    timber_result *res = calloc(1, sizeof *res);
    if (!res)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    R->res = res;
    res->gammas = tb_calloc_array(ng, sizeof(double));
    res->gamma_dirs = tb_calloc_array(ng, sizeof(char *));
    if (!res->gammas || !res->gamma_dirs)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t g = 0; g < ng; g++) {
        if (!(gs[g] >= 0.0 && gs[g] <= 1.0))
            return tb_fail(err, TIMBER_ERR_OPTION,
                           "--gamma: %g is outside [0, 1]", gs[g]);
        char name[64];
        if (ng == 1)
            name[0] = '\0';
        else
            snprintf(name, sizeof name, "gamma-%.6g", gs[g] + 0.0);
        for (size_t h = 0; h < g; h++)
            if (strcmp(res->gamma_dirs[h], name) == 0)
                return tb_fail(err, TIMBER_ERR_OPTION,
                               "--gamma: %.17g and %.17g would share the "
                               "directory %s",
                               res->gammas[h], gs[g], name);
        res->gammas[g] = gs[g] + 0.0; /* -0 is 0: "gamma-0", "0" */
        res->gamma_dirs[g] = tb_strdup(name);
        res->ngammas++;
        if (!res->gamma_dirs[g])
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    R->ng = ng;
    return TIMBER_OK;
}

static timber_status fill_reports(run *R, timber_error *err)
{
    timber_result *res = R->res;
    res->reports = tb_calloc_array(R->plan.n, sizeof *res->reports);
    res->reasons = tb_calloc_array(R->plan.n, sizeof(char *));
    if (!res->reports || !res->reasons)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < R->plan.n; i++) {
        const tb_plan_item *it = &R->plan.items[i];
        const timber_tensor_info *t = it->instruct ? it->instruct : it->base;
        timber_tensor_report *r = &res->reports[i];
        res->reasons[i] = tb_strdup(it->reason);
        if (!res->reasons[i])
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        res->n = i + 1;
        r->name = t->name;
        r->dtype = t->dtype;
        r->base_dtype = it->base ? it->base->dtype : t->dtype;
        r->ndim = t->ndim;
        r->shape = t->shape;
        r->shard = t->shard;
        r->action = it->action;
        r->reason = res->reasons[i];
        r->warned = it->shape_mismatch;
        r->view = it->action == TIMBER_ACTION_REFINED ? it->view : "";
        r->parts = it->action == TIMBER_ACTION_REFINED ? it->parts : 0;
    }
    return TIMBER_OK;
}

/* Refuses, up front, a run whose address-space need is over ulimit -v
 * (resources.h: OpenBLAS must never be where memory runs out). */
static timber_status check_memory(run *R, timber_error *err)
{
    uint64_t mn = 0, S = 0;
    for (size_t i = 0; i < R->plan.ninstruct; i++)
        if (R->plan.items[i].action == TIMBER_ACTION_REFINED)
            tb_matrix_extent(R->plan.items[i].rows, R->plan.items[i].cols,
                             &mn, &S);
    return tb_memory_check(mn, S, R->threads, R->out, err);
}

/* Phase "open and plan": the gammas, both models, the plan and its
 * reports, the checks on OUT, the fingerprint and the cache.  Nothing is
 * written yet. */
timber_status tb_run_open_and_plan(run *R, const char *base,
                                   const char *instruct, const char *out,
                                   timber_error *err)
{
    const timber_refine_options *options = R->opt;
    R->threads = tb_thread_count(options->threads);
    timber_status st = setup_result(R, err);
    if (st)
        return st;
    if (!(R->out = tb_strdup(out)))
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t l = strlen(R->out); l > 1 && R->out[l - 1] == '/'; l--)
        R->out[l - 1] = '\0';
    if ((st = timber_model_open(base, &R->base, err)) ||
        (st = timber_model_open(instruct, &R->inst, err)))
        return st;
    tb_model_note(R->base, options->warning, options->user);
    tb_model_note(R->inst, options->warning, options->user);
    if (timber_model_tensor_count(R->inst) == 0)
        return tb_fail(err, TIMBER_ERR_INVALID, "%s: holds no tensors",
                       instruct);
    tb_selection sel = {options->include, options->ninclude,
                        options->exclude, options->nexclude};
    if ((st = tb_plan_build(R->base, R->inst, &sel, options->strict,
                            options->matrix_view, &R->plan, err)) ||
        (st = fill_reports(R, err)))
        return st;
    R->fp = tb_pair_fingerprint(R->base, R->inst);
    if ((st = check_places(R, timber_model_path(R->base),
                              timber_model_path(R->inst), err)) ||
        (st = tb_outdir_check(R->out, options->force, err)) ||
        (st = check_memory(R, err)))
        return st;
    snprintf(R->fingerprint, sizeof R->fingerprint, "%016llx",
             (unsigned long long)R->fp);
    R->include_json = json_list(options->include, options->ninclude);
    R->exclude_json = json_list(options->exclude, options->nexclude);
    if (!R->include_json || !R->exclude_json)
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if (!st)
        st = open_cache(R, err);
    /* The warnings are the plan's: said even when the cache failed. */
    for (size_t i = 0; options->warning && i < R->plan.ninstruct; i++) {
        const tb_plan_item *it = &R->plan.items[i];
        if (it->shape_mismatch) {
            char msg[512];
            snprintf(msg, sizeof msg, "tensor '%s': %s; copied from Instruct",
                     it->instruct->name, it->reason);
            options->warning(msg, options->user);
        }
    }
    return st;
}

/* Phase "stage the output": the temporary directory beside OUT, a
 * checkpoint directory in it per gamma, and every output shard of every
 * gamma open (their headers and places follow from Instruct's headers
 * alone). */
static timber_status stage_output(run *R, timber_error *err)
{
    timber_status st = tb_outdir_begin(&R->dir, R->out, R->opt->force, err);
    if (!st)
        st = (R->build = tb_strdup(R->dir.tmp))
                 ? TIMBER_OK
                 : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if (!st)
        st = tb_run_make_gamma_dirs(R, err);
    if (!st)
        st = tb_run_open_shards(R, err);
    return st;
}

/* Writes the index (for a sharded or indexed Instruct), the model card,
 * the carried-over files, and fsyncs one gamma's checkpoint directory. */
static timber_status finish_gamma_dir(run *R, size_t g, timber_error *err)
{
    timber_status st = TIMBER_OK;
    if (timber_model_has_index(R->inst) ||
        timber_model_shard_count(R->inst) > 1) {
        tb_index_entry *e = tb_calloc_array(R->plan.ninstruct, sizeof *e);
        uint64_t total = 0, params = 0;
        if (!e)
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < R->plan.ninstruct; i++) {
            e[i].tensor = R->plan.items[i].instruct->name;
            e[i].shard = R->plan.items[i].instruct->shard;
            total += R->plan.items[i].instruct->nbytes;
            params += R->plan.items[i].instruct->nelems;
        }
        st = tb_index_write(R->gdirs[g], e, R->plan.ninstruct, total, params,
                            err);
        free(e);
    }
    /* Instruct's files but its card: OUT gets a card of its own. */
    if (!st) {
        tb_card card = {R->base,        R->inst,
                        R->res,         g,
                        R->opt,         R->fingerprint,
                        R->man.base_arg, R->man.instruct_arg};
        st = tb_card_write(R->gdirs[g], &card, err);
    }
    for (size_t i = 0; !st && i < timber_model_extra_count(R->inst); i++) {
        const char *name = timber_model_extra_name(R->inst, i);
        if (strcmp(name, TB_CARD_NAME) == 0)
            continue;
        char *src = tb_path_join(timber_model_path(R->inst), name);
        char *dst = tb_path_join(R->gdirs[g], name);
        st = src && dst ? tb_copy_file(src, dst, err)
                        : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        free(src);
        free(dst);
    }
    if (!st && tb_fsync_dir(R->gdirs[g]) != 0)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot fsync",
                           R->gdirs[g]);
    return st;
}

/* Phase "finish the directory": every shard committed (synced, closed),
 * then each gamma's directory completed. */
timber_status tb_run_finish_dirs(run *R, timber_error *err)
{
    timber_status st = TIMBER_OK;
    for (size_t s = 0; s < R->nshards && !st; s++)
        st = commit_shard(R, &R->shards[s], err);
    free_shards(R);
    for (size_t g = 0; !st && g < R->ng; g++)
        st = finish_gamma_dir(R, g, err);
    return st;
}

/* Phase "publish": refuses to publish when cancelled or when an input
 * was rewritten or truncated under its mapping (it may have fed us a
 * mixture of bytes: safetensors.h, "SIGBUS"), else renames the temporary
 * into place. */
timber_status tb_run_publish(run *R, timber_error *err)
{
    timber_status st = TIMBER_OK;
    if (tb_run_cancelled(R))
        st = tb_run_interrupted(err);
    if (!st)
        st = tb_model_check(R->base, err);
    if (!st)
        st = tb_model_check(R->inst, err);
    if (!st)
        st = tb_outdir_publish(&R->dir, err);
    return st;
}

/* The one cleanup path, whatever phase failed: removes an unpublished
 * temporary, hands the result (which keeps the models: the reports point
 * into their names and shapes) to the caller when there is one, frees
 * the rest. */
void tb_run_close(run *R, timber_result **result)
{
    free_shards(R);
    tb_outdir_end(&R->dir);
    if (R->res) {
        R->res->part_index = R->finalizing ? 0 : R->part_i;
        R->res->part_count = R->finalizing ? 0 : R->nparts;
        R->res->seconds = tb_now() - R->t0;
        R->res->cache_hits = atomic_load(&R->hits);
        R->res->cache_misses = atomic_load(&R->misses);
        if (R->cache) {
            R->res->cache_path = tb_strdup(tb_cache_path(R->cache));
            R->res->cache_bytes = tb_cache_size(R->cache);
        }
    }
    tb_cache_close(R->cache);
    free(R->cache_file);
    free(R->build);
    free(R->staging);
    free(R->journal);
    free(R->part_of);
    free(R->mine);
    free(R->entries);
    free(R->have);
    tb_manifest_clear(&R->man);
    for (size_t g = 0; R->gdirs && g < R->ng; g++)
        free(R->gdirs[g]);
    free(R->gdirs);
    free(R->out);
    tb_plan_clear(&R->plan);
    free(R->include_json);
    free(R->exclude_json);
    if (R->res) {
        R->res->base = R->base;
        R->res->inst = R->inst;
    } else {
        timber_model_free(R->base);
        timber_model_free(R->inst);
    }
    if (result && R->res && R->res->n) {
        *result = R->res;
        R->res = NULL;
    }
    timber_result_free(R->res);
    pthread_mutex_destroy(&R->lock);
}

/* Common start of every entry point. */
void tb_run_begin(run *R, const timber_refine_options *options,
                      timber_refine_options *defaults, timber_result **result,
                      timber_error *err)
{
    if (!options) {
        timber_refine_options_init(defaults);
        options = defaults;
    }
    if (result)
        *result = NULL;
    tb_error_clear(err);
    memset(R, 0, sizeof *R);
    R->opt = options;
    R->t0 = tb_now();
    pthread_mutex_init(&R->lock, NULL);
}

/* One machine: open and plan, stage, compute every item as one part,
 * finish, publish.  A distributed part: open and plan, stage the part,
 * compute its items, complete it (finalize does the rest). */
timber_status timber_refine(const char *base, const char *instruct,
                            const char *out,
                            const timber_refine_options *options,
                            timber_result **result, timber_error *err)
{
    timber_refine_options defaults;
    run R;
    tb_run_begin(&R, options, &defaults, result, err);
    timber_status st = TIMBER_OK;
    R.nparts = R.opt->part_count;
    R.part_i = R.opt->part_index;
    if (R.nparts && (R.nparts > TB_MAX_PARTS || R.part_i >= R.nparts))
        st = tb_fail(err, TIMBER_ERR_OPTION,
                     "--part: %zu/%zu is not a part of 1 to %d parts "
                     "(0 <= I < N)",
                     R.part_i, R.nparts, TB_MAX_PARTS);
    if (!st)
        st = tb_run_open_and_plan(&R, base, instruct, out, err);
    if (R.nparts) {
        if (!st)
            st = tb_run_stage_part(&R, base, instruct, err);
        if (!st)
            st = tb_run_compute_part(&R, R.mine, R.nmine, err);
        if (!st)
            st = tb_run_complete_part(&R, err);
    } else {
        if (!st)
            st = stage_output(&R, err);
        if (!st)
            st = tb_run_compute_part(&R, NULL, 0, err);
        if (!st)
            st = tb_run_finish_dirs(&R, err);
        if (!st)
            st = tb_run_publish(&R, err);
    }
    tb_run_close(&R, result);
    return st;
}

