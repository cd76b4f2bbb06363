/*
 * spectrum.c — singular values, eRank, k and the tail/head basis of one
 * delta matrix from its Gram matrix (see spectrum.h).
 *
 * Route (measured in docs/numerics.md and docs/performance.md): dsytrd
 * reduces G to tridiagonal form (route TB_ROUTE_TWOSTAGE, S >=
 * TB_TWOSTAGE_MIN_S: the two-stage reduction of tridiag2.c, dense -> band
 * (bandwidth TB_TWOSTAGE_BAND) -> tridiagonal, whose level-3 first stage
 * beats dsytrd's memory-bound half level 2 there, Q2 and Q1 costing more
 * than dsytrd's Q); dlarre (dqds) gives all eigenvalues and a
 * root representation, from which dlarrv computes only the eigenvectors
 * of the smaller side of the cut (dsterf + dstemr + dstebz/dstein when
 * that route does not apply); the blocked reflectors of the reduction
 * map them back (Q, or Q2 then Q1).  U is never formed. */
#include "spectrum.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "meter.h"
#include "tridiag2.h"
#include "util.h"

double tb_erank(const double *s, size_t r)
{
    double sum = 0.0;
    for (size_t i = 0; i < r; i++)
        sum += s[i];
    if (!(sum > 0.0))
        return 0.0;
    double h = 0.0;
    for (size_t i = 0; i < r; i++) {
        double p = s[i] / sum;
        if (p > 0.0)
            h -= p * log(p);
    }
    return exp(h);
}

size_t tb_cutoff(double erank, size_t r)
{
    if (!(erank > 0.0))
        return 0;
    double c = ceil(erank);
    return c >= (double)r ? r : (size_t)c;
}

void tb_spectrum_clear(tb_spectrum *sp)
{
    free(sp->s);
    free(sp->basis);
    memset(sp, 0, sizeof *sp);
}

size_t tb_gram_ld(size_t S)
{
    /* A row stride that is a multiple of 512 bytes sends every column of
     * G (and of the eigenvector block) to the same few cache sets; one
     * extra cache line per column spreads them out.  Measured at S = 1024:
     * dormtr 21 ms -> 10 ms, dsytrd 50 ms -> 45 ms. */
    return S >= 64 && S % 64 == 0 ? S + 8 : S;
}

/* ---------------------------------------------------------------- MRRR
 *
 * LAPACK's dstemr is a driver around two auxiliaries: dlarre finds a root
 * representation L D L^T = T - sigma I and its eigenvalues, dlarrv the
 * eigenvectors.  Called with RANGE='I' (only the p vectors we need),
 * dstemr makes dlarre find those p eigenvalues by bisection, which costs
 * more than everything else here together; with RANGE='A' it uses dqds
 * for all of them, but then computes all S vectors.  dlarrv itself takes
 * an index range (DOL, DOU).  So we call the two directly: dqds for every
 * eigenvalue (we need them all for eRank anyway), vectors only for the
 * cut's smaller side.  Measured at S = 1024, p = 150: 25 ms against
 * 48 ms for dsterf + dstemr('I'), the same subspace to 1e-13.
 *
 * What dstemr does around the calls is reproduced here: scaling into a
 * safe range, the dlarrr test for relative accuracy that sets the split
 * threshold, the same tolerances.  Its final dlarrj refinement (relative
 * accuracy of the eigenvalues) is left out: eRank needs them to the
 * absolute accuracy dsytrd leaves anyway.  Only the common case is taken:
 * T does not split (one block, so dlarre's values are in ascending order
 * and DOL..DOU are the smallest ones); anything else, or any failure,
 * goes the classic way (dsterf, dstemr, dstebz + dstein). */

extern void dlarrr_(const lapack_int *n, const double *d, const double *e,
                    lapack_int *info);
extern void dlarre_(const char *range, const lapack_int *n, double *vl,
                    double *vu, const lapack_int *il, const lapack_int *iu,
                    double *d, double *e, double *e2, const double *rtol1,
                    const double *rtol2, const double *spltol,
                    lapack_int *nsplit, lapack_int *isplit, lapack_int *m,
                    double *w, double *werr, double *wgap,
                    lapack_int *iblock, lapack_int *indexw, double *gers,
                    double *pivmin, double *work, lapack_int *iwork,
                    lapack_int *info, size_t range_len);
