/*
 * test_spectrum.c — the numerical core of src/spectrum.c on Gram matrices
 * whose eigen-decomposition is known (G = Q diag(lambda) Q^T, Q a random
 * orthogonal matrix):
 *   - tb_erank and tb_cutoff on values known in closed form;
 *   - singular values, eRank, k and tail energy against lambda;
 *   - the basis: orthonormal, and spanning exactly the eigenvectors of the
 *     cut's smaller side (tail or head), by its residual G v - lambda v;
 *   - which route each case took, asserted through the spectrum's route
 *     indicator: dqds + dlarrv (the common case), the split-matrix
 *     fallback (a block-diagonal G makes the tridiagonal form split, so
 *     dsterf + dstemr), S < 3, and dstebz + dstein (forced with
 *     tb_spectrum_skip, since dstemr does not fail on any matrix we can
 *     build); every route gives the same spectrum and subspace;
 *   - the degenerate cases: D = 0, equal singular values (k = r), S = 0;
 *   - the two-stage reduction (tridiag2.c, forced below its threshold
 *     with tb_spectrum_force_route): Q2 alone on random band matrices
 *     (Q2^T B Q2 tridiagonal, Q2 orthogonal, blocked == one reflector at
 *     a time), then whole spectra whose residual, orthogonality and
 *     subspace match the one-stage route's, bit-identical on 1 and 2
 *     BLAS threads; and the route a given S takes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "spectrum.h"
#include "tridiag2.h"
#include "testutil.h"

static uint64_t rng = 4242;

/* Q (S x S) random orthogonal (row- or column-major alike: Q^T is
 * orthogonal too). */
static double *random_q(size_t S)
{
    return tu_random_orthonormal(&rng, S, S);
}

/* G = Q diag(lam) Q^T into a fresh S x ld buffer (symmetric, so either
 * triangle convention holds).  blocks > 1: Q is block diagonal, so the
 * tridiagonal form of G splits. */
static double *gram_of(const double *lam, size_t S, size_t ld, int blocks,
                       double **q_out)
{
    double *Q = calloc(S * S, sizeof *Q);
    size_t b0 = 0;
    for (int b = 0; b < blocks; b++) {
        size_t nb = b + 1 < blocks ? S / (size_t)blocks : S - b0;
        double *q = random_q(nb);
        for (size_t j = 0; j < nb; j++)
            for (size_t i = 0; i < nb; i++)
                Q[(b0 + j) * S + b0 + i] = q[j * nb + i];
        free(q);
        b0 += nb;
    }
    double *G = calloc(S * ld, sizeof *G);
    for (size_t j = 0; j < S; j++)
        for (size_t i = 0; i < S; i++) {
            double v = 0;
            for (size_t k = 0; k < S; k++)
                v += Q[k * S + i] * lam[k] * Q[k * S + j];
            G[j * ld + i] = v;
        }
    *q_out = Q;
    return G;
}

static double erank_of(const double *lam, size_t S)
{
    double s[1024];
    for (size_t i = 0; i < S; i++)
        s[i] = lam[i] > 0 ? sqrt(lam[i]) : 0;
    return tb_erank(s, S);
}

typedef struct expect {
    tb_values_route values;
    tb_vectors_route vectors;
} expect;

/* Computes the spectrum of G = Q diag(lam) Q^T and checks it against lam
 * (given in descending order); returns the spectrum for comparisons. */
