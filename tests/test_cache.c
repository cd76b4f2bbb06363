/*
 * test_cache.c — the SVD cache file of src/cache.c on its own:
 *   - codec round trips: records of every shape class (tall, wide, 3-D,
 *     head and tail side, k = 0 with no basis) put, reopened and read back
 *     bit for bit, by exact key and by name and shape (get_latest);
 *   - the byte layout of docs/cache-format.md: a record written here byte
 *     by byte, independently of cache.c's codec (doubles as little-endian
 *     bit patterns), is read back; and cache.c's record for the same
 *     spectrum is exactly those bytes;
 *   - damage: a flipped byte in a record's values, a corrupt length field,
 *     a record cut short, another format version (2, the last one
 *     before records named their route), a broken header;
 *   - the route in the key: a record of another route is a miss.
 *   - cache directories (cachedir.c): "DIR/" created, no file until the
 *     first record; two handles at once each append to a file of their
 *     own, and a third finds every record; another pair's file is never
 *     read; an empty file and one of another format version are skipped
 *     silently, a junk file with a warning; a flipped byte in one file and
 *     a cut tail in another cost only those records, and the writer's cut
 *     tail stays; a run served wholly from the directory creates nothing;
 *     with few descriptors allowed, files reopened per lookup still serve;
 *     timber_cache_inspect_dir's states and totals.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "cache.h"
#include "testutil.h"

static uint64_t rng = 777;

static double urand(void)
{
    return (double)(tu_rand(&rng) >> 11) / 9007199254740992.0 - 0.5;
}

typedef struct rec {
    const char *name;
    size_t ndim;
    uint64_t shape[3];
    uint64_t rows, cols;
    size_t k;
    int tail_side;
    uint32_t crcb, crci;
    tb_spectrum sp;
} rec;

static void make_rec(rec *r, const char *name, size_t ndim, uint64_t d0,
                     uint64_t d1, uint64_t d2, size_t k, int tail_side,
                     uint32_t salt)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->ndim = ndim;
    r->shape[0] = d0;
    r->shape[1] = d1;
    r->shape[2] = d2;
    r->rows = d0;
    r->cols = ndim == 3 ? d1 * d2 : d1;
    size_t S = (size_t)(r->rows < r->cols ? r->rows : r->cols);
    r->k = k;
    r->tail_side = tail_side;
    r->crcb = 0x1000u + salt;
    r->crci = 0x2000u + salt;
    tb_spectrum *sp = &r->sp;
    sp->S = S;
    sp->s = malloc(S * sizeof(double));
    for (size_t i = 0; i < S; i++)
        sp->s[i] = (double)(S - i) * 0.01 + urand() * 1e-5;
    sp->erank = 3.0 + urand();
    sp->k = k;
    sp->tail_energy = 0.25 + urand() * 0.1;
    sp->tail_side = tail_side;
    sp->p = k == 0 ? 0 : tail_side ? S - k : k;
    sp->basis = sp->p ? malloc(S * sp->p * sizeof(double)) : NULL;
    for (size_t i = 0; i < S * sp->p; i++)
        sp->basis[i] = urand();
    /* a -0.0 and a subnormal survive bit for bit too */
    sp->s[S - 1] = -0.0;
    if (sp->p)
        sp->basis[0] = 4.9e-324;
}

/* cpu/dsytrd-mrrr (backend.h): (1 << 16) | TB_ROUTE_MRRR. */
#define ROUTE 0x10001u

static tb_cache_key key_of(const rec *r)
{
    return (tb_cache_key){r->name,        r->ndim, r->shape, TIMBER_DT_BF16,
                          TIMBER_DT_F32,  r->crcb, r->crci,  ROUTE};
}

static int same_bits(const double *a, const double *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(double)) == 0;
}

