/*
 * timber_gen.c — timber-gen, the fixture generator: writes a realistic,
 * deterministic Base / Instruct checkpoint pair for timber's tests,
 * benchmarks and demos.
 *
 * usage: timber-gen OUTDIR [--preset tiny|qwen3-0.6b|llama-3.1-8b|qwen3-moe]
 *                   [--layers N] [--experts N] [--vocab N]
 *                   [--dtype bf16|f16|f32] [--base-dtype bf16|f16|f32]
 *                   [--seed S] [--max-shard-size SIZE] [--variants LIST]
 *                   [--grow-vocab N] [--threads N] [--force]
 *
 * It writes OUTDIR/base/ and OUTDIR/instruct/ (OUTDIR is created if
 * needed), each a Hugging Face checkpoint directory: model.safetensors, or
 * model-0000i-of-0000N.safetensors shards plus model.safetensors.index.json
 * when --max-shard-size splits it; config.json, generation_config.json,
 * tokenizer_config.json (Instruct's has a chat_template) and tokenizer.json.
 * The two sides' non-weight files differ (eos ids, chat template), so a
 * test can tell which side a copied file came from.
 *
 * Options (also in --help, kept in sync with help_text below):
 *   --preset P          tiny (default), qwen3-0.6b, llama-3.1-8b, qwen3-moe
 *   --layers N          number of decoder layers (default: the preset's)
 *   --experts N         experts per layer (qwen3-moe only; default 128)
 *   --vocab N           vocabulary rows of the embedding (and lm_head),
 *                       512 or more (default: the preset's); the special
 *                       token ids keep their distance from the end
 *   --dtype D           Instruct's float dtype: bf16 (default), f16, f32
 *   --base-dtype D      Base's float dtype (default: --dtype)
 *   --seed S            unsigned 64-bit seed (default 1)
 *   --max-shard-size Z  bytes per shard, K/M/G suffixes = powers of 1024
 *                       (default: unlimited, one model.safetensors)
 *   --variants LIST     comma list of instruct-only, base-only, 3d,
 *                       unchanged, low-rank, grow-vocab, nonfloat, wide,
 *                       all, none (default: all for tiny, none otherwise;
 *                       all does not include wide)
 *   --grow-vocab N      rows Instruct adds with grow-vocab (default 16)
 *   --threads N         generator threads (default: online CPUs, max 16);
 *                       the output does not depend on it
 *   --force             replace existing OUTDIR/base and OUTDIR/instruct
 *
 * Variant tensors (h = hidden size):
 *   instruct-only  model.variant.instruct_only.weight [h, h], Instruct only
 *   base-only      model.variant.base_only.weight [h, h], Base only
 *   3d             model.variant.three_d.weight [h, 4, h/2], both; its
 *                  matrix view (d0 rows, d1 x d2 columns) is h x 2h and
 *                  its delta has the realistic spectrum of a 2-D weight,
 *                  so refinement makes a real cut (0 < k < r)
 *   experts3d      model.variant.mlp.experts.gate_up_proj [16, h, h/2],
 *                  stacked experts: refined per expert, 16 matrices
 *                  h x h/2; flattened, 16 x h^2/2 with a real cut too
 *                  (only when named)
 *   unchanged      model.variant.unchanged.weight [h, h], same values
 *                  (identical bytes when both sides have the same dtype)
 *   low-rank       model.variant.low_rank.weight [2h, h], delta exactly
 *                  rank 4 before rounding
 *   grow-vocab     Instruct's model.embed_tokens.weight (and lm_head.weight
 *                  when untied) gain N rows; config vocab_size follows
 *   nonfloat       model.variant.int_buffer I32 [8, 8] and
 *                  model.variant.mask BOOL [16], identical in both
 *   wide           model.variant.wide.weight [h, max(2h, 2^20 / h)], both:
 *                  a wide matrix of at least 2^20 elements, so timber
 *                  streams it in several row and column panels (only
 *                  when named: not part of all)
 *
 * Numbers (gen_values.h has the details): Base weights ~ N(0, 0.02^2),
 * norms ~ 1 + N(0, 0.05^2); Instruct = Base + delta in double, each side
 * then rounded to its dtype by the library's tb_encode.  The delta is about
 * 3 % of Base (Frobenius) with a realistic spectrum: the stored delta's
 * effective rank is about 0.85 x min(rows, cols).  Every value is a pure
 * function of (seed, tensor name, position), so the output bytes depend
 * only on the arguments (not on --threads or on which other tensors
 * exist).  Tensors are generated in row blocks and streamed to the shard
 * writers: memory stays at a few tens of MB for any preset.
 *
 * Shards are filled greedily in model order (embedding, layers, final norm,
 * lm_head, variants): a new shard starts when the next tensor would pass
 * the limit; a tensor larger than the limit gets a shard of its own.
 *
 * Everything is written into hidden temporary directories inside OUTDIR
 * and renamed into place at the end; an interrupted run leaves only
 * OUTDIR/.timber-gen.* directories behind.
 *
 * Exit codes: 0 success, 1 runtime error (I/O, existing output), 2 usage
 * error.  Errors are one line on stderr; a summary goes to stdout.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dtype.h"
#include "gen_values.h"
#include "model.h"
#include "safetensors.h"
#include "timber.h"
#include "util.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char *progname = "timber-gen";

static const char help_text[] =
    "usage: timber-gen OUTDIR [options]\n"
    "\n"
    "Writes a deterministic, realistic Base/Instruct checkpoint pair for\n"
    "timber's tests: OUTDIR/base/ and OUTDIR/instruct/, each with its\n"
    "safetensors shard(s), config.json, generation_config.json,\n"
    "tokenizer_config.json (Instruct's with a chat_template) and\n"
    "tokenizer.json.  Instruct = Base + a delta of about 3 % whose stored\n"
    "effective rank is about 0.85 x min(rows, cols).\n"
    "\n"
    "options:\n"
    "  --preset P           tiny (default), qwen3-0.6b, llama-3.1-8b,\n"
    "                       qwen3-moe (Qwen3-30B-A3B shapes)\n"
    "  --layers N           decoder layers (default: the preset's)\n"
    "  --experts N          experts per layer, qwen3-moe only (default 128)\n"
    "  --vocab N            embedding rows, at least 512 (default: the\n"
    "                       preset's, e.g. 151936 for qwen3-0.6b)\n"
    "  --dtype D            Instruct's float dtype: bf16 (default), f16, f32, f64\n"
    "  --base-dtype D       Base's float dtype (default: --dtype)\n"
    "  --seed S             unsigned 64-bit seed (default 1)\n"
    "  --max-shard-size Z   shard size limit in bytes; suffixes K, M, G are\n"
    "                       powers of 1024 (default: unlimited, one\n"
    "                       model.safetensors and no index)\n"
    "  --variants LIST      comma list of: instruct-only, base-only, 3d,\n"
    "                       unchanged, low-rank, grow-vocab, nonfloat,\n"
    "                       wide, all, none (default: all for tiny, none\n"
    "                       otherwise; all does not include wide)\n"
    "  --grow-vocab N       rows Instruct adds to the embedding (and an\n"
    "                       untied lm_head) with grow-vocab (default 16)\n"
    "  --threads N          generator threads (default: CPUs online, at\n"
    "                       most 16); the output does not depend on it\n"
    "  --force              replace existing OUTDIR/base and OUTDIR/instruct\n"
    "  -h, --help           show this help\n"
    "\n"
    "variant tensors (h = hidden size):\n"
    "  instruct-only  model.variant.instruct_only.weight [h, h], Instruct only\n"
    "  base-only      model.variant.base_only.weight [h, h], Base only\n"
    "  3d             model.variant.three_d.weight [h, 4, h/2] (matrix\n"
    "                 view h x 2h, a realistic delta)\n"
    "  experts3d      model.variant.mlp.experts.gate_up_proj [16, h, h/2],\n"
    "                 stacked experts (only when named)\n"
    "  unchanged      model.variant.unchanged.weight [h, h], same in both\n"
    "  low-rank       model.variant.low_rank.weight [2h, h], rank-4 delta\n"
    "  grow-vocab     Instruct's model.embed_tokens.weight (and lm_head.weight\n"
    "                 if untied) get N more rows; its vocab_size follows\n"
    "  nonfloat       model.variant.int_buffer (I32 [8, 8]) and\n"
    "                 model.variant.mask (BOOL [16]), same in both\n"
    "  wide           model.variant.wide.weight [h, max(2h, 2^20/h)], a\n"
    "                 wide matrix of 2^20+ elements (not part of all)\n"
    "\n"
    "The output depends only on the arguments.  Exit codes: 0 success,\n"
    "1 runtime error (I/O, output exists), 2 usage error.\n";

static void errorf(const char *fmt, ...) TB_PRINTF(1, 2);
static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *fmt, ...) TB_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see '%s --help')\n", progname);
    va_end(ap);
    return EXIT_USAGE;
}

/* ---------------------------------------------------------------- presets */

