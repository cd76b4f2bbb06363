/*
 * cache.c — `timber cache info FILE` and `timber cache verify FILE`: what
 * an SVD cache file holds, and whether every record is intact.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_cache_help[] =
    "usage: timber cache info FILE\n"
    "       timber cache verify FILE\n"
    "\n"
    "info lists the records of an SVD cache file (tensor, shape, rank, k,\n"
    "the route that computed it, bytes, offset in the file) on stdout,\n"
    "then totals.  verify checks\n"
    "every record's CRC-32 and structure: exit 0 when all are intact, 1\n"
    "naming the first damaged record otherwise.  Damaged records are never\n"
    "applied by refinement: their tensors are recomputed.  Format:\n"
    "docs/cache-format.md.\n"
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

int cmd_cache(int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1]))
        return cli_print_help(cli_cache_help);
    if (argc != 3 || (strcmp(argv[1], "info") != 0 &&
                      strcmp(argv[1], "verify") != 0))
        return cli_usage("cache", "use 'cache info FILE' or 'cache verify "
                         "FILE'");
    timber_cache_stats st;
    timber_error err;
    int info = strcmp(argv[1], "info") == 0;
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
