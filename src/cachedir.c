/*
 * cachedir.c — the SVD cache as refine and erank use it (tb_cache in
 * cache.h): one cache file, or a cache directory that many processes
 * share, such as the parts of one distributed run on different hosts.
 * Also `timber cache info|verify DIR` (timber_cache_inspect_dir).
 *
 * Why it is built this way: a shared file system (NFS) gives no lock that
 * works across hosts and no atomic append, but it does give an exclusive
 * create.  So each process appends only to a file of its own, created
 * with O_EXCL under a name no other process picks
 * (<fingerprint>-v<format>-<host>-<pid>-<random>.timber-cache) when its
 * first record is ready, and reads every file of its pair that exists
 * when it opens the directory.  Each file is an ordinary cache file
 * (cache.c, the one codec); a record carries its full key and CRC, so a
 * record found in any file serves, and a damaged one, or the cut tail of
 * a killed writer, costs only its recomputation.  This layer knows file
 * names and which files to read; cache.c knows what is inside one.
 * Format: docs/cache-format.md#cache-directories.
 */
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tempfile.h"
#include "util.h"

#define SUFFIX ".timber-cache"

struct tb_cache {
    char *path;           /* as given */
    int is_dir, readonly;
    uint64_t fingerprint;
    tb_cache_file **files; /* read only: a directory's files at opening
                            * (a file opened read-only is files[0]) */
    size_t nfiles;
    tb_cache_file *own;   /* appended to: the file, or the directory's own
                           * (NULL until its first record) */
    pthread_mutex_t lock; /* own */
    char **warnings;
    size_t nwarnings;
};

int tb_cache_is_dir(const char *path)
{
    size_t n = strlen(path);
    struct stat sb;
    return (n > 0 && path[n - 1] == '/') ||
           (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

int timber_cache_is_dir(const char *path) { return tb_cache_is_dir(path); }

/* ------------------------------------------------- the directory's files */

/* A file of a cache directory is named "<16 hex digits>-v<N>-<rest>"
 * ending in SUFFIX, and not hidden; 1 with its fingerprint and format
 * version. */
static int member_name(const char *name, uint64_t *fp, unsigned *version)
{
    size_t n = strlen(name), sl = strlen(SUFFIX);
    if (n <= 18 + sl || strcmp(name + n - sl, SUFFIX) != 0)
        return 0;
    uint64_t h = 0;
    for (int i = 0; i < 16; i++) {
        char ch = name[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                         : -1;
        if (d < 0)
            return 0;
        h = h << 4 | (uint64_t)d;
    }
    if (name[16] != '-' || name[17] != 'v')
        return 0;
    unsigned v = 0;
    size_t i = 18;
    for (; name[i] >= '0' && name[i] <= '9' && v < 100000; i++)
        v = v * 10 + (unsigned)(name[i] - '0');
    if (i == 18 || name[i] != '-')
        return 0;
    *fp = h;
    *version = v;
    return 1;
}

typedef struct member {
    char *path;
    uint64_t fp;
    unsigned version;
} member;

static int by_path(const void *a, const void *b)
{
    return strcmp(((const member *)a)->path, ((const member *)b)->path);
}

static void free_members(member *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].path);
    free(m);
}

/* The cache files in dir, sorted by name. */
static timber_status list_members(const char *dir, member **out, size_t *n,
                                  timber_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot read the cache directory", dir);
    member *m = NULL;
    size_t cap = 0;
    timber_status st = TIMBER_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        member one;
        if (!member_name(de->d_name, &one.fp, &one.version))
            continue;
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            member *g = realloc(m, nc * sizeof *g);
            if (!g) {
                st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
                break;
            }
            m = g;
            cap = nc;
        }
        if (!(one.path = tb_path_join(dir, de->d_name))) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            break;
        }
        m[(*n)++] = one;
    }
    closedir(d);
    if (st) {
        free_members(m, *n);
        *n = 0;
        return st;
    }
    if (*n)
        qsort(m, *n, sizeof *m, by_path);
    *out = m;
    return TIMBER_OK;
}

