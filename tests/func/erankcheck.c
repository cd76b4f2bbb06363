/*
 * erankcheck.c — an independent float64 check of `timber erank --json`:
 *
 *   timber-erankcheck BASE INSTRUCT JSON [--select REGEX]
 *   timber-erankcheck --model MODEL JSON [--select REGEX]
 *
 * Pair mode: JSON must be an array with one object per tensor that
 * refinement would refine (in both checkpoints with the same shape, 2+
 * dimensions, a float dtype on both sides, not empty), restricted to names
 * matching REGEX when given; each object has name, shape (Instruct's),
 * rank = min(rows, cols) of the d0 x (d1*d2*...) view, erank_base,
 * erank_instruct, erank_delta within 1e-6 relative of the eRank computed
 * here from LAPACK dgesvd singular values (values only) of W_B, W_I and
 * D = W_I - W_B in double, and k = ceil(erank_delta) clamped to [0, r]
 * (0 for an unchanged tensor, whose erank_delta must be 0).
 *
 * Model mode: one object per float tensor of 2+ dimensions of MODEL, with
 * `erank` checked the same way.
 *
 * Only the shard reader is the library's; decoding, the SVD and the eRank
 * are this file's own.  Prints one line per tensor with --verbose and a
 * summary; exit 0 when everything holds, 1 otherwise, 2 on usage errors.
 */
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <lapacke.h>

#include "model.h"
#include "safetensors.h"
#include "timber.h"
#include "refload.h"

#define REL_TOL 1e-6

static int bad;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("erankcheck: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    bad = 1;
}

static int float_dtype(timber_dtype dt)
{
    return dt == TIMBER_DT_F64 || dt == TIMBER_DT_F32 ||
           dt == TIMBER_DT_BF16 || dt == TIMBER_DT_F16;
}




/* eRank of the m x n row-major matrix A (freed), from dgesvd's singular
 * values; 0 for a zero matrix. */
static double erank_of(double *A, size_t m, size_t n)
{
    size_t r = m < n ? m : n;
    double *s = malloc(r * sizeof *s), *sup = malloc(r * sizeof *sup);
    double dummy = 0;
    if (!s || !sup) {
        fprintf(stderr, "erankcheck: out of memory\n");
        exit(1);
    }
    lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N',
                                     (lapack_int)m, (lapack_int)n, A,
                                     (lapack_int)n, s, &dummy, 1, &dummy, 1,
                                     sup);
    if (info != 0) {
        fprintf(stderr, "erankcheck: dgesvd failed (%d)\n", (int)info);
        exit(1);
    }
    double sum = 0, h = 0;
    for (size_t i = 0; i < r; i++)
        sum += s[i];
    for (size_t i = 0; i < r && sum > 0; i++)
        if (s[i] > 0)
            h -= s[i] / sum * log(s[i] / sum);
    free(s);
    free(sup);
    free(A);
    return sum > 0 ? exp(h) : 0.0;
}

