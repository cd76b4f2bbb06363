/*
 * tridiag2.c — two-stage reduction to tridiagonal form with the
 * reflectors kept, and the back-transformation of eigenvectors through
 * both stages (see tridiag2.h).  LAPACK 3.11 has the two stages
 * (dsytrd_sy2sb, dsytrd_sb2st) but its stage 2 does not keep Q2
 * (VECT='V' is not implemented; its HOUS is a ring buffer), so the bulge
 * chase is done here, after dsb2st_kernels: one column annihilated per
 * sweep, the bulge it makes chased down the band one b x b block at a
 * time, each step one Householder reflector of length <= b.
 *
 * The band lives in LAPACK's lower band storage AB(i - j, j) with
 * ldab >= 2b + 1.  Element (i, j) is AB[i - j + j*ldab] = AB[i +
 * j*(ldab - 1)], so any block within 2b - 1 below the diagonal is an
 * ordinary column-major submatrix with leading dimension ldab - 1 and the
 * BLAS work on it directly (the trick dsb2st_kernels uses).
 *
 * Applying Q2.  Q2 = prod_j prod_s H(j,s) (sweeps ascending, steps
 * ascending within a sweep).  H(j,s) acts on rows a = j+1+s*b .. a+b-1;
 * two reflectors whose row ranges overlap keep their order, the others
 * commute.  Within a group of consecutive sweeps J, H(j,s) and H(j',s')
 * with j < j' and s < s' are disjoint (a' - a >= b + 1), so the group's
 * factor equals prod_{s descending} G(J,s), G(J,s) = H(j0,s) H(j0+1,s)
 * ... : reflectors at consecutive row offsets, i.e. one forward
 * compact-WY block (a (b + |J| - 1) x |J| parallelogram of V) applied by
 * dlarft + dlarfb at level 3 — the grouping of the two-stage papers
 * (Haidar, Ltaief, Dongarra 2011; Bientinesi, Igual, Kressner,
 * Quintana-Ortí 2010).  The zeros of the parallelogram cost flops
 * (about twice those of one reflector at a time) but run at DGEMM speed
 * (methods 0 and 1 of tb_q2_apply).  What spectrum.c uses is method 2:
 * the same groups in the same order, each applied reflector by reflector
 * by a kernel of this file's own on L1-sized column chunks, no zeros
 * ("Q2 by a kernel of its own" below).
 */
#include "tridiag2.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#include "util.h"

extern void dsytrd_sy2sb_(const char *uplo, const lapack_int *n,
                          const lapack_int *kd, double *a,
                          const lapack_int *lda, double *ab,
                          const lapack_int *ldab, double *tau, double *work,
                          const lapack_int *lwork, lapack_int *info,
                          size_t uplo_len);

void tb_q2_free(tb_q2 *q)
{
    free(q->off);
    free(q->v);
    free(q->tau);
    memset(q, 0, sizeof *q);
}

int tb_sy2sb(size_t n, size_t b, double *A, size_t lda, double *AB,
             size_t ldab, double *tau)
{
    lapack_int nn = (lapack_int)n, kd = (lapack_int)b, la = (lapack_int)lda,
               lab = (lapack_int)ldab, lwork = -1, info = 0;
    double q = 0.0;
    memset(AB, 0, n * ldab * sizeof *AB);
    /* With n <= b + 1 dsytrd_sy2sb only copies A into AB and leaves tau
     * unset: Q1 = I. */
    if (n > b)
        memset(tau, 0, (n - b) * sizeof *tau);
    dsytrd_sy2sb_("L", &nn, &kd, A, &la, AB, &lab, tau, &q, &lwork, &info,
                  1);
    if (info != 0)
        return (int)(info < 0 ? -info : info);
    lwork = q >= 1.0 ? (lapack_int)q : 1;
    double *work = tb_alloc_array((size_t)lwork, sizeof *work);
    if (!work)
        return -1;
    dsytrd_sy2sb_("L", &nn, &kd, A, &la, AB, &lab, tau, work, &lwork, &info,
                  1);
    free(work);
    return (int)(info < 0 ? -info : info);
}

