/*
 * pathid.h — "would writing here clobber that?", decided by identity, not
 * spelling.  Every path a run writes (OUT, the cache, reports, erank's
 * files) is checked against the inputs and against one another before any
 * work, by the (device, inode) of each existing directory on its way to
 * the root: symbolic links, "..", doubled slashes and bind mounts (which
 * show one directory under two names with one identity) cannot get a
 * write into an input, or two outputs onto one file.
 */
#ifndef TIMBER_PATHID_H
#define TIMBER_PATHID_H

#include <stddef.h>

#include "timber.h"

typedef enum tb_role {
    TB_ROLE_INPUT,  /* read: may not be written, or written inside */
    TB_ROLE_OUTDIR, /* OUT: a directory that will be replaced whole */
    TB_ROLE_FILE,   /* a file that will be written (report) */
    TB_ROLE_CACHE   /* the cache: a file, as above, or a cache directory
                     * (written inside: it may not be, or lie inside, an
                     * input or OUT either) */
} tb_role;

typedef struct tb_place {
    const char *path;
    tb_role role;
    const char *what; /* for messages: "the input", "the report", ... */
} tb_place;

/* TIMBER_OK when no output place is, or lies inside, an input, OUT, or
 * another output, and no input lies inside OUT; an output file that
 * exists must be a regular file (the cache: or a directory) (never a FIFO or a device: opening one
 * could block).  Otherwise TIMBER_ERR_INVALID with one line naming both
 * paths.  Places with a NULL path are skipped. */
timber_status tb_places_check(const tb_place *places, size_t n,
                              timber_error *err);

/* A run's places: its inputs (instruct may be NULL), OUT (NULL for
 * erank), the cache (NULL: none) and the caller's output files, checked
 * as above; then each output file's directory is probed for writing
 * (tb_temp_probe). */
timber_status tb_check_run_places(const char *base, const char *instruct,
                                  const char *out, const char *cache,
                                  const char *const *outputs, size_t n,
                                  timber_error *err);

#endif /* TIMBER_PATHID_H */
