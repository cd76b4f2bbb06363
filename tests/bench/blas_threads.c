/*
 * blas_threads.c — timber-blas-threads: whether OpenBLAS gives the same
 * bits on 1 and on 2 threads for a DGEMM, DTRMM and DSYRK of given shapes
 * (timber's output must not depend on --threads; docs/performance.md,
 * "Large matrices").  Not a test: what it prints depends on the OpenBLAS
 * build and the machine.
 *
 *   timber-blas-threads [M N K]...   (default: a few shapes timber uses)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

static void probe(int M, int N, int K)
{
    double *A = malloc(sizeof(double) * (size_t)M * (size_t)K);
    double *B = malloc(sizeof(double) * (size_t)K * (size_t)N);
    double *C[2], *T[2], *S[2];
    for (size_t i = 0; i < (size_t)M * (size_t)K; i++)
        A[i] = sin(0.7 * (double)i);
    for (size_t i = 0; i < (size_t)K * (size_t)N; i++)
        B[i] = cos(0.3 * (double)i);
    int t0 = openblas_get_num_threads();
    for (int t = 0; t < 2; t++) {
        openblas_set_num_threads(t + 1);
        C[t] = calloc((size_t)M * (size_t)N, sizeof(double));
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0,
                    A, M, B, K, 0.0, C[t], M);
        /* T = C R^T with R the upper triangle of B's first N x N */
        T[t] = malloc(sizeof(double) * (size_t)M * (size_t)N);
        for (size_t i = 0; i < (size_t)M * (size_t)N; i++)
            T[t][i] = sin(0.1 * (double)i);
        if (K >= N)
            cblas_dtrmm(CblasColMajor, CblasRight, CblasUpper, CblasTrans,
                        CblasNonUnit, M, N, 1.0, B, K, T[t], M);
        S[t] = calloc((size_t)K * (size_t)K, sizeof(double));
        cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, K, M, 1.0, A, M,
                    0.0, S[t], K);
    }
    openblas_set_num_threads(t0);
    size_t nd = 0;
    for (size_t i = 0; i < (size_t)M * (size_t)N; i++)
        nd += C[0][i] != C[1][i];
    printf("M %d N %d K %d: dgemm %s (%zu of %zu differ), dtrmm %s, dsyrk "
           "%s\n",
           M, N, K, nd ? "DIFFERS" : "same", nd, (size_t)M * (size_t)N,
           K < N ? "-"
           : memcmp(T[0], T[1], sizeof(double) * (size_t)M * (size_t)N)
               ? "DIFFERS"
               : "same",
           memcmp(S[0], S[1], sizeof(double) * (size_t)K * (size_t)K)
               ? "DIFFERS"
               : "same");
    for (int t = 0; t < 2; t++) {
        free(C[t]);
        free(T[t]);
        free(S[t]);
    }
    free(A);
    free(B);
}

int main(int argc, char **argv)
{
    if (argc > 1 && (argc - 1) % 3 != 0) {
        fprintf(stderr, "usage: timber-blas-threads [M N K]...\n");
        return 2;
    }
    if (argc > 1) {
        for (int i = 1; i + 2 < argc; i += 3)
            probe(atoi(argv[i]), atoi(argv[i + 1]), atoi(argv[i + 2]));
        return 0;
    }
    static const int shapes[][3] = {
        {300, 300, 300},   {1000, 1000, 1000}, {4096, 150, 1024},
        {4096, 614, 4096}, {292, 16, 47},      {585, 32, 63}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        probe(shapes[i][0], shapes[i][1], shapes[i][2]);
    return 0;
}
