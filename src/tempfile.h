/*
 * tempfile.h — the one temporary-name scheme of timber.  Everything timber
 * publishes (output directory, shard, index, report, erank file, plot) is
 * first built under ".<name>.timber-tmp.<pid>.<random>" beside its final
 * name (same directory, so the rename that publishes it is atomic), and
 * the plot's work directory is one too.
 *
 * Liveness is a lock, not a PID: the creating process holds an exclusive
 * flock() on the temporary (through an fd kept open for its lifetime), so
 * a temporary whose lock can be taken belongs to a run that is gone, and
 * the next tb_temp_create for the same final name removes it, whatever
 * its PID (PID reuse, timber as PID 1 in one container after another).
 * The PID in the name is for people reading a directory listing.
 *
 * To close the window between creating and locking, a temporary is made
 * under ".<name>.timber-new.<pid>.<random>", locked, and only then
 * renamed to its sweepable name (the lock follows the inode).
 */
#ifndef TIMBER_TEMPFILE_H
#define TIMBER_TEMPFILE_H

#include <stdint.h>

#include "timber.h"

enum {
    TB_TEMP_FILE = 0,
    TB_TEMP_DIR = 1,
    /* Inside another live temporary (a shard in the output's temporary
     * directory): that one's lock covers it, so it holds no fd of its own
     * and sweeps nothing; the fd count stays independent of the number
     * of files being built. */
    TB_TEMP_NESTED = 2,
    /* Not ours to remove (a distributed run's staged output, adopted by
     * finalize: if publishing fails, the parts' work stays for another
     * try).  Only an old OUT swapped out by an exchange is removed. */
    TB_TEMP_KEEP = 4,
};

typedef struct tb_temp {
    char *path;  /* the temporary */
    char *final; /* where tb_temp_publish puts it */
    int fd;      /* lock holder (and, for a file, open for writing); -1 */
    int flags;
    int published;
} tb_temp;

/* Sweeps dead runs' temporaries of `final` (unless NESTED) and creates a
 * fresh one: an empty file opened read-write in t->fd (closed for NESTED:
 * reopen by t->path), or an empty directory.  On failure t is zeroed and
 * nothing was created. */
timber_status tb_temp_create(tb_temp *t, const char *final, int flags,
                             timber_error *err);

/* A NESTED file's fd is the caller's to close once the first bytes are
 * written (later writes reopen t->path); -1 afterwards. */
void tb_temp_close_fd(tb_temp *t);

/* How tb_temp_publish may treat an existing final name. */
enum {
    TB_PUBLISH_REPLACE,   /* rename(2): a file over a file */
    TB_PUBLISH_NOREPLACE, /* fail if final exists */
    TB_PUBLISH_EXCHANGE   /* swap with the existing final atomically;
                           * t->path then names the old one, which
                           * tb_temp_end removes */
};

/* fsyncs the temporary (a file: its data; a directory: its entries),
 * renames it to `final` as `how` says, and fsyncs the parent. */
timber_status tb_temp_publish(tb_temp *t, int how, timber_error *err);

/* Removes whatever t->path still names unless it was published (a file,
 * or a directory tree, not following links), releases the lock, frees t.
 * Safe on a zeroed or ended t. */
void tb_temp_end(tb_temp *t);

/* Whether a file can be published at final: creates and removes its
 * temporary once (so a missing or read-only directory is found before
 * any work, not after it). */
timber_status tb_temp_probe(const char *final, timber_error *err);

/* 64 random bits for a name no other process or host picks (getrandom,
 * else the time and an address): temporaries, and the files of a cache
 * directory (cachedir.c). */
uint64_t tb_random64(void);

/* Removes a directory tree, not following symbolic links. */
void tb_remove_tree(const char *path);

#endif /* TIMBER_TEMPFILE_H */