static tb_spectrum check_case(const char *what, const double *lam, size_t S,
                              int blocks, expect want)
{
    size_t ld = tb_gram_ld(S);
    double *Q = NULL;
    double *G = gram_of(lam, S, ld, blocks, &Q);
    double *G0 = malloc(S * ld * sizeof *G0);
    memcpy(G0, G, S * ld * sizeof *G0);
    tb_spectrum sp;
    timber_error err;
    timber_status st = tb_spectrum_from_gram(G, S, ld, 1, &sp, what, &err);
    if (!CHECK_OK(what, st, &err)) {
        free(G);
        free(G0);
        free(Q);
        memset(&sp, 0, sizeof sp);
        return sp;
    }
    CHECKF(sp.values_route == want.values && sp.vectors_route == want.vectors,
           "%s: routes %d/%d, expected %d/%d", what, sp.values_route,
           sp.vectors_route, want.values, want.vectors);
    CHECKF(sp.route == tb_spectrum_route(S), "%s: route %u, expected %u",
           what, sp.route, tb_spectrum_route(S));
    double smax = lam[0] > 0 ? sqrt(lam[0]) : 0;
    double worst = 0;
    for (size_t i = 0; i < S; i++) {
        double s = lam[i] > 0 ? sqrt(lam[i]) : 0;
        /* through G, a singular value is good to eps * s_max / s */
        double e = fabs(sp.s[i] - s);
        worst = fmax(worst, e);
    }
    CHECKF(worst <= 1e-7 * smax, "%s: singular values off by %.3g (max %.3g)",
           what, worst, smax);
    double er = erank_of(lam, S);
    CHECKF(fabs(sp.erank - er) <= 1e-9 * er, "%s: eRank %.15g, expected %.15g",
           what, sp.erank, er);
    CHECKF(sp.k == tb_cutoff(er, S), "%s: k %zu", what, sp.k);
    size_t tail = S - sp.k;
    CHECKF(sp.tail_side == (tail <= sp.k) &&
               sp.p == (sp.tail_side ? tail : sp.k),
           "%s: side %d, p %zu", what, sp.tail_side, sp.p);
    /* Basis: orthonormal columns, each an eigenvector of G0 whose
     * eigenvalue is on the right side of the cut. */
    double ortho = 0, resid = 0;
    for (size_t a = 0; a < sp.p; a++) {
        const double *va = sp.basis + a * S;
        for (size_t b = 0; b <= a; b++) {
            const double *vb = sp.basis + b * S;
            double dot = 0;
            for (size_t i = 0; i < S; i++)
                dot += va[i] * vb[i];
            ortho = fmax(ortho, fabs(dot - (a == b)));
        }
        /* the projection onto the side's eigenvectors is all of va */
        double inside = 0;
        size_t lo = sp.tail_side ? sp.k : 0, hi = sp.tail_side ? S : sp.k;
        for (size_t k = lo; k < hi; k++) {
            double dot = 0;
            for (size_t i = 0; i < S; i++)
                dot += Q[k * S + i] * va[i];
            inside += dot * dot;
        }
        resid = fmax(resid, fabs(1.0 - inside));
    }
    /* residual |G v - mu v|, mu = v^T G v, against the largest eigenvalue */
    double gres = 0;
    double *gv = malloc(S * sizeof *gv);
    for (size_t a = 0; a < sp.p; a++) {
        const double *va = sp.basis + a * S;
        double mu = 0;
        for (size_t i = 0; i < S; i++) {
            double acc = 0;
            for (size_t j = 0; j < S; j++)
                acc += G0[j * ld + i] * va[j];
            gv[i] = acc;
            mu += acc * va[i];
        }
        for (size_t i = 0; i < S; i++)
            gres = fmax(gres, fabs(gv[i] - mu * va[i]));
    }
    free(gv);
    CHECKF(gres <= 1e-12 * fmax(lam[0], 1e-300), "%s: residual %.3g of %.3g",
           what, gres, lam[0]);
    CHECKF(ortho <= 1e-12, "%s: basis not orthonormal (%.3g)", what, ortho);
    CHECKF(resid <= 1e-9, "%s: basis leaves its side by %.3g", what, resid);
    free(G);
    free(G0);
    free(Q);
    return sp;
}

/* Two spectra from different routes: the same values and subspace. */
static void check_same(const char *what, const tb_spectrum *a,
                       const tb_spectrum *b)
{
    CHECKF(a->S == b->S && a->k == b->k && a->p == b->p, "%s: shapes", what);
    if (a->S != b->S || a->p != b->p)
        return;
    double ds = 0;
    for (size_t i = 0; i < a->S; i++)
        ds = fmax(ds, fabs(a->s[i] - b->s[i]));
    CHECKF(ds <= 1e-10 * a->s[0], "%s: values differ by %.3g", what, ds);
    /* projector difference || A A^T - B B^T ||_max */
    double dp = 0;
    size_t S = a->S;
    for (size_t i = 0; i < S; i++)
        for (size_t j = 0; j < S; j++) {
            double pa = 0, pb = 0;
            for (size_t c = 0; c < a->p; c++) {
                pa += a->basis[c * S + i] * a->basis[c * S + j];
                pb += b->basis[c * S + i] * b->basis[c * S + j];
            }
            dp = fmax(dp, fabs(pa - pb));
        }
    CHECKF(dp <= 1e-9, "%s: subspaces differ by %.3g", what, dp);
}

