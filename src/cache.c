/*
 * cache.c — one SVD cache file (format in cache.h and docs/cache-format.md):
 * scanning and validating records, looking them up by key, appending new
 * ones safely, and the read-only `timber cache info|verify` walk.  A cache
 * directory of many such files, and the tb_cache handle over one file or
 * a directory, are cachedir.c's.
 *
 * Why it is built this way: records are appended and flushed one by one
 * so a killed run keeps every finished tensor; each carries its own CRC
 * and full key, so a damaged record, or one from another pair, is simply
 * recomputed; a failed append is cut back so the file always ends on a
 * whole record.
 */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "backend.h"
#include "model.h"
#include "safetensors.h"
#include "util.h"

#define HEADER_SIZE 32u
#define REC_MAGIC 0x43455254u /* "TREC" little-endian */
#define REC_HEAD 12u          /* magic + body length */
/* Bodies larger than this are not records (a corrupt length field). */
#define MAX_BODY (1ull << 36)

static const char file_magic[8] = {'T', 'I', 'M', 'B', 'E', 'R', 'S', 'V'};

typedef struct entry {
    char *name;
    size_t ndim;
    uint64_t *shape;
    uint8_t dtb, dti;
    uint32_t crcb, crci, version, route;
    uint64_t offset; /* of the record */
    uint64_t body;   /* body length */
    uint64_t rows, cols, r, k, p;
    double erank;
    size_t chain; /* 1 + the next older entry of the same bucket, or 0 */
} entry;

struct tb_cache_file {
    char *path;
    int fd;          /* -1 after tb_cache_file_drop_fd */
    dev_t dev;       /* the file's identity, checked when reopened */
    ino_t ino;
    uint64_t end; /* end of the last whole record: appends go here */
    entry *entries;
    size_t n, cap;
    size_t *heads;   /* by name hash: 1 + the newest entry, or 0 */
    size_t nheads;   /* a power of two, >= n */
    pthread_mutex_t lock;
    int dirty;
};

