/*
 * refine.c — `timber [refine] BASE INSTRUCT OUT [options]`: argument
 * parsing, signal handling, progress on a terminal, the closing summary
 * and the per-tensor report files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char cli_refine_help[] =
    "usage: timber [refine] BASE INSTRUCT OUT [options]\n"
    "\n"
    "Writes the Timber-refined Instruct checkpoint to the directory OUT: for\n"
    "every weight matrix present in both checkpoints with the same shape,\n"
    "the delta D = Instruct - Base keeps its top k = ceil(eRank(D)) singular\n"
    "components and its tail is multiplied by gamma:\n"
    "    OUT = Instruct - (1 - gamma) * tail(D)\n"
    "1-D tensors, Instruct-only tensors, non-float tensors and tensors whose\n"
    "shape differs from Base's are copied from Instruct; Base-only tensors\n"
    "are not written.  Instruct's shard layout, dtypes and non-weight files\n"
    "(config, tokenizer, ...) are kept.\n"
    "\n"
    "options:\n"
    "  --gamma G[,G...]   tail factor in [0, 1] (default 0.2; 0 = Timber-L);\n"
    "                     a list writes OUT/gamma-<G>/ for each value\n"
    "  --include REGEX    refine only tensors whose name matches (POSIX\n"
    "                     extended regex, repeatable)\n"
    "  --exclude REGEX    copy tensors whose name matches (repeatable)\n"
    "  --strict           a shape mismatch is an error, not a copy\n"
    "  --force            replace OUT if it exists (once the new one is done)\n"
    "  --report FILE      per-tensor report, JSON or CSV by extension\n"
    "                     (.json / .csv; repeatable)\n"
    "  --cache PATH       the SVD cache: a file, or a directory that parts\n"
    "                     share (an existing directory, or PATH ending in\n"
    "                     '/'); default: one file per pair under\n"
    "                     $XDG_CACHE_HOME/timber/ or ~/.cache/timber/\n"
    "  --no-cache         neither read nor write a cache\n"
    "  --matrix-view V    auto (default): a stacked expert tensor [E, a, b]\n"
    "                     is E matrices a x b; flatten: every tensor is\n"
    "                     d0 x rest, the authors' view\n"
    "  --threads N        worker threads (default: one per core); the output\n"
    "                     is byte-identical for any N\n"
    "  --part I/N         compute only part I of N (0 <= I < N) into the\n"
    "                     staging directory beside OUT; `timber finalize\n"
    "                     OUT` publishes OUT once all N parts are complete;\n"
    "                     --part auto takes I and N from the Slurm array\n"
    "                     task (SLURM_ARRAY_TASK_ID, _MIN, _STEP, _COUNT),\n"
    "                     or I from JOB_COMPLETION_INDEX with --parts N\n"
    "  --parts N          the number of parts, for --part auto\n"
    "  --timings          a line on stderr with the seconds spent in each\n"
    "                     phase (read, gram, ..., wait), summed over tensors\n"
    "  -q, --quiet        no progress and no summary (errors and warnings\n"
    "                     still go to stderr)\n"
    "  -h, --help         show this help\n"
    "\n"
    "OUT is built beside itself under a temporary name and renamed into\n"
    "place only when complete; a failed or interrupted run leaves nothing.\n"
    "Nothing is written to stdout; progress (on a terminal), warnings and\n"
    "the summary go to stderr.\n";

/* Groups copy/drop reasons for the summary: shape mismatches carry the
 * shapes in their reason, so they are counted under one label. */
static const char *reason_label(const char *reason)
{
    if (strncmp(reason, "shape ", 6) == 0)
        return "shape differs from Base";
    if (strncmp(reason, "dtype ", 6) == 0 ||
        strncmp(reason, "Base's dtype", 12) == 0)
        return "not a float dtype";
    return reason;
}

/* The environment's part for --part auto: a Slurm array task (index from
 * its array's min and step) or a Kubernetes Indexed Job pod (whose count
 * is not in its environment: --parts). */