static void test_erank_cutoff(void)
{
    double eq[5] = {2, 2, 2, 2, 2};
    CHECK(fabs(tb_erank(eq, 5) - 5.0) < 1e-14);
    double one[4] = {0, 3, 0, 0};
    CHECK(fabs(tb_erank(one, 4) - 1.0) < 1e-15);
    double zero[3] = {0, 0, 0};
    CHECK(tb_erank(zero, 3) == 0.0);
    /* p = (1/2, 1/4, 1/4): H = 1.5 ln 2, eRank = 2^1.5 */
    double s3[3] = {1, 2, 1};
    CHECK(fabs(tb_erank(s3, 3) - pow(2.0, 1.5)) < 1e-14);
    CHECK(tb_cutoff(0.0, 5) == 0);
    CHECK(tb_cutoff(NAN, 5) == 0);
    CHECK(tb_cutoff(2.0, 5) == 2);
    CHECK(tb_cutoff(2.0000001, 5) == 3);
    CHECK(tb_cutoff(4.9, 5) == 5);
    CHECK(tb_cutoff(7.0, 5) == 5);
}

static void test_routes(void)
{
    enum { S = 60 };
    double flat[S], steep[S];
    for (size_t i = 0; i < S; i++) {
        flat[i] = pow(1.0 + 0.02 * (double)(S - i), 2) * 1e-4;
        steep[i] = 1e-2 * exp(-0.25 * (double)i);
    }
    const expect common = {TB_VALUES_DQDS, TB_VECTORS_DLARRV};
    const expect split = {TB_VALUES_DSTERF, TB_VECTORS_DSTEMR};
    const expect stein = {TB_VALUES_DSTERF, TB_VECTORS_DSTEIN};

    /* flat: eRank near r, the tail side */
    tb_spectrum a = check_case("flat", flat, S, 1, common);
    CHECK(a.tail_side == 1);
    /* steep: a few strong directions, the head side (-T for dlarrv) */
    tb_spectrum b = check_case("steep", steep, S, 1, common);
    CHECK(b.tail_side == 0);

    /* block diagonal: T splits, dlarre's one-block route does not apply */
    rng = 4242;
    tb_spectrum c = check_case("flat, split", flat, S, 3, split);
    rng = 4242;
    tb_spectrum d = check_case("steep, split", steep, S, 2, split);

    /* dstebz + dstein, forced */
    tb_spectrum_skip = TB_SKIP_DQDS | TB_SKIP_DSTEMR;
    rng = 4242;
    tb_spectrum e = check_case("flat, dstein", flat, S, 3, stein);
    rng = 4242;
    tb_spectrum f = check_case("steep, dstein", steep, S, 2, stein);
    /* dsterf + dstemr on an unsplit matrix */
    tb_spectrum_skip = TB_SKIP_DQDS;
    rng = 4242;
    tb_spectrum g = check_case("flat, dstemr", flat, S, 1, split);
    tb_spectrum_skip = 0;

    check_same("split: dstemr vs dstein (flat)", &c, &e);
    check_same("split: dstemr vs dstein (steep)", &d, &f);
    (void)g;
    tb_spectrum *all[] = {&a, &b, &c, &d, &e, &f, &g};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tb_spectrum_clear(all[i]);

    /* the same matrix through every route: one subspace */
    rng = 99;
    tb_spectrum r1 = check_case("steep again", steep, S, 1, common);
    tb_spectrum_skip = TB_SKIP_DQDS;
    rng = 99;
    tb_spectrum r2 = check_case("steep, dstemr", steep, S, 1, split);
    tb_spectrum_skip = TB_SKIP_DQDS | TB_SKIP_DSTEMR;
    rng = 99;
    tb_spectrum r3 = check_case("steep, dstein", steep, S, 1, stein);
    tb_spectrum_skip = 0;
    check_same("dlarrv vs dstemr", &r1, &r2);
    check_same("dlarrv vs dstein", &r1, &r3);
    tb_spectrum_clear(&r1);
    tb_spectrum_clear(&r2);
    tb_spectrum_clear(&r3);
}

