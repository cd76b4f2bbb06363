/*
 * outdir.c — atomic publication of an output directory (see outdir.h):
 * the temporary beside OUT, refusals that protect the inputs, the rename
 * (or exchange) into place, and the sweeping of killed runs' leftovers.
 */
#include "outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"


static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tb_remove_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Temporary directories of runs that were killed (SIGKILL, power loss)
 * are recognised by name and dead pid, and removed. */
static void remove_stale_temps(const char *parent, const char *prefix)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    size_t plen = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(de->d_name + plen, &end, 10);
        if (!end || *end != '\0' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *p = tb_path_join(parent, de->d_name);
        if (p)
            tb_remove_tree(p);
        free(p);
    }
    closedir(d);
}

timber_status tb_copy_file(const char *src, const char *dst,
                               timber_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (out < 0) {
        int e = errno;
        close(in);
        return tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot create", dst);
    }
    timber_status st = TIMBER_OK;
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
        if (tb_pwrite_all(out, buf, (size_t)n, off) != 0)
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                               dst);
        off += (uint64_t)n;
    }
    if (!st && fsync(out) != 0)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot fsync",
                           dst);
    if (close(out) != 0 && !st)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot close",
                           dst);
    close(in);
    free(buf);
    return st;
}

/* realpath of a path that may not exist yet: its parent's realpath plus
 * its last component. */
static char *resolve_out(const char *out, timber_error *err)
{
    char *parent = tb_dirname(out);
    if (!parent) {
        tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *rp = realpath(parent, NULL);
    if (!rp) {
        tb_fail_errno(err, TIMBER_ERR_IO, errno,
                      "%s: cannot use the output's parent directory '%s'",
                      out, parent);
        free(parent);
        return NULL;
    }
    free(parent);
    char *full = tb_path_join(rp, tb_basename(out));
    free(rp);
    if (!full)
        tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    return full;
}

static int path_within(const char *inner, const char *outer)
{
    size_t n = strlen(outer);
    return strncmp(inner, outer, n) == 0 &&
           (inner[n] == '\0' || inner[n] == '/' ||
            (n == 1 && outer[0] == '/'));
}

timber_status tb_outdir_check(const char *out, const char *base_path,
                              const char *inst_path, int force,
                              timber_error *err)
{
    const char *name = tb_basename(out);
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: not a usable output directory name", out);
    char *full = resolve_out(out, err);
    if (!full)
        return err ? err->status : TIMBER_ERR_IO;
    timber_status st = TIMBER_OK;
    const char *inputs[2] = {base_path, inst_path};
    for (int i = 0; i < 2 && !st; i++) {
        char *in = realpath(inputs[i], NULL);
        if (!in) {
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s", inputs[i]);
            break;
        }
        if (path_within(full, in) || path_within(in, full))
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "output %s %s input %s: refusing to overwrite an "
                         "input",
                         out,
                         path_within(full, in) ? "is or lies inside the"
                                               : "contains the",
                         inputs[i]);
        free(in);
    }
    free(full);
    if (st)
        return st;
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
    char *parent = tb_dirname(out);
    if (!d->out || !parent) {
        free(parent);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    const char *name = tb_basename(out);
    char prefix[512];
    snprintf(prefix, sizeof prefix, ".%s.timber-tmp.", name);
    remove_stale_temps(parent, prefix);
    size_t size = strlen(parent) + strlen(prefix) + 32;
    d->tmp = malloc(size);
    if (!d->tmp) {
        free(parent);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    snprintf(d->tmp, size, "%s/%s%ld", parent, prefix, (long)getpid());
    free(parent);
    if (mkdir(d->tmp, 0777) != 0) {
        timber_status st = tb_fail_errno(
            err, TIMBER_ERR_IO, errno,
            "%s: cannot create its temporary directory %s", d->out, d->tmp);
        free(d->tmp);
        d->tmp = NULL;
        return st;
    }
    return TIMBER_OK;
}

void tb_outdir_end(tb_outdir *d)
{
    if (d->tmp)
        tb_remove_tree(d->tmp);
    free(d->tmp);
    free(d->out);
    memset(d, 0, sizeof *d);
}

/* Renames the finished temporary directory to OUT.  With --force an
 * existing OUT is swapped out atomically (RENAME_EXCHANGE) and removed
 * only after the new one is in place. */
timber_status tb_outdir_publish(tb_outdir *d, timber_error *err)
{
    if (tb_fsync_dir(d->tmp) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot fsync",
                             d->tmp);
    struct stat sb;
    int exists = lstat(d->out, &sb) == 0;
    if (exists && d->force) {
        if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->out, RENAME_EXCHANGE) !=
            0)
            return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                 "%s: cannot replace", d->out);
        /* d->tmp now names the old OUT: the cleanup removes it. */
    } else {
        if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->out, RENAME_NOREPLACE) !=
            0)
            return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                 "%s: cannot rename %s into place", d->out,
                                 d->tmp);
        free(d->tmp);
        d->tmp = NULL;
    }
    if (tb_fsync_parent_dir(d->out) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot fsync its directory", d->out);
    return TIMBER_OK;
}