/* ------------------------------------------------------ little endian */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t crc(uint32_t c, const void *p, uint64_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = (uint32_t)crc32(c, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return c;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ----------------------------------------------------- record parsing */

/* A cursor over a record body with bounds checks: a corrupt length can
 * never make the parser read past the body. */
typedef struct cursor {
    const unsigned char *p;
    uint64_t left;
    int bad;
} cursor;

static const unsigned char *take(cursor *c, uint64_t n)
{
    if (c->bad || n > c->left) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *at = c->p;
    c->p += n;
    c->left -= n;
    return at;
}

static uint64_t take64(cursor *c)
{
    const unsigned char *p = take(c, 8);
    return p ? get64(p) : 0;
}

static uint32_t take32(cursor *c)
{
    const unsigned char *p = take(c, 4);
    return p ? get32(p) : 0;
}

/* Doubles travel as the little-endian bytes of their IEEE-754 bit
 * pattern, whatever the host's byte order. */
static double takef64(cursor *c)
{
    uint64_t bits = take64(c);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

/* The writing side of the cursor: the same fields in the same order, so
 * each record layout is spelt once, in encode_body() / decode_body().
 * With p NULL it only counts the bytes (the record's size). */
typedef struct putter {
    unsigned char *p;
    uint64_t len;
} putter;

static unsigned char *put(putter *w, uint64_t n)
{
    unsigned char *at = w->p ? w->p + w->len : NULL;
    w->len += n;
    return at;
}

static void put_bytes(putter *w, const void *src, uint64_t n)
{
    unsigned char *at = put(w, n);
    if (at && n)
        memcpy(at, src, (size_t)n);
}

static void putu8(putter *w, uint8_t v)
{
    unsigned char *at = put(w, 1);
    if (at)
        *at = v;
}

static void putu32(putter *w, uint32_t v)
{
    unsigned char *at = put(w, 4);
    if (at)
        put32(at, v);
}

static void putu64(putter *w, uint64_t v)
{
    unsigned char *at = put(w, 8);
    if (at)
        put64(at, v);
}

static void putf64(putter *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    putu64(w, bits);
}

static void putf64s(putter *w, const double *v, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        putf64(w, v[i]);
}

static void takef64s(cursor *c, double *out, uint64_t n)
{
    const unsigned char *p = take(c, 8 * n);
    for (uint64_t i = 0; p && i < n; i++) {
        uint64_t bits = get64(p + 8 * i);
        memcpy(&out[i], &bits, 8);
    }
}

/* The file header: magic, format version, header size, fingerprint,
 * transform version, CRC of what precedes it. */
typedef struct header {
    uint32_t version, size, transform, crc;
    uint64_t fingerprint;
    int magic_ok;
} header;

static void encode_header(putter *w, uint64_t fingerprint)
{
    put_bytes(w, file_magic, 8);
    putu32(w, TB_CACHE_VERSION);
    putu32(w, HEADER_SIZE);
    putu64(w, fingerprint);
    putu32(w, TB_TRANSFORM_VERSION);
    putu32(w, w->p ? crc(0, w->p, 28) : 0);
}

static header decode_header(const unsigned char h[HEADER_SIZE])
{
    cursor c = {h, HEADER_SIZE, 0};
    header r;
    r.magic_ok = memcmp(take(&c, 8), file_magic, 8) == 0;
    r.version = take32(&c);
    r.size = take32(&c);
    r.fingerprint = take64(&c);
    r.transform = take32(&c);
    r.crc = take32(&c);
    return r;
}

/* A record's values after its key (decoded from the body, pointing into
 * it). */
typedef struct values {
    double erank, tail_energy;
    int tail_side;
    cursor s, basis; /* r and S * p little-endian doubles */
} values;

/* The body of a record for key (layout in cache.h). */
static void encode_body(putter *w, const tb_cache_key *k, uint64_t rows,
                        uint64_t cols, const tb_spectrum *sp)
{
    size_t nlen = strlen(k->name);
    uint64_t S = sp->S;
    putu32(w, (uint32_t)nlen);
    put_bytes(w, k->name, nlen);
    putu32(w, (uint32_t)k->ndim);
    for (size_t d = 0; d < k->ndim; d++)
        putu64(w, k->shape[d]);
    putu8(w, (uint8_t)k->base_dtype);
    putu8(w, (uint8_t)k->inst_dtype);
    putu8(w, 0);
    putu8(w, 0);
    putu32(w, k->crc_base);
    putu32(w, k->crc_inst);
    putu32(w, TB_TRANSFORM_VERSION);
    putu32(w, k->route);
    putu64(w, rows);
    putu64(w, cols);
    putu64(w, S);
    putu64(w, sp->k);
    putf64(w, sp->erank);
    putf64(w, sp->tail_energy);
    putu8(w, sp->tail_side ? 1 : 0);
    for (int i = 0; i < 7; i++)
        putu8(w, 0);
    putu64(w, sp->p);
    putf64s(w, sp->s, S);
    /* k = 0 or k = r: no basis, and sp->basis may be NULL */
    if (S && sp->p)
        putf64s(w, sp->basis, S * sp->p);
}

/* Decodes a body's key and sizes into e (name and shape allocated) and,
 * when v is non-NULL, its values.  Returns 0 on success. */
static int decode_body(const unsigned char *body, uint64_t len, entry *e,
                       values *v)
{
    cursor c = {body, len, 0};
    memset(e, 0, sizeof *e);
    uint32_t nlen = take32(&c);
    const unsigned char *name = take(&c, nlen);
    uint32_t ndim = take32(&c);
    if (c.bad || ndim > 64)
        return -1;
    const unsigned char *dims = take(&c, 8ull * ndim);
    const unsigned char *dt = take(&c, 4);
    e->crcb = take32(&c);
    e->crci = take32(&c);
    e->version = take32(&c);
    e->route = take32(&c);
    e->rows = take64(&c);
    e->cols = take64(&c);
    e->r = take64(&c);
    e->k = take64(&c);
    e->erank = takef64(&c);
    double tail = takef64(&c);
    const unsigned char *side = take(&c, 8); /* side + padding */
    e->p = take64(&c);
    if (c.bad)
        return -1;
    uint64_t S = e->rows < e->cols ? e->rows : e->cols;
    uint64_t need, basis, svals;
    /* Sizes first (every product checked: the fields are 64-bit and come
     * from a file), then the basis is the smaller side of the cut, as
     * spectrum.c makes it, so a record is usable as it stands. */
    if (e->r != S || e->k > e->r || e->p > e->r ||
        !tb_mul_u64(S, e->p, &basis) || !tb_mul_u64(basis, 8, &basis) ||
        !tb_mul_u64(e->r, 8, &svals) || !tb_add_u64(basis, svals, &need) ||
        need != c.left)
        return -1;
    if (side[0] > 1 || e->p != (side[0] ? e->r - e->k : e->k))
        return -1;
    e->name = malloc((size_t)nlen + 1);
    e->shape = tb_calloc_array(ndim, sizeof(uint64_t));
    if (!e->name || !e->shape) {
        free(e->name);
        free(e->shape);
        e->name = NULL;
        e->shape = NULL;
        return -1;
    }
    memcpy(e->name, name, nlen);
    e->name[nlen] = '\0';
    e->ndim = ndim;
    for (uint32_t d = 0; d < ndim; d++)
        e->shape[d] = get64(dims + 8 * d);
    e->dtb = dt[0];
    e->dti = dt[1];
    if (v) {
        v->erank = e->erank;
        v->tail_energy = tail;
        v->tail_side = side[0];
        v->s = (cursor){take(&c, svals), svals, 0};
        v->basis = (cursor){take(&c, basis), basis, 0};
    }
    return 0;
}

/* Reads and checks the record at off: 1 if whole and valid (body in
 * *body_out, malloc'd, if non-NULL), 0 if damaged, -1 if truncated by the
 * end of the file. */
static int read_record(int fd, uint64_t off, uint64_t file_size,
                       uint64_t *body_len, unsigned char **body_out)
{
    unsigned char head[REC_HEAD];
    if (off + REC_HEAD > file_size)
        return -1;
    if (pread_all(fd, head, REC_HEAD, off) != 0)
        return 0;
    if (get32(head) != REC_MAGIC)
        return 0;
    uint64_t B = get64(head + 4);
    if (B > MAX_BODY)
        return 0;
    if (off + REC_HEAD + B + 4 > file_size)
        return -1;
    unsigned char *body = malloc((size_t)B + 4);
    if (!body)
        return 0;
    if (pread_all(fd, body, (size_t)B + 4, off + REC_HEAD) != 0) {
        free(body);
        return 0;
    }
    uint32_t c = crc(crc(0, head, REC_HEAD), body, B);
    if (c != get32(body + B)) {
        free(body);
        return 0;
    }
    *body_len = B;
    if (body_out)
        *body_out = body;
    else
        free(body);
    return 1;
}

/* Next offset after `from` where a record magic starts, or file_size. */
static uint64_t resync(int fd, uint64_t from, uint64_t file_size)
{
    unsigned char buf[65536];
    for (uint64_t at = from; at + 4 <= file_size;) {
        size_t want = (size_t)(file_size - at < sizeof buf ? file_size - at
                                                           : sizeof buf);
        if (pread_all(fd, buf, want, at) != 0)
            return file_size;
        for (size_t i = 0; i + 4 <= want; i++)
            if (get32(buf + i) == REC_MAGIC)
                return at + i;
        at += want > 3 ? want - 3 : want;
    }
    return file_size;
}

/* Walks every record; calls fn for each whole one (valid or damaged).
 * Returns the end of the last valid record. */
typedef void (*walk_fn)(void *user, uint64_t off, int valid,
                        const unsigned char *body, uint64_t len);

static uint64_t walk(int fd, uint64_t file_size, walk_fn fn, void *user,
                     size_t *damaged)
{
    uint64_t off = HEADER_SIZE, end = HEADER_SIZE;
    while (off < file_size) {
        uint64_t B = 0;
        unsigned char *body = NULL;
        int rc = read_record(fd, off, file_size, &B, &body);
        if (rc == 1) {
            fn(user, off, 1, body, B);
            free(body);
            off += REC_HEAD + B + 4;
            end = off;
            continue;
        }
        if (rc < 0 && resync(fd, off + 1, file_size) >= file_size)
            break; /* a tail cut short: not damage, just unfinished */
        if (damaged)
            (*damaged)++;
        fn(user, off, 0, NULL, 0);
        off = resync(fd, off + 1, file_size);
    }
    return end;
}

/* ----------------------------------------------------------- opening */

static size_t name_bucket(const tb_cache_file *c, const char *name)
{
    uint64_t h = tb_fnv1a(TB_FNV_OFFSET, name, strlen(name));
    return (size_t)(h & (c->nheads - 1));
}

/* Appends e to the table (taking its name and shape); lookups are by
 * name through a hash of chains, newest first, so a run over a cache of
 * n records costs O(n), not O(n^2) (an MoE checkpoint has ~18,000
 * matrices).  Returns -1, with e freed, when memory runs out: the record
 * is then simply not used. */
static int add_entry(tb_cache_file *c, entry *e)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        entry *g = tb_alloc_array(cap, sizeof *g);
        if (!g)
            goto fail;
        if (c->n)
            memcpy(g, c->entries, c->n * sizeof *g);
        free(c->entries);
        c->entries = g;
        c->cap = cap;
    }
    if (c->n + 1 > c->nheads) {
        size_t nh = c->nheads ? 2 * c->nheads : 64;
        while (nh < c->n + 1)
            nh *= 2;
        size_t *h = tb_calloc_array(nh, sizeof *h);
        if (!h)
            goto fail;
        free(c->heads);
        c->heads = h;
        c->nheads = nh;
        for (size_t i = 0; i < c->n; i++) {
            size_t b = name_bucket(c, c->entries[i].name);
            c->entries[i].chain = c->heads[b];
            c->heads[b] = i + 1;
        }
    }
    size_t b = name_bucket(c, e->name);
    e->chain = c->heads[b];
    c->entries[c->n] = *e;
    c->heads[b] = ++c->n;
    return 0;
fail:
    free(e->name);
    free(e->shape);
    return -1;
}

static void add_entry_cb(void *user, uint64_t off, int valid,
                         const unsigned char *body, uint64_t len)
{
    tb_cache_file *c = user;
    if (!valid)
        return;
    entry e;
    if (decode_body(body, len, &e, NULL) != 0)
        return;
    e.offset = off;
    e.body = len;
    add_entry(c, &e);
}

static int mkdir_p(const char *dir)
{
    char *p = tb_strdup(dir);
    if (!p)
        return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = '/';
        }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

/* Reads and checks the header (into *out when non-NULL). */
static timber_status check_header(int fd, const char *path, header *out,
                                  timber_error *err)
{
    unsigned char h[HEADER_SIZE];
    if (pread_all(fd, h, HEADER_SIZE, 0) != 0)
        return tb_fail(err, TIMBER_ERR_CACHE,
                       "%s: not a timber SVD cache file", path);
    header hd = decode_header(h);
    if (!hd.magic_ok)
        return tb_fail(err, TIMBER_ERR_CACHE,
                       "%s: not a timber SVD cache file", path);
    if (hd.version != TB_CACHE_VERSION)
        return tb_fail(err, TIMBER_ERR_CACHE,
                       "%s: cache format version %u, this timber reads "
                       "version %u (remove the file or choose another with "
                       "--cache)",
                       path, hd.version, TB_CACHE_VERSION);
    if (hd.size != HEADER_SIZE || hd.crc != crc(0, h, 28))
        return tb_fail(err, TIMBER_ERR_CACHE,
                       "%s: cache header is corrupt (checksum mismatch)",
                       path);
    if (out)
        *out = hd;
    return TIMBER_OK;
}

void tb_cache_file_close(tb_cache_file *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        if (c->dirty)
            fdatasync(c->fd);
        close(c->fd); /* releases the lock */
    }
    for (size_t i = 0; i < c->n; i++) {
        free(c->entries[i].name);
        free(c->entries[i].shape);
    }
    free(c->entries);
    free(c->heads);
    free(c->path);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

timber_status tb_cache_file_open(const char *path, uint64_t fingerprint,
                                 tb_cache_mode mode, tb_cache_file **out,
                                 timber_error *err)
{
    *out = NULL;
    int readonly = mode == TB_CACHE_READ, fresh = mode == TB_CACHE_NEW;
    tb_cache_file *c = calloc(1, sizeof *c);
    if (!c)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    c->fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    c->path = tb_strdup(path);
    timber_status st = TIMBER_OK;
    char *dir = tb_dirname(path);
    if (!c->path || !dir) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (mode == TB_CACHE_RW && mkdir_p(dir) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                           "%s: cannot create the cache directory", dir);
        goto fail;
    }
    /* Created here: removed again if even its header cannot be written,
     * so a full disk leaves no empty file that is not a cache. */
    int created = !readonly;
    /* O_NONBLOCK: a FIFO or a device must be refused below, not waited
     * on (it changes nothing for a regular file). */
    c->fd = readonly ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
                     : open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                            0666);
    if (fresh && c->fd < 0 && errno == EEXIST) {
        st = tb_fail(err, TIMBER_ERR_EXISTS, "%s: already exists", path);
        goto fail;
    }
    if (!readonly && c->fd < 0 && errno == EEXIST) {
        created = 0;
        c->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    }
    if (c->fd < 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                           "%s: cannot open the cache", path);
        goto fail;
    }
    /* A reader takes no lock: records are appended whole and checked by
     * CRC, so reading beside a writer is safe, and it must not take the
     * cache away from a refine running at the same time. */
    if (mode == TB_CACHE_RW && flock(c->fd, LOCK_EX | LOCK_NB) != 0) {
        st = errno == EWOULDBLOCK
                 ? tb_fail(err, TIMBER_ERR_EXISTS,
                           "%s: cache in use by another timber run", path)
                 : tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                 "%s: cannot lock the cache", path);
        goto fail;
    }
    struct stat sb;
    if (fstat(c->fd, &sb) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot stat",
                           path);
        goto fail;
    }
    c->dev = sb.st_dev;
    c->ino = sb.st_ino;
    if (!S_ISREG(sb.st_mode)) {
        created = 0;
        st = tb_fail(err, TIMBER_ERR_CACHE,
                     "%s: not a regular file (a FIFO, device or directory), "
                     "so not a cache",
                     path);
        goto fail;
    }
    if (sb.st_size == 0 && readonly) {
        st = tb_fail(err, TIMBER_ERR_CACHE,
                     "%s: empty file, not a timber SVD cache", path);
        goto fail;
    }
    if (sb.st_size == 0) {
        unsigned char h[HEADER_SIZE] = {0};
        putter w = {h, 0};
        encode_header(&w, fingerprint);
        if (tb_pwrite_all(c->fd, h, HEADER_SIZE, 0) != 0 ||
            fdatasync(c->fd) != 0) {
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                               "%s: cannot write the cache header", path);
            if (created)
                unlink(path);
            else if (ftruncate(c->fd, 0) != 0) {
                /* the next open sees a short header and says so */
            }
            goto fail;
        }
        c->end = HEADER_SIZE;
    } else {
        st = check_header(c->fd, path, NULL, err);
        if (st)
            goto fail;
        c->end = walk(c->fd, (uint64_t)sb.st_size, add_entry_cb, c, NULL);
        /* A record cut short by a kill: drop it so appends stay whole
         * (a reader leaves the file alone and never appends). */
        if (!readonly && c->end < (uint64_t)sb.st_size) {
            uint64_t dummy;
            if (read_record(c->fd, c->end, (uint64_t)sb.st_size, &dummy,
                            NULL) < 0 &&
                resync(c->fd, c->end + 1, (uint64_t)sb.st_size) >=
                    (uint64_t)sb.st_size)
                ftruncate(c->fd, (off_t)c->end);
            else
                c->end = (uint64_t)sb.st_size; /* damage in the middle:
                                                  keep what follows */
        }
    }
    free(dir);
    *out = c;
    return TIMBER_OK;