enum family { FAM_QWEN, FAM_LLAMA };

typedef struct preset {
    const char *name;
    const char *arch;       /* config "architectures" */
    const char *model_type;
    enum family family;
    uint64_t hidden, inter, layers, vocab, heads, kv_heads, head_dim;
    int tied, qk_norm, moe;
    uint64_t experts, moe_inter, experts_per_tok;
    double rope_theta, rms_eps;
    uint64_t max_pos;
    /* special token ids: Qwen <|endoftext|>, <|im_start|>, <|im_end|>;
     * Llama <|begin_of_text|>, <|end_of_text|>, <|eot_id|> */
    uint64_t tok[3];
} preset;

static const preset presets[] = {
    {"tiny", "Qwen3ForCausalLM", "qwen3", FAM_QWEN, 64, 192, 2, 512, 4, 2,
     16, 0, 1, 0, 0, 0, 0, 1000000.0, 1e-6, 4096, {500, 501, 502}},
    {"qwen3-0.6b", "Qwen3ForCausalLM", "qwen3", FAM_QWEN, 1024, 3072, 28,
     151936, 16, 8, 128, 1, 1, 0, 0, 0, 0, 1000000.0, 1e-6, 40960,
     {151643, 151644, 151645}},
    {"llama-3.1-8b", "LlamaForCausalLM", "llama", FAM_LLAMA, 4096, 14336, 32,
     128256, 32, 8, 128, 0, 0, 0, 0, 0, 0, 500000.0, 1e-5, 131072,
     {128000, 128001, 128009}},
    {"qwen3-moe", "Qwen3MoeForCausalLM", "qwen3_moe", FAM_QWEN, 2048, 6144,
     48, 151936, 32, 4, 128, 0, 1, 1, 128, 768, 8, 1000000.0, 1e-6, 40960,
     {151643, 151644, 151645}},
};

/* ---------------------------------------------------------------- options */

enum variant {
    V_INSTRUCT_ONLY = 1 << 0,
    V_BASE_ONLY = 1 << 1,
    V_3D = 1 << 2,
    V_UNCHANGED = 1 << 3,
    V_LOW_RANK = 1 << 4,
    V_GROW_VOCAB = 1 << 5,
    V_NONFLOAT = 1 << 6,
    V_ALL = (1 << 7) - 1,
    V_WIDE = 1 << 7, /* only when named */
    V_EXPERTS3D = 1 << 8, /* only when named */
};

static const struct {
    const char *name;
    unsigned bits;
} variant_names[] = {
    {"instruct-only", V_INSTRUCT_ONLY}, {"base-only", V_BASE_ONLY},
    {"3d", V_3D},                       {"unchanged", V_UNCHANGED},
    {"low-rank", V_LOW_RANK},           {"grow-vocab", V_GROW_VOCAB},
    {"nonfloat", V_NONFLOAT},           {"wide", V_WIDE},
    {"experts3d", V_EXPERTS3D},
    {"all", V_ALL},
    {"none", 0},
};

typedef struct options {
    const char *outdir;
    preset p;               /* with --layers / --experts applied */
    timber_dtype dt[2];     /* [0] Base, [1] Instruct */
    uint64_t seed;
    uint64_t max_shard;     /* 0: unlimited */
    unsigned variants;
    uint64_t grow;
    unsigned threads;
    int force;
} options;

/* A whole decimal number in [lo, hi]; 0 if malformed or out of range. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

static int parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return 0;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return 0;
    }
    if (*end || v == 0 || v > (UINT64_MAX >> shift))
        return 0;
    *out = (uint64_t)v << shift;
    return 1;
}

static int parse_dtype(const char *s, timber_dtype *out)
{
    if (!s)
        return 0;
    if (strcmp(s, "bf16") == 0 || strcmp(s, "BF16") == 0)
        *out = TIMBER_DT_BF16;
    else if (strcmp(s, "f16") == 0 || strcmp(s, "F16") == 0)
        *out = TIMBER_DT_F16;
    else if (strcmp(s, "f32") == 0 || strcmp(s, "F32") == 0)
        *out = TIMBER_DT_F32;
    else if (strcmp(s, "f64") == 0 || strcmp(s, "F64") == 0)
        *out = TIMBER_DT_F64;
    else
        return 0;
    return 1;
}

/* Parses "a,b,c" into variant bits; returns -1 (and names the culprit in
 * bad) on an unknown name. */
static int parse_variants(const char *s, unsigned *out, char *bad,
                          size_t badsize)
{
    unsigned bits = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t i, nv = sizeof variant_names / sizeof *variant_names;
        for (i = 0; i < nv; i++)
            if (strlen(variant_names[i].name) == len &&
                strncmp(variant_names[i].name, p, len) == 0)
                break;
        if (i == nv) {
            snprintf(bad, badsize, "%.*s", (int)len, p);
            return -1;
        }
        bits |= variant_names[i].bits;
        if (!e)
            break;
        p = e + 1;
    }
    *out = bits;
    return 0;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 16 ? 16 : (unsigned)n;
}

