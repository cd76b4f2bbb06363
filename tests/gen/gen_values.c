/*
 * gen_values.c — timber-gen's deterministic numbers (see gen_values.h).
 */
#include "gen_values.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Standard deviation of Base weights, and the delta's size relative to
 * Base (Frobenius norms) for the noise and for the strong directions. */
#define BASE_STD 0.02
#define NOISE_REL 0.03
static const double strong_rel[] = {0.30, 0.22, 0.17, 0.13, 0.10, 0.08};
/* A merged LoRA of rank 4, about 3 % of Base in all. */
static const double lora_rel[] = {0.024, 0.013, 0.009, 0.006};

enum {
    P_BASE = 1,
    P_NOISE,
    P_U,
    P_V,
    P_EXTRA,
    P_NORM_BASE,
    P_NORM_DELTA,
    P_PERM,
    P_SIGN,
};

/* ---------------------------------------------------------------- RNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xD1B54A32D192ED03ull);
    return splitmix64(&x);
}

uint64_t gv_tensor_key(uint64_t seed, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return mix(mix(seed, 0x74696d626572ull), h);
}

uint64_t gv_subkey(uint64_t key, uint64_t tag)
{
    return mix(key ^ 0x5bd1e9955bd1e995ull, tag);
}

void gv_rng_seed(gv_rng *r, uint64_t key, uint64_t purpose, uint64_t index)
{
    uint64_t x = mix(mix(key, purpose), index);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t gv_next(gv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double gv_gauss(gv_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, q;
    do {
        /* uniform in (-1, 1) from the top 53 bits */
        u = (double)(gv_next(r) >> 11) * 0x1.0p-52 - 1.0;
        v = (double)(gv_next(r) >> 11) * 0x1.0p-52 - 1.0;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double f = sqrt(-2.0 * log(q) / q);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

/* ------------------------------------------------------- matrix slices */

double gv_default_alpha(uint64_t m, uint64_t n)
{
    (void)m;
    (void)n;
    return 2.0;
}

double gv_default_beta(uint64_t m, uint64_t n)
{
    /* Calibrated with LAPACK (dgesdd) on the stored bf16 delta so that its
     * eRank is about 0.85 x min(m, n): a function of the aspect ratio
     * (piecewise linear in log2(long / short), measured at short = 1024),
     * plus a little more decay for small matrices, where the strong
     * directions and the rounding noise weigh more. */
    static const double pts[][2] = {
        {0.0, 1.35}, {1.0, 1.63}, {1.585, 1.70}, {2.0, 1.75},
        {3.0, 1.77}, {5.0, 1.85}, {8.0, 1.88},
    };
    const size_t np = sizeof pts / sizeof *pts;
    double lo = (double)(m < n ? m : n), hi = (double)(m < n ? n : m);
    if (lo < 1)
        return pts[0][1];
    double x = log2(hi / lo), f = pts[np - 1][1];
    for (size_t i = 1; i < np; i++)
        if (x <= pts[i][0]) {
            double t = (x - pts[i - 1][0]) / (pts[i][0] - pts[i - 1][0]);
            f = pts[i - 1][1] + t * (pts[i][1] - pts[i - 1][1]);
            break;
        }
    double small = 0.19 * (10.0 - log2(lo)) / 4.0;
    return f + (small > 0 ? small : 0.0);
}

