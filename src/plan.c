/*
 * plan.c — the case table of the transform, applied to a Base/Instruct
 * pair (see plan.h).  Every decision carries its reason, so reports and
 * warnings can say exactly why a tensor was not refined.
 */
#include "plan.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void tb_plan_clear(tb_plan *plan)
{
    free(plan->items);
    memset(plan, 0, sizeof *plan);
}

typedef struct compiled {
    regex_t *inc, *exc;
    size_t ninc, nexc;
} compiled;

static void free_compiled(compiled *c)
{
    for (size_t i = 0; i < c->ninc; i++)
        regfree(&c->inc[i]);
    for (size_t i = 0; i < c->nexc; i++)
        regfree(&c->exc[i]);
    free(c->inc);
    free(c->exc);
}

static timber_status compile_list(const char *const *src, size_t n,
                                  regex_t **out, size_t *nout,
                                  const char *flag, timber_error *err)
{
    *out = tb_calloc_array(n, sizeof(regex_t));
    if (!*out)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc = regcomp(&(*out)[i], src[i], REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &(*out)[i], msg, sizeof msg);
            return tb_fail(err, TIMBER_ERR_OPTION,
                           "%s '%s': invalid regular expression: %s", flag,
                           src[i], msg);
        }
        (*nout)++;
    }
    return TIMBER_OK;
}

static int matches_any(const regex_t *r, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (regexec(&r[i], name, 0, NULL, 0) == 0)
            return 1;
    return 0;
}

static int same_shape(const timber_tensor_info *a, const timber_tensor_info *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (size_t d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return 0;
    return 1;
}

/* Fills in action and reason for an Instruct tensor. */
static timber_status decide(tb_plan_item *it, const compiled *sel, int strict,
                            timber_matrix_view view, const char *base_path,
                            const char *inst_path, timber_error *err)
{
    const timber_tensor_info *I = it->instruct, *B = it->base;
    it->action = TIMBER_ACTION_COPIED;
    if (!B) {
        snprintf(it->reason, sizeof it->reason, "only in Instruct");
        return TIMBER_OK;
    }
    if (!same_shape(I, B)) {
        char si[64], sb[64];
        tb_format_shape(si, sizeof si, I->ndim, I->shape);
        tb_format_shape(sb, sizeof sb, B->ndim, B->shape);
        if (strict)
            return tb_fail(err, TIMBER_ERR_SHAPE,
                           "tensor '%s': shape %s in %s but %s in %s "
                           "(--strict)",
                           I->name, si, inst_path, sb, base_path);
        snprintf(it->reason, sizeof it->reason,
                 "shape %s differs from Base's %s", si, sb);
        it->shape_mismatch = 1;
        return TIMBER_OK;
    }
    if (!timber_dtype_is_refinable(I->dtype)) {
        snprintf(it->reason, sizeof it->reason, "dtype %s is not refined",
                 timber_dtype_name(I->dtype));
        return TIMBER_OK;
    }
    if (!timber_dtype_is_refinable(B->dtype)) {
        snprintf(it->reason, sizeof it->reason,
                 "Base's dtype %s is not refined",
                 timber_dtype_name(B->dtype));
        return TIMBER_OK;
    }
    if (I->ndim < 2) {
        snprintf(it->reason, sizeof it->reason, "%s",
                 I->ndim == 0 ? "scalar" : "1-D tensor");
        return TIMBER_OK;
    }
    if (I->nelems == 0) {
        snprintf(it->reason, sizeof it->reason, "empty tensor");
        return TIMBER_OK;
    }
    if ((sel->ninc && !matches_any(sel->inc, sel->ninc, I->name)) ||
        matches_any(sel->exc, sel->nexc, I->name)) {
        snprintf(it->reason, sizeof it->reason, "not selected");
        return TIMBER_OK;
    }
    it->action = TIMBER_ACTION_REFINED;
    it->reason[0] = '\0';
    /* A stack of experts [E, a, b] is E matrices a x b (each expert's
     * weight); any other tensor the authors' d0 rows x the rest. */
    it->parts = 1;
    if (I->ndim == 3 && view != TIMBER_VIEW_FLATTEN &&
        timber_module_type(I->name) == TIMBER_MOD_EXPERTS) {
        it->parts = I->shape[0];
        it->rows = I->shape[1];
        it->cols = I->shape[2];
        it->view = "per-expert";
        return TIMBER_OK;
    }
    it->rows = I->shape[0];
    it->cols = I->nelems / I->shape[0];
    it->view = I->ndim == 2 ? "matrix" : "flatten";
    return TIMBER_OK;
}

timber_status tb_plan_build(const timber_model *base,
                            const timber_model *instruct,
                            const tb_selection *selection, int strict,
                            timber_matrix_view view, tb_plan *out,
                            timber_error *err)
{
    memset(out, 0, sizeof *out);
    compiled sel = {0};
    timber_status st = TIMBER_OK;
    if (selection) {
        st = compile_list(selection->include, selection->ninclude, &sel.inc,
                          &sel.ninc, "--include", err);
        if (!st)
            st = compile_list(selection->exclude, selection->nexclude,
                              &sel.exc, &sel.nexc, "--exclude", err);
        if (st) {
            free_compiled(&sel);
            return st;
        }
    }
    size_t ni = timber_model_tensor_count(instruct);
    size_t nb = timber_model_tensor_count(base);
    out->items = tb_calloc_array(ni + nb, sizeof *out->items);
    if (!out->items) {
        free_compiled(&sel);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < ni && !st; i++) {
        tb_plan_item *it = &out->items[out->n++];
        it->instruct = timber_model_tensor(instruct, i);
        it->base = timber_model_find(base, it->instruct->name);
        st = decide(it, &sel, strict, view, timber_model_path(base),
                    timber_model_path(instruct), err);
    }
    out->ninstruct = out->n;
    for (size_t i = 0; i < nb && !st; i++) {
        const timber_tensor_info *b = timber_model_tensor(base, i);
        if (timber_model_find(instruct, b->name))
            continue;
        tb_plan_item *it = &out->items[out->n++];
        it->base = b;
        it->action = TIMBER_ACTION_DROPPED;
        snprintf(it->reason, sizeof it->reason, "only in Base");
    }
    free_compiled(&sel);
    if (st)
        tb_plan_clear(out);
    return st;
}
