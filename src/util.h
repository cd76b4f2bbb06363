/*
 * util.h — small shared helpers of libtimber: error reporting into a
 * timber_error, overflow-checked size arithmetic, and checked allocation.
 * Every module uses these so that a failure anywhere reads the same way.
 */
#ifndef TIMBER_UTIL_H
#define TIMBER_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "timber.h"

#if defined(__GNUC__)
#define TB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TB_PRINTF(a, b)
#endif

/* Records status and a formatted one-line message in err (if non-NULL) and
 * returns status, so callers can write `return tb_fail(err, ...)`. */
timber_status tb_fail(timber_error *err, timber_status status,
                      const char *fmt, ...) TB_PRINTF(3, 4);

/* Same, appending ": <strerror(errno_value)>". */
timber_status tb_fail_errno(timber_error *err, timber_status status,
                            int errno_value, const char *fmt, ...)
    TB_PRINTF(4, 5);

/* Seconds on the monotonic clock (for durations and ETAs). */
double tb_now(void);

/* Clears err to TIMBER_OK / "". */
void tb_error_clear(timber_error *err);

/* a*b and a+b into *out; return 0 on overflow (leaving *out untouched). */
static inline int tb_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline int tb_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline int tb_mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* malloc/calloc of n*size bytes with the multiplication checked; NULL on
 * overflow or exhaustion. */
void *tb_alloc_array(size_t n, size_t size);
void *tb_calloc_array(size_t n, size_t size);

/* strdup that returns NULL on failure (not POSIX-dependent). */
char *tb_strdup(const char *s);

/* "dir/name" in a new allocation, NULL on failure. */
char *tb_path_join(const char *dir, const char *name);

/* Shortest "%.Ng" (N <= 17) that reads back as exactly v. */
void tb_format_double(char *buf, size_t bufsize, double v);

/* A growing text buffer for files written whole (the index, the model
 * card).  Start from {0}; each call returns 1, or 0 once any allocation
 * failed (and every later call then fails too); free(b.data) at the end.
 * data is NUL-terminated whenever len > 0. */
typedef struct tb_buf {
    char *data;
    size_t len, cap;
    int failed;
} tb_buf;
int tb_buf_puts(tb_buf *b, const char *s);
int tb_buf_putc(tb_buf *b, char c);
int tb_buf_printf(tb_buf *b, const char *fmt, ...) TB_PRINTF(2, 3);
/* s as a quoted JSON string exactly as Python's json.dumps writes it
 * (ensure_ascii); also a valid YAML double-quoted scalar. */
int tb_buf_json_string(tb_buf *b, const char *s);

/* Formats a shape as "[a, b, c]" into buf (always NUL-terminated). */
void tb_format_shape(char *buf, size_t bufsize, size_t ndim,
                     const uint64_t *shape);

#endif /* TIMBER_UTIL_H */

/* ---------------------------------------------------- file-system helpers */
#ifndef TIMBER_UTIL_FS
#define TIMBER_UTIL_FS
#include <sys/types.h>

/* pwrite()s all len bytes at off, retrying on EINTR and short writes; returns
 * 0, or -1 with errno set. */
int tb_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* fsync()s the directory holding path ("." if none); 0 or -1 with errno. */
int tb_fsync_parent_dir(const char *path);

/* fsync()s the directory path itself; 0 or -1 with errno. */
int tb_fsync_dir(const char *path);

/* The directory part of path ("." if none), newly allocated. */
char *tb_dirname(const char *path);
/* Pointer to the last component of path (inside path). */
const char *tb_basename(const char *path);
#endif

/* Writes len bytes to path atomically (a temporary beside it, tempfile.h;
 * fsync, rename, fsync of the directory); on failure nothing appears
 * under path. */
timber_status tb_write_file_atomic(const char *path, const void *data,
                                   size_t len, timber_error *err);

/* Reads a whole regular file of at most limit bytes into a new
 * NUL-terminated buffer (*len bytes, not counting the NUL); a FIFO or
 * anything but a regular file is refused, not waited on.  A file over the
 * limit is TIMBER_ERR_INDEX (the first user was the index reader). */
timber_status tb_read_small_file(const char *path, size_t limit, char **out,
                                 size_t *len, timber_error *err);
