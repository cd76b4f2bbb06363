/*
 * outdir.h — publishing an output directory atomically: it is built under
 * a temporary name beside OUT (same file system), fsynced, and renamed into
 * place only when complete; an existing OUT is replaced (--force) by an
 * atomic exchange and removed only afterwards.  Temporaries of killed runs
 * are recognised by name and dead pid and swept on the next run.
 */
#ifndef TIMBER_OUTDIR_H
#define TIMBER_OUTDIR_H

#include "tempfile.h"
#include "timber.h"

typedef struct tb_outdir {
    char *out;        /* the final name */
    const char *tmp;  /* the directory being built (temp.path) */
    tb_temp temp;     /* it, and the lock that marks it alive */
    int force;
} tb_outdir;

/* Refuses an unusable OUT name ("", ".", ".."), and an OUT that exists
 * without force.  (OUT against the inputs: pathid.h.) */
timber_status tb_outdir_check(const char *out, int force, timber_error *err);

/* Sweeps stale temporaries of OUT and creates a fresh one in d->tmp. */
timber_status tb_outdir_begin(tb_outdir *d, const char *out, int force,
                              timber_error *err);

/* Takes an existing directory (a distributed run's staged output) as
 * the one to publish to OUT; unlike a temporary of tb_outdir_begin it is
 * never removed by tb_outdir_end (nor swept). */
timber_status tb_outdir_adopt(tb_outdir *d, const char *out, const char *dir,
                              int force, timber_error *err);

/* fsyncs the temporary and renames it to OUT (exchanging with an existing
 * OUT under force), then fsyncs OUT's parent. */
timber_status tb_outdir_publish(tb_outdir *d, timber_error *err);

/* Removes whatever temporary is left (an unpublished build, or the old OUT
 * after a swap) and frees d.  Safe on a zeroed or ended d. */
void tb_outdir_end(tb_outdir *d);

/* Copies a regular file: a temporary beside dst, fsynced, renamed over
 * dst (so copying again, as a finalize run again does, is harmless). */
timber_status tb_copy_file(const char *src, const char *dst,
                           timber_error *err);

#endif /* TIMBER_OUTDIR_H */