fail:
    free(dir);
    tb_cache_file_close(c);
    return st;
}

void tb_cache_file_drop_fd(tb_cache_file *c)
{
    if (c->fd >= 0 && !c->dirty) {
        close(c->fd);
        c->fd = -1;
    }
}

void tb_cache_part_name(char *buf, size_t size, const char *name,
                        uint64_t part, uint64_t parts)
{
    if (parts > 1)
        snprintf(buf, size, "%s[%llu]", name, (unsigned long long)part);
    else
        snprintf(buf, size, "%s", name);
}

/* ------------------------------------------------------------ lookups */

static int key_matches(const entry *e, const tb_cache_key *k, uint64_t rows,
                       uint64_t cols, int any_crc)
{
    if (strcmp(e->name, k->name) != 0 || e->ndim != k->ndim ||
        e->dtb != (uint8_t)k->base_dtype || e->dti != (uint8_t)k->inst_dtype ||
        (!any_crc && (e->crcb != k->crc_base || e->crci != k->crc_inst)) ||
        e->version != TB_TRANSFORM_VERSION || e->route != k->route ||
        e->rows != rows ||
        e->cols != cols)
        return 0;
    for (size_t d = 0; d < e->ndim; d++)
        if (e->shape[d] != k->shape[d])
            return 0;
    return 1;
}

