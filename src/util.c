/*
 * util.c — error recording, checked allocation and small string helpers
 * shared by every module of libtimber (see util.h).
 */
#include "util.h"

#include "tempfile.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void vrecord(timber_error *err, timber_status status, const char *fmt,
                    va_list ap)
{
    if (!err)
        return;
    err->status = status;
    char raw[sizeof err->message];
    vsnprintf(raw, sizeof raw, fmt, ap);
    /* Messages are one line by contract, and safe to print: a control
     * character a file name or a tensor name smuggled in (a newline, an
     * escape sequence) is written \xNN. */
    size_t at = 0;
    for (const unsigned char *p = (const unsigned char *)raw;
         *p && at + 5 < sizeof err->message; p++) {
        if (*p < 0x20 || *p == 0x7f)
            at += (size_t)snprintf(err->message + at,
                                   sizeof err->message - at, "\\x%02x", *p);
        else
            err->message[at++] = (char)*p;
    }
    err->message[at] = '\0';
}

timber_status tb_fail(timber_error *err, timber_status status,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, status, fmt, ap);
    va_end(ap);
    return status;
}

timber_status tb_fail_errno(timber_error *err, timber_status status,
                            int errno_value, const char *fmt, ...)
{
    if (!err)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vrecord(err, status, fmt, ap);
    va_end(ap);
    size_t len = strlen(err->message);
    snprintf(err->message + len, sizeof err->message - len, ": %s",
             strerror(errno_value));
    return status;
}

double tb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tb_error_clear(timber_error *err)
{
    if (err) {
        err->status = TIMBER_OK;
        err->message[0] = '\0';
    }
}

void *tb_alloc_array(size_t n, size_t size)
{
    size_t bytes;
    if (!tb_mul_size(n, size, &bytes))
        return NULL;
    return malloc(bytes ? bytes : 1);
}

void *tb_calloc_array(size_t n, size_t size)
{
    size_t bytes;
    if (!tb_mul_size(n, size, &bytes))
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

char *tb_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy)
        memcpy(copy, s, len);
    return copy;
}

char *tb_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t at = a;
    if (a > 0 && dir[a - 1] != '/')
        p[at++] = '/';
    memcpy(p + at, name, b + 1);
    return p;
}