static int same_spectrum(const tb_spectrum *a, const tb_spectrum *b)
{
    return a->S == b->S && a->k == b->k && a->p == b->p &&
           a->tail_side == b->tail_side &&
           memcmp(&a->erank, &b->erank, 8) == 0 &&
           memcmp(&a->tail_energy, &b->tail_energy, 8) == 0 &&
           same_bits(a->s, b->s, a->S) &&
           same_bits(a->basis, b->basis, a->S * a->p);
}

enum { NREC = 5 };

static void make_all(rec *R)
{
    make_rec(&R[0], "tall.tail", 2, 40, 12, 0, 9, 1, 0);
    make_rec(&R[1], "wide.head", 2, 10, 30, 0, 3, 0, 1);
    make_rec(&R[2], "cube", 3, 6, 4, 5, 2, 1, 2);
    make_rec(&R[3], "zero", 2, 8, 8, 0, 0, 0, 3);
    make_rec(&R[4], "thin", 2, 5, 1, 0, 1, 1, 4);
}

static void free_all(rec *R)
{
    for (int i = 0; i < NREC; i++)
        tb_spectrum_clear(&R[i].sp);
}

static void route_cb(const timber_cache_record *r, void *user)
{
    size_t *n = user;
    *n += r->valid && r->route == ROUTE &&
          strcmp(r->route_name, "cpu/dsytrd-mrrr") == 0;
}

static void test_round_trip(const char *dir)
{
    rec R[NREC];
    make_all(R);
    const char *path = tu_path(dir, "rt.tsvd");
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    tb_cache *c = NULL;
    timber_error err;
    timber_status st = tb_cache_open(p, 0x0123456789abcdefull, &c, &err);
    if (!CHECK_OK("open new", st, &err))
        return;
    for (int i = 0; i < NREC; i++) {
        tb_cache_key k = key_of(&R[i]);
        st = tb_cache_put(c, &k, R[i].rows, R[i].cols, &R[i].sp, &err);
        CHECK_OK("put", st, &err);
    }
    /* served from the same handle, then after reopening */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < NREC; i++) {
            tb_cache_key k = key_of(&R[i]);
            tb_spectrum got;
            CHECKF(tb_cache_get(c, &k, R[i].rows, R[i].cols, &got) == 1,
                   "pass %d: %s not found", pass, R[i].name);
            CHECKF(same_spectrum(&got, &R[i].sp),
                   "pass %d: %s differs after the round trip", pass,
                   R[i].name);
            tb_spectrum_clear(&got);
            uint32_t crc[2] = {0, 0};
            tb_cache_key any = k;
            any.crc_base = any.crc_inst = 0;
            CHECKF(tb_cache_get_latest(c, &any, R[i].rows, R[i].cols, &got,
                                       crc) == 1 &&
                       crc[0] == R[i].crcb && crc[1] == R[i].crci,
                   "pass %d: %s by name and shape", pass, R[i].name);
            tb_spectrum_clear(&got);
            /* another CRC, another shape: misses */
            k.crc_inst ^= 1;
            CHECK(tb_cache_get(c, &k, R[i].rows, R[i].cols, &got) == 0);
            k.crc_inst ^= 1;
            CHECK(tb_cache_get(c, &k, R[i].rows + 1, R[i].cols, &got) == 0);
            /* another route: a miss, by exact key and by name alike */
            k.route = ROUTE + 1;
            CHECK(tb_cache_get(c, &k, R[i].rows, R[i].cols, &got) == 0);
            any.route = ROUTE + (1u << 16);
            CHECK(tb_cache_get_latest(c, &any, R[i].rows, R[i].cols, &got,
                                      crc) == 0);
        }
        tb_cache_close(c);
        c = NULL;
        if (pass == 0) {
            st = tb_cache_open(p, 0, &c, &err);
            if (!CHECK_OK("reopen", st, &err))
                break;
        }
    }
    timber_cache_stats stats;
    st = timber_cache_inspect(p, NULL, NULL, &stats, &err);
    CHECK_OK("inspect", st, &err);
    CHECK(stats.records == NREC && stats.damaged == 0 &&
          stats.trailing_bytes == 0 && stats.format_version == 3 &&
          stats.fingerprint == 0x0123456789abcdefull);
    size_t nroute = 0;
    st = timber_cache_inspect(p, route_cb, &nroute, &stats, &err);
    CHECKF(st == TIMBER_OK && nroute == NREC,
           "%zu of %d records name the route cpu/dsytrd-mrrr", nroute, NREC);
    free_all(R);
}

