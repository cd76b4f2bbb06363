/*
 * test_refine.c — refinement checked against answers known in closed form,
 * and the output directory's contract.
 *
 * (a) Prescribed spectra: D = U diag(s) V^T with random orthogonal U, V
 *     and chosen s, so eRank, k and the tail are known exactly; stored as
 *     F64 (no rounding to hide behind), the output must match
 *     W_I - (1 - gamma) * sum_{i>=k} s_i u_i v_i^T to ~1e-12.  Covers tall,
 *     wide and 3-D tensors, tail-side and head-side cuts, k = r, D = 0.
 * (c) gamma = 1 reproduces Instruct bit for bit.
 * (d) The directory: shard names and layout, rebuilt index, "format": "pt",
 *     copied extra files, refusals (exists, inside an input), --force,
 *     multiple gammas, and failures (NaN, cancel) that leave nothing.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <lapacke.h>

#include "dtype.h"
#include "backend.h"
#include "matrix.h"
#include "meter.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"
#include "timber.h"

static uint64_t rng = 12345;

static double gauss(void) { return tu_gauss(&rng); }

/* n x p (n >= p) matrix with orthonormal columns, row-major. */
static double *random_orthonormal(size_t n, size_t p)
{
    return tu_random_orthonormal(&rng, n, p);
}

typedef struct fixture_tensor {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    uint64_t shape[3];
    double *base, *inst; /* values */
} fixture_tensor;

