/*
 * dgemm_rate.c — timber-dgemm-rate: measures this machine's DGEMM and
 * SGEMM rates (GFLOP/s) with OpenBLAS on every core, so scripts/bench.sh
 * can state timber's achieved rate against what BLAS gets in the same run.
 * Best of a few repetitions of an n x n x n product (default n = 2048).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cblas.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2048;
    if (n < 64 || n > 16384) {
        fprintf(stderr, "usage: timber-dgemm-rate [N in 64..16384]\n");
        return 2;
    }
    size_t nn = (size_t)n * (size_t)n;
    double *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b),
           *c = malloc(nn * sizeof *c);
    float *as = malloc(nn * sizeof *as), *bs = malloc(nn * sizeof *bs),
          *cs = malloc(nn * sizeof *cs);
    if (!a || !b || !c || !as || !bs || !cs) {
        fprintf(stderr, "timber-dgemm-rate: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = as[i] = (float)((double)(i % 1013) / 1013.0 - 0.5);
        b[i] = bs[i] = (float)((double)(i % 977) / 977.0 - 0.5);
    }
    double flops = 2.0 * n * (double)n * n, bd = 1e30, bs_t = 1e30;
    for (int r = 0; r < 4; r++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0,
                    a, n, b, n, 0.0, c, n);
        double t1 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f,
                    as, n, bs, n, 0.0f, cs, n);
        double t2 = now();
        if (t1 - t0 < bd)
            bd = t1 - t0;
        if (t2 - t1 < bs_t)
            bs_t = t2 - t1;
    }
    printf("dgemm_gflops %.1f\nsgemm_gflops %.1f\nthreads %d\n",
           flops / bd / 1e9, flops / bs_t / 1e9, openblas_get_num_threads());
    free(a);
    free(b);
    free(c);
    free(as);
    free(bs);
    free(cs);
    return 0;
}
