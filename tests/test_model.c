/*
 * test_model.c — checkpoint directories (src/model.c): a single shard, a
 * directory scanned without an index, a proper index, and every way an
 * index and its shards can disagree, each refused with a message naming the
 * index (or directory), the tensor and the shards.  Directories are built
 * here with the library's own shard writer and tb_index_write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "model.h"
#include "safetensors.h"
#include "testutil.h"

static const char *root;

/* A fresh subdirectory of the test's temporary directory. */
static const char *subdir(const char *name)
{
    static char bufs[64][4096];
    static int next;
    char *b = bufs[next++ % 64];
    snprintf(b, sizeof bufs[0], "%s/%s", root, name);
    mkdir(b, 0755);
    return b;
}

/* Writes `file` in dir holding the NULL-terminated tensor names, each an
 * F32 vector of (its index + 1) elements with recognisable values. */
static void shard(const char *dir, const char *file, const char *const *names)
{
    size_t n = 0;
    while (names[n])
        n++;
    tb_tensor_spec t[32];
    uint64_t shapes[32];
    for (size_t i = 0; i < n; i++) {
        shapes[i] = i + 1;
        t[i].name = names[i];
        t[i].dtype = TIMBER_DT_F32;
        t[i].ndim = 1;
        t[i].shape = &shapes[i];
    }
    tb_meta meta[] = {{"format", "pt"}};
    tb_writer *w = NULL;
    timber_error err;
    timber_status st =
        tb_writer_create(tu_path(dir, file), meta, 1, t, n, &w, &err);
    for (size_t i = 0; i < n && !st; i++) {
        float v[32];
        for (size_t k = 0; k <= i; k++)
            v[k] = (float)(100 * i + k);
        st = tb_writer_put(w, i, v, (i + 1) * 4, &err);
    }
    if (!st)
        st = tb_writer_commit(w, &err);
    tb_writer_free(w);
    if (st) {
        fprintf(stderr, "fixture %s/%s: %s\n", dir, file, err.message);
        exit(99);
    }
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void index_of(const char *dir, const tb_index_entry *e, size_t n)
{
    timber_error err;
    if (tb_index_write(dir, e, n, 1234, 77, &err) != TIMBER_OK) {
        fprintf(stderr, "index %s: %s\n", dir, err.message);
        exit(99);
    }
}

static void text_file(const char *dir, const char *file, const char *text)
{
    tu_write_file(tu_path(dir, file), text, strlen(text));
}

static timber_model *open_ok(const char *label, const char *path)
{
    timber_model *m = NULL;
    timber_error err;
    timber_status st = timber_model_open(path, &m, &err);
    CHECK_OK(label, st, &err);
    return st ? NULL : m;
}

/* Opening must fail with status and message substrings. */
#define OPEN_FAILS(label, path, status, ...)                                 \
    do {                                                                     \
        timber_model *m_ = (timber_model *)0x1;                             \
        timber_error e_;                                                     \
        timber_status s_ = timber_model_open((path), &m_, &e_);             \
        CHECK_ERROR((label), s_, &e_, (status), __VA_ARGS__);               \
        CHECKF(m_ == NULL, "%s: *out not NULL", (label));                    \
        if (s_ == TIMBER_OK)                                                 \
            timber_model_free(m_);                                           \
    } while (0)

/* File order is the given list; find() returns each one. */
static void check_order(const char *label, const timber_model *m,
                        const char *const *names, const char *const *shards)
{
    size_t n = 0;
    while (names[n])
        n++;
    CHECKF(timber_model_tensor_count(m) == n, "%s: %zu tensors, expected %zu",
           label, timber_model_tensor_count(m), n);
    for (size_t i = 0; i < n && i < timber_model_tensor_count(m); i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        CHECKF(strcmp(t->name, names[i]) == 0 &&
                   strcmp(t->shard, shards[i]) == 0,
               "%s: tensor %zu is %s in %s, expected %s in %s", label, i,
               t->name, t->shard, names[i], shards[i]);
        CHECKF(timber_model_find(m, names[i]) == t, "%s: find(%s)", label,
               names[i]);
        tb_shard *s = tb_model_shard_of(m, t);
        CHECKF(s && strcmp(tb_shard_name(s), t->shard) == 0,
               "%s: shard of %s", label, names[i]);
        /* The bytes are those written for it. */
        if (s) {
            float first;
            memcpy(&first, tb_shard_data(s, t), 4);
            CHECKF(first == (float)(100 * (t->nelems - 1)),
                   "%s: data of %s", label, names[i]);
        }
    }
    CHECK(timber_model_tensor(m, n) == NULL);
    CHECK(timber_model_find(m, "no.such.tensor") == NULL);
    CHECK(timber_model_find(m, "") == NULL);
}

static void check_list(const char *label, size_t count,
                       const char *(*get)(const timber_model *, size_t),
                       const timber_model *m, const char *const *want)
{
    size_t n = 0;
    while (want[n])
        n++;
    CHECKF(count == n, "%s: %zu entries, expected %zu", label, count, n);
    for (size_t i = 0; i < n && i < count; i++)
        CHECKF(strcmp(get(m, i), want[i]) == 0, "%s[%zu] is %s, expected %s",
               label, i, get(m, i), want[i]);
    CHECK(get(m, count) == NULL);
}

#define EXTRAS(m, ...)                                                      \
    check_list("extras", timber_model_extra_count(m),                        \
               timber_model_extra_name, (m), NAMES(__VA_ARGS__))
#define SHARDS(m, ...)                                                      \
    check_list("shards", timber_model_shard_count(m),                        \
               timber_model_shard_name, (m), NAMES(__VA_ARGS__))

/* ------------------------------------------------------------ valid */

static void test_single(void)
{
    const char *d = subdir("single");
    shard(d, "model.safetensors", NAMES("c", "a", "b"));
    text_file(d, "config.json", "{}\n");
    text_file(d, "tokenizer.json", "{}\n");
    text_file(d, "generation_config.json", "{}\n");
    text_file(d, "tokenizer_config.json", "{}\n");
    text_file(d, "chat_template.jinja", "{{ x }}\n");
    const char *sub = tu_path(d, "original");
    mkdir(sub, 0755);
    text_file(sub, "params.json", "{}\n");
    shard(sub, "consolidated.safetensors", NAMES("zzz"));

    timber_model *m = open_ok("single model.safetensors", d);
    if (m) {
        CHECK(!timber_model_has_index(m));
        CHECK(strcmp(timber_model_path(m), d) == 0);
        SHARDS(m, "model.safetensors");
        /* Layout order: same dtype, so by name. */
        check_order("single", m, NAMES("a", "b", "c"),
                    NAMES("model.safetensors", "model.safetensors",
                          "model.safetensors"));
        EXTRAS(m, "chat_template.jinja", "config.json",
               "generation_config.json", "tokenizer.json",
               "tokenizer_config.json");
        CHECK(timber_model_find(m, "zzz") == NULL);
        timber_model_free(m);
    }

    /* Trailing slashes do not end up in the path. */
    char slashed[4096];
    snprintf(slashed, sizeof slashed, "%s//", d);
    m = open_ok("directory with trailing slashes", slashed);
    if (m) {
        CHECK(strcmp(timber_model_path(m), d) == 0);
        timber_model_free(m);
    }

    /* The shard file itself: one shard, no extras. */
    m = open_ok("a single file", tu_path(d, "model.safetensors"));
    if (m) {
        CHECK(!timber_model_has_index(m));
        SHARDS(m, "model.safetensors");
        CHECK(timber_model_extra_count(m) == 0);
        CHECK(timber_model_tensor_count(m) == 3);
        timber_model_free(m);
    }
    timber_model_free(NULL);
}

static void test_scan_shards(void)
{
    const char *d = subdir("scan");
    shard(d, "model-00002-of-00002.safetensors", NAMES("lm_head", "norm"));
    shard(d, "model-00001-of-00002.safetensors", NAMES("embed", "layer.0"));
    text_file(d, "config.json", "{}\n");
    timber_model *m = open_ok("two shards, no index", d);
    if (m) {
        CHECK(!timber_model_has_index(m));
        SHARDS(m, "model-00001-of-00002.safetensors",
               "model-00002-of-00002.safetensors");
        check_order("scan", m, NAMES("embed", "layer.0", "lm_head", "norm"),
                    NAMES("model-00001-of-00002.safetensors",
                          "model-00001-of-00002.safetensors",
                          "model-00002-of-00002.safetensors",
                          "model-00002-of-00002.safetensors"));
        EXTRAS(m, "config.json");
        CHECK(tb_model_shard(m, 0) &&
              strcmp(tb_shard_name(tb_model_shard(m, 1)),
                     "model-00002-of-00002.safetensors") == 0);
        CHECK(tb_model_shard(m, 2) == NULL);
        timber_model_free(m);
    }
}

static const tb_index_entry good_index[] = {
    {"model.norm.weight", "model-00003-of-00003.safetensors"},
    {"model.embed_tokens.weight", "model-00001-of-00003.safetensors"},
    {"model.layers.0.mlp.weight", "model-00002-of-00003.safetensors"},
    {"model.layers.0.attn.weight", "model-00001-of-00003.safetensors"},
    {"lm_head.weight", "model-00003-of-00003.safetensors"},
    {"model.layers.1.attn.weight", "model-00002-of-00003.safetensors"},
};

/* A three-shard checkpoint with a proper index. */
static const char *indexed_dir(const char *name)
{
    const char *d = subdir(name);
    shard(d, "model-00001-of-00003.safetensors",
          NAMES("model.layers.0.attn.weight", "model.embed_tokens.weight"));
    shard(d, "model-00002-of-00003.safetensors",
          NAMES("model.layers.1.attn.weight", "model.layers.0.mlp.weight"));
    shard(d, "model-00003-of-00003.safetensors",
          NAMES("lm_head.weight", "model.norm.weight"));
    index_of(d, good_index, 6);
    text_file(d, "config.json", "{}\n");
    text_file(d, "tokenizer.json", "{}\n");
    return d;
}

static void test_index(void)
{
    const char *d = indexed_dir("indexed");
    /* A stray shard the index does not name is neither opened nor carried
     * over as an extra file. */
    shard(d, "stray.safetensors", NAMES("stray"));
    mkdir(tu_path(d, "subdir"), 0755);
    timber_model *m = open_ok("proper index", d);
    if (m) {
        CHECK(timber_model_has_index(m));
        SHARDS(m, "model-00001-of-00003.safetensors",
               "model-00002-of-00003.safetensors",
               "model-00003-of-00003.safetensors");
        check_order("index", m,
                    NAMES("model.embed_tokens.weight",
                          "model.layers.0.attn.weight",
                          "model.layers.0.mlp.weight",
                          "model.layers.1.attn.weight", "lm_head.weight",
                          "model.norm.weight"),
                    NAMES("model-00001-of-00003.safetensors",
                          "model-00001-of-00003.safetensors",
                          "model-00002-of-00003.safetensors",
                          "model-00002-of-00003.safetensors",
                          "model-00003-of-00003.safetensors",
                          "model-00003-of-00003.safetensors"));
        EXTRAS(m, "config.json", "tokenizer.json");
        CHECK(timber_model_find(m, "stray") == NULL);
        /* Name ranks follow sorted order. */
        const timber_tensor_info *t = timber_model_find(m, "lm_head.weight");
        CHECK(t && tb_model_name_rank(m, t) == 0);
        t = timber_model_find(m, "model.norm.weight");
        CHECK(t && tb_model_name_rank(m, t) == 5);
        timber_model_free(m);
    }

    /* What tb_index_write wrote: sorted weight_map, total_size, newline. */
    size_t len = 0;
    char *text = (char *)tu_read_file(tu_path(d, TB_INDEX_NAME), &len);
    if (CHECK(text != NULL)) {
        CHECK(len > 0 && text[len - 1] == '\n');
        cJSON *j = cJSON_Parse(text);
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "total_size");
        CHECK(cJSON_IsNumber(ts) && ts->valuedouble == 1234);
        /* transformers' layout exactly: json.dumps(indent=2,
         * sort_keys=True) + "\n" (tests/hf/ compares with the real one). */
        CHECK(strncmp(text,
                      "{\n  \"metadata\": {\n    \"total_parameters\": 77,\n"
                      "    \"total_size\": 1234\n  },\n  \"weight_map\": {\n"
                      "    \"", 90) == 0);
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
        CHECK(cJSON_GetArraySize(map) == 6);
        const char *prev = "";
        int sorted = 1;
        for (const cJSON *c = map ? map->child : NULL; c; c = c->next) {
            sorted &= strcmp(prev, c->string) < 0;
            prev = c->string;
        }
        CHECK(sorted);
        CHECK(strcmp(cJSON_GetObjectItemCaseSensitive(map, "lm_head.weight")
                         ->valuestring,
                     "model-00003-of-00003.safetensors") == 0);
        cJSON_Delete(j);
        free(text);
    }
}