static void test_small_and_degenerate(void)
{
    timber_error err;
    /* S = 2 (< 3): dsterf; eRank 1.89, so k = 2 = r and no basis */
    double two[2] = {4e-4, 1e-4};
    tb_spectrum s2 = check_case("S = 2", two, 2, 1,
                                (expect){TB_VALUES_DSTERF, TB_VECTORS_NONE});
    tb_spectrum_clear(&s2);
    /* S = 1: one value, k = 1 = r, no basis */
    double G1[1] = {9.0};
    tb_spectrum sp;
    CHECK_OK("S = 1", tb_spectrum_from_gram(G1, 1, 1, 1, &sp, "one", &err),
             &err);
    CHECK(sp.s[0] == 3.0 && sp.k == 1 && sp.p == 0 && !sp.basis &&
          sp.vectors_route == TB_VECTORS_NONE);
    tb_spectrum_clear(&sp);
    /* D = 0: eRank 0, k = 0, no basis, tail energy 0 */
    double Z[16] = {0};
    CHECK_OK("zero", tb_spectrum_from_gram(Z, 4, 4, 1, &sp, "zero", &err),
             &err);
    CHECK(sp.erank == 0.0 && sp.k == 0 && sp.p == 0 && !sp.basis &&
          sp.tail_energy == 0.0);
    tb_spectrum_clear(&sp);
    /* equal singular values: eRank = r, k = r, an empty tail */
    enum { E = 6 };
    double Id[E * E] = {0};
    for (int i = 0; i < E; i++)
        Id[i * E + i] = 0.25;
    CHECK_OK("equal", tb_spectrum_from_gram(Id, E, E, 1, &sp, "eq", &err),
             &err);
    CHECK(fabs(sp.erank - E) < 1e-12 && sp.k == E && sp.p == 0 &&
          !sp.basis);
    tb_spectrum_clear(&sp);
    /* S = 0 */
    CHECK_OK("empty", tb_spectrum_from_gram(NULL, 0, 0, 1, &sp, "e", &err),
             &err);
    CHECK(sp.S == 0 && sp.k == 0 && sp.values_route == TB_VALUES_NONE);
    tb_spectrum_clear(&sp);
    /* want_basis = 0: the values only */
    double lam[5] = {100, 1, 0.5, 0.1, 0.01};
    double *Q;
    double *G = gram_of(lam, 5, 5, 1, &Q);
    CHECK_OK("no basis", tb_spectrum_from_gram(G, 5, 5, 0, &sp, "nb", &err),
             &err);
    CHECK(sp.p > 0 && !sp.basis && sp.vectors_route == TB_VECTORS_NONE);
    tb_spectrum_clear(&sp);
    free(G);
    free(Q);
}


/* Q2 alone: a random symmetric band matrix B (n, bandwidth b) chased to
 * tridiagonal T; Q = Q2 I by both applications; Q^T B Q = T and Q^T Q =
 * I to rounding (Q by tridiag2.c's kernel), and every blocked
 * application equals the one reflector at a time one to rounding. */
