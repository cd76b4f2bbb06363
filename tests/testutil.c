/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lapacke.h>
#include <math.h>

static int passed, failed;
static char *tempdirs[64];
static int ntempdirs;

int tu_check(int ok, const char *file, int line, const char *expr,
             const char *fmt, ...)
{
    if (ok) {
        passed++;
        return 1;
    }
    failed++;
    fprintf(stderr, "%s:%d: FAIL: %s", file, line, expr);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    return 0;
}

int tu_check_error(const char *file, int line, const char *what,
                   timber_status got, const timber_error *err,
                   timber_status status, const char *const *substrings)
{
    if (got != status)
        return tu_check(0, file, line, what,
                        "expected status %d (%s), got %d: \"%s\"",
                        (int)status, timber_strerror(status), (int)got,
                        got ? err->message : "");
    if (err->status != status)
        return tu_check(0, file, line, what,
                        "err->status %d differs from the returned %d",
                        (int)err->status, (int)got);
    if (strchr(err->message, '\n'))
        return tu_check(0, file, line, what, "message has a newline: \"%s\"",
                        err->message);
    for (const char *const *s = substrings; *s; s++)
        if (!strstr(err->message, *s))
            return tu_check(0, file, line, what,
                            "message \"%s\" lacks \"%s\"", err->message, *s);
    return tu_check(1, file, line, what, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int type,
                    struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void tu_rmtree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_report(void)
{
    int keep = getenv("TIMBER_TEST_KEEP") != NULL;
    for (int i = 0; i < ntempdirs; i++) {
        if (keep)
            fprintf(stderr, "kept %s\n", tempdirs[i]);
        else
            tu_rmtree(tempdirs[i]);
        free(tempdirs[i]);
    }
    ntempdirs = 0;
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

const char *tu_tempdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t size = strlen(base) + strlen(tag) + 32;
    char *p = malloc(size);
    if (!p || ntempdirs == (int)(sizeof tempdirs / sizeof *tempdirs)) {
        fprintf(stderr, "tu_tempdir: out of slots\n");
        exit(99);
    }
    snprintf(p, size, "%s/timber-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        fprintf(stderr, "mkdtemp %s: %s\n", p, strerror(errno));
        exit(99);
    }
    tempdirs[ntempdirs++] = p;
    return p;
}

const char *tu_path(const char *dir, const char *name)
{
    static char pool[16][4096];
    static int next;
    char *b = pool[next++ % 16];
    snprintf(b, sizeof pool[0], "%s/%s", dir, name);
    return b;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
    /* A new file rather than a truncated one: ext4 flushes a file that
     * was truncated and rewritten when it is closed (auto_da_alloc), which
     * makes rewriting one fixture thousands of times slow. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = len && fwrite(data, 1, len, f) != len ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int tu_write_shard_raw(const char *path, uint64_t hlen_field,
                       const void *header, size_t hlen, const void *data,
                       size_t dlen)
{
    size_t total = 8 + hlen + dlen;
    unsigned char *buf = calloc(total ? total : 1, 1);
    if (!buf)
        return -1;
    for (int b = 0; b < 8; b++)
        buf[b] = (unsigned char)(hlen_field >> (8 * b));
    if (hlen)
        memcpy(buf + 8, header, hlen);
    if (data && dlen)
        memcpy(buf + 8 + hlen, data, dlen);
    int rc = tu_write_file(path, buf, total);
    free(buf);
    return rc;
}

int tu_write_shard(const char *path, const char *header, size_t dlen)
{
    size_t hlen = strlen(header);
    return tu_write_shard_raw(path, hlen, header, hlen, NULL, dlen);
}

unsigned char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        unsigned char *g = realloc(buf, 2 * cap + 1);
        if (!g) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = g;
        cap *= 2;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

int tu_count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

uint64_t tu_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double tu_gauss(uint64_t *state)
{
    double u1 = ((double)(tu_rand(state) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(tu_rand(state) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double *tu_random_orthonormal(uint64_t *state, size_t n, size_t p)
{
    double *a = malloc(n * p * sizeof *a), *tau = malloc(p * sizeof *tau);
    for (size_t i = 0; i < n * p; i++)
        a[i] = tu_gauss(state);
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)p, a,
                   (lapack_int)p, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)p,
                   (lapack_int)p, a, (lapack_int)p, tau);
    free(tau);
    return a;
}

int tu_check_ok(const char *file, int line, const char *what,
                timber_status got, const timber_error *err)
{
    return tu_check(got == TIMBER_OK, file, line, what, "status %d: %s",
                    (int)got, err ? err->message : "");
}
