/*
 * fuzz_cache.c — fuzz target for the SVD cache reader (src/cache.c): the
 * input is a whole cache file.  It goes through `timber cache info`'s walk
 * (timber_cache_inspect), then the refinement path: tb_cache_open (which
 * drops an unfinished last record), tb_cache_get for every key the input's
 * records spell out, a tb_cache_put, and a reopen.
 *
 * Invariants (abort on violation): inspect and open agree on whether the
 * file is a cache; a refused file gets a one-line message naming it;
 * records reported valid are self-consistent (rank = min(rows, cols),
 * k and basis columns at most the rank); a hit has exactly the sizes its
 * key implies; after a put, the record is found again, both in the open
 * cache and after closing and reopening the file, and the file still
 * passes inspect.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

#define MAX_KEYS 16

typedef struct fkey {
    tb_cache_key key;
    char *name;
    uint64_t shape[64];
    uint64_t rows, cols;
} fkey;

/* The keys of the records the input seems to hold, read independently of
 * cache.c (layout of cache.h): magic, body length, name, dims, dtypes,
 * CRCs, version, rows, cols. */
static size_t find_keys(const uint8_t *d, size_t size, fkey *keys)
{
    size_t n = 0, off = 32;
    while (off + 12 <= size && n < MAX_KEYS) {
        if (rd32(d + off) != 0x43455254u) {
            off++;
            continue;
        }
        uint64_t B = rd64(d + off + 4);
        const uint8_t *b = d + off + 12;
        size_t left = size - off - 12;
        if (B > left || B < 4) {
            off++;
            continue;
        }
        uint32_t nlen = rd32(b);
        if ((uint64_t)nlen + 8 > B) {
            off++;
            continue;
        }
        uint32_t ndim = rd32(b + 4 + nlen);
        uint64_t at = 8ull + nlen + 8ull * ndim;
        if (ndim > 64 || at + 4 + 16 + 16 > B) {
            off++;
            continue;
        }
        fkey *k = &keys[n++];
        memset(k, 0, sizeof *k);
        k->name = malloc((size_t)nlen + 1);
        FUZZ_ASSERT(k->name != NULL);
        memcpy(k->name, b + 4, nlen);
        k->name[nlen] = '\0';
        for (uint32_t i = 0; i < ndim; i++)
            k->shape[i] = rd64(b + 8 + nlen + 8 * i);
        const uint8_t *p = b + at;
        k->key.name = k->name;
        k->key.ndim = ndim;
        k->key.shape = k->shape;
        k->key.base_dtype = (timber_dtype)p[0];
        k->key.inst_dtype = (timber_dtype)p[1];
        k->key.crc_base = rd32(p + 4);
        k->key.crc_inst = rd32(p + 8);
        k->key.route = rd32(p + 16);
        k->rows = rd64(p + 20);
        k->cols = rd64(p + 28);
        off += 12 + (size_t)B;
    }
    return n;
}

static void each(const timber_cache_record *r, void *user)
{
    size_t *count = user;
    (*count)++;
    if (!r->valid)
        return;
    FUZZ_ASSERT(r->name != NULL);
    FUZZ_ASSERT(r->ndim == 0 || r->shape != NULL);
    unsigned sum = 0;
    for (size_t d = 0; d < r->ndim; d++)
        sum += (unsigned)r->shape[d];
    fuzz_sink(sum);
    FUZZ_ASSERT(r->rank == (r->rows < r->cols ? r->rows : r->cols));
    FUZZ_ASSERT(r->k <= r->rank && r->basis_columns <= r->rank);
    FUZZ_ASSERT(r->bytes >= 16);
}