static int auto_part(size_t parts, size_t *I, size_t *N)
{
    const char *id = getenv("SLURM_ARRAY_TASK_ID");
    const char *k8s = getenv("JOB_COMPLETION_INDEX");
    size_t v, min = 0, step = 1, count;
    if (id) {
        const char *c = getenv("SLURM_ARRAY_TASK_COUNT");
        const char *m = getenv("SLURM_ARRAY_TASK_MIN");
        const char *st = getenv("SLURM_ARRAY_TASK_STEP");
        if (!cli_parse_count(id, 100000000, &v) || !c ||
            !cli_parse_count(c, 100000, &count) || count == 0 ||
            (m && !cli_parse_count(m, 100000000, &min)) ||
            (st && (!cli_parse_count(st, 100000000, &step) || step == 0)) ||
            v < min || (v - min) % step || (v - min) / step >= count)
            return cli_usage("refine",
                             "--part auto: SLURM_ARRAY_TASK_ID=%s does not "
                             "index an array of SLURM_ARRAY_TASK_COUNT=%s "
                             "(MIN %s, STEP %s)",
                             id, c ? c : "(unset)", m ? m : "(unset)",
                             st ? st : "(unset)");
        if (parts && parts != count)
            return cli_usage("refine",
                             "--part auto: --parts %zu, but the Slurm array "
                             "has %zu tasks",
                             parts, count);
        *I = (v - min) / step;
        *N = count;
        return EXIT_OK;
    }
    if (k8s) {
        if (!parts)
            return cli_usage("refine",
                             "--part auto: JOB_COMPLETION_INDEX=%s is set but "
                             "not the number of parts: add --parts N (the "
                             "Job's completions)",
                             k8s);
        if (!cli_parse_count(k8s, 100000000, &v) || v >= parts)
            return cli_usage("refine",
                             "--part auto: JOB_COMPLETION_INDEX=%s is not a "
                             "part of --parts %zu",
                             k8s, parts);
        *I = v;
        *N = parts;
        return EXIT_OK;
    }
    return cli_usage("refine", "--part auto: neither SLURM_ARRAY_TASK_ID nor "
                               "JOB_COMPLETION_INDEX is set (use --part I/N)");
}

static void print_cache_line(const timber_result *r)
{
    if (timber_result_cache_path(r)[0])
        fprintf(stderr,
                "timber: cache %s (%.1f MB): %zu tensor%s from the cache, "
                "%zu computed\n",
                timber_result_cache_path(r),
                (double)timber_result_cache_bytes(r) / 1e6,
                timber_result_cache_hits(r),
                timber_result_cache_hits(r) == 1 ? "" : "s",
                timber_result_cache_misses(r));
}

static void print_part_summary(const char *out, const timber_result *r)
{
    size_t counts[2] = {0};
    for (size_t i = 0; i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        if (!t->elsewhere && t->action != TIMBER_ACTION_DROPPED)
            counts[t->action]++;
    }
    char kept[96] = "";
    if (timber_result_part_kept(r))
        snprintf(kept, sizeof kept,
                 " (%zu of them kept from an earlier run of this part)",
                 timber_result_part_kept(r));
    fprintf(stderr,
            "timber: part %zu/%zu of %s complete: refined %zu tensor%s, "
            "copied %zu%s, in %.2f s (`timber finalize %s` publishes it "
            "once every part is)\n",
            timber_result_part_index(r), timber_result_part_count(r), out,
            counts[0], counts[0] == 1 ? "" : "s", counts[1], kept,
            timber_result_seconds(r), out);
    print_cache_line(r);
}

void cli_print_summary(const char *out, const timber_result *r)
{
    size_t counts[3] = {0};
    const char *labels[32];
    size_t lcount[32], nlabels = 0;
    timber_action laction[32];
    for (size_t i = 0; i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        counts[t->action]++;
        if (t->action == TIMBER_ACTION_REFINED)
            continue;
        const char *l = reason_label(t->reason);
        size_t j = 0;
        while (j < nlabels && strcmp(labels[j], l) != 0)
            j++;
        if (j == nlabels && nlabels < 32) {
            labels[nlabels] = l;
            laction[nlabels] = t->action;
            lcount[nlabels++] = 0;
        }
        if (j < nlabels)
            lcount[j]++;
    }
    fprintf(stderr, "timber: refined %zu tensor%s, copied %zu", counts[0],
            counts[0] == 1 ? "" : "s", counts[1]);
    for (int a = 1; a <= 2; a++) {
        if (a == 2)
            fprintf(stderr, ", dropped %zu", counts[2]);
        int first = 1;
        for (size_t j = 0; j < nlabels; j++)
            if ((int)laction[j] == a) {
                fprintf(stderr, "%s%s: %zu", first ? " (" : ", ", labels[j],
                        lcount[j]);
                first = 0;
            }
        if (!first)
            fputc(')', stderr);
    }
    fputc('\n', stderr);
    double mb = (double)timber_result_bytes_written(r) / 1e6;
    fprintf(stderr, "timber: wrote %s (", out);
    size_t ng = timber_result_gamma_count(r);
    if (ng > 1) {
        fprintf(stderr, "%zu checkpoints:", ng);
        for (size_t g = 0; g < ng; g++)
            fprintf(stderr, " %s", timber_result_gamma_dir(r, g));
        fprintf(stderr, "; ");
    } else {
        fprintf(stderr, "gamma %g; ", timber_result_gamma(r, 0));
    }
    fprintf(stderr, "%zu shard file%s, %.1f MB) in %.2f s\n",
            timber_result_shards_written(r),
            timber_result_shards_written(r) == 1 ? "" : "s", mb,
            timber_result_seconds(r));
    print_cache_line(r);
}

