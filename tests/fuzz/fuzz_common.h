/*
 * fuzz_common.h — what the fuzz targets share: an assertion that stops
 * the fuzzer (abort, so libFuzzer and the replay driver both report the
 * input), the one-line message contract, and a scratch directory.
 */
#ifndef TIMBER_FUZZ_COMMON_H
#define TIMBER_FUZZ_COMMON_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timber.h"

#define FUZZ_ASSERT(cond)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* An error message: non-empty, one line, naming `what` when given. */
static inline void fuzz_check_message(const timber_error *err,
                                      const char *what)
{
    FUZZ_ASSERT(err->message[0] != '\0');
    FUZZ_ASSERT(strchr(err->message, '\n') == NULL);
    if (what && !strstr(err->message, what)) {
        fprintf(stderr, "message does not name %s: %s\n", what,
                err->message);
        abort();
    }
}

/* Keeps a value alive so reads of it are not optimised away. */
extern volatile unsigned fuzz_sink_value;
volatile unsigned fuzz_sink_value;
static inline void fuzz_sink(unsigned v)
{
    fuzz_sink_value = fuzz_sink_value + v;
}

static char fuzz_scratch_dir[512];

static inline int fuzz_rm_entry(const char *path, const struct stat *sb,
                                int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void fuzz_scratch_cleanup(void)
{
    if (fuzz_scratch_dir[0])
        nftw(fuzz_scratch_dir, fuzz_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A private scratch directory for the whole process, removed at exit:
 * under $TIMBER_FUZZ_SCRATCH when set (scripts/fuzz.sh points it at a
 * directory it removes itself, as a crash skips atexit), else on
 * /dev/shm when writable (fsync costs nothing there), $TMPDIR or /tmp. */
static inline const char *fuzz_scratch(void)
{
    char *dir = fuzz_scratch_dir;
    if (dir[0])
        return dir;
    const char *roots[4] = {getenv("TIMBER_FUZZ_SCRATCH"), "/dev/shm",
                            getenv("TMPDIR"), "/tmp"};
    for (int i = 0; i < 4; i++) {
        if (!roots[i] || !roots[i][0] || access(roots[i], W_OK) != 0)
            continue;
        snprintf(dir, sizeof fuzz_scratch_dir, "%s/timber-fuzz-XXXXXX",
                 roots[i]);
        if (mkdtemp(dir)) {
            atexit(fuzz_scratch_cleanup);
            return dir;
        }
    }
    fprintf(stderr, "fuzz: cannot create a scratch directory: %s\n",
            strerror(errno));
    abort();
}

/* Writes len bytes to path (replacing it); aborts on failure. */
static inline void fuzz_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL);
    FUZZ_ASSERT(len == 0 || fwrite(data, 1, len, f) == len);
    FUZZ_ASSERT(fclose(f) == 0);
}

#endif
