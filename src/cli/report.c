/*
 * report.c — the per-tensor report of a refinement run, as JSON or CSV:
 * name, shape, dtype, action (and why), rank r, eRank, k, the share of
 * the delta's energy in the tail, and where the tensor's time went (its
 * wall seconds and their split by phase).  Written whole or not at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static void shape_text(char *buf, size_t size, const timber_tensor_report *t)
{
    cli_format_shape(buf, size, t->ndim, t->shape, "x", 0);
}

static int write_json(FILE *f, const timber_result *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *gam = cJSON_AddArrayToObject(root, "gammas");
    cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
    int ok = root && gam && arr;
    for (size_t g = 0; ok && g < timber_result_gamma_count(r); g++)
        ok = cJSON_AddItemToArray(
            gam, cJSON_CreateNumber(timber_result_gamma(r, g)));
    for (size_t i = 0; ok && i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        if (t->elsewhere) /* another part's */
            continue;
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) &&
             cJSON_AddStringToObject(o, "name", t->name);
        cJSON *shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        ok = ok && shape;
        for (size_t d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(
                shape, cJSON_CreateNumber((double)t->shape[d]));
        ok = ok &&
             cJSON_AddStringToObject(o, "dtype",
                                     timber_dtype_name(t->dtype)) &&
             cJSON_AddStringToObject(o, "action",
                                     timber_action_name(t->action)) &&
             cJSON_AddStringToObject(o, "reason", t->reason);
        if (ok && t->action == TIMBER_ACTION_REFINED)
            ok = cJSON_AddNumberToObject(o, "rows", (double)t->rows) &&
                 cJSON_AddNumberToObject(o, "cols", (double)t->cols) &&
                 cJSON_AddNumberToObject(o, "rank", (double)t->rank) &&
                 cJSON_AddNumberToObject(o, "erank", t->erank) &&
                 cJSON_AddNumberToObject(o, "k", (double)t->k) &&
                 cJSON_AddNumberToObject(o, "tail_energy", t->tail_energy) &&
                 cJSON_AddStringToObject(o, "view", t->view) &&
                 cJSON_AddNumberToObject(o, "matrices", (double)t->parts);
        if (ok && t->action != TIMBER_ACTION_DROPPED) {
            cJSON *ph = NULL;
            ok = cJSON_AddNumberToObject(o, "seconds", t->seconds) &&
                 (ph = cJSON_AddObjectToObject(o, "phases")) != NULL;
            for (int p = 0; ok && p < TIMBER_PHASE_COUNT; p++)
                ok = cJSON_AddNumberToObject(ph, timber_phase_name(p),
                                             t->phase_seconds[p]) != NULL;
        }
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return -1;
    int rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;
    free(text);
    return rc;
}

static int write_csv(FILE *f, const timber_result *r)
{
    fputs("name,shape,dtype,action,reason,rank,erank,k,tail_energy,view,"
          "matrices,seconds",
          f);
    for (int p = 0; p < TIMBER_PHASE_COUNT; p++)
        fprintf(f, ",%s_s", timber_phase_name(p));
    fputc('\n', f);
    for (size_t i = 0; i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        if (t->elsewhere) /* another part's */
            continue;
        char shape[256];
        shape_text(shape, sizeof shape, t);
        cli_csv_field(f, t->name);
        fprintf(f, ",%s,%s,%s,", shape, timber_dtype_name(t->dtype),
                timber_action_name(t->action));
        cli_csv_field(f, t->reason);
        if (t->action == TIMBER_ACTION_REFINED)
            fprintf(f, ",%llu,%.17g,%llu,%.17g,%s,%llu",
                    (unsigned long long)t->rank, t->erank,
                    (unsigned long long)t->k, t->tail_energy, t->view,
                    (unsigned long long)t->parts);
        else
            fputs(",,,,,,", f);
        if (t->action == TIMBER_ACTION_DROPPED) {
            for (int p = 0; p <= TIMBER_PHASE_COUNT; p++)
                fputc(',', f);
        } else {
            fprintf(f, ",%.9g", t->seconds);
            for (int p = 0; p < TIMBER_PHASE_COUNT; p++)
                fprintf(f, ",%.9g", t->phase_seconds[p]);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

int cli_write_report(const char *path, const timber_result *r)
{
    size_t l = strlen(path);
    int json = l > 5 && strcmp(path + l - 5, ".json") == 0;
    /* Built in memory, then written through a temporary and a rename: a
     * report is either complete or absent. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        cli_errorf("out of memory");
        return EXIT_FAIL;
    }
    int rc = json ? write_json(f, r) : write_csv(f, r);
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        cli_errorf("%s: out of memory building the report", path);
    else if (cli_write_file(path, text, len) != 0)
        rc = -1; /* said by cli_write_file */
    free(text);
    return rc ? EXIT_FAIL : EXIT_OK;
}
