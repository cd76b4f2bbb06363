/*
 * backend.h — the one seam between the orchestration (refine.c, erank.c,
 * matrix.c's panel loops) and the arithmetic: every BLAS/LAPACK step of a
 * refinement goes through a tb_backend.  Today there is one, the CPU
 * (backend_cpu.c: OpenBLAS and LAPACK in double); another (a GPU) slots in
 * by filling the same table, without touching refine.c.
 *
 * Steps, per matrix (A = D or D^T, L x S, L >= S; spectrum.h's notation):
 *   gram      G += the contribution of one panel of A (pass 1);
 *   spectrum  s, eRank, k and the basis of the smaller side, from G;
 *   project   per row block of D: the projection P onto the basis' span
 *             (pass 3); a wide matrix first accumulates Z = U^T D over
 *             the row blocks (pass 2, project_accumulate).
 * A backend must give the same bits for any thread count; the output
 * bytes of a run depend on the route (below), never on scheduling.
 *
 * Routes.  Every cache record carries the id of the route that computed
 * it, and a record of another route is a miss: two routes may differ in
 * the last bits of a basis, and records of both must never mix in one
 * output.  A route id is (backend id << 16) | the backend's spectral
 * route, and is a deterministic function of (backend, S), so it is known
 * before the lookup: tb_backend_route.
 */
#ifndef TIMBER_BACKEND_H
#define TIMBER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "meter.h"
#include "spectrum.h"
#include "timber.h"

/* One projection's operands (pass 2 and 3 of one matrix, m x n). */
typedef struct tb_projection {
    uint64_t m, n;
    size_t p;             /* basis columns */
    const double *basis;  /* S x p column-major (= p x S row-major) */
    double *Y;            /* tall (m >= n): room for rows x p of a block */
    double *Z;            /* wide: p x n, zeroed before pass 2 */
} tb_projection;

typedef struct tb_backend {
    const char *name; /* "cpu" */
    uint32_t id;      /* the high 16 bits of its route ids */
    /* Its spectral route for an S x S Gram matrix (the low 16 bits). */
    unsigned (*route)(size_t S);
    /* The route's name; NULL if unknown. */
    const char *(*route_name)(unsigned route);
    /* G (S x S, row stride ldg, upper triangle row-major) += P^T P for a
     * tall panel (len rows of D, row stride ld), P P^T for a wide one
     * (S rows of len columns of D, row stride ld). */
    void (*gram)(int tall, uint64_t S, uint64_t len, const double *P,
                 uint64_t ld, double *G, size_t ldg);
    /* spectrum.h's tb_spectrum_from_gram by the given spectral route,
     * with its steps timed into meter (NULL: untimed). */
    timber_status (*spectrum)(unsigned route, tb_meter *meter, double *G,
                              size_t S, size_t ld, int want_basis,
                              tb_spectrum *out, const char *what,
                              timber_error *err);
    /* Wide only: Z += U[r0 .. r0+nr)^T D_blk, D_blk nr x n row-major. */
    void (*project_accumulate)(const tb_projection *pj, uint64_t r0,
                               uint64_t nr, const double *D);
    /* P (nr x n) = the projection of rows [r0, r0+nr) of D onto the
     * basis' span: D_blk V V^T (tall), U_blk Z (wide). */
    void (*project)(const tb_projection *pj, uint64_t r0, uint64_t nr,
                    const double *D, double *P);
} tb_backend;

/* The OpenBLAS/LAPACK backend. */
const tb_backend *tb_backend_cpu(void);

/* The route id of the records an S x S Gram matrix gets on backend be:
 * (be->id << 16) | be->route(S), or tb_route_test_id when that is set. */
uint32_t tb_backend_route(const tb_backend *be, size_t S);

/* The spectral route of a route id (its low 16 bits). */
unsigned tb_route_spectral(uint32_t route);

/* A route id's name, "cpu/dsytrd-mrrr" (backend/spectral route), into
 * buf; "unknown" when this build has no such route. */
const char *tb_route_name(uint32_t route, char *buf, size_t size);

/* Tests only: non-zero replaces the route id of every record looked up
 * and written (the arithmetic is unchanged), to check that records of
 * another route are never applied.  0 in every real run. */
extern uint32_t tb_route_test_id;

#endif /* TIMBER_BACKEND_H */