static void check_chase(size_t n, size_t b, size_t bs)
{
    size_t ldab = 2 * b + 1;
    double *AB = calloc(n * ldab, sizeof *AB), *B = calloc(n * n, sizeof *B);
    for (size_t j = 0; j < n; j++)
        for (size_t i = j; i < n && i <= j + b; i++)
            B[j * n + i] = B[i * n + j] = AB[(i - j) + j * ldab] =
                tu_gauss(&rng);
    double *d = malloc(n * sizeof *d), *e = malloc(n * sizeof *e);
    /* the chase in plain loops first, on a copy: the AVX2 form of its
     * full blocks must give the very same band, T and reflectors */
    double *AB0 = malloc(n * ldab * sizeof *AB0), *d0 = malloc(n * sizeof *d0),
           *e0 = malloc(n * sizeof *e0);
    memcpy(AB0, AB, n * ldab * sizeof *AB0);
    tb_q2 q0;
    tb_q2_kernel_cap = 0;
    CHECK(tb_band_chase(n, b, AB0, ldab, d0, e0, &q0) == 0);
    tb_q2_kernel_cap = 2;
    tb_q2 q;
    CHECK(tb_band_chase(n, b, AB, ldab, d, e, &q) == 0);
    {
        size_t steps = q.off[q.nsweeps];
        int same = memcmp(d, d0, n * sizeof *d) == 0 &&
                   memcmp(e, e0, (n - 1) * sizeof *e) == 0 &&
                   memcmp(AB, AB0, n * ldab * sizeof *AB) == 0 &&
                   memcmp(q.tau, q0.tau, steps * sizeof *q.tau) == 0;
        /* each reflector's len = min(b, n - pos) entries (the rest of
         * its b slots is never written) */
        for (size_t j = 0; same && j < q.nsweeps; j++)
            for (size_t t = q.off[j]; t < q.off[j + 1]; t++) {
                size_t pos = j + 1 + (t - q.off[j]) * b;
                size_t len = n - pos < b ? n - pos : b;
                if (memcmp(q.v + t * b, q0.v + t * b, len * sizeof *q.v))
                    same = 0;
            }
        CHECKF(same, "chase n %zu b %zu: its AVX2 blocks and plain loops "
                     "differ", n, b);
    }
    tb_q2_free(&q0);
    free(AB0);
    free(d0);
    free(e0);
    double *Q = calloc(n * n, sizeof *Q), *Qb = calloc(n * n, sizeof *Qb);
    for (size_t i = 0; i < n; i++)
        Q[i * n + i] = Qb[i * n + i] = 1.0;
    CHECK(tb_q2_apply(&q, 0, 0, Q, n, n) == 0);
    double *Qc = calloc(n * n, sizeof *Qc);
    for (size_t i = 0; i < n; i++)
        Qc[i * n + i] = 1.0;
    /* dlarfb and the transposed DGEMM application: the same to rounding */
    CHECK(tb_q2_apply(&q, bs, 0, Qc, n, n) == 0);
    CHECK(tb_q2_apply(&q, bs, 1, Qb, n, n) == 0);
    /* tridiag2.c's kernel (what spectrum.c uses), in its vector form where
     * the CPU has one and in plain C; n columns are never a whole number
     * of its chunks here, so its padding is exercised too */
    double *Qk = calloc(n * n, sizeof *Qk), *Qp = calloc(n * n, sizeof *Qp),
           *Q2 = calloc(n * n, sizeof *Q2);
    for (size_t i = 0; i < n; i++)
        Qk[i * n + i] = Qp[i * n + i] = Q2[i * n + i] = 1.0;
    CHECK(tb_q2_apply(&q, bs, 2, Qk, n, n) == 0);
    tb_q2_kernel_cap = 0;
    CHECK(tb_q2_apply(&q, bs, 2, Qp, n, n) == 0);
    /* AVX2 where the CPU has AVX-512: the very same bits */
    tb_q2_kernel_cap = 1;
    CHECK(tb_q2_apply(&q, bs, 2, Q2, n, n) == 0);
    tb_q2_kernel_cap = 2;
    CHECKF(memcmp(Qk, Q2, n * n * sizeof *Qk) == 0,
           "chase n %zu b %zu: the AVX-512 and AVX2 Q2 kernels differ", n, b);
    free(Q2);
    double *BQ = malloc(n * n * sizeof *BQ), *T = malloc(n * n * sizeof *T),
           *O = malloc(n * n * sizeof *O);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n,
                (int)n, 1.0, B, (int)n, Qk, (int)n, 0.0, BQ, (int)n);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)n, (int)n,
                (int)n, 1.0, Qk, (int)n, BQ, (int)n, 0.0, T, (int)n);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)n, (int)n,
                (int)n, 1.0, Qk, (int)n, Qk, (int)n, 0.0, O, (int)n);
    double dt = 0, dorth = 0, dq = 0, bmax = 0;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) {
            double want = i == j ? d[i] : i == j + 1 ? e[j]
                                      : j == i + 1   ? e[i]
                                                     : 0.0;
            dt = fmax(dt, fabs(T[j * n + i] - want));
            dorth = fmax(dorth, fabs(O[j * n + i] - (i == j)));
            dq = fmax(dq, fabs(Q[j * n + i] - Qb[j * n + i]));
            dq = fmax(dq, fabs(Qc[j * n + i] - Qb[j * n + i]));
            dq = fmax(dq, fabs(Qk[j * n + i] - Qb[j * n + i]));
            dq = fmax(dq, fabs(Qp[j * n + i] - Qb[j * n + i]));
            bmax = fmax(bmax, fabs(B[j * n + i]));
        }
    CHECKF(dt <= 1e-13 * bmax * (double)n,
           "chase n %zu b %zu: Q2^T B Q2 - T %.3g (|B| %.3g)", n, b, dt, bmax);
    CHECKF(dorth <= 1e-13, "chase n %zu b %zu: Q2 orthogonal to %.3g", n, b,
           dorth);
    CHECKF(dq <= 1e-13, "chase n %zu b %zu bs %zu: blocked differs by %.3g",
           n, b, bs, dq);
    tb_q2_free(&q);
    free(AB);
    free(B);
    free(d);
    free(e);
    free(Q);
    free(Qb);
    free(Qc);
    free(Qk);
    free(Qp);
    free(BQ);
    free(T);
    free(O);
}