/* Householder vector of x (len), as dlarfg: x := (beta, 0, ...), v = (1,
 * x[1..] / (alpha - beta)) into v, tau returned. */
static double make_reflector(size_t len, double *x, double *v)
{
    double tau = 0.0;
    lapack_int n = (lapack_int)len;
    if (len > 1)
        LAPACKE_dlarfg_work(n, x, x + 1, 1, &tau);
    v[0] = 1.0;
    for (size_t i = 1; i < len; i++) {
        v[i] = x[i];
        x[i] = 0.0;
    }
    return tau;
}

/* The chase's three updates, on blocks of at most b x b (in L1), written
 * as plain loops: each step of a sweep made nine BLAS calls on such
 * blocks, and their overhead, not the arithmetic, set the chase's speed
 * (0.55 s at S = 4096, b = 32; docs/performance.md, "Large matrices").
 * Column-major, the inner loops run down a column and vectorise; the
 * dot products keep four partial sums in the source (a single running
 * sum is one long chain of dependent additions, which set the speed next),
 * so their rounding does not depend on the vector width the compiler
 * picks. */

/* The three updates are compiled twice, for AVX2 and for the baseline,
 * the right one picked when the program loads: twice the vector width.
 * Without FMA (and with C11's no contraction) both give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__)
#define CHASE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CHASE_CLONES
#endif

/* sum_i a[i] b[i], i < m, in four interleaved partial sums. */
static inline double dot4(const double *a, const double *b, size_t m)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < m; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* The chase's full blocks (m = 32 rows, all but the last step of a
 * sweep at b = 32) by AVX2 intrinsics: the same operations on each
 * element in the same order as the loops (a multiply, then an add or a
 * subtract: no FMA), so the same bits, with w held in registers instead
 * of reloaded for every column. */
int tb_q2_kernel_cap = 2;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CHASE_AVX2 1
enum { CHASE_M = 32 };

__attribute__((target("avx2"))) static void
right32_avx2(size_t k, double *C, size_t ldc, const double *v, double tau)
{
    __m256d w0 = _mm256_setzero_pd(), w1 = w0, w2 = w0, w3 = w0, w4 = w0,
            w5 = w0, w6 = w0, w7 = w0;
    for (size_t j = 0; j < k; j++) {
        const double *c = C + j * ldc;
        __m256d vj = _mm256_set1_pd(v[j]);
        w0 = _mm256_add_pd(w0, _mm256_mul_pd(_mm256_loadu_pd(c), vj));
        w1 = _mm256_add_pd(w1, _mm256_mul_pd(_mm256_loadu_pd(c + 4), vj));
        w2 = _mm256_add_pd(w2, _mm256_mul_pd(_mm256_loadu_pd(c + 8), vj));
        w3 = _mm256_add_pd(w3, _mm256_mul_pd(_mm256_loadu_pd(c + 12), vj));
        w4 = _mm256_add_pd(w4, _mm256_mul_pd(_mm256_loadu_pd(c + 16), vj));
        w5 = _mm256_add_pd(w5, _mm256_mul_pd(_mm256_loadu_pd(c + 20), vj));
        w6 = _mm256_add_pd(w6, _mm256_mul_pd(_mm256_loadu_pd(c + 24), vj));
        w7 = _mm256_add_pd(w7, _mm256_mul_pd(_mm256_loadu_pd(c + 28), vj));
    }
    for (size_t j = 0; j < k; j++) {
        double *c = C + j * ldc;
        __m256d t = _mm256_set1_pd(tau * v[j]);
#define RIGHT_UPD(o, w)                                                   \
    _mm256_storeu_pd(c + (o), _mm256_sub_pd(_mm256_loadu_pd(c + (o)),     \
                                            _mm256_mul_pd((w), t)))
        RIGHT_UPD(0, w0);
        RIGHT_UPD(4, w1);
        RIGHT_UPD(8, w2);
        RIGHT_UPD(12, w3);
        RIGHT_UPD(16, w4);
        RIGHT_UPD(20, w5);
        RIGHT_UPD(24, w6);
        RIGHT_UPD(28, w7);
#undef RIGHT_UPD
    }
}

