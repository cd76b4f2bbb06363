/*
 * gen_values.h — the numbers of timber-gen: a deterministic per-tensor
 * random generator and the Base / Instruct values of each kind of tensor.
 *
 * Every value is a pure function of (seed, tensor name, row, column):
 * each row draws from its own xoshiro256** stream seeded through splitmix64
 * from hash(seed, name), a purpose tag and the row number.  So a tensor's
 * values never depend on which other tensors exist, on the block size, or
 * on how many threads generate it, and the first rows of a grown embedding
 * are exactly the rows of the ungrown one.  No BLAS: plain C loops only.
 *
 * A weight matrix (m x n) of Base is N(0, 0.02^2).  Instruct is Base + D,
 * both in double, with
 *
 *     D = sigma * (alpha Q + N / sqrt(L)) diag(c)  +  sum_k s_k u_k v_k^T
 *
 * (for a wide matrix, m < n, the scales multiply rows instead: diag(c) on
 * the left).  L = max(m, n); N is i.i.d. standard normal; Q has orthonormal
 * columns (rows when wide): a DCT-II basis with its long index permuted and
 * random signs on rows and columns, evaluated row by row with a Chebyshev
 * recurrence.  A Gaussian alone cannot reach an eRank of 0.85 on a square
 * matrix (its quarter-circle spectrum has too many tiny singular values,
 * ~0.79), and is too flat for a tall one (~0.95); alpha Q + N/sqrt(L) has a
 * spectrum bounded away from zero for every aspect ratio, and the decaying
 * scales c_j = exp(-beta j / d) over the d = min(m, n) short indices then
 * set the effective rank: beta is calibrated so that the stored delta
 * (both sides rounded to bf16) has eRank about 0.85 x d.  Six strong
 * rank-one directions (u, v ~ N(0, 1/m), N(0, 1/n)) sit on top.  The
 * delta's Frobenius norm is about 3 % of Base's.  Mode GV_DELTA_NONE gives
 * D = 0; GV_DELTA_LOW_RANK gives an exact rank-4 D (like a merged LoRA)
 * and no noise.
 */
#ifndef TIMBER_GEN_VALUES_H
#define TIMBER_GEN_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- RNG */

typedef struct gv_rng {
    uint64_t s[4];
    double spare;
    int has_spare;
} gv_rng;

/* The key of a tensor: hash of the seed and its name. */
uint64_t gv_tensor_key(uint64_t seed, const char *name);
/* A sub-key (for a tensor made of several independent parts). */
uint64_t gv_subkey(uint64_t key, uint64_t tag);
/* Seeds the stream of (key, purpose, index). */
void gv_rng_seed(gv_rng *r, uint64_t key, uint64_t purpose, uint64_t index);
uint64_t gv_next(gv_rng *r);
/* Standard normal (Marsaglia's polar method). */
double gv_gauss(gv_rng *r);

/* ------------------------------------------------------- matrix slices */

enum gv_delta {
    GV_DELTA_NORMAL = 0,
    GV_DELTA_NONE,
    GV_DELTA_LOW_RANK,
};

#define GV_MAX_RANK 8

/* One m x n matrix: a 2-D tensor, or the d0 x (d1 x d2 x ...) matrix view
 * of a tensor of 3+ dimensions. */
typedef struct gv_matrix {
    uint64_t key;
    uint64_t m, n;
    enum gv_delta mode;
    double sigma;          /* noise amplitude */
    double alpha;          /* weight of the orthonormal part */
    double beta;           /* decay of the scales */
    int wide;              /* m < n: scales and Q's frequencies on rows */
    double *scale;         /* min(m, n) scales */
    uint32_t *perm;        /* tall: row -> DCT position (m entries);
                              wide: row -> DCT frequency (m entries) */
    double *colq;          /* n: per-column factor of the Q part */
    double *colg;          /* n: per-column factor of the Gaussian part */
    int rank;              /* rank-one directions */
    double strength[GV_MAX_RANK];
    double *v;             /* n x rank, row-major */
} gv_matrix;

/* Prepares the matrix (allocates its per-column tables, O(m + n)); alpha
 * and beta < 0 pick the defaults for the shape.  Returns 0, or -1 when out
 * of memory. */
int gv_matrix_init(gv_matrix *g, uint64_t key, uint64_t m, uint64_t n,
                   enum gv_delta mode, double alpha, double beta);
void gv_matrix_free(gv_matrix *g);

/* The defaults of alpha and beta for an m x n delta. */
double gv_default_alpha(uint64_t m, uint64_t n);
double gv_default_beta(uint64_t m, uint64_t n);

/* Fills rows [row0, row0 + nrows) into base and inst (each nrows * n
 * doubles, row-major; either may be NULL).  Rows at or past m are the
 * extra rows of a grown Instruct (new random rows; base is not written). */
void gv_matrix_rows(const gv_matrix *g, uint64_t row0, uint64_t nrows,
                    double *base, double *inst);

/* ------------------------------------------------------- 1-D and others */

/* A norm weight of n elements: Base ~ 1 + noise, Instruct = Base + small
 * delta (none when mode is GV_DELTA_NONE). */
void gv_norm(uint64_t key, uint64_t n, enum gv_delta mode, double *base,
             double *inst);

#endif /* TIMBER_GEN_VALUES_H */
