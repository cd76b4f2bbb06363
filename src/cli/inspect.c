/*
 * inspect.c — `timber inspect PATH [--json]`: every tensor of a checkpoint
 * (or one shard) with dtype, shape, bytes and shard, then totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

const char cli_inspect_help[] =
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

static int inspect_json(const timber_model *m)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    uint64_t params = 0, bytes = 0;
    size_t n = timber_model_tensor_count(m);
    int ok = root && tensors &&
             cJSON_AddStringToObject(root, "path", timber_model_path(m));
    /* A repo id from the Hub cache: which one, and which snapshot. */
    const timber_location *loc = timber_model_location(m);
    if (ok && timber_location_repo(loc)) {
        cJSON *hub = cJSON_AddObjectToObject(root, "hub");
        ok = hub &&
             cJSON_AddStringToObject(hub, "repo", timber_location_repo(loc)) &&
             cJSON_AddStringToObject(hub, "revision",
                                     timber_location_revision(loc)) &&
             cJSON_AddStringToObject(hub, "commit",
                                     timber_location_commit(loc));
    }
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
        cli_errorf("out of memory formatting JSON");
        return EXIT_FAIL;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return EXIT_OK;
}

static void format_shape(char *buf, size_t size, const timber_tensor_info *t)
{
    cli_format_shape(buf, size, t->ndim, t->shape, ", ", 1);
}

static int inspect_text(const timber_model *m)
{
    size_t n = timber_model_tensor_count(m);
    int wname = 4, wshape = 5, wbytes = 5;
    char shape[512];
    for (size_t i = 0; i < n; i++) {
        const timber_tensor_info *t = timber_model_tensor(m, i);
        format_shape(shape, sizeof shape, t);
        /* A name as one table cell: control characters (legal in JSON
         * strings, so possible in a valid header) are escaped. */
        char *name = cli_escape(t->name);
        int l = name ? (int)strlen(name) : 0;
        free(name);
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
        char *name = cli_escape(t->name);
        char *shard = cli_escape(t->shard);
        printf("%-*s  %-11s  %-*s  %*llu  %s\n", wname, name ? name : "?",
               timber_dtype_name(t->dtype), wshape, shape, wbytes,
               (unsigned long long)t->nbytes, shard ? shard : "?");
        free(name);
        free(shard);
        params += t->nelems;
        bytes += t->nbytes;
    }
    size_t ns = timber_model_shard_count(m);
    printf("total: %zu tensor%s, %llu parameters, %llu bytes, %zu shard%s\n",
           n, n == 1 ? "" : "s", (unsigned long long)params,
           (unsigned long long)bytes, ns, ns == 1 ? "" : "s");
    return EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            return cli_print_help(cli_inspect_help);
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && !path) {
            path = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage("inspect", "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return cli_usage("inspect", "unexpected argument '%s'", a);
        }
    }
    if (!path)
        return cli_usage("inspect", "inspect needs a PATH");
    timber_model *m = NULL;
    timber_error err;
    if (timber_model_open(path, &m, &err) != TIMBER_OK)
        return cli_lib_error(&err);
    const char *note = timber_location_note(timber_model_location(m));
    if (note)
        cli_warnf("%s", note);
    int code = json ? inspect_json(m) : inspect_text(m);
    timber_model_free(m);
    return cli_finish_stdout(code);
}

