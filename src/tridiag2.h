/*
 * tridiag2.h — the two-stage reduction of a symmetric matrix to
 * tridiagonal form, with what LAPACK 3.11 lacks to use it for
 * eigenvectors: a band-to-tridiagonal bulge chase that keeps its
 * reflectors (Q2), and the back-transformation of a few eigenvectors
 * through Q2 (blocked) and through the dense-to-band reflectors (Q1).
 *
 *   stage 1: dsytrd_sy2sb, G = Q1 B Q1^T with B banded (bandwidth b),
 *            level 3, Q1 left in G below the band (as dgeqrf leaves it);
 *   stage 2: B = Q2 T Q2^T by bulge chasing (tb_band_chase), Q2 kept as
 *            one Householder reflector of length <= b per step of each
 *            sweep;
 *   vectors: Z (eigenvectors of T) -> Q1 Q2 Z.
 *
 * Everything is sequential and runs on the caller's BLAS thread count
 * (spectrum.c sets one): the result does not depend on any thread count.
 */
#ifndef TIMBER_TRIDIAG2_H
#define TIMBER_TRIDIAG2_H

#include <stddef.h>

/* The stage-2 reflectors: sweep j (0 <= j < nsweeps) has steps
 * 0..steps(j)-1; step s acts on rows pos = j + 1 + s*b .. pos + len - 1
 * (len = min(b, n - pos)) with v (v[0] = 1) and tau. */
typedef struct tb_q2 {
    size_t n, b, nsweeps;
    size_t *off;  /* nsweeps + 1: first step of sweep j in the arrays */
    double *v;    /* b doubles per step */
    double *tau;  /* one per step */
} tb_q2;

void tb_q2_free(tb_q2 *q);

/* Stage 1 on the lower triangle of A (n x n, leading dimension lda):
 * the band, lower, into AB (ldab >= 2b + 1, n columns; zeroed here, rows
 * b+1.. are the bulge chase's room), Q1's reflectors into A below the
 * band and tau (n - b).  0 on success, -1 out of memory, > 0 LAPACK's
 * info. */
int tb_sy2sb(size_t n, size_t b, double *A, size_t lda, double *AB,
             size_t ldab, double *tau);

/* Stage 2: the lower band matrix in AB (bandwidth b, ldab >= 2b + 1,
 * overwritten) to tridiagonal (d: n, e: n - 1), keeping Q2 in *q.
 * 0 on success, -1 out of memory. */
int tb_band_chase(size_t n, size_t b, double *AB, size_t ldab, double *d,
                  double *e, tb_q2 *q);

/* Z := Q2 Z, Z n x p with leading dimension ldz.  blocked = 0: one
 * reflector at a time (the level-2 baseline); else `blocked` consecutive
 * sweeps' reflectors of one step grouped into one compact-WY block
 * (dlarft), applied with dlarfb (method 0) or with two DGEMMs on a
 * transposed copy of Z (method 1, rows of Z contiguous); or the same
 * groups applied reflector by reflector by tridiag2.c's own kernel on
 * that copy, in L1-sized column chunks (method 2).  0 on success, -1 out
 * of memory. */
int tb_q2_apply(const tb_q2 *q, size_t blocked, int method, double *Z,
                size_t ldz, size_t p);

/* Tests: the widest kernel method 2 may use, where the CPU has it: 2
 * AVX-512 (the default), 1 AVX2 and FMA, 0 plain C.  The AVX-512 and
 * AVX2 kernels give the same bits; plain C (no FMA) other roundings.
 * 0 also makes the chase use its plain loops for its full 32-row
 * blocks instead of their AVX2 form (the same bits either way). */
extern int tb_q2_kernel_cap;

/* Z := Q Z for the Q = H(1) ... H(n-off) whose reflectors lie below the
 * off-th subdiagonal of A (dsytrd: off = 1; dsytrd_sy2sb: off = b),
 * as dormqr would compute it: dlarft + dlarfb in blocks of 32, the last
 * block first.  0 on success, -1 out of memory. */
int tb_q1_apply(size_t n, size_t off, size_t p, const double *A, size_t lda,
                const double *tau, double *Z, size_t ldz);

#endif /* TIMBER_TRIDIAG2_H */