extern void dlarrv_(const lapack_int *n, const double *vl, const double *vu,
                    double *d, double *l, const double *pivmin,
                    const lapack_int *isplit, const lapack_int *m,
                    const lapack_int *dol, const lapack_int *dou,
                    const double *minrgp, const double *rtol1,
                    const double *rtol2, double *w, double *werr,
                    double *wgap, const lapack_int *iblock,
                    const lapack_int *indexw, const double *gers, double *z,
                    const lapack_int *ldz, lapack_int *isuppz, double *work,
                    lapack_int *iwork, lapack_int *info);

typedef struct mrrr {
    lapack_int n, m;
    double *d, *e, *w, *werr, *wgap, *gers, *work;
    lapack_int *isplit, *iblock, *indexw, *isuppz, *iwork;
    double vl, vu, pivmin, scale, rtol1, rtol2;
    double *mem;
    lapack_int *imem;
} mrrr;

static void mrrr_free(mrrr *R)
{
    free(R->mem);
    free(R->imem);
    memset(R, 0, sizeof *R);
}

/* Root representation and all eigenvalues of sign * T (T = (d, e), S >=
 * 3), ascending, into lam (S, unscaled).  0 on success; -1 when this
 * route does not apply or failed (the caller takes the classic one). */
static int mrrr_values(mrrr *R, size_t S, const double *d, const double *e,
                       double sign, double *lam)
{
    mrrr_free(R);
    R->n = (lapack_int)S;
    R->mem = tb_alloc_array(S, 21 * sizeof(double));
    R->imem = tb_alloc_array(S, 12 * sizeof(lapack_int));
    if (!R->mem || !R->imem)
        return -1;
    double *m0 = R->mem;
    R->d = m0;
    R->e = m0 + S;
    R->w = m0 + 2 * S;
    R->gers = m0 + 3 * S; /* 2S */
    R->werr = m0 + 5 * S;
    R->wgap = m0 + 6 * S;
    double *e2 = m0 + 7 * S;
    R->work = m0 + 8 * S; /* 12S for dlarrv, 6S for dlarre */
    lapack_int *i0 = R->imem;
    R->isplit = i0;
    R->iblock = i0 + S;
    R->indexw = i0 + 2 * S;
    R->isuppz = i0 + 3 * S; /* 2S */
    R->iwork = i0 + 5 * S;  /* 7S */

    const double eps = DBL_EPSILON, safmin = DBL_MIN;
    const double smlnum = safmin / eps, bignum = 1.0 / smlnum;
    const double rmin = sqrt(smlnum),
                 rmax = fmin(sqrt(bignum), 1.0 / sqrt(sqrt(safmin)));
    double tnrm = 0.0;
    for (size_t i = 0; i < S; i++) {
        R->d[i] = sign * d[i];
        tnrm = fmax(tnrm, fabs(d[i]));
    }
    for (size_t i = 0; i + 1 < S; i++) {
        R->e[i] = sign * e[i];
        tnrm = fmax(tnrm, fabs(e[i]));
    }
    R->e[S - 1] = 0.0;
    if (!isfinite(tnrm))
        return -1;
    R->scale = 1.0;
    if (tnrm > 0.0 && tnrm < rmin)
        R->scale = rmin / tnrm;
    else if (tnrm > rmax)
        R->scale = rmax / tnrm;
    if (R->scale != 1.0)
        for (size_t i = 0; i < S; i++) {
            R->d[i] *= R->scale;
            R->e[i] *= R->scale;
        }
    lapack_int info = 0;
    dlarrr_(&R->n, R->d, R->e, &info);
    double thresh = info == 0 ? eps : -eps;
    for (size_t i = 0; i + 1 < S; i++)
        e2[i] = R->e[i] * R->e[i];
    R->rtol1 = sqrt(eps);
    R->rtol2 = fmax(sqrt(eps) * 5e-3, 4 * eps);
    lapack_int il = 1, iu = R->n, nsplit = 0;
    R->vl = R->vu = 0.0;
    dlarre_("A", &R->n, &R->vl, &R->vu, &il, &iu, R->d, R->e, e2, &R->rtol1,
            &R->rtol2, &thresh, &nsplit, R->isplit, &R->m, R->w, R->werr,
            R->wgap, R->iblock, R->indexw, R->gers, &R->pivmin, R->work,
            R->iwork, &info, 1);
    if (info != 0 || nsplit != 1 || R->m != R->n)
        return -1;
    /* One block: its shift sits in e[S-1]. */
    double sigma = R->e[S - 1];
    for (size_t i = 0; i < S; i++) {
        lam[i] = (R->w[i] + sigma) / R->scale;
        if (i && !(lam[i] >= lam[i - 1]))
            return -1;
    }
    return 0;
}