/* Returns -1 when the options are good, else the exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    const char *preset_name = "tiny", *dtype = NULL, *base_dtype = NULL;
    const char *layers = NULL, *experts = NULL, *variants = NULL;
    const char *vocab = NULL;
    o->seed = 1;
    o->grow = 16;
    o->threads = default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(help_text, stdout);
            if (fflush(stdout) != 0) {
                errorf("error writing to standard output: %s",
                       strerror(errno));
                return EXIT_FAIL;
            }
            return EXIT_OK;
        }
        if (strcmp(a, "--force") == 0) {
            o->force = 1;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (o->outdir)
                return usage_error("unexpected argument '%s' (OUTDIR is "
                                   "already '%s')", a, o->outdir);
            o->outdir = a;
            continue;
        }
        /* --name value or --name=value */
        static const char *const valued[] = {
            "--preset", "--layers", "--experts", "--dtype", "--base-dtype",
            "--seed", "--max-shard-size", "--variants", "--grow-vocab",
            "--threads", "--vocab",
        };
        const char *name = NULL, *val = NULL;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) {
            size_t len = strlen(valued[k]);
            if (strncmp(a, valued[k], len) == 0 &&
                (a[len] == '\0' || a[len] == '=')) {
                name = valued[k];
                if (a[len] == '=')
                    val = a + len + 1;
                else if (i + 1 < argc)
                    val = argv[++i];
                else
                    return usage_error("option %s needs a value", name);
                break;
            }
        }
        if (!name)
            return usage_error("unknown option '%s'", a);
        uint64_t v;
        if (strcmp(name, "--preset") == 0)
            preset_name = val;
        else if (strcmp(name, "--layers") == 0)
            layers = val;
        else if (strcmp(name, "--experts") == 0)
            experts = val;
        else if (strcmp(name, "--vocab") == 0)
            vocab = val;
        else if (strcmp(name, "--dtype") == 0)
            dtype = val;
        else if (strcmp(name, "--base-dtype") == 0)
            base_dtype = val;
        else if (strcmp(name, "--variants") == 0)
            variants = val;
        else if (strcmp(name, "--seed") == 0) {
            if (!parse_u64(val, 0, UINT64_MAX, &o->seed))
                return usage_error("--seed '%s' is not an unsigned 64-bit "
                                   "number", val);
        } else if (strcmp(name, "--max-shard-size") == 0) {
            if (!parse_size(val, &o->max_shard))
                return usage_error("--max-shard-size '%s' is not a positive "
                                   "byte count (suffixes K, M, G)", val);
        } else if (strcmp(name, "--grow-vocab") == 0) {
            if (!parse_u64(val, 1, 1u << 20, &o->grow))
                return usage_error("--grow-vocab '%s' is not a number of "
                                   "rows from 1 to 1048576", val);
        } else if (strcmp(name, "--threads") == 0) {
            if (!parse_u64(val, 1, 256, &v))
                return usage_error("--threads '%s' is not a number from 1 "
                                   "to 256", val);
            o->threads = (unsigned)v;
        }
    }
    if (!o->outdir)
        return usage_error("missing OUTDIR");
    if (!o->outdir[0])
        return usage_error("OUTDIR is empty");

    size_t np = sizeof presets / sizeof *presets, k;
    for (k = 0; k < np; k++)
        if (strcmp(presets[k].name, preset_name) == 0)
            break;
    if (k == np)
        return usage_error("unknown preset '%s' (tiny, qwen3-0.6b, "
                           "llama-3.1-8b, qwen3-moe)", preset_name);
    o->p = presets[k];
    if (layers) {
        uint64_t v;
        if (!parse_u64(layers, 0, 1000, &v))
            return usage_error("--layers '%s' is not a number from 0 to "
                               "1000", layers);
        o->p.layers = v;
    }
    if (vocab) {
        /* The special tokens sit at most 293 ids below a preset's vocab
         * size; they keep that distance, so they stay in range. */
        uint64_t v;
        if (!parse_u64(vocab, 512, (uint64_t)1 << 24, &v))
            return usage_error("--vocab '%s' is not a number from 512 to "
                               "16777216", vocab);
        for (int t = 0; t < 3; t++)
            o->p.tok[t] = o->p.tok[t] - o->p.vocab + v;
        o->p.vocab = v;
    }
    if (experts) {
        uint64_t v;
        if (!o->p.moe)
            return usage_error("--experts applies only to the qwen3-moe "
                               "preset, not '%s'", o->p.name);
        if (!parse_u64(experts, 1, 4096, &v))
            return usage_error("--experts '%s' is not a number from 1 to "
                               "4096", experts);
        o->p.experts = v;
        if (o->p.experts_per_tok > v)
            o->p.experts_per_tok = v;
    }
    o->dt[1] = TIMBER_DT_BF16;
    if (dtype && !parse_dtype(dtype, &o->dt[1]))
        return usage_error("--dtype '%s' is not bf16, f16 or f32", dtype);
    o->dt[0] = o->dt[1];
    if (base_dtype && !parse_dtype(base_dtype, &o->dt[0]))
        return usage_error("--base-dtype '%s' is not bf16, f16 or f32",
                           base_dtype);
    o->variants = strcmp(o->p.name, "tiny") == 0 ? V_ALL : 0;
    if (variants) {
        char bad[64];
        if (parse_variants(variants, &o->variants, bad, sizeof bad) != 0)
            return usage_error("unknown variant '%s' in --variants (one of "
                               "instruct-only, base-only, 3d, unchanged, "
                               "low-rank, grow-vocab, nonfloat, wide, all, "
                               "none)",
                               bad);
    }
    return -1;
}

/* ---------------------------------------------------------------- tensors */

enum kind { K_MATRIX, K_NORM, K_I32, K_BOOL };

#define NAME_MAX_LEN 96

typedef struct gtensor {
    char name[NAME_MAX_LEN];
    enum kind kind;
    enum gv_delta mode;
    size_t ndim;
    uint64_t shape[2][3];   /* per side: [0] Base, [1] Instruct */
    int present[2];
    uint64_t bytes[2];
    size_t shard[2];        /* shard number on each side */
    size_t slot[2];         /* position in its shard's tensor list */
} gtensor;

typedef struct tlist {
    gtensor *t;
    size_t n, cap;
} tlist;

static int tl_add(tlist *l, const char *name, enum kind kind,
                  enum gv_delta mode, size_t ndim, const uint64_t *shape,
                  int in_base, int in_inst)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        gtensor *t = realloc(l->t, cap * sizeof *t);
        if (!t)
            return -1;
        l->t = t;
        l->cap = cap;
    }
    gtensor *g = &l->t[l->n];
    memset(g, 0, sizeof *g);
    if (strlen(name) >= NAME_MAX_LEN)
        return -1;
    strcpy(g->name, name);
    g->kind = kind;
    g->mode = mode;
    g->ndim = ndim;
    for (size_t d = 0; d < ndim; d++)
        g->shape[0][d] = g->shape[1][d] = shape[d];
    g->present[0] = in_base;
    g->present[1] = in_inst;
    l->n++;
    return 0;
}

static int add2(tlist *l, const char *name, uint64_t rows, uint64_t cols)
{
    uint64_t s[2] = {rows, cols};
    return tl_add(l, name, K_MATRIX, GV_DELTA_NORMAL, 2, s, 1, 1);
}

static int add1(tlist *l, const char *name, uint64_t n)
{
    return tl_add(l, name, K_NORM, GV_DELTA_NORMAL, 1, &n, 1, 1);
}

/* "model.layers.L.<what>.weight" into buf (NAME_MAX_LEN bytes). */
static const char *lname(char *buf, uint64_t L, const char *what)
{
    snprintf(buf, NAME_MAX_LEN, "model.layers.%" PRIu64 ".%s.weight", L,
             what);
    return buf;
}

