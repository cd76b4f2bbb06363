/*
 * outdir.c — atomic publication of an output directory (see outdir.h):
 * the temporary beside OUT, refusals that protect the inputs, the rename
 * (or exchange) into place, and the sweeping of killed runs' leftovers.
 */
#include "outdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tempfile.h"
#include "util.h"


timber_status tb_copy_file(const char *src, const char *dst,
                           timber_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             src);
    /* Through a temporary and a rename, replacing: a finalize run again
     * after a kill finds the copies of the first try and makes them
     * again, byte for byte the same. */
    tb_temp t;
    timber_status st = tb_temp_create(&t, dst, TB_TEMP_FILE, err);
    if (st) {
        close(in);
        return st;
    }
    char *buf = malloc(1 << 20);
    uint64_t off = 0;
    if (!buf)
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    while (!st) {
        ssize_t n = read(in, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot read",
                               src);
            break;
        }
        if (n == 0)
            break;
        if (tb_pwrite_all(t.fd, buf, (size_t)n, off) != 0)
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                               dst);
        off += (uint64_t)n;
    }
    if (!st)
        st = tb_temp_publish(&t, TB_PUBLISH_REPLACE, err);
    tb_temp_end(&t);
    close(in);
    free(buf);
    return st;
}

timber_status tb_outdir_check(const char *out, int force, timber_error *err)
{
    const char *name = tb_basename(out);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: not a usable output directory name", out);
    struct stat sb;
    if (lstat(out, &sb) == 0 && !force)
        return tb_fail(err, TIMBER_ERR_EXISTS,
                       "%s already exists (use --force to replace it)",
                       out);
    return TIMBER_OK;
}

timber_status tb_outdir_begin(tb_outdir *d, const char *out, int force,
                              timber_error *err)
{
    memset(d, 0, sizeof *d);
    d->force = force;
    d->out = tb_strdup(out);
    if (!d->out)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    /* Sweeps killed runs' temporaries of OUT (by their free lock) and
     * holds this one's lock until tb_outdir_end. */
    timber_status st = tb_temp_create(&d->temp, out, TB_TEMP_DIR, err);
    if (st)
        return st;
    d->tmp = d->temp.path;
    return TIMBER_OK;
}

timber_status tb_outdir_adopt(tb_outdir *d, const char *out, const char *dir,
                              int force, timber_error *err)
{
    memset(d, 0, sizeof *d);
    d->temp.fd = -1;
    d->force = force;
    d->out = tb_strdup(out);
    d->temp.path = tb_strdup(dir);
    d->temp.final = tb_strdup(out);
    d->temp.flags = TB_TEMP_DIR | TB_TEMP_KEEP;
    if (!d->out || !d->temp.path || !d->temp.final) {
        tb_outdir_end(d);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    d->tmp = d->temp.path;
    return TIMBER_OK;
}

void tb_outdir_end(tb_outdir *d)
{
    tb_temp_end(&d->temp);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* Renames the finished temporary directory to OUT.  With --force an
 * existing OUT is swapped out atomically (RENAME_EXCHANGE) and removed
 * only after the new one is in place. */
timber_status tb_outdir_publish(tb_outdir *d, timber_error *err)
{
    struct stat sb;
    int exists = lstat(d->out, &sb) == 0;
    return tb_temp_publish(&d->temp,
                           exists && d->force ? TB_PUBLISH_EXCHANGE
                                              : TB_PUBLISH_NOREPLACE,
                           err);
}