/* Eigenvectors 1..p (the p smallest of sign * T) into z (ldz x (p+1): dlarrv
 * uses one column past the range as workspace). */
static int mrrr_vectors(mrrr *R, lapack_int p, double *z, lapack_int ldz)
{
    lapack_int dol = 1, dou = p, info = 0;
    const double minrgp = 1e-3;
    dlarrv_(&R->n, &R->vl, &R->vu, R->d, R->e, &R->pivmin, R->isplit, &R->m,
            &dol, &dou, &minrgp, &R->rtol1, &R->rtol2, R->w, R->werr,
            R->wgap, R->iblock, R->indexw, R->gers, z, &ldz, R->isuppz,
            R->work, R->iwork, &info);
    return info == 0 ? 0 : -1;
}

unsigned tb_spectrum_skip = 0;

/* Eigenvectors il..iu (1-based, ascending order) of the tridiagonal (d, e)
 * into z (S x p, leading dimension ldz); dstemr first, bisection + inverse
 * iteration if it fails.  *route says which gave them. */
static int tridiag_vectors(size_t S, const double *d, const double *e,
                           lapack_int il, lapack_int iu, double *z,
                           lapack_int ldz, tb_vectors_route *route)
{
    lapack_int n = (lapack_int)S, p = iu - il + 1, m = 0;
    double *dd = malloc(S * sizeof *dd), *ee = malloc(S * sizeof *ee);
    double *w = malloc(S * sizeof *w);
    lapack_int *isuppz = malloc(2 * (size_t)p * sizeof *isuppz);
    int rc = -1;
    if (!dd || !ee || !w || !isuppz)
        goto out;
    memcpy(dd, d, S * sizeof *dd);
    memcpy(ee, e, (S - 1) * sizeof *ee);
    ee[S - 1] = 0.0;
    lapack_logical tryrac = 1;
    *route = TB_VECTORS_DSTEMR;
    rc = tb_spectrum_skip & TB_SKIP_DSTEMR
             ? -1
             : LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', n, dd, ee, 0.0,
                              0.0, il, iu, &m, w, z, ldz, p, isuppz, &tryrac);
    if (rc == 0 && m == p)
        goto out;
    *route = TB_VECTORS_DSTEIN;
    /* MRRR can fail on pathological clusters; the classical route is
     * slower but robust. */
    lapack_int nsplit = 0;
    lapack_int *iblock = malloc(S * sizeof *iblock);
    lapack_int *isplit = malloc(S * sizeof *isplit);
    lapack_int *ifail = malloc((size_t)p * sizeof *ifail);
    rc = -1;
    if (iblock && isplit && ifail) {
        rc = LAPACKE_dstebz('I', 'B', n, 0.0, 0.0, il, iu, 0.0, d, e, &m,
                            &nsplit, w, iblock, isplit);
        if (rc == 0 && m == p)
            rc = LAPACKE_dstein(LAPACK_COL_MAJOR, n, d, e, m, w, iblock,
                                isplit, z, ldz, ifail);
        else if (rc == 0)
            rc = -1;
    }
    free(iblock);
    free(isplit);
    free(ifail);
out:
    free(dd);
    free(ee);
    free(w);
    free(isuppz);
    return rc;
}

static timber_status spectrum_from_gram(unsigned route, tb_meter *meter,
                                        double *G, size_t S, size_t ld,
                                        int want_basis, tb_spectrum *out,
                                        const char *what, timber_error *err);

unsigned tb_spectrum_force_route = 0;

/* Sweeps of Q2 grouped 16 at a time and applied by tridiag2.c's own
 * kernel on Z transposed (method 2): measured at S = 4096 against the
 * same groups as compact-WY blocks by DGEMM (method 1) and dlarfb, and
 * against groups of 8, 32 and 64 (docs/performance.md, "Large
 * matrices"). */
#define TB_Q2_BLOCK 16
#define TB_Q2_METHOD 2

unsigned tb_spectrum_route(size_t S)
{
    if (tb_spectrum_force_route)
        return tb_spectrum_force_route;
    return S >= TB_TWOSTAGE_MIN_S ? TB_ROUTE_TWOSTAGE : TB_ROUTE_MRRR;
}

const char *tb_spectrum_route_name(unsigned route)
{
    switch (route) {
    case TB_ROUTE_MRRR:
        return "dsytrd-mrrr";
    case TB_ROUTE_TWOSTAGE:
        return "sy2sb-chase-mrrr-2";
    }
    return NULL;
}

