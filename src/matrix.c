/*
 * matrix.c — streaming a tensor pair's matrix view in double panels (see
 * matrix.h): decoding, finiteness checks, page release, Gram matrices.
 */
#include "matrix.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "dtype.h"
#include "model.h"
#include "resources.h"
#include "util.h"

void tb_mat_init_part(tb_mat *M, const timber_model *inst,
                      const timber_tensor_info *ii, const timber_model *base,
                      const timber_tensor_info *bi, uint64_t rows,
                      uint64_t cols, uint64_t part, uint64_t parts)
{
    memset(M, 0, sizeof *M);
    M->ii = ii;
    M->si = tb_model_shard_of(inst, ii);
    M->dti = ii->dtype;
    M->esi = tb_dtype_size(ii->dtype);
    M->rows = rows;
    M->cols = cols;
    M->part = part;
    M->parts = parts;
    M->elem0 = part * rows * cols;
    M->wi = tb_shard_data(M->si, ii) + M->elem0 * M->esi;
    if (bi) {
        M->bi = bi;
        M->sb = tb_model_shard_of(base, bi);
        M->dtb = bi->dtype;
        M->esb = tb_dtype_size(bi->dtype);
        M->wb = tb_shard_data(M->sb, bi) + M->elem0 * M->esb;
    }
}

void tb_mat_init(tb_mat *M, const timber_model *inst,
                 const timber_tensor_info *ii, const timber_model *base,
                 const timber_tensor_info *bi)
{
    uint64_t rows = ii->ndim ? ii->shape[0] : 1;
    tb_mat_init_part(M, inst, ii, base, bi, rows,
                     rows ? ii->nelems / rows : 0, 0, 1);
}

uint64_t tb_mat_panel_elems(const tb_mat *M)
{
    /* A small matrix gets buffers its own size (a model can have 100,000
     * of them); a big one panels of TB_PANEL_ELEMS, but never less than a
     * whole row (row blocks) or column (column panels). */
    uint64_t all = M->rows * M->cols;
    if (all <= TB_PANEL_ELEMS)
        return all ? all : 1;
    uint64_t p = TB_PANEL_ELEMS;
    if (M->cols > p)
        p = M->cols;
    if (M->rows > p)
        p = M->rows;
    return p;
}

uint64_t tb_mat_row_step(const tb_mat *M)
{
    uint64_t step = TB_PANEL_ELEMS / M->cols;
    if (step < 1)
        step = 1;
    return step > M->rows ? M->rows : step;
}

/* Index of the first NaN or Inf of n doubles, or -1 (the slow search,
 * once a scan has found one). */
static long first_nonfinite(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return (long)i;
    return -1;
}

static timber_status nonfinite_error(const tb_mat *M, int instruct,
                                     uint64_t row, uint64_t col, double v,
                                     timber_error *err)
{
    /* The element's index in the tensor: [e, row, col] for an expert. */
    char at[96];
    if (M->parts > 1)
        snprintf(at, sizeof at, "%llu, %llu, %llu",
                 (unsigned long long)M->part, (unsigned long long)row,
                 (unsigned long long)col);
    else
        snprintf(at, sizeof at, "%llu, %llu", (unsigned long long)row,
                 (unsigned long long)col);
    return tb_fail(err, TIMBER_ERR_NONFINITE,
                   "%s: tensor '%s': element [%s] is %s; refusing to "
                   "factorise a matrix with non-finite values",
                   tb_shard_path(instruct ? M->si : M->sb), M->ii->name, at,
                   isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf"));
}

/* Non-zero when any of x[0..n) is NaN or Inf: a branch-free scan of the
 * exponent bits, which vectorises. */
static int any_nonfinite(const double *x, size_t n)
{
    const uint64_t expo = 0x7ff0000000000000ull;
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &x[i], 8);
        bad |= (uint64_t)((b & expo) == expo);
    }
    return bad != 0;
}

/* d = w - d, with the finiteness scan of both operands in the same pass
 * (one pass over the row instead of three). */