static size_t nelems(const fixture_tensor *t)
{
    size_t n = 1;
    for (size_t d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* Writes the tensors of one side into dir/file with the library writer. */
static void write_side(const char *dir, const char *file, fixture_tensor *ts,
                       size_t n, int instruct)
{
    tb_tensor_spec specs[16];
    size_t idx[16], k = 0;
    for (size_t i = 0; i < n; i++) {
        double *v = instruct ? ts[i].inst : ts[i].base;
        if (!v)
            continue;
        specs[k] = (tb_tensor_spec){ts[i].name, ts[i].dtype, ts[i].ndim,
                                    ts[i].shape};
        idx[k++] = i;
    }
    tb_writer *w = NULL;
    timber_error err;
    timber_status st = tb_writer_create(tu_path(dir, file), NULL, 0, specs, k,
                                        &w, &err);
    CHECK_OK("fixture writer", st, &err);
    for (size_t j = 0; j < k; j++) {
        fixture_tensor *t = &ts[idx[j]];
        size_t ne = nelems(t), es = timber_dtype_bits(t->dtype) / 8;
        unsigned char *buf = malloc(ne * es + 1);
        tb_encode(t->dtype, instruct ? t->inst : t->base, buf, ne);
        st = tb_writer_put(w, j, buf, ne * es, &err);
        CHECK_OK("fixture put", st, &err);
        free(buf);
    }
    st = tb_writer_commit(w, &err);
    CHECK_OK("fixture commit", st, &err);
    tb_writer_free(w);
}

typedef struct known {
    size_t m, n, r, k;
    double erank;
    double erank_tol; /* erank_tolerance() of the prescribed spectrum */
    double *tail; /* m x n: sum_{i>=k} s_i u_i v_i^T */
} known;

/* Two orthonormal blocks in one n x r matrix: column c lies in rows
 * [0, n/2) when c is even, [n/2, n) when odd.  D built on such U and V is
 * block diagonal, so its Gram matrix is, and the tridiagonal form splits
 * exactly: the eigen-solver's other route. */
static double *split_orthonormal(size_t n, size_t r)
{
    size_t h = n / 2, rh = (r + 1) / 2;
    double *a = calloc(n * r, sizeof *a);
    double *top = random_orthonormal(h, rh);
    double *bot = random_orthonormal(n - h, r - rh);
    for (size_t c = 0; c < r; c++)
        for (size_t i = 0; i < (c % 2 ? n - h : h); i++)
            a[(i + (c % 2 ? h : 0)) * r + c] =
                c % 2 ? bot[i * (r - rh) + c / 2] : top[i * rh + c / 2];
    free(top);
    free(bot);
    return a;
}

/* W_B random, D = U diag(s) V^T (m x n view), W_I = W_B + D; U and V
 * block-structured when `split` (see split_orthonormal). */
/* How far the Gram route's eRank may lie from the closed form.  The
 * eigenvalues of G = D^T D carry an absolute error of about
 * (L + S) * eps * s_1^2 (dsyrk's sums of L products, then the S-step
 * reduction), so a singular value s_i = sqrt(lambda_i) is known only to
 * min(sqrt(E), E / (2 s_i)); a value below sqrt(E) is not resolved at
 * all.  First-order propagation through H = -sum p_i ln p_i, with
 * dH/ds_i = -(ln p_i + H) / sum(s), gives the bound below (a factor 4 of
 * headroom on E; 1e-12 relative for the rounding of the closed form).
 * On a flat spectrum it is ~1e-12; on a steep one whose smallest values
 * sit near sqrt(E) it is far looser, which is the route's real accuracy,
 * not slack in the check. */
static double erank_tolerance(const double *s, size_t r, size_t m, size_t n)
{
    double sum = 0, h = 0;
    for (size_t i = 0; i < r; i++)
        sum += s[i];
    if (!(sum > 0))
        return 1e-12;
    for (size_t i = 0; i < r; i++)
        if (s[i] > 0)
            h -= s[i] / sum * log(s[i] / sum);
    const double E = 4.0 * (double)(m + n) * 2.220446049250313e-16 *
                     s[0] * s[0];
    double dh = 0;
    for (size_t i = 0; i < r; i++) {
        double ds = s[i] > 0 ? fmin(sqrt(E), E / (2 * s[i])) : sqrt(E);
        if (s[i] > 0) {
            dh += fabs(log(s[i] / sum) + h) * ds / sum;
        } else { /* a zero that comes out as q: adds q (|ln q| + H + 1) */
            double q = ds / sum;
            dh += q * (fabs(log(q)) + h + 1);
        }
    }
    double e = exp(h);
    return e * dh + 1e-12 * (1 + e);
}

static known make_known_ex(fixture_tensor *t, const double *s, size_t r,
                           int split)
{
    known K = {0};
    size_t m = t->shape[0], n = nelems(t) / m;
    K.m = m;
    K.n = n;
    K.r = r;
    double *U = split ? split_orthonormal(m, r) : random_orthonormal(m, r);
    double *V = split ? split_orthonormal(n, r) : random_orthonormal(n, r);
    double sum = 0, h = 0;
    for (size_t i = 0; i < r; i++)
        sum += s[i];
    for (size_t i = 0; i < r && sum > 0; i++)
        if (s[i] > 0)
            h -= s[i] / sum * log(s[i] / sum);
    K.erank = sum > 0 ? exp(h) : 0;
    K.k = sum > 0 ? (size_t)ceil(K.erank) : 0;
    K.erank_tol = erank_tolerance(s, r, m, n);
    if (K.k > r)
        K.k = r;
    t->base = malloc(m * n * sizeof(double));
    t->inst = malloc(m * n * sizeof(double));
    K.tail = calloc(m * n, sizeof(double));
    for (size_t i = 0; i < m * n; i++)
        t->base[i] = 0.02 * gauss();
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double d = 0, tl = 0;
            for (size_t c = 0; c < r; c++) {
                double x = s[c] * U[i * r + c] * V[j * r + c];
                d += x;
                if (c >= K.k)
                    tl += x;
            }
            t->inst[i * n + j] = t->base[i * n + j] + d;
            K.tail[i * n + j] = tl;
        }
    free(U);
    free(V);
    return K;
}

static known make_known(fixture_tensor *t, const double *s, size_t r)
{
    return make_known_ex(t, s, r, 0);
}


static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

static void sort_desc(double *s, size_t n)
{
    qsort(s, n, sizeof *s, cmp_desc);
}

static const timber_tensor_report *find_report(const timber_result *r,
                                               const char *name)
{
    for (size_t i = 0; i < timber_result_count(r); i++)
        if (strcmp(timber_result_tensor(r, i)->name, name) == 0)
            return timber_result_tensor(r, i);
    return NULL;
}

static double *read_values(const char *dir, const char *name, size_t *n)
{
    timber_model *m = NULL;
    timber_error err;
    if (timber_model_open(dir, &m, &err) != TIMBER_OK)
        return NULL;
    const timber_tensor_info *t = timber_model_find(m, name);
    double *v = NULL;
    if (t) {
        v = malloc((t->nelems + 1) * sizeof *v);
        tb_decode(t->dtype, tb_shard_data(tb_model_shard_of(m, t), t), v,
                  t->nelems);
        *n = t->nelems;
    }
    timber_model_free(m);
    return v;
}

static void test_prescribed(void)
{
    const char *dir = tu_tempdir("known");
    const char *bdir = tu_path(dir, "base");
    mkdir(bdir, 0777);
    const char *idir = tu_path(dir, "instruct");
    mkdir(idir, 0777);

    enum { NT = 8 };
    fixture_tensor ts[NT] = {
        {"tall.flat", TIMBER_DT_F64, 2, {40, 24, 0}, NULL, NULL},
        {"wide.flat", TIMBER_DT_F64, 2, {24, 40, 0}, NULL, NULL},
        {"tall.steep", TIMBER_DT_F64, 2, {50, 30, 0}, NULL, NULL},
        {"cube", TIMBER_DT_F64, 3, {6, 4, 5}, NULL, NULL},
        {"full", TIMBER_DT_F64, 2, {12, 8, 0}, NULL, NULL},
        {"zero", TIMBER_DT_F64, 2, {10, 10, 0}, NULL, NULL},
        {"tall.split", TIMBER_DT_F64, 2, {40, 24, 0}, NULL, NULL},
        {"thin", TIMBER_DT_F64, 2, {5, 2, 0}, NULL, NULL},
    };
    known K[NT];
    double s[64];
    /* flat-ish: eRank near 0.9 r -> tail side */
    for (int i = 0; i < 24; i++)
        s[i] = 0.01 * (1.0 + 0.3 * cos(i * 0.7)) * (1.0 - i / 30.0);
    sort_desc(s, 24);
    K[0] = make_known(&ts[0], s, 24);
    K[1] = make_known(&ts[1], s, 24);
    /* steep: a few strong directions -> small eRank, head side */
    for (int i = 0; i < 30; i++)
        s[i] = 0.05 * exp(-0.6 * i);
    K[2] = make_known(&ts[2], s, 30);
    /* 3-D: 6 x 20 view */
    for (int i = 0; i < 6; i++)
        s[i] = 0.01 * (6 - i) + 0.003 * i * i;
    K[3] = make_known(&ts[3], s, 6);
    /* equal singular values: eRank = r exactly, so k = r (empty tail) */
    for (int i = 0; i < 8; i++)
        s[i] = 0.01;
    K[4] = make_known(&ts[4], s, 8);
    /* D = 0 */
    for (int i = 0; i < 10; i++)
        s[i] = 0.0;
    K[5] = make_known(&ts[5], s, 10);
    /* block diagonal D: the tridiagonal form splits (tail side) */
    for (int i = 0; i < 24; i++)
        s[i] = 0.01 * (1.0 + 0.3 * cos(i * 0.9)) * (1.0 - i / 28.0);
    sort_desc(s, 24);
    K[6] = make_known_ex(&ts[6], s, 24, 1);
    /* two singular values, one of them 0: k = 1 */
    s[0] = 0.03;
    s[1] = 0.0;
    K[7] = make_known(&ts[7], s, 2);

    write_side(bdir, "model.safetensors", ts, NT, 0);
    write_side(idir, "model.safetensors", ts, NT, 1);

    double gammas[] = {0.0, 0.2, 0.7};
    for (size_t g = 0; g < 3; g++) {
        char name[32];
        snprintf(name, sizeof name, "out-%zu", g);
        const char *out = tu_path(dir, name);
        timber_refine_options opt;
        timber_refine_options_init(&opt);
    opt.no_cache = 1;
        opt.gammas = &gammas[g];
        opt.ngammas = 1;
        timber_result *res = NULL;
        timber_error err;
        timber_status st = timber_refine(bdir, idir, out, &opt, &res, &err);
        if (!CHECK_OK("refine prescribed", st, &err))
            continue;
        for (size_t t = 0; t < NT; t++) {
            const timber_tensor_report *rep = find_report(res, ts[t].name);
            CHECKF(rep && rep->action == TIMBER_ACTION_REFINED,
                   "%s should be refined", ts[t].name);
            if (!rep)
                continue;
            CHECKF(fabs(rep->erank - K[t].erank) <= K[t].erank_tol,
                   "%s: eRank %.15g, closed form %.15g (bound %.3g)",
                   ts[t].name, rep->erank, K[t].erank, K[t].erank_tol);
            CHECKF(rep->k == K[t].k, "%s: k %llu, expected %zu", ts[t].name,
                   (unsigned long long)rep->k, K[t].k);
            CHECKF(rep->rank == K[t].r, "%s: rank %llu, expected %zu",
                   ts[t].name, (unsigned long long)rep->rank, K[t].r);
            size_t n = 0;
            double *o = read_values(out, ts[t].name, &n);
            if (!CHECKF(o && n == K[t].m * K[t].n, "%s: output missing",
                        ts[t].name))
                continue;
            double worst = 0;
            for (size_t i = 0; i < n; i++) {
                double want = ts[t].inst[i] - (1 - gammas[g]) * K[t].tail[i];
                worst = fmax(worst, fabs(o[i] - want));
            }
            CHECKF(worst <= 1e-12, "%s gamma %g: max error %.3g",
                   ts[t].name, gammas[g], worst);
            if (t == 4 || t == 5) /* k = r or D = 0: exactly Instruct */
                CHECKF(memcmp(o, ts[t].inst, n * sizeof(double)) == 0,
                       "%s should be Instruct bit for bit", ts[t].name);
            free(o);
        }
        timber_result_free(res);
    }
    for (size_t t = 0; t < NT; t++) {
        free(ts[t].base);
        free(ts[t].inst);
        free(K[t].tail);
    }
}

/* A sharded BF16 pair with extras, for the directory contract. */
static void make_pair(const char *dir, int nan)
{
    const char *bdir = tu_path(dir, "base");
    const char *idir = tu_path(dir, "instruct");
    mkdir(bdir, 0777);
    mkdir(idir, 0777);
    fixture_tensor a[3] = {
        {"layer.0.w", TIMBER_DT_BF16, 2, {32, 16, 0}, NULL, NULL},
        {"layer.0.norm", TIMBER_DT_BF16, 1, {16, 0, 0}, NULL, NULL},
        {"only.base", TIMBER_DT_BF16, 2, {4, 4, 0}, NULL, NULL},
    };
    fixture_tensor b[2] = {
        {"layer.1.w", TIMBER_DT_BF16, 2, {16, 48, 0}, NULL, NULL},
        {"only.instruct", TIMBER_DT_F32, 2, {4, 4, 0}, NULL, NULL},
    };
    fixture_tensor *all[5] = {&a[0], &a[1], &a[2], &b[0], &b[1]};
    for (int i = 0; i < 5; i++) {
        size_t n = nelems(all[i]);
        all[i]->base = malloc(n * sizeof(double));
        all[i]->inst = malloc(n * sizeof(double));
        for (size_t j = 0; j < n; j++) {
            all[i]->base[j] = 0.02 * gauss();
            /* column-scaled noise: a spread spectrum, so 0 < k < r */
            double scale = exp(-(double)(j % 16) / 4.0);
            all[i]->inst[j] = all[i]->base[j] + 0.002 * scale * gauss();
        }
    }
    if (nan)
        b[0].inst[77] = NAN;
    free(a[2].inst);
    a[2].inst = NULL;
    free(b[1].base);
    b[1].base = NULL;
    write_side(bdir, "model-00001-of-00002.safetensors", a, 3, 0);
    write_side(bdir, "model-00002-of-00002.safetensors", b, 2, 0);
    write_side(idir, "model-00001-of-00002.safetensors", a, 3, 1);
    write_side(idir, "model-00002-of-00002.safetensors", b, 2, 1);
    tb_index_entry eb[] = {
        {"layer.0.w", "model-00001-of-00002.safetensors"},
        {"layer.0.norm", "model-00001-of-00002.safetensors"},
        {"only.base", "model-00001-of-00002.safetensors"},
        {"layer.1.w", "model-00002-of-00002.safetensors"}};
    tb_index_entry ei[] = {
        {"layer.0.w", "model-00001-of-00002.safetensors"},
        {"layer.0.norm", "model-00001-of-00002.safetensors"},
        {"layer.1.w", "model-00002-of-00002.safetensors"},
        {"only.instruct", "model-00002-of-00002.safetensors"}};
    timber_error err;
    timber_status st = tb_index_write(bdir, eb, 4, 0, 0, &err);
    CHECK_OK("index", st, &err);
    st = tb_index_write(idir, ei, 4, 0, 0, &err);
    CHECK_OK("index", st, &err);
    tu_write_file(tu_path(idir, "config.json"), "{\"who\":\"instruct\"}", 18);
    tu_write_file(tu_path(bdir, "config.json"), "{\"who\":\"base\"}", 14);
    tu_write_file(tu_path(idir, "tokenizer.json"), "{}", 2);
    for (int i = 0; i < 5; i++) {
        free(all[i]->base);
        free(all[i]->inst);
    }
}

static timber_status run_refine(const char *dir, const char *out, double g,
                                int force, timber_result **res,
                                timber_error *err)
{
    timber_refine_options opt;
    timber_refine_options_init(&opt);
    opt.no_cache = 1;
    opt.gammas = &g;
    opt.ngammas = 1;
    opt.force = force;
    return timber_refine(tu_path(dir, "base"), tu_path(dir, "instruct"), out,
                         &opt, res, err);
}

static int files_equal(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
    int eq = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return eq;
}

static void test_directory(void)
{
    const char *dir = tu_tempdir("dir");
    make_pair(dir, 0);
    const char *idir = tu_path(dir, "instruct");
    timber_error err;
    timber_result *res = NULL;

    /* (c) gamma = 1: every tensor is Instruct's, bit for bit. */
    char out1[4096];
    snprintf(out1, sizeof out1, "%s", tu_path(dir, "g1"));
    timber_status st = run_refine(dir, out1, 1.0, 0, NULL, &err);
    CHECK_OK("gamma 1", st, &err);
    timber_model *mi = NULL, *mo = NULL;
    st = timber_model_open(idir, &mi, &err);
    CHECK_OK("open instruct", st, &err);
    st = timber_model_open(out1, &mo, &err);
    CHECK_OK("open output", st, &err);
    if (mi && mo) {
        CHECK(timber_model_tensor_count(mo) == 4);
        for (size_t i = 0; i < timber_model_tensor_count(mi); i++) {
            const timber_tensor_info *ti = timber_model_tensor(mi, i);
            const timber_tensor_info *to = timber_model_find(mo, ti->name);
            CHECKF(to && to->nbytes == ti->nbytes &&
                       strcmp(to->shard, ti->shard) == 0 &&
                       memcmp(tb_shard_data(tb_model_shard_of(mi, ti), ti),
                              tb_shard_data(tb_model_shard_of(mo, to), to),
                              ti->nbytes) == 0,
                   "gamma 1: %s differs from Instruct", ti->name);
        }
        CHECK(timber_model_find(mo, "only.base") == NULL);
        CHECK(timber_model_has_index(mo));
        /* (d) metadata, index, extras */
        for (size_t s = 0; s < timber_model_shard_count(mo); s++) {
            const tb_shard *sh = tb_model_shard(mo, s);
            int fmt = 0;
            for (size_t k = 0; k < tb_shard_meta_count(sh); k++)
                fmt |= strcmp(tb_shard_meta_key(sh, k), "format") == 0 &&
                       strcmp(tb_shard_meta_value(sh, k), "pt") == 0;
            CHECKF(fmt, "shard %zu lacks format=pt", s);
        }
    }
    timber_model_free(mi);
    timber_model_free(mo);
    size_t len;
    char *index = (char *)tu_read_file(tu_path(out1, TB_INDEX_NAME), &len);
    cJSON *j = index ? cJSON_Parse(index) : NULL;
    cJSON *map = cJSON_GetObjectItem(j, "weight_map");
    CHECK(cJSON_GetArraySize(map) == 4);
    CHECK(cJSON_GetObjectItem(map, "only.base") == NULL);
    CHECK(cJSON_GetObjectItem(map, "only.instruct") != NULL);
    cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"),
                                    "total_size");
    /* 32*16*2 + 16*2 + 16*48*2 + 4*4*4 */
    CHECK(ts && ts->valuedouble == 1024 + 32 + 1536 + 64);
    cJSON_Delete(j);
    free(index);
    CHECK(files_equal(tu_path(out1, "config.json"),
                      tu_path(idir, "config.json")));
    CHECK(files_equal(tu_path(out1, "tokenizer.json"),
                      tu_path(idir, "tokenizer.json")));

    /* Refusals. */
    st = run_refine(dir, out1, 0.2, 0, NULL, &err);
    CHECK_ERROR("existing OUT", st, &err, TIMBER_ERR_EXISTS, "g1",
                "already exists", "--force");
    st = run_refine(dir, tu_path(idir, "sub"), 0.2, 0, NULL, &err);
    CHECK_ERROR("OUT inside input", st, &err, TIMBER_ERR_INVALID, "input");
    st = run_refine(dir, idir, 0.2, 1, NULL, &err);
    CHECK_ERROR("OUT is input", st, &err, TIMBER_ERR_INVALID, "input");
    st = run_refine(dir, dir, 0.2, 1, NULL, &err);
    CHECK_ERROR("OUT contains input", st, &err, TIMBER_ERR_INVALID, "input");
    st = run_refine(dir, tu_path(dir, "no/such/parent"), 0.2, 0, NULL, &err);
    CHECK(st == TIMBER_ERR_IO);
    /* An option's bad value is its own status (the CLI makes it a usage
     * error by that, not by the message's wording). */
    st = run_refine(dir, tu_path(dir, "g9"), 1.5, 0, NULL, &err);
    CHECK_ERROR("gamma outside [0, 1]", st, &err, TIMBER_ERR_OPTION,
                "--gamma", "1.5");
    {
        timber_refine_options opt;
        timber_refine_options_init(&opt);
        opt.no_cache = 1;
        const char *bad_re[] = {"layer.(("};
        opt.include = bad_re;
        opt.ninclude = 1;
        char b[4096], i[4096];
        snprintf(b, sizeof b, "%s", tu_path(dir, "base"));
        snprintf(i, sizeof i, "%s", tu_path(dir, "instruct"));
        st = timber_refine(b, i, tu_path(dir, "g9"), &opt, NULL, &err);
        CHECK_ERROR("bad --include", st, &err, TIMBER_ERR_OPTION,
                    "--include", "layer.((");
    }

    /* --force replaces OUT with a complete new one. */
    st = run_refine(dir, out1, 0.0, 1, &res, &err);
    CHECK_OK("force", st, &err);
    if (res) {
        const timber_tensor_report *r = find_report(res, "layer.1.w");
        CHECK(r && r->action == TIMBER_ACTION_REFINED && r->k > 0 &&
              r->k < r->rank);
        r = find_report(res, "only.base");
        CHECK(r && r->action == TIMBER_ACTION_DROPPED);
        r = find_report(res, "layer.0.norm");
        CHECK(r && r->action == TIMBER_ACTION_COPIED &&
              strcmp(r->reason, "1-D tensor") == 0);
    }
    timber_result_free(res);
    CHECK(tu_count_entries(dir) == 3); /* base, instruct, g1: no temps */

    /* Several gammas: OUT/gamma-<g>/ each complete. */
    double gs[] = {0, 0.5, 1};
    timber_refine_options opt;
    timber_refine_options_init(&opt);
    opt.no_cache = 1;
    opt.gammas = gs;
    opt.ngammas = 3;
    const char *sweep = tu_path(dir, "sweep");
    st = timber_refine(tu_path(dir, "base"), idir, sweep, &opt, NULL, &err);
    CHECK_OK("sweep", st, &err);
    CHECK(tu_count_entries(sweep) == 3);
    CHECK(files_equal(tu_path(tu_path(sweep, "gamma-0"),
                              "model-00001-of-00002.safetensors"),
                      tu_path(tu_path(dir, "g1"),
                              "model-00001-of-00002.safetensors")));
    /* two shards, the index, config.json, and the card of its own */
    CHECK(tu_count_entries(tu_path(sweep, "gamma-1")) == 5 + 1);
    char card[4096];
    snprintf(card, sizeof card, "%s/gamma-1/README.md", sweep);
    CHECK(access(card, F_OK) == 0);

    /* A cancelled run leaves nothing behind. */
    volatile sig_atomic_t stop = 1;
    opt.cancel = &stop;
    opt.ngammas = 1;
    st = timber_refine(tu_path(dir, "base"), idir, tu_path(dir, "cancelled"),
                       &opt, NULL, &err);
    CHECK(st == TIMBER_ERR_INTERRUPTED);
    CHECK(tu_count_entries(dir) == 4);

    /* NaN in a tensor to refine: an error naming it, and no output. */
    const char *bad = tu_tempdir("nan");
    make_pair(bad, 1);
    st = run_refine(bad, tu_path(bad, "out"), 0.2, 0, NULL, &err);
    CHECK_ERROR("NaN input", st, &err, TIMBER_ERR_NONFINITE, "layer.1.w",
                "NaN", "instruct", "[1, 29]");
    CHECK(tu_count_entries(bad) == 2);
}