/* What a file of the directory is before its records are read: OK (go
 * on and read it), or why it is not read, in msg. */
static timber_cache_file_state classify(const member *m, char *msg,
                                        size_t size)
{
    struct stat sb;
    msg[0] = '\0';
    if (m->version != TB_CACHE_VERSION) {
        snprintf(msg, size,
                 "%s: cache format version %u, this timber reads version %u "
                 "(not read; delete it to reclaim the space)",
                 m->path, m->version, TB_CACHE_VERSION);
        return TIMBER_CACHE_FILE_OTHER_FORMAT;
    }
    if (stat(m->path, &sb) != 0) {
        snprintf(msg, size, "%s: %s", m->path, strerror(errno));
        return TIMBER_CACHE_FILE_UNREADABLE;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(msg, size, "%s: not a regular file, so not a cache",
                 m->path);
        return TIMBER_CACHE_FILE_DAMAGED;
    }
    if (sb.st_size == 0) {
        snprintf(msg, size, "%s: empty (being created, or its writer died "
                            "first)",
                 m->path);
        return TIMBER_CACHE_FILE_EMPTY;
    }
    return TIMBER_CACHE_FILE_OK;
}

/* After a failed open or inspection: TIMBER_ERR_IO is a file that could
 * not be opened, anything else one whose header is not this format's. */
static timber_cache_file_state failed_state(timber_status st)
{
    return st == TIMBER_ERR_IO ? TIMBER_CACHE_FILE_UNREADABLE
                               : TIMBER_CACHE_FILE_DAMAGED;
}

/* ------------------------------------------------------------- opening */

static int warn(tb_cache *c, const char *msg)
{
    char **g = realloc(c->warnings, (c->nwarnings + 1) * sizeof *g);
    if (!g)
        return -1;
    c->warnings = g;
    if (!(g[c->nwarnings] = tb_strdup(msg)))
        return -1;
    c->nwarnings++;
    return 0;
}

/* How many files of a directory keep their descriptor open; lookups in
 * the others open the file again (a run beside a directory of thousands
 * of files must not run out of descriptors). */
static size_t fd_budget(void)
{
    struct rlimit rl;
    size_t keep = 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < keep)
        keep = (size_t)(rl.rlim_cur / 4);
    return keep;
}

/* Reads the directory's files of the pair (all of them when fingerprint
 * is 0). */