/* The tensors of the model, in model order. */
static int build_tensors(const options *o, tlist *l)
{
    const preset *p = &o->p;
    const uint64_t h = p->hidden, q = p->heads * p->head_dim,
                   kv = p->kv_heads * p->head_dim;
    char nm[NAME_MAX_LEN];
    int rc = add2(l, "model.embed_tokens.weight", p->vocab, h);
    size_t embed = l->n - 1;
    for (uint64_t L = 0; L < p->layers && !rc; L++) {
        rc = rc || add2(l, lname(nm, L, "self_attn.q_proj"), q, h);
        rc = rc || add2(l, lname(nm, L, "self_attn.k_proj"), kv, h);
        rc = rc || add2(l, lname(nm, L, "self_attn.v_proj"), kv, h);
        rc = rc || add2(l, lname(nm, L, "self_attn.o_proj"), h, q);
        if (p->qk_norm) {
            rc = rc || add1(l, lname(nm, L, "self_attn.q_norm"), p->head_dim);
            rc = rc || add1(l, lname(nm, L, "self_attn.k_norm"), p->head_dim);
        }
        if (p->moe) {
            rc = rc || add2(l, lname(nm, L, "mlp.gate"), p->experts, h);
            for (uint64_t e = 0; e < p->experts && !rc; e++) {
                static const char *const proj[] = {"gate_proj", "up_proj",
                                                   "down_proj"};
                for (int k = 0; k < 3 && !rc; k++) {
                    char sub[48];
                    snprintf(sub, sizeof sub, "mlp.experts.%" PRIu64 ".%s",
                             e, proj[k]);
                    rc = k < 2 ? add2(l, lname(nm, L, sub), p->moe_inter, h)
                               : add2(l, lname(nm, L, sub), h, p->moe_inter);
                }
            }
        } else {
            rc = rc || add2(l, lname(nm, L, "mlp.gate_proj"), p->inter, h);
            rc = rc || add2(l, lname(nm, L, "mlp.up_proj"), p->inter, h);
            rc = rc || add2(l, lname(nm, L, "mlp.down_proj"), h, p->inter);
        }
        rc = rc || add1(l, lname(nm, L, "input_layernorm"), h);
        rc = rc || add1(l, lname(nm, L, "post_attention_layernorm"), h);
    }
    rc = rc || add1(l, "model.norm.weight", h);
    size_t head = SIZE_MAX;
    if (!p->tied && !rc) {
        rc = add2(l, "lm_head.weight", p->vocab, h);
        head = l->n - 1;
    }
    if (rc)
        return -1;
    if (o->variants & V_GROW_VOCAB) {
        l->t[embed].shape[1][0] += o->grow;
        if (head != SIZE_MAX)
            l->t[head].shape[1][0] += o->grow;
    }
    unsigned v = o->variants;
    uint64_t hh[2] = {h, h}, h3[3] = {h, 4, h / 2}, lr[2] = {2 * h, h};
    uint64_t ib[2] = {8, 8}, mk[1] = {16};
    uint64_t wd[2] = {h, 2 * h > (1u << 20) / h ? 2 * h : (1u << 20) / h};
    if (v & V_INSTRUCT_ONLY)
        rc = rc || tl_add(l, "model.variant.instruct_only.weight", K_MATRIX,
                          GV_DELTA_NORMAL, 2, hh, 0, 1);
    if (v & V_BASE_ONLY)
        rc = rc || tl_add(l, "model.variant.base_only.weight", K_MATRIX,
                          GV_DELTA_NORMAL, 2, hh, 1, 0);
    if (v & V_3D)
        rc = rc || tl_add(l, "model.variant.three_d.weight", K_MATRIX,
                          GV_DELTA_NORMAL, 3, h3, 1, 1);
    /* Stacked experts [E, a, b]: refined per expert (a x b each). */
    uint64_t ex3[3] = {16, h, h / 2};
    if (v & V_EXPERTS3D)
        rc = rc || tl_add(l, "model.variant.mlp.experts.gate_up_proj",
                          K_MATRIX, GV_DELTA_NORMAL, 3, ex3, 1, 1);
    if (v & V_UNCHANGED)
        rc = rc || tl_add(l, "model.variant.unchanged.weight", K_MATRIX,
                          GV_DELTA_NONE, 2, hh, 1, 1);
    if (v & V_LOW_RANK)
        rc = rc || tl_add(l, "model.variant.low_rank.weight", K_MATRIX,
                          GV_DELTA_LOW_RANK, 2, lr, 1, 1);
    if (v & V_NONFLOAT) {
        rc = rc || tl_add(l, "model.variant.int_buffer", K_I32,
                          GV_DELTA_NONE, 2, ib, 1, 1);
        rc = rc || tl_add(l, "model.variant.mask", K_BOOL, GV_DELTA_NONE, 1,
                          mk, 1, 1);
    }
    if (v & V_WIDE)
        rc = rc || tl_add(l, "model.variant.wide.weight", K_MATRIX,
                          GV_DELTA_NORMAL, 2, wd, 1, 1);
    return rc ? -1 : 0;
}

static timber_dtype tensor_dtype(const gtensor *g, const options *o, int side)
{
    switch (g->kind) {
    case K_I32: return TIMBER_DT_I32;
    case K_BOOL: return TIMBER_DT_BOOL;
    default: return o->dt[side];
    }
}

static uint64_t elems_of(const gtensor *g, int side)
{
    uint64_t e = 1;
    for (size_t d = 0; d < g->ndim; d++)
        e *= g->shape[side][d];
    return e;
}

/* ---------------------------------------------------------------- shards */

typedef struct side {
    const char *label;      /* "base" / "instruct" */
    int idx;                /* 0 / 1 */
    timber_dtype dt;
    char *final_dir;        /* OUTDIR/base */
    char *tmp_dir;          /* OUTDIR/.timber-gen.<pid>.base */
    size_t nshards;
    uint64_t total_bytes, total_params;
    size_t ntensors;
    /* the open shard */
    size_t open_shard;      /* SIZE_MAX: none */
    tb_writer *w;
} side;

static void plan_shards(tlist *l, const options *o, side *s)
{
    const int k = s->idx;
    size_t shard = 0, count = 0;
    uint64_t size = 0;
    s->total_bytes = 0;
    s->total_params = 0;
    s->ntensors = 0;
    for (size_t i = 0; i < l->n; i++) {
        gtensor *g = &l->t[i];
        if (!g->present[k])
            continue;
        g->bytes[k] = elems_of(g, k) *
                      (timber_dtype_bits(tensor_dtype(g, o, k)) / 8);
        if (o->max_shard && count > 0 && size + g->bytes[k] > o->max_shard) {
            shard++;
            size = 0;
            count = 0;
        }
        g->shard[k] = shard;
        g->slot[k] = count;
        size += g->bytes[k];
        count++;
        s->total_bytes += g->bytes[k];
        s->total_params += elems_of(g, k);
        s->ntensors++;
    }
    s->nshards = shard + 1;
}

static void shard_name(const side *s, size_t shard, char *buf, size_t size)
{
    if (s->nshards == 1)
        snprintf(buf, size, "model.safetensors");
    else
        snprintf(buf, size, "model-%05zu-of-%05zu.safetensors", shard + 1,
                 s->nshards);
}

static timber_status commit_open(side *s, timber_error *err)
{
    if (!s->w)
        return TIMBER_OK;
    timber_status st = tb_writer_commit(s->w, err);
    tb_writer_free(s->w);
    s->w = NULL;
    s->open_shard = SIZE_MAX;
    return st;
}

/* Makes shard `shard` of side s the open one (committing the previous). */
static timber_status open_shard(side *s, const tlist *l, const options *o,
                                size_t shard, timber_error *err)
{
    if (s->w && s->open_shard == shard)
        return TIMBER_OK;
    timber_status st = commit_open(s, err);
    if (st)
        return st;
    const int k = s->idx;
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->t[i].present[k] && l->t[i].shard[k] == shard;
    tb_tensor_spec *spec = tb_calloc_array(n ? n : 1, sizeof *spec);
    if (!spec)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        const gtensor *g = &l->t[i];
        if (!g->present[k] || g->shard[k] != shard)
            continue;
        tb_tensor_spec *sp = &spec[g->slot[k]];
        sp->name = g->name;
        sp->dtype = tensor_dtype(g, o, k);
        sp->ndim = g->ndim;
        sp->shape = g->shape[k];
    }
    char name[64];
    shard_name(s, shard, name, sizeof name);
    char *path = tb_path_join(s->tmp_dir, name);
    if (!path) {
        free(spec);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    static const tb_meta meta[] = {{"format", "pt"}};
    st = tb_writer_create(path, meta, 1, spec, n, &s->w, err);
    free(path);
    free(spec);
    if (!st)
        s->open_shard = shard;
    return st;
}

