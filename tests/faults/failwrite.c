/*
 * failwrite.c — an LD_PRELOAD shim that simulates a full disk for chosen
 * files, for the fault tests (tests/faults/disk_full.sh).
 *
 *   FAILWRITE_MATCH=substring   files whose path (/proc/self/fd/N) holds
 *                               it are the ones on the "full" disk
 *   FAILWRITE_AFTER=N           bytes those files may receive in total;
 *                               after that write/pwrite/pwrite64/writev/
 *                               copy_file_range into them fail with
 *                               ENOSPC (the write that
 *                               crosses the limit is cut short first, as
 *                               a real file system does)
 *   FAILWRITE_KILL=1            instead of failing, the process kills
 *                               itself with SIGKILL at the first write
 *                               past the limit: a crash half-way through
 *                               writing (tests/dist/slurm_fail.sh)
 *
 * Without FAILWRITE_MATCH the shim passes everything through.  Only the
 * process's own calls through the dynamic symbol table are seen (stdio's
 * internal writes are not), which covers timber's shard, index, file-copy
 * and cache writes: they all go through pwrite, or copy_file_range for a
 * tensor copied verbatim.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static atomic_llong budget = -2; /* -2: not read yet */

static long long limit(void)
{
    long long b = atomic_load(&budget);
    if (b == -2) {
        const char *a = getenv("FAILWRITE_AFTER");
        long long v = a ? atoll(a) : 0;
        long long expect = -2;
        atomic_compare_exchange_strong(&budget, &expect, v < 0 ? 0 : v);
        b = atomic_load(&budget);
    }
    return b;
}

static int on_full_disk(int fd)
{
    const char *pat = getenv("FAILWRITE_MATCH");
    if (!pat || !*pat)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = '\0';
    return strstr(path, pat) != NULL;
}

/* How many of len bytes may be written to fd: len, fewer, or -1 (ENOSPC). */
static ssize_t admit(int fd, size_t len)
{
    if (len == 0 || !on_full_disk(fd))
        return (ssize_t)len;
    long long left = limit(), take;
    do {
        if (left <= 0) {
            const char *kill = getenv("FAILWRITE_KILL");
            if (kill && strcmp(kill, "1") == 0)
                raise(SIGKILL);
            errno = ENOSPC;
            return -1;
        }
        take = (long long)len < left ? (long long)len : left;
    } while (!atomic_compare_exchange_weak(&budget, &left, left - take));
    return (ssize_t)take;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*cfr_fn)(int, loff_t *, int, loff_t *, size_t,
                          unsigned int);

#define REAL(name, type)                                                    \
    static type real_##name;                                                \
    if (!real_##name)                                                       \
        real_##name = (type)dlsym(RTLD_NEXT, #name);

ssize_t write(int fd, const void *buf, size_t len)
{
    REAL(write, write_fn)
    ssize_t n = admit(fd, len);
    return n < 0 ? -1 : real_write(fd, buf, (size_t)n);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    REAL(pwrite, pwrite_fn)
    ssize_t n = admit(fd, len);
    return n < 0 ? -1 : real_pwrite(fd, buf, (size_t)n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    REAL(pwrite64, pwrite_fn)
    ssize_t n = admit(fd, len);
    return n < 0 ? -1 : real_pwrite64(fd, buf, (size_t)n, off);
}

ssize_t copy_file_range(int in, loff_t *in_off, int out, loff_t *out_off,
                        size_t len, unsigned int flags)
{
    REAL(copy_file_range, cfr_fn)
    ssize_t n = admit(out, len);
    return n < 0 ? -1
                 : real_copy_file_range(in, in_off, out, out_off, (size_t)n,
                                        flags);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, writev_fn)
    REAL(write, write_fn)
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    ssize_t n = admit(fd, len);
    if (n < 0)
        return -1;
    if ((size_t)n == len)
        return real_writev(fd, iov, cnt);
    /* Cut short: write the first n bytes only. */
    ssize_t done = 0;
    for (int i = 0; i < cnt && done < n; i++) {
        size_t part = iov[i].iov_len;
        if ((size_t)(n - done) < part)
            part = (size_t)(n - done);
        ssize_t w = real_write(fd, iov[i].iov_base, part);
        if (w < 0)
            return done ? done : -1;
        done += w;
        if ((size_t)w < part)
            break;
    }
    return done;
}