/* ------------------------------------------------------------ refused */

static char index_path[64][4096];
static int nindex;

/* A copy of the good three-shard checkpoint whose index is `json`. */
static const char *with_index(const char *name, const char *json)
{
    const char *d = indexed_dir(name);
    text_file(d, TB_INDEX_NAME, json);
    char *p = index_path[nindex++ % 64];
    snprintf(p, sizeof index_path[0], "%s/%s", d, TB_INDEX_NAME);
    return d;
}

#define S1 "model-00001-of-00003.safetensors"
#define S2 "model-00002-of-00003.safetensors"
#define S3 "model-00003-of-00003.safetensors"
#define GOOD_MAP                                                            \
    "\"model.embed_tokens.weight\":\"" S1 "\","                              \
    "\"model.layers.0.attn.weight\":\"" S1 "\","                             \
    "\"model.layers.0.mlp.weight\":\"" S2 "\","                              \
    "\"model.layers.1.attn.weight\":\"" S2 "\","                             \
    "\"lm_head.weight\":\"" S3 "\""
#define LAST_GOOD ",\"model.norm.weight\":\"" S3 "\""

static void test_index_errors(void)
{
    const char *d;

    d = with_index("ghost",
                   "{\"weight_map\":{" GOOD_MAP LAST_GOOD
                   ",\"ghost.weight\":\"" S1 "\"}}");
    OPEN_FAILS("tensor in the index but not in its shard", d,
               TIMBER_ERR_INDEX, index_path[nindex - 1],
               "tensor 'ghost.weight' is listed in shard '" S1
               "' but that shard does not hold it");

    d = with_index("unlisted", "{\"weight_map\":{" GOOD_MAP "}}");
    OPEN_FAILS("tensor in a shard but not in the index", d, TIMBER_ERR_INDEX,
               index_path[nindex - 1],
               "tensor 'model.norm.weight' of shard '" S3
               "' is missing from the index");

    d = with_index("missing-shard",
                   "{\"weight_map\":{" GOOD_MAP LAST_GOOD
                   ",\"extra.weight\":\"model-00004-of-00004.safetensors\"}}");
    OPEN_FAILS("index names a missing shard", d, TIMBER_ERR_INDEX,
               index_path[nindex - 1],
               "names shard 'model-00004-of-00004.safetensors', which does "
               "not exist");

    d = with_index("wrong-shard",
                   "{\"weight_map\":{" GOOD_MAP
                   ",\"model.norm.weight\":\"" S2 "\"}}");
    OPEN_FAILS("index places a tensor in the wrong shard", d,
               TIMBER_ERR_INDEX, index_path[nindex - 1],
               "tensor 'model.norm.weight' is in shard '" S3
               "' but the index places it in '" S2 "'");

    d = with_index("twice-in-map",
                   "{\"weight_map\":{" GOOD_MAP LAST_GOOD LAST_GOOD "}}");
    OPEN_FAILS("a tensor twice in weight_map", d, TIMBER_ERR_INDEX,
               index_path[nindex - 1],
               "tensor 'model.norm.weight' appears twice in weight_map");

    static const char *const bad_names[] = {
        "../x.safetensors", "a/b.safetensors", "/etc/passwd", "", ".", "..",
        "sub/", NULL};
    for (int i = 0; bad_names[i]; i++) {
        char json[2048], label[128], name[32];
        snprintf(json, sizeof json,
                 "{\"weight_map\":{" GOOD_MAP LAST_GOOD
                 ",\"evil\":\"%s\"}}",
                 bad_names[i]);
        snprintf(name, sizeof name, "path-%d", i);
        snprintf(label, sizeof label, "weight_map entry \"%s\"",
                 bad_names[i]);
        d = with_index(name, json);
        OPEN_FAILS(label, d, TIMBER_ERR_INDEX, index_path[nindex - 1],
                   "weight_map entry for tensor 'evil' is not a shard file "
                   "name");
    }
    d = with_index("number-entry",
                   "{\"weight_map\":{" GOOD_MAP LAST_GOOD ",\"n\":3}}");
    OPEN_FAILS("weight_map entry a number", d, TIMBER_ERR_INDEX,
               "weight_map entry for tensor 'n' is not a shard file name");

    d = with_index("not-json", "{\"weight_map\": {");
    OPEN_FAILS("index not JSON", d, TIMBER_ERR_INDEX, index_path[nindex - 1],
               "index is not valid JSON");
    /* Parsed as strictly as a shard header (#11 class 6). */
    d = with_index("trailing", "{\"weight_map\":{" GOOD_MAP LAST_GOOD "}} x");
    OPEN_FAILS("index with trailing bytes", d, TIMBER_ERR_INDEX,
               "unexpected text after the index's JSON value");
    d = with_index("nul-escape", "{\"weight_map\":{" GOOD_MAP LAST_GOOD
                                 "},\"metadata\":{\"a\\u0000b\":1}}");
    OPEN_FAILS("index with \\u0000", d, TIMBER_ERR_INDEX, "\\u0000");
    d = with_index("bad-utf8", "{\"weight_map\":{" GOOD_MAP LAST_GOOD
                               "},\"metadata\":{\"\xc3\x28\":1}}");
    OPEN_FAILS("index with invalid UTF-8", d, TIMBER_ERR_INDEX,
               "is not valid UTF-8");
    d = with_index("array", "[]");
    OPEN_FAILS("index an array", d, TIMBER_ERR_INDEX, "not a JSON object");
    d = with_index("empty-file", "");
    OPEN_FAILS("index an empty file", d, TIMBER_ERR_INDEX,
               "index is not valid JSON");
    d = with_index("no-map", "{\"metadata\":{\"total_size\":4}}");
    OPEN_FAILS("index without weight_map", d, TIMBER_ERR_INDEX,
               index_path[nindex - 1], "no \"weight_map\" object");
    d = with_index("map-array", "{\"weight_map\":[]}");
    OPEN_FAILS("weight_map an array", d, TIMBER_ERR_INDEX,
               "no \"weight_map\" object");
    d = with_index("map-empty", "{\"weight_map\":{}}");
    OPEN_FAILS("weight_map empty", d, TIMBER_ERR_INDEX,
               "weight_map is empty");

    /* The index is a directory. */
    d = subdir("index-dir");
    shard(d, "model.safetensors", NAMES("a"));
    mkdir(tu_path(d, TB_INDEX_NAME), 0755);
    OPEN_FAILS("index is a directory", d, TIMBER_ERR_IO,
               "not a readable regular file");

    /* The index is a FIFO: refused, not waited on (alarm fails the test
     * rather than hanging it). */
    d = subdir("index-fifo");
    shard(d, "model.safetensors", NAMES("a"));
    if (mkfifo(tu_path(d, TB_INDEX_NAME), 0644) == 0) {
        alarm(20);
        OPEN_FAILS("index is a FIFO", d, TIMBER_ERR_IO,
                   "not a readable regular file");
        alarm(0);
    }

    /* A shard the index names is a FIFO. */
    d = subdir("shard-fifo");
    shard(d, "a.safetensors", NAMES("a"));
    if (mkfifo(tu_path(d, "b.safetensors"), 0644) == 0) {
        const tb_index_entry e[] = {{"a", "a.safetensors"},
                                    {"b", "b.safetensors"}};
        index_of(d, e, 2);
        alarm(20);
        OPEN_FAILS("indexed shard is a FIFO", d, TIMBER_ERR_IO,
                   "b.safetensors: not a regular file");
        alarm(0);
    }

    /* A shard the index names is a directory. */
    d = subdir("shard-dir");
    shard(d, "a.safetensors", NAMES("a"));
    mkdir(tu_path(d, "b.safetensors"), 0755);
    {
        const tb_index_entry e[] = {{"a", "a.safetensors"},
                                    {"b", "b.safetensors"}};
        index_of(d, e, 2);
    }
    OPEN_FAILS("indexed shard is a directory", d, TIMBER_ERR_IO,
               "b.safetensors: not a regular file");

    /* A malformed shard named by the index: the shard's own message. */
    d = subdir("bad-shard");
    shard(d, "a.safetensors", NAMES("a"));
    tu_write_shard(tu_path(d, "b.safetensors"), "{\"b\":1}", 0);
    {
        const tb_index_entry e[] = {{"a", "a.safetensors"},
                                    {"b", "b.safetensors"}};
        index_of(d, e, 2);
    }
    OPEN_FAILS("malformed indexed shard", d, TIMBER_ERR_FORMAT,
               tu_path(d, "b.safetensors"),
               "tensor 'b': entry is not a JSON object");
}