/* Random Base values and Instruct = Base + column-scaled noise (a spread
 * spectrum, so 0 < k < r); the caller frees base and inst. */
static void fill_spread(fixture_tensor *ts, size_t nt, double spread)
{
    for (size_t t = 0; t < nt; t++) {
        size_t n = nelems(&ts[t]), cols = ts[t].shape[1];
        ts[t].base = malloc(n * sizeof(double));
        ts[t].inst = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            ts[t].base[i] = 0.02 * gauss();
            double scale = 1e-3 * (1.0 + (double)(i % cols) / spread);
            ts[t].inst[i] = ts[t].base[i] + scale * gauss();
        }
    }
}

/* Matrices up to tb_whole_elems are read once, whole; bigger ones are
 * held (their raw bytes read once by pread, up to tb_hold_bytes) or
 * streamed twice from the mapping.  All three must give the same bytes
 * (they share the panels), with and without a cache, and a cache written
 * by one must serve the others.  Shapes span several panels both ways,
 * so the streamed Gram of the wide one goes by column panels. */
static void test_whole_vs_streamed(void)
{
    /* tu_path's buffers are reused: keep copies. */
    char dir[4096], bdir[4096], idir[4096], cache_a[4096], cache_b[4096];
    snprintf(dir, sizeof dir, "%s", tu_tempdir("whole"));
    snprintf(bdir, sizeof bdir, "%s", tu_path(dir, "base"));
    snprintf(idir, sizeof idir, "%s", tu_path(dir, "instruct"));
    snprintf(cache_a, sizeof cache_a, "%s", tu_path(dir, "a.tsvd"));
    snprintf(cache_b, sizeof cache_b, "%s", tu_path(dir, "b.tsvd"));
    char cache_c[4096];
    snprintf(cache_c, sizeof cache_c, "%s", tu_path(dir, "c.tsvd"));
    mkdir(bdir, 0777);
    mkdir(idir, 0777);
    fixture_tensor ts[3] = {
        /* F64 and F32 outputs show any difference in the arithmetic,
         * which rounding to 16 bits would mostly hide. */
        {"tall", TIMBER_DT_F64, 2, {2400, 300, 0}, NULL, NULL},
        {"wide", TIMBER_DT_F32, 2, {300, 2400, 0}, NULL, NULL},
        /* stacked experts: three 600 x 150 matrices, one after another */
        {"mlp.experts.w", TIMBER_DT_F32, 3, {3, 600, 150}, NULL, NULL},
    };
    fill_spread(ts, 3, 50.0);
    write_side(bdir, "model.safetensors", ts, 3, 0);
    write_side(idir, "model.safetensors", ts, 3, 1);
    const uint64_t all = tb_whole_elems, hold = tb_hold_bytes;
    /* run: 0 whole/no cache, 1 streamed/no cache, 2 streamed writing a
     * cache, 3 whole from that cache, 4 whole writing another cache,
     * 5 streamed from it, 6 held/no cache, 7 held from the streamed run's
     * cache, 8 held writing a third cache, 9 streamed from it. */
    struct {
        uint64_t whole, hold;
        const char *cache;
        size_t hits;
    } runs[10] = {{all, hold, NULL, 0},   {0, 0, NULL, 0},
                  {0, 0, cache_a, 0},     {all, hold, cache_a, 3},
                  {all, hold, cache_b, 0}, {0, 0, cache_b, 3},
                  {0, hold, NULL, 0},     {0, hold, cache_a, 3},
                  {0, hold, cache_c, 0},  {0, 0, cache_c, 3}};
    char out0[4096];
    snprintf(out0, sizeof out0, "%s", tu_path(dir, "out-0"));
    double g = 0.3;
    for (int r = 0; r < 10; r++) {
        char name[32];
        snprintf(name, sizeof name, "out-%d", r);
        const char *out = tu_path(dir, name);
        timber_refine_options opt;
        timber_refine_options_init(&opt);
        opt.no_cache = runs[r].cache == NULL;
        opt.cache_path = runs[r].cache;
        opt.gammas = &g;
        opt.ngammas = 1;
        tb_whole_elems = runs[r].whole;
        tb_hold_bytes = runs[r].hold;
        timber_result *res = NULL;
        timber_error err;
        timber_status st = timber_refine(bdir, idir, out, &opt, &res, &err);
        tb_whole_elems = all;
        tb_hold_bytes = hold;
        if (!CHECK_OK("refine whole/streamed", st, &err))
            continue;
        CHECKF(timber_result_cache_hits(res) == runs[r].hits,
               "run %d: %zu cache hits, expected %zu", r,
               timber_result_cache_hits(res), runs[r].hits);
        const timber_tensor_report *rep = find_report(res, "tall");
        CHECKF(rep && rep->k > 0 && rep->k < rep->rank,
               "run %d: tall should have a tail", r);
        timber_result_free(res);
        if (r)
            CHECKF(files_equal(tu_path(out, "model.safetensors"),
                               tu_path(out0, "model.safetensors")),
                   "run %d differs from the whole, uncached run", r);
    }
    for (size_t t = 0; t < 3; t++) {
        free(ts[t].base);
        free(ts[t].inst);
    }
}

