/*
 * spectrum.c — singular values, eRank, k and the tail/head basis of one
 * delta matrix from its Gram matrix (see spectrum.h).
 *
 * Route (measured in docs/numerics.md): dsytrd reduces G to tridiagonal
 * form; dsterf gives all eigenvalues; dstemr (MRRR) computes only the
 * eigenvectors of the smaller side of the cut, and dormtr maps them back.
 * U is never formed.  dsyevr is not used for the subset: with RANGE='I' it
 * falls back to bisection and inverse iteration, which is slower.
 */
#include "spectrum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

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

/* Eigenvectors il..iu (1-based, ascending order) of the tridiagonal (d, e)
 * into z (S x p); MRRR first, bisection + inverse iteration if it fails. */
static int tridiag_vectors(size_t S, const double *d, const double *e,
                           lapack_int il, lapack_int iu, double *z)
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
    rc = LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', n, dd, ee, 0.0, 0.0, il,
                        iu, &m, w, z, n, p, isuppz, &tryrac);
    if (rc == 0 && m == p)
        goto out;
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
                                isplit, z, n, ifail);
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

static timber_status spectrum_from_gram(double *G, size_t S, int want_basis,
                                        tb_spectrum *out, const char *what,
                                        timber_error *err);

/* The eigen-solves run on one BLAS thread whatever the caller's setting:
 * LAPACK's level-2 kernels (dsymv in dsytrd) may sum in another order on
 * more threads, and the output must not depend on --threads.  They are
 * sequential and memory-bound anyway; the parallel work is the Gram and the
 * update, whose GEMM/SYRK kernels split only the output, never a sum. */
timber_status tb_spectrum_from_gram(double *G, size_t S, int want_basis,
                                    tb_spectrum *out, const char *what,
                                    timber_error *err)
{
    int threads = openblas_get_num_threads();
    if (threads != 1)
        openblas_set_num_threads(1);
    timber_status st = spectrum_from_gram(G, S, want_basis, out, what, err);
    if (threads != 1)
        openblas_set_num_threads(threads);
    return st;
}

static timber_status spectrum_from_gram(double *G, size_t S, int want_basis,
                                        tb_spectrum *out, const char *what,
                                        timber_error *err)
{
    memset(out, 0, sizeof *out);
    out->S = S;
    if (S == 0)
        return TIMBER_OK;
    if (S > (size_t)INT32_MAX / 2)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "tensor '%s': %zu singular values is beyond LAPACK's "
                       "32-bit sizes",
                       what, S);
    lapack_int n = (lapack_int)S;
    double *d = malloc(S * sizeof *d);
    double *e = malloc(S * sizeof *e);
    double *tau = malloc(S * sizeof *tau);
    double *lam = malloc(S * sizeof *lam);
    double *ework = malloc(S * sizeof *ework);
    out->s = malloc(S * sizeof *out->s);
    timber_status st = TIMBER_OK;
    if (!d || !e || !tau || !lam || !ework || !out->s) {
        st = tb_fail(err, TIMBER_ERR_NOMEM,
                     "tensor '%s': out of memory for %zu singular values",
                     what, S);
        goto out;
    }
    lapack_int info = LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', n, G, n, d, e,
                                     tau);
    if (info != 0) {
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': dsytrd failed (info %d) on the %zux%zu "
                     "Gram matrix",
                     what, (int)info, S, S);
        goto out;
    }
    memcpy(lam, d, S * sizeof *lam);
    if (S > 1)
        memcpy(ework, e, (S - 1) * sizeof *ework);
    info = LAPACKE_dsterf(n, lam, ework);
    if (info != 0) {
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': dsterf failed (info %d) on %zu "
                     "eigenvalues",
                     what, (int)info, S);
        goto out;
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
    out->basis = tb_alloc_array(S * out->p, sizeof(double));
    if (!out->basis) {
        st = tb_fail(err, TIMBER_ERR_NOMEM,
                     "tensor '%s': out of memory for a %zux%zu basis", what,
                     S, out->p);
        goto out;
    }
    /* Ascending order: the tail (smallest S-k) is 1..S-k, the head (the
     * largest k) is S-k+1..S. */
    lapack_int il = out->tail_side ? 1 : (lapack_int)(S - out->k + 1);
    lapack_int iu = out->tail_side ? (lapack_int)tail : n;
    if (tridiag_vectors(S, d, e, il, iu, out->basis) != 0) {
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': tridiagonal eigenvectors %d..%d of %zu "
                     "failed",
                     what, (int)il, (int)iu, S);
        goto out;
    }
    info = LAPACKE_dormtr(LAPACK_COL_MAJOR, 'L', 'L', 'N', n,
                          (lapack_int)out->p, G, n, tau, out->basis, n);
    if (info != 0)
        st = tb_fail(err, TIMBER_ERR_NUMERIC,
                     "tensor '%s': dormtr failed (info %d)", what, (int)info);
out:
    free(d);
    free(e);
    free(tau);
    free(lam);
    free(ework);
    if (st)
        tb_spectrum_clear(out);
    return st;
}