static void test_dir_errors(void)
{
    const char *d;

    /* The same tensor in two shards, without and with an index. */
    d = subdir("dup-scan");
    shard(d, "a.safetensors", NAMES("x", "dup"));
    shard(d, "b.safetensors", NAMES("dup", "y"));
    OPEN_FAILS("a tensor in two shards, no index", d, TIMBER_ERR_INDEX, d,
               "tensor 'dup' is in two shards, 'a.safetensors' and "
               "'b.safetensors'");

    d = subdir("dup-index");
    shard(d, "a.safetensors", NAMES("x", "dup"));
    shard(d, "b.safetensors", NAMES("dup", "y"));
    {
        const tb_index_entry e[] = {{"x", "a.safetensors"},
                                    {"dup", "a.safetensors"},
                                    {"y", "b.safetensors"}};
        index_of(d, e, 3);
    }
    OPEN_FAILS("a tensor in two shards, with an index", d, TIMBER_ERR_INDEX,
               "tensor 'dup' is in two shards, 'a.safetensors' and "
               "'b.safetensors'");

    d = subdir("no-shards");
    text_file(d, "config.json", "{}\n");
    mkdir(tu_path(d, "sub.safetensors"), 0755);
    OPEN_FAILS("a directory with no safetensors", d, TIMBER_ERR_INDEX, d,
               "no .safetensors files and no model.safetensors.index.json");

    d = subdir("empty");
    OPEN_FAILS("an empty directory", d, TIMBER_ERR_INDEX,
               "no .safetensors files");

    const char *missing = tu_path(root, "does-not-exist");
    OPEN_FAILS("a missing path", missing, TIMBER_ERR_IO, missing,
               "No such file or directory");

    d = subdir("bad-scan");
    shard(d, "a.safetensors", NAMES("a"));
    tu_write_shard(tu_path(d, "b.safetensors"), "{} x", 0);
    OPEN_FAILS("a malformed shard in a scanned directory", d,
               TIMBER_ERR_FORMAT, tu_path(d, "b.safetensors"),
               "unexpected text after the header's JSON value");

    /* Not a directory nor a regular file. */
    const char *fifo = tu_path(root, "fifo");
    if (mkfifo(fifo, 0644) == 0)
        OPEN_FAILS("a FIFO", fifo, TIMBER_ERR_IO, fifo,
                   "neither a directory nor a regular file");
}