/* ----------------------------------------- the layout, independently */

static void le(unsigned char **p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        *(*p)++ = (unsigned char)(v >> (8 * i));
}

static void le_f64(unsigned char **p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    le(p, bits, 8);
}

/* The header and one record for r, byte by byte as docs/cache-format.md
 * describes them; returns the length. */
static size_t spell_file(const rec *r, unsigned char *out)
{
    unsigned char *p = out;
    memcpy(p, "TIMBERSV", 8);
    p += 8;
    le(&p, 3, 4);
    le(&p, 32, 4);
    le(&p, 0xfeedull, 8);
    le(&p, TB_TRANSFORM_VERSION, 4);
    le(&p, crc32(0, out, 28), 4);
    unsigned char *recp = p;
    const tb_spectrum *sp = &r->sp;
    size_t nlen = strlen(r->name);
    uint64_t body = 4 + nlen + 4 + 8 * r->ndim + 4 + 16 + 32 + 16 + 8 + 8 +
                    8 * sp->S + 8 * sp->S * sp->p;
    le(&p, 0x43455254u, 4);
    le(&p, body, 8);
    le(&p, nlen, 4);
    memcpy(p, r->name, nlen);
    p += nlen;
    le(&p, r->ndim, 4);
    for (size_t d = 0; d < r->ndim; d++)
        le(&p, r->shape[d], 8);
    *p++ = TIMBER_DT_BF16;
    *p++ = TIMBER_DT_F32;
    *p++ = 0;
    *p++ = 0;
    le(&p, r->crcb, 4);
    le(&p, r->crci, 4);
    le(&p, TB_TRANSFORM_VERSION, 4);
    le(&p, ROUTE, 4);
    le(&p, r->rows, 8);
    le(&p, r->cols, 8);
    le(&p, sp->S, 8);
    le(&p, sp->k, 8);
    le_f64(&p, sp->erank);
    le_f64(&p, sp->tail_energy);
    *p++ = (unsigned char)sp->tail_side;
    for (int i = 0; i < 7; i++)
        *p++ = 0;
    le(&p, sp->p, 8);
    for (size_t i = 0; i < sp->S; i++)
        le_f64(&p, sp->s[i]);
    for (size_t i = 0; i < sp->S * sp->p; i++)
        le_f64(&p, sp->basis[i]);
    le(&p, crc32(0, recp, (uInt)(p - recp)), 4);
    return (size_t)(p - out);
}

static void test_layout(const char *dir)
{
    rec R[NREC];
    make_all(R);
    for (int i = 0; i < NREC; i++) {
        unsigned char *want = malloc(1 << 16);
        size_t n = spell_file(&R[i], want);
        char spelt[4096], ours[4096];
        snprintf(spelt, sizeof spelt, "%s", tu_path(dir, "spelt.tsvd"));
        snprintf(ours, sizeof ours, "%s", tu_path(dir, "ours.tsvd"));
        tu_write_file(spelt, want, n);
        /* read: the spelt file serves the record bit for bit */
        tb_cache *c = NULL;
        timber_error err;
        timber_status st = tb_cache_open_read(spelt, 0, &c, &err);
        if (CHECK_OK("open spelt", st, &err)) {
            tb_cache_key k = key_of(&R[i]);
            tb_spectrum got;
            CHECKF(tb_cache_get(c, &k, R[i].rows, R[i].cols, &got) == 1 &&
                       same_spectrum(&got, &R[i].sp),
                   "%s: the spelt record is not read back", R[i].name);
            tb_spectrum_clear(&got);
            tb_cache_close(c);
        }
        /* write: cache.c's record is exactly those bytes */
        unlink(ours);
        st = tb_cache_open(ours, 0xfeed, &c, &err);
        if (CHECK_OK("open ours", st, &err)) {
            tb_cache_key k = key_of(&R[i]);
            st = tb_cache_put(c, &k, R[i].rows, R[i].cols, &R[i].sp, &err);
            CHECK_OK("put ours", st, &err);
            tb_cache_close(c);
            size_t len = 0;
            unsigned char *got = tu_read_file(ours, &len);
            CHECKF(got && len == n && memcmp(got, want, n) == 0,
                   "%s: cache.c's bytes differ from the documented layout",
                   R[i].name);
            free(got);
        }
        unlink(spelt);
        unlink(ours);
        free(want);
    }
    free_all(R);
}

