/*
 * version.c — `timber --version [--verbose]`: the version, and for bug
 * reports the facts of this build and this process that change results or
 * speed: the BLAS and LAPACK actually loaded (Debian's alternatives can
 * swap them under an installed binary, so the path is asked of the
 * dynamic linker, not taken from the build), the BLAS thread count, the
 * compiler and the build type.
 *
 * These are facts about the process, not part of libtimber's API, so they
 * are read here from OpenBLAS, LAPACKE and the dynamic linker directly.
 * The compiler and build type come from CMakeLists.txt as definitions.
 */
#include <cblas.h>
#include <dlfcn.h>
#include <lapacke.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifndef TIMBER_C_COMPILER
#define TIMBER_C_COMPILER "unknown"
#endif
#ifndef TIMBER_BUILD_TYPE
#define TIMBER_BUILD_TYPE ""
#endif
#ifndef TIMBER_SANITIZERS
#define TIMBER_SANITIZERS "none"
#endif

/* Prints "label: FILE" for the shared object that the process's global
 * symbol lookup resolves `symbol` to, i.e. the one every caller of that
 * symbol really runs; FILE's real path follows when a link (an
 * alternatives entry) stands between them. */
static void print_provider(const char *label, const char *symbol)
{
    void *addr = dlsym(RTLD_DEFAULT, symbol);
    Dl_info info;
    if (!addr || !dladdr(addr, &info) || !info.dli_fname) {
        printf("%s: (%s not found)\n", label, symbol);
        return;
    }
    char real[PATH_MAX];
    if (realpath(info.dli_fname, real) && strcmp(real, info.dli_fname) != 0)
        printf("%s: %s -> %s\n", label, info.dli_fname, real);
    else
        printf("%s: %s\n", label, info.dli_fname);
}

static const char *parallel_name(int mode)
{
    switch (mode) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "OpenMP";
    default: return "unknown threading";
    }
}

int cli_print_version(int verbose)
{
    printf("timber %s\n", TIMBER_VERSION_STRING);
    if (!verbose)
        return cli_finish_stdout(EXIT_OK);

    printf("libtimber: %s\n", timber_version());
    /* openblas_get_config() ends with a space on some builds. */
    const char *config = openblas_get_config();
    size_t n = strlen(config);
    while (n > 0 && config[n - 1] == ' ')
        n--;
    printf("BLAS: %.*s (core %s, %s)\n", (int)n, config,
           openblas_get_corename(), parallel_name(openblas_get_parallel()));
    print_provider("BLAS library", "cblas_dgemm");
    printf("BLAS threads: %d (of %d processors)\n", openblas_get_num_threads(),
           openblas_get_num_procs());
    lapack_int major = 0, minor = 0, patch = 0;
    LAPACKE_ilaver(&major, &minor, &patch);
    printf("LAPACK: %d.%d.%d\n", (int)major, (int)minor, (int)patch);
    /* LAPACKE's wrappers call the Fortran routines: dstemr_ is the one
     * the eigen route always runs. */
    print_provider("LAPACK library", "dstemr_");
    print_provider("LAPACKE library", "LAPACKE_dstemr");
    printf("compiler: %s\n", TIMBER_C_COMPILER);
    printf("build type: %s\n",
           TIMBER_BUILD_TYPE[0] ? TIMBER_BUILD_TYPE : "(none)");
    printf("sanitizers: %s\n", TIMBER_SANITIZERS);
    return cli_finish_stdout(EXIT_OK);
}
