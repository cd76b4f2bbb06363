/*
 * test_plan.c — the case table of src/plan.c (docs/numerics.md, "Which
 * tensors are refined"), row by row: for a Base/Instruct pair holding one
 * tensor per row, the action and the exact reason string of each, that
 * the first applicable row decides (a tensor fitting two rows gets the
 * earlier one), the matrix view (d0 rows, the rest columns), the order of
 * the plan (Instruct's file order, then Base-only tensors), --include and
 * --exclude, --strict, and a bad regular expression (TIMBER_ERR_OPTION).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtype.h"
#include "plan.h"
#include "safetensors.h"
#include "testutil.h"

typedef struct tspec {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    uint64_t shape[3];
} tspec;

/* One shard of zero-valued tensors, through the library's writer. */
static void write_model(const char *dir, const tspec *ts, size_t n)
{
    mkdir(dir, 0777);
    tb_tensor_spec spec[32];
    for (size_t i = 0; i < n; i++)
        spec[i] = (tb_tensor_spec){ts[i].name, ts[i].dtype, ts[i].ndim,
                                   ts[i].shape};
    tb_writer *w = NULL;
    timber_error err;
    timber_status st = tb_writer_create(tu_path(dir, "model.safetensors"),
                                        NULL, 0, spec, n, &w, &err);
    static unsigned char zeros[4096];
    for (size_t i = 0; i < n && !st; i++) {
        uint64_t left = tb_writer_tensor_bytes(w, i);
        while (left && !st) {
            size_t len = left < sizeof zeros ? (size_t)left : sizeof zeros;
            st = tb_writer_put(w, i, zeros, len, &err);
            left -= len;
        }
    }
    if (!st)
        st = tb_writer_commit(w, &err);
    tb_writer_free(w);
    if (st) {
        fprintf(stderr, "fixture %s: %s\n", dir, err.message);
        exit(99);
    }
}

static const tb_plan_item *find(const tb_plan *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++) {
        const timber_tensor_info *t =
            p->items[i].instruct ? p->items[i].instruct : p->items[i].base;
        if (strcmp(t->name, name) == 0)
            return &p->items[i];
    }
    return NULL;
}

typedef struct row {
    const char *name;
    timber_action action;
    const char *reason;
    uint64_t rows, cols; /* refined ones */
} row;

static void check_rows(const char *what, const tb_plan *p, const row *r,
                       size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tb_plan_item *it = find(p, r[i].name);
        CHECKF(it != NULL, "%s: %s missing from the plan", what, r[i].name);
        if (!it)
            continue;
        CHECKF(it->action == r[i].action && strcmp(it->reason, r[i].reason) == 0,
               "%s: %s is %s '%s', expected %s '%s'", what, r[i].name,
               timber_action_name(it->action), it->reason,
               timber_action_name(r[i].action), r[i].reason);
        if (r[i].action == TIMBER_ACTION_REFINED)
            CHECKF(it->rows == r[i].rows && it->cols == r[i].cols,
                   "%s: %s viewed as %llux%llu", what, r[i].name,
                   (unsigned long long)it->rows,
                   (unsigned long long)it->cols);
        CHECKF(it->shape_mismatch == (strstr(r[i].reason, "differs") != NULL),
               "%s: %s shape_mismatch %d", what, r[i].name,
               it->shape_mismatch);
    }
}