/* ----------------------------------------------------------- damage */

static void put_all(const char *path, rec *R)
{
    tb_cache *c = NULL;
    timber_error err;
    unlink(path);
    if (!CHECK_OK("open", tb_cache_open(path, 1, &c, &err), &err))
        return;
    for (int i = 0; i < NREC; i++) {
        tb_cache_key k = key_of(&R[i]);
        CHECK_OK("put", tb_cache_put(c, &k, R[i].rows, R[i].cols, &R[i].sp,
                                     &err),
                 &err);
    }
    tb_cache_close(c);
}

static int hits(const char *path, rec *R, int *which)
{
    tb_cache *c = NULL;
    timber_error err;
    if (tb_cache_open_read(path, 0, &c, &err) != TIMBER_OK)
        return -1;
    int n = 0;
    for (int i = 0; i < NREC; i++) {
        tb_cache_key k = key_of(&R[i]);
        tb_spectrum got;
        which[i] = tb_cache_get(c, &k, R[i].rows, R[i].cols, &got);
        if (which[i])
            CHECKF(same_spectrum(&got, &R[i].sp), "%s served wrong values",
                   R[i].name);
        tb_spectrum_clear(&got);
        n += which[i];
    }
    tb_cache_close(c);
    return n;
}

/* Offsets of the records (from timber_cache_inspect). */
static void offsets_cb(const timber_cache_record *r, void *user)
{
    uint64_t *o = user;
    size_t i = 0;
    while (o[i])
        i++;
    o[i] = r->offset;
}

static void patch(const char *path, uint64_t off, const void *b, size_t n)
{
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && pwrite(fd, b, n, (off_t)off) == (ssize_t)n);
    close(fd);
}

