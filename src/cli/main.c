/*
 * main.c — the `timber` command line: argument parsing, dispatch to the
 * commands, and everything the user sees.  It calls only the public API in
 * include/timber.h.
 *
 * Streams: results (tables, JSON) go to stdout and nothing else does, so
 * scripts can pipe them; errors, warnings, progress and summaries go to
 * stderr.  Exit codes (docs/cli.md):
 *   0   success
 *   1   bad input, I/O failure, or any other runtime error
 *   2   usage error (unknown option, bad value, wrong argument count)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "timber.h"

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
};

static const char *progname = "timber";

static void errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see '%s %s--help')\n", progname,
            cmd ? cmd : "");
    va_end(ap);
    return EXIT_USAGE;
}

/* Reports a library error: its message already names file and tensor. */
static int lib_error(const timber_error *err)
{
    errorf("%s", err->message[0] ? err->message
                                 : timber_strerror(err->status));
    return EXIT_FAIL;
}

/* jq's rule: a command whose output could not be written has failed, even
 * if everything else went well (a full disk, a closed pipe). */
static int finish_stdout(int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        errorf("error writing to standard output: %s", strerror(errno));
        return code ? code : EXIT_FAIL;
    }
    return code;
}

/* ------------------------------------------------------------------ help */

static const char main_help[] =
    "usage: timber BASE INSTRUCT OUT [--gamma G] [options]\n"
    "       timber <command> [arguments]\n"
    "\n"
    "Refines an Instruct checkpoint with its paired Base checkpoint, without\n"
    "training (Timber, arXiv 2509.23595): for every weight matrix the delta\n"
    "Instruct - Base keeps its top ceil(eRank) singular components and its\n"
    "tail is multiplied by gamma.\n"
    "\n"
    "commands:\n"
    "  refine BASE INSTRUCT OUT   write the refined checkpoint (the default)\n"
    "  inspect PATH               list the tensors of a checkpoint or shard\n"
    "  help [COMMAND]             show help for a command\n"
    "\n"
    "options:\n"
    "  -h, --help                 show this help\n"
    "  -V, --version              show the version\n"
    "\n"
    "exit codes: 0 success, 1 bad input or I/O failure, 2 usage error.\n"
    "Results go to stdout; errors, warnings and progress to stderr.\n"
    "Documentation: docs/cli.md\n";

static const char inspect_help[] =
    "usage: timber inspect PATH [--json]\n"
    "\n"
    "Lists every tensor of a checkpoint directory (sharded or not) or of one\n"
    ".safetensors file: name, dtype, shape, bytes and shard, then totals.\n"
    "The whole checkpoint is validated first; a malformed shard or an index\n"
    "that disagrees with its shards is an error (exit 1).\n"
    "\n"
    "options:\n"
    "  --json       print the same as one JSON object\n"
    "  -h, --help   show this help\n";

static const char refine_help[] =
    "usage: timber [refine] BASE INSTRUCT OUT [--gamma G]\n"
    "\n"
    "Writes the Timber-refined Instruct checkpoint to the directory OUT.\n"
    "(Refinement is being built; this version can only inspect.)\n";

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static int cmd_inspect(int argc, char **argv);
static int cmd_refine(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"refine", cmd_refine, refine_help},
    {"inspect", cmd_inspect, inspect_help},
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
    if (argc <= 1) {
        fputs(main_help, stdout);
        return finish_stdout(EXIT_OK);
    }
    if (argc > 2)
        return usage_error(NULL, "help takes at most one command name");
    const struct command *c = find_command(argv[1]);
    if (!c)
        return usage_error(NULL, "unknown command '%s'", argv[1]);
    fputs(c->help, stdout);
    return finish_stdout(EXIT_OK);
}

