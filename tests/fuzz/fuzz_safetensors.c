/*
 * fuzz_safetensors.c — fuzz target for the safetensors shard reader: the
 * input is a whole shard file (8-byte length, header, data), validated by
 * tb_shard_parse, the same code tb_shard_open runs on a mapped file.
 *
 * Beyond "no crash, no sanitizer report", an accepted shard must satisfy
 * the reader's own promises (docs/formats.md), checked here with abort():
 * tensors sorted by offset and tiling the data buffer exactly, sizes equal
 * to elements x bits / 8, names unique, every tensor's bytes inside the
 * input.  A refused one must carry a one-line message naming the file.
 *
 * Built with libFuzzer under TIMBER_FUZZ=ON (tests/fuzz/CMakeLists.txt),
 * and with replay.c as a plain program that replays the corpus and the
 * regression inputs in every ordinary build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char path[] = "fuzz.safetensors";
    tb_shard *s = NULL;
    timber_error err;
    timber_status st = tb_shard_parse(path, data, size, &s, &err);
    if (st != TIMBER_OK) {
        FUZZ_ASSERT(s == NULL);
        FUZZ_ASSERT(st == TIMBER_ERR_FORMAT || st == TIMBER_ERR_NOMEM);
        fuzz_check_message(&err, path);
        return 0;
    }
    FUZZ_ASSERT(s != NULL);
    FUZZ_ASSERT(size >= 8);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = (n << 8) | data[b];
    FUZZ_ASSERT(n <= TB_ST_MAX_HEADER && 8 + n <= size);
    size_t hlen = 0;
    FUZZ_ASSERT(tb_shard_header(s, &hlen) == (const void *)data &&
                hlen == 8 + n);
    FUZZ_ASSERT(tb_shard_file_size(s) == size);
    uint64_t data_len = size - 8 - n, expect = 0;
    const unsigned char *base = data + 8 + n;
    size_t count = tb_shard_tensor_count(s);
    unsigned sum = 0;
    for (size_t i = 0; i < count; i++) {
        const timber_tensor_info *t = tb_shard_tensor(s, i);
        FUZZ_ASSERT(t && t->name && strcmp(t->name, "__metadata__") != 0);
        FUZZ_ASSERT(t->shard && strcmp(t->shard, path) == 0);
        FUZZ_ASSERT((unsigned)t->dtype < TIMBER_DT_COUNT);
        FUZZ_ASSERT(t->offset == expect);
        uint64_t elems = 1;
        int zero = 0;
        for (size_t d = 0; d < t->ndim; d++) {
            FUZZ_ASSERT(t->shape[d] < (UINT64_C(1) << 53));
            zero |= t->shape[d] == 0;
        }
        for (size_t d = 0; d < t->ndim && !zero; d++)
            FUZZ_ASSERT(!__builtin_mul_overflow(elems, t->shape[d], &elems));
        if (zero)
            elems = 0;
        FUZZ_ASSERT(t->nelems == elems);
        uint64_t bits = 0;
        FUZZ_ASSERT(!__builtin_mul_overflow(
            elems, (uint64_t)timber_dtype_bits(t->dtype), &bits));
        FUZZ_ASSERT(bits % 8 == 0 && bits / 8 == t->nbytes);
        FUZZ_ASSERT(t->offset + t->nbytes <= data_len);
        const unsigned char *p = tb_shard_data(s, t);
        FUZZ_ASSERT(p == base + t->offset);
        /* Touch the first and last byte: ASan would see a bad range. */
        if (t->nbytes)
            sum += p[0] + p[t->nbytes - 1];
        expect = t->offset + t->nbytes;
    }
    FUZZ_ASSERT(expect == data_len);
    FUZZ_ASSERT(tb_shard_tensor(s, count) == NULL);
    /* Names are unique. */
    const char **names = malloc((count ? count : 1) * sizeof *names);
    FUZZ_ASSERT(names != NULL);
    for (size_t i = 0; i < count; i++)
        names[i] = tb_shard_tensor(s, i)->name;
    qsort(names, count, sizeof *names, cmp_names);
    for (size_t i = 1; i < count; i++)
        FUZZ_ASSERT(strcmp(names[i - 1], names[i]) != 0);
    free((void *)names);
    for (size_t i = 0; i < tb_shard_meta_count(s); i++)
        FUZZ_ASSERT(tb_shard_meta_key(s, i) && tb_shard_meta_value(s, i));
    FUZZ_ASSERT(tb_shard_check(s, &err) == TIMBER_OK);
    fuzz_sink(sum);
    tb_shard_free(s);
    return 0;
}