static int subtract_checked(double *d, const double *w, size_t n)
{
    const uint64_t expo = 0x7ff0000000000000ull;
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a, b;
        memcpy(&a, &w[i], 8);
        memcpy(&b, &d[i], 8);
        bad |= (uint64_t)((a & expo) == expo) | (uint64_t)((b & expo) == expo);
        d[i] = w[i] - d[i];
    }
    return bad != 0;
}

static timber_status load_rows(const tb_mat *M, uint64_t r0, uint64_t nr,
                               uint64_t c0, uint64_t nc, double *D,
                               double *wi, double *wb, double *scratch,
                               int check, timber_error *err)
{
    for (uint64_t r = 0; r < nr; r++) {
        uint64_t at = (r0 + r) * M->cols + c0;
        double *d = D + r * nc;
        double *w = wi ? wi + r * nc : scratch;
        tb_decode(M->dti, M->wi + at * M->esi, w, nc);
        if (!M->wb) {
            if (check && any_nonfinite(w, nc)) {
                long bad = first_nonfinite(w, nc);
                return nonfinite_error(M, 1, r0 + r, c0 + (uint64_t)bad,
                                       w[bad], err);
            }
            memcpy(d, w, nc * sizeof *d);
            continue;
        }
        tb_decode(M->dtb, M->wb + at * M->esb, d, nc);
        if (wb)
            memcpy(wb + r * nc, d, nc * sizeof *d);
        if (!check) {
            for (uint64_t c = 0; c < nc; c++)
                d[c] = w[c] - d[c];
            continue;
        }
        /* The base values are gone once subtracted: on a bad row, decode
         * it again to say which input and element. */
        if (subtract_checked(d, w, nc)) {
            long bad = first_nonfinite(w, nc);
            if (bad >= 0)
                return nonfinite_error(M, 1, r0 + r, c0 + (uint64_t)bad,
                                       w[bad], err);
            tb_decode(M->dtb, M->wb + at * M->esb, d, nc);
            bad = first_nonfinite(d, nc);
            return nonfinite_error(M, 0, r0 + r, c0 + (uint64_t)bad, d[bad],
                                   err);
        }
    }
    return TIMBER_OK;
}

/* The mapped inputs are read inside a recovery point: a file truncated
 * under its mapping abandons the read and fails naming the file
 * (safetensors.h). */
timber_status tb_mat_load(const tb_mat *M, uint64_t r0, uint64_t nr,
                          uint64_t c0, uint64_t nc, double *D, double *wi,
                          double *wb, double *scratch, int check,
                          timber_error *err)
{
    tb_guard g;
    volatile timber_status st = TIMBER_OK;
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0)
        st = load_rows(M, r0, nr, c0, nc, D, wi, wb, scratch, check, err);
    if (tb_guard_pop(&g))
        return tb_guard_error(&g, err);
    return st;
}

void tb_mat_release_rows(const tb_mat *M, uint64_t r0, uint64_t nr)
{
    if (M->held)
        return; /* nothing mapped was touched */
    tb_shard_release(M->si, M->ii, (M->elem0 + r0 * M->cols) * M->esi,
                     nr * M->cols * M->esi);
    if (M->wb)
        tb_shard_release(M->sb, M->bi, (M->elem0 + r0 * M->cols) * M->esb,
                         nr * M->cols * M->esb);
}

void tb_mat_track(tb_mat *M, tb_crc_track *t)
{
    memset(t, 0, sizeof *t);
    t->crc[0] = t->crc[1] = (uint32_t)crc32(0, Z_NULL, 0);
    M->track = t;
}

void tb_mat_track_rows(const tb_mat *M, uint64_t r0, uint64_t nr)
{
    tb_crc_track *t = M->track;
    if (!t || r0 != t->next || nr == 0)
        return;
    uint64_t row_b = M->cols * M->esb, row_i = M->cols * M->esi;
    /* An abandoned read leaves the CRCs wrong, and the shard flagged: the
     * run's next write or cache record is refused (tb_shard_faulted). */
    tb_guard g;
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0) {
        if (M->wb)
            t->crc[0] = (uint32_t)crc32_z(t->crc[0], M->wb + r0 * row_b,
                                          (z_size_t)(nr * row_b));
        t->crc[1] = (uint32_t)crc32_z(t->crc[1], M->wi + r0 * row_i,
                                      (z_size_t)(nr * row_i));
    }
    tb_guard_pop(&g);
    t->next = r0 + nr;
}