/* --timings: the phases of every tensor, summed (worker seconds: with
 * two workers they add up to about twice the wall time). */
static void print_timings(const timber_result *r)
{
    double sum[TIMBER_PHASE_COUNT] = {0}, total = 0;
    size_t refined = 0, copied = 0;
    for (size_t i = 0; i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        if (t->action == TIMBER_ACTION_DROPPED || t->elsewhere)
            continue;
        refined += t->action == TIMBER_ACTION_REFINED;
        copied += t->action == TIMBER_ACTION_COPIED;
        total += t->seconds;
        for (int p = 0; p < TIMBER_PHASE_COUNT; p++)
            sum[p] += t->phase_seconds[p];
    }
    fprintf(stderr, "timber: timings (worker seconds over %zu refined and "
                    "%zu copied tensors, %.2f s in all):",
            refined, copied, total);
    for (int p = 0; p < TIMBER_PHASE_COUNT; p++)
        fprintf(stderr, "%s %s %.2f", p ? "," : "", timber_phase_name(p),
                sum[p]);
    fputc('\n', stderr);
}

int cmd_refine(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    double *gammas = NULL;
    int ngammas = 0;
    cli_selection sel;
    const char **reports = calloc((size_t)argc, sizeof(char *));
    size_t nrep = 0;
    int strict = 0, force = 0, quiet = 0, threads = 0, no_cache = 0;
    int timings = 0;
    int code = cli_selection_init(&sel, argc);
    const char *cache = NULL;
    char *command = NULL, *rerun = NULL;
    const char *part = NULL;
    size_t part_i = 0, nparts = 0, parts_opt = 0;
    if (code == EXIT_OK && !reports) {
        cli_errorf("out of memory");
        code = EXIT_FAIL;
    }
    if (code)
        goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (cli_selection_option(&sel, "refine", argc, argv, &i, &code)) {
            if (code)
                goto out;
            continue;
        }
        /* Options taking a value accept "--opt VALUE" and "--opt=VALUE". */
        static const char *const valued[] = {"--gamma",   "--report",
                                             "--threads", "--cache",
                                             "--part",    "--parts"};
        int which = cli_valued_option("refine", argc, argv, &i, valued,
                                      (int)(sizeof valued / sizeof *valued),
                                      &val);
        if (which == -2) {
            code = EXIT_USAGE;
            goto out;
        }
        if (which == 0) {
            free(gammas);
            ngammas = cli_parse_gammas(val, &gammas);
            if (ngammas < 0) {
                code = EXIT_USAGE;
                goto out;
            }
        } else if (which == 1) {
            if ((code = cli_parse_report("refine", val)))
                goto out;
            reports[nrep++] = val;
        } else if (which == 2) {
            if ((code = cli_parse_threads("refine", val, &threads)))
                goto out;
        } else if (which == 3) {
            cache = val;
        } else if (which == 4) {
            part = val;
        } else if (which == 5) {
            if ((code = cli_parse_parts("refine", val, &parts_opt)))
                goto out;
        } else if (strcmp(a, "--no-cache") == 0) {
            no_cache = 1;
        } else if (strcmp(a, "--timings") == 0) {
            timings = 1;
        } else if (cli_is_help(a)) {
            code = cli_print_help(cli_refine_help);
            goto out;
        } else if (strcmp(a, "--strict") == 0) {
            strict = 1;
        } else if (strcmp(a, "--force") == 0) {
            force = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--") == 0) {
            while (++i < argc && npos < 3)
                pos[npos++] = argv[i];
            if (i < argc) {
                code = cli_usage("refine", "unexpected argument '%s'",
                                 argv[i]);
                goto out;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage("refine", "unknown option '%s'", a);
            goto out;
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            code = cli_usage("refine", "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (npos < 3) {
        code = cli_usage("refine", "needs BASE, INSTRUCT and OUT (got %d of "
                         "3)", npos);
        goto out;
    }
    if (part && strcmp(part, "auto") == 0) {
        if ((code = auto_part(parts_opt, &part_i, &nparts)))
            goto out;
    } else if (part) {
        const char *slash = strchr(part, '/');
        char ibuf[16];
        size_t il = slash ? (size_t)(slash - part) : 0;
        if (slash && il < sizeof ibuf) {
            memcpy(ibuf, part, il);
            ibuf[il] = '\0';
        }
        if (!slash || il >= sizeof ibuf ||
            !cli_parse_count(ibuf, 100000, &part_i) ||
            !cli_parse_count(slash + 1, 100000, &nparts) || nparts == 0 ||
            part_i >= nparts) {
            code = cli_usage("refine",
                             "--part '%s': not I/N with 0 <= I < N <= "
                             "100000, nor auto",
                             part);
            goto out;
        }
        if (parts_opt && parts_opt != nparts) {
            code = cli_usage("refine", "--part %s disagrees with --parts %zu",
                             part, parts_opt);
            goto out;
        }
    } else if (parts_opt) {
        code = cli_usage("refine", "--parts needs --part auto");
        goto out;
    }

    cli_progress u;
    cli_progress_init(&u, quiet);
    timber_refine_options opt;
    timber_refine_options_init(&opt);
    opt.gammas = gammas;
    opt.ngammas = (size_t)(ngammas > 0 ? ngammas : 0);
    opt.include = sel.include;
    opt.ninclude = sel.ninclude;
    opt.exclude = sel.exclude;
    opt.nexclude = sel.nexclude;
    opt.strict = strict;
    opt.force = force;
    opt.threads = threads;
    opt.cache_path = cache;
    opt.no_cache = no_cache;
    opt.matrix_view = sel.view;
    opt.part_index = part_i;
    opt.part_count = nparts;
    opt.progress = cli_progress_show;
    opt.warning = cli_progress_warning;
    opt.user = &u;
    opt.cancel = &cli_cancel;
    command = cli_command_line(argc, argv, 1);
    rerun = nparts ? cli_command_line(argc, argv, 0) : NULL;
    opt.command = command;
    opt.part_command = rerun;
    cli_catch_signals();

    /* Reports are written after OUT is published, so the library checks
     * them before any work: not an input, OUT, the cache or one another,
     * and writable where they are (a disk that fills up in between can
     * still fail one, and says so). */
    opt.outputs = reports;
    opt.noutputs = nrep;

    timber_result *res = NULL;
    timber_error err;
    timber_status st = timber_refine(pos[0], pos[1], pos[2], &opt, &res, &err);
    cli_progress_clear(&u);
    if (st == TIMBER_ERR_INTERRUPTED && nparts) {
        cli_errorf("interrupted by %s; part %zu/%zu of %s is not complete: "
                   "run it again to finish it (what it wrote is kept)",
                   cli_signal_name(), part_i, nparts, pos[2]);
        code = cli_interrupted_exit();
    } else if (st == TIMBER_ERR_INTERRUPTED) {
        cli_errorf("interrupted by %s; %s was not written and temporary "
                   "files were removed",
                   cli_signal_name(), pos[2]);
        code = cli_interrupted_exit();
    } else if (st != TIMBER_OK) {
        code = cli_status_exit("refine", st, &err);
    } else {
        if (!quiet && nparts)
            print_part_summary(pos[2], res);
        else if (!quiet)
            cli_print_summary(pos[2], res);
        if (timings)
            print_timings(res);
        for (size_t i = 0; i < nrep && code == EXIT_OK; i++)
            code = cli_write_report(reports[i], res);
    }
    timber_result_free(res);
out:
    free(command);
    free(rerun);
    free(gammas);
    cli_selection_free(&sel);
    free(reports);
    return code;
}
