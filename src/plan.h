/*
 * plan.h — pairing Base and Instruct tensors: which are refined, copied or
 * dropped, and why.  The single place where the transform's case table
 * (docs/numerics.md, "The transform, exactly") and the --include/--exclude
 * selection are decided; refine and erank both follow its verdicts.
 */
#ifndef TIMBER_PLAN_H
#define TIMBER_PLAN_H

#include <stddef.h>

#include "timber.h"

typedef struct tb_plan_item {
    const timber_tensor_info *instruct; /* NULL for a Base-only tensor */
    const timber_tensor_info *base;     /* NULL for an Instruct-only one */
    timber_action action;
    char reason[160];
    int shape_mismatch; /* copied because the shapes differ (a warning) */
    uint64_t rows, cols; /* each matrix of a refined tensor */
    uint64_t parts;      /* how many: E for stacked experts, else 1 */
    const char *view;    /* "matrix", "flatten" or "per-expert" */
} tb_plan_item;

typedef struct tb_plan {
    tb_plan_item *items; /* Instruct's tensors in file order, then Base-only */
    size_t n;
    size_t ninstruct;    /* items[0..ninstruct) are Instruct's */
} tb_plan;

typedef struct tb_selection {
    const char *const *include;
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
} tb_selection;

/* Builds the plan.  A bad regex is TIMBER_ERR_INVALID naming it; under
 * strict, a shape mismatch is TIMBER_ERR_SHAPE naming both shapes. */
timber_status tb_plan_build(const timber_model *base,
                            const timber_model *instruct,
                            const tb_selection *sel, int strict,
                            timber_matrix_view view, tb_plan *out,
                            timber_error *err);
void tb_plan_clear(tb_plan *plan);

#endif /* TIMBER_PLAN_H */