/* Streamed matrices take the latest cache record of their name and shape
 * and confirm it by the CRCs their passes gather: a record of another
 * pair (same names and shapes, other values) is stale.  It must never be
 * applied (on the refined path, with the wide matrix's early stop, and on
 * the copy path of gamma = 1), and when the exact record is there too the
 * retry is served by it. */
static void test_stale_streamed(void)
{
    char dir[4096], side[2][2][4096], cache[3][4096];
    snprintf(dir, sizeof dir, "%s", tu_tempdir("stale"));
    snprintf(cache[1], sizeof cache[1], "%s", tu_path(dir, "c1.tsvd"));
    snprintf(cache[2], sizeof cache[2], "%s", tu_path(dir, "c2.tsvd"));
    /* The experts' records are NAME[e], each stale on its own: the retry
     * rewinds to that expert's first byte, not the tensor's. */
    fixture_tensor ts[3] = {
        {"tall", TIMBER_DT_F64, 2, {1200, 200, 0}, NULL, NULL},
        {"wide", TIMBER_DT_F32, 2, {200, 1200, 0}, NULL, NULL},
        {"mlp.experts.w", TIMBER_DT_F32, 3, {3, 400, 90}, NULL, NULL},
    };
    for (int p = 0; p < 2; p++) {
        char name[32];
        snprintf(name, sizeof name, "base%d", p);
        snprintf(side[p][0], sizeof side[p][0], "%s", tu_path(dir, name));
        snprintf(name, sizeof name, "inst%d", p);
        snprintf(side[p][1], sizeof side[p][1], "%s", tu_path(dir, name));
        mkdir(side[p][0], 0777);
        mkdir(side[p][1], 0777);
        fill_spread(ts, 3, 40.0);
        write_side(side[p][0], "model.safetensors", ts, 3, 0);
        write_side(side[p][1], "model.safetensors", ts, 3, 1);
        for (size_t t = 0; t < 3; t++) {
            free(ts[t].base);
            free(ts[t].inst);
        }
    }
    const uint64_t all = tb_whole_elems;
    /* pair, gamma, cache (0: none, the references), expected hits */
    struct {
        int pair;
        double gamma;
        int cached;
        size_t hits;
    } runs[] = {
        {0, 0.3, 0, 0}, {1, 0.3, 0, 0}, {1, 1.0, 0, 0},
        {0, 0.3, 1, 0}, /* pair 0's records into both caches */
        {0, 0.3, 2, 0},
        {1, 1.0, 1, 0}, /* stale on the copy path: nothing applied */
        {1, 0.3, 2, 0}, /* stale on the refined path: recomputed */
        {0, 0.3, 2, 3}, /* latest is pair 1's: the retry finds pair 0's */
    };
    size_t nruns = sizeof runs / sizeof runs[0];
    char outs[sizeof runs / sizeof runs[0]][4096];
    for (size_t r = 0; r < nruns; r++) {
        char name[32];
        snprintf(name, sizeof name, "out-%zu", r);
        snprintf(outs[r], sizeof outs[r], "%s", tu_path(dir, name));
        timber_refine_options opt;
        timber_refine_options_init(&opt);
        opt.no_cache = !runs[r].cached;
        opt.cache_path = runs[r].cached ? cache[runs[r].cached] : NULL;
        opt.gammas = &runs[r].gamma;
        opt.ngammas = 1;
        tb_whole_elems = 0;
        tb_hold_bytes = 0; /* streamed from the mapping, as it says */
        timber_result *res = NULL;
        timber_error err;
        int p = runs[r].pair;
        timber_status st =
            timber_refine(side[p][0], side[p][1], outs[r], &opt, &res, &err);
        tb_whole_elems = all;
        tb_hold_bytes = TB_HOLD_BYTES;
        if (!CHECK_OK("refine stale", st, &err))
            continue;
        CHECKF(timber_result_cache_hits(res) == runs[r].hits,
               "stale run %zu: %zu cache hits, expected %zu", r,
               timber_result_cache_hits(res), runs[r].hits);
        timber_result_free(res);
        if (!runs[r].cached)
            continue;
        size_t ref = runs[r].gamma == 1.0 ? 2 : (size_t)p;
        char a[4096];
        snprintf(a, sizeof a, "%s", tu_path(outs[r], "model.safetensors"));
        CHECKF(files_equal(a, tu_path(outs[ref], "model.safetensors")),
               "stale run %zu differs from the uncached run", r);
    }
}

