/*
 * backend_cpu.c — the CPU backend (backend.h): the Gram panels by dsyrk,
 * the spectrum by spectrum.c's LAPACK routes, the projection by dgemm,
 * all in double.  OpenBLAS's dsyrk and dgemm divide the output among
 * threads and never split a sum, so their bits do not depend on the
 * thread count; the eigen-solves run on one thread (spectrum.c).
 */
#include "backend.h"

#include <stdio.h>

#include <cblas.h>

enum { CPU_ID = 1 };

static void cpu_gram(int tall, uint64_t S, uint64_t len, const double *P,
                     uint64_t ld, double *G, size_t ldg)
{
    cblas_dsyrk(CblasRowMajor, CblasUpper, tall ? CblasTrans : CblasNoTrans,
                (int)S, (int)len, 1.0, P, (int)ld, 1.0, G, (int)ldg);
}

/* Z = U^T D over the row blocks, where U = basis (m x p, column-major:
 * row r0 of U^T's blocks starts at basis + r0, stride m). */
static void cpu_project_accumulate(const tb_projection *pj, uint64_t r0,
                                   uint64_t nr, const double *D)
{
    int p = (int)pj->p, n = (int)pj->n, m = (int)pj->m;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, n, (int)nr,
                1.0, pj->basis + r0, m, D, n, 1.0, pj->Z, n);
}

static void cpu_project(const tb_projection *pj, uint64_t r0, uint64_t nr,
                        const double *D, double *P)
{
    int p = (int)pj->p, n = (int)pj->n;
    if (pj->m >= pj->n) {
        /* Y = D_blk V, P = Y V^T (V = basis, n x p; Vt p x n row-major). */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, p, n,
                    1.0, D, n, pj->basis, n, 0.0, pj->Y, p);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, n, p,
                    1.0, pj->Y, p, pj->basis, n, 0.0, P, n);
    } else {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nr, n, p,
                    1.0, pj->basis + r0, (int)pj->m, pj->Z, n, 0.0, P, n);
    }
}

static const tb_backend cpu = {
    "cpu",
    CPU_ID,
    tb_spectrum_route,
    tb_spectrum_route_name,
    cpu_gram,
    tb_spectrum_from_gram_on,
    cpu_project_accumulate,
    cpu_project,
};

const tb_backend *tb_backend_cpu(void) { return &cpu; }

uint32_t tb_route_test_id = 0;

uint32_t tb_backend_route(const tb_backend *be, size_t S)
{
    if (tb_route_test_id)
        return tb_route_test_id;
    return (be->id << 16) | (be->route(S) & 0xffffu);
}

unsigned tb_route_spectral(uint32_t route) { return route & 0xffffu; }

const char *tb_route_name(uint32_t route, char *buf, size_t size)
{
    /* One backend today; a second adds its entry here. */
    static const tb_backend *const all[] = {&cpu};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        const char *spec = all[i]->route_name(route & 0xffffu);
        if (all[i]->id == route >> 16 && spec) {
            snprintf(buf, size, "%s/%s", all[i]->name, spec);
            return buf;
        }
    }
    snprintf(buf, size, "unknown");
    return buf;
}