static timber_status read_dir(tb_cache *c, timber_error *err)
{
    member *m;
    size_t n;
    timber_status st = list_members(c->path, &m, &n, err);
    if (st)
        return st;
    c->files = tb_calloc_array(n ? n : 1, sizeof *c->files);
    if (!c->files) {
        free_members(m, n);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    size_t keep = fd_budget();
    for (size_t i = 0; i < n && !st; i++) {
        if (c->fingerprint && m[i].fp != c->fingerprint)
            continue; /* another pair's: never opened */
        char msg[1200];
        timber_cache_file_state s = classify(&m[i], msg, sizeof msg);
        tb_cache_file *f = NULL;
        if (s == TIMBER_CACHE_FILE_OK) {
            timber_error e;
            timber_status fs = tb_cache_file_open(m[i].path, 0, TB_CACHE_READ,
                                                  &f, &e);
            if (fs == TIMBER_ERR_NOMEM)
                st = tb_fail(err, fs, "%s", e.message);
            else if (fs) {
                s = failed_state(fs);
                snprintf(msg, sizeof msg, "%s", e.message);
            }
        }
        if (f) {
            if (c->nfiles >= keep)
                tb_cache_file_drop_fd(f);
            c->files[c->nfiles++] = f;
        } else if (!st && (s == TIMBER_CACHE_FILE_UNREADABLE ||
                           s == TIMBER_CACHE_FILE_DAMAGED)) {
            char line[1300];
            snprintf(line, sizeof line, "%s; that file is skipped", msg);
            if (warn(c, line) != 0)
                st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        }
    }
    free_members(m, n);
    return st;
}

static timber_status open_dir(tb_cache *c, int readonly, timber_error *err)
{
    size_t n = strlen(c->path);
    if (!readonly && n && c->path[n - 1] == '/' && mkdir(c->path, 0777) != 0 &&
        errno != EEXIST)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot create the cache directory",
                             c->path);
    struct stat sb;
    if (stat(c->path, &sb) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot open the cache directory", c->path);
    if (!S_ISDIR(sb.st_mode))
        return tb_fail(err, TIMBER_ERR_CACHE,
                       "%s: not a directory, so not a cache directory",
                       c->path);
    /* Found now, not after the first tensor's work. */
    if (!readonly && access(c->path, W_OK | X_OK) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot write in the cache directory",
                             c->path);
    return read_dir(c, err);
}

static timber_status open_any(const char *path, uint64_t fingerprint,
                              int readonly, tb_cache **out,
                              timber_error *err)
{
    *out = NULL;
    tb_cache *c = calloc(1, sizeof *c);
    if (!c)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->fingerprint = fingerprint;
    c->readonly = readonly;
    c->path = tb_strdup(path);
    timber_status st = TIMBER_OK;
    if (!c->path) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    } else if ((c->is_dir = tb_cache_is_dir(path))) {
        st = open_dir(c, readonly, err);
    } else if (readonly) {
        c->files = calloc(1, sizeof *c->files);
        st = c->files ? tb_cache_file_open(path, fingerprint, TB_CACHE_READ,
                                           &c->files[0], err)
                      : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        c->nfiles = !st;
    } else {
        st = tb_cache_file_open(path, fingerprint, TB_CACHE_RW, &c->own,
                                err);
    }
    if (st) {
        tb_cache_close(c);
        return st;
    }
    *out = c;
    return TIMBER_OK;
}

timber_status tb_cache_open(const char *path, uint64_t fingerprint,
                            tb_cache **out, timber_error *err)
{
    return open_any(path, fingerprint, 0, out, err);
}

timber_status tb_cache_open_read(const char *path, uint64_t fingerprint,
                                 tb_cache **out, timber_error *err)
{
    return open_any(path, fingerprint, 1, out, err);
}

void tb_cache_warnings(const tb_cache *c,
                       void (*fn)(const char *message, void *user),
                       void *user)
{
    for (size_t i = 0; c && fn && i < c->nwarnings; i++)
        fn(c->warnings[i], user);
}