static timber_status write_index(const side *s, const tlist *l,
                                 timber_error *err)
{
    if (s->nshards == 1)
        return TIMBER_OK;
    const int k = s->idx;
    tb_index_entry *e = tb_calloc_array(s->ntensors ? s->ntensors : 1,
                                        sizeof *e);
    char (*names)[64] = tb_calloc_array(s->nshards, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->nshards; i++)
        shard_name(s, i, names[i], sizeof names[i]);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->t[i].present[k]) {
            e[n].tensor = l->t[i].name;
            e[n].shard = names[l->t[i].shard[k]];
            n++;
        }
    timber_status st = tb_index_write(s->tmp_dir, e, n, s->total_bytes,
                                        s->total_params, err);
    free(e);
    free(names);
    return st;
}

/* ------------------------------------------------------------- generation */

/* Rows generated per block: about this many elements at a time. */
#define BLOCK_ELEMS ((uint64_t)1 << 20)

typedef struct work {
    const gv_matrix *g;
    uint64_t row0, nrows;   /* this thread's rows (absolute) */
    uint64_t base_rows;     /* rows < base_rows go to Base */
    double *base, *inst;    /* the block's buffers, row-major */
    unsigned char *base_out, *inst_out;
    uint64_t block_row0;
    timber_dtype dt[2];
} work;

static void *run_work(void *arg)
{
    work *w = arg;
    const uint64_t n = w->g->n, off = w->row0 - w->block_row0;
    double *b = w->base ? w->base + off * n : NULL;
    double *in = w->inst ? w->inst + off * n : NULL;
    gv_matrix_rows(w->g, w->row0, w->nrows, b, in);
    if (b && w->row0 < w->base_rows) {
        uint64_t r = w->base_rows - w->row0;
        if (r > w->nrows)
            r = w->nrows;
        tb_encode(w->dt[0], b,
                  w->base_out + off * n * tb_dtype_size(w->dt[0]),
                  (size_t)(r * n));
    }
    if (in)
        tb_encode(w->dt[1], in,
                  w->inst_out + off * n * tb_dtype_size(w->dt[1]),
                  (size_t)(w->nrows * n));
    return NULL;
}

typedef struct gen {
    const options *o;
    side *sides[2];
    double *dbuf[2];
    unsigned char *obuf[2];
    pthread_t *tid;
    work *work;
} gen;

/* Generates rows [row0, row0 + nrows) of g with the threads. */
static void gen_block(gen *G, const gv_matrix *g, uint64_t row0,
                      uint64_t nrows, uint64_t base_rows, int want_base,
                      int want_inst)
{
    unsigned T = G->o->threads;
    if (T > nrows)
        T = (unsigned)nrows;
    uint64_t at = row0;
    for (unsigned t = 0; t < T; t++) {
        uint64_t cnt = nrows / T + (t < nrows % T);
        work *w = &G->work[t];
        w->g = g;
        w->row0 = at;
        w->nrows = cnt;
        w->block_row0 = row0;
        w->base_rows = base_rows;
        w->base = want_base ? G->dbuf[0] : NULL;
        w->inst = want_inst ? G->dbuf[1] : NULL;
        w->base_out = G->obuf[0];
        w->inst_out = G->obuf[1];
        w->dt[0] = G->sides[0]->dt;
        w->dt[1] = G->sides[1]->dt;
        at += cnt;
    }
    unsigned started = 0;
    for (unsigned t = 1; t < T; t++) {
        if (pthread_create(&G->tid[t], NULL, run_work, &G->work[t]) != 0)
            break;
        started = t;
    }
    /* this thread takes the first part, and any a thread could not */
    run_work(&G->work[0]);
    for (unsigned t = started + 1; t < T; t++)
        run_work(&G->work[t]);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(G->tid[t], NULL);
}

static timber_status put(side *s, const gtensor *g, const void *data,
                         uint64_t len, timber_error *err)
{
    return tb_writer_put(s->w, g->slot[s->idx], data, (size_t)len, err);
}

/* Columns of a tensor's matrix view, d1 x d2 x ... (timber's convention
 * for tensors of 3+ dimensions: d0 rows).  Only d0 may differ between the
 * sides (grow-vocab), so Base's shape gives the columns. */
static uint64_t view_cols(const gtensor *g)
{
    uint64_t n = 1;
    for (size_t d = 1; d < g->ndim; d++)
        n *= g->shape[0][d];
    return n;
}

/* A weight of any rank >= 2 is generated as its matrix view, d0 rows by
 * d1 x d2 x ... columns, so that the delta timber sees (and cuts) has the
 * calibrated spectrum whatever the number of dimensions; row-major order
 * of the view is the tensor's own. */
static timber_status gen_matrix(gen *G, const gtensor *g, timber_error *err)
{
    const options *o = G->o;
    const int pb = g->present[0], pi = g->present[1];
    const uint64_t n = view_cols(g);
    const uint64_t mb = g->shape[0][0], mi = g->shape[1][0];
    const uint64_t rows = pi && mi > mb ? mi : mb;
    const uint64_t block = n ? (BLOCK_ELEMS / n ? BLOCK_ELEMS / n : 1) : 1;
    const size_t szb = tb_dtype_size(G->sides[0]->dt);
    const size_t szi = tb_dtype_size(G->sides[1]->dt);
    timber_status st = TIMBER_OK;
    gv_matrix m;
    if (gv_matrix_init(&m, gv_tensor_key(o->seed, g->name), mb, n, g->mode,
                       -1.0, -1.0) != 0)
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", g->name);
    for (uint64_t r0 = 0; r0 < rows && !st; r0 += block) {
        uint64_t nr = rows - r0 < block ? rows - r0 : block;
        gen_block(G, &m, r0, nr, mb, pb, pi);
        if (pb && r0 < mb) {
            uint64_t r = mb - r0 < nr ? mb - r0 : nr;
            st = put(G->sides[0], g, G->obuf[0], r * n * szb, err);
        }
        if (!st && pi)
            st = put(G->sides[1], g, G->obuf[1], nr * n * szi, err);
    }
    gv_matrix_free(&m);
    return st;
}

static timber_status gen_other(gen *G, const gtensor *g, timber_error *err)
{
    const options *o = G->o;
    uint64_t key = gv_tensor_key(o->seed, g->name);
    uint64_t n = elems_of(g, 0);
    timber_status st = TIMBER_OK;
    if (g->kind == K_NORM) {
        if (n > BLOCK_ELEMS)
            return tb_fail(err, TIMBER_ERR_INVALID, "%s: too long", g->name);
        gv_norm(key, n, g->mode, G->dbuf[0], G->dbuf[1]);
        for (int k = 0; k < 2 && !st; k++) {
            if (!g->present[k])
                continue;
            tb_encode(G->sides[k]->dt, G->dbuf[k], G->obuf[k], (size_t)n);
            st = put(G->sides[k], g, G->obuf[k],
                     n * tb_dtype_size(G->sides[k]->dt), err);
        }
        return st;
    }
    /* I32 in [-1000, 1000], or BOOL 0/1: the same bytes on both sides */
    unsigned char *b = G->obuf[0];
    uint64_t len = n * (g->kind == K_I32 ? 4 : 1);
    gv_rng r;
    gv_rng_seed(&r, key, 99, 0);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = gv_next(&r);
        if (g->kind == K_I32) {
            uint32_t v = (uint32_t)((int32_t)(x % 2001) - 1000);
            for (int k = 0; k < 4; k++)
                b[4 * i + (uint64_t)k] = (unsigned char)(v >> (8 * k));
        } else {
            b[i] = (unsigned char)(x >> 63);
        }
    }
    for (int k = 0; k < 2 && !st; k++)
        if (g->present[k])
            st = put(G->sides[k], g, b, len, err);
    return st;
}

