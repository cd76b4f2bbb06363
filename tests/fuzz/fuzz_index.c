/*
 * fuzz_index.c — fuzz target for checkpoint directories: the input is
 * model.safetensors.index.json in a directory that also holds two valid
 * shards (tensors a, b in the first, c in the second), a shard holding a
 * second copy of a, a malformed shard, a FIFO, a dangling symbolic link,
 * a subdirectory and a config file, so an index can point at every kind of
 * trouble.  timber_model_open must refuse it with a one-line message naming
 * the directory, or accept it with a consistent model: every tensor found
 * by name, in a shard the index named, the index's files not counted as
 * extras.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_shard(const char *dir, const char *name, const char *json,
                        size_t dlen)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t hlen = strlen(json);
    unsigned char *buf = calloc(1, 8 + hlen + dlen);
    FUZZ_ASSERT(buf != NULL);
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)((uint64_t)hlen >> (8 * b));
    memcpy(buf + 8, json, hlen);
    for (size_t i = 0; i < dlen; i++)
        buf[8 + hlen + i] = (unsigned char)(i * 37 + 1);
    fuzz_write(path, buf, 8 + hlen + dlen);
    free(buf);
}

static const char *fixture(void)
{
    static const char *dir;
    if (dir)
        return dir;
    const char *root = fuzz_scratch();
    static char d[600];
    snprintf(d, sizeof d, "%s/model", root);
    FUZZ_ASSERT(mkdir(d, 0777) == 0);
    write_shard(d, "model-00001-of-00002.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                "\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],"
                "\"data_offsets\":[8,16]}}",
                16);
    write_shard(d, "model-00002-of-00002.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},"
                "\"c\":{\"dtype\":\"F16\",\"shape\":[3],"
                "\"data_offsets\":[0,6]}}",
                6);
    write_shard(d, "dup.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                "\"data_offsets\":[0,8]}}",
                8);
    char p[700];
    snprintf(p, sizeof p, "%s/bad.safetensors", d);
    fuzz_write(p, "\x02\0\0", 3);
    snprintf(p, sizeof p, "%s/config.json", d);
    fuzz_write(p, "{}\n", 3);
    snprintf(p, sizeof p, "%s/fifo.safetensors", d);
    FUZZ_ASSERT(mkfifo(p, 0666) == 0);
    snprintf(p, sizeof p, "%s/dangling.safetensors", d);
    FUZZ_ASSERT(symlink("does-not-exist", p) == 0);
    snprintf(p, sizeof p, "%s/sub", d);
    FUZZ_ASSERT(mkdir(p, 0777) == 0);
    dir = d;
    return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fixture();
    char index[700];
    snprintf(index, sizeof index, "%s/%s", dir, TB_INDEX_NAME);
    fuzz_write(index, data, size);

    timber_model *m = NULL;
    timber_error err;
    timber_status st = timber_model_open(dir, &m, &err);
    if (st != TIMBER_OK) {
        FUZZ_ASSERT(m == NULL);
        FUZZ_ASSERT(st == TIMBER_ERR_INDEX || st == TIMBER_ERR_FORMAT ||
                    st == TIMBER_ERR_IO || st == TIMBER_ERR_NOMEM);
        fuzz_check_message(&err, dir);
        return 0;
    }
    FUZZ_ASSERT(timber_model_has_index(m));
    size_t n = timber_model_tensor_count(m);
    FUZZ_ASSERT(n >= 1 && n <= 3);
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        FUZZ_ASSERT(t && timber_model_find(m, t->name) == t);
        FUZZ_ASSERT(tb_model_shard_of(m, t) != NULL);
        FUZZ_ASSERT(strcmp(t->shard, "model-00001-of-00002.safetensors") ==
                        0 ||
                    strcmp(t->shard, "model-00002-of-00002.safetensors") ==
                        0 ||
                    strcmp(t->shard, "dup.safetensors") == 0);
    }
    FUZZ_ASSERT(timber_model_tensor(m, n) == NULL);
    FUZZ_ASSERT(timber_model_find(m, "no such tensor") == NULL);
    int config = 0;
    for (size_t i = 0; i < timber_model_extra_count(m); i++) {
        const char *e = timber_model_extra_name(m, i);
        FUZZ_ASSERT(strcmp(e, TB_INDEX_NAME) != 0);
        config |= strcmp(e, "config.json") == 0;
    }
    FUZZ_ASSERT(config);
    FUZZ_ASSERT(tb_model_check(m, &err) == TIMBER_OK);
    fuzz_sink((unsigned)tb_model_fingerprint(m));
    timber_model_free(m);
    return 0;
}