void tb_cache_close(tb_cache *c)
{
    if (!c)
        return;
    tb_cache_file_close(c->own);
    for (size_t i = 0; i < c->nfiles; i++)
        tb_cache_file_close(c->files[i]);
    free(c->files);
    for (size_t i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    free(c->warnings);
    free(c->path);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* ------------------------------------------------ lookups and appends */

static tb_cache_file *own_file(tb_cache *c)
{
    pthread_mutex_lock(&c->lock);
    tb_cache_file *f = c->own;
    pthread_mutex_unlock(&c->lock);
    return f;
}

/* Any file's matching record serves (each is checked by its CRC and full
 * key); the own file's, the newest, first. */
static int get_any(tb_cache *c, const tb_cache_key *key, uint64_t rows,
                   uint64_t cols, tb_spectrum *sp, int any_crc,
                   uint32_t crc[2])
{
    tb_cache_file *own = own_file(c);
    if (own && tb_cache_file_get(own, key, rows, cols, sp, any_crc, crc))
        return 1;
    for (size_t i = c->nfiles; i-- > 0;)
        if (tb_cache_file_get(c->files[i], key, rows, cols, sp, any_crc,
                              crc))
            return 1;
    return 0;
}

int tb_cache_get(tb_cache *c, const tb_cache_key *key, uint64_t rows,
                 uint64_t cols, tb_spectrum *sp)
{
    return get_any(c, key, rows, cols, sp, 0, NULL);
}

int tb_cache_get_latest(tb_cache *c, const tb_cache_key *key, uint64_t rows,
                        uint64_t cols, tb_spectrum *sp, uint32_t crc[2])
{
    return get_any(c, key, rows, cols, sp, 1, crc);
}

/* The host's name as a file-name part: letters, digits, '.', '_' and
 * '-' kept, anything else '_', at most 64 bytes. */
static void host_part(char *buf, size_t size)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    size_t j = 0;
    for (size_t i = 0; host[i] && j + 1 < size && j < 64; i++) {
        char ch = host[i];
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                   ch == '-';
        buf[j++] = keep ? ch : '_';
    }
    buf[j] = '\0';
    if (j == 0)
        snprintf(buf, size, "host");
}

/* Creates the directory's own file (with c->lock held). */
static timber_status create_own(tb_cache *c, timber_error *err)
{
    char host[80];
    host_part(host, sizeof host);
    timber_status st = TIMBER_ERR_EXISTS;
    for (int tries = 0; tries < 8 && st == TIMBER_ERR_EXISTS; tries++) {
        char name[200];
        snprintf(name, sizeof name, "%016llx-v%u-%s-%ld-%016llx" SUFFIX,
                 (unsigned long long)c->fingerprint, TB_CACHE_VERSION, host,
                 (long)getpid(), (unsigned long long)tb_random64());
        char *p = tb_path_join(c->path, name);
        if (!p)
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        st = tb_cache_file_open(p, c->fingerprint, TB_CACHE_NEW, &c->own,
                                err);
        free(p);
    }
    /* The new name survives a power cut with the records synced at
     * close. */
    if (!st && tb_fsync_dir(c->path) != 0) {
        /* its records are still there for this run; the next opening
         * finds them or not */
    }
    return st;
}

timber_status tb_cache_put(tb_cache *c, const tb_cache_key *key,
                           uint64_t rows, uint64_t cols,
                           const tb_spectrum *sp, timber_error *err)
{
    timber_status st = TIMBER_OK;
    pthread_mutex_lock(&c->lock);
    if (!c->own && c->is_dir && !c->readonly)
        st = create_own(c, err);
    tb_cache_file *f = c->own;
    pthread_mutex_unlock(&c->lock);
    if (st)
        return st;
    if (!f)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: the cache was opened for reading only", c->path);
    return tb_cache_file_put(f, key, rows, cols, sp, err);
}

uint64_t tb_cache_size(const tb_cache *c)
{
    uint64_t n = 0;
    tb_cache_file *own = own_file((tb_cache *)c);
    if (own)
        n += tb_cache_file_size(own);
    for (size_t i = 0; i < c->nfiles; i++)
        n += tb_cache_file_size(c->files[i]);
    return n;
}

const char *tb_cache_path(const tb_cache *c) { return c->path; }

/* ------------------------------------------------ info and verify */

timber_status timber_cache_inspect_dir(
    const char *dir, void (*each_file)(const timber_cache_file *f, void *user),
    void (*each_record)(const timber_cache_record *r, void *user), void *user,
    timber_error *err)
{
    tb_error_clear(err);
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s", dir);
    if (!S_ISDIR(sb.st_mode))
        return tb_fail(err, TIMBER_ERR_IO, "%s: not a directory", dir);
    member *m;
    size_t n;
    timber_status st = list_members(dir, &m, &n, err);
    for (size_t i = 0; i < n && !st; i++) {
        char msg[1200];
        timber_cache_file f = {m[i].path, TIMBER_CACHE_FILE_OK, msg, {0}};
        f.state = classify(&m[i], msg, sizeof msg);
        if (f.state == TIMBER_CACHE_FILE_OK) {
            timber_error e;
            timber_status fs = timber_cache_inspect(m[i].path, each_record,
                                                    user, &f.stats, &e);
            if (fs == TIMBER_ERR_NOMEM)
                st = tb_fail(err, fs, "%s", e.message);
            else if (fs) {
                f.state = failed_state(fs);
                snprintf(msg, sizeof msg, "%s", e.message);
            }
        }
        if (!st && each_file)
            each_file(&f, user);
    }
    free_members(m, n);
    return st;
}