/* dot4 of 32 elements: lane l of the accumulator is dot4's partial sum
 * s_l (elements l, l + 4, ...), combined as (s0 + s1) + (s2 + s3). */
__attribute__((target("avx2"))) static inline double
dot32_avx2(const double *a, const double *b)
{
    __m256d s = _mm256_setzero_pd(); /* 0 + x, as dot4: the sign of 0 */
    for (size_t i = 0; i < CHASE_M; i += 4)
        s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_loadu_pd(a + i),
                                           _mm256_loadu_pd(b + i)));
    double l[4];
    _mm256_storeu_pd(l, s);
    return (l[0] + l[1]) + (l[2] + l[3]);
}

__attribute__((target("avx2"))) static void
left32_avx2(size_t k, double *C, size_t ldc, const double *v, double tau)
{
    for (size_t j = 0; j < k; j++) {
        double *c = C + j * ldc;
        __m256d s = _mm256_set1_pd(tau * dot32_avx2(c, v));
        for (size_t i = 0; i < CHASE_M; i += 4)
            _mm256_storeu_pd(c + i,
                             _mm256_sub_pd(_mm256_loadu_pd(c + i),
                                           _mm256_mul_pd(_mm256_loadu_pd(v + i),
                                                         s)));
    }
}

/* dot4 of any length n: the vector lanes are its partial sums s0..s3,
 * the remainder goes to s0, combined as (s0 + s1) + (s2 + s3). */
__attribute__((target("avx2"))) static inline double
dot4_avx2(const double *a, const double *b, size_t n)
{
    __m256d acc = _mm256_setzero_pd();
    size_t whole = n / 4 * 4;
    for (size_t i = 0; i < whole; i += 4)
        acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a + i),
                                               _mm256_loadu_pd(b + i)));
    double l[4];
    _mm256_storeu_pd(l, acc);
    double s0 = l[0];
    for (size_t i = whole; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + l[1]) + (l[2] + l[3]);
}

/* apply_sym for m = 32, its loops' operations in their order: the rows
 * below a column up to a multiple of 4 one by one, then whole vectors. */
__attribute__((target("avx2"))) static void
sym32_avx2(double *C, size_t ldc, const double *v, double tau)
{
    double w[CHASE_M];
    for (size_t i = 0; i < CHASE_M; i++)
        w[i] = 0.0;
    for (size_t j = 0; j < CHASE_M; j++) {
        const double *c = C + j * ldc;
        double vj = v[j];
        w[j] += c[j] * vj;
        size_t i = j + 1;
        for (; i < CHASE_M && i % 4; i++)
            w[i] += c[i] * vj;
        __m256d vv = _mm256_set1_pd(vj);
        for (; i < CHASE_M; i += 4)
            _mm256_storeu_pd(w + i,
                             _mm256_add_pd(_mm256_loadu_pd(w + i),
                                           _mm256_mul_pd(_mm256_loadu_pd(c + i),
                                                         vv)));
        w[j] += dot4_avx2(c + j + 1, v + j + 1, CHASE_M - j - 1);
    }
    __m256d t = _mm256_set1_pd(tau);
    for (size_t i = 0; i < CHASE_M; i += 4)
        _mm256_storeu_pd(w + i, _mm256_mul_pd(_mm256_loadu_pd(w + i), t));
    double alpha = -0.5 * tau * dot4_avx2(w, v, CHASE_M);
    __m256d al = _mm256_set1_pd(alpha);
    for (size_t i = 0; i < CHASE_M; i += 4)
        _mm256_storeu_pd(w + i,
                         _mm256_add_pd(_mm256_loadu_pd(w + i),
                                       _mm256_mul_pd(al, _mm256_loadu_pd(v + i))));
    for (size_t j = 0; j < CHASE_M; j++) {
        double *c = C + j * ldc, vj = v[j], wj = w[j];
        size_t i = j;
        for (; i < CHASE_M && i % 4; i++)
            c[i] -= v[i] * wj + w[i] * vj;
        __m256d vv = _mm256_set1_pd(vj), ww = _mm256_set1_pd(wj);
        for (; i < CHASE_M; i += 4) {
            __m256d r = _mm256_add_pd(
                _mm256_mul_pd(_mm256_loadu_pd(v + i), ww),
                _mm256_mul_pd(_mm256_loadu_pd(w + i), vv));
            _mm256_storeu_pd(c + i, _mm256_sub_pd(_mm256_loadu_pd(c + i), r));
        }
    }
}

