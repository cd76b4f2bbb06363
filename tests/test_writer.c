/*
 * test_writer.c — the shard writer (src/safetensors.c): round trips through
 * the reader for every dtype of the spec, the reference layout (descending
 * dtype alignment then name, packed from 0, "__metadata__" first, compact
 * JSON, header padded with spaces to a multiple of 8), atomicity (nothing
 * under the name and no temporary left unless committed), failures, and
 * direct writes (the whole aligned blocks of a large put bypass the page
 * cache; the bytes are the same, at unaligned offsets, in place or not,
 * and a tensor rewound and written again while a direct write of its
 * first bytes may still be in flight ends with its second bytes).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dtype.h"
#include "safetensors.h"
#include "testutil.h"

struct spec {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    uint64_t shape[4];
};

static unsigned char pattern(size_t tensor, uint64_t i)
{
    return (unsigned char)(tensor * 31 + i * 7 + 3);
}

/* Writes the tensors (bytes from pattern()) in the given put order, in
 * chunks of `chunk` bytes, and commits. */
static timber_status write_shard(const char *path, const tb_meta *meta,
                                 size_t nmeta, const struct spec *sp,
                                 size_t n, size_t chunk, timber_error *err)
{
    tb_tensor_spec t[64] = {{0}};
    for (size_t i = 0; i < n; i++) {
        t[i].name = sp[i].name;
        t[i].dtype = sp[i].dtype;
        t[i].ndim = sp[i].ndim;
        t[i].shape = sp[i].shape;
    }
    tb_writer *w = NULL;
    timber_status st = tb_writer_create(path, meta, nmeta, t, n, &w, err);
    if (st)
        return st;
    /* Fill in reverse order: the writer must not care. */
    for (size_t k = n; k-- > 0 && !st;) {
        uint64_t size = tb_writer_tensor_bytes(w, k);
        unsigned char buf[4096];
        for (uint64_t at = 0; at < size && !st;) {
            size_t len = (size_t)(size - at < chunk ? size - at : chunk);
            for (size_t j = 0; j < len; j++)
                buf[j] = pattern(k, at + j);
            st = tb_writer_put(w, k, buf, len, err);
            at += len;
        }
    }
    if (!st)
        st = tb_writer_commit(w, err);
    tb_writer_free(w);
    return st;
}

