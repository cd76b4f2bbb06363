/*
 * spectrum.h — the maths of Timber on one delta matrix: singular values
 * through the Gram matrix, effective rank, the cut-off k, and the
 * orthonormal basis of whichever side of the cut (tail or head) is
 * smaller.  No I/O and no knowledge of files: refine.c streams the data.
 *
 * Notation.  D is rows x cols.  A is D when rows >= cols, else D^T, so A
 * is L x S with L >= S, and G = A^T A is S x S.  The eigenvalues of G are
 * the squared singular values of D; its eigenvectors are the right
 * singular vectors of D (rows >= cols) or the left ones (rows < cols).
 * Everything is double precision: float32 moves eRank enough to flip k
 * (see docs/numerics.md).
 */
#ifndef TIMBER_SPECTRUM_H
#define TIMBER_SPECTRUM_H

#include <stddef.h>

#include "timber.h"

/* eRank = exp(-sum p_i ln p_i), p_i = s_i / sum s; 0 when sum s = 0.
 * s need not be sorted; terms with p_i = 0 add nothing. */
double tb_erank(const double *s, size_t r);

/* k = ceil(eRank) clamped to [0, r]. */
size_t tb_cutoff(double erank, size_t r);

/* Which LAPACK route an eigen-solve took (spectrum.c's header comment):
 * recorded in every computed spectrum so tests can assert that each
 * fallback is really reached.  A spectrum from the cache has none. */
typedef enum tb_values_route {
    TB_VALUES_NONE = 0,
    TB_VALUES_DQDS,   /* dlarre: one unsplit block, S >= 3 */
    TB_VALUES_DSTERF  /* T split, S < 3, or dlarre failed */
} tb_values_route;

typedef enum tb_vectors_route {
    TB_VECTORS_NONE = 0, /* no basis wanted, or p = 0 */
    TB_VECTORS_DLARRV,   /* from dlarre's representation (DQDS only) */
    TB_VECTORS_DSTEMR,   /* dstemr('I') */
    TB_VECTORS_DSTEIN    /* dstebz + dstein, when dstemr fails */
} tb_vectors_route;

/* Routes to pass over even where they would apply (bits of
 * TB_SKIP_*), so tests can run each fallback on any matrix; 0, the
 * default, in every real run. */
extern unsigned tb_spectrum_skip;
#define TB_SKIP_DQDS 1u   /* values by dsterf (then no dlarrv either) */
#define TB_SKIP_DSTEMR 2u /* vectors by dstebz + dstein */

/* The spectral routes of this file: how G becomes the eigenvalues and
 * the basis.  Each changes output bits, so the route is part of every
 * cache record's key (backend.h); which one a matrix takes is a
 * deterministic function of S alone (tb_spectrum_route), known before
 * the cache is looked up.  A new route is one more value here, its name
 * in tb_spectrum_route_name, and its condition in tb_spectrum_route.
 * (The LAPACK fallbacks inside a route, tb_values_route and
 * tb_vectors_route, are part of it: they follow from the data.) */
typedef enum tb_spectrum_route_id {
    TB_ROUTE_MRRR = 1,    /* dsytrd, dlarre/dlarrv (fallbacks), dlarfb */
    /* 2 was the two-stage route with Q2 applied as compact-WY blocks and
     * the chase by BLAS calls: its records are another route's now. */
    TB_ROUTE_TWOSTAGE = 3 /* dsytrd_sy2sb + bulge chase (tridiag2.c),
                           * dlarre/dlarrv (fallbacks), Q2 (tridiag2.c's
                           * kernel) then Q1 */
} tb_spectrum_route_id;

/* The route an S x S Gram matrix takes: TB_ROUTE_MRRR below
 * TB_TWOSTAGE_MIN_S, TB_ROUTE_TWOSTAGE from there on (the two-stage
 * reduction's level-3 first stage beats dsytrd's memory-bound dsymv
 * there: 2560 until the Q2 kernel's AVX-512 form and OpenBLAS's
 * AVX-512 kernels made S = 1024 and 2048 pay too, in real runs of
 * Qwen3-0.6B and Qwen3-30B-A3B shapes; at 768 it ties.  Measured in
 * docs/performance.md, "Large matrices"). */
unsigned tb_spectrum_route(size_t S);
#define TB_TWOSTAGE_MIN_S 1024
/* Bandwidth of the two-stage route's intermediate band matrix. */
#define TB_TWOSTAGE_BAND 32
/* "dsytrd-mrrr", "sy2sb-chase-mrrr-2"; NULL for a route this build does
 * not have. */
const char *tb_spectrum_route_name(unsigned route);

/* Test knob: 0 (every real run) lets tb_spectrum_route choose by S; a
 * tb_spectrum_route_id makes it return that route at every S (S < 3
 * still reduces by dsytrd, whose result is then the same). */
extern unsigned tb_spectrum_force_route;

typedef struct tb_spectrum {
    size_t S;           /* order of G = r, the number of singular values */
    double *s;          /* r singular values, descending */
    double erank;
    size_t k;           /* components kept whole: 0..k-1 */
    double tail_energy; /* sum_{i>=k} s_i^2 / sum s_i^2 (0 if D = 0) */
    int tail_side;      /* 1: `basis` spans the tail, 0: the head */
    size_t p;           /* columns of basis (min(k, r-k)) */
    double *basis;      /* S x p, column-major: orthonormal eigenvectors */
    tb_values_route values_route;
    tb_vectors_route vectors_route;
    unsigned route;     /* the tb_spectrum_route_id it was computed by */
} tb_spectrum;

/* The leading dimension to store an S x S Gram matrix with (S, or a
 * little more where S would make columns collide in the caches). */
size_t tb_gram_ld(size_t S);

/* From the Gram matrix G (S x S with leading dimension ld, lower triangle
 * in column-major order == upper triangle in row-major order; overwritten),
 * computes the spectrum and, when want_basis, the basis of the smaller side
 * of the cut.  `what` names the tensor in error messages. */
timber_status tb_spectrum_from_gram(double *G, size_t S, size_t ld,
                                    int want_basis, tb_spectrum *out,
                                    const char *what, timber_error *err);

/* The same by a given route, with the time of its steps attributed to
 * the reduce / values / vectors / back phases of meter (meter.h; NULL:
 * not timed).  tb_spectrum_from_gram is route tb_spectrum_route(S),
 * untimed. */
struct tb_meter;
timber_status tb_spectrum_from_gram_on(unsigned route, struct tb_meter *meter,
                                       double *G, size_t S, size_t ld,
                                       int want_basis, tb_spectrum *out,
                                       const char *what, timber_error *err);

void tb_spectrum_clear(tb_spectrum *sp);

#endif /* TIMBER_SPECTRUM_H */