/* A fault is per run: a shard truncated under its mapping (a read past
 * its new end jumps back to the recovery point) flags that model,
 * and only writers whose sources are that model refuse to write; a
 * writer fed by another model in the same process goes on. */
static timber_status model_faulted(const void *ctx, timber_error *err)
{
    return tb_model_faulted(ctx, err);
}

static void test_fault_per_run(void)
{
    const char *da = subdir("fault-a"), *db = subdir("fault-b");
    char a_file[4096];
    snprintf(a_file, sizeof a_file, "%s", tu_path(da, "model.safetensors"));
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[65536],"
                      "\"data_offsets\":[0,262144]}}";
    CHECK(tu_write_shard(a_file, hdr, 262144) == 0);
    CHECK(tu_write_shard(tu_path(db, "model.safetensors"), hdr, 262144) ==
          0);
    timber_model *a = open_ok("fault a", da), *b = open_ok("fault b", db);
    if (!a || !b) {
        timber_model_free(a);
        timber_model_free(b);
        return;
    }
    timber_error err;
    CHECK(tb_model_faulted(a, &err) == TIMBER_OK);
    CHECK(truncate(a_file, 4096) == 0);
    const timber_tensor_info *t = timber_model_find(a, "w");
    const volatile unsigned char *p =
        tb_shard_data(tb_model_shard_of(a, t), t);
    /* A read past the new end, inside a recovery point: abandoned, and
     * the shard flagged. */
    tb_guard g;
    volatile int reached = 0;
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0) {
        (void)p[200000];
        reached = 1;
    }
    CHECK(tb_guard_pop(&g) && !reached);
    CHECK_ERROR("guard", tb_guard_error(&g, &err), &err, TIMBER_ERR_IO,
                a_file, "shrank");
    /* the thread's recovery point is gone again: guarded reads work */
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0)
        (void)p[0];
    CHECK(!tb_guard_pop(&g));
    CHECK_ERROR("faulted a", tb_model_faulted(a, &err), &err, TIMBER_ERR_IO,
                a_file, "shrank");
    CHECK(tb_model_faulted(b, &err) == TIMBER_OK);

    tb_tensor_spec spec = {"x", TIMBER_DT_F32, 1, (const uint64_t[]){1}};
    unsigned char four[4] = {0};
    tb_writer *wa = NULL, *wb = NULL;
    CHECK_OK("writer a", tb_writer_create(tu_path(da, "out-a.safetensors"),
                                          NULL, 0, &spec, 1, &wa, &err),
             &err);
    CHECK_OK("writer b", tb_writer_create(tu_path(db, "out-b.safetensors"),
                                          NULL, 0, &spec, 1, &wb, &err),
             &err);
    if (wa && wb) {
        tb_writer_set_sources(wa, model_faulted, a);
        tb_writer_set_sources(wb, model_faulted, b);
        CHECK_ERROR("put from a", tb_writer_put(wa, 0, four, 4, &err), &err,
                    TIMBER_ERR_IO, a_file);
        CHECK_OK("put from b", tb_writer_put(wb, 0, four, 4, &err), &err);
        CHECK_OK("commit b", tb_writer_commit(wb, &err), &err);
    }
    tb_writer_free(wa);
    tb_writer_free(wb);
    timber_model_free(a);
    timber_model_free(b);
}