/* The fd to read a record through: the handle's, or (after
 * tb_cache_file_drop_fd) the file opened again, if it is still the same
 * file; -1 when it is gone.  *own says whether the caller closes it. */
static int record_fd(const tb_cache_file *c, int *own)
{
    *own = 0;
    if (c->fd >= 0)
        return c->fd;
    int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd >= 0 && (fstat(fd, &sb) != 0 || sb.st_dev != c->dev ||
                    sb.st_ino != c->ino)) {
        close(fd);
        fd = -1;
    }
    *own = fd >= 0;
    return fd;
}

int tb_cache_file_get(tb_cache_file *c, const tb_cache_key *key,
                      uint64_t rows, uint64_t cols, tb_spectrum *sp,
                      int any_crc, uint32_t crc[2])
{
    memset(sp, 0, sizeof *sp);
    pthread_mutex_lock(&c->lock);
    const entry *hit = NULL;
    for (size_t at = c->nheads ? c->heads[name_bucket(c, key->name)] : 0;
         at && !hit; at = c->entries[at - 1].chain)
        if (key_matches(&c->entries[at - 1], key, rows, cols, any_crc))
            hit = &c->entries[at - 1];
    entry e = hit ? *hit : (entry){0};
    uint64_t file_end = c->end;
    pthread_mutex_unlock(&c->lock);
    if (!hit)
        return 0;
    /* Re-read and re-check: the file may have been damaged since. */
    uint64_t B = 0;
    unsigned char *body = NULL;
    int own_fd, fd = record_fd(c, &own_fd);
    int got = fd >= 0 && read_record(fd, e.offset, file_end, &B, &body) == 1;
    if (own_fd)
        close(fd);
    if (!got)
        return 0;
    entry parsed;
    values v;
    int ok = B == e.body && decode_body(body, B, &parsed, &v) == 0;
    if (ok) {
        /* still the record that was indexed */
        ok = key_matches(&parsed, key, rows, cols, any_crc) &&
             parsed.crcb == e.crcb && parsed.crci == e.crci;
        free(parsed.name);
        free(parsed.shape);
    }
    if (ok) {
        uint64_t S = rows < cols ? rows : cols;
        sp->S = (size_t)S;
        sp->erank = v.erank;
        sp->tail_energy = v.tail_energy;
        sp->k = (size_t)e.k;
        sp->tail_side = v.tail_side;
        sp->p = (size_t)e.p;
        sp->s = tb_alloc_array((size_t)e.r, sizeof(double));
        sp->basis = tb_alloc_array((size_t)(S * e.p), sizeof(double));
        ok = sp->s && sp->basis;
        if (ok) {
            takef64s(&v.s, sp->s, e.r);
            takef64s(&v.basis, sp->basis, S * e.p);
        }
    }
    free(body);
    if (!ok)
        tb_spectrum_clear(sp);
    else if (crc) {
        crc[0] = e.crcb;
        crc[1] = e.crci;
    }
    return ok;
}