static int chase_avx2(void)
{
    static atomic_int use = -1;
    int u = atomic_load_explicit(&use, memory_order_relaxed);
    if (u < 0) {
        __builtin_cpu_init();
        u = __builtin_cpu_supports("avx2");
        atomic_store_explicit(&use, u, memory_order_relaxed);
    }
    return u;
}
#endif

/* C (m x k, ldc) := C H, H = I - tau v v^T (v: k). */
CHASE_CLONES static void apply_right(size_t m, size_t k, double *C, size_t ldc,
                        const double *v, double tau, double *w)
{
    if (tau == 0.0 || m == 0)
        return;
#ifdef CHASE_AVX2
    if (m == CHASE_M && chase_avx2() && tb_q2_kernel_cap > 0) {
        right32_avx2(k, C, ldc, v, tau);
        return;
    }
#endif
    for (size_t i = 0; i < m; i++)
        w[i] = 0.0;
    for (size_t j = 0; j < k; j++) {
        const double *c = C + j * ldc, vj = v[j];
        for (size_t i = 0; i < m; i++)
            w[i] += c[i] * vj;
    }
    for (size_t j = 0; j < k; j++) {
        double *c = C + j * ldc, t = tau * v[j];
        for (size_t i = 0; i < m; i++)
            c[i] -= w[i] * t;
    }
}

/* C (m x k, ldc) := H C, H = I - tau v v^T (v: m). */
CHASE_CLONES static void apply_left(size_t m, size_t k, double *C, size_t ldc,
                       const double *v, double tau)
{
    if (tau == 0.0 || k == 0)
        return;
#ifdef CHASE_AVX2
    if (m == CHASE_M && chase_avx2() && tb_q2_kernel_cap > 0) {
        left32_avx2(k, C, ldc, v, tau);
        return;
    }
#endif
    for (size_t j = 0; j < k; j++) {
        double *c = C + j * ldc, s = tau * dot4(c, v, m);
        for (size_t i = 0; i < m; i++)
            c[i] -= v[i] * s;
    }
}

/* C (m x m symmetric, lower, ldc) := H C H: w = tau C v, w -= tau/2
 * (w.v) v, C -= v w^T + w v^T (what dlarfy does). */