static int same_bits(const tb_spectrum *a, const tb_spectrum *b)
{
    return a->S == b->S && a->p == b->p && a->k == b->k &&
           memcmp(a->s, b->s, a->S * sizeof *a->s) == 0 &&
           (a->p == 0 ||
            memcmp(a->basis, b->basis, a->S * a->p * sizeof *a->basis) == 0);
}

static void test_twostage(void)
{
    /* the route is a function of S alone */
    CHECK(tb_spectrum_route(TB_TWOSTAGE_MIN_S - 1) == TB_ROUTE_MRRR);
    CHECK(tb_spectrum_route(TB_TWOSTAGE_MIN_S) == TB_ROUTE_TWOSTAGE);
    CHECK(tb_spectrum_route(65536) == TB_ROUTE_TWOSTAGE);
    CHECK(tb_spectrum_route(768) == TB_ROUTE_MRRR);
    /* tests/func/route.sh relies on these two */
    CHECK(tb_spectrum_route(1024) == TB_ROUTE_TWOSTAGE);
    CHECK(tb_spectrum_route(2048) == TB_ROUTE_TWOSTAGE);

    /* Q2: bandwidths 2..40, n a multiple of b or not, groups of 1..b */
    rng = 7;
    check_chase(40, 2, 1);
    check_chase(57, 3, 5);
    check_chase(100, 8, 8);
    check_chase(130, 32, 32);
    check_chase(161, 40, 17);

    /* whole spectra, forced; a one-stage spectrum of the same matrix */
    enum { S = 300 };
    double flat[S], steep[S];
    for (size_t i = 0; i < S; i++) {
        flat[i] = pow(1.0 + 0.01 * (double)(S - i), 2) * 1e-4;
        steep[i] = 1e-2 * exp(-0.08 * (double)i);
    }
    const expect common = {TB_VALUES_DQDS, TB_VECTORS_DLARRV};
    const char *name[2] = {"flat", "steep"};
    const double *lams[2] = {flat, steep};
    for (int c = 0; c < 2; c++) {
        char what[64];
        rng = 31 + (uint64_t)c;
        snprintf(what, sizeof what, "%s, one stage", name[c]);
        tb_spectrum a = check_case(what, lams[c], S, 1, common);
        tb_spectrum_force_route = TB_ROUTE_TWOSTAGE;
        rng = 31 + (uint64_t)c;
        snprintf(what, sizeof what, "%s, two stages", name[c]);
        tb_spectrum b = check_case(what, lams[c], S, 1, common);
        /* two BLAS threads where the caller has them: the same bits */
        int th = openblas_get_num_threads();
        openblas_set_num_threads(2);
        rng = 31 + (uint64_t)c;
        snprintf(what, sizeof what, "%s, two stages, 2 threads", name[c]);
        tb_spectrum b2 = check_case(what, lams[c], S, 1, common);
        openblas_set_num_threads(th);
        tb_spectrum_force_route = 0;
        CHECK(b.tail_side == (c == 0));
        CHECK(a.route == TB_ROUTE_MRRR &&
              b.route == TB_ROUTE_TWOSTAGE);
        snprintf(what, sizeof what, "%s: one stage vs two", name[c]);
        check_same(what, &a, &b);
        CHECKF(same_bits(&b, &b2), "%s: 1 and 2 threads differ", name[c]);
        tb_spectrum_clear(&a);
        tb_spectrum_clear(&b);
        tb_spectrum_clear(&b2);
    }
    /* small orders: the band is S - 1 wide, or the matrix splits */
    tb_spectrum_force_route = TB_ROUTE_TWOSTAGE;
    double small[5] = {1.0, 1e-2, 1e-4, 1e-6, 1e-8};
    rng = 5;
    tb_spectrum s5 = check_case("S = 5, two stages", small, 5, 1, common);
    tb_spectrum_clear(&s5);
    rng = 6;
    tb_spectrum sb = check_case("steep, split, two stages", steep, 120, 3,
                                (expect){TB_VALUES_DSTERF, TB_VECTORS_DSTEMR});
    tb_spectrum_clear(&sb);
    tb_spectrum_force_route = 0;
}

int main(void)
{
    test_erank_cutoff();
    test_routes();
    test_small_and_degenerate();
    test_twostage();
    return tu_report();
}