timber_status tb_cache_file_put(tb_cache_file *c, const tb_cache_key *k,
                                uint64_t rows, uint64_t cols,
                                const tb_spectrum *sp, timber_error *err)
{
    putter size = {NULL, 0};
    encode_body(&size, k, rows, cols, sp);
    uint64_t B = size.len;
    unsigned char *rec = malloc((size_t)(REC_HEAD + B + 4));
    if (!rec)
        return tb_fail(err, TIMBER_ERR_NOMEM,
                       "tensor '%s': out of memory for its cache record",
                       k->name);
    putter w = {rec, 0};
    putu32(&w, REC_MAGIC);
    putu64(&w, B);
    encode_body(&w, k, rows, cols, sp);
    putu32(&w, crc(0, rec, REC_HEAD + B));

    timber_status st = TIMBER_OK;
    pthread_mutex_lock(&c->lock);
    uint64_t at = c->end;
    if (tb_pwrite_all(c->fd, rec, (size_t)(REC_HEAD + B + 4), at) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                           "%s: cannot append the record of tensor '%s'",
                           c->path, k->name);
        /* Cut the partial record off: the file stays a valid cache. */
        if (ftruncate(c->fd, (off_t)at) != 0) {
            /* nothing more we can do: the next open drops the tail */
        }
    } else {
        c->end = at + REC_HEAD + B + 4;
        /* Written to the kernel: a killed process loses nothing.  No
         * fdatasync per record: on ext4 each one commits the journal and
         * drags the output shards' dirty pages to disk with it, halving
         * the run's speed.  The file is synced once, at close; a record
         * torn by a power cut fails its CRC and is recomputed. */
        c->dirty = 1;
        entry e;
        if (decode_body(rec + REC_HEAD, B, &e, NULL) == 0) {
            e.offset = at;
            e.body = B;
            add_entry(c, &e);
        }
    }
    pthread_mutex_unlock(&c->lock);
    free(rec);
    return st;
}

