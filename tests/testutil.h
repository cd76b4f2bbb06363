/*
 * testutil.h — the tiny check/report helper shared by timber's test
 * programs (no framework): CHECK records a pass or a failure with its
 * location, tu_report() prints "N passed, M failed" and gives the exit
 * code.  Also temporary directories and raw file writing for fixtures.
 */
#ifndef TIMBER_TESTUTIL_H
#define TIMBER_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "timber.h"

#if defined(__GNUC__)
#define TU_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TU_PRINTF(a, b)
#endif

/* Records one check; on failure prints file:line, the expression and, if
 * given, a formatted explanation.  Returns ok so callers can branch. */
int tu_check(int ok, const char *file, int line, const char *expr,
             const char *fmt, ...) TU_PRINTF(5, 6);

#define CHECK(cond) tu_check(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECKF(cond, ...)                                                   \
    tu_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Checks that a call failed with `status` and that err's message contains
 * every one of the NULL-terminated substrings.  `what` labels the case. */
int tu_check_error(const char *file, int line, const char *what,
                   timber_status got, const timber_error *err,
                   timber_status status, const char *const *substrings);
#define CHECK_ERROR(what, got, err, status, ...)                            \
    tu_check_error(__FILE__, __LINE__, (what), (got), (err), (status),      \
                   (const char *const[]){__VA_ARGS__, NULL})

/* Checks a call succeeded; prints the error message if not. */
/* `got` is evaluated once, so CHECK_OK("x", call(), &err) is safe. */
int tu_check_ok(const char *file, int line, const char *what,
                timber_status got, const timber_error *err);
#define CHECK_OK(what, got, err)                                            \
    tu_check_ok(__FILE__, __LINE__, (what), (got), (err))

/* Prints "N passed, M failed" (and removes the temporary directories unless
 * TIMBER_TEST_KEEP is set); returns the process exit code. */
int tu_report(void);

/* A fresh directory under $TMPDIR (or /tmp), removed by tu_report(). */
const char *tu_tempdir(const char *tag);

/* "dir/name" in a buffer from a small rotating pool (valid for the next
 * 15 calls); enough for building fixture paths in tests. */
const char *tu_path(const char *dir, const char *name);

/* Writes bytes to a new file at path (any file there is replaced); 0 on
 * success. */
int tu_write_file(const char *path, const void *data, size_t len);
/* A safetensors file: 8-byte little-endian `hlen_field`, `hlen` header
 * bytes, then `dlen` data bytes (zeros if data is NULL). */
int tu_write_shard_raw(const char *path, uint64_t hlen_field,
                       const void *header, size_t hlen, const void *data,
                       size_t dlen);
/* Same with the length field equal to strlen(header). */
int tu_write_shard(const char *path, const char *header, size_t dlen);

/* Reads a whole file into a malloc'ed NUL-terminated buffer (NULL on
 * failure); *len receives its size. */
unsigned char *tu_read_file(const char *path, size_t *len);

/* Number of entries in a directory besides "." and ".." (-1 on error). */
int tu_count_entries(const char *dir);

/* Removes a directory tree (best effort). */
void tu_rmtree(const char *path);

/* Deterministic 64-bit generator (splitmix64). */
uint64_t tu_rand(uint64_t *state);
/* A standard normal deviate from that generator (Box-Muller). */
double tu_gauss(uint64_t *state);
/* An n x p (n >= p) matrix with orthonormal columns, row-major, from the
 * QR factorisation of a Gaussian one (malloc'd). */
double *tu_random_orthonormal(uint64_t *state, size_t n, size_t p);

#endif