/* A random permutation of 0..len-1 (Fisher-Yates). */
static void shuffle(uint32_t *p, uint64_t len, gv_rng *r)
{
    for (uint64_t i = 0; i < len; i++)
        p[i] = (uint32_t)i;
    for (uint64_t i = len; i > 1; i--) {
        uint64_t j = gv_next(r) % i;
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}

static double row_sign(uint64_t key, uint64_t i)
{
    return (mix(key ^ 0x726f777369676e00ull, i) >> 63) ? -1.0 : 1.0;
}

int gv_matrix_init(gv_matrix *g, uint64_t key, uint64_t m, uint64_t n,
                   enum gv_delta mode, double alpha, double beta)
{
    memset(g, 0, sizeof *g);
    g->key = key;
    g->m = m;
    g->n = n;
    g->mode = mode;
    if (m == 0 || n == 0 || mode == GV_DELTA_NONE)
        return 0;
    if (m > UINT32_MAX || n > UINT32_MAX)
        return -1;
    double base_fro = BASE_STD * sqrt((double)m * (double)n);
    gv_rng r;
    if (mode == GV_DELTA_LOW_RANK) {
        g->rank = (int)(sizeof lora_rel / sizeof *lora_rel);
        for (int k = 0; k < g->rank; k++)
            g->strength[k] = lora_rel[k] * base_fro;
    } else {
        g->wide = m < n;
        uint64_t d = g->wide ? m : n, len = g->wide ? n : m;
        g->alpha = alpha >= 0 ? alpha : gv_default_alpha(m, n);
        g->beta = beta >= 0 ? beta : gv_default_beta(m, n);
        g->scale = malloc(d * sizeof *g->scale);
        g->perm = malloc(len * sizeof *g->perm);
        g->colq = malloc(n * sizeof *g->colq);
        g->colg = malloc(n * sizeof *g->colg);
        if (!g->scale || !g->perm || !g->colq || !g->colg) {
            gv_matrix_free(g);
            return -1;
        }
        double sum2 = 0;
        for (uint64_t i = 0; i < d; i++) {
            g->scale[i] = exp(-g->beta * (double)i / (double)d);
            sum2 += g->scale[i] * g->scale[i];
        }
        /* Each short index carries energy (alpha^2 + 1) x scale^2. */
        g->sigma = NOISE_REL * base_fro /
                   sqrt((g->alpha * g->alpha + 1.0) * sum2);
        gv_rng_seed(&r, key, P_PERM, 0);
        shuffle(g->perm, len, &r);
        gv_rng_seed(&r, key, P_SIGN, 0);
        double gl = 1.0 / sqrt((double)len);
        for (uint64_t j = 0; j < n; j++) {
            double t = (gv_next(&r) >> 63) ? -1.0 : 1.0;
            if (g->wide) {
                g->colq[j] = t;
                g->colg[j] = gl;
            } else {
                double nrm = sqrt((j ? 2.0 : 1.0) / (double)m);
                g->colq[j] = g->sigma * g->alpha * t * nrm * g->scale[j];
                g->colg[j] = g->sigma * gl * g->scale[j];
            }
        }
        /* The noise is multiplied on the right by I + V diag(b - 1) V^T
         * (V orthonormal): its direction v_k grows by b_k, so D gains
         * strong directions (left vectors N v_k, singular values about
         * strong_rel[k] x ||noise||) and no singular value shrinks. */
        g->rank = (int)(sizeof strong_rel / sizeof *strong_rel);
        for (int k = 0; k < g->rank; k++) {
            double b = strong_rel[k] * sqrt((double)n);
            g->strength[k] = b > 1.0 ? b - 1.0 : 0.0;
        }
    }
    g->v = malloc(n * (size_t)g->rank * sizeof *g->v);
    if (!g->v) {
        gv_matrix_free(g);
        return -1;
    }
    gv_rng_seed(&r, key, P_V, 0);
    const int rank = g->rank;
    for (uint64_t i = 0; i < n * (uint64_t)rank; i++)
        g->v[i] = gv_gauss(&r);
    /* Orthonormal columns (modified Gram-Schmidt, twice): the noise is
     * projected off them, so the strong directions add to the spectrum
     * without pushing a few singular values of the noise towards zero. */
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < rank; k++) {
            double *v = g->v;
            for (int l = 0; l < k; l++) {
                double dot = 0;
                for (uint64_t j = 0; j < n; j++)
                    dot += v[j * rank + k] * v[j * rank + l];
                for (uint64_t j = 0; j < n; j++)
                    v[j * rank + k] -= dot * v[j * rank + l];
            }
            double nrm = 0;
            for (uint64_t j = 0; j < n; j++)
                nrm += v[j * rank + k] * v[j * rank + k];
            nrm = sqrt(nrm);
            for (uint64_t j = 0; j < n; j++)
                v[j * rank + k] = nrm > 0 ? v[j * rank + k] / nrm : 0.0;
        }
    return 0;
}

void gv_matrix_free(gv_matrix *g)
{
    free(g->scale);
    free(g->perm);
    free(g->colq);
    free(g->colg);
    free(g->v);
    g->scale = NULL;
    g->perm = NULL;
    g->colq = NULL;
    g->colg = NULL;
    g->v = NULL;
}

/* The noise part of row i into d[0..n): sigma (alpha Q + N/sqrt(L)) with
 * the scales.  cos(j x) and cos((2j + 1) phi) come from the three-term
 * recurrence cos((k+1)t) = 2 cos t cos kt - cos((k-1)t). */
