/*
 * erank.c — `timber erank BASE INSTRUCT` / `timber erank MODEL`: the
 * paper's weight-level analysis as a table on stdout (grouped by layer,
 * with per-module summaries), JSON and CSV files, and a gnuplot picture of
 * its Figures 1 and 2.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

extern char **environ;

const char cli_erank_help[] =
    "usage: timber erank BASE INSTRUCT [options]\n"
    "       timber erank MODEL [options]\n"
    "\n"
    "For every tensor that refinement would refine: shape, rank r, the\n"
    "effective rank of Base, of Instruct and of the delta, k = ceil(eRank of\n"
    "the delta), eRank/r of the delta and ||D||_F / ||W_B||_F; grouped by\n"
    "layer, with mean and spread per module type (q, k, v, o, gate, up,\n"
    "down, embeddings, lm_head, experts).  With one MODEL: the eRank of each\n"
    "float tensor of 2+ dimensions.  Singular values only, in double\n"
    "precision; the delta's comes from the SVD cache when it has it.\n"
    "\n"
    "options:\n"
    "  --include REGEX   analyse only matching tensors (repeatable)\n"
    "  --exclude REGEX   skip matching tensors (repeatable)\n"
    "  --json FILE       one object per tensor (name, shape, rank,\n"
    "                    erank_base, erank_instruct, erank_delta, k, ...)\n"
    "  --csv FILE        the same as CSV\n"
    "  --plot FILE       .png or .svg: eRank per layer of Base and Instruct\n"
    "                    per module type (the paper's Figure 1) and the\n"
    "                    distribution of eRank/r of the deltas (Figure 2);\n"
    "                    needs gnuplot (apt-get install gnuplot-nox)\n"
    "  --cache PATH      read delta spectra from this SVD cache (a file or a\n"
    "                    directory)\n"
    "  --no-cache        do not read any cache\n"
    "  --threads N       worker threads (default: one per core)\n"
    "  --matrix-view V   auto (default: one row per expert of a stacked\n"
    "                    [E, a, b] tensor) or flatten (d0 x rest)\n"
    "  -q, --quiet       no progress on stderr\n"
    "  -h, --help        show this help\n";

/* ------------------------------------------------------ classification */

/* Module types come from the library (timber_module_type), which the
 * model card's summary uses too. */
enum { NMODULES = TIMBER_MODULE_TYPES };

/* The decoder layer of a tensor ("...layers.12.") or -1. */
static long layer_of(const char *name)
{
    static const char *const keys[] = {"layers.", "layer.", "blocks.",
                                       ".h."};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *p = strstr(name, keys[k]);
        if (!p)
            continue;
        p += strlen(keys[k]);
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end != p && *end == '.')
            return v;
    }
    return -1;
}

static void shape_text(char *buf, size_t size, const timber_erank_row *r)
{
    cli_format_shape(buf, size, r->ndim, r->shape, "x", 0);
}

/* ----------------------------------------------------------------- table */

typedef struct stat_acc {
    size_t n;
    double sum, sum2, min, max;
} stat_acc;

static void acc_add(stat_acc *a, double v)
{
    if (!isfinite(v))
        return;
    if (a->n == 0 || v < a->min)
        a->min = v;
    if (a->n == 0 || v > a->max)
        a->max = v;
    a->n++;
    a->sum += v;
    a->sum2 += v * v;
}

static double acc_mean(const stat_acc *a)
{
    return a->n ? a->sum / (double)a->n : NAN;
}

static double acc_sd(const stat_acc *a)
{
    if (a->n < 2)
        return 0.0;
    double m = acc_mean(a);
    double v = (a->sum2 - (double)a->n * m * m) / (double)(a->n - 1);
    return v > 0 ? sqrt(v) : 0.0;
}

static void print_row(const timber_erank_row *r, int pair)
{
    char shape[64];
    shape_text(shape, sizeof shape, r);
    fputs("  ", stdout);
    cli_put_text(stdout, r->name, 44);
    if (pair)
        printf(" %-14s %6llu %9.2f %9.2f %6.3f %9.2f %6llu %6.3f "
               "%8.4f\n",
               shape, (unsigned long long)r->rank, r->erank_base,
               r->erank_instruct, r->erank_instruct / r->erank_base,
               r->erank_delta, (unsigned long long)r->k, r->delta_ratio,
               r->delta_rel_norm);
    else
        printf(" %-14s %6llu %9.2f %6.3f\n", shape,
               (unsigned long long)r->rank, r->erank_instruct,
               r->erank_instruct / (double)r->rank);
}