/* The matrix d0 x (d1*...) of a tensor, or of Instruct minus Base. */
static double *matrix(const timber_model *mi, const timber_tensor_info *ti,
                      const timber_model *mb, const timber_tensor_info *tb)
{
    const unsigned char *pi = ref_data_of(mi, ti);
    const unsigned char *pb = tb ? ref_data_of(mb, tb) : NULL;
    double *A = malloc(ti->nelems * sizeof *A);
    if (!A) {
        fprintf(stderr, "erankcheck: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < ti->nelems; i++)
        A[i] = ref_load(ti->dtype, pi, i) - (pb ? ref_load(tb->dtype, pb, i) : 0.0);
    return A;
}

static void close_to(const char *name, const char *field, const cJSON *o,
                     double want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsNumber(v)) {
        failf("%s: '%s' missing or not a number", name, field);
        return;
    }
    double got = v->valuedouble;
    double tol = REL_TOL * fmax(fabs(want), 1e-300);
    if (!(fabs(got - want) <= tol))
        failf("%s: %s %.17g, the float64 reference says %.17g (rel. "
              "difference %.3g)",
              name, field, got, want,
              want != 0 ? fabs(got - want) / fabs(want) : fabs(got));
}

static void int_is(const char *name, const char *field, const cJSON *o,
                   double want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (!cJSON_IsNumber(v) || v->valuedouble != want)
        failf("%s: %s is %s, expected %.0f", name, field,
              cJSON_IsNumber(v) ? "wrong" : "missing", want);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static void usage(void)
{
    fprintf(stderr, "usage: timber-erankcheck BASE INSTRUCT JSON "
                    "[--select REGEX] [--verbose]\n"
                    "       timber-erankcheck --model MODEL JSON "
                    "[--select REGEX] [--verbose]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0, single = 0, verbose = 0;
    const char *select = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0)
            single = 1;
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--select") == 0 && i + 1 < argc)
            select = argv[++i];
        else if (argv[i][0] != '-' && npos < 3)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos != (single ? 2 : 3))
        usage();
    regex_t re;
    if (select && regcomp(&re, select, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "erankcheck: bad regex '%s'\n", select);
        return 2;
    }
    const char *json_path = pos[single ? 1 : 2];
    timber_model *mb = NULL, *mi = NULL;
    timber_error err;
    if ((!single && timber_model_open(pos[0], &mb, &err)) ||
        timber_model_open(pos[single ? 0 : 1], &mi, &err)) {
        fprintf(stderr, "erankcheck: %s\n", err.message);
        return 1;
    }
    char *text = slurp(json_path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!cJSON_IsArray(root)) {
        fprintf(stderr, "erankcheck: %s: not a JSON array\n", json_path);
        return 1;
    }

    /* Which tensors must be there. */
    size_t nt = timber_model_tensor_count(mi), expected = 0, checked = 0;
    char *want = calloc(nt ? nt : 1, 1), *seen = calloc(nt ? nt : 1, 1);
    for (size_t t = 0; t < nt; t++) {
        const timber_tensor_info *ti = timber_model_tensor(mi, t);
        const timber_tensor_info *tb =
            single ? NULL : timber_model_find(mb, ti->name);
        int ok = ti->ndim >= 2 && ti->nelems > 0 && float_dtype(ti->dtype);
        if (!single)
            ok = ok && tb && ref_same_shape(ti, tb) && float_dtype(tb->dtype);
        if (ok && select)
            ok = regexec(&re, ti->name, 0, NULL, 0) == 0;
        want[t] = (char)ok;
        expected += (size_t)ok;
    }

    const cJSON *o;
    cJSON_ArrayForEach(o, root)
    {
        const cJSON *jn = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(jn)) {
            failf("an entry without a name");
            continue;
        }
        const char *name = jn->valuestring;
        const timber_tensor_info *ti = timber_model_find(mi, name);
        size_t t = 0;
        while (t < nt && timber_model_tensor(mi, t) != ti)
            t++;
        if (!ti || !want[t]) {
            failf("%s: listed, but it is not a tensor to analyse", name);
            continue;
        }
        if (seen[t]) {
            failf("%s: listed twice", name);
            continue;
        }
        seen[t] = 1;
        checked++;
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(o, "shape");
        int shape_ok = cJSON_IsArray(js) &&
                       (size_t)cJSON_GetArraySize(js) == ti->ndim;
        for (size_t d = 0; shape_ok && d < ti->ndim; d++) {
            const cJSON *x = cJSON_GetArrayItem(js, (int)d);
            shape_ok = cJSON_IsNumber(x) &&
                       x->valuedouble == (double)ti->shape[d];
        }
        if (!shape_ok)
            failf("%s: shape differs from the checkpoint's", name);
        size_t m = ti->shape[0], n = ti->nelems / m, r = m < n ? m : n;
        int_is(name, "rank", o, (double)r);
        const timber_tensor_info *tb =
            single ? NULL : timber_model_find(mb, name);
        double ei = erank_of(matrix(mi, ti, NULL, NULL), m, n);
        if (single) {
            close_to(name, "erank", o, ei);
            if (verbose)
                printf("%-48s %6zux%-6zu eRank %.6f\n", name, m, n, ei);
            continue;
        }
        double eb = erank_of(matrix(mb, tb, NULL, NULL), m, n);
        double ed = erank_of(matrix(mi, ti, mb, tb), m, n);
        double kd = ed > 0 ? ceil(ed) : 0;
        if (kd > (double)r)
            kd = (double)r;
        close_to(name, "erank_base", o, eb);
        close_to(name, "erank_instruct", o, ei);
        close_to(name, "erank_delta", o, ed);
        int_is(name, "k", o, kd);
        if (verbose)
            printf("%-48s %6zux%-6zu eRank B %.6f I %.6f D %.6f k %.0f\n",
                   name, m, n, eb, ei, ed, kd);
    }
    for (size_t t = 0; t < nt; t++)
        if (want[t] && !seen[t])
            failf("%s: should be listed but is not",
                  timber_model_tensor(mi, t)->name);
    printf("erankcheck: %s: %zu of %zu tensors checked\n", bad ? "FAIL" : "ok",
           checked, expected);
    free(want);
    free(seen);
    cJSON_Delete(root);
    if (select)
        regfree(&re);
    timber_model_free(mb);
    timber_model_free(mi);
    return bad;
}
