/*
 * cli_fixtures.c — writes the small, fully deterministic checkpoints and
 * malformed shards the CLI golden tests (run.sh) run `timber` on:
 *
 *   OUT/small/          two shards, an index, config.json, tokenizer.json
 *   OUT/single.safetensors   one shard: a scalar, an empty tensor, I8, F16
 *   OUT/bad/NAME.safetensors malformed shards, one fault each
 *   OUT/badindex/       an index naming a shard that does not exist
 *
 * usage: timber-cli-fixtures OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "safetensors.h"
#include "testutil.h"

struct t {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    uint64_t shape[2];
};

static void die(const char *what, const timber_error *err)
{
    fprintf(stderr, "timber-cli-fixtures: %s: %s\n", what,
            err ? err->message : "failed");
    exit(1);
}

static void write_shard(const char *path, const struct t *ts, size_t n)
{
    tb_tensor_spec spec[16];
    for (size_t i = 0; i < n; i++) {
        spec[i].name = ts[i].name;
        spec[i].dtype = ts[i].dtype;
        spec[i].ndim = ts[i].ndim;
        spec[i].shape = ts[i].shape;
    }
    tb_meta meta[] = {{"format", "pt"}};
    tb_writer *w = NULL;
    timber_error err;
    if (tb_writer_create(path, meta, 1, spec, n, &w, &err))
        die(path, &err);
    for (size_t i = 0; i < n; i++) {
        uint64_t size = tb_writer_tensor_bytes(w, i);
        unsigned char *b = malloc(size ? size : 1);
        for (uint64_t k = 0; k < size; k++)
            b[k] = (unsigned char)(i * 16 + k);
        if (tb_writer_put(w, i, b, size, &err))
            die(path, &err);
        free(b);
    }
    if (tb_writer_commit(w, &err))
        die(path, &err);
    tb_writer_free(w);
}

static void text(const char *dir, const char *name, const char *s)
{
    if (tu_write_file(tu_path(dir, name), s, strlen(s)))
        die(name, NULL);
}

static void bad(const char *dir, const char *name, const char *header,
                size_t dlen)
{
    if (tu_write_shard(tu_path(dir, name), header, dlen))
        die(name, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: timber-cli-fixtures OUTDIR\n");
        return 2;
    }
    const char *out = argv[1];
    char small[4096], badd[4096], badindex[4096];
    snprintf(small, sizeof small, "%s/small", out);
    snprintf(badd, sizeof badd, "%s/bad", out);
    snprintf(badindex, sizeof badindex, "%s/badindex", out);
    mkdir(out, 0755);
    mkdir(small, 0755);
    mkdir(badd, 0755);
    mkdir(badindex, 0755);

    /* A two-shard checkpoint with its index. */
    static const struct t s1[] = {
        {"model.embed_tokens.weight", TIMBER_DT_BF16, 2, {8, 4}},
        {"model.layers.0.self_attn.q_proj.weight", TIMBER_DT_BF16, 2, {4, 4}},
        {"model.layers.0.input_layernorm.weight", TIMBER_DT_F32, 1, {4}},
    };
    static const struct t s2[] = {
        {"model.norm.weight", TIMBER_DT_F32, 1, {4}},
        {"lm_head.weight", TIMBER_DT_BF16, 2, {8, 4}},
    };
    write_shard(tu_path(small, "model-00001-of-00002.safetensors"), s1, 3);
    write_shard(tu_path(small, "model-00002-of-00002.safetensors"), s2, 2);
    tb_index_entry e[] = {
        {s1[0].name, "model-00001-of-00002.safetensors"},
        {s1[1].name, "model-00001-of-00002.safetensors"},
        {s1[2].name, "model-00001-of-00002.safetensors"},
        {s2[0].name, "model-00002-of-00002.safetensors"},
        {s2[1].name, "model-00002-of-00002.safetensors"},
    };
    timber_error err;
    if (tb_index_write(small, e, 5, 64 + 32 + 16 + 16 + 64, 48, &err))
        die("index", &err);
    text(small, "config.json", "{\"model_type\": \"tiny\"}\n");
    text(small, "tokenizer.json", "{}\n");

    /* One shard with the odd shapes. */
    static const struct t one[] = {
        {"scalar", TIMBER_DT_F32, 0, {0}},
        {"empty", TIMBER_DT_BF16, 2, {0, 3}},
        {"bytes", TIMBER_DT_I8, 1, {5}},
        {"half", TIMBER_DT_F16, 2, {2, 3}},
    };
    char single[4096];
    snprintf(single, sizeof single, "%s/single.safetensors", out);
    write_shard(single, one, 4);

    /* Malformed shards, one fault each. */
    if (tu_write_file(tu_path(badd, "short.safetensors"), "\x01\x02\x03", 3))
        die("short", NULL);
    bad(badd, "trailing.safetensors",
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
    bad(badd, "dtype.safetensors",
        "{\"w\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    bad(badd, "utf8.safetensors", "{\"\xc0\xaf\":1}", 0);
    bad(badd, "overlap.safetensors",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12);
    bad(badd, "size.safetensors",
        "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3,3],\"data_offsets\":[0,16]}}",
        16);
    bad(badd, "notjson.safetensors", "{\"w\": nope}", 0);

    /* An index naming a shard that is not there. */
    static const struct t bi[] = {{"a", TIMBER_DT_F32, 1, {2}}};
    write_shard(tu_path(badindex, "model-00001-of-00002.safetensors"), bi, 1);
    tb_index_entry be[] = {{"a", "model-00001-of-00002.safetensors"},
                           {"b", "model-00002-of-00002.safetensors"}};
    if (tb_index_write(badindex, be, 2, 16, 4, &err))
        die("bad index", &err);
    return 0;
}