/* Cache records carry the route that computed them (backend.h): a
 * record of another route is a miss, never applied, and the records of
 * both routes then live side by side in one file.  tb_route_test_id
 * stands in for a second route (the arithmetic is the same). */
typedef struct route_count {
    size_t a, b;
} route_count;

static void count_routes(const timber_cache_record *r, void *user)
{
    route_count *c = user;
    if (r->valid && r->route == 0x10001u)
        c->a++;
    else if (r->valid && r->route == 0x20001u)
        c->b++;
}

static void test_routes(void)
{
    char dir[4096], bdir[4096], idir[4096], cache[4096], out0[4096];
    snprintf(dir, sizeof dir, "%s", tu_tempdir("route"));
    snprintf(bdir, sizeof bdir, "%s", tu_path(dir, "base"));
    snprintf(idir, sizeof idir, "%s", tu_path(dir, "instruct"));
    snprintf(cache, sizeof cache, "%s", tu_path(dir, "c.tsvd"));
    snprintf(out0, sizeof out0, "%s", tu_path(dir, "out-0"));
    mkdir(bdir, 0777);
    mkdir(idir, 0777);
    fixture_tensor ts[2] = {
        {"tall", TIMBER_DT_F32, 2, {300, 120, 0}, NULL, NULL},
        {"mlp.experts.w", TIMBER_DT_F32, 3, {2, 90, 60}, NULL, NULL},
    };
    fill_spread(ts, 2, 30.0);
    write_side(bdir, "model.safetensors", ts, 2, 0);
    write_side(idir, "model.safetensors", ts, 2, 1);
    /* route id (0: the real one), expected hits */
    struct {
        uint32_t route;
        size_t hits;
    } runs[] = {{0, 0}, {0, 2}, {0x20001u, 0}, {0x20001u, 2}, {0, 2}};
    double g = 0.3;
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        char name[32];
        snprintf(name, sizeof name, "out-%zu", r);
        const char *out = tu_path(dir, name);
        timber_refine_options opt;
        timber_refine_options_init(&opt);
        opt.cache_path = cache;
        opt.gammas = &g;
        opt.ngammas = 1;
        tb_route_test_id = runs[r].route;
        timber_result *res = NULL;
        timber_error err;
        timber_status st = timber_refine(bdir, idir, out, &opt, &res, &err);
        tb_route_test_id = 0;
        if (!CHECK_OK("refine route", st, &err))
            continue;
        CHECKF(timber_result_cache_hits(res) == runs[r].hits,
               "route run %zu: %zu cache hits, expected %zu", r,
               timber_result_cache_hits(res), runs[r].hits);
        timber_result_free(res);
        if (r)
            CHECKF(files_equal(tu_path(out, "model.safetensors"),
                               tu_path(out0, "model.safetensors")),
                   "route run %zu differs from the first", r);
    }
    /* one record per matrix (tall, two experts) for each route */
    route_count c = {0, 0};
    timber_cache_stats stats;
    timber_error err;
    CHECK_OK("inspect routes",
             timber_cache_inspect(cache, count_routes, &c, &stats, &err),
             &err);
    CHECKF(c.a == 3 && c.b == 3 && stats.records == 6,
           "records: %zu of route A, %zu of route B, %zu in all", c.a, c.b,
           stats.records);
    for (size_t t = 0; t < 2; t++) {
        free(ts[t].base);
        free(ts[t].inst);
    }
}