int tb_mat_track_done(const tb_mat *M)
{
    return !M->track || M->track->next >= M->rows;
}

void tb_mat_track_finish(const tb_mat *M)
{
    uint64_t step = tb_mat_row_step(M);
    while (!tb_mat_track_done(M)) {
        uint64_t r0 = M->track->next;
        uint64_t nr = M->rows - r0 < step ? M->rows - r0 : step;
        tb_mat_track_rows(M, r0, nr);
        tb_mat_release_rows(M, r0, nr);
    }
}

int tb_mat_track_stale(const tb_mat *M)
{
    const tb_crc_track *t = M->track;
    return t && t->expect_set && tb_mat_track_done(M) &&
           (t->crc[0] != t->expect[0] || t->crc[1] != t->expect[1]);
}

uint64_t tb_whole_elems = TB_WHOLE_ELEMS;

/* The Gram panels of an S x L view (L >= S; tall: A = D, wide: A = D^T):
 * `step` of the long side at a time. */
static uint64_t gram_step(uint64_t S)
{
    return TB_PANEL_ELEMS / S ? TB_PANEL_ELEMS / S : 1;
}

timber_status tb_mat_gram(const tb_mat *M, const tb_backend *be,
                          double *gd, double *gb, double *gi, size_t ldg,
                          double *const bufs[3],
                          tb_stop_fn stop, const void *ctx,
                          timber_error *err)
{
    uint64_t m = M->rows, n = M->cols;
    int tall = m >= n;
    uint64_t S = tall ? n : m, L = tall ? m : n;
    uint64_t step = gram_step(S);
    double *D = bufs[0], *W = bufs[1], *B = bufs[2];
    /* Wide matrices are read in column panels (every row's segment), so
     * their pages are released once, at the end. */
    for (uint64_t at = 0; at < L; at += step) {
        if (stop && stop(ctx))
            return tb_fail(err, TIMBER_ERR_INTERRUPTED, "interrupted");
        uint64_t len = L - at < step ? L - at : step;
        tb_meter_phase(M->meter, TIMBER_PHASE_READ);
        timber_status st =
            tall ? tb_mat_load(M, at, len, 0, n, D, W, gb ? B : NULL, W, 1,
                               err)
                 : tb_mat_load(M, 0, m, at, len, D, W, gb ? B : NULL, W, 1,
                               err);
        if (st)
            return st;
        uint64_t ld = tall ? S : len;
        tb_meter_phase(M->meter, TIMBER_PHASE_GRAM);
        if (gd)
            be->gram(tall, S, len, D, ld, gd, ldg);
        if (gi)
            be->gram(tall, S, len, W, ld, gi, ldg);
        if (gb && M->wb)
            be->gram(tall, S, len, B, ld, gb, ldg);
        if (tall) {
            tb_meter_phase(M->meter, TIMBER_PHASE_READ);
            tb_mat_track_rows(M, at, len);
            tb_mat_release_rows(M, at, len);
        }
        tb_meter_tick(M->meter, at + len, L);
    }
    tb_meter_phase(M->meter, TIMBER_PHASE_READ);
    if (!tall)
        tb_mat_release_rows(M, 0, m);
    return TIMBER_OK;
}

timber_status tb_mat_load_all(const tb_mat *M, double *D, double *wi,
                              tb_stop_fn stop, const void *ctx,
                              timber_error *err)
{
    uint64_t m = M->rows, n = M->cols, step = tb_mat_row_step(M);
    for (uint64_t r0 = 0; r0 < m; r0 += step) {
        if (stop && stop(ctx))
            return tb_fail(err, TIMBER_ERR_INTERRUPTED, "interrupted");
        uint64_t nr = m - r0 < step ? m - r0 : step;
        tb_meter_phase(M->meter, TIMBER_PHASE_READ);
        timber_status st = tb_mat_load(M, r0, nr, 0, n, D + r0 * n,
                                       wi + r0 * n, NULL, NULL, 1, err);
        if (st)
            return st;
        tb_mat_track_rows(M, r0, nr);
        tb_meter_tick(M->meter, r0 + nr, m);
    }
    /* One madvise per input for the whole matrix (at most 2^22 elements):
     * an expert of an MoE model is one of thousands, and each madvise of
     * a threaded process is a TLB shootdown on every core. */
    tb_mat_release_rows(M, 0, m);
    return TIMBER_OK;
}

