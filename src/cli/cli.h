/*
 * cli.h — what the `timber` command's files share: exit codes, message
 * helpers, and the commands' entry points.  The CLI calls only the public
 * API (include/timber.h).
 *
 * Streams: results (tables, JSON) go to stdout and nothing else does, so
 * scripts can pipe them; errors, warnings, progress and summaries go to
 * stderr.
 */
#ifndef TIMBER_CLI_H
#define TIMBER_CLI_H

#include "timber.h"

/* Exit codes (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,        /* bad input, I/O failure, runtime error */
    EXIT_USAGE = 2,       /* unknown option, bad value, wrong arguments */
    EXIT_SIGINT = 130,    /* interrupted by SIGINT (128 + 2) */
    EXIT_SIGTERM = 143    /* terminated by SIGTERM (128 + 15) */
};

/* "timber: <message>\n" on stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "timber: warning: <message>\n" on stderr. */
void cli_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error: message plus a pointer to `timber CMD --help`; returns
 * EXIT_USAGE.  cmd may be NULL for the top level. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints a library error (its message names file, tensor and numbers);
 * returns EXIT_FAIL. */
int cli_lib_error(const timber_error *err);
/* Flushes stdout; a failed write turns success into EXIT_FAIL (jq's rule:
 * output that could not be written is a failure). */
int cli_finish_stdout(int code);
/* Prints help text to stdout and returns cli_finish_stdout(EXIT_OK). */
int cli_print_help(const char *text);
int cli_is_help(const char *arg);

/* Parses a comma-separated list of gammas in [0, 1]; returns the count or
 * -1 after printing a usage error.  *out is malloc'd. */
int cli_parse_gammas(const char *arg, double **out);

int cmd_inspect(int argc, char **argv);
int cmd_refine(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_erank(int argc, char **argv);

extern const char cli_inspect_help[];
extern const char cli_refine_help[];
extern const char cli_cache_help[];
extern const char cli_erank_help[];

/* Reports: one row per tensor, JSON or CSV chosen by the extension. */
int cli_write_report(const char *path, const timber_result *result);

#endif /* TIMBER_CLI_H */