static void noise_row(const gv_matrix *g, uint64_t i, double *d)
{
    const uint64_t n = g->n;
    const double *colq = g->colq, *colg = g->colg;
    gv_rng rn;
    gv_rng_seed(&rn, g->key, P_NOISE, i);
    double s = row_sign(g->key, i);
    double prev, cur, k2;
    if (!g->wide) {
        /* Q_ij = s_i t_j nrm_j cos(j x_i), x_i = pi (2 perm_i + 1) / 2m */
        double x = M_PI * (2.0 * g->perm[i] + 1.0) / (2.0 * (double)g->m);
        k2 = 2.0 * cos(x);
        prev = cos(x); /* cos(-x) */
        cur = 1.0;
        for (uint64_t j = 0; j < n; j++) {
            d[j] = s * colq[j] * cur + colg[j] * gv_gauss(&rn);
            double next = k2 * cur - prev;
            prev = cur;
            cur = next;
        }
        return;
    }
    /* Q_ij = s_i t_j nrm_i cos((2j + 1) phi_i), phi_i = pi f_i / 2n */
    double f = g->perm[i];
    double phi = M_PI * f / (2.0 * (double)n);
    double nrm = sqrt((f > 0 ? 2.0 : 1.0) / (double)n);
    double rowq = g->sigma * g->scale[i] * g->alpha * s * nrm;
    double rowg = g->sigma * g->scale[i];
    k2 = 2.0 * cos(2.0 * phi);
    prev = cos(phi); /* cos(-phi) */
    cur = cos(phi);
    for (uint64_t j = 0; j < n; j++) {
        d[j] = rowq * colq[j] * cur + rowg * colg[j] * gv_gauss(&rn);
        double next = k2 * cur - prev;
        prev = cur;
        cur = next;
    }
}

static void one_row(const gv_matrix *g, uint64_t i, double *base,
                    double *inst)
{
    const uint64_t n = g->n;
    gv_rng rb;
    if (i >= g->m) { /* an extra row of a grown Instruct */
        gv_rng_seed(&rb, g->key, P_EXTRA, i);
        if (inst)
            for (uint64_t j = 0; j < n; j++)
                inst[j] = BASE_STD * gv_gauss(&rb);
        return;
    }
    gv_rng_seed(&rb, g->key, P_BASE, i);
    if (!inst || g->mode == GV_DELTA_NONE) {
        for (uint64_t j = 0; j < n; j++) {
            double b = BASE_STD * gv_gauss(&rb);
            if (base)
                base[j] = b;
            if (inst)
                inst[j] = b;
        }
        return;
    }
    /* inst first holds the delta, then Base + delta */
    if (g->mode == GV_DELTA_NORMAL)
        noise_row(g, i, inst);
    else
        memset(inst, 0, n * sizeof *inst);
    const int rank = g->rank;
    const double *v = g->v;
    double w[GV_MAX_RANK];
    if (g->mode == GV_DELTA_NORMAL) {
        /* delta row = noise row x (I + V diag(b - 1) V^T) */
        double p[GV_MAX_RANK] = {0};
        for (uint64_t j = 0; j < n; j++)
            for (int k = 0; k < rank; k++)
                p[k] += inst[j] * v[j * (uint64_t)rank + k];
        for (int k = 0; k < rank; k++)
            w[k] = g->strength[k] * p[k];
    } else { /* u_ik ~ N(0, 1/m) */
        gv_rng ru;
        gv_rng_seed(&ru, g->key, P_U, i);
        double us = 1.0 / sqrt((double)g->m);
        for (int k = 0; k < rank; k++)
            w[k] = g->strength[k] * us * gv_gauss(&ru);
    }
    for (uint64_t j = 0; j < n; j++) {
        double b = BASE_STD * gv_gauss(&rb);
        double d = inst[j];
        for (int k = 0; k < rank; k++)
            d += w[k] * v[j * (uint64_t)rank + k];
        if (base)
            base[j] = b;
        inst[j] = b + d;
    }
}

void gv_matrix_rows(const gv_matrix *g, uint64_t row0, uint64_t nrows,
                    double *base, double *inst)
{
    for (uint64_t r = 0; r < nrows; r++)
        one_row(g, row0 + r, base ? base + r * g->n : NULL,
                inst ? inst + r * g->n : NULL);
}

/* ------------------------------------------------------- 1-D and others */

void gv_norm(uint64_t key, uint64_t n, enum gv_delta mode, double *base,
             double *inst)
{
    gv_rng rb, rd;
    gv_rng_seed(&rb, key, P_NORM_BASE, 0);
    gv_rng_seed(&rd, key, P_NORM_DELTA, 0);
    for (uint64_t j = 0; j < n; j++) {
        double b = 1.0 + 0.05 * gv_gauss(&rb);
        double d = 0.01 * gv_gauss(&rd);
        if (base)
            base[j] = b;
        if (inst)
            inst[j] = mode == GV_DELTA_NONE ? b : b + d;
    }
}
