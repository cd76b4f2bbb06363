/*
 * pathid.c — where a path is, by identity (see pathid.h): the deepest
 * part of it that exists, as the (device, inode) of that directory or
 * file and of every directory above it, plus the not-yet-existing rest
 * as plain names; and the two questions asked of such places, "is A
 * inside (or) B" and "are A and B the same file".
 */
#include "pathid.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tempfile.h"
#include "util.h"

typedef struct fid {
    dev_t dev;
    ino_t ino;
} fid;

typedef struct loc {
    int ok;       /* resolved; otherwise nothing is claimed about it */
    int exists;   /* the path itself exists: chain[0] is it */
    mode_t mode;  /* its type, when it exists */
    char *tail;   /* the missing rest below chain[0], "" when it exists */
    fid *chain;   /* chain[0], then each directory above it, up to / */
    size_t n;
    fid *files;   /* an input directory: its files (a hard link to one of
                   * them is that file) */
    size_t nfiles;
} loc;

static void loc_free(loc *l)
{
    free(l->tail);
    free(l->chain);
    free(l->files);
    memset(l, 0, sizeof *l);
}

/* Prepends component c (length len) to the tail. */
static int tail_prepend(char **tail, const char *c, size_t len)
{
    size_t t = *tail ? strlen(*tail) : 0;
    char *n = malloc(len + t + 2);
    if (!n)
        return -1;
    memcpy(n, c, len);
    if (t) {
        n[len] = '/';
        memcpy(n + len + 1, *tail, t + 1);
    } else {
        n[len] = '\0';
    }
    free(*tail);
    *tail = n;
    return 0;
}

static int loc_resolve(const char *path, loc *l)
{
    memset(l, 0, sizeof *l);
    char *p = tb_strdup(path);
    if (!p)
        return -1;
    struct stat sb;
    /* Climb to the deepest part that exists, collecting the rest. */
    for (;;) {
        size_t len = strlen(p);
        while (len > 1 && p[len - 1] == '/')
            p[--len] = '\0';
        if (stat(p, &sb) == 0)
            break;
        if (errno != ENOENT)
            goto fail; /* unreadable or looping: writing fails anyway */
        char *slash = strrchr(p, '/');
        const char *c = slash ? slash + 1 : p;
        if (strcmp(c, ".") != 0 && *c &&
            tail_prepend(&l->tail, c, strlen(c)) != 0)
            goto fail;
        if (!slash) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    l->exists = l->tail == NULL;
    l->mode = sb.st_mode;
    if (!l->tail && !(l->tail = tb_strdup("")))
        goto fail;
    char *rp = realpath(p, NULL);
    free(p);
    p = rp;
    if (!p)
        goto fail;
    size_t cap = 16;
    l->chain = malloc(cap * sizeof *l->chain);
    if (!l->chain)
        goto fail;
    for (;;) {
        if (stat(p, &sb) != 0)
            goto fail;
        if (l->n == cap) {
            fid *g = realloc(l->chain, 2 * cap * sizeof *g);
            if (!g)
                goto fail;
            l->chain = g;
            cap *= 2;
        }
        l->chain[l->n++] = (fid){sb.st_dev, sb.st_ino};
        char *slash = strrchr(p, '/');
        if (!slash || p[1] == '\0')
            break;
        if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
    }
    free(p);
    l->ok = 1;
    return 0;
fail:
    free(p);
    loc_free(l);
    return 0; /* unresolved: not an error of its own */
}

static int fid_eq(fid a, fid b) { return a.dev == b.dev && a.ino == b.ino; }

/* The files directly in an input directory (a checkpoint reads no
 * deeper), by identity. */
static void list_files(const char *dir, loc *l)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) != 0 || S_ISDIR(sb.st_mode))
            continue;
        if (l->nfiles == cap) {
            size_t nc = cap ? 2 * cap : 32;
            fid *g = realloc(l->files, nc * sizeof *g);
            if (!g)
                break;
            l->files = g;
            cap = nc;
        }
        l->files[l->nfiles++] = (fid){sb.st_dev, sb.st_ino};
    }
    closedir(d);
}

/* 1 when a (existing) is one of input b's files under any name. */
static int is_file_of(const loc *a, const loc *b)
{
    if (!a->ok || !a->exists)
        return 0;
    for (size_t i = 0; i < b->nfiles; i++)
        if (fid_eq(a->chain[0], b->files[i]))
            return 1;
    return 0;
}