static timber_status generate(const options *o, tlist *l, side *sides[2],
                              timber_error *err)
{
    gen G = {0};
    G.o = o;
    G.sides[0] = sides[0];
    G.sides[1] = sides[1];
    timber_status st = TIMBER_OK;
    /* a block may hold one row more than BLOCK_ELEMS / n rounds to, when a
     * row is longer than BLOCK_ELEMS; size buffers for the longest row */
    uint64_t maxn = 1;
    for (size_t i = 0; i < l->n; i++)
        if (l->t[i].kind == K_MATRIX) {
            uint64_t n = view_cols(&l->t[i]);
            if (n > maxn)
                maxn = n;
        }
    uint64_t cap = BLOCK_ELEMS > maxn ? BLOCK_ELEMS : maxn;
    for (int k = 0; k < 2; k++) {
        G.dbuf[k] = tb_alloc_array((size_t)cap, sizeof(double));
        G.obuf[k] = tb_alloc_array((size_t)cap, 8); /* up to F64 */
    }
    G.tid = tb_calloc_array(o->threads, sizeof *G.tid);
    G.work = tb_calloc_array(o->threads, sizeof *G.work);
    if (!G.dbuf[0] || !G.dbuf[1] || !G.obuf[0] || !G.obuf[1] || !G.tid ||
        !G.work) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l->n && !st; i++) {
        const gtensor *g = &l->t[i];
        for (int k = 0; k < 2 && !st; k++)
            if (g->present[k])
                st = open_shard(sides[k], l, o, g->shard[k], err);
        if (st)
            break;
        st = g->kind == K_MATRIX ? gen_matrix(&G, g, err)
                                 : gen_other(&G, g, err);
    }
    for (int k = 0; k < 2 && !st; k++)
        st = commit_open(sides[k], err);
out:
    for (int k = 0; k < 2; k++) {
        tb_writer_free(sides[k]->w);
        sides[k]->w = NULL;
        free(G.dbuf[k]);
        free(G.obuf[k]);
    }
    free(G.tid);
    free(G.work);
    return st;
}

/* ------------------------------------------------------ non-weight files */

static timber_status write_json(const char *dir, const char *name,
                                cJSON *root, timber_error *err)
{
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    char *path = tb_path_join(dir, name);
    timber_status st;
    if (!text || !path) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "%s/%s: out of memory", dir,
                     name);
    } else {
        size_t len = strlen(text);
        char *t = realloc(text, len + 2);
        if (!t) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        } else {
            text = t;
            text[len++] = '\n';
            text[len] = '\0';
            st = tb_write_file_atomic(path, text, len, err);
        }
    }
    free(text);
    free(path);
    return st;
}

/* cJSON helpers that stay silent on allocation failure: a NULL anywhere
 * makes write_json report "out of memory" (cJSON_Print of a partial tree
 * would still succeed, so failures are tracked in *ok). */
