/*
 * finalize.c — `timber finalize OUT` and `timber plan BASE INSTRUCT
 * --parts N`: the two commands of a distributed run besides its parts
 * (`timber BASE INSTRUCT OUT --part I/N`, refine.c).  See
 * docs/distributed.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_finalize_help[] =
    "usage: timber finalize OUT [options]\n"
    "\n"
    "Finishes a refinement split into parts (`timber BASE INSTRUCT OUT\n"
    "--part I/N`, run anywhere sharing the file system): checks that all N\n"
    "parts completed with the same inputs and options and that every\n"
    "tensor's bytes are those its part recorded, writes the index, the\n"
    "model card and Instruct's other files, and publishes OUT atomically,\n"
    "byte for byte what one `timber BASE INSTRUCT OUT` writes.  Missing,\n"
    "failed or disagreeing parts: exit 1 naming them and the command that\n"
    "reruns them; nothing is published.\n"
    "\n"
    "options:\n"
    "  --force            replace OUT if it exists (once the new one is done)\n"
    "  --report FILE      per-tensor report, JSON or CSV by extension\n"
    "                     (.json / .csv; repeatable)\n"
    "  --threads N        threads reading the tensors back (default: one\n"
    "                     per core)\n"
    "  -q, --quiet        no progress and no summary\n"
    "  -h, --help         show this help\n";

int cmd_finalize(int argc, char **argv)
{
    const char *out = NULL;
    const char **reports = calloc((size_t)argc + 1, sizeof(char *));
    size_t nrep = 0;
    int force = 0, quiet = 0, threads = 0, code = EXIT_OK;
    if (!reports) {
        cli_errorf("out of memory");
        return EXIT_FAIL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val;
        int r = cli_option_value("finalize", argc, argv, &i, "--report", &val);
        int rt = r ? 0
                   : cli_option_value("finalize", argc, argv, &i, "--threads",
                                      &val);
        if (r < 0 || rt < 0) {
            code = EXIT_USAGE;
            goto done;
        }
        if (r == 1) {
            if ((code = cli_parse_report("finalize", val)))
                goto done;
            reports[nrep++] = val;
        } else if (rt == 1) {
            if ((code = cli_parse_threads("finalize", val, &threads)))
                goto done;
        } else if (cli_is_help(a)) {
            code = cli_print_help(cli_finalize_help);
            goto done;
        } else if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage("finalize", "unknown option '%s'", a);
            goto done;
        } else if (!out) {
            out = a;
        } else {
            code = cli_usage("finalize", "unexpected argument '%s'", a);
            goto done;
        }
    }
    if (!out) {
        code = cli_usage("finalize", "needs OUT");
        goto done;
    }
    cli_progress u;
    cli_progress_init(&u, quiet);
    timber_refine_options opt;
    timber_refine_options_init(&opt);
    opt.force = force;
    opt.threads = threads;
    opt.progress = cli_progress_show;
    opt.warning = cli_progress_warning;
    opt.user = &u;
    opt.cancel = &cli_cancel;
    opt.outputs = reports;
    opt.noutputs = nrep;
    cli_catch_signals();
    timber_result *res = NULL;
    timber_error err;
    timber_status st = timber_finalize(out, &opt, &res, &err);
    cli_progress_clear(&u);
    if (st == TIMBER_ERR_INTERRUPTED) {
        cli_errorf("interrupted by %s; %s was not published (the parts' "
                   "work is kept: run finalize again)",
                   cli_signal_name(), out);
        code = cli_interrupted_exit();
    } else if (st != TIMBER_OK) {
        code = cli_status_exit("finalize", st, &err);
    } else {
        if (!quiet)
            cli_print_summary(out, res);
        for (size_t i = 0; i < nrep && code == EXIT_OK; i++)
            code = cli_write_report(reports[i], res);
    }
    timber_result_free(res);
done:
    free(reports);
    return code;
}

const char cli_plan_help[] =
    "usage: timber plan BASE INSTRUCT --parts N [options]\n"
    "\n"
    "Shows how `timber BASE INSTRUCT OUT --part I/N` splits the work: a\n"
    "deterministic function of the two models' headers, the selection and\n"
    "N, balanced by estimated cost (the largest tensors first, each to the\n"
    "least loaded part).  A table per part on stdout, or JSON.\n"
    "\n"
    "options:\n"
    "  --parts N          the number of parts (1 to 100000)\n"
    "  --json             JSON: every tensor's part and estimates, and the\n"
    "                     totals per part\n"
    "  --gamma G[,G...]   the gammas the parts will write (bytes estimate)\n"
    "  --include REGEX    as for refine (repeatable)\n"
    "  --exclude REGEX    as for refine (repeatable)\n"
    "  --strict           as for refine\n"
    "  --matrix-view V    as for refine (auto or flatten)\n"
    "  -h, --help         show this help\n";

typedef struct part_sum {
    size_t tensors, refined;
    double flops, bytes;
} part_sum;

static int print_plan_json(const timber_parts *p, const part_sum *sum)
{
    size_t n = timber_parts_tensor_count(p), N = timber_parts_count(p);
    printf("{\n  \"parts\": %zu,\n  \"per_part\": [", N);
    for (size_t k = 0; k < N; k++)
        printf("%s\n    {\"part\": %zu, \"tensors\": %zu, \"refined\": %zu, "
               "\"flops\": %.0f, \"bytes\": %.0f}",
               k ? "," : "", k, sum[k].tensors, sum[k].refined, sum[k].flops,
               sum[k].bytes);
    printf("\n  ],\n  \"tensors\": [");
    for (size_t i = 0; i < n; i++) {
        const char *name = timber_parts_tensor_name(p, i);
        printf("%s\n    {\"name\": \"", i ? "," : "");
        for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
            if (*c == '"' || *c == '\\')
                printf("\\%c", *c);
            else if (*c < 0x20)
                printf("\\u%04x", *c);
            else
                putchar(*c);
        }
        printf("\", \"action\": \"%s\", \"part\": %zu, \"flops\": %llu, "
               "\"bytes\": %llu}",
               timber_action_name(timber_parts_tensor_action(p, i)),
               timber_parts_tensor_part(p, i),
               (unsigned long long)timber_parts_tensor_flops(p, i),
               (unsigned long long)timber_parts_tensor_bytes(p, i));
    }
    printf("\n  ]\n}\n");
    return 0;
}

static void print_plan_table(const timber_parts *p, const part_sum *sum)
{
    size_t N = timber_parts_count(p);
    double total = 0, most = 0;
    for (size_t k = 0; k < N; k++) {
        total += sum[k].flops;
        most = sum[k].flops > most ? sum[k].flops : most;
    }
    printf("%-6s %8s %8s %14s %10s\n", "part", "tensors", "refined",
           "est. GFLOP", "est. MB");
    for (size_t k = 0; k < N; k++)
        printf("%-6zu %8zu %8zu %14.1f %10.1f\n", k, sum[k].tensors,
               sum[k].refined, sum[k].flops / 1e9, sum[k].bytes / 1e6);
    printf("total %zu tensors, %.1f GFLOP; the largest part has %.1f%% of "
           "it\n",
           timber_parts_tensor_count(p), total / 1e9,
           total > 0 ? 100.0 * most / total : 0.0);
}

int cmd_plan(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0, json = 0, strict = 0, code = EXIT_OK, ngammas = 0;
    size_t nparts = 0;
    double *gammas = NULL;
    cli_selection sel;
    part_sum *sum = NULL;
    timber_parts *p = NULL;
    if ((code = cli_selection_init(&sel, argc)))
        goto done;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (cli_selection_option(&sel, "plan", argc, argv, &i, &code)) {
            if (code)
                goto done;
            continue;
        }
        static const char *const valued[] = {"--parts", "--gamma"};
        int which = cli_valued_option("plan", argc, argv, &i, valued, 2, &val);
        if (which == -2) {
            code = EXIT_USAGE;
            goto done;
        }
        if (which == 0) {
            if ((code = cli_parse_parts("plan", val, &nparts)))
                goto done;
        } else if (which == 1) {
            free(gammas);
            if ((ngammas = cli_parse_gammas(val, &gammas)) < 0) {
                code = EXIT_USAGE;
                goto done;
            }
        } else if (cli_is_help(a)) {
            code = cli_print_help(cli_plan_help);
            goto done;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage("plan", "unknown option '%s'", a);
            goto done;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            code = cli_usage("plan", "unexpected argument '%s'", a);
            goto done;
        }
    }
    if (npos < 2 || !nparts) {
        code = cli_usage("plan", npos < 2 ? "needs BASE and INSTRUCT"
                                          : "needs --parts N");
        goto done;
    }
    timber_refine_options opt;
    timber_refine_options_init(&opt);
    opt.gammas = gammas;
    opt.ngammas = (size_t)(ngammas > 0 ? ngammas : 0);
    opt.include = sel.include;
    opt.ninclude = sel.ninclude;
    opt.exclude = sel.exclude;
    opt.nexclude = sel.nexclude;
    opt.strict = strict;
    opt.matrix_view = sel.view;
    timber_error err;
    timber_status st = timber_parts_plan(pos[0], pos[1], &opt, nparts, &p,
                                         &err);
    if (st) {
        code = cli_status_exit("plan", st, &err);
        goto done;
    }
    if (!(sum = calloc(nparts, sizeof *sum))) {
        cli_errorf("out of memory");
        code = EXIT_FAIL;
        goto done;
    }
    for (size_t i = 0; i < timber_parts_tensor_count(p); i++) {
        part_sum *s = &sum[timber_parts_tensor_part(p, i)];
        s->tensors++;
        s->refined +=
            timber_parts_tensor_action(p, i) == TIMBER_ACTION_REFINED;
        s->flops += (double)timber_parts_tensor_flops(p, i);
        s->bytes += (double)timber_parts_tensor_bytes(p, i);
    }
    if (json)
        print_plan_json(p, sum);
    else
        print_plan_table(p, sum);
    code = cli_finish_stdout(EXIT_OK);
done:
    timber_parts_free(p);
    free(sum);
    free(gammas);
    cli_selection_free(&sel);
    return code;
}
