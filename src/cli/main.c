/*
 * main.c — the `timber` command line: dispatch to the commands, help and
 * version, and the message helpers every command shares (cli.h).
 *
 * Exit codes: 0 success; 1 bad input, I/O failure or other runtime error;
 * 2 usage error; 130/143 interrupted by SIGINT/SIGTERM (nothing written).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char progname[] = "timber";

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: warning: ", progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see '%s %s%s--help')\n", progname, cmd ? cmd : "",
            cmd ? " " : "");
    va_end(ap);
    return EXIT_USAGE;
}

int cli_lib_error(const timber_error *err)
{
    cli_errorf("%s", err->message[0] ? err->message
                                     : timber_strerror(err->status));
    return EXIT_FAIL;
}

int cli_finish_stdout(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_errorf("error writing to standard output: %s", strerror(errno));
        return code ? code : EXIT_FAIL;
    }
    return code;
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
        char buf[64];
        char *end = NULL;
        double v = NAN;
        if (len > 0 && len < sizeof buf) {
            memcpy(buf, p, len);
            buf[len] = '\0';
            errno = 0;
            v = strtod(buf, &end);
            if (errno || end == buf || *end != '\0')
                v = NAN;
        }
        if (!(v >= 0.0 && v <= 1.0)) {
            free(g);
            cli_usage("refine", "--gamma: '%.*s' is not a number in [0, 1]",
                      (int)(len < 60 ? len : 60), p);
            return -1;
        }
        g[i] = v;
        p = comma ? comma + 1 : p + len;
    }
    *out = g;
    return (int)n;
}

static const char main_help[] =
    "usage: timber BASE INSTRUCT OUT [--gamma G] [options]\n"
    "       timber <command> [arguments]\n"
    "\n"
    "Refines an Instruct checkpoint with its paired Base checkpoint, without\n"
    "training (Timber, arXiv 2509.23595): for every weight matrix the delta\n"
    "D = Instruct - Base keeps its top k = ceil(eRank(D)) singular\n"
    "components whole and its tail is multiplied by gamma.\n"
    "\n"
    "commands:\n"
    "  refine BASE INSTRUCT OUT   write the refined checkpoint (the default)\n"
    "  inspect PATH               list the tensors of a checkpoint or shard\n"
    "  erank BASE INSTRUCT        effective ranks of Base, Instruct and delta\n"
    "  erank MODEL                effective rank of each weight matrix\n"
    "  cache info|verify FILE     describe or check an SVD cache file\n"
    "  help [COMMAND]             show help for a command\n"
    "\n"
    "options:\n"
    "  -h, --help                 show this help\n"
    "  -V, --version              show the version\n"
    "\n"
    "exit codes: 0 success, 1 bad input or I/O failure, 2 usage error,\n"
    "130/143 interrupted by SIGINT/SIGTERM (nothing is left behind).\n"
    "Results go to stdout; errors, warnings, progress and summaries to\n"
    "stderr.  Documentation: docs/cli.md\n";

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"refine", cmd_refine, cli_refine_help},
    {"inspect", cmd_inspect, cli_inspect_help},
    {"erank", cmd_erank, cli_erank_help},
    {"cache", cmd_cache, cli_cache_help},
    {"help", cmd_help, main_help},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cmd_help(int argc, char **argv)
{
    if (argc <= 1)
        return cli_print_help(main_help);
    if (argc > 2)
        return cli_usage(NULL, "help takes at most one command name");
    const struct command *c = find_command(argv[1]);
    if (!c)
        return cli_usage(NULL, "unknown command '%s'", argv[1]);
    return cli_print_help(c->help);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(NULL, "missing arguments");
    const char *first = argv[1];
    if (cli_is_help(first))
        return cli_print_help(main_help);
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0) {
        printf("timber %s\n", timber_version());
        return cli_finish_stdout(EXIT_OK);
    }
    const struct command *c = find_command(first);
    if (c)
        return c->run(argc - 1, argv + 1);
    /* No command word: `timber BASE INSTRUCT OUT ...` means refine. */
    return cmd_refine(argc, argv);
}