static void print_table(const timber_erank_result *res)
{
    int pair = timber_erank_is_pair(res);
    size_t n = timber_erank_count(res);
    if (pair)
        printf("  %-44s %-14s %6s %9s %9s %6s %9s %6s %6s %8s\n", "tensor",
               "shape", "r", "eRank B", "eRank I", "I/B", "eRank D", "k",
               "D/r", "|D|/|B|");
    else
        printf("  %-44s %-14s %6s %9s %6s\n", "tensor", "shape", "r",
               "eRank", "e/r");
    long maxlayer = -1;
    for (size_t i = 0; i < n; i++) {
        long l = layer_of(timber_erank_row_at(res, i)->name);
        if (l > maxlayer)
            maxlayer = l;
    }
    /* Tensors outside layers first (embeddings), then layer by layer. */
    for (long l = -1; l <= maxlayer; l++) {
        int header = 0;
        for (size_t i = 0; i < n; i++) {
            const timber_erank_row *r = timber_erank_row_at(res, i);
            if (layer_of(r->name) != l)
                continue;
            if (!header) {
                if (l < 0)
                    printf("outside layers\n");
                else
                    printf("layer %ld\n", l);
                header = 1;
            }
            print_row(r, pair);
        }
    }
    stat_acc ratio[NMODULES] = {{0}}, ib[NMODULES] = {{0}};
    for (size_t i = 0; i < n; i++) {
        const timber_erank_row *r = timber_erank_row_at(res, i);
        int m = timber_module_type(r->name);
        if (pair) {
            acc_add(&ratio[m], r->delta_ratio);
            acc_add(&ib[m], r->erank_instruct / r->erank_base);
        } else {
            acc_add(&ratio[m], r->erank_instruct / (double)r->rank);
        }
    }
    printf("\nper module type%s\n",
           pair ? " (eRank/r of the delta; eRank Instruct / eRank Base)"
                : " (eRank/r)");
    printf("  %-11s %6s %8s %8s %8s %8s", "module", "count", "mean", "sd",
           "min", "max");
    if (pair)
        printf(" %9s %8s", "I/B mean", "I/B sd");
    printf("\n");
    for (int m = 0; m < NMODULES; m++) {
        if (!ratio[m].n)
            continue;
        printf("  %-11s %6zu %8.4f %8.4f %8.4f %8.4f", timber_module_type_name(m),
               ratio[m].n, acc_mean(&ratio[m]), acc_sd(&ratio[m]),
               ratio[m].min, ratio[m].max);
        if (pair)
            printf(" %9.5f %8.5f", acc_mean(&ib[m]), acc_sd(&ib[m]));
        printf("\n");
    }
    printf("total: %zu tensor%s analysed\n", n, n == 1 ? "" : "s");
}

/* ------------------------------------------------------------ JSON, CSV */