static int is_help_flag(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

/* --------------------------------------------------------------- inspect */

static int inspect_json(const timber_model *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    uint64_t params = 0, bytes = 0;
    size_t n = timber_model_tensor_count(m);
    int ok = root && tensors &&
             cJSON_AddStringToObject(root, "path", timber_model_path(m));
    for (size_t i = 0; ok && i < n; i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(tensors, o);
        ok = ok && cJSON_AddStringToObject(o, "name", t->name) &&
             cJSON_AddStringToObject(o, "dtype", timber_dtype_name(t->dtype));
        cJSON *shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        ok = ok && shape;
        for (size_t d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(shape,
                                      cJSON_CreateNumber((double)t->shape[d]));
        ok = ok && cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes) &&
             cJSON_AddStringToObject(o, "shard", t->shard) &&
             cJSON_AddNumberToObject(o, "offset", (double)t->offset);
        params += t->nelems;
        bytes += t->nbytes;
    }
    cJSON *shards = ok ? cJSON_AddArrayToObject(root, "shards") : NULL;
    ok = ok && shards;
    for (size_t i = 0; ok && i < timber_model_shard_count(m); i++)
        ok = cJSON_AddItemToArray(
            shards, cJSON_CreateString(timber_model_shard_name(m, i)));
    cJSON *extras = ok ? cJSON_AddArrayToObject(root, "extra_files") : NULL;
    ok = ok && extras;
    for (size_t i = 0; ok && i < timber_model_extra_count(m); i++)
        ok = cJSON_AddItemToArray(
            extras, cJSON_CreateString(timber_model_extra_name(m, i)));
    cJSON *tot = ok ? cJSON_AddObjectToObject(root, "totals") : NULL;
    ok = ok && tot &&
         cJSON_AddNumberToObject(tot, "tensors", (double)n) &&
         cJSON_AddNumberToObject(tot, "parameters", (double)params) &&
         cJSON_AddNumberToObject(tot, "bytes", (double)bytes) &&
         cJSON_AddNumberToObject(tot, "shards",
                                 (double)timber_model_shard_count(m));
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        errorf("out of memory formatting JSON");
        return EXIT_FAIL;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return EXIT_OK;
}

static void format_shape(char *buf, size_t size, const timber_tensor_info *t)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, size, "[");
    for (size_t d = 0; d < t->ndim && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", d ? ", " : "",
                               (unsigned long long)t->shape[d]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

static int inspect_text(const timber_model *m)
{
    size_t n = timber_model_tensor_count(m);
    int wname = 4, wshape = 5, wbytes = 5;
    char shape[512];
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        format_shape(shape, sizeof shape, t);
        int l = (int)strlen(t->name);
        wname = l > wname ? l : wname;
        l = (int)strlen(shape);
        wshape = l > wshape ? l : wshape;
        l = snprintf(NULL, 0, "%llu", (unsigned long long)t->nbytes);
        wbytes = l > wbytes ? l : wbytes;
    }
    uint64_t params = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        format_shape(shape, sizeof shape, t);
        printf("%-*s  %-11s  %-*s  %*llu  %s\n", wname, t->name,
               timber_dtype_name(t->dtype), wshape, shape, wbytes,
               (unsigned long long)t->nbytes, t->shard);
        params += t->nelems;
        bytes += t->nbytes;
    }
    size_t ns = timber_model_shard_count(m);
    printf("total: %zu tensor%s, %llu parameters, %llu bytes, %zu shard%s\n",
           n, n == 1 ? "" : "s", (unsigned long long)params,
           (unsigned long long)bytes, ns, ns == 1 ? "" : "s");
    return EXIT_OK;
}

static int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help_flag(a)) {
            fputs(inspect_help, stdout);
            return finish_stdout(EXIT_OK);
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && !path) {
            path = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("inspect ", "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return usage_error("inspect ", "unexpected argument '%s'", a);
        }
    }
    if (!path)
        return usage_error("inspect ", "inspect needs a PATH");
    timber_model *m = NULL;
    timber_error err;
    if (timber_model_open(path, &m, &err) != TIMBER_OK)
        return lib_error(&err);
    int code = json ? inspect_json(m) : inspect_text(m);
    timber_model_free(m);
    return finish_stdout(code);
}

/* ---------------------------------------------------------------- refine */

static int cmd_refine(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (is_help_flag(argv[i])) {
            fputs(refine_help, stdout);
            return finish_stdout(EXIT_OK);
        }
    errorf("refinement is not implemented in this version");
    return EXIT_FAIL;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(NULL, "missing arguments");
    const char *first = argv[1];
    if (is_help_flag(first)) {
        fputs(main_help, stdout);
        return finish_stdout(EXIT_OK);
    }
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0) {
        printf("timber %s\n", timber_version());
        return finish_stdout(EXIT_OK);
    }
    const struct command *c = find_command(first);
    if (c)
        return c->run(argc - 1, argv + 1);
    /* No command word: `timber BASE INSTRUCT OUT ...` means refine. */
    return cmd_refine(argc, argv);
}
