/*
 * cache.c — `timber cache info FILE|DIR` and `timber cache verify
 * FILE|DIR`: what an SVD cache file, or each file of a cache directory,
 * holds, and whether every record is intact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_cache_help[] =
    "usage: timber cache info PATH\n"
    "       timber cache verify PATH\n"
    "\n"
    "info lists the records of an SVD cache file (tensor, shape, rank, k,\n"
    "the route that computed it, bytes, offset in the file) on stdout,\n"
    "then totals.  verify checks\n"
    "every record's CRC-32 and structure: exit 0 when all are intact, 1\n"
    "naming the first damaged record otherwise.  Damaged records are never\n"
    "applied by refinement: their tensors are recomputed.  PATH may be a\n"
    "cache directory (an existing directory, or a path ending in '/'):\n"
    "then each of its files, of every pair, is read, with a line per file\n"
    "and totals.  Format: docs/cache-format.md.\n"
    "\n"
    "options:\n"
    "  -h, --help   show this help\n";

static void print_record(const timber_cache_record *r, void *user)
{
    int *list = user;
    if (!*list)
        return;
    if (!r->valid) {
        printf("%-48s damaged record at offset %llu\n", "?",
               (unsigned long long)r->offset);
        return;
    }
    char shape[128];
    size_t at = 0;
    shape[0] = '\0';
    for (size_t d = 0; d < r->ndim && at < sizeof shape; d++)
        at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%llu",
                               d ? "x" : "", (unsigned long long)r->shape[d]);
    cli_put_text(stdout, r->name, 48);
    printf(" %-14s rank %5llu  eRank %10.3f  k %5llu  %-15s %10llu bytes "
           "at offset %llu\n",
           shape, (unsigned long long)r->rank, r->erank,
           (unsigned long long)r->k, r->route_name,
           (unsigned long long)r->bytes, (unsigned long long)r->offset);
}

static void first_damage(const timber_cache_record *r, void *user)
{
    uint64_t *first = user;
    if (!r->valid && *first == UINT64_MAX)
        *first = r->offset;
}

/* A cache directory: per-file lines, totals, the first damage. */
typedef struct dir_walk {
    int info;
    size_t files, records, damaged, bad_files, skipped, unfinished;
    uint64_t bytes;
    uint64_t first_here; /* first damaged record in the current file */
    uint64_t first;      /* ... in the first file that has one */
    char *first_file, *bad_file;
} dir_walk;

static void dir_record(const timber_cache_record *r, void *user)
{
    dir_walk *w = user;
    if (!r->valid && w->first_here == UINT64_MAX)
        w->first_here = r->offset;
    int list = w->info;
    print_record(r, &list);
}

static void dir_file(const timber_cache_file *f, void *user)
{
    dir_walk *w = user;
    uint64_t first = w->first_here;
    w->first_here = UINT64_MAX;
    switch (f->state) {
    case TIMBER_CACHE_FILE_OK:
        w->files++;
        w->records += f->stats.records;
        w->damaged += f->stats.damaged;
        w->bytes += f->stats.file_size;
        w->unfinished += f->stats.trailing_bytes != 0;
        if (first != UINT64_MAX && !w->first_file) {
            w->first = first;
            w->first_file = strdup(f->path);
        }
        if (w->info) {
            printf("file ");
            cli_put_text(stdout, f->path, 0);
            printf(": %zu record%s, %zu damaged, %llu bytes, format %u, "
                   "pair %016llx\n",
                   f->stats.records, f->stats.records == 1 ? "" : "s",
                   f->stats.damaged, (unsigned long long)f->stats.file_size,
                   f->stats.format_version,
                   (unsigned long long)f->stats.fingerprint);
        }
        return;
    case TIMBER_CACHE_FILE_DAMAGED:
        w->bad_files++;
        if (!w->bad_file)
            w->bad_file = strdup(f->message);
        if (w->info)
            cli_warnf("%s; skipped", f->message);
        return;
    case TIMBER_CACHE_FILE_UNREADABLE:
        w->skipped++;
        cli_warnf("%s; skipped", f->message);
        return;
    default: /* empty, another format version: never read, not damage */
        w->skipped++;
        if (w->info)
            cli_warnf("%s; skipped", f->message);
        return;
    }
}