static cJSON *number_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static int write_json(const char *path, const timber_erank_result *res)
{
    int pair = timber_erank_is_pair(res);
    cJSON *arr = cJSON_CreateArray();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < timber_erank_count(res); i++) {
        const timber_erank_row *r = timber_erank_row_at(res, i);
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) &&
             cJSON_AddStringToObject(o, "name", r->name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        ok = ok && shape;
        for (size_t d = 0; ok && d < r->ndim; d++)
            ok = cJSON_AddItemToArray(shape,
                                      cJSON_CreateNumber((double)r->shape[d]));
        ok = ok && cJSON_AddNumberToObject(o, "rank", (double)r->rank) &&
             cJSON_AddNumberToObject(o, "rows", (double)r->rows) &&
             cJSON_AddNumberToObject(o, "cols", (double)r->cols);
        if (ok && pair) {
            ok = cJSON_AddItemToObject(o, "erank_base",
                                       number_or_null(r->erank_base)) &&
                 cJSON_AddItemToObject(o, "erank_instruct",
                                       number_or_null(r->erank_instruct)) &&
                 cJSON_AddItemToObject(o, "erank_delta",
                                       number_or_null(r->erank_delta)) &&
                 cJSON_AddNumberToObject(o, "k", (double)r->k) &&
                 cJSON_AddItemToObject(o, "erank_delta_ratio",
                                       number_or_null(r->delta_ratio)) &&
                 cJSON_AddItemToObject(o, "delta_rel_norm",
                                       number_or_null(r->delta_rel_norm)) &&
                 cJSON_AddBoolToObject(o, "from_cache", r->from_cache);
        } else if (ok) {
            ok = cJSON_AddItemToObject(o, "erank",
                                       number_or_null(r->erank_instruct)) &&
                 cJSON_AddItemToObject(
                     o, "erank_ratio",
                     number_or_null(r->erank_instruct / (double)r->rank));
        }
        ok = ok &&
             cJSON_AddStringToObject(o, "dtype", timber_dtype_name(r->dtype)) &&
             cJSON_AddStringToObject(o, "module",
                                     timber_module_type_name(timber_module_type(r->name)));
        long l = layer_of(r->name);
        ok = ok && (l >= 0 ? cJSON_AddNumberToObject(o, "layer", (double)l)
                           : cJSON_AddNullToObject(o, "layer")) != NULL;
    }
    char *text = ok ? cJSON_Print(arr) : NULL;
    cJSON_Delete(arr);
    size_t len = text ? strlen(text) : 0;
    char *t2 = text ? realloc(text, len + 2) : NULL;
    if (!t2) {
        free(text);
        cli_errorf("%s: out of memory building the JSON", path);
        return -1;
    }
    t2[len] = '\n';
    t2[len + 1] = '\0';
    int rc = cli_write_file(path, t2, len + 1);
    free(t2);
    return rc;
}

static int write_csv(const char *path, const timber_erank_result *res)
{
    int pair = timber_erank_is_pair(res);
    size_t n = timber_erank_count(res);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cli_errorf("%s: out of memory building the CSV", path);
        return -1;
    }
    fprintf(f, "%s\n",
            pair ? "name,shape,rank,erank_base,erank_instruct,erank_delta,k,"
                   "erank_delta_ratio,delta_rel_norm,module,layer"
                 : "name,shape,rank,erank,erank_ratio,module,layer");
    for (size_t i = 0; i < n; i++) {
        const timber_erank_row *r = timber_erank_row_at(res, i);
        char shape[64];
        shape_text(shape, sizeof shape, r);
        long l = layer_of(r->name);
        char layer[24] = "";
        if (l >= 0)
            snprintf(layer, sizeof layer, "%ld", l);
        cli_csv_field(f, r->name);
        if (pair)
            fprintf(f, ",%s,%llu,%.17g,%.17g,%.17g,%llu,%.17g,%.17g,%s,%s\n",
                    shape, (unsigned long long)r->rank,
                    r->erank_base, r->erank_instruct, r->erank_delta,
                    (unsigned long long)r->k, r->delta_ratio,
                    r->delta_rel_norm, timber_module_type_name(timber_module_type(r->name)),
                    layer);
        else
            fprintf(f, ",%s,%llu,%.17g,%.17g,%s,%s\n", shape,
                    (unsigned long long)r->rank, r->erank_instruct,
                    r->erank_instruct / (double)r->rank,
                    timber_module_type_name(timber_module_type(r->name)), layer);
    }
    int rc = -1;
    if (fclose(f) != 0)
        cli_errorf("%s: out of memory building the CSV", path);
    else
        rc = cli_write_file(path, text, len);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ plot */

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static char *find_gnuplot(void)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        size_t l = strlen(dir) + 16;
        char *p = malloc(l);
        if (!p)
            break;
        snprintf(p, l, "%s/gnuplot", dir);
        if (access(p, X_OK) == 0) {
            free(copy);
            return p;
        }
        free(p);
    }
    free(copy);
    return NULL;
}

/* The plot is made in a private work directory (under $TMPDIR, else
 * /tmp) that holds everything gnuplot reads and writes under fixed names:
 * gnuplot runs there, so the script embeds no path at all, and the only
 * text from outside, the title (model paths), is handed over as ARG1
 * (`gnuplot -c`), a string gnuplot never parses as commands.  Then the
 * picture is published at OUT through a temporary beside it. */
#define PLOT_SCRIPT "plot.gp"
#define PLOT_RATIOS "ratio.dat"