uint64_t tb_hold_bytes = TB_HOLD_BYTES;

uint64_t tb_mat_hold_size(const tb_mat *M)
{
    uint64_t mn = M->rows * M->cols;
    uint64_t bytes = mn * (M->esi + (M->wb ? M->esb : 0));
    if (M->held || mn <= tb_whole_elems || bytes > tb_hold_bytes ||
        tb_memory_limited())
        return 0;
    return bytes;
}

/* Bytes per read: the stop flag is polled between them. */
#define HOLD_CHUNK (8ull << 20)

static timber_status hold_one(const tb_shard *s, const timber_tensor_info *t,
                              uint64_t from, unsigned char *dst,
                              uint64_t len, tb_stop_fn stop, const void *ctx,
                              timber_error *err)
{
    int fd = tb_shard_reopen(s);
    timber_status st = TIMBER_OK;
    for (uint64_t at = 0; at < len && !st; at += HOLD_CHUNK) {
        if (stop && stop(ctx)) {
            st = tb_fail(err, TIMBER_ERR_INTERRUPTED, "interrupted");
            break;
        }
        uint64_t n = len - at < HOLD_CHUNK ? len - at : HOLD_CHUNK;
        st = tb_shard_read(s, fd, t, from + at, dst + at, (size_t)n, err);
    }
    if (fd >= 0)
        close(fd);
    return st;
}

timber_status tb_mat_hold(tb_mat *M, unsigned char *buf, tb_stop_fn stop,
                          const void *ctx, timber_error *err)
{
    uint64_t mn = M->rows * M->cols;
    uint64_t ni = mn * M->esi;
    tb_meter_phase(M->meter, TIMBER_PHASE_READ);
    timber_status st = hold_one(M->si, M->ii, M->elem0 * M->esi, buf, ni,
                                stop, ctx, err);
    if (!st && M->wb)
        st = hold_one(M->sb, M->bi, M->elem0 * M->esb, buf + ni,
                      mn * M->esb, stop, ctx, err);
    if (st)
        return st;
    M->wi = buf;
    if (M->wb)
        M->wb = buf + ni;
    M->held = 1;
    return TIMBER_OK;
}

void tb_mat_gram_of(const tb_mat *M, const tb_backend *be, const double *D,
                    double *G, size_t ldg)
{
    uint64_t m = M->rows, n = M->cols;
    int tall = m >= n;
    uint64_t S = tall ? n : m, L = tall ? m : n, step = gram_step(S);
    tb_meter_phase(M->meter, TIMBER_PHASE_GRAM);
    for (uint64_t at = 0; at < L; at += step) {
        uint64_t len = L - at < step ? L - at : step;
        be->gram(tall, S, len, tall ? D + at * n : D + at, n, G, ldg);
    }
}

uint32_t tb_tensor_crc(const tb_shard *s, const timber_tensor_info *t)
{
    const uint64_t chunk = 8u << 20;
    const unsigned char *p = tb_shard_data(s, t);
    volatile uLong c = crc32(0, Z_NULL, 0);
    /* As in tb_mat_track_rows: an abandoned read leaves the shard flagged,
     * and the caller's final tb_model_check refuses the result. */
    tb_guard g;
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0)
        for (uint64_t off = 0; off < t->nbytes; off += chunk) {
            uint64_t len = t->nbytes - off < chunk ? t->nbytes - off : chunk;
            c = crc32(c, p + off, (uInt)len);
            tb_shard_release(s, t, off, len);
        }
    tb_guard_pop(&g);
    return (uint32_t)c;
}