static int cache_dir(const char *dir, int info)
{
    dir_walk w = {0};
    w.info = info;
    w.first_here = UINT64_MAX;
    timber_error err;
    timber_status s =
        timber_cache_inspect_dir(dir, dir_file, dir_record, &w, &err);
    int code = EXIT_OK;
    if (s != TIMBER_OK) {
        code = cli_lib_error(&err);
    } else if (info) {
        printf("total: %zu record%s, %zu damaged, %llu bytes in %zu file%s",
               w.records, w.records == 1 ? "" : "s", w.damaged,
               (unsigned long long)w.bytes, w.files, w.files == 1 ? "" : "s");
        if (w.bad_files + w.skipped)
            printf(", %zu skipped", w.bad_files + w.skipped);
        printf("\n");
        code = cli_finish_stdout(EXIT_OK);
    } else if (w.damaged || w.bad_files) {
        char recs[1200] = "", files[1400] = "";
        if (w.damaged)
            snprintf(recs, sizeof recs,
                     "%zu damaged record%s, the first in %s at offset %llu",
                     w.damaged, w.damaged == 1 ? "" : "s",
                     w.first_file ? w.first_file : "?",
                     (unsigned long long)w.first);
        if (w.bad_files)
            snprintf(files, sizeof files, "%s%zu damaged file%s (%s)",
                     w.damaged ? "; " : "", w.bad_files,
                     w.bad_files == 1 ? "" : "s", w.bad_file ? w.bad_file : "?");
        cli_errorf("%s: %s%s (they will be recomputed, never applied)", dir,
                   recs, files);
        code = EXIT_FAIL;
    } else {
        cli_put_text(stdout, dir, 0);
        printf(": ok, %zu record%s intact in %zu file%s", w.records,
               w.records == 1 ? "" : "s", w.files, w.files == 1 ? "" : "s");
        if (w.unfinished)
            printf(" (%zu file%s end%s in an unfinished record, ignored%s",
                   w.unfinished, w.unfinished == 1 ? "" : "s",
                   w.unfinished == 1 ? "s" : "", w.skipped ? "; " : ")");
        if (w.skipped)
            printf("%s%zu file%s not read)", w.unfinished ? "" : " (",
                   w.skipped, w.skipped == 1 ? "" : "s");
        printf("\n");
        code = cli_finish_stdout(EXIT_OK);
    }
    free(w.first_file);
    free(w.bad_file);
    return code;
}

int cmd_cache(int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1]))
        return cli_print_help(cli_cache_help);
    if (argc != 3 || (strcmp(argv[1], "info") != 0 &&
                      strcmp(argv[1], "verify") != 0))
        return cli_usage("cache", "use 'cache info PATH' or 'cache verify "
                         "PATH'");
    timber_cache_stats st;
    timber_error err;
    int info = strcmp(argv[1], "info") == 0;
    if (timber_cache_is_dir(argv[2]))
        return cache_dir(argv[2], info);
    uint64_t first = UINT64_MAX;
    int list = 1;
    timber_status s = info ? timber_cache_inspect(argv[2], print_record,
                                                  &list, &st, &err)
                           : timber_cache_inspect(argv[2], first_damage,
                                                  &first, &st, &err);
    if (s != TIMBER_OK)
        return cli_lib_error(&err);
    if (info) {
        printf("total: %zu record%s, %zu damaged, %llu bytes, format %u, "
               "pair %016llx\n",
               st.records, st.records == 1 ? "" : "s", st.damaged,
               (unsigned long long)st.file_size, st.format_version,
               (unsigned long long)st.fingerprint);
        return cli_finish_stdout(EXIT_OK);
    }
    if (st.damaged) {
        cli_errorf("%s: %zu damaged record%s, the first at offset %llu "
                   "(they will be recomputed, never applied)",
                   argv[2], st.damaged, st.damaged == 1 ? "" : "s",
                   (unsigned long long)first);
        return EXIT_FAIL;
    }
    cli_put_text(stdout, argv[2], 0);
    printf(": ok, %zu records intact%s\n", st.records,
           st.trailing_bytes ? " (an unfinished last record will be "
                               "dropped)"
                             : "");
    return cli_finish_stdout(EXIT_OK);
}