/* One data file per module type with layer info (Figure 1), "mN.dat",
 * and the eRank/r of every delta (Figure 2); present[m] says which
 * module files exist.  0, or -1 with errno set. */
static int plot_data(const char *dir, const timber_erank_result *res,
                     int present[NMODULES])
{
    int pair = timber_erank_is_pair(res);
    size_t n = timber_erank_count(res);
    char path[4096];
    int rc = 0;
    for (int m = 0; m < NMODULES && !rc; m++) {
        present[m] = 0;
        snprintf(path, sizeof path, "%s/m%d.dat", dir, m);
        FILE *f = NULL;
        for (size_t i = 0; i < n; i++) {
            const timber_erank_row *r = timber_erank_row_at(res, i);
            long l = layer_of(r->name);
            if (timber_module_type(r->name) != m || l < 0)
                continue;
            if (!f && !(f = fopen(path, "w"))) {
                rc = -1;
                break;
            }
            fprintf(f, "%ld %.10g %.10g\n", l,
                    pair ? r->erank_base : r->erank_instruct,
                    r->erank_instruct);
            present[m] = 1;
        }
        if (f && fclose(f) != 0)
            rc = -1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, PLOT_RATIOS);
    FILE *f = rc ? NULL : fopen(path, "w");
    if (!f)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const timber_erank_row *r = timber_erank_row_at(res, i);
        fprintf(f, "%.10g\n",
                pair ? r->delta_ratio : r->erank_instruct / (double)r->rank);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* The gnuplot script: the figures' layout over the data files, writing
 * the picture to `picture` (a fixed name in the work directory). */
static void plot_script(FILE *g, const timber_erank_result *res,
                        const int present[NMODULES], int png,
                        const char *picture)
{
    int pair = timber_erank_is_pair(res);
    size_t n = timber_erank_count(res);
    int npanels = 0;
    for (int m = 0; m < NMODULES; m++)
        npanels += present[m];
    if (png)
        fprintf(g, "set terminal pngcairo size 1800,1200 font 'Sans,11' "
                   "noenhanced\n");
    else
        fprintf(g, "set terminal svg size 1800,1200 font 'Sans,11' "
                   "noenhanced background rgb 'white'\n");
    fprintf(g, "set output '%s'\n", picture);
    fprintf(g, "set datafile separator whitespace\n");
    fprintf(g, "set multiplot title ARG1 font 'Sans,15'\n");
    int cols = npanels > 4 ? (npanels + 1) / 2 : (npanels ? npanels : 1);
    int rows = npanels > cols ? 2 : 1;
    double top = 0.93, fig1_h = 0.56, w = 1.0 / cols;
    double h = fig1_h / rows;
    int at = 0;
    /* Layers are whole numbers; y from 0 so that "barely changes" looks
     * like it (autoscale would magnify 0.01 % differences). */
    long maxl = 0;
    for (size_t i = 0; i < n; i++) {
        long l = layer_of(timber_erank_row_at(res, i)->name);
        maxl = l > maxl ? l : maxl;
    }
    fprintf(g, "set key bottom right font 'Sans,9'\nset grid\n");
    fprintf(g, "set xtics %ld\nset format x '%%.0f'\nset yrange [0:*]\n",
            maxl >= 8 ? (maxl + 7) / 8 : 1);
    for (int m = 0; m < NMODULES; m++) {
        if (!present[m])
            continue;
        int rr = at / cols, cc = at % cols;
        fprintf(g, "set origin %.4f,%.4f\nset size %.4f,%.4f\n", cc * w,
                top - (rr + 1) * h, w, h);
        fprintf(g, "set title 'Fig. 1: eRank per layer, %s'\n",
                timber_module_type_name(m));
        fprintf(g, "set xlabel 'layer'\nset ylabel 'eRank'\n");
        if (pair)
            fprintf(g,
                    "plot 'm%d.dat' using 1:2 with linespoints lw 2 pt 7 ps "
                    "0.6 title 'Base', '' using 1:3 with linespoints lw 2 "
                    "dt 2 pt 6 ps 0.8 title 'Instruct'\n",
                    m);
        else
            fprintf(g,
                    "plot 'm%d.dat' using 1:3 with linespoints lw 2 pt 7 ps "
                    "0.6 title 'model'\n",
                    m);
        at++;
    }
    fprintf(g, "set origin 0.0,0.0\nset size 1.0,%.4f\n", top - fig1_h - 0.01);
    fprintf(g, "set title '%s'\n",
            pair ? "Fig. 2: distribution of eRank / r of the deltas "
                   "(k = ceil(eRank) is the cut-off)"
                 : "distribution of eRank / r");
    fprintf(g, "set xlabel 'eRank / r'\nset ylabel 'tensors'\n");
    fprintf(g, "set style fill solid 0.6 border -1\nset boxwidth 0.009 "
               "absolute\nset xrange [0:1.02]\nset yrange [0:*]\n"
               "set xtics 0.1\nset format x '%%.1f'\n"
               "set offsets 0, 0, graph 0.08, 0\n");
    fprintf(g, "stats '%s' using 1 nooutput\n", PLOT_RATIOS);
    fprintf(g, "set arrow from STATS_mean, graph 0 to STATS_mean, graph 1 "
               "nohead lw 2 lc rgb 'red'\n");
    fprintf(g, "set label sprintf('mean %%.3f', STATS_mean) at STATS_mean, "
               "graph 0.95 offset 1,0 tc rgb 'red'\n");
    fprintf(g, "bin(x) = 0.01 * floor(x / 0.01) + 0.005\n");
    fprintf(g, "plot '%s' using (bin($1)):(1.0) smooth frequency with boxes "
               "lc rgb '#4477aa' notitle\n",
               PLOT_RATIOS);
    fprintf(g, "unset multiplot\nset output\n");
}

/* Runs `gnuplot -c plot.gp TITLE` in dir; its wait status, or -1. */
static int run_gnuplot(const char *gp, const char *dir, const char *title)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -1;
    int status = -1;
    pid_t pid;
    char *argv[] = {(char *)gp, "-c", PLOT_SCRIPT, (char *)title, NULL};
    if (posix_spawn_file_actions_addchdir_np(&fa, dir) == 0 &&
        posix_spawn(&pid, gp, &fa, NULL, argv, environ) == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    posix_spawn_file_actions_destroy(&fa);
    return status;
}

/* Reads a whole file of at most 1 GiB: malloc'd, or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            char *g = cap <= (1u << 30) ? realloc(buf, cap) : NULL;
            if (!g) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = g;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int write_plot(const char *out, const timber_erank_result *res,
                      const char *title)
{
    int png = has_suffix(out, ".png");
    char *gp = find_gnuplot();
    if (!gp) {
        cli_errorf("--plot %s: gnuplot is not installed (install it with "
                   "'apt-get install gnuplot-nox')",
                   out);
        return EXIT_FAIL;
    }
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || tmpdir[0] != '/')
        tmpdir = "/tmp";
    char where[4096];
    snprintf(where, sizeof where, "%s/timber-plot", tmpdir);
    timber_temp *work = NULL;
    timber_error err;
    if (timber_temp_create(where, 1, &work, &err) != TIMBER_OK) {
        free(gp);
        return cli_lib_error(&err);
    }
    const char *dir = timber_temp_path(work);
    const char *picture = png ? "figure.png" : "figure.svg";
    int code = EXIT_FAIL;
    int present[NMODULES];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, PLOT_SCRIPT);
    FILE *g = NULL;
    if (plot_data(dir, res, present) != 0 || !(g = fopen(path, "w"))) {
        cli_errorf("%s: cannot write the plot's data: %s", dir,
                   strerror(errno));
        goto out;
    }
    plot_script(g, res, present, png, picture);
    if (fclose(g) != 0) {
        cli_errorf("%s: cannot write the plot's script: %s", path,
                   strerror(errno));
        goto out;
    }
    int status = run_gnuplot(gp, dir, title);
    snprintf(path, sizeof path, "%s/%s", dir, picture);
    size_t len = 0;
    char *bytes = status != -1 && WIFEXITED(status) &&
                          WEXITSTATUS(status) == 0
                      ? slurp(path, &len)
                      : NULL;
    if (!bytes || len == 0) {
        cli_errorf("--plot %s: gnuplot failed (exit status %d) to draw the "
                   "figure",
                   out,
                   status != -1 && WIFEXITED(status) ? WEXITSTATUS(status)
                                                     : -1);
    } else if (cli_write_file(out, bytes, len) == 0) {
        code = EXIT_OK;
    }
    free(bytes);
out:
    timber_temp_free(work); /* the work directory and all in it */
    free(gp);
    return code;
}