static uint64_t spec_bytes(const struct spec *s)
{
    uint64_t n = 1;
    for (size_t d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n * timber_dtype_bits(s->dtype) / 8;
}

/* Reopens path and compares every tensor with sp. */
static void check_round_trip(const char *label, const char *path,
                             const struct spec *sp, size_t n)
{
    tb_shard *s = NULL;
    timber_error err;
    timber_status st = tb_shard_open(path, &s, &err);
    if (!CHECK_OK(label, st, &err))
        return;
    CHECKF(tb_shard_tensor_count(s) == n, "%s: %zu tensors", label,
           tb_shard_tensor_count(s));
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = NULL;
        for (size_t k = 0; k < tb_shard_tensor_count(s); k++)
            if (strcmp(tb_shard_tensor(s, k)->name, sp[i].name) == 0)
                t = tb_shard_tensor(s, k);
        if (!CHECKF(t != NULL, "%s: tensor '%s' missing", label, sp[i].name))
            continue;
        CHECKF(t->dtype == sp[i].dtype, "%s: '%s' dtype %s", label,
               sp[i].name, timber_dtype_name(t->dtype));
        int same = t->ndim == sp[i].ndim;
        for (size_t d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == sp[i].shape[d];
        CHECKF(same, "%s: '%s' shape differs", label, sp[i].name);
        CHECKF(t->nbytes == spec_bytes(&sp[i]), "%s: '%s' %llu bytes", label,
               sp[i].name, (unsigned long long)t->nbytes);
        const unsigned char *p = tb_shard_data(s, t);
        int ok = 1;
        for (uint64_t j = 0; j < t->nbytes; j++)
            ok &= p[j] == pattern(i, j);
        CHECKF(ok, "%s: '%s' bytes differ", label, sp[i].name);
    }
    tb_shard_free(s);
}

static void test_every_dtype(const char *dir)
{
    /* One file per dtype, with a few shapes each. */
    for (int dt = 0; dt < TIMBER_DT_COUNT; dt++) {
        const char *dn = timber_dtype_name((timber_dtype)dt);
        int sub = timber_dtype_bits((timber_dtype)dt) < 8;
        struct spec sp[4] = {
            {"matrix", (timber_dtype)dt, 2, {6, 4, 0, 0}},
            {"vector", (timber_dtype)dt, 1, {sub ? 4 : 5, 0, 0, 0}},
            {"empty", (timber_dtype)dt, 3, {2, 0, 3, 0}},
            {"scalar", (timber_dtype)dt, 0, {0, 0, 0, 0}},
        };
        /* A scalar of a sub-byte dtype is not whole bytes: leave it out. */
        size_t n = sub ? 3 : 4;
        char name[64], label[96];
        snprintf(name, sizeof name, "%s.safetensors", dn);
        snprintf(label, sizeof label, "round trip of %s", dn);
        const char *path = tu_path(dir, name);
        timber_error err;
        timber_status st = write_shard(path, NULL, 0, sp, n, 5, &err);
        if (CHECK_OK(label, st, &err))
            check_round_trip(label, path, sp, n);
    }

    /* All dtypes in one file, with metadata. */
    struct spec all[TIMBER_DT_COUNT];
    char names[TIMBER_DT_COUNT][32];
    for (int dt = 0; dt < TIMBER_DT_COUNT; dt++) {
        snprintf(names[dt], sizeof names[dt], "t.%02d", TIMBER_DT_COUNT - dt);
        all[dt].name = names[dt];
        all[dt].dtype = (timber_dtype)dt;
        all[dt].ndim = 2;
        all[dt].shape[0] = 3;
        all[dt].shape[1] = 4;
    }
    tb_meta meta[] = {{"format", "pt"}, {"note", "caf\xc3\xa9 \"q\"\n"}};
    const char *path = tu_path(dir, "all.safetensors");
    timber_error err;
    timber_status st =
        write_shard(path, meta, 2, all, TIMBER_DT_COUNT, 4096, &err);
    if (CHECK_OK("all dtypes in one file", st, &err)) {
        check_round_trip("all dtypes in one file", path, all,
                         TIMBER_DT_COUNT);
        tb_shard *s = NULL;
        if (tb_shard_open(path, &s, &err) == TIMBER_OK) {
            CHECK(tb_shard_meta_count(s) == 2);
            CHECK(strcmp(tb_shard_meta_key(s, 0), "format") == 0 &&
                  strcmp(tb_shard_meta_value(s, 0), "pt") == 0);
            CHECK(strcmp(tb_shard_meta_key(s, 1), "note") == 0 &&
                  strcmp(tb_shard_meta_value(s, 1), "caf\xc3\xa9 \"q\"\n") ==
                      0);
            /* Offset order is the layout order: descending dtype. */
            for (size_t i = 1; i < tb_shard_tensor_count(s); i++)
                CHECK(tb_shard_tensor(s, i - 1)->dtype >
                      tb_shard_tensor(s, i)->dtype);
            tb_shard_free(s);
        }
    }
}

/* The header text of a file written by the writer. */
static char *header_of(const char *path, size_t *hlen, size_t *fsize)
{
    size_t len = 0;
    unsigned char *b = tu_read_file(path, &len);
    if (!b || len < 8) {
        free(b);
        return NULL;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | b[k];
    if (n > len - 8) {
        free(b);
        return NULL;
    }
    char *h = malloc((size_t)n + 1);
    memcpy(h, b + 8, (size_t)n);
    h[n] = '\0';
    *hlen = (size_t)n;
    *fsize = len;
    free(b);
    return h;
}

static void test_layout(const char *dir)
{
    /* The exact bytes the reference writer produces for this input. */
    struct spec sp[] = {
        {"b", TIMBER_DT_F32, 1, {2}},
        {"c", TIMBER_DT_BF16, 1, {3}},
        {"a", TIMBER_DT_F32, 1, {1}},
        {"d", TIMBER_DT_U8, 2, {1, 2}},
        {"e", TIMBER_DT_F64, 0, {0}},
    };
    tb_meta meta[] = {{"format", "pt"}};
    const char *path = tu_path(dir, "layout.safetensors");
    timber_error err;
    timber_status st = write_shard(path, meta, 1, sp, 5, 3, &err);
    if (!CHECK_OK("layout file", st, &err))
        return;
    const char *expect =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"e\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
        "\"c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[20,26]},"
        "\"d\":{\"dtype\":\"U8\",\"shape\":[1,2],\"data_offsets\":[26,28]}}";
    size_t hlen = 0, fsize = 0;
    char *h = header_of(path, &hlen, &fsize);
    if (!CHECK(h != NULL))
        return;
    size_t elen = strlen(expect);
    CHECKF(hlen % 8 == 0, "header length %zu", hlen);
    CHECKF(hlen >= elen && hlen < elen + 8, "header length %zu for %zu", hlen,
           elen);
    CHECKF(strncmp(h, expect, elen) == 0, "header is\n  %s\nexpected\n  %s",
           h, expect);
    int spaces = 1;
    for (size_t i = elen; i < hlen; i++)
        spaces &= h[i] == ' ';
    CHECK(spaces);
    CHECK(fsize == 8 + hlen + 28);
    free(h);

    /* Headers of the all-dtypes file: compact, metadata first, every tensor
     * in descending dtype order then by name, packed back to back. */
    h = header_of(tu_path(dir, "all.safetensors"), &hlen, &fsize);
    if (!CHECK(h != NULL))
        return;
    CHECK(hlen % 8 == 0);
    CHECK(strncmp(h, "{\"__metadata__\":{", 17) == 0);
    size_t text = hlen;
    while (text > 0 && h[text - 1] == ' ')
        text--;
    CHECK(text > 0 && h[text - 1] == '}' && hlen - text < 8);
    /* Compact: no whitespace outside strings. */
    int in_str = 0, compact = 1;
    for (size_t i = 0; i < text; i++) {
        if (in_str && h[i] == '\\') {
            i++;
            continue;
        }
        if (h[i] == '"')
            in_str = !in_str;
        else if (!in_str && (h[i] == ' ' || h[i] == '\n' || h[i] == '\t'))
            compact = 0;
    }
    CHECK(compact);
    cJSON *root = cJSON_ParseWithLength(h, hlen);
    if (CHECK(root != NULL)) {
        uint64_t expect_off = 0;
        int prev_dt = TIMBER_DT_COUNT;
        const char *prev_name = "";
        int first = 1, ok = 1;
        for (const cJSON *c = root->child; c; c = c->next) {
            if (first) {
                ok &= strcmp(c->string, "__metadata__") == 0;
                first = 0;
                continue;
            }
            int dt = timber_dtype_from_name(
                cJSON_GetObjectItem(c, "dtype")->valuestring);
            const cJSON *o = cJSON_GetObjectItem(c, "data_offsets");
            double b = o->child->valuedouble, e = o->child->next->valuedouble;
            ok &= dt < prev_dt ||
                  (dt == prev_dt && strcmp(prev_name, c->string) < 0);
            ok &= b == (double)expect_off;
            expect_off = (uint64_t)e;
            prev_dt = dt;
            prev_name = c->string;
        }
        CHECK(ok);
        CHECK(fsize == 8 + hlen + expect_off);
        cJSON_Delete(root);
    }
    free(h);

    /* Without metadata there is no "__metadata__" key at all. */
    path = tu_path(dir, "nometa.safetensors");
    st = write_shard(path, NULL, 0, sp, 1, 64, &err);
    if (CHECK_OK("no metadata", st, &err)) {
        h = header_of(path, &hlen, &fsize);
        CHECK(h && strncmp(h,
                           "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                           "\"data_offsets\":[0,8]}}",
                           54) == 0 &&
              hlen == 56);
        free(h);
    }

    /* Zero tensors: "{}" padded to 8. */
    path = tu_path(dir, "none.safetensors");
    st = write_shard(path, NULL, 0, sp, 0, 64, &err);
    if (CHECK_OK("zero tensors", st, &err)) {
        h = header_of(path, &hlen, &fsize);
        CHECK(h && strcmp(h, "{}      ") == 0 && fsize == 16);
        free(h);
        tb_shard *s = NULL;
        CHECK(tb_shard_open(path, &s, &err) == TIMBER_OK);
        tb_shard_free(s);
    }

    /* Big numbers are written as integers, never in exponent form
     * ("1e+15" is valid JSON but not an integer to the reference reader). */
    struct spec big[] = {
        {"big", TIMBER_DT_F32, 2, {1000000000000000ull, 0}},
        {"bigger", TIMBER_DT_U8, 3, {0, 4503599627370496ull, 123456789012ull}},
    };
    path = tu_path(dir, "bignum.safetensors");
    st = write_shard(path, NULL, 0, big, 2, 64, &err);
    if (CHECK_OK("big dimensions", st, &err)) {
        h = header_of(path, &hlen, &fsize);
        CHECKF(h && strstr(h, "\"shape\":[1000000000000000,0]") &&
                   strstr(h, "[0,4503599627370496,123456789012]"),
               "header %s", h ? h : "(none)");
        free(h);
        check_round_trip("big dimensions", path, big, 2);
    }
}

static void test_atomicity(const char *parent)
{
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/atomic", parent);
    mkdir(sub, 0755);
    const char *path = tu_path(sub, "model.safetensors");
    uint64_t shape[] = {4};
    tb_tensor_spec t[] = {{"a", TIMBER_DT_F32, 1, shape},
                          {"b", TIMBER_DT_U16, 1, shape}};
    timber_error err;
    tb_writer *w = NULL;

    /* Free without commit: nothing at all remains. */
    timber_status st = tb_writer_create(path, NULL, 0, t, 2, &w, &err);
    if (CHECK_OK("create", st, &err)) {
        CHECK(tu_count_entries(sub) == 1); /* the temporary */
        CHECK(access(path, F_OK) != 0);
        CHECK((tb_writer_file_size(w) - 8 - 24) % 8 == 0);
        CHECK(tb_writer_tensor_bytes(w, 0) == 16);
        CHECK(tb_writer_tensor_bytes(w, 1) == 8);
        CHECK(tb_writer_tensor_bytes(w, 2) == 0);
        unsigned char buf[16] = {0};
        CHECK(tb_writer_put(w, 0, buf, 16, &err) == TIMBER_OK);
        tb_writer_free(w);
        CHECKF(tu_count_entries(sub) == 0, "%d entries left",
               tu_count_entries(sub));
    }

    /* Commit with a tensor incomplete: refused, nothing published; free
     * removes the temporary. */
    st = tb_writer_create(path, NULL, 0, t, 2, &w, &err);
    if (CHECK_OK("create", st, &err)) {
        unsigned char buf[16] = {0};
        CHECK(tb_writer_put(w, 0, buf, 16, &err) == TIMBER_OK);
        CHECK(tb_writer_put(w, 1, buf, 2, &err) == TIMBER_OK);
        st = tb_writer_commit(w, &err);
        CHECK_ERROR("commit with an incomplete tensor", st, &err,
                    TIMBER_ERR_INVALID, "model.safetensors",
                    "tensor #1 has 2 of its 8 bytes");
        CHECK(access(path, F_OK) != 0);
        tb_writer_free(w);
        CHECKF(tu_count_entries(sub) == 0, "%d entries left",
               tu_count_entries(sub));
    }

    /* After an incomplete commit the writer stays usable. */
    st = tb_writer_create(path, NULL, 0, t, 2, &w, &err);
    if (CHECK_OK("create", st, &err)) {
        unsigned char buf[16] = {0};
        CHECK(tb_writer_put(w, 0, buf, 16, &err) == TIMBER_OK);
        CHECK(tb_writer_commit(w, &err) == TIMBER_ERR_INVALID);
        CHECK(tb_writer_put(w, 1, buf, 8, &err) == TIMBER_OK);
        st = tb_writer_commit(w, &err);
        CHECK_OK("commit after completing", st, &err);
        tb_writer_free(w);
        CHECK(tu_count_entries(sub) == 1 && access(path, F_OK) == 0);
        unlink(path);
    }

    /* Put past a tensor's end, or to a tensor that does not exist. */
    st = tb_writer_create(path, NULL, 0, t, 2, &w, &err);
    if (CHECK_OK("create", st, &err)) {
        unsigned char buf[32] = {0};
        st = tb_writer_put(w, 1, buf, 9, &err);
        CHECK_ERROR("put past the end", st, &err, TIMBER_ERR_INVALID,
                    "tensor #1 written past its 8 bytes");
        CHECK(tb_writer_put(w, 1, buf, 8, &err) == TIMBER_OK);
        st = tb_writer_put(w, 1, buf, 1, &err);
        CHECK_ERROR("put after the end", st, &err, TIMBER_ERR_INVALID,
                    "tensor #1 written past its 8 bytes");
        st = tb_writer_put(w, 2, buf, 1, &err);
        CHECK_ERROR("put to no tensor", st, &err, TIMBER_ERR_INVALID,
                    "tensor #2");
        CHECK(tb_writer_put(w, 0, buf, 0, &err) == TIMBER_OK);
        CHECK(tb_writer_put(w, 0, buf, 16, &err) == TIMBER_OK);
        CHECK(tb_writer_commit(w, &err) == TIMBER_OK);
        tb_writer_free(w);
        CHECK(tu_count_entries(sub) == 1 && access(path, F_OK) == 0);
    }

    /* Committing over an existing file replaces it whole. */
    uint64_t shape1[] = {1};
    tb_tensor_spec t1[] = {{"only", TIMBER_DT_U8, 1, shape1}};
    st = tb_writer_create(path, NULL, 0, t1, 1, &w, &err);
    if (CHECK_OK("create over an existing file", st, &err)) {
        /* Until commit, readers still see the old file. */
        tb_shard *s = NULL;
        CHECK(tb_shard_open(path, &s, &err) == TIMBER_OK &&
              tb_shard_tensor_count(s) == 2);
        tb_shard_free(s);
        CHECK(tb_writer_put(w, 0, "x", 1, &err) == TIMBER_OK);
        CHECK(tb_writer_commit(w, &err) == TIMBER_OK);
        tb_writer_free(w);
        s = NULL;
        CHECK(tb_shard_open(path, &s, &err) == TIMBER_OK &&
              tb_shard_tensor_count(s) == 1);
        tb_shard_free(s);
        CHECK(tu_count_entries(sub) == 1);
    }
    tb_writer_free(NULL);
}

static void test_refusals(const char *dir)
{
    timber_error err;
    tb_writer *w = (tb_writer *)0x1;
    uint64_t s3[] = {3}, s4[] = {4}, huge[] = {9007199254740992ull, 0};
    uint64_t over[] = {4294967296ull, 4294967296ull};
    const char *path = tu_path(dir, "refused.safetensors");

    tb_tensor_spec dup[] = {{"x", TIMBER_DT_F32, 1, s4},
                            {"x", TIMBER_DT_U8, 1, s4}};
    timber_status st = tb_writer_create(path, NULL, 0, dup, 2, &w, &err);
    CHECK_ERROR("duplicate names", st, &err, TIMBER_ERR_INVALID,
                "refused.safetensors: tensor 'x' given twice");
    CHECK(w == NULL);

    tb_tensor_spec meta_name[] = {{"__metadata__", TIMBER_DT_F32, 1, s4}};
    st = tb_writer_create(path, NULL, 0, meta_name, 1, &w, &err);
    CHECK_ERROR("a tensor called __metadata__", st, &err, TIMBER_ERR_INVALID,
                "may not be called \"__metadata__\"");

    tb_tensor_spec f4[] = {{"q", TIMBER_DT_F4, 1, s3}};
    st = tb_writer_create(path, NULL, 0, f4, 1, &w, &err);
    CHECK_ERROR("F4 of 3 elements", st, &err, TIMBER_ERR_INVALID,
                "tensor 'q' of F4 is 12 bits, not whole bytes");

    tb_tensor_spec ov[] = {{"o", TIMBER_DT_U8, 2, over}};
    st = tb_writer_create(path, NULL, 0, ov, 1, &w, &err);
    CHECK_ERROR("element count overflow", st, &err, TIMBER_ERR_INVALID,
                "tensor 'o' is too large");

    /* Readers refuse dimensions of 2^53 or more: so must the writer. */
    tb_tensor_spec hg[] = {{"h", TIMBER_DT_U8, 2, huge}};
    st = tb_writer_create(path, NULL, 0, hg, 1, &w, &err);
    CHECK_ERROR("dimension 2^53", st, &err, TIMBER_ERR_INVALID,
                "tensor 'h': shape[0] = 9007199254740992 is 2^53 or more");

    tb_meta dmeta[] = {{"format", "pt"}, {"format", "np"}};
    tb_tensor_spec one[] = {{"a", TIMBER_DT_U8, 1, s4}};
    st = tb_writer_create(path, dmeta, 2, one, 1, &w, &err);
    CHECK_ERROR("duplicate metadata keys", st, &err, TIMBER_ERR_INVALID,
                "metadata key \"format\" given twice");

    CHECK(tu_count_entries(dir) >= 0 && access(path, F_OK) != 0);

    /* A directory that does not exist. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no/such/dir/model.safetensors",
             dir);
    st = tb_writer_create(missing, NULL, 0, one, 1, &w, &err);
    CHECK_ERROR("non-existent directory", st, &err, TIMBER_ERR_IO, missing,
                "cannot create", "No such file or directory");

    /* A read-only directory.  root writes anywhere chmod allows nothing,
     * so use a directory of /proc, which no one can create files in. */
    char ro[4096];
    snprintf(ro, sizeof ro, "%s/readonly", dir);
    mkdir(ro, 0555);
    chmod(ro, 0555);
    const char *rpath = tu_path(ro, "model.safetensors");
    if (access(ro, W_OK) != 0) {
        st = tb_writer_create(rpath, NULL, 0, one, 1, &w, &err);
        CHECK_ERROR("read-only directory", st, &err, TIMBER_ERR_IO, rpath,
                    "cannot create", "Permission denied");
    }
    st = tb_writer_create("/proc/timber-test.safetensors", NULL, 0, one, 1,
                          &w, &err);
    CHECK_ERROR("directory of /proc", st, &err, TIMBER_ERR_IO,
                "/proc/timber-test.safetensors", "cannot create");
    chmod(ro, 0755);
}

/* Pages of [off, off + len) of the file at path that are in the page
 * cache, by mincore on a mapping that touches none of them; -1 on error. */
static long resident_pages(const char *path, uint64_t off, uint64_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t a = off / (uint64_t)page * (uint64_t)page;
    size_t maplen = (size_t)(off + len - a);
    void *m = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, (off_t)a);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    size_t np = (maplen + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(np);
    long n = -1;
    if (vec && mincore(m, maplen, vec) == 0) {
        n = 0;
        for (size_t i = 0; i < np; i++)
            n += vec[i] & 1;
    }
    free(vec);
    munmap(m, maplen);
    return n;
}

/* Large puts at unaligned offsets, by a new shard and in place: the bytes
 * read back are the ones put, and where the directory's file system takes
 * O_DIRECT (ext4, xfs, btrfs here), the aligned inside of a large put
 * never entered the page cache, while a small tensor did. */
static void test_direct(const char *dir)
{
    static const uint64_t s_a[1] = {5}, s_b[1] = {9000001},
                          s_c[1] = {11500003};
    tb_tensor_spec t[] = {{"a", TIMBER_DT_U8, 1, s_a},
                          {"b", TIMBER_DT_U8, 1, s_b},
                          {"c", TIMBER_DT_U8, 1, s_c}};
    size_t big = (size_t)s_c[0];
    unsigned char *buf = malloc(big);
    if (!CHECK(buf != NULL))
        return;
    const char *probe = tu_path(dir, "direct-probe");
    int pfd = open(probe, O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    struct statfs sf;
    /* ext4/xfs/btrfs: a refused O_DIRECT write falls back, but these
     * take them. */
    int direct = pfd >= 0 && fstatfs(pfd, &sf) == 0 &&
                 (sf.f_type == 0xEF53 || sf.f_type == 0x58465342 ||
                  sf.f_type == 0x9123683E) &&
                 !getenv("TB_DIRECT_IO");
    if (pfd >= 0)
        close(pfd);
    unlink(probe);
    if (!direct)
        fprintf(stderr, "test_direct: %s does not take O_DIRECT here; "
                        "checking the bytes only\n", dir);
    for (int in_place = 0; in_place < 2; in_place++) {
        timber_error err;
        const char *path = tu_path(dir, in_place ? "direct-in-place.safetensors"
                                                 : "direct.safetensors");
        tb_writer *w = NULL;
        timber_status st =
            in_place ? tb_writer_open_in_place(path, NULL, 0, t, 3, &w, &err)
                     : tb_writer_create(path, NULL, 0, t, 3, &w, &err);
        if (!CHECK(st == TIMBER_OK))
            continue;
        /* b in one put, c in two unaligned ones, a tiny. */
        for (size_t k = 0; k < 3 && !st; k++) {
            uint64_t size = tb_writer_tensor_bytes(w, k);
            for (uint64_t j = 0; j < size; j++)
                buf[j] = pattern(k, j);
            uint64_t cut = k == 2 ? 5300007 : size;
            st = tb_writer_put(w, k, buf, (size_t)cut, &err);
            if (!st && cut < size)
                st = tb_writer_put(w, k, buf + cut, (size_t)(size - cut),
                                   &err);
        }
        CHECK(st == TIMBER_OK);
        /* c's last megabyte rewound and written again with other bytes
         * at once, while the first writing's last direct write (which
         * covers it) may still be in flight (write-behind): the new put's
         * first, partial block is written buffered inside that direct
         * write's range, and the second bytes must win. */
        const uint64_t again = s_c[0] - 1000777;
        if (!st) {
            for (uint64_t j = again; j < s_c[0]; j++)
                buf[j] = pattern(7, j);
            tb_writer_rewind(w, 2, again);
            st = tb_writer_put(w, 2, buf + again, (size_t)(s_c[0] - again),
                               &err);
            CHECK(st == TIMBER_OK);
            CHECK(tb_writer_flush(&err) == TIMBER_OK);
        }
        if (direct) {
            /* b's whole pages, less one at each end for its edges. */
            uint64_t off = tb_writer_tensor_offset(w, 1) + 8192;
            long n = resident_pages(tb_writer_file(w), off, s_b[0] - 16384);
            if (!CHECK(n == 0))
                fprintf(stderr, "  %ld pages of tensor b cached (%s)\n", n,
                        in_place ? "in place" : "new shard");
            CHECK(resident_pages(tb_writer_file(w),
                                 tb_writer_tensor_offset(w, 0), 5) == 1);
        }
        CHECK(!st && tb_writer_commit(w, &err) == TIMBER_OK);
        tb_writer_free(w);
        tb_shard *sh = NULL;
        if (!CHECK(tb_shard_open(path, &sh, &err) == TIMBER_OK))
            continue;
        int same = tb_shard_tensor_count(sh) == 3;
        for (size_t k = 0; same && k < 3; k++) {
            const timber_tensor_info *ti = tb_shard_tensor(sh, k);
            const unsigned char *d = tb_shard_data(sh, ti);
            for (uint64_t j = 0; same && j < ti->nbytes; j++)
                same = d[j] == pattern(k == 2 && j >= again ? 7 : k, j);
        }
        CHECK(same);
        tb_shard_free(sh);
    }
    free(buf);
}

int main(void)
{
    const char *dir = tu_tempdir("writer");
    test_every_dtype(dir);
    test_layout(dir);
    test_atomicity(dir);
    test_refusals(dir);
    test_direct(dir);
    return tu_report();
}
