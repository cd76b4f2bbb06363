/*
 * common.c — what the `timber` commands share (cli.h): messages and exit
 * codes, option values, SIGINT/SIGTERM as cancellation, the progress line,
 * shapes as text, and files written through a temporary and a rename.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char progname[] = "timber";

/* One stderr line: "timber: " KIND MESSAGE. */
static void vmessage(const char *kind, const char *fmt, va_list ap)
{
    /* One message, one line: names and paths in it are escaped
     * (text.c), then it goes out in a single write. */
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    char *safe = text ? cli_escape(text) : NULL;
    fprintf(stderr, "%s: %s%s\n", progname, kind,
            safe ? safe : "(out of memory formatting a message)");
    free(safe);
    free(text);
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    cli_errorf("%s (see '%s %s%s--help')", text ? text : "usage error",
               progname, cmd ? cmd : "", cmd ? " " : "");
    free(text);
    return EXIT_USAGE;
}

int cli_lib_error(const timber_error *err)
{
    cli_errorf("%s", err->message[0] ? err->message
                                     : timber_strerror(err->status));
    return EXIT_FAIL;
}

int cli_print_help(const char *text)
{
    fputs(text, stdout);
    return cli_finish_stdout(EXIT_OK);
}

int cli_is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* One gamma: a decimal (or C99 hexadecimal) number in [0, 1], blanks
 * around it ignored alike on both sides.  Underflow is not an error: a
 * subnormal gamma is the number it reads as (and one below the smallest
 * subnormal reads as 0, like any decimal too long to hold).  -0 is 0, so
 * its directory is gamma-0 and its metadata "0". */
static int parse_gamma(const char *p, size_t len, double *out)
{
    while (len > 0 && isspace((unsigned char)*p)) {
        p++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end != '\0' || (errno == ERANGE && fabs(v) > 1.0))
        return -1;
    if (!(v >= 0.0 && v <= 1.0))
        return -1;
    *out = v + 0.0; /* -0 + 0 is +0 */
    return 0;
}

int cli_parse_gammas(const char *arg, double **out)
{
    *out = NULL;
    size_t n = 1;
    for (const char *p = arg; *p; p++)
        n += *p == ',';
    double *g = calloc(n, sizeof *g);
    if (!g) {
        cli_errorf("out of memory");
        return -1;
    }
    const char *p = arg;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (parse_gamma(p, len, &g[i]) != 0) {
            free(g);
            cli_usage("refine", "--gamma: '%.*s' is not a number in [0, 1]",
                      (int)(len < 60 ? len : 60), p);
            return -1;
        }
        p = comma ? comma + 1 : p + len;
    }
    *out = g;
    return (int)n;
}