/* ------------------------------------------------------------------ main */

int cmd_erank(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0, quiet = 0, threads = 0, no_cache = 0, code = EXIT_OK;
    const char *json = NULL, *csv = NULL, *plot = NULL, *cache = NULL;
    cli_selection sel;
    if ((code = cli_selection_init(&sel, argc)))
        goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_selection_option(&sel, "erank", argc, argv, &i, &code)) {
            if (code)
                goto out;
            continue;
        }
        static const char *const valued[] = {"--json", "--csv", "--plot",
                                             "--threads", "--cache"};
        const char *val = NULL;
        int which = cli_valued_option("erank", argc, argv, &i, valued,
                                      (int)(sizeof valued / sizeof *valued),
                                      &val);
        if (which == -2) {
            code = EXIT_USAGE;
            goto out;
        }
        if (which == 0)
            json = val;
        else if (which == 1)
            csv = val;
        else if (which == 2) {
            if (!has_suffix(val, ".png") && !has_suffix(val, ".svg")) {
                code = cli_usage("erank",
                                 "--plot '%s': the file name must end in "
                                 ".png or .svg",
                                 val);
                goto out;
            }
            plot = val;
        } else if (which == 3) {
            if ((code = cli_parse_threads("erank", val, &threads)))
                goto out;
        } else if (which == 4) {
            cache = val;
        } else if (strcmp(a, "--no-cache") == 0)
            no_cache = 1;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (cli_is_help(a)) {
            code = cli_print_help(cli_erank_help);
            goto out;
        } else if (a[0] == '-' && a[1] != '\0') {
            code = cli_usage("erank", "unknown option '%s'", a);
            goto out;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            code = cli_usage("erank", "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (npos < 1) {
        code = cli_usage("erank", "needs BASE and INSTRUCT, or one MODEL");
        goto out;
    }
    timber_erank_options opt;
    timber_erank_options_init(&opt);
    opt.include = sel.include;
    opt.ninclude = sel.ninclude;
    opt.exclude = sel.exclude;
    opt.nexclude = sel.nexclude;
    opt.threads = threads;
    opt.cache_path = cache;
    opt.no_cache = no_cache;
    opt.matrix_view = sel.view;
    cli_progress progress;
    cli_progress_init(&progress, quiet);
    opt.progress = cli_progress_show;
    opt.user = &progress;
    opt.warning = cli_progress_warning;
    opt.cancel = &cli_cancel;
    /* The files to write are checked by the library before any work:
     * none may be an input, the cache or another of them. */
    const char *outputs[3];
    size_t nout = 0;
    if (json)
        outputs[nout++] = json;
    if (csv)
        outputs[nout++] = csv;
    if (plot)
        outputs[nout++] = plot;
    opt.outputs = outputs;
    opt.noutputs = nout;
    cli_catch_signals();

    timber_erank_result *res = NULL;
    timber_error err;
    timber_status st = timber_erank(pos[0], npos == 2 ? pos[1] : NULL, &opt,
                                    &res, &err);
    cli_progress_clear(&progress);
    if (st == TIMBER_ERR_INTERRUPTED) {
        cli_errorf("interrupted by %s", cli_signal_name());
        code = cli_interrupted_exit();
        goto out;
    }
    if (st != TIMBER_OK) {
        code = cli_status_exit("erank", st, &err);
        goto out;
    }
    print_table(res);
    code = cli_finish_stdout(EXIT_OK);
    /* Files only once the table is out: with stdout's reader gone
     * (EXIT_PIPE) nothing is published. */
    if (!code && json && write_json(json, res) != 0)
        code = EXIT_FAIL;
    if (!code && csv && write_csv(csv, res) != 0)
        code = EXIT_FAIL;
    if (!code && plot) {
        char title[512];
        snprintf(title, sizeof title, "timber erank: %s%s%s", pos[0],
                 npos == 2 ? " vs " : "", npos == 2 ? pos[1] : "");
        code = write_plot(plot, res, title);
    }
    timber_erank_result_free(res);
out:
    cli_selection_free(&sel);
    return code;
}