/* The eigen-solves run on one BLAS thread whatever the caller's setting:
 * LAPACK's level-2 kernels (dsymv in dsytrd) may sum in another order on
 * more threads, and the output must not depend on --threads.  They are
 * sequential and memory-bound anyway; the parallel work is the Gram and the
 * update, whose GEMM/SYRK kernels split only the output, never a sum. */
timber_status tb_spectrum_from_gram_on(unsigned route, tb_meter *meter,
                                       double *G, size_t S, size_t ld,
                                       int want_basis, tb_spectrum *out,
                                       const char *what, timber_error *err)
{
    int threads = openblas_get_num_threads();
    if (threads != 1)
        openblas_set_num_threads(1);
    timber_status st = spectrum_from_gram(route, meter, G, S, ld, want_basis,
                                          out, what, err);
    if (threads != 1)
        openblas_set_num_threads(threads);
    return st;
}

timber_status tb_spectrum_from_gram(double *G, size_t S, size_t ld,
                                    int want_basis, tb_spectrum *out,
                                    const char *what, timber_error *err)
{
    return tb_spectrum_from_gram_on(tb_spectrum_route(S), NULL, G, S, ld,
                                    want_basis, out, what, err);
}

/* LAPACK's workspace query, then the workspace itself. */
static double *query_work(double q, lapack_int *lwork)
{
    *lwork = q >= 1.0 ? (lapack_int)q : 1;
    return tb_alloc_array((size_t)*lwork, sizeof(double));
}