CHASE_CLONES static void apply_sym(size_t m, double *C, size_t ldc, const double *v,
                      double tau, double *w)
{
    if (tau == 0.0)
        return;
#ifdef CHASE_AVX2
    if (m == CHASE_M && chase_avx2() && tb_q2_kernel_cap > 0) {
        sym32_avx2(C, ldc, v, tau);
        return;
    }
#endif
    for (size_t i = 0; i < m; i++)
        w[i] = 0.0;
    for (size_t j = 0; j < m; j++) {
        const double *c = C + j * ldc;
        double vj = v[j];
        w[j] += c[j] * vj;
        for (size_t i = j + 1; i < m; i++)
            w[i] += c[i] * vj;
        w[j] += dot4(c + j + 1, v + j + 1, m - j - 1);
    }
    for (size_t i = 0; i < m; i++)
        w[i] *= tau;
    double alpha = -0.5 * tau * dot4(w, v, m);
    for (size_t i = 0; i < m; i++)
        w[i] += alpha * v[i];
    for (size_t j = 0; j < m; j++) {
        double *c = C + j * ldc, vj = v[j], wj = w[j];
        for (size_t i = j; i < m; i++)
            c[i] -= v[i] * wj + w[i] * vj;
    }
}

int tb_band_chase(size_t n, size_t b, double *AB, size_t ldab, double *d,
                  double *e, tb_q2 *q)
{
    memset(q, 0, sizeof *q);
    q->n = n;
    q->b = b;
    q->nsweeps = n >= 3 ? n - 2 : 0;
    q->off = malloc((q->nsweeps + 1) * sizeof *q->off);
    if (!q->off)
        return -1;
    /* sweep j: steps s with j + 1 + s*b <= n - 1 */
    q->off[0] = 0;
    for (size_t j = 0; j < q->nsweeps; j++)
        q->off[j + 1] = q->off[j] + (n - 2 - j) / b + 1;
    size_t steps = q->off[q->nsweeps];
    q->v = tb_alloc_array(steps ? steps : 1, b * sizeof(double));
    q->tau = malloc((steps ? steps : 1) * sizeof *q->tau);
    double *w = malloc(b * sizeof *w);
    if (!q->v || !q->tau || !w) {
        free(w);
        tb_q2_free(q);
        return -1;
    }
    const size_t ld = ldab - 1;
#define AT(i, j) (AB + (i) + (j)*ld)
    for (size_t j = 0; j < q->nsweeps; j++) {
        size_t r = j + 1, mr = n - r < b ? n - r : b;
        size_t t = q->off[j];
        double *v = q->v + t * b;
        double tau = q->tau[t] = make_reflector(mr, AT(r, j), v);
        apply_sym(mr, AT(r, r), ld, v, tau, w);
        for (;;) {
            size_t q0 = r + mr;
            if (q0 >= n)
                break;
            size_t nrow = n - q0 < b ? n - q0 : b;
            /* the previous reflector from the right on the block below,
             * which fills it (the bulge) */
            apply_right(nrow, mr, AT(q0, r), ld, v, tau, w);
            /* annihilate the bulge's first column, apply from the left to
             * the rest of the block and on both sides of the next
             * diagonal block */
            t++;
            double *v2 = q->v + t * b;
            double tau2 = q->tau[t] = make_reflector(nrow, AT(q0, r), v2);
            apply_left(nrow, mr - 1, AT(q0, r + 1), ld, v2, tau2);
            apply_sym(nrow, AT(q0, q0), ld, v2, tau2, w);
            v = v2;
            tau = tau2;
            r = q0;
            mr = nrow;
        }
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = *AT(i, i);
        if (i + 1 < n)
            e[i] = *AT(i + 1, i);
    }
#undef AT
    free(w);
    return 0;
}

/* The sweeps of group (j0, nj) with a reflector of length >= 2 at step
 * s: their count, and *pos, the row of the first. */
static size_t q2_group_size(const tb_q2 *q, size_t j0, size_t nj, size_t s,
                            size_t *pos_out)
{
    const size_t n = q->n, pos = j0 + 1 + s * q->b;
    size_t k = 0;
    while (k < nj && pos + k + 2 <= n)
        k++;
    *pos_out = pos;
    return k;
}

/* The group G(J,s) of the sweeps j0 .. j0+k-1 at step s, as the
 * parallelogram V (m x k, leading dimension m, explicit zeros and ones)
 * and the tau; returns k (0: nothing at this step) and sets *pos, *m. */