uint64_t tb_cache_file_size(const tb_cache_file *c) { return c->end; }
const char *tb_cache_file_path(const tb_cache_file *c) { return c->path; }

char *tb_cache_default_path(uint64_t fingerprint)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char name[64];
    snprintf(name, sizeof name, "timber/%016llx.v%u.tsvd",
             (unsigned long long)fingerprint, TB_CACHE_VERSION);
    if (xdg && xdg[0] == '/')
        return tb_path_join(xdg, name);
    if (home && home[0]) {
        char *base = tb_path_join(home, ".cache");
        char *p = base ? tb_path_join(base, name) : NULL;
        free(base);
        return p;
    }
    return NULL;
}

/* ------------------------------------------------- info and verify */

typedef struct walk_ctx {
    void (*each)(const timber_cache_record *rec, void *user);
    void *user;
    timber_cache_stats *stats;
} walk_ctx;

static void info_cb(void *user, uint64_t off, int valid,
                    const unsigned char *body, uint64_t len)
{
    walk_ctx *w = user;
    timber_cache_record r = {0};
    char route[64];
    r.offset = off;
    r.valid = valid;
    entry e = {0};
    if (valid && decode_body(body, len, &e, NULL) != 0)
        r.valid = valid = 0;
    if (valid) {
        r.erank = e.erank;
        r.name = e.name;
        r.ndim = e.ndim;
        r.shape = e.shape;
        r.rows = e.rows;
        r.cols = e.cols;
        r.rank = e.r;
        r.k = e.k;
        r.basis_columns = e.p;
        r.bytes = REC_HEAD + len + 4;
        r.transform_version = e.version;
        r.route = e.route;
        r.route_name = tb_route_name(e.route, route, sizeof route);
        w->stats->records++;
    } else {
        w->stats->damaged++;
    }
    if (w->each)
        w->each(&r, w->user);
    free(e.name);
    free(e.shape);
}

timber_status timber_cache_inspect(const char *path,
                                   void (*each)(const timber_cache_record *,
                                                void *),
                                   void *user, timber_cache_stats *stats,
                                   timber_error *err)
{
    memset(stats, 0, sizeof *stats);
    tb_error_clear(err);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* never wait */
    if (fd < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s", path);
    struct stat sb;
    timber_status st = TIMBER_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = tb_fail(err, TIMBER_ERR_IO, "%s: not a regular file", path);
        goto out;
    }
    header hd;
    st = check_header(fd, path, &hd, err);
    if (st)
        goto out;
    stats->format_version = hd.version;
    stats->fingerprint = hd.fingerprint;
    stats->file_size = (uint64_t)sb.st_size;
    walk_ctx w = {each, user, stats};
    uint64_t end = walk(fd, (uint64_t)sb.st_size, info_cb, &w, NULL);
    stats->trailing_bytes = (uint64_t)sb.st_size - end;
    if (stats->damaged && end == (uint64_t)sb.st_size)
        stats->trailing_bytes = 0;
out:
    close(fd);
    return st;
}
