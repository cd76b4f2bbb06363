/*
 * tridiag_bench.c — timber-tridiag-bench: times the routes from an S x S
 * Gram matrix to its tridiagonal form and back (docs/performance.md,
 * "Large matrices"), interleaved in one process and repeated, medians
 * printed.  Not a test: nothing here asserts a time.
 *
 *   timber-tridiag-bench S [REPS [B [BS]]]
 *
 * G = Q diag(s^2) Q^T with s_i = exp(-a i/S) (eRank ~ 0.86 S for the
 * default a = 2, the shape of a real fine-tuning delta; TB_DECAY=a), p =
 * S/7 vectors for the step timings.  Steps timed:
 *   one-stage:  dsytrd; Q applied to p vectors (dlarft/dlarfb, blocks 32);
 *   two-stage:  dsytrd_sy2sb (band B); the bulge chase keeping Q2
 *               (tridiag2.c); LAPACK's dsytrd_sb2st (values only, for
 *               comparison); Q2 applied reflector by reflector and blocked
 *               (BS sweeps per block); Q1 applied;
 * each on 1 and on 2 BLAS threads (the level-3 steps), and two one-thread
 * reductions run at once on two threads.  One-thread steps are timed in
 * thread CPU time (TB_WALL=1: wall time), the others in wall time.  Once, untimed: the eigenvalues
 * of both tridiagonal forms agree, and the two-stage vectors' residual
 * and orthogonality.  Last, the whole of tb_spectrum_from_gram by each
 * route, whose p follows from the spectrum (printed).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>
#include <lapacke.h>

#include "spectrum.h"
#include "tridiag2.h"

extern void dsytrd_sb2st_(const char *stage1, const char *vect,
                          const char *uplo, const lapack_int *n,
                          const lapack_int *kd, double *ab,
                          const lapack_int *ldab, double *d, double *e,
                          double *hous, const lapack_int *lhous, double *work,
                          const lapack_int *lwork, lapack_int *info, size_t,
                          size_t, size_t);

/* CPU time of this thread for the one-thread steps (less disturbed by
 * other processes on a shared machine than wall time), wall time for
 * the others (TB_WALL=1 in the environment: wall time for all). */
static int use_wall = 0;
static double clock_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void)
{
    return clock_of(use_wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID);
}
static double wall(void)
{
    return clock_of(CLOCK_MONOTONIC);
}