static void test_damage(const char *dir)
{
    rec R[NREC];
    make_all(R);
    char p[4096];
    snprintf(p, sizeof p, "%s", tu_path(dir, "dmg.tsvd"));
    int which[NREC];
    timber_cache_stats stats;
    timber_error err;

    /* a flipped byte in record 1's singular values: that one misses */
    put_all(p, R);
    uint64_t off[NREC + 1] = {0};
    timber_cache_inspect(p, offsets_cb, off, &stats, &err);
    unsigned char x = 0x5a;
    patch(p, off[2] - 20, &x, 1);
    CHECK(hits(p, R, which) == NREC - 1 && !which[1]);
    CHECK_OK("inspect", timber_cache_inspect(p, NULL, NULL, &stats, &err),
             &err);
    CHECK(stats.records == NREC - 1 && stats.damaged == 1);
    /* a reopen for writing keeps what follows the damage and appends */
    tb_cache *c = NULL;
    if (CHECK_OK("reopen", tb_cache_open(p, 1, &c, &err), &err)) {
        tb_cache_key k = key_of(&R[1]);
        CHECK_OK("re-put", tb_cache_put(c, &k, R[1].rows, R[1].cols,
                                        &R[1].sp, &err),
                 &err);
        tb_cache_close(c);
    }
    CHECK(hits(p, R, which) == NREC);

    /* a corrupt length field (huge): damaged, the rest still found */
    put_all(p, R);
    unsigned char big[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    patch(p, off[3] + 4, big, 8);
    CHECK(hits(p, R, which) == NREC - 1 && !which[3]);

    /* the last record cut short (a killed run): not damage, dropped on the
     * next open for writing */
    put_all(p, R);
    struct stat sb;
    stat(p, &sb);
    CHECK(truncate(p, sb.st_size - 7) == 0);
    CHECK_OK("inspect cut", timber_cache_inspect(p, NULL, NULL, &stats, &err),
             &err);
    CHECK(stats.records == NREC - 1 && stats.damaged == 0 &&
          stats.trailing_bytes == (uint64_t)(sb.st_size - 7) - off[4]);
    if (CHECK_OK("open cut", tb_cache_open(p, 1, &c, &err), &err)) {
        CHECK(tb_cache_size(c) == off[4]);
        tb_cache_close(c);
    }
    stat(p, &sb);
    CHECK((uint64_t)sb.st_size == off[4]);

    /* another format version: refused, naming both versions */
    put_all(p, R);
    unsigned char h[32];
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, h, 32, 0) == 32);
    close(fd);
    /* format 2, the one before records named their route */
    h[8] = 2;
    uint32_t hc = (uint32_t)crc32(0, h, 28);
    for (int i = 0; i < 4; i++)
        h[28 + i] = (unsigned char)(hc >> (8 * i));
    patch(p, 0, h, 32);
    c = NULL;
    CHECK_ERROR("version 2", tb_cache_open(p, 1, &c, &err), &err,
                TIMBER_ERR_CACHE, "cache format version 2",
                "reads version 3");
    CHECK_ERROR("version 2 (read)", tb_cache_open_read(p, 0, &c, &err), &err,
                TIMBER_ERR_CACHE, "cache format version 2");
    timber_cache_stats ost;
    CHECK_ERROR("version 2 (inspect)",
                timber_cache_inspect(p, NULL, NULL, &ost, &err), &err,
                TIMBER_ERR_CACHE, "cache format version 2");
    /* a header whose checksum fails */
    h[8] = 3;
    patch(p, 0, h, 32);
    CHECK_ERROR("bad header", tb_cache_open(p, 1, &c, &err), &err,
                TIMBER_ERR_CACHE, "header is corrupt");
    /* not a cache at all */
    patch(p, 0, "NOTACACH", 8);
    CHECK_ERROR("magic", tb_cache_open_read(p, 0, &c, &err), &err,
                TIMBER_ERR_CACHE, "not a timber SVD cache");
    free_all(R);
}


/* ------------------------------------------------------ directories */

enum { FP_A = 0x1111222233334444ull, FP_B = 0x5555666677778888ull };

/* Records of R[lo..hi) put through a handle on dir for fingerprint fp. */
static void put_range(tb_cache *c, rec *R, int lo, int hi)
{
    timber_error err;
    for (int i = lo; i < hi; i++) {
        tb_cache_key k = key_of(&R[i]);
        CHECK_OK("dir put", tb_cache_put(c, &k, R[i].rows, R[i].cols,
                                         &R[i].sp, &err),
                 &err);
    }
}

static void count_warning(const char *msg, void *user)
{
    (void)msg;
    (*(int *)user)++;
}

/* How many of R a fresh handle (tb_cache_open, as refine) on dir for fp
 * serves, which ones in which[], its warnings in *warnings. */
