/*
 * tempfile.c — the one temporary-name scheme (see tempfile.h): names,
 * the lock that marks a temporary as alive, the sweep of dead runs'
 * leftovers, publication by rename, and removal.
 */
#include "tempfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Room left in a file name (NAME_MAX 255) for the final name's part:
 * ".NAME.timber-tmp.PID.RANDOM" must still be a legal name. */
#define NAME_PART_MAX 200

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

/* ".NAME.timber-" with NAME the final name's last component, cut to
 * NAME_PART_MAX bytes. */
static void name_prefix(char *buf, size_t size, const char *final)
{
    const char *base = tb_basename(final);
    snprintf(buf, size, ".%.*s.timber-", NAME_PART_MAX, base);
}

uint64_t tb_random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        /* No entropy yet (early boot): time and an address still make
         * a collision with a live name vanishingly unlikely, and
         * O_EXCL / mkdir refuse one anyway. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static atomic_uint counter;
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
            ((uint64_t)(uintptr_t)&v << 7) ^
            atomic_fetch_add(&counter, 1u);
    }
    return v;
}

/* Takes the temporary's lock without waiting: 1 taken, 0 held by someone
 * else (or locks unsupported here: then it is treated as alive). */
static int try_lock(int fd)
{
    return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

/* Removes the temporaries of `final` that no live process holds locked. */
static void sweep(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char tmp_prefix[NAME_PART_MAX + 32];
    snprintf(tmp_prefix, sizeof tmp_prefix, "%stmp.", prefix);
    size_t plen = strlen(tmp_prefix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, tmp_prefix, plen) != 0)
            continue;
        /* Only files and directories of our own making: never follow a
         * link, never open a FIFO or a device (O_NONBLOCK, then checked). */
        int fd = openat(dirfd(d), de->d_name,
                        O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat sb;
        int ours = fstat(fd, &sb) == 0 &&
                   (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode));
        if (ours && try_lock(fd)) {
            char *p = tb_path_join(dir, de->d_name);
            if (p) {
                if (S_ISDIR(sb.st_mode))
                    tb_remove_tree(p);
                else
                    unlink(p);
            }
            free(p);
        }
        close(fd); /* releases the lock */
    }
    closedir(d);
}

timber_status tb_temp_create(tb_temp *t, const char *final, int flags,
                             timber_error *err)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->flags = flags;
    int is_dir = (flags & TB_TEMP_DIR) != 0;
    int nested = (flags & TB_TEMP_NESTED) != 0;
    char *dir = tb_dirname(final);
    t->final = tb_strdup(final);
    char prefix[NAME_PART_MAX + 16];
    name_prefix(prefix, sizeof prefix, final);
    size_t size = (dir ? strlen(dir) : 0) + strlen(prefix) + 64;
    char *fresh = malloc(size);
    t->path = malloc(size);
    if (!dir || !t->final || !fresh || !t->path) {
        free(dir);
        free(fresh);
        tb_temp_end(t);
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", final);
    }
    if (!nested)
        sweep(dir, prefix);
    timber_status st = TIMBER_OK;
    for (int attempt = 0;; attempt++) {
        unsigned long long r = (unsigned long long)tb_random64();
        long pid = (long)getpid();
        snprintf(t->path, size, "%s/%stmp.%ld.%016llx", dir, prefix, pid, r);
        snprintf(fresh, size, "%s/%snew.%ld.%016llx", dir, prefix, pid, r);
        /* A nested temporary is created under its final temporary name
         * at once: nothing sweeps inside a live temporary. */
        const char *made = nested ? t->path : fresh;
        int rc;
        if (is_dir) {
            rc = mkdir(made, 0777);
            if (rc == 0 && !nested) {
                t->fd = open(made, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                rc = t->fd < 0 ? -1 : 0;
            }
        } else {
            t->fd = open(made, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            rc = t->fd < 0 ? -1 : 0;
        }
        if (rc != 0) {
            int e = errno;
            if (e == EEXIST && attempt < 8)
                continue;
            if (is_dir && t->fd < 0 && e != EEXIST)
                rmdir(made);
            st = tb_fail_errno(err, TIMBER_ERR_IO, e,
                               "%s: cannot create its temporary %s %s",
                               final, is_dir ? "directory" : "file", made);
            break;
        }
        if (!nested) {
            /* Locks unsupported (some network file systems): the
             * temporary then simply counts as alive to every sweep. */
            (void)try_lock(t->fd);
            if (rename(fresh, t->path) != 0) {
                int e = errno;
                if (is_dir)
                    rmdir(fresh);
                else
                    unlink(fresh);
                st = tb_fail_errno(err, TIMBER_ERR_IO, e,
                                   "%s: cannot rename its temporary %s", final,
                                   fresh);
                break;
            }
        }
        break;
    }
    free(dir);
    free(fresh);
    if (st) {
        if (t->fd >= 0)
            close(t->fd);
        t->fd = -1;
        free(t->path);
        t->path = NULL;
        tb_temp_end(t);
        return st;
    }
    return TIMBER_OK;
}

timber_status tb_temp_publish(tb_temp *t, int how, timber_error *err)
{
    int fd = t->fd;
    int own = 0;
    if (fd < 0) {
        fd = open(t->path, O_RDONLY | O_CLOEXEC);
        own = 1;
    }
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (own && fd >= 0)
            close(fd);
        return tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot fsync",
                             t->path);
    }
    if (own)
        close(fd);
    int rc;
    if (how == TB_PUBLISH_REPLACE)
        rc = rename(t->path, t->final);
    else
        rc = renameat2(AT_FDCWD, t->path, AT_FDCWD, t->final,
                       how == TB_PUBLISH_EXCHANGE ? RENAME_EXCHANGE
                                                  : RENAME_NOREPLACE);
    if (rc != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot rename %s into place", t->final,
                             t->path);
    /* After an exchange t->path names the old final: tb_temp_end
     * removes it. */
    t->published = how != TB_PUBLISH_EXCHANGE;
    if (how == TB_PUBLISH_EXCHANGE)
        t->flags &= ~TB_TEMP_KEEP; /* t->path is the old OUT now */
    if (tb_fsync_parent_dir(t->final) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot fsync its directory", t->final);
    return TIMBER_OK;
}

void tb_temp_end(tb_temp *t)
{
    /* Unlocked first: removing a tree needs fds, and the table may be
     * full (ulimit -n).  A sweep that finds it unlocked meanwhile only
     * removes it too. */
    if (t->fd >= 0)
        close(t->fd);
    if (t->path && !t->published && !(t->flags & TB_TEMP_KEEP)) {
        if (t->flags & TB_TEMP_DIR)
            tb_remove_tree(t->path);
        else
            unlink(t->path);
    }
    free(t->path);
    free(t->final);
    memset(t, 0, sizeof *t);
    t->fd = -1;
}

void tb_temp_close_fd(tb_temp *t)
{
    if (t->fd >= 0 && (t->flags & TB_TEMP_NESTED)) {
        close(t->fd);
        t->fd = -1;
    }
}

timber_status tb_temp_probe(const char *final, timber_error *err)
{
    tb_temp t;
    timber_status st = tb_temp_create(&t, final, TB_TEMP_FILE, err);
    if (!st)
        tb_temp_end(&t);
    return st;
}