static size_t q2_group(const tb_q2 *q, size_t j0, size_t nj, size_t s,
                       double *V, double *tau, size_t *pos_out,
                       size_t *m_out)
{
    const size_t n = q->n, b = q->b;
    size_t pos, k = q2_group_size(q, j0, nj, s, &pos);
    if (k == 0)
        return 0;
    size_t m = n - pos < b + k - 1 ? n - pos : b + k - 1;
    memset(V, 0, m * k * sizeof *V);
    for (size_t c = 0; c < k; c++) {
        size_t t = q->off[j0 + c] + s;
        size_t len = n - pos - c < b ? n - pos - c : b;
        memcpy(V + c + c * m, q->v + t * b, len * sizeof *V);
        tau[c] = q->tau[t];
    }
    *pos_out = pos;
    *m_out = m;
    return k;
}

/* -------------------------------------------- Q2 by a kernel of its own
 *
 * Method 2 applies the same groups G(J,s) in the same order, but each one
 * reflector by reflector, without the parallelogram's zeros: on Zt (rows
 * of Z contiguous, padded to whole Q2_COLS-column chunks), chunk by chunk,
 * so a group's (b + |J| - 1) x Q2_COLS block stays in L1 for all its
 * reflectors and w = tau v^T z of one chunk stays in registers.  That is
 * level 2 in L1 rather than level 3 on small, mostly-zero blocks: at S =
 * 4096, p = 585, 0.79-0.88 s against 1.18 s for method 1
 * (docs/performance.md, "Large matrices").  The padding columns are zeros and stay zeros: the
 * columns of Z do not mix. */
enum { Q2_COLS = 32 };

/* z := H z for H = I - tau v v^T (v: len, v[0] = 1) on the Q2_COLS
 * columns of Zt at z (row stride ld). */
static void q2_refl_plain(size_t len, const double *v, double tau,
                          double *z, size_t ld)
{
    double w[Q2_COLS];
    for (size_t x = 0; x < Q2_COLS; x++)
        w[x] = 0.0;
    for (size_t r = 0; r < len; r++)
        for (size_t x = 0; x < Q2_COLS; x++)
            w[x] += v[r] * z[r * ld + x];
    for (size_t x = 0; x < Q2_COLS; x++)
        w[x] *= tau;
    for (size_t r = 0; r < len; r++)
        for (size_t x = 0; x < Q2_COLS; x++)
            z[r * ld + x] -= v[r] * w[x];
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define Q2_AVX2 1
/* q2_refl_plain with vector intrinsics, w of the chunk in Q2_COLS / L
 * registers of L lanes (fixed-count loops the compiler unrolls): one body
 * for AVX2 with FMA and for AVX-512.  A lane is a column and columns
 * never mix, so both do each column's FMAs in the same order and give
 * the same bits, and a machine with AVX-512 computes what one with only
 * AVX2 does.  Chosen at run time (q2_cpu_kernel), once per process, so
 * one machine always gets the same bits whatever the thread count. */
#define Q2_REFL_KERNEL(NAME, TARGET, VEC, L, ZERO, SET1, LOAD, STORE, FMADD, \
                       FNMADD, MUL)                                          \
    __attribute__((target(TARGET))) static void NAME(                       \
        size_t len, const double *v, double tau_, double *z, size_t ld)     \
    {                                                                        \
        enum { NV = Q2_COLS / (L) };                                         \
        VEC w[NV];                                                           \
        _Pragma("GCC unroll 8") for (int u = 0; u < NV; u++)               \
            w[u] = ZERO();                                                   \
        for (size_t r = 0; r < len; r++) {                                   \
            const double *zr = z + r * ld;                                   \
            VEC vr = SET1(v[r]);                                             \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; u++)           \
                w[u] = FMADD(vr, LOAD(zr + (L) * u), w[u]);                  \
        }                                                                    \
        VEC tau = SET1(tau_);                                                \
        _Pragma("GCC unroll 8") for (int u = 0; u < NV; u++)               \
            w[u] = MUL(w[u], tau);                                           \
        for (size_t r = 0; r < len; r++) {                                   \
            double *zr = z + r * ld;                                         \
            VEC vr = SET1(v[r]);                                             \
            _Pragma("GCC unroll 8") for (int u = 0; u < NV; u++)           \
                STORE(zr + (L) * u, FNMADD(vr, w[u], LOAD(zr + (L) * u)));   \
        }                                                                    \
    }