/* Reads without the mapping (pread, copy_file_range): the bytes are the
 * mapping's; a file that shrank after it was reopened is a short read,
 * which fails naming the file and tensor and flags the model as a fault
 * of the mapping does; once it shrank it is not even reopened. */
static void test_short_read(void)
{
    const char *d = subdir("short");
    char file[4096];
    snprintf(file, sizeof file, "%s", tu_path(d, "model.safetensors"));
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[65536],"
                      "\"data_offsets\":[0,262144]}}";
    CHECK(tu_write_shard(file, hdr, 262144) == 0);
    timber_model *m = open_ok("short", d);
    if (!m)
        return;
    const timber_tensor_info *t = timber_model_find(m, "w");
    tb_shard *s = tb_model_shard_of(m, t);
    timber_error err;
    static unsigned char buf[262144];
    int fd = tb_shard_reopen(s);
    CHECK(fd >= 0);
    CHECK_OK("pread", tb_shard_read(s, fd, t, 0, buf, sizeof buf, &err),
             &err);
    CHECK(memcmp(buf, tb_shard_data(s, t), sizeof buf) == 0);

    /* copied file to file: the same bytes as put from the mapping */
    tb_tensor_spec spec = {"w", TIMBER_DT_F32, 1, (const uint64_t[]){65536}};
    char out[4096];
    snprintf(out, sizeof out, "%s", tu_path(d, "out.safetensors"));
    tb_writer *w = NULL;
    CHECK_OK("writer", tb_writer_create(out, NULL, 0, &spec, 1, &w, &err),
             &err);
    if (w) {
        CHECK_OK("copy", tb_writer_copy(w, 0, s, fd, t, 0, 100000, &err),
                 &err);
        CHECK_OK("copy mapped", tb_writer_copy(w, 0, s, -1, t, 100000,
                                               162144, &err),
                 &err);
        CHECK_OK("commit", tb_writer_commit(w, &err), &err);
        tb_shard *o = NULL;
        CHECK_OK("reopen out", tb_shard_open(out, &o, &err), &err);
        if (o)
            CHECK(memcmp(tb_shard_data(o, tb_shard_tensor(o, 0)),
                         tb_shard_data(s, t), 262144) == 0);
        tb_shard_free(o);
    }
    tb_writer_free(w);

    CHECK(tb_model_faulted(m, &err) == TIMBER_OK);
    CHECK(truncate(file, 4096) == 0);
    CHECK_ERROR("short pread",
                tb_shard_read(s, fd, t, 100000, buf, 4096, &err), &err,
                TIMBER_ERR_IO, file, "'w'", "shrank");
    CHECK_ERROR("flagged", tb_model_faulted(m, &err), &err, TIMBER_ERR_IO,
                file, "shrank");
    w = NULL;
    CHECK_OK("writer 2", tb_writer_create(out, NULL, 0, &spec, 1, &w, &err),
             &err);
    if (w)
        CHECK_ERROR("short copy",
                    tb_writer_copy(w, 0, s, fd, t, 0, 262144, &err), &err,
                    TIMBER_ERR_IO, file, "'w'", "shrank");
    tb_writer_free(w);
    close(fd);
    CHECK(tb_shard_reopen(s) == -1); /* no longer the file it was */
    timber_model_free(m);
}

int main(void)
{
    root = tu_tempdir("model");
    test_short_read();
    test_single();
    test_scan_shards();
    test_index();
    test_index_errors();
    test_dir_errors();
    test_fault_per_run();
    return tu_report();
}
