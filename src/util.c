/*
 * util.c — error recording, checked allocation and small string helpers
 * shared by every module of libtimber (see util.h).
 */
#include "util.h"

#include "tempfile.h"

#include <errno.h>
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

/* ---------------------------------------------------- file-system helpers */
#include <fcntl.h>
#include <unistd.h>

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