/* Progress within a tensor, and where each tensor's time went. */
typedef struct progress_log {
    size_t calls, within, within_big;
    uint64_t last_done, total;
    int monotonic, bounded;
} progress_log;

static void log_progress(const timber_progress *p, void *user)
{
    progress_log *l = user;
    l->calls++;
    if (p->within) {
        l->within++;
        l->within_big += strcmp(p->tensor, "big") == 0;
    }
    l->monotonic &= p->work_done >= l->last_done;
    l->bounded &= p->work_done <= p->work_total;
    l->last_done = p->work_done;
    l->total = p->work_total;
}

static void test_progress_and_timings(void)
{
    char dir[4096], bdir[4096], idir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tempdir("progress"));
    snprintf(bdir, sizeof bdir, "%s", tu_path(dir, "base"));
    snprintf(idir, sizeof idir, "%s", tu_path(dir, "instruct"));
    mkdir(bdir, 0777);
    mkdir(idir, 0777);
    /* "big": 1.5 million elements, several panels of TB_PANEL_ELEMS;
     * "norm" is 1-D, so copied. */
    fixture_tensor ts[3] = {
        {"big", TIMBER_DT_BF16, 2, {6144, 256, 0}, NULL, NULL},
        {"small", TIMBER_DT_BF16, 2, {64, 48, 0}, NULL, NULL},
        {"norm", TIMBER_DT_BF16, 1, {256, 0, 0}, NULL, NULL},
    };
    fill_spread(ts, 2, 20.0);
    ts[2].base = malloc(256 * sizeof(double));
    ts[2].inst = malloc(256 * sizeof(double));
    for (size_t i = 0; i < 256; i++)
        ts[2].base[i] = ts[2].inst[i] = 1.0 + 0.01 * (double)i;
    write_side(bdir, "model.safetensors", ts, 3, 0);
    write_side(idir, "model.safetensors", ts, 3, 1);
    const uint64_t all = tb_whole_elems;
    const double interval = tb_progress_interval;
    /* whole (read once) and streamed: both passes tick */
    for (int streamed = 0; streamed < 2; streamed++) {
        char name[32];
        snprintf(name, sizeof name, "out-%d", streamed);
        const char *out = tu_path(dir, name);
        progress_log log = {0, 0, 0, 0, 0, 1, 1};
        timber_refine_options opt;
        timber_refine_options_init(&opt);
        opt.no_cache = 1;
        opt.threads = 1;
        opt.progress = log_progress;
        opt.user = &log;
        tb_whole_elems = streamed ? 0 : all;
        tb_progress_interval = 0; /* every tick, not every 0.25 s */
        timber_result *res = NULL;
        timber_error err;
        timber_status st = timber_refine(bdir, idir, out, &opt, &res, &err);
        tb_whole_elems = all;
        tb_progress_interval = interval;
        if (!CHECK_OK("refine progress", st, &err))
            continue;
        CHECKF(log.within_big > 1,
               "streamed %d: %zu progress calls within the big tensor",
               streamed, log.within_big);
        CHECKF(log.calls == log.within + 3,
               "streamed %d: %zu calls, %zu within: expected one per "
               "tensor besides",
               streamed, log.calls, log.within);
        CHECKF(log.monotonic && log.bounded && log.last_done == log.total,
               "streamed %d: work_done not monotonic up to work_total "
               "(%llu of %llu)",
               streamed, (unsigned long long)log.last_done,
               (unsigned long long)log.total);
        for (size_t i = 0; i < timber_result_count(res); i++) {
            const timber_tensor_report *t = timber_result_tensor(res, i);
            double sum = 0, compute = 0;
            int nonneg = 1;
            for (int ph = 0; ph < TIMBER_PHASE_COUNT; ph++) {
                nonneg &= t->phase_seconds[ph] >= 0;
                sum += t->phase_seconds[ph];
                if (ph != TIMBER_PHASE_READ && ph != TIMBER_PHASE_WRITE &&
                    ph != TIMBER_PHASE_WAIT)
                    compute += t->phase_seconds[ph];
            }
            CHECKF(nonneg && t->seconds >= 0 &&
                       sum <= t->seconds * 1.01 + 1e-4,
                   "%s: phases sum to %g s, the tensor took %g s", t->name,
                   sum, t->seconds);
            if (t->action == TIMBER_ACTION_REFINED)
                CHECKF(sum > 0 && t->phase_seconds[TIMBER_PHASE_GRAM] > 0 &&
                           t->phase_seconds[TIMBER_PHASE_REDUCE] > 0,
                       "%s: refined, but no time in its phases", t->name);
            else
                CHECKF(compute == 0,
                       "%s: copied, but %g s outside read/write/wait",
                       t->name, compute);
        }
        CHECK(strcmp(timber_phase_name(TIMBER_PHASE_BACK), "back") == 0 &&
              timber_phase_name(TIMBER_PHASE_COUNT) == NULL);
        timber_result_free(res);
    }
    for (size_t t = 0; t < 3; t++) {
        free(ts[t].base);
        free(ts[t].inst);
    }
}

int main(void)
{
    test_prescribed();
    test_directory();
    test_whole_vs_streamed();
    test_stale_streamed();
    test_routes();
    test_progress_and_timings();
    return tu_report();
}