int cli_option_value(const char *cmd, int argc, char **argv, int *i,
                     const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t l = strlen(name);
    if (strncmp(a, name, l) != 0 || (a[l] != '\0' && a[l] != '='))
        return 0;
    if (a[l] == '=') {
        *val = a + l + 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        cli_usage(cmd, "%s needs a value", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

int cli_valued_option(const char *cmd, int argc, char **argv, int *i,
                      const char *const *names, int count, const char **val)
{
    for (int v = 0; v < count; v++) {
        int m = cli_option_value(cmd, argc, argv, i, names[v], val);
        if (m < 0)
            return -2;
        if (m)
            return v;
    }
    return -1;
}

int cli_selection_init(cli_selection *s, int argc)
{
    s->include = calloc((size_t)argc + 1, sizeof(char *));
    s->exclude = calloc((size_t)argc + 1, sizeof(char *));
    s->ninclude = s->nexclude = 0;
    s->view = TIMBER_VIEW_AUTO;
    if (s->include && s->exclude)
        return EXIT_OK;
    cli_selection_free(s);
    cli_errorf("out of memory");
    return EXIT_FAIL;
}

int cli_selection_option(cli_selection *s, const char *cmd, int argc,
                         char **argv, int *i, int *code)
{
    static const char *const names[] = {"--include", "--exclude",
                                        "--matrix-view"};
    const char *val = NULL;
    int which = cli_valued_option(cmd, argc, argv, i, names, 3, &val);
    *code = EXIT_OK;
    if (which == -1)
        return 0;
    if (which == -2)
        *code = EXIT_USAGE;
    else if (which == 0)
        s->include[s->ninclude++] = val;
    else if (which == 1)
        s->exclude[s->nexclude++] = val;
    else
        *code = cli_parse_matrix_view(cmd, val, &s->view);
    return 1;
}

void cli_selection_free(cli_selection *s)
{
    free(s->include);
    free(s->exclude);
    s->include = s->exclude = NULL;
}

int cli_parse_threads(const char *cmd, const char *val, int *threads)
{
    char *end = NULL;
    long t = strtol(val, &end, 10);
    if (!*val || *end || t < 1 || t > TIMBER_MAX_THREADS)
        return cli_usage(cmd, "--threads: '%s' is not a number in 1..%d",
                         val, TIMBER_MAX_THREADS);
    *threads = (int)t;
    return EXIT_OK;
}

int cli_status_exit(const char *cmd, timber_status st,
                    const timber_error *err)
{
    /* Errors about option values (a bad --include regex, duplicate
     * gammas) are usage errors, and like every usage error they point to
     * the command's --help. */
    if (st == TIMBER_ERR_OPTION)
        return cli_usage(cmd, "%s", err->message);
    return cli_lib_error(err);
}

/* ---------------------------------------------------------- progress */

void cli_progress_init(cli_progress *p, int quiet)
{
    p->enabled = !quiet && isatty(2);
    p->drawn = 0;
}

void cli_progress_show(const timber_progress *p, void *user)
{
    cli_progress *u = user;
    if (!u->enabled)
        return;
    double frac = p->work_total ? (double)p->work_done / (double)p->work_total
                                : 1.0;
    char eta[32] = "--:--";
    if (frac > 0.0 && p->elapsed > 0.5) {
        double left = p->elapsed * (1.0 - frac) / frac;
        snprintf(eta, sizeof eta, "%d:%02d", (int)(left / 60),
                 (int)left % 60);
    }
    char *name = cli_escape(p->tensor);
    fprintf(stderr, "\r\033[K[%zu/%zu] %3.0f%% ETA %s  %.60s", p->index,
            p->total, 100.0 * frac, eta, name ? name : "");
    free(name);
    fflush(stderr);
    u->drawn = 1;
}

void cli_progress_clear(cli_progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        p->drawn = 0;
    }
}

void cli_progress_warning(const char *message, void *user)
{
    cli_progress_clear(user);
    cli_warnf("%s", message);
}

/* ------------------------------------------------------ shapes, files */

void cli_format_shape(char *buf, size_t size, size_t ndim,
                      const uint64_t *shape, const char *sep, int brackets)
{
    size_t at = 0;
    buf[0] = '\0';
    if (brackets)
        at += (size_t)snprintf(buf, size, "[");
    for (size_t d = 0; d < ndim && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", d ? sep : "",
                               (unsigned long long)shape[d]);
    if (brackets && at < size)
        snprintf(buf + at, size - at, "]");
}

int cli_write_file(const char *path, const char *text, size_t len)
{
    timber_error err;
    if (timber_write_file(path, text, len, &err) == TIMBER_OK)
        return 0;
    cli_lib_error(&err);
    return -1;
}

/* RFC 4180: quote a field holding a comma, quote or newline. */
void cli_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

char *cli_command_line(int argc, char **argv, int for_card)
{
    size_t size = 32;
    for (int i = 1; i < argc; i++)
        size += 4 * strlen(argv[i]) + 3;
    char *s = malloc(size), *p = s;
    if (!s)
        return NULL;
    p += sprintf(p, "timber%s", strcmp(argv[0], "refine") == 0 ? " refine"
                                                                : "");
    /* Options that cannot change the output are left out, so a run split
     * into parts, or run with other threads or another cache, writes the
     * same card (and so the same bytes) as any other. */
    static const char *const valued[] = {"--part", "--parts", "--threads",
                                         "--cache", "--report"};
    static const char *const flags[] = {"--no-cache", "--force", "-q",
                                        "--quiet", "--timings"};
    /* For a part's rerun: only --part and --parts go. */
    size_t nvalued = for_card ? sizeof valued / sizeof *valued : 2;
    size_t nflags = for_card ? sizeof flags / sizeof *flags : 0;
    int operands = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int skip = 0;
        for (size_t k = 0; !operands && k < nvalued; k++) {
            size_t l = strlen(valued[k]);
            if (strncmp(a, valued[k], l) == 0 && a[l] == '=')
                skip = 1;
            else if (strcmp(a, valued[k]) == 0)
                skip = 2;
        }
        for (size_t k = 0; !operands && k < nflags; k++)
            skip |= strcmp(a, flags[k]) == 0;
        if (skip) {
            i += skip == 2;
            continue;
        }
        if (strcmp(a, "--") == 0)
            operands = 1;
        int plain = *a != '\0';
        for (const char *c = a; *c && plain; c++)
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789_./=,:@%+-",
                           *c) != NULL;
        *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
            continue;
        }
        /* 'it'\''s': a single quote ends, is escaped, and restarts. */
        *p++ = '\'';
        for (const char *c = a; *c; c++) {
            if (*c == '\'') {
                memcpy(p, "'\\''", 4);
                p += 4;
            } else {
                *p++ = *c;
            }
        }
        *p++ = '\'';
        *p = '\0';
    }
    return s;
}

int cli_parse_matrix_view(const char *cmd, const char *val,
                          timber_matrix_view *view)
{
    if (strcmp(val, "auto") == 0)
        *view = TIMBER_VIEW_AUTO;
    else if (strcmp(val, "flatten") == 0)
        *view = TIMBER_VIEW_FLATTEN;
    else
        return cli_usage(cmd, "--matrix-view: '%s' is neither auto nor "
                         "flatten", val);
    return EXIT_OK;
}

int cli_parse_report(const char *cmd, const char *val)
{
    size_t l = strlen(val);
    if ((l > 5 && strcmp(val + l - 5, ".json") == 0) ||
        (l > 4 && strcmp(val + l - 4, ".csv") == 0))
        return EXIT_OK;
    return cli_usage(cmd,
                     "--report '%s': the file name must end in .json or .csv",
                     val);
}

int cli_parse_count(const char *s, size_t limit, size_t *out)
{
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return 0;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > limit)
        return 0;
    *out = (size_t)v;
    return 1;
}

int cli_parse_parts(const char *cmd, const char *val, size_t *parts)
{
    if (cli_parse_count(val, 100000, parts) && *parts > 0)
        return EXIT_OK;
    return cli_usage(cmd, "--parts '%s': not a number of parts from 1 to "
                          "100000",
                     val);
}
