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

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "timber.h"

/* Exit codes (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,        /* bad input, I/O failure, runtime error */
    EXIT_USAGE = 2,       /* unknown option, bad value, wrong arguments */
    EXIT_PIPE = 141       /* stdout's reader went away (128 + SIGPIPE) */
    /* 128 + N: stopped by signal N (130 SIGINT, 143 SIGTERM, ...);
     * signals.c */
};

/* Reopens a closed fd 0, 1 or 2 on /dev/null and ignores SIGPIPE
 * (streams.c); -1 when /dev/null cannot be opened.  First thing main
 * does. */
int cli_setup_streams(void);

/* s with control characters written as \xNN (text.c), malloc'd, NULL on
 * exhaustion; cli_put_text prints it padded to width. */
char *cli_escape(const char *s);
void cli_put_text(FILE *f, const char *s, int width);

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
 * output that could not be written is a failure), or EXIT_PIPE, without
 * a message, when the reader of a pipe went away. */
int cli_finish_stdout(int code);
/* Prints help text to stdout and returns cli_finish_stdout(EXIT_OK). */
int cli_print_help(const char *text);
int cli_is_help(const char *arg);

/* Parses a comma-separated list of gammas in [0, 1]; returns the count or
 * -1 after printing a usage error.  *out is malloc'd. */
int cli_parse_gammas(const char *arg, double **out);

/* Matches argv[*i] against "--name VALUE" or "--name=VALUE": 1 with *val
 * set (and *i advanced past a separate value), 0 for another argument,
 * -1 after a usage error for a missing value. */
int cli_option_value(const char *cmd, int argc, char **argv, int *i,
                     const char *name, const char **val);
/* cli_option_value over a list of option names: the index of the one
 * argv[*i] is, -1 for none of them, -2 after a usage error. */
int cli_valued_option(const char *cmd, int argc, char **argv, int *i,
                      const char *const *names, int count, const char **val);
/* The selection options refine, erank and plan share: --include and
 * --exclude REGEX (repeatable) and --matrix-view auto|flatten.  The arrays
 * hold at most argc names (they point into argv). */
typedef struct cli_selection {
    const char **include, **exclude;
    size_t ninclude, nexclude;
    timber_matrix_view view;
} cli_selection;
/* EXIT_OK, or EXIT_FAIL after the message (out of memory). */
int cli_selection_init(cli_selection *s, int argc);
/* Takes argv[*i] (and its value) when it is one of the selection options:
 * 1, and *code set to EXIT_OK, or to EXIT_USAGE after the message; 0 for
 * any other argument. */
int cli_selection_option(cli_selection *s, const char *cmd, int argc,
                         char **argv, int *i, int *code);
void cli_selection_free(cli_selection *s);

/* --matrix-view auto|flatten: EXIT_OK, or EXIT_USAGE after the message. */
int cli_parse_matrix_view(const char *cmd, const char *val,
                          timber_matrix_view *view);
/* --report FILE: a name ending in .json or .csv; EXIT_OK, or EXIT_USAGE
 * after the message. */
int cli_parse_report(const char *cmd, const char *val);
/* A number from 0 to limit, all digits (at most 9): 1 with *out set. */
int cli_parse_count(const char *s, size_t limit, size_t *out);
/* --parts N, 1..100000: EXIT_OK, or EXIT_USAGE after the message. */
int cli_parse_parts(const char *cmd, const char *val, size_t *parts);
/* --threads N, 1..64: EXIT_OK, or EXIT_USAGE after the message. */
int cli_parse_threads(const char *cmd, const char *val, int *threads);
/* The exit code for a failed library call, after its message: a bad
 * option value the library found (a message starting "--") is a usage
 * error of command cmd (pointing to its --help), anything else EXIT_FAIL. */
int cli_status_exit(const char *cmd, timber_status st,
                    const timber_error *err);

/* The stop signals set cli_cancel (the library polls it and stops);
 * signals.c lists them. */
extern volatile sig_atomic_t cli_cancel;
void cli_catch_signals(void);
const char *cli_signal_name(void); /* "SIGINT", ... */
int cli_interrupted_exit(void);    /* 128 + the signal; SIGXFSZ: 1 */

/* The progress line on stderr: only on a terminal and without --quiet. */
typedef struct cli_progress {
    int enabled, drawn;
} cli_progress;
void cli_progress_init(cli_progress *p, int quiet);
void cli_progress_show(const timber_progress *p, void *user);
void cli_progress_clear(cli_progress *p);
/* A library warning callback (user: the cli_progress): clears the progress
 * line, then prints "timber: warning: MESSAGE". */
void cli_progress_warning(const char *message, void *user);

/* "[a, b]" (brackets, sep ", ") or "axb" (no brackets, sep "x"). */
void cli_format_shape(char *buf, size_t size, size_t ndim,
                      const uint64_t *shape, const char *sep, int brackets);
/* Writes a whole file through a temporary beside it and a rename
 * (timber_write_file): 0, or -1 after the error line, nothing left. */
int cli_write_file(const char *path, const char *text, size_t len);

/* "timber [refine] ARG..." : argv[0] is "refine" or the program; every
 * argument shell-quoted where it needs it, less --part and --parts, and
 * for_card (the model card's) less every option that cannot change the
 * output (--threads, --cache, --no-cache, --report, --force, --quiet).
 * NULL when out of memory. */
char *cli_command_line(int argc, char **argv, int for_card);

/* One CSV field, quoted when it holds a comma, quote or newline. */
void cli_csv_field(FILE *f, const char *s);

/* `timber --version`: the version; with verbose also the BLAS and LAPACK
 * loaded, their threads, the compiler and the build type (version.c). */
int cli_print_version(int verbose);

int cmd_inspect(int argc, char **argv);
int cmd_refine(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_erank(int argc, char **argv);
int cmd_finalize(int argc, char **argv);
int cmd_plan(int argc, char **argv);

extern const char cli_inspect_help[];
extern const char cli_refine_help[];
extern const char cli_cache_help[];
extern const char cli_erank_help[];
extern const char cli_finalize_help[];
extern const char cli_plan_help[];

/* The closing summary of a refine or finalize on stderr (refine.c). */
void cli_print_summary(const char *out, const timber_result *result);

/* Reports: one row per tensor, JSON or CSV chosen by the extension. */
int cli_write_report(const char *path, const timber_result *result);

#endif /* TIMBER_CLI_H */