static int dir_hits(const char *dir, uint64_t fp, rec *R, int *which,
                    int *warnings)
{
    tb_cache *c = NULL;
    timber_error err;
    *warnings = 0;
    if (!CHECK_OK("dir open", tb_cache_open(dir, fp, &c, &err), &err))
        return -1;
    tb_cache_warnings(c, count_warning, warnings);
    int n = 0;
    for (int i = 0; i < NREC; i++) {
        tb_cache_key k = key_of(&R[i]);
        tb_spectrum got;
        which[i] = tb_cache_get(c, &k, R[i].rows, R[i].cols, &got);
        if (which[i])
            CHECKF(same_spectrum(&got, &R[i].sp), "dir: %s served wrong values",
                   R[i].name);
        tb_spectrum_clear(&got);
        n += which[i];
    }
    tb_cache_close(c);
    return n;
}

/* The name of the n-th (0-based, sorted) member of dir for fingerprint fp
 * into buf; 0 if none. */
static int member(const char *dir, uint64_t fp, int n, char *buf, size_t size)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%016llx-v%u-", (unsigned long long)fp,
             TB_CACHE_VERSION);
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort), seen = 0, found = 0;
    for (int i = 0; i < k; i++) {
        if (!found && strncmp(list[i]->d_name, prefix, strlen(prefix)) == 0 &&
            seen++ == n) {
            snprintf(buf, size, "%s/%s", dir, list[i]->d_name);
            found = 1;
        }
        free(list[i]);
    }
    if (k >= 0)
        free(list);
    return found;
}

typedef struct dir_totals {
    int ok, empty, other, unreadable, damaged;
    size_t records, bad_records;
} dir_totals;

static void totals_cb(const timber_cache_file *f, void *user)
{
    dir_totals *t = user;
    switch (f->state) {
    case TIMBER_CACHE_FILE_OK:
        t->ok++;
        t->records += f->stats.records;
        t->bad_records += f->stats.damaged;
        break;
    case TIMBER_CACHE_FILE_EMPTY: t->empty++; break;
    case TIMBER_CACHE_FILE_OTHER_FORMAT: t->other++; break;
    case TIMBER_CACHE_FILE_UNREADABLE: t->unreadable++; break;
    case TIMBER_CACHE_FILE_DAMAGED: t->damaged++; break;
    }
}