static uint64_t rs = 12345;
static double gauss(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        u[i] = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

enum { NSTEP = 19, MAXREP = 15 };
static const char *step_name[NSTEP] = {
    "dsytrd 1t",        "dsytrd 2t",          "Q apply (dsytrd) 1t",
    "sy2sb 1t",         "sy2sb 2t",           "chase (keeps Q2)",
    "LAPACK sb2st (N)", "Q2 one at a time",   "Q2 blocked, DGEMM on Z^T 1t",
    "Q2 blocked, DGEMM on Z^T 2t",    "Q1 apply 1t",        "Q1 apply 2t",
    "2x dsytrd at once", "2x sy2sb+chase at once",
    "Q2 blocked, dlarfb 1t", "whole spectrum, one stage",
    "whole spectrum, two stages", "Q2 kernel (method 2) 1t",
    "Q2 kernel, AVX2 at most 1t"};
static double flops_of[NSTEP];
static double t_of[NSTEP][MAXREP];

typedef struct job {
    size_t n, ld, b;
    const double *G0;
    int two;
    double secs;
} job;

static void *run_job(void *arg)
{
    job *J = arg;
    size_t n = J->n, ld = J->ld, b = J->b;
    double *G = malloc(n * ld * sizeof *G);
    double *d = malloc(n * sizeof *d), *e = malloc(n * sizeof *e),
           *tau = malloc(n * sizeof *tau);
    memcpy(G, J->G0, n * ld * sizeof *G);
    double t0 = wall();
    if (!J->two) {
        LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)n, G,
                       (lapack_int)ld, d, e, tau);
    } else {
        size_t ldab = 2 * b + 1;
        double *AB = malloc(n * ldab * sizeof *AB);
        tb_q2 q;
        tb_sy2sb(n, b, G, ld, AB, ldab, tau);
        tb_band_chase(n, b, AB, ldab, d, e, &q);
        tb_q2_free(&q);
        free(AB);
    }
    J->secs = wall() - t0;
    free(G);
    free(d);
    free(e);
    free(tau);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: timber-tridiag-bench S [REPS [B [BS]]]\n");
        return 2;
    }
    size_t n = strtoul(argv[1], NULL, 10);
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    size_t b = argc > 3 ? strtoul(argv[3], NULL, 10) : 32;
    size_t bs = argc > 4 ? strtoul(argv[4], NULL, 10) : b;
    if (n < 64 || reps < 1 || reps > MAXREP || b < 2 || bs < 1) {
        fprintf(stderr, "timber-tridiag-bench: bad arguments\n");
        return 2;
    }
    size_t ld = n % 64 == 0 ? n + 8 : n, p = n / 7, ldab = 2 * b + 1;
    int threads0 = openblas_get_num_threads();
    use_wall = getenv("TB_WALL") && atoi(getenv("TB_WALL")) == 1;
    /* TB_QUICK=1: one-thread steps only (no 2-thread, concurrent or
     * one-reflector-at-a-time runs), for the largest orders */
    int quick = getenv("TB_QUICK") && atoi(getenv("TB_QUICK")) == 1;
    /* G = Q diag(s^2) Q^T, Q random orthogonal, s_i = exp(-a i / S):
     * a = 2 (default) gives eRank ~ 0.86 S, so p ~ 0.14 S on the tail
     * side, as timber-gen's and real fine-tuning deltas have; TB_DECAY=6
     * gives eRank ~ 0.45 S, p ~ 0.45 S, about the largest p can be. */
    double decay = getenv("TB_DECAY") ? atof(getenv("TB_DECAY")) : 2.0;
    double *Qm = malloc(n * n * sizeof *Qm), *qt = malloc(n * sizeof *qt);
    for (size_t i = 0; i < n * n; i++)
        Qm[i] = gauss();
    LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)n, Qm,
                   (lapack_int)n, qt);
    LAPACKE_dorgqr(LAPACK_COL_MAJOR, (lapack_int)n, (lapack_int)n,
                   (lapack_int)n, Qm, (lapack_int)n, qt);
    for (size_t j = 0; j < n; j++)
        cblas_dscal((int)n, exp(-decay * (double)j / (double)n),
                    Qm + j * n, 1);
    double *G0 = calloc(n * ld, sizeof *G0);
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, (int)n, (int)n,
                1.0, Qm, (int)n, 0.0, G0, (int)ld);
    free(Qm);
    free(qt);

    double *G = malloc(n * ld * sizeof *G);
    double *AB = malloc(n * ldab * sizeof *AB),
           *AB2 = malloc(n * ldab * sizeof *AB2);
    double *d = malloc(n * sizeof *d), *e = malloc(n * sizeof *e),
           *tau = malloc(n * sizeof *tau);
    double *d1 = malloc(n * sizeof *d1), *e1 = malloc(n * sizeof *e1);
    double *Z = malloc(ld * p * sizeof *Z), *Z0 = malloc(ld * p * sizeof *Z0);
    for (size_t i = 0; i < ld * p; i++)
        Z0[i] = gauss() / sqrt((double)n);
    double nn = (double)n;
    flops_of[0] = flops_of[1] = 4.0 / 3.0 * nn * nn * nn;
    flops_of[2] = flops_of[10] = flops_of[11] = 2.0 * nn * nn * (double)p;
    flops_of[3] = flops_of[4] = 4.0 / 3.0 * nn * nn * nn;
    flops_of[5] = flops_of[6] = 6.0 * (double)b * nn * nn;
    flops_of[7] = flops_of[8] = flops_of[9] = flops_of[14] = flops_of[17] = flops_of[18] = 2.0 * nn * nn * (double)p;

    for (int rep = 0; rep < reps; rep++) {
        double t;
        for (int th = 1; th <= (quick ? 1 : 2); th++) {
            openblas_set_num_threads(th);
            memcpy(G, G0, n * ld * sizeof *G);
            t = th == 1 ? now() : wall();
            LAPACKE_dsytrd(LAPACK_COL_MAJOR, 'L', (lapack_int)n, G,
                           (lapack_int)ld, d1, e1, tau);
            t_of[th - 1][rep] = (th == 1 ? now() : wall()) - t;
        }
        openblas_set_num_threads(1);
        memcpy(Z, Z0, ld * p * sizeof *Z);
        t = now();
        tb_q1_apply(n, 1, p, G, ld, tau, Z, ld);
        t_of[2][rep] = now() - t;

        for (int th = quick ? 1 : 2; th >= 1; th--) {
            openblas_set_num_threads(th);
            memcpy(G, G0, n * ld * sizeof *G);
            t = th == 1 ? now() : wall();
            tb_sy2sb(n, b, G, ld, AB, ldab, tau);
            t_of[th == 1 ? 3 : 4][rep] = (th == 1 ? now() : wall()) - t;
        }
        openblas_set_num_threads(1);
        memcpy(AB2, AB, n * ldab * sizeof *AB2);
        tb_q2 q;
        t = now();
        tb_band_chase(n, b, AB, ldab, d, e, &q);
        t_of[5][rep] = now() - t;
        {
            lapack_int nn_ = (lapack_int)n, kd = (lapack_int)b,
                       lab = (lapack_int)ldab, lh = -1, lw = -1, info = 0;
            double qh = 0, qw = 0, *dd = malloc(n * sizeof *dd),
                   *ee = malloc(n * sizeof *ee);
            dsytrd_sb2st_("Y", "N", "L", &nn_, &kd, AB2, &lab, dd, ee, &qh,
                          &lh, &qw, &lw, &info, 1, 1, 1);
            lh = (lapack_int)qh;
            lw = (lapack_int)qw;
            double *hous = malloc((size_t)lh * sizeof *hous),
                   *work = malloc((size_t)lw * sizeof *work);
            t = now();
            dsytrd_sb2st_("Y", "N", "L", &nn_, &kd, AB2, &lab, dd, ee, hous,
                          &lh, work, &lw, &info, 1, 1, 1);
            t_of[6][rep] = now() - t;
            free(hous);
            free(work);
            free(dd);
            free(ee);
        }
        memcpy(Z, Z0, ld * p * sizeof *Z);
        t = now();
        if (!quick)
            tb_q2_apply(&q, 0, 0, Z, ld, p);
        t_of[7][rep] = now() - t;
        for (int th = 1; th <= (quick ? 1 : 2); th++) {
            openblas_set_num_threads(th);
            memcpy(Z, Z0, ld * p * sizeof *Z);
            t = th == 1 ? now() : wall();
            tb_q2_apply(&q, bs, 1, Z, ld, p);
            t_of[th == 1 ? 8 : 9][rep] = (th == 1 ? now() : wall()) - t;
            if (th == 1) {
                memcpy(Z, Z0, ld * p * sizeof *Z);
                t = now();
                tb_q2_apply(&q, bs, 0, Z, ld, p);
                t_of[14][rep] = now() - t;
                double *Z1 = malloc(ld * p * sizeof *Z1);
                memcpy(Z1, Z, ld * p * sizeof *Z1);
                memcpy(Z, Z0, ld * p * sizeof *Z);
                t = now();
                tb_q2_apply(&q, bs, 2, Z, ld, p);
                t_of[17][rep] = now() - t;
                /* the same kernel on AVX2 where the CPU has AVX-512 */
                double *Z2 = malloc(ld * p * sizeof *Z2);
                memcpy(Z2, Z0, ld * p * sizeof *Z2);
                tb_q2_kernel_cap = 1;
                t = now();
                tb_q2_apply(&q, bs, 2, Z2, ld, p);
                t_of[18][rep] = now() - t;
                tb_q2_kernel_cap = 2;
                if (rep == 0)
                    printf("Q2 kernel, AVX2 at most: %s bits\n",
                           memcmp(Z, Z2, ld * p * sizeof *Z) ? "other"
                                                             : "the same");
                free(Z2);

                double dz = 0;
                for (size_t j = 0; j < p; j++)
                    for (size_t i = 0; i < n; i++)
                        dz = fmax(dz, fabs(Z[i + j * ld] - Z1[i + j * ld]));
                if (rep == 0)
                    printf("Q2 kernel vs dlarfb: max |dZ| %.2e\n", dz);
                free(Z1);
            }
            t = th == 1 ? now() : wall();
            tb_q1_apply(n, b, p, G, ld, tau, Z, ld);
            t_of[th == 1 ? 10 : 11][rep] = (th == 1 ? now() : wall()) - t;
        }
        openblas_set_num_threads(1);

        if (rep == 0) {
            /* eigenvalues of both tridiagonal forms */
            double *l1 = malloc(n * sizeof *l1), *l2 = malloc(n * sizeof *l2),
                   *ew = malloc(n * sizeof *ew);
            memcpy(l1, d1, n * sizeof *l1);
            memcpy(ew, e1, n * sizeof *ew);
            LAPACKE_dsterf((lapack_int)n, l1, ew);
            memcpy(l2, d, n * sizeof *l2);
            memcpy(ew, e, n * sizeof *ew);
            LAPACKE_dsterf((lapack_int)n, l2, ew);
            double dl = 0;
            for (size_t i = 0; i < n; i++)
                dl = fmax(dl, fabs(l1[i] - l2[i]));
            /* p smallest eigenvectors of the two-stage T, back-transformed */
            lapack_int m = 0, *isuppz = malloc(2 * p * sizeof *isuppz);
            lapack_logical tryrac = 1;
            memcpy(ew, e, n * sizeof *ew);
            double *dd = malloc(n * sizeof *dd);
            memcpy(dd, d, n * sizeof *dd);
            LAPACKE_dstemr(LAPACK_COL_MAJOR, 'V', 'I', (lapack_int)n, dd, ew,
                           0, 0, 1, (lapack_int)p, &m, l2, Z, (lapack_int)ld,
                           (lapack_int)p, isuppz, &tryrac);
            tb_q2_apply(&q, bs, 1, Z, ld, p);
            tb_q1_apply(n, b, p, G, ld, tau, Z, ld);
            double *R = malloc(ld * p * sizeof *R);
            memcpy(R, Z, ld * p * sizeof *R);
            for (size_t j = 0; j < p; j++)
                cblas_dscal((int)n, -l2[j], R + j * ld, 1);
            cblas_dsymm(CblasColMajor, CblasLeft, CblasLower, (int)n, (int)p,
                        1.0, G0, (int)ld, Z, (int)ld, 1.0, R, (int)ld);
            double res = 0, orth = 0;
            for (size_t j = 0; j < p; j++)
                for (size_t i = 0; i < n; i++)
                    res = fmax(res, fabs(R[i + j * ld]));
            double *O = malloc(p * p * sizeof *O);
            cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)p,
                        (int)p, (int)n, 1.0, Z, (int)ld, Z, (int)ld, 0.0, O,
                        (int)p);
            for (size_t j = 0; j < p; j++)
                for (size_t i = 0; i < p; i++)
                    orth = fmax(orth, fabs(O[i + j * p] - (i == j)));
            printf("S %zu b %zu bs %zu p %zu: eigenvalues agree to %.2e of "
                   "lambda_max %.3e; residual |G V - V L|_max %.2e "
                   "(relative %.2e), |V^T V - I|_max %.2e\n",
                   n, b, bs, p, dl / l1[n - 1], l1[n - 1], res,
                   res / l1[n - 1], orth);
            free(O);
            free(R);
            free(dd);
            free(isuppz);
            free(l1);
            free(l2);
            free(ew);
        }
        tb_q2_free(&q);

        /* two reductions at once, one per thread, BLAS on one thread */
        for (int two = 0; two <= 1 && !quick; two++) {
            job J[2] = {{n, ld, b, G0, two, 0}, {n, ld, b, G0, two, 0}};
            pthread_t tid;
            t = wall();
            pthread_create(&tid, NULL, run_job, &J[1]);
            run_job(&J[0]);
            pthread_join(tid, NULL);
            t_of[12 + two][rep] = wall() - t;
        }
        /* the whole of tb_spectrum_from_gram (eigenvalues, the p vectors
         * of the cut's smaller side, both back-transforms) by each route */
        static const unsigned routes[] = {TB_ROUTE_MRRR, TB_ROUTE_TWOSTAGE};
        for (unsigned ri = 0; ri < 2; ri++) {
            unsigned route = routes[ri];
            tb_spectrum sp;
            timber_error err;
            tb_spectrum_force_route = route;
            memcpy(G, G0, n * ld * sizeof *G);
            t = now();
            if (tb_spectrum_from_gram(G, n, ld, 1, &sp, "bench", &err) != 0)
                fprintf(stderr, "spectrum: %s\n", err.message);
            t_of[15 + ri][rep] = now() - t;
            if (rep == 0)
                printf("whole spectrum, route %u: k %zu of %zu, p %zu\n",
                       route, sp.k, n, sp.p);
            tb_spectrum_clear(&sp);
        }
        tb_spectrum_force_route = 0;
        fprintf(stderr, "rep %d done\n", rep + 1);
    }
    openblas_set_num_threads(threads0);
    printf("one-thread steps: %s; 2t and concurrent: wall time\n",
           use_wall ? "wall time" : "thread CPU time");
    printf("| step (S = %zu, b = %zu, blocks of %zu sweeps, p = %zu) | median s "
           "| min–max | GFLOP/s |\n|---|---|---|---|\n",
           n, b, bs, p);
    for (int s = 0; s < NSTEP; s++) {
        double v[MAXREP];
        memcpy(v, t_of[s], (size_t)reps * sizeof *v);
        qsort(v, (size_t)reps, sizeof *v, cmp);
        double med = v[reps / 2];
        if (quick && (s == 1 || s == 4 || s == 7 || s == 9 || s == 11 ||
                      s == 12 || s == 13))
            continue;
        if (flops_of[s] > 0)
            printf("| %s | %.3f | %.3f–%.3f | %.1f |\n", step_name[s], med,
                   v[0], v[reps - 1], flops_of[s] / med * 1e-9);
        else
            printf("| %s | %.3f | %.3f–%.3f | |\n", step_name[s], med, v[0],
                   v[reps - 1]);
    }
    free(G0);
    free(G);
    free(AB);
    free(AB2);
    free(d);
    free(e);
    free(tau);
    free(d1);
    free(e1);
    free(Z);
    free(Z0);
    return 0;
}