/* 1 when a is b, or lies inside b. */
static int within(const loc *a, const loc *b)
{
    if (!a->ok || !b->ok)
        return 0;
    if (b->exists) {
        for (size_t k = 0; k < a->n; k++)
            if (fid_eq(a->chain[k], b->chain[0]))
                return 1;
        return 0;
    }
    size_t bl = strlen(b->tail);
    return fid_eq(a->chain[0], b->chain[0]) &&
           strncmp(a->tail, b->tail, bl) == 0 &&
           (a->tail[bl] == '\0' || a->tail[bl] == '/');
}

static int same(const loc *a, const loc *b)
{
    return a->ok && b->ok && a->exists == b->exists &&
           fid_eq(a->chain[0], b->chain[0]) && strcmp(a->tail, b->tail) == 0;
}

static timber_status conflict(timber_error *err, const tb_place *a,
                              const loc *la, const tb_place *b,
                              const loc *lb)
{
    const char *how = same(la, lb)         ? "is"
                      : is_file_of(la, lb) ? "is a file of"
                                           : "lies inside";
    return tb_fail(err, TIMBER_ERR_INVALID,
                   "%s '%s' %s %s '%s': refusing to overwrite it; nothing "
                   "was done",
                   a->what, a->path, how, b->what, b->path);
}

timber_status tb_places_check(const tb_place *pl, size_t n,
                              timber_error *err)
{
    loc *l = tb_calloc_array(n, sizeof *l);
    if (!l)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    timber_status st = TIMBER_OK;
    for (size_t i = 0; i < n; i++) {
        if (pl[i].path && loc_resolve(pl[i].path, &l[i]) != 0)
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        if (pl[i].role == TB_ROLE_INPUT && l[i].ok && S_ISDIR(l[i].mode))
            list_files(pl[i].path, &l[i]);
    }
    for (size_t i = 0; i < n && !st; i++) {
        if (!pl[i].path || pl[i].role == TB_ROLE_INPUT)
            continue;
        if ((pl[i].role == TB_ROLE_FILE || pl[i].role == TB_ROLE_CACHE) &&
            l[i].ok && l[i].exists && !S_ISREG(l[i].mode) &&
            !(pl[i].role == TB_ROLE_CACHE && S_ISDIR(l[i].mode))) {
            mode_t m = l[i].mode;
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s '%s' is %s, not a regular file; nothing was "
                         "done",
                         pl[i].what, pl[i].path,
                         S_ISDIR(m)    ? "a directory"
                         : S_ISFIFO(m) ? "a FIFO"
                         : S_ISCHR(m) || S_ISBLK(m) ? "a device"
                         : S_ISSOCK(m) ? "a socket"
                                       : "something else");
            break;
        }
        for (size_t j = 0; j < n && !st; j++) {
            if (j == i || !pl[j].path)
                continue;
            if (pl[j].role == TB_ROLE_INPUT) {
                if (within(&l[i], &l[j]) || is_file_of(&l[i], &l[j]))
                    st = conflict(err, &pl[i], &l[i], &pl[j], &l[j]);
                else if (pl[i].role == TB_ROLE_OUTDIR &&
                         within(&l[j], &l[i]))
                    st = conflict(err, &pl[j], &l[j], &pl[i], &l[i]);
            } else if (pl[j].role == TB_ROLE_OUTDIR) {
                if (within(&l[i], &l[j]))
                    st = conflict(err, &pl[i], &l[i], &pl[j], &l[j]);
            } else if (pl[i].role != TB_ROLE_OUTDIR && j > i &&
                       same(&l[i], &l[j])) {
                st = conflict(err, &pl[j], &l[j], &pl[i], &l[i]);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        loc_free(&l[i]);
    free(l);
    return st;
}

timber_status tb_check_run_places(const char *base, const char *instruct,
                                  const char *out, const char *cache,
                                  const char *const *outputs, size_t n,
                                  timber_error *err)
{
    tb_place *pl = tb_calloc_array(4 + n, sizeof *pl);
    if (!pl)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    pl[0] = (tb_place){base, TB_ROLE_INPUT, "the input"};
    pl[1] = (tb_place){instruct, TB_ROLE_INPUT, "the input"};
    pl[2] = (tb_place){out, TB_ROLE_OUTDIR, "the output directory"};
    pl[3] = (tb_place){cache, TB_ROLE_CACHE, "the cache"};
    for (size_t i = 0; i < n; i++)
        pl[4 + i] = (tb_place){outputs[i], TB_ROLE_FILE, "the file"};
    timber_status st = tb_places_check(pl, 4 + n, err);
    free(pl);
    /* Written only after the run: found unwritable now, not then. */
    for (size_t i = 0; i < n && !st; i++)
        st = tb_temp_probe(outputs[i], err);
    return st;
}