static timber_status spectrum_from_gram(unsigned route, tb_meter *meter,
                                        double *G, size_t S, size_t ld,
                                        int want_basis, tb_spectrum *out,
                                        const char *what, timber_error *err)
{
    memset(out, 0, sizeof *out);
    out->S = S;
    out->route = route;
    /* tb_spectrum_route's, never a file's */
    assert(route == TB_ROUTE_MRRR || route == TB_ROUTE_TWOSTAGE);
    if (S == 0)
        return TIMBER_OK;
    if (S > (size_t)INT32_MAX / 24 || ld > (size_t)INT32_MAX)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "tensor '%s': %zu singular values is beyond LAPACK's "
                       "32-bit sizes",
                       what, S);
    lapack_int n = (lapack_int)S, lda = (lapack_int)ld;
    double *d = malloc(S * sizeof *d);
    double *e = malloc(S * sizeof *e);
    double *tau = malloc(S * sizeof *tau);
    double *lam = malloc(S * sizeof *lam);
    double *z = NULL, *work = NULL;
    mrrr R = {0};
    tb_q2 q2 = {0};
    size_t band_b = 1; /* Q's reflectors lie below this subdiagonal */
    lapack_int info;
    out->s = malloc(S * sizeof *out->s);
    timber_status st = TIMBER_OK;
    if (!d || !e || !tau || !lam || !out->s)
        goto nomem;
    tb_meter_phase(meter, TIMBER_PHASE_REDUCE);
    int two = route == TB_ROUTE_TWOSTAGE && S >= 3;
    if (two) {
        /* dense -> band (Q1 left in G below the band, tau), band ->
         * tridiagonal (Q2 kept in q2) */
        band_b = TB_TWOSTAGE_BAND < S - 1 ? TB_TWOSTAGE_BAND : S - 1;
        size_t ldab = 2 * band_b + 1;
        double *AB = tb_alloc_array(S, ldab * sizeof(double));
        if (!AB)
            goto nomem;
        int rc = tb_sy2sb(S, band_b, G, ld, AB, ldab, tau);
        if (rc == 0)
            rc = tb_band_chase(S, band_b, AB, ldab, d, e, &q2);
        free(AB);
        if (rc < 0)
            goto nomem;
        info = rc;
    } else {
        /* The _work entry points: LAPACKE's others first scan G for NaN,
         * and the caller has already checked every input element. */
        double q = 0.0;
        lapack_int lwork;
        info = LAPACKE_dsytrd_work(LAPACK_COL_MAJOR, 'L', n, G, lda, d, e,
                                   tau, &q, -1);
        if (info == 0 && !(work = query_work(q, &lwork)))
            goto nomem;
        if (info == 0)
            info = LAPACKE_dsytrd_work(LAPACK_COL_MAJOR, 'L', n, G, lda, d,
                                       e, tau, work, lwork);
        free(work);
        work = NULL;
    }
    if (info != 0) {
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': %s failed (info %d) on the %zux%zu "
                     "Gram matrix",
                     what, two ? "dsytrd_sy2sb" : "dsytrd", (int)info, S, S);
        goto out;
    }
    e[S - 1] = 0.0;
    tb_meter_phase(meter, TIMBER_PHASE_VALUES);
    int fast = S >= 3 && !(tb_spectrum_skip & TB_SKIP_DQDS) &&
               mrrr_values(&R, S, d, e, 1.0, lam) == 0;
    out->values_route = fast ? TB_VALUES_DQDS : TB_VALUES_DSTERF;
    if (!fast) {
        memcpy(lam, d, S * sizeof *lam);
        double *ework = malloc(S * sizeof *ework);
        if (!ework)
            goto nomem;
        memcpy(ework, e, S * sizeof *ework);
        info = LAPACKE_dsterf(n, lam, ework);
        free(ework);
        if (info != 0) {
            st = tb_fail(err, TIMBER_ERR_NUMERIC,
                         "tensor '%s': dsterf failed (info %d) on %zu "
                         "eigenvalues",
                         what, (int)info, S);
            goto out;
        }
    }
    /* Ascending eigenvalues -> descending singular values.  Rounding can
     * leave the smallest eigenvalues slightly negative: they are zeros. */
    double total2 = 0.0;
    for (size_t i = 0; i < S; i++) {
        double l = lam[S - 1 - i];
        out->s[i] = l > 0.0 ? sqrt(l) : 0.0;
        total2 += l > 0.0 ? l : 0.0;
    }
    out->erank = tb_erank(out->s, S);
    out->k = tb_cutoff(out->erank, S);
    double tail2 = 0.0;
    for (size_t i = out->k; i < S; i++)
        tail2 += out->s[i] * out->s[i];
    out->tail_energy = total2 > 0.0 ? tail2 / total2 : 0.0;

    size_t tail = S - out->k, head = out->k;
    out->tail_side = tail <= head;
    out->p = out->tail_side ? tail : head;
    if (!want_basis || out->p == 0)
        goto out;
    lapack_int p = (lapack_int)out->p, ldz = (lapack_int)tb_gram_ld(S);
    out->basis = tb_alloc_array(S * out->p, sizeof(double));
    /* No need to zero z: every route writes the columns it returns. */
    z = tb_alloc_array((size_t)ldz * (out->p + 1), sizeof(double));
    if (!out->basis || !z)
        goto nomem;
    tb_meter_phase(meter, TIMBER_PHASE_VECTORS);
    /* The head is the smallest p eigenvalues of -T: same vectors. */
    int done = fast &&
               (out->tail_side || mrrr_values(&R, S, d, e, -1.0, lam) == 0) &&
               mrrr_vectors(&R, p, z, ldz) == 0;
    /* Ascending order: the tail (smallest S-k) is 1..S-k, the head (the
     * largest k) is S-k+1..S. */
    lapack_int il = out->tail_side ? 1 : (lapack_int)(S - out->k + 1);
    lapack_int iu = out->tail_side ? (lapack_int)tail : n;
    out->vectors_route = TB_VECTORS_DLARRV;
    if (!done &&
        tridiag_vectors(S, d, e, il, iu, z, ldz, &out->vectors_route) != 0) {
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': tridiagonal eigenvectors %d..%d of %zu "
                     "failed",
                     what, (int)il, (int)iu, S);
        goto out;
    }
    tb_meter_phase(meter, TIMBER_PHASE_BACK);
    if (two && tb_q2_apply(&q2, TB_Q2_BLOCK, TB_Q2_METHOD, z, (size_t)ldz,
                           out->p) != 0)
        goto nomem;
    /* Q (dsytrd: reflectors below the first subdiagonal) or Q1 (below
     * the band) */
    if (tb_q1_apply(S, band_b, out->p, G, ld, tau, z, (size_t)ldz) != 0)
        goto nomem;
    for (size_t j = 0; j < out->p; j++)
        memcpy(out->basis + j * S, z + j * (size_t)ldz, S * sizeof(double));
    goto out;
nomem:
    st = tb_fail(err, TIMBER_ERR_NOMEM,
                 "tensor '%s': out of memory for the spectrum of a %zux%zu "
                 "Gram matrix",
                 what, S, S);
out:
    mrrr_free(&R);
    tb_q2_free(&q2);
    free(d);
    free(e);
    free(tau);
    free(lam);
    free(z);
    free(work);
    if (st)
        tb_spectrum_clear(out);
    return st;
}