int main(void)
{
    char dir[4096], bdir[4096], idir[4096];
    snprintf(dir, sizeof dir, "%s", tu_tempdir("plan"));
    snprintf(bdir, sizeof bdir, "%s", tu_path(dir, "base"));
    snprintf(idir, sizeof idir, "%s", tu_path(dir, "instruct"));
    const tspec inst[] = {
        {"only.inst", TIMBER_DT_I32, 2, {4, 4}}, /* rows 1 and 3: row 1 */
        {"grow", TIMBER_DT_BF16, 2, {6, 4}},
        {"ints.grow", TIMBER_DT_I32, 2, {3, 4}}, /* rows 2 and 3: row 2 */
        {"ints", TIMBER_DT_I32, 2, {4, 4}},
        {"fp8", TIMBER_DT_F8_E4M3, 2, {4, 4}},
        {"base.int", TIMBER_DT_F32, 2, {4, 4}},
        {"scalar", TIMBER_DT_F32, 0, {0}},
        {"bias", TIMBER_DT_F32, 1, {4}},
        {"empty", TIMBER_DT_F32, 2, {0, 4}},
        {"w.sel", TIMBER_DT_F16, 2, {4, 8}},
        {"cube", TIMBER_DT_F32, 3, {2, 3, 4}},
        {"mlp.experts.up", TIMBER_DT_F32, 3, {5, 3, 4}},
        {"mixed", TIMBER_DT_BF16, 2, {8, 2}},
        {"w.f64", TIMBER_DT_F64, 2, {3, 3}},
    };
    const tspec base[] = {
        {"grow", TIMBER_DT_BF16, 2, {5, 4}},
        {"ints.grow", TIMBER_DT_I32, 2, {2, 4}},
        {"ints", TIMBER_DT_I32, 2, {4, 4}},
        {"fp8", TIMBER_DT_F8_E4M3, 2, {4, 4}},
        {"base.int", TIMBER_DT_I8, 2, {4, 4}},
        {"scalar", TIMBER_DT_F32, 0, {0}},
        {"bias", TIMBER_DT_F32, 1, {4}},
        {"empty", TIMBER_DT_F32, 2, {0, 4}},
        {"w.sel", TIMBER_DT_F16, 2, {4, 8}},
        {"cube", TIMBER_DT_F32, 3, {2, 3, 4}},
        {"mlp.experts.up", TIMBER_DT_F32, 3, {5, 3, 4}},
        {"mixed", TIMBER_DT_F32, 2, {8, 2}},
        {"w.f64", TIMBER_DT_F64, 2, {3, 3}},
        {"only.base", TIMBER_DT_F32, 2, {2, 2}},
    };
    size_t ni = sizeof inst / sizeof *inst, nb = sizeof base / sizeof *base;
    write_model(bdir, base, nb);
    write_model(idir, inst, ni);
    timber_model *B = NULL, *I = NULL;
    timber_error err;
    if (!CHECK_OK("open base", timber_model_open(bdir, &B, &err), &err) ||
        !CHECK_OK("open instruct", timber_model_open(idir, &I, &err), &err))
        return tu_report();

    const row all[] = {
        {"only.inst", TIMBER_ACTION_COPIED, "only in Instruct", 0, 0},
        {"grow", TIMBER_ACTION_COPIED, "shape [6, 4] differs from Base's [5, 4]",
         0, 0},
        {"ints.grow", TIMBER_ACTION_COPIED,
         "shape [3, 4] differs from Base's [2, 4]", 0, 0},
        {"ints", TIMBER_ACTION_COPIED, "dtype I32 is not refined", 0, 0},
        {"fp8", TIMBER_ACTION_COPIED, "dtype F8_E4M3 is not refined", 0, 0},
        {"base.int", TIMBER_ACTION_COPIED, "Base's dtype I8 is not refined", 0,
         0},
        {"scalar", TIMBER_ACTION_COPIED, "scalar", 0, 0},
        {"bias", TIMBER_ACTION_COPIED, "1-D tensor", 0, 0},
        {"empty", TIMBER_ACTION_COPIED, "empty tensor", 0, 0},
        {"w.sel", TIMBER_ACTION_REFINED, "", 4, 8},
        {"cube", TIMBER_ACTION_REFINED, "", 2, 12},
        {"mlp.experts.up", TIMBER_ACTION_REFINED, "", 3, 4},
        {"mixed", TIMBER_ACTION_REFINED, "", 8, 2},
        {"w.f64", TIMBER_ACTION_REFINED, "", 3, 3},
        {"only.base", TIMBER_ACTION_DROPPED, "only in Base", 0, 0},
    };
    size_t nrows = sizeof all / sizeof *all;
    tb_plan p;
    timber_status st = tb_plan_build(B, I, NULL, 0, TIMBER_VIEW_AUTO, &p, &err);
    if (CHECK_OK("plan", st, &err)) {
        check_rows("no selection", &p, all, nrows);
        /* Instruct's tensors in its file order, then Base-only ones. */
        CHECK(p.n == ni + 1 && p.ninstruct == ni);
        for (size_t i = 0; i < ni && i < p.n; i++)
            CHECKF(p.items[i].instruct ==
                       timber_model_tensor(I, i),
                   "item %zu is not Instruct's tensor %zu", i, i);
        CHECK(p.n == ni + 1 && !p.items[ni].instruct &&
              strcmp(p.items[ni].base->name, "only.base") == 0);
        /* Matrix views: a stack of experts is E matrices, another 3-D
         * tensor d0 x rest, a 2-D one itself. */
        const tb_plan_item *ex = find(&p, "mlp.experts.up");
        const tb_plan_item *cube = find(&p, "cube");
        const tb_plan_item *w = find(&p, "w.sel");
        CHECK(ex && ex->parts == 5 && strcmp(ex->view, "per-expert") == 0);
        CHECK(cube && cube->parts == 1 && strcmp(cube->view, "flatten") == 0);
        CHECK(w && w->parts == 1 && strcmp(w->view, "matrix") == 0);
        tb_plan_clear(&p);
    }
    /* --matrix-view flatten: the stack is d0 x rest too. */
    st = tb_plan_build(B, I, NULL, 0, TIMBER_VIEW_FLATTEN, &p, &err);
    if (CHECK_OK("flatten", st, &err)) {
        const row r[] = {
            {"mlp.experts.up", TIMBER_ACTION_REFINED, "", 5, 12},
            {"cube", TIMBER_ACTION_REFINED, "", 2, 12},
        };
        check_rows("flatten", &p, r, sizeof r / sizeof *r);
        const tb_plan_item *ex = find(&p, "mlp.experts.up");
        CHECK(ex && ex->parts == 1 && strcmp(ex->view, "flatten") == 0);
        tb_plan_clear(&p);
    }

    /* --include: only matching names are refined; the rows above the
     * selection still decide first (bias stays "1-D tensor"). */
    const char *inc[] = {"^w\\."};
    tb_selection sel = {inc, 1, NULL, 0};
    st = tb_plan_build(B, I, &sel, 0, TIMBER_VIEW_AUTO, &p, &err);
    if (CHECK_OK("include", st, &err)) {
        const row r[] = {
            {"w.sel", TIMBER_ACTION_REFINED, "", 4, 8},
            {"w.f64", TIMBER_ACTION_REFINED, "", 3, 3},
            {"cube", TIMBER_ACTION_COPIED, "not selected", 0, 0},
            {"mixed", TIMBER_ACTION_COPIED, "not selected", 0, 0},
            {"bias", TIMBER_ACTION_COPIED, "1-D tensor", 0, 0},
            {"only.base", TIMBER_ACTION_DROPPED, "only in Base", 0, 0},
        };
        check_rows("include", &p, r, sizeof r / sizeof *r);
        tb_plan_clear(&p);
    }
    /* --exclude wins over --include; several patterns of each. */
    const char *inc2[] = {"^w\\.", "cube"}, *exc[] = {"f64$", "nothing"};
    sel = (tb_selection){inc2, 2, exc, 2};
    st = tb_plan_build(B, I, &sel, 0, TIMBER_VIEW_AUTO, &p, &err);
    if (CHECK_OK("exclude", st, &err)) {
        const row r[] = {
            {"w.sel", TIMBER_ACTION_REFINED, "", 4, 8},
            {"cube", TIMBER_ACTION_REFINED, "", 2, 12},
            {"w.f64", TIMBER_ACTION_COPIED, "not selected", 0, 0},
            {"mixed", TIMBER_ACTION_COPIED, "not selected", 0, 0},
        };
        check_rows("exclude", &p, r, sizeof r / sizeof *r);
        tb_plan_clear(&p);
    }
    /* --strict: the first shape mismatch in file order (the writer lays
     * I32 out before BF16) is an error naming both shapes and files. */
    st = tb_plan_build(B, I, NULL, 1, TIMBER_VIEW_AUTO, &p, &err);
    CHECK_ERROR("strict", st, &err, TIMBER_ERR_SHAPE, "'ints.grow'",
                "[3, 4]", "[2, 4]", "--strict", idir, bdir);
    CHECK(p.n == 0 && p.items == NULL);
    /* A bad regex is an option error naming the option and the pattern. */
    const char *bad[] = {"(unclosed"};
    sel = (tb_selection){NULL, 0, bad, 1};
    st = tb_plan_build(B, I, &sel, 0, TIMBER_VIEW_AUTO, &p, &err);
    CHECK_ERROR("bad regex", st, &err, TIMBER_ERR_OPTION, "--exclude",
                "(unclosed", "invalid regular expression");
    timber_model_free(B);
    timber_model_free(I);
    return tu_report();
}