void tb_format_double(char *buf, size_t bufsize, double v)
{
    /* Also keeps gcc 12's -Wformat-truncation quiet under
     * -fsanitize=undefined, where it imagines a null buf. */
    if (!buf || bufsize == 0)
        return;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, bufsize, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

void tb_format_shape(char *buf, size_t bufsize, size_t ndim,
                     const uint64_t *shape)
{
    size_t at = 0;
    if (bufsize == 0)
        return;
    buf[0] = '\0';
#define APPEND(...)                                                        \
    do {                                                                   \
        if (at < bufsize) {                                                \
            int n_ = snprintf(buf + at, bufsize - at, __VA_ARGS__);        \
            at = n_ < 0 ? bufsize : at + (size_t)n_;                       \
        }                                                                  \
    } while (0)
    APPEND("[");
    for (size_t i = 0; i < ndim; i++)
        APPEND("%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    APPEND("]");
#undef APPEND
}

static int buf_reserve(tb_buf *b, size_t more)
{
    if (b->failed)
        return 0;
    if (b->len + more + 1 <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *g = realloc(b->data, cap);
    if (!g) {
        b->failed = 1;
        return 0;
    }
    b->data = g;
    b->cap = cap;
    return 1;
}

int tb_buf_puts(tb_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!buf_reserve(b, n))
        return 0;
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
    return 1;
}

int tb_buf_putc(tb_buf *b, char c)
{
    if (!buf_reserve(b, 1))
        return 0;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 1;
}

int tb_buf_printf(tb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) {
        b->failed = 1;
        return 0;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 1;
}

/* A JSON string as Python's json.dumps writes it (ensure_ascii): \" \\
 * \n \r \t \b \f, other control characters and everything beyond ASCII
 * as \uXXXX (UTF-16 surrogate pairs above U+FFFF).  Bytes that are not
 * UTF-8 are written as \u00XX of the byte.  Also a valid YAML
 * double-quoted scalar (the model card's front matter). */
int tb_buf_json_string(tb_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int ok = tb_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    while (ok && *p) {
        unsigned c = *p;
        size_t n = 1;
        if (c >= 0x80) {
            unsigned need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
            unsigned cp = c & (0x3fu >> need);
            size_t k = 1;
            for (; need && k <= need && (p[k] & 0xc0) == 0x80; k++)
                cp = (cp << 6) | (p[k] & 0x3fu);
            if (need && k == need + 1 && cp <= 0x10ffff) {
                c = cp;
                n = k;
            }
        }
        char esc[16];
        const char *out = NULL;
        switch (c) {
        case '"': out = "\\\""; break;
        case '\\': out = "\\\\"; break;
        case '\n': out = "\\n"; break;
        case '\r': out = "\\r"; break;
        case '\t': out = "\\t"; break;
        case '\b': out = "\\b"; break;
        case '\f': out = "\\f"; break;
        default: break;
        }
        if (!out && (c < 0x20 || c >= 0x7f)) {
            unsigned u[2] = {c, 0};
            int nu = 1;
            if (c > 0xffff) {
                u[0] = 0xd800 + ((c - 0x10000) >> 10);
                u[1] = 0xdc00 + ((c - 0x10000) & 0x3ff);
                nu = 2;
            }
            char *e = esc;
            for (int q = 0; q < nu; q++) {
                *e++ = '\\';
                *e++ = 'u';
                for (int sh = 12; sh >= 0; sh -= 4)
                    *e++ = hex[(u[q] >> sh) & 0xf];
            }
            *e = '\0';
            out = c == 0x7f ? NULL : esc;
        }
        ok = out ? tb_buf_puts(b, out) : tb_buf_putc(b, (char)c);
        p += n;
    }
    return ok && tb_buf_putc(b, '"');
}

/* ---------------------------------------------------- file-system helpers */
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

int tb_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t n = pwrite(fd, p, chunk, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = ENOSPC;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

char *tb_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return tb_strdup(".");
    if (slash == path)
        return tb_strdup("/");
    size_t len = (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

const char *tb_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int tb_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int tb_fsync_parent_dir(const char *path)
{
    char *dir = tb_dirname(path);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int rc = tb_fsync_dir(dir);
    int saved = errno;
    free(dir);
    errno = saved;
    return rc;
}

/* ------------------------------------------------ version and statuses */

const char *timber_version(void) { return TIMBER_VERSION_STRING; }

const char *timber_strerror(timber_status status)
{
    static const char *const text[TIMBER_STATUS_COUNT] = {
        [TIMBER_OK] = "success",
        [TIMBER_ERR_NOMEM] = "out of memory",
        [TIMBER_ERR_IO] = "input/output error",
        [TIMBER_ERR_FORMAT] = "malformed safetensors file",
        [TIMBER_ERR_INDEX] = "inconsistent checkpoint directory",
        [TIMBER_ERR_INVALID] = "invalid argument",
        [TIMBER_ERR_NONFINITE] = "NaN or Inf in a tensor",
        [TIMBER_ERR_SHAPE] = "tensor shapes do not match",
        [TIMBER_ERR_EXISTS] = "output already exists",
        [TIMBER_ERR_NUMERIC] = "numerical routine failed",
        [TIMBER_ERR_INTERRUPTED] = "interrupted",
        [TIMBER_ERR_CACHE] = "unusable cache file",
        [TIMBER_ERR_OPTION] = "invalid option value",
        [TIMBER_ERR_INCOMPLETE] = "distributed run incomplete",
    };
    if ((unsigned)status >= TIMBER_STATUS_COUNT)
        return "unknown status";
    return text[status];
}

timber_status tb_write_file_atomic(const char *path, const void *data,
                                   size_t len, timber_error *err)
{
    tb_temp t;
    timber_status st = tb_temp_create(&t, path, TB_TEMP_FILE, err);
    if (st)
        return st;
    if (tb_pwrite_all(t.fd, data, len, 0) != 0)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                           t.path);
    if (!st)
        st = tb_temp_publish(&t, TB_PUBLISH_REPLACE, err);
    tb_temp_end(&t);
    return st;
}

/* Reads a whole small file into a NUL-terminated buffer. */
timber_status tb_read_small_file(const char *path, size_t limit, char **out,
                                 size_t *len, timber_error *err)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO must be refused below, not waited on. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        struct stat lb; /* ENOENT on a name that exists: a dangling link */
        int dangling = e == ENOENT && lstat(path, &lb) == 0 &&
                       S_ISLNK(lb.st_mode);
        return tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot open%s", path,
                             dangling ? " (a dangling symbolic link)" : "");
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return tb_fail(err, TIMBER_ERR_IO, "%s: not a readable regular file",
                       path);
    }
    if ((uint64_t)sb.st_size > limit) {
        close(fd);
        return tb_fail(err, TIMBER_ERR_INDEX,
                       "%s: %llu bytes, larger than the %zu-byte limit", path,
                       (unsigned long long)sb.st_size, limit);
    }
    size_t size = (size_t)sb.st_size;
    char *buf = malloc(size + 1);
    if (!buf) {
        close(fd);
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot read",
                                 path);
        }
        got += (size_t)n;
    }
    close(fd);
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return TIMBER_OK;
}
/* ------------------------------------------- temporaries, for the CLI */

struct timber_temp {
    tb_temp t;
};

timber_status timber_write_file(const char *path, const void *data,
                                size_t len, timber_error *err)
{
    tb_error_clear(err);
    return tb_write_file_atomic(path, data, len, err);
}

timber_status timber_temp_create(const char *final_path, int directory,
                                 timber_temp **out, timber_error *err)
{
    tb_error_clear(err);
    *out = NULL;
    timber_temp *t = calloc(1, sizeof *t);
    if (!t)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    timber_status st = tb_temp_create(
        &t->t, final_path, directory ? TB_TEMP_DIR : TB_TEMP_FILE, err);
    if (st) {
        free(t);
        return st;
    }
    *out = t;
    return TIMBER_OK;
}

const char *timber_temp_path(const timber_temp *t) { return t->t.path; }

timber_status timber_temp_publish(timber_temp *t, timber_error *err)
{
    tb_error_clear(err);
    return tb_temp_publish(&t->t, TB_PUBLISH_REPLACE, err);
}

void timber_temp_free(timber_temp *t)
{
    if (!t)
        return;
    tb_temp_end(&t->t);
    free(t);
}