Q2_REFL_KERNEL(q2_refl_avx2, "avx2,fma", __m256d, 4, _mm256_setzero_pd,
               _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
               _mm256_fmadd_pd, _mm256_fnmadd_pd, _mm256_mul_pd)
Q2_REFL_KERNEL(q2_refl_avx512, "avx512f", __m512d, 8, _mm512_setzero_pd,
               _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
               _mm512_fmadd_pd, _mm512_fnmadd_pd, _mm512_mul_pd)
#undef Q2_REFL_KERNEL

/* The widest kernel this CPU has: 2 AVX-512, 1 AVX2 and FMA, 0 none. */
static int q2_cpu_kernel(void)
{
    /* Every thread that gets here first computes the same answer. */
    static atomic_int use = -1;
    int u = atomic_load_explicit(&use, memory_order_relaxed);
    if (u < 0) {
        __builtin_cpu_init();
        u = __builtin_cpu_supports("avx512f")                       ? 2
            : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                    : 0;
        atomic_store_explicit(&use, u, memory_order_relaxed);
    }
    return u;
}
#endif


int tb_q2_apply(const tb_q2 *q, size_t blocked, int method, double *Z,
                size_t ldz, size_t p)
{
    const size_t n = q->n, b = q->b;
    if (q->nsweeps == 0 || p == 0)
        return 0;
    if (blocked == 0) {
        for (size_t j = q->nsweeps; j-- > 0;)
            for (size_t t = q->off[j + 1]; t-- > q->off[j];) {
                size_t pos = j + 1 + (t - q->off[j]) * b;
                size_t len = n - pos < b ? n - pos : b;
                apply_left(len, p, Z + pos, ldz, q->v + t * b, q->tau[t]);
            }
        return 0;
    }
    const size_t bs = blocked, mv = b + bs - 1;
    /* methods 1 and 2: Z transposed (rows of Z contiguous, ld apart;
     * method 2 pads them to whole chunks with zeros) */
    const size_t ld = method == 2 ? (p + Q2_COLS - 1) / Q2_COLS * Q2_COLS : p;
    double *Zt = method ? tb_alloc_array(n, ld * sizeof *Zt) : NULL;
    double *V = NULL, *T = NULL, *tau = NULL, *work = NULL;
    if (method != 2) {
        V = tb_alloc_array(mv * bs, sizeof *V);
        T = tb_alloc_array(bs * bs, sizeof *T);
        tau = malloc(bs * sizeof *tau);
        work = tb_alloc_array(p, bs * sizeof *work);
    }
    if ((method && !Zt) || (method != 2 && (!V || !T || !tau || !work))) {
        free(V);
        free(T);
        free(tau);
        free(work);
        free(Zt);
        return -1;
    }
    if (Zt)
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < p; j++)
                Zt[j + i * ld] = Z[i + j * ldz];
            for (size_t j = p; j < ld; j++)
                Zt[j + i * ld] = 0.0;
        }
    void (*refl)(size_t, const double *, double, double *, size_t) =
        q2_refl_plain;
#ifdef Q2_AVX2
    int kernel = q2_cpu_kernel();
    if (kernel > tb_q2_kernel_cap)
        kernel = tb_q2_kernel_cap;
    if (kernel == 2)
        refl = q2_refl_avx512;
    else if (kernel == 1)
        refl = q2_refl_avx2;
