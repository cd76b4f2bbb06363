/*
 * refine_route.c — timber-refine-route: `timber BASE INSTRUCT OUT --gamma
 * G --threads N --no-cache` with the spectrum's reduction forced to one
 * route (tb_spectrum_force_route), so the functional tests can check a
 * route against the float64 reference at sizes below its threshold.
 * A test helper, not installed.
 *
 *   usage: timber-refine-route dsytrd|twostage BASE INSTRUCT OUT GAMMA N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spectrum.h"
#include "timber.h"

int main(int argc, char **argv)
{
    if (argc != 7 || (strcmp(argv[1], "dsytrd") != 0 &&
                      strcmp(argv[1], "twostage") != 0)) {
        fprintf(stderr, "usage: timber-refine-route dsytrd|twostage BASE "
                        "INSTRUCT OUT GAMMA THREADS\n");
        return 2;
    }
    tb_spectrum_force_route = strcmp(argv[1], "dsytrd") == 0
                                  ? TB_ROUTE_MRRR
                                  : TB_ROUTE_TWOSTAGE;
    double gamma = strtod(argv[5], NULL);
    timber_refine_options o;
    timber_refine_options_init(&o);
    o.gammas = &gamma;
    o.ngammas = 1;
    o.no_cache = 1;
    o.threads = atoi(argv[6]);
    timber_error err;
    timber_result *res = NULL;
    timber_status st = timber_refine(argv[2], argv[3], argv[4], &o, &res,
                                     &err);
    timber_result_free(res);
    if (st != TIMBER_OK) {
        fprintf(stderr, "timber-refine-route: %s\n", err.message);
        return 1;
    }
    return 0;
}