/* A hit: sizes as the key implies; every value readable. */
static void check_hit(const tb_spectrum *sp, uint64_t rows, uint64_t cols)
{
    uint64_t S = rows < cols ? rows : cols;
    FUZZ_ASSERT(sp->S == S && sp->k <= S && sp->p <= S);
    FUZZ_ASSERT(sp->p == (sp->tail_side ? S - sp->k : sp->k));
    double sum = 0;
    for (size_t i = 0; i < S; i++)
        sum += sp->s[i];
    for (size_t i = 0; i < S * sp->p; i++)
        sum += sp->basis[i];
    fuzz_sink(sum == sum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[700];
    snprintf(path, sizeof path, "%s/c.tsvd", fuzz_scratch());
    fuzz_write(path, data, size);

    timber_cache_stats stats;
    timber_error err;
    size_t count = 0;
    timber_status ist = timber_cache_inspect(path, each, &count, &stats, &err);
    if (ist != TIMBER_OK) {
        FUZZ_ASSERT(ist == TIMBER_ERR_CACHE || ist == TIMBER_ERR_IO);
        fuzz_check_message(&err, path);
    } else {
        FUZZ_ASSERT(count == stats.records + stats.damaged);
        FUZZ_ASSERT(stats.file_size == size);
        FUZZ_ASSERT(stats.trailing_bytes <= size);
    }

    fkey keys[MAX_KEYS];
    size_t nkeys = find_keys(data, size, keys);

    /* Read-only, as erank opens it: the same verdict as inspect, the
     * same hits, and the file left exactly as it was. */
    tb_cache *c = NULL;
    timber_status st = tb_cache_open_read(path, 0, &c, &err);
    FUZZ_ASSERT((st == TIMBER_OK) == (ist == TIMBER_OK));
    if (st == TIMBER_OK) {
        for (size_t i = 0; i < nkeys; i++) {
            tb_spectrum sp;
            if (tb_cache_get(c, &keys[i].key, keys[i].rows, keys[i].cols,
                             &sp)) {
                check_hit(&sp, keys[i].rows, keys[i].cols);
                tb_spectrum_clear(&sp);
            }
        }
        tb_cache_close(c);
        c = NULL;
        struct stat sb;
        FUZZ_ASSERT(stat(path, &sb) == 0 && (size_t)sb.st_size == size);
    } else {
        FUZZ_ASSERT(c == NULL);
        fuzz_check_message(&err, path);
    }

    st = tb_cache_open(path, 42, &c, &err);
    /* An empty file becomes a new cache; otherwise open and inspect agree. */
    if (size > 0)
        FUZZ_ASSERT((st == TIMBER_OK) == (ist == TIMBER_OK));
    if (st != TIMBER_OK) {
        FUZZ_ASSERT(c == NULL);
        fuzz_check_message(&err, path);
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++) {
        tb_spectrum sp;
        if (tb_cache_get(c, &keys[i].key, keys[i].rows, keys[i].cols, &sp)) {
            check_hit(&sp, keys[i].rows, keys[i].cols);
            tb_spectrum_clear(&sp);
        }
    }

    /* A record of our own: a 3 x 2 delta, k = 1, the tail (1 column). */
    static const uint64_t shape[2] = {3, 2};
    tb_cache_key k0 = {"fuzz.put", 2, shape, TIMBER_DT_F32, TIMBER_DT_BF16,
                       0x12345678u, 0x9abcdef0u, 0x10001u};
    double s[2] = {2.0, 0.5}, basis[2] = {0.6, 0.8};
    tb_spectrum sp = {2, s, 1.7, 1, 0.05, 1, 1, basis, 0, 0, 1};
    st = tb_cache_put(c, &k0, 3, 2, &sp, &err);
    FUZZ_ASSERT(st == TIMBER_OK);
    tb_spectrum got;
    FUZZ_ASSERT(tb_cache_get(c, &k0, 3, 2, &got));
    FUZZ_ASSERT(got.s[0] == 2.0 && got.s[1] == 0.5 && got.k == 1 &&
                got.p == 1 && got.basis[0] == 0.6 &&
                got.basis[1] == 0.8);
    tb_spectrum_clear(&got);
    /* And one without a basis (D = 0: k = 0, p = 0, basis NULL), as
     * refinement stores for a tensor Instruct did not change. */
    static const uint64_t shape1[2] = {2, 4};
    tb_cache_key k1 = {"fuzz.zero", 2, shape1, TIMBER_DT_BF16,
                       TIMBER_DT_BF16, 1u, 1u, 0x10001u};
    double z[2] = {0.0, 0.0};
    tb_spectrum sz = {2, z, 0.0, 0, 0.0, 0, 0, NULL, 0, 0, 1};
    FUZZ_ASSERT(tb_cache_put(c, &k1, 2, 4, &sz, &err) == TIMBER_OK);
    FUZZ_ASSERT(tb_cache_get(c, &k1, 2, 4, &got));
    FUZZ_ASSERT(got.k == 0 && got.p == 0 && got.s[0] == 0.0);
    tb_spectrum_clear(&got);
    tb_cache_close(c);

    c = NULL;
    FUZZ_ASSERT(tb_cache_open(path, 42, &c, &err) == TIMBER_OK);
    FUZZ_ASSERT(tb_cache_get(c, &k0, 3, 2, &got));
    FUZZ_ASSERT(got.s[0] == 2.0 && got.erank == 1.7);
    tb_spectrum_clear(&got);
    tb_cache_close(c);
    count = 0;
    FUZZ_ASSERT(timber_cache_inspect(path, each, &count, &stats, &err) ==
                TIMBER_OK);
    FUZZ_ASSERT(stats.records >= 1);
out:
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i].name);
    return 0;
}