#endif
    const int ip = (int)p;
    size_t nblocks = (q->nsweeps + bs - 1) / bs;
    for (size_t J = nblocks; J-- > 0;) {
        size_t j0 = J * bs;
        size_t nj = q->nsweeps - j0 < bs ? q->nsweeps - j0 : bs;
        size_t smax = q->off[j0 + 1] - q->off[j0];
        for (size_t s = 0; s < smax; s++) {
            size_t pos, m, k;
            if (method == 2) {
                /* chunk by chunk, the group's reflectors last sweep
                 * first (G(J,s) = H(j0,s) H(j0+1,s) ...) */
                k = q2_group_size(q, j0, nj, s, &pos);
                for (size_t x = 0; k && x < ld; x += Q2_COLS)
                    for (size_t c = k; c-- > 0;) {
                        size_t t = q->off[j0 + c] + s;
                        size_t len = n - pos - c < b ? n - pos - c : b;
                        refl(len, q->v + t * b, q->tau[t],
                             Zt + (pos + c) * ld + x, ld);
                    }
                continue;
            }
            k = q2_group(q, j0, nj, s, V, tau, &pos, &m);
            if (k == 0)
                continue;
            lapack_int mm = (lapack_int)m, kk = (lapack_int)k;
            LAPACKE_dlarft_work(LAPACK_COL_MAJOR, 'F', 'C', mm, kk, V, mm,
                                tau, T, kk);
            if (method == 1) {
                /* Zt := Zt (I - V T^T V^T): W = Zt V, W = W T^T,
                 * Zt -= W V^T */
                double *zb = Zt + pos * p;
                cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ip,
                            (int)k, (int)m, 1.0, zb, ip, V, (int)m, 0.0,
                            work, ip);
                cblas_dtrmm(CblasColMajor, CblasRight, CblasUpper,
                            CblasTrans, CblasNonUnit, ip, (int)k, 1.0, T,
                            (int)k, work, ip);
                cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, ip,
                            (int)m, (int)k, -1.0, work, ip, V, (int)m, 1.0,
                            zb, ip);
            } else {
                LAPACKE_dlarfb_work(LAPACK_COL_MAJOR, 'L', 'N', 'F', 'C', mm,
                                    (lapack_int)p, kk, V, mm, T, kk,
                                    Z + pos, (lapack_int)ldz, work,
                                    (lapack_int)p);
            }
        }
    }
    if (Zt)
        for (size_t j = 0; j < p; j++)
            for (size_t i = 0; i < n; i++)
                Z[i + j * ldz] = Zt[j + i * ld];
    free(V);
    free(T);
    free(tau);
    free(work);
    free(Zt);
    return 0;
}

int tb_q1_apply(size_t n, size_t off, size_t p, const double *A, size_t lda,
                const double *tau, double *Z, size_t ldz)
{
    enum { NB = 32 };
    if (n <= off || p == 0)
        return 0;
    lapack_int m = (lapack_int)(n - off); /* acting on rows off+1..n */
    lapack_int pp = (lapack_int)p, la = (lapack_int)lda,
               lz = (lapack_int)ldz;
    double T[NB * NB];
    double *work = tb_alloc_array(p, NB * sizeof(double));
    if (!work)
        return -1;
    for (lapack_int i = ((m - 1) / NB) * NB; i >= 0; i -= NB) {
        lapack_int ib = m - i < NB ? m - i : NB;
        const double *V = A + off + i + (size_t)i * lda;
        LAPACKE_dlarft_work(LAPACK_COL_MAJOR, 'F', 'C', m - i, ib, V, la,
                            tau + i, T, NB);
        LAPACKE_dlarfb_work(LAPACK_COL_MAJOR, 'L', 'N', 'F', 'C', m - i, pp,
                            ib, V, la, T, NB, Z + off + i, lz, work, pp);
    }
    free(work);
    return 0;
}