static void num(cJSON *o, const char *k, double v, int *ok)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *ok = 0;
}
static void str(cJSON *o, const char *k, const char *v, int *ok)
{
    if (!cJSON_AddStringToObject(o, k, v))
        *ok = 0;
}
static void boolean(cJSON *o, const char *k, int v, int *ok)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        *ok = 0;
}
static void null(cJSON *o, const char *k, int *ok)
{
    if (!cJSON_AddNullToObject(o, k))
        *ok = 0;
}
static void add_item(cJSON *o, const char *k, cJSON *item, int *ok)
{
    if (!item || !cJSON_AddItemToObject(o, k, item)) {
        cJSON_Delete(item);
        *ok = 0;
    }
}
static cJSON *num_array(const uint64_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber((double)v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static const char *torch_dtype(timber_dtype dt)
{
    switch (dt) {
    case TIMBER_DT_F16: return "float16";
    case TIMBER_DT_F32: return "float32";
    case TIMBER_DT_F64: return "float64";
    default: return "bfloat16";
    }
}

/* eos ids of a side: Qwen Base <|endoftext|>, Instruct <|im_end|> and
 * <|endoftext|>; Llama Base <|end_of_text|>, Instruct also <|eom_id|> and
 * <|eot_id|>. */
static size_t eos_ids(const preset *p, int inst, uint64_t *ids)
{
    if (p->family == FAM_QWEN) {
        if (!inst) {
            ids[0] = p->tok[0];
            return 1;
        }
        ids[0] = p->tok[2];
        ids[1] = p->tok[0];
        return 2;
    }
    ids[0] = p->tok[1];
    if (!inst)
        return 1;
    ids[1] = p->tok[2] - 1; /* <|eom_id|> */
    ids[2] = p->tok[2];
    return 3;
}

static cJSON *config_json(const options *o, int inst)
{
    const preset *p = &o->p;
    cJSON *c = cJSON_CreateObject();
    int ok = c != NULL;
    if (!ok)
        return NULL;
    uint64_t ids[3];
    size_t neos = eos_ids(p, inst, ids);
    add_item(c, "architectures",
             cJSON_CreateStringArray(&p->arch, 1), &ok);
    boolean(c, "attention_bias", 0, &ok);
    num(c, "attention_dropout", 0.0, &ok);
    num(c, "bos_token_id", (double)p->tok[0], &ok);
    if (neos == 1)
        num(c, "eos_token_id", (double)ids[0], &ok);
    else
        add_item(c, "eos_token_id", num_array(ids, neos), &ok);
    if (p->moe) {
        num(c, "decoder_sparse_step", 1, &ok);
        add_item(c, "mlp_only_layers", cJSON_CreateArray(), &ok);
        num(c, "moe_intermediate_size", (double)p->moe_inter, &ok);
        boolean(c, "norm_topk_prob", 1, &ok);
        num(c, "num_experts", (double)p->experts, &ok);
        num(c, "num_experts_per_tok", (double)p->experts_per_tok, &ok);
        boolean(c, "output_router_logits", 0, &ok);
        num(c, "router_aux_loss_coef", 0.001, &ok);
    }
    num(c, "head_dim", (double)p->head_dim, &ok);
    str(c, "hidden_act", "silu", &ok);
    num(c, "hidden_size", (double)p->hidden, &ok);
    num(c, "initializer_range", 0.02, &ok);
    num(c, "intermediate_size", (double)p->inter, &ok);
    num(c, "max_position_embeddings", (double)p->max_pos, &ok);
    if (p->family == FAM_QWEN)
        num(c, "max_window_layers", (double)p->layers, &ok);
    else
        boolean(c, "mlp_bias", 0, &ok);
    str(c, "model_type", p->model_type, &ok);
    num(c, "num_attention_heads", (double)p->heads, &ok);
    num(c, "num_hidden_layers", (double)p->layers, &ok);
    num(c, "num_key_value_heads", (double)p->kv_heads, &ok);
    if (p->family == FAM_LLAMA)
        num(c, "pretraining_tp", 1, &ok);
    num(c, "rms_norm_eps", p->rms_eps, &ok);
    if (p->family == FAM_LLAMA) {
        cJSON *rs = cJSON_CreateObject();
        if (rs) {
            num(rs, "factor", 8.0, &ok);
            num(rs, "high_freq_factor", 4.0, &ok);
            num(rs, "low_freq_factor", 1.0, &ok);
            num(rs, "original_max_position_embeddings", 8192, &ok);
            str(rs, "rope_type", "llama3", &ok);
        }
        add_item(c, "rope_scaling", rs, &ok);
    } else {
        null(c, "rope_scaling", &ok);
    }
    num(c, "rope_theta", p->rope_theta, &ok);
    if (p->family == FAM_QWEN) {
        null(c, "sliding_window", &ok);
        boolean(c, "use_sliding_window", 0, &ok);
    }
    boolean(c, "tie_word_embeddings", p->tied, &ok);
    str(c, "torch_dtype", torch_dtype(o->dt[inst]), &ok);
    str(c, "transformers_version", "4.51.0", &ok);
    boolean(c, "use_cache", 1, &ok);
    uint64_t vocab = p->vocab;
    if (inst && (o->variants & V_GROW_VOCAB))
        vocab += o->grow;
    num(c, "vocab_size", (double)vocab, &ok);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static cJSON *generation_config_json(const options *o, int inst)
{
    const preset *p = &o->p;
    cJSON *c = cJSON_CreateObject();
    int ok = c != NULL;
    if (!ok)
        return NULL;
    uint64_t ids[3];
    size_t neos = eos_ids(p, inst, ids);
    num(c, "bos_token_id", (double)p->tok[0], &ok);
    if (inst) {
        boolean(c, "do_sample", 1, &ok);
    }
    if (neos == 1)
        num(c, "eos_token_id", (double)ids[0], &ok);
    else
        add_item(c, "eos_token_id", num_array(ids, neos), &ok);
    if (p->family == FAM_QWEN) {
        if (inst) {
            num(c, "pad_token_id", (double)p->tok[0], &ok);
            num(c, "temperature", 0.6, &ok);
            num(c, "top_k", 20, &ok);
            num(c, "top_p", 0.95, &ok);
        } else {
            num(c, "max_new_tokens", 2048, &ok);
        }
    } else if (inst) {
        num(c, "temperature", 0.6, &ok);
        num(c, "top_p", 0.9, &ok);
    }
    str(c, "transformers_version", "4.51.0", &ok);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static const char qwen_template[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + "
    "'\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}";
static const char llama_template[] =
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}";

/* The special tokens a side's tokenizer knows. */
static size_t special_tokens(const preset *p, int inst, const char **names,
                             uint64_t *ids)
{
    size_t n = 0;
    if (p->family == FAM_QWEN) {
        names[n] = "<|endoftext|>", ids[n++] = p->tok[0];
        if (inst) {
            names[n] = "<|im_start|>", ids[n++] = p->tok[1];
            names[n] = "<|im_end|>", ids[n++] = p->tok[2];
        }
    } else {
        names[n] = "<|begin_of_text|>", ids[n++] = p->tok[0];
        names[n] = "<|end_of_text|>", ids[n++] = p->tok[1];
        if (inst) {
            names[n] = "<|start_header_id|>", ids[n++] = p->tok[2] - 3;
            names[n] = "<|end_header_id|>", ids[n++] = p->tok[2] - 2;
            names[n] = "<|eom_id|>", ids[n++] = p->tok[2] - 1;
            names[n] = "<|eot_id|>", ids[n++] = p->tok[2];
        }
    }
    return n;
}

static cJSON *added_token(const char *content, uint64_t id, int with_id,
                          int *ok)
{
    cJSON *t = cJSON_CreateObject();
    if (!t) {
        *ok = 0;
        return NULL;
    }
    if (with_id)
        num(t, "id", (double)id, ok);
    str(t, "content", content, ok);
    boolean(t, "single_word", 0, ok);
    boolean(t, "lstrip", 0, ok);
    boolean(t, "rstrip", 0, ok);
    boolean(t, "normalized", 0, ok);
    boolean(t, "special", 1, ok);
    return t;
}

static cJSON *tokenizer_config_json(const options *o, int inst)
{
    const preset *p = &o->p;
    cJSON *c = cJSON_CreateObject();
    int ok = c != NULL;
    if (!ok)
        return NULL;
    const char *names[8];
    uint64_t ids[8];
    size_t ns = special_tokens(p, inst, names, ids);
    cJSON *dec = cJSON_CreateObject();
    for (size_t i = 0; dec && i < ns; i++) {
        char key[32];
        snprintf(key, sizeof key, "%" PRIu64, ids[i]);
        cJSON *t = added_token(names[i], ids[i], 0, &ok);
        add_item(dec, key, t, &ok);
    }
    if (p->family == FAM_QWEN) {
        boolean(c, "add_bos_token", 0, &ok);
        boolean(c, "add_prefix_space", 0, &ok);
        add_item(c, "added_tokens_decoder", dec, &ok);
        null(c, "bos_token", &ok);
        if (inst)
            str(c, "chat_template", qwen_template, &ok);
        boolean(c, "clean_up_tokenization_spaces", 0, &ok);
        str(c, "eos_token", inst ? "<|im_end|>" : "<|endoftext|>", &ok);
        str(c, "errors", "replace", &ok);
        num(c, "model_max_length", 131072, &ok);
        str(c, "pad_token", "<|endoftext|>", &ok);
        boolean(c, "split_special_tokens", 0, &ok);
        str(c, "tokenizer_class", "Qwen2Tokenizer", &ok);
        null(c, "unk_token", &ok);
    } else {
        add_item(c, "added_tokens_decoder", dec, &ok);
        str(c, "bos_token", "<|begin_of_text|>", &ok);
        if (inst)
            str(c, "chat_template", llama_template, &ok);
        boolean(c, "clean_up_tokenization_spaces", 1, &ok);
        str(c, "eos_token", inst ? "<|eot_id|>" : "<|end_of_text|>", &ok);
        const char *inputs[] = {"input_ids", "attention_mask"};
        add_item(c, "model_input_names", cJSON_CreateStringArray(inputs, 2),
                 &ok);
        num(c, "model_max_length", 131072, &ok);
        str(c, "tokenizer_class", "PreTrainedTokenizerFast", &ok);
    }
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* A small but valid tokenizer.json: byte-level BPE over printable ASCII,
 * a few merges, and the side's special tokens. */
static cJSON *tokenizer_json(const options *o, int inst)
{
    const preset *p = &o->p;
    cJSON *c = cJSON_CreateObject();
    int ok = c != NULL;
    if (!ok)
        return NULL;
    str(c, "version", "1.0", &ok);
    null(c, "truncation", &ok);
    null(c, "padding", &ok);
    const char *names[8];
    uint64_t ids[8];
    size_t ns = special_tokens(p, inst, names, ids);
    cJSON *added = cJSON_CreateArray();
    for (size_t i = 0; added && i < ns; i++) {
        cJSON *t = added_token(names[i], ids[i], 1, &ok);
        if (t && !cJSON_AddItemToArray(added, t)) {
            cJSON_Delete(t);
            ok = 0;
        }
    }
    add_item(c, "added_tokens", added, &ok);
    if (p->family == FAM_QWEN) {
        cJSON *nrm = cJSON_CreateObject();
        if (nrm)
            str(nrm, "type", "NFC", &ok);
        add_item(c, "normalizer", nrm, &ok);
    } else {
        null(c, "normalizer", &ok);
    }
    cJSON *pre = cJSON_CreateObject();
    if (pre) {
        str(pre, "type", "ByteLevel", &ok);
        boolean(pre, "add_prefix_space", 0, &ok);
        boolean(pre, "trim_offsets", 1, &ok);
        boolean(pre, "use_regex", 1, &ok);
    }
    add_item(c, "pre_tokenizer", pre, &ok);
    null(c, "post_processor", &ok);
    cJSON *dec = cJSON_CreateObject();
    if (dec) {
        str(dec, "type", "ByteLevel", &ok);
        boolean(dec, "add_prefix_space", 1, &ok);
        boolean(dec, "trim_offsets", 1, &ok);
        boolean(dec, "use_regex", 1, &ok);
    }
    add_item(c, "decoder", dec, &ok);
    cJSON *model = cJSON_CreateObject();
    if (model) {
        str(model, "type", "BPE", &ok);
        null(model, "dropout", &ok);
        null(model, "unk_token", &ok);
        str(model, "continuing_subword_prefix", "", &ok);
        str(model, "end_of_word_suffix", "", &ok);
        boolean(model, "fuse_unk", 0, &ok);
        boolean(model, "byte_fallback", 0, &ok);
        boolean(model, "ignore_merges", 0, &ok);
        cJSON *vocab = cJSON_CreateObject();
        for (int ch = 33; vocab && ch < 127; ch++) {
            char s[2] = {(char)ch, 0};
            num(vocab, s, ch - 33, &ok);
        }
        static const char *const extra[] = {"th", "the", "in", "er"};
        for (size_t i = 0; vocab && i < 4; i++)
            num(vocab, extra[i], (double)(94 + i), &ok);
        add_item(model, "vocab", vocab, &ok);
        static const char *const merges[] = {"t h", "th e", "i n", "e r"};
        add_item(model, "merges", cJSON_CreateStringArray(merges, 4), &ok);
    }
    add_item(c, "model", model, &ok);
    if (!ok) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

static timber_status write_extras(const options *o, const side *s,
                                  timber_error *err)
{
    int inst = s->idx;
    timber_status st;
    st = write_json(s->tmp_dir, "config.json", config_json(o, inst), err);
    if (!st)
        st = write_json(s->tmp_dir, "generation_config.json",
                        generation_config_json(o, inst), err);
    if (!st)
        st = write_json(s->tmp_dir, "tokenizer_config.json",
                        tokenizer_config_json(o, inst), err);
    if (!st)
        st = write_json(s->tmp_dir, "tokenizer.json", tokenizer_json(o, inst),
                        err);
    return st;
}

/* ---------------------------------------------------------- directories */

static int rm_entry(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) != 0 ? -1 : 0;
}

/* rm -rf path (not following symbolic links); 0, or -1 with errno. */
static int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return remove(path);
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdir -p; 0, or -1 with errno. */
static int make_dirs(const char *path)
{
    char *p = tb_strdup(path);
    if (!p)
        return -1;
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == '\0') {
            char save = *c;
            *c = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                errno = e;
                return -1;
            }
            *c = save;
            if (save == '\0')
                break;
        }
    }
    struct stat st;
    int rc = stat(p, &st);
    if (rc == 0 && !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        rc = -1;
    }
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------------ main */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    double t0 = now();

    tlist l = {0};
    side sb = {.label = "base", .idx = 0, .dt = o.dt[0],
               .open_shard = SIZE_MAX};
    side si = {.label = "instruct", .idx = 1, .dt = o.dt[1],
               .open_shard = SIZE_MAX};
    side *sides[2] = {&sb, &si};
    char *old[2] = {NULL, NULL};
    int made_tmp[2] = {0, 0};
    timber_error err = {0};
    rc = EXIT_FAIL;

    if (build_tensors(&o, &l) != 0) {
        errorf("out of memory listing the tensors");
        goto out;
    }
    for (int k = 0; k < 2; k++)
        plan_shards(&l, &o, sides[k]);

    if (make_dirs(o.outdir) != 0) {
        errorf("%s: cannot create directory: %s", o.outdir, strerror(errno));
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        side *s = sides[k];
        char name[64];
        s->final_dir = tb_path_join(o.outdir, s->label);
        snprintf(name, sizeof name, ".timber-gen.%ld.%s", (long)getpid(),
                 s->label);
        s->tmp_dir = tb_path_join(o.outdir, name);
        snprintf(name, sizeof name, ".timber-gen.%ld.old-%s",
                 (long)getpid(), s->label);
        old[k] = tb_path_join(o.outdir, name);
        if (!s->final_dir || !s->tmp_dir || !old[k]) {
            errorf("out of memory");
            goto out;
        }
    }
    for (int k = 0; k < 2; k++)
        if (!o.force && exists(sides[k]->final_dir)) {
            errorf("%s already exists (use --force to replace it)",
                   sides[k]->final_dir);
            goto out;
        }
    for (int k = 0; k < 2; k++) {
        if (mkdir(sides[k]->tmp_dir, 0777) != 0) {
            errorf("%s: cannot create directory: %s", sides[k]->tmp_dir,
                   strerror(errno));
            goto out;
        }
        made_tmp[k] = 1;
    }

    timber_status st = TIMBER_OK;
    for (int k = 0; k < 2 && !st; k++)
        st = write_extras(&o, sides[k], &err);
    if (!st)
        st = generate(&o, &l, sides, &err);
    for (int k = 0; k < 2 && !st; k++)
        st = write_index(sides[k], &l, &err);
    if (st) {
        errorf("%s", err.message[0] ? err.message : timber_strerror(st));
        goto out;
    }

    /* Publish: move any old output aside, rename the new into place. */
    for (int k = 0; k < 2; k++) {
        side *s = sides[k];
        if (exists(s->final_dir) && rename(s->final_dir, old[k]) != 0) {
            errorf("%s: cannot move the old output aside: %s", s->final_dir,
                   strerror(errno));
            goto out;
        }
        if (rename(s->tmp_dir, s->final_dir) != 0) {
            errorf("%s: cannot rename into place: %s", s->final_dir,
                   strerror(errno));
            goto out;
        }
        made_tmp[k] = 0;
        if (remove_tree(old[k]) != 0) {
            errorf("%s: cannot remove the old output: %s", old[k],
                   strerror(errno));
            goto out;
        }
    }
    if (tb_fsync_parent_dir(sb.final_dir) != 0) {
        errorf("%s: cannot fsync: %s", o.outdir, strerror(errno));
        goto out;
    }
    double dt = now() - t0;
    for (int k = 0; k < 2; k++) {
        side *s = sides[k];
        printf("%s: %zu tensors, %" PRIu64 " bytes, %zu shard%s, %s\n",
               s->final_dir, s->ntensors, s->total_bytes, s->nshards,
               s->nshards == 1 ? "" : "s", timber_dtype_name(s->dt));
    }
    printf("preset %s, %" PRIu64 " layers, seed %" PRIu64 ", %.1f s\n",
           o.p.name, o.p.layers, o.seed, dt);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        errorf("error writing to standard output: %s", strerror(errno));
        goto out;
    }
    rc = EXIT_OK;
out:
    for (int k = 0; k < 2; k++) {
        if (made_tmp[k] && remove_tree(sides[k]->tmp_dir) != 0)
            errorf("%s: cannot remove: %s", sides[k]->tmp_dir,
                   strerror(errno));
        free(sides[k]->final_dir);
        free(sides[k]->tmp_dir);
        free(old[k]);
    }
    free(l.t);
    return rc;
}