static void test_dir(const char *top)
{
    rec R[NREC];
    make_all(R);
    char dir[4200], slash[4300], p[4600];
    snprintf(dir, sizeof dir, "%s/shared", top);
    snprintf(slash, sizeof slash, "%s/", dir);
    timber_error err;
    tb_cache *a = NULL, *b = NULL, *c = NULL;
    int which[NREC], warnings = 0;

    /* Not a directory (no '/'), missing: a plain file would be made;
     * with '/': the directory, and nothing in it before a record. */
    CHECK(!tb_cache_is_dir(dir));
    CHECK(tb_cache_is_dir(slash));
    char deep[4300];
    snprintf(deep, sizeof deep, "%s/no/such/", top);
    CHECK_ERROR("dir/ under a missing parent", tb_cache_open(deep, FP_A, &c,
                                                             &err),
                &err, TIMBER_ERR_IO, "cannot create the cache directory");
    if (!CHECK_OK("open DIR/", tb_cache_open(slash, FP_A, &a, &err), &err))
        return;
    tb_cache_key k0 = key_of(&R[0]);
    tb_spectrum got;
    CHECK(tb_cache_get(a, &k0, R[0].rows, R[0].cols, &got) == 0);
    tb_cache_close(a);
    CHECKF(tb_cache_is_dir(dir) && tu_count_entries(dir) == 0,
           "DIR/ was not created empty: %d entries", tu_count_entries(dir));

    /* Two handles at once (two parts), each appending its records. */
    CHECK_OK("open a", tb_cache_open(dir, FP_A, &a, &err), &err);
    CHECK_OK("open b", tb_cache_open(slash, FP_A, &b, &err), &err);
    if (!a || !b)
        return;
    put_range(a, R, 0, 2);
    put_range(b, R, 2, 4);
    put_range(a, R, 4, 5);
    /* each handle sees its own records (not the other's: it opened
     * before they were written) */
    tb_cache_key k2 = key_of(&R[2]);
    CHECK(tb_cache_get(a, &k0, R[0].rows, R[0].cols, &got) == 1);
    tb_spectrum_clear(&got);
    CHECK(tb_cache_get(a, &k2, R[2].rows, R[2].cols, &got) == 0);
    tb_cache_close(a);
    tb_cache_close(b);
    CHECKF(tu_count_entries(dir) == 2, "two writers: %d files, expected 2",
           tu_count_entries(dir));
    char fa[4600], fb[4600]; /* the two writers' files */
    CHECK(member(dir, FP_A, 0, fa, sizeof fa) &&
          member(dir, FP_A, 1, fb, sizeof fb));
    CHECKF(dir_hits(dir, FP_A, R, which, &warnings) == NREC && !warnings,
           "a third handle does not find all %d records (%d warnings)", NREC,
           warnings);
    /* ... and, served wholly, created nothing */
    CHECKF(tu_count_entries(dir) == 2, "a run served from the cache made a "
                                       "file: %d files",
           tu_count_entries(dir));
    /* the size is the sum of the files' */
    CHECK_OK("open size", tb_cache_open(dir, FP_A, &c, &err), &err);
    if (c) {
        char f0[4600], f1[4600];
        struct stat s0, s1;
        CHECK(member(dir, FP_A, 0, f0, sizeof f0) &&
              member(dir, FP_A, 1, f1, sizeof f1) && stat(f0, &s0) == 0 &&
              stat(f1, &s1) == 0 &&
              tb_cache_size(c) == (uint64_t)(s0.st_size + s1.st_size));
        tb_cache_close(c);
    }

    /* Another pair's file is never read, though its keys match. */
    rec X[NREC];
    make_all(X); /* same keys, other values */
    CHECK_OK("open other pair", tb_cache_open(dir, FP_B, &c, &err), &err);
    if (c) {
        put_range(c, X, 0, NREC);
        tb_cache_close(c);
    }
    CHECK(member(dir, FP_B, 0, p, sizeof p));
    CHECKF(dir_hits(dir, FP_A, R, which, &warnings) == NREC && !warnings,
           "with another pair's file: not all of ours served right");
    CHECKF(dir_hits(dir, FP_B, X, which, &warnings) == NREC,
           "the other pair does not find its own");
    /* read-only, for fingerprint 0 (every file): both pairs' records */
    CHECK_OK("open_read", tb_cache_open_read(dir, 0, &c, &err), &err);
    if (c) {
        int files = tu_count_entries(dir);
        CHECK_ERROR("put on a read-only directory handle",
                    tb_cache_put(c, &k0, R[0].rows, R[0].cols, &R[0].sp,
                                 &err),
                    &err, TIMBER_ERR_INVALID, "for reading only");
        CHECK(tu_count_entries(dir) == files);
        tb_cache_close(c);
    }

    /* An empty file, another format version's, and junk in its name. */
    snprintf(p, sizeof p, "%s/%016llx-v%u-h-1-0.timber-cache", dir,
             (unsigned long long)FP_A, TB_CACHE_VERSION);
    CHECK(tu_write_file(p, "", 0) == 0);
    snprintf(p, sizeof p, "%s/%016llx-v1-h-1-0.timber-cache", dir,
             (unsigned long long)FP_A);
    CHECK(tu_write_file(p, "old format bytes", 16) == 0);
    snprintf(p, sizeof p, "%s/%016llx-v%u-h-2-0.timber-cache", dir,
             (unsigned long long)FP_A, TB_CACHE_VERSION);
    CHECK(tu_write_file(p, "not a cache at all, longer than a header", 40) ==
          0);
    snprintf(p, sizeof p, "%s/README", dir);
    CHECK(tu_write_file(p, "notes", 5) == 0);
    CHECKF(dir_hits(dir, FP_A, R, which, &warnings) == NREC && warnings == 1,
           "with an empty, an old and a junk file: %d warnings, expected 1",
           warnings);
    dir_totals t = {0};
    CHECK_OK("inspect_dir", timber_cache_inspect_dir(dir, totals_cb, NULL, &t,
                                                     &err),
             &err);
    CHECKF(t.ok == 3 && t.empty == 1 && t.other == 1 && t.damaged == 1 &&
               t.unreadable == 0 && t.records == 2 * NREC && !t.bad_records,
           "inspect_dir: ok %d empty %d other %d damaged %d records %zu",
           t.ok, t.empty, t.other, t.damaged, t.records);
    CHECK_ERROR("inspect_dir on a file",
                timber_cache_inspect_dir(p, totals_cb, NULL, &t, &err), &err,
                TIMBER_ERR_IO, "not a directory");

    /* A flipped byte in one file, a cut tail in the other: only those. */
    uint64_t offs[NREC + 2] = {0};
    timber_cache_stats st;
    CHECK_OK("inspect a", timber_cache_inspect(fa, offsets_cb, offs, &st, &err),
             &err);
    int fa_is_a = 0;
    CHECK_OK("fa", tb_cache_open_read(fa, 0, &c, &err), &err);
    if (c) {
        fa_is_a = tb_cache_get(c, &k0, R[0].rows, R[0].cols, &got);
        tb_spectrum_clear(&got);
        tb_cache_close(c);
    }
    unsigned char bad = 0x5a;
    patch(fa, offs[0] + 200, &bad, 1);
    struct stat sb;
    CHECK(stat(fb, &sb) == 0 && truncate(fb, sb.st_size - 50) == 0);
    int n = dir_hits(dir, FP_A, R, which, &warnings);
    CHECKF(n == NREC - 2, "damage in two files: %d served, expected %d", n,
           NREC - 2);
    struct stat sb2;
    CHECK(stat(fb, &sb2) == 0 && sb2.st_size == sb.st_size - 50);
    /* Writer a's file holds R[0], R[1], R[4]; b's R[2], R[3].  The first
     * record of fa (flipped) and the last of fb (cut) are lost. */
    const char *expect = fa_is_a ? "01101" : "11010";
    char served[NREC + 1];
    for (int i = 0; i < NREC; i++)
        served[i] = which[i] ? '1' : '0';
    served[NREC] = '\0';
    CHECKF(strcmp(served, expect) == 0, "damage: served %s, expected %s",
           served, expect);
    /* The lost ones are appended by the next writer: all served again. */
    CHECK_OK("repair", tb_cache_open(dir, FP_A, &c, &err), &err);
    if (c) {
        for (int i = 0; i < NREC; i++)
            if (!which[i])
                put_range(c, R, i, i + 1);
        tb_cache_close(c);
    }
    CHECKF(dir_hits(dir, FP_A, R, which, &warnings) == NREC,
           "after the repair not all served");
    free_all(X);

    /* Many files, few descriptors: those beyond the budget are opened
     * again for each lookup. */
    char many[4300];
    snprintf(many, sizeof many, "%s/many/", top);
    for (int i = 0; i < NREC; i++)
        if (CHECK_OK("many", tb_cache_open(many, FP_A, &c, &err), &err)) {
            put_range(c, R, i, i + 1);
            tb_cache_close(c);
        }
    CHECKF(tu_count_entries(many) == NREC, "many: %d files",
           tu_count_entries(many));
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    low.rlim_cur = 8; /* budget 2 of NREC files */
    int lowered = setrlimit(RLIMIT_NOFILE, &low) == 0;
    CHECK(lowered);
    n = dir_hits(many, FP_A, R, which, &warnings);
    if (lowered)
        setrlimit(RLIMIT_NOFILE, &old);
    CHECKF(n == NREC && !warnings, "few descriptors: %d of %d served", n,
           NREC);
    free_all(R);
}

int main(void)
{
    const char *d = tu_tempdir("cache");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    test_round_trip(dir);
    test_layout(dir);
    test_damage(dir);
    test_dir(dir);
    return tu_report();
}
