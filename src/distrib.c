/*
 * distrib.c — a refinement split into parts (docs/distributed.md): a
 * part's staging (the shared manifest, the preallocated shards, what its
 * journal shows is already on disk) and its completion record; finalize
 * (the parts' records checked, every tensor's bytes checked against
 * them, then the same finish and publish phases as a one-machine run);
 * and the plan that `timber plan` prints.  The file formats and the split
 * are parts.c's; the compute is refine.c's, shared by every kind of run.
 */
#include "timber.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "parallel.h"
#include "parts.h"
#include "run.h"
#include "tempfile.h"
#include "util.h"

/* The CRC-32 of item i's bytes in each gamma's shard. */
static timber_status item_crcs(const run *R, size_t i, uint32_t *crc,
                               timber_error *err)
{
    const out_shard *o = &R->shards[R->item_shard[i]];
    size_t idx = i - o->first;
    timber_status st = TIMBER_OK;
    for (size_t g = 0; g < R->ng && !st; g++)
        st = tb_parts_crc(tb_writer_file(o->w[g]),
                          tb_writer_tensor_offset(o->w[g], idx),
                          tb_writer_tensor_bytes(o->w[g], idx), &crc[g], err);
    return st;
}

/* Item i's report from a part's entry (a tensor this process did not
 * compute: an earlier try of this part, or, in finalize, any part). */
static void report_from_entry(run *R, const tb_part_entry *e)
{
    const tb_plan_item *it = &R->plan.items[e->item];
    timber_tensor_report *rep = &R->res->reports[e->item];
    if (it->action == TIMBER_ACTION_REFINED) {
        rep->rows = it->rows;
        rep->cols = it->cols;
        rep->rank = it->rows < it->cols ? it->rows : it->cols;
        rep->erank = e->erank;
        rep->k = e->k;
        rep->tail_energy = e->tail;
        rep->from_cache = e->from_cache;
    }
    rep->elsewhere = 0;
}

/* Whether crc, the CRC-32s of item e->item's bytes in every gamma's
 * shard, are those the entry records; if so the bytes count as written. */
static int adopt_crcs(run *R, const tb_part_entry *e, const uint32_t *crc)
{
    int same = memcmp(crc, e->crc, R->ng * sizeof *crc) == 0;
    if (same) {
        out_shard *o = &R->shards[R->item_shard[e->item]];
        for (size_t g = 0; g < R->ng; g++)
            tb_writer_mark_written(o->w[g], e->item - o->first);
        R->entries[e->item] = *e;
        R->have[e->item] = 1;
        report_from_entry(R, e);
    }
    return same;
}

/* adopt_crcs of the bytes on disk now. */
static timber_status adopt_entry(run *R, const tb_part_entry *e, int *same,
                                 timber_error *err)
{
    uint32_t crc[64];
    timber_status st = item_crcs(R, e->item, crc, err);
    *same = !st && adopt_crcs(R, e, crc);
    return st;
}

static timber_status mkdir_shared(const char *path, timber_error *err)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot create",
                             path);
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tb_fail(err, TIMBER_ERR_INVALID, "%s: not a directory", path);
    return TIMBER_OK;
}

/* The split, and the per-item bookkeeping of a distributed run. */
static timber_status assign_parts(run *R, timber_error *err)
{
    size_t n = R->plan.ninstruct;
    R->part_of = tb_calloc_array(n ? n : 1, sizeof *R->part_of);
    R->mine = tb_calloc_array(n ? n : 1, sizeof *R->mine);
    R->entries = tb_calloc_array(n ? n : 1, sizeof *R->entries);
    R->have = tb_calloc_array(n ? n : 1, 1);
    if (!R->part_of || !R->mine || !R->entries || !R->have)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    return tb_parts_assign(&R->plan, R->ng, R->nparts, R->part_of, err);
}

/* What a part records of the run in run.json. */
static timber_status describe_run(run *R, const char *base_arg,
                                  const char *inst_arg, timber_error *err)
{
    tb_manifest *m = &R->man;
    const timber_refine_options *o = R->opt;
    snprintf(m->version, sizeof m->version, "%s", TIMBER_VERSION_STRING);
    memcpy(m->fingerprint, R->fingerprint, sizeof m->fingerprint);
    m->nparts = R->nparts;
    m->strict = o->strict;
    m->view = o->matrix_view;
    m->gammas = tb_calloc_array(R->ng, sizeof(double));
    m->include = tb_calloc_array(o->ninclude + 1, sizeof(char *));
    m->exclude = tb_calloc_array(o->nexclude + 1, sizeof(char *));
    if (!m->gammas || !m->include || !m->exclude)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    m->ngammas = R->ng;
    memcpy(m->gammas, R->res->gammas, R->ng * sizeof(double));
    for (; m->ninclude < o->ninclude; m->ninclude++)
        if (!(m->include[m->ninclude] = tb_strdup(o->include[m->ninclude])))
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (; m->nexclude < o->nexclude; m->nexclude++)
        if (!(m->exclude[m->nexclude] = tb_strdup(o->exclude[m->nexclude])))
            return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    m->base_repo = timber_location_repo(timber_model_location(R->base)) != 0;
    m->instruct_repo =
        timber_location_repo(timber_model_location(R->inst)) != 0;
    m->base_dir = realpath(timber_model_path(R->base), NULL);
    m->instruct_dir = realpath(timber_model_path(R->inst), NULL);
    if (!m->base_dir || !m->instruct_dir)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                             "%s: cannot resolve its path",
                             m->base_dir ? timber_model_path(R->inst)
                                         : timber_model_path(R->base));
    m->base_arg = tb_strdup(base_arg);
    m->instruct_arg = tb_strdup(inst_arg);
    m->command = o->command ? tb_strdup(o->command) : NULL;
    const char *rerun = o->part_command ? o->part_command : o->command;
    m->rerun = rerun ? tb_strdup(rerun) : NULL;
    if (!m->base_arg || !m->instruct_arg || (o->command && !m->command) ||
        (rerun && !m->rerun))
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    return TIMBER_OK;
}

/* Phase "stage a part": the staging directory and its manifest (made by
 * the first part, agreed with by the others), every output shard open in
 * place, and the tensors of this part that an earlier try already wrote
 * (its journal, each checked against the bytes on disk). */
timber_status tb_run_stage_part(run *R, const char *base_arg,
                                const char *inst_arg, timber_error *err)
{
    timber_status st;
    if (!(R->staging = tb_parts_staging(R->out)) ||
        !(R->build = tb_path_join(R->staging, "out")))
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    char *parts_dir = tb_path_join(R->staging, "parts");
    if (!parts_dir)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if ((st = mkdir_shared(R->staging, err)) ||
        (st = mkdir_shared(parts_dir, err)) ||
        (st = describe_run(R, base_arg, inst_arg, err)) ||
        (st = tb_manifest_settle(R->staging, &R->man, err)) ||
        (st = mkdir_shared(R->build, err)) ||
        (st = tb_run_make_gamma_dirs(R, err)) || (st = tb_run_open_shards(R, err)) ||
        (st = assign_parts(R, err))) {
        free(parts_dir);
        return st;
    }
    free(parts_dir);
    if (!(R->journal = tb_part_file(R->staging, R->part_i, R->nparts, "log")))
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    tb_part_entry *done = NULL;
    size_t ndone = 0;
    st = tb_journal_read(R->journal, R->man.run_id, R->ng, R->plan.ninstruct,
                         &done, &ndone, err);
    for (size_t j = 0; !st && j < ndone; j++) {
        int same;
        if (R->part_of[done[j].item] == R->part_i &&
            !R->have[done[j].item]) {
            st = adopt_entry(R, &done[j], &same, err);
            R->res->part_kept += !st && same;
        }
    }
    free(done);
    for (size_t i = 0; i < R->plan.n; i++) {
        int in_part = i < R->plan.ninstruct && R->part_of[i] == R->part_i;
        R->res->reports[i].elsewhere = !in_part;
        if (in_part && !R->have[i])
            R->mine[R->nmine++] = i;
        if (in_part)
            R->res->bytes_written +=
                R->plan.items[i].instruct->nbytes * (uint64_t)R->ng;
    }
    return st;
}

/* Phase "complete a part": its shards fsynced, then its completion
 * record, written atomically: after it, finalize may publish. */
timber_status tb_run_complete_part(run *R, timber_error *err)
{
    timber_status st = TIMBER_OK;
    size_t n = 0;
    tb_part_entry *e = NULL;
    if (tb_run_cancelled(R))
        return tb_run_interrupted(err);
    for (size_t s = 0; s < R->nshards && !st; s++) {
        int touched = 0;
        for (size_t i = 0; i < R->shards[s].n && !touched; i++)
            touched = R->part_of[R->shards[s].first + i] == R->part_i;
        for (size_t g = 0; touched && g < R->ng && !st; g++)
            st = tb_writer_sync(R->shards[s].w[g], err);
    }
    if (!st)
        st = tb_model_check(R->base, err);
    if (!st)
        st = tb_model_check(R->inst, err);
    if (!st && !(e = tb_calloc_array(R->plan.ninstruct + 1, sizeof *e)))
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < R->plan.ninstruct; i++)
        if (R->part_of[i] == R->part_i) {
            assert(R->have[i]);
            e[n++] = R->entries[i];
        }
    char *path = st ? NULL
                    : tb_part_file(R->staging, R->part_i, R->nparts, "done");
    if (!st && !path)
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if (!st)
        st = tb_done_write(path, R->man.run_id, R->part_i, R->nparts, e, n,
                           R->ng, err);
    free(path);
    free(e);
    return st;
}

/* "parts 1/4, 3/4" into b, for the parts flagged in bad[]. */
static void name_parts(tb_buf *b, const unsigned char *bad, size_t nparts)
{
    size_t count = 0, shown = 0;
    for (size_t p = 0; p < nparts; p++)
        count += bad[p];
    tb_buf_puts(b, count == 1 ? "part " : "parts ");
    for (size_t p = 0; p < nparts; p++) {
        if (!bad[p])
            continue;
        if (shown == 20) {
            tb_buf_printf(b, " and %zu more", count - shown);
            break;
        }
        tb_buf_printf(b, "%s%zu/%zu", shown ? ", " : "", p, nparts);
        shown++;
    }
}

/* "rerun them: COMMAND --part I/N" (the first such part). */
static void rerun_hint(tb_buf *b, const run *R, size_t first)
{
    const char *cmd = R->man.rerun ? R->man.rerun : R->man.command;
    if (cmd)
        tb_buf_printf(b, "; rerun with the parts' command and --part I/N, "
                         "e.g. %s --part %zu/%zu, then finalize again",
                      cmd, first, R->nparts);
    else
        tb_buf_printf(b, "; rerun timber_refine() for them (part_index %zu "
                         "of %zu first), then finalize again",
                      first, R->nparts);
}

/* Phase "check the parts" (finalize): every part's completion record is
 * there, of this run, and lists exactly the part's tensors; then every
 * tensor's bytes match its record. */
static timber_status check_parts(run *R, timber_error *err)
{
    size_t N = R->nparts;
    unsigned char *bad = tb_calloc_array(N, 1);
    size_t *count = tb_calloc_array(N, sizeof *count);
    timber_status st = TIMBER_OK;
    size_t nbad = 0, first = 0;
    char why[1100] = "";
    if (!bad || !count) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < R->plan.ninstruct; i++)
        count[R->part_of[i]]++;
    for (size_t p = 0; p < N && !st; p++) {
        char *path = tb_part_file(R->staging, p, N, "done");
        tb_part_entry *e = NULL;
        size_t n = 0;
        int found = 0;
        timber_error perr;
        timber_status ps =
            path ? tb_done_read(path, R->man.run_id, p, N, R->ng,
                                R->plan.ninstruct, &e, &n, &found, &perr)
                 : tb_fail(&perr, TIMBER_ERR_NOMEM, "out of memory");
        if (ps == TIMBER_ERR_NOMEM)
            st = tb_fail(err, ps, "out of memory");
        int ok = !ps && found && n == count[p];
        for (size_t j = 0; ok && j < n; j++)
            ok = R->part_of[e[j].item] == p && !R->have[e[j].item];
        if (ok)
            for (size_t j = 0; j < n; j++) {
                R->entries[e[j].item] = e[j];
                R->have[e[j].item] = 1;
            }
        if (!ok && !st) {
            if (!nbad)
                first = p;
            if (!why[0] && ps)
                snprintf(why, sizeof why, " (%s)", perr.message);
            else if (!why[0] && found)
                snprintf(why, sizeof why,
                         " (%s lists other tensors than the part's %zu)",
                         path, count[p]);
            bad[p] = 1;
            nbad++;
        }
        free(e);
        free(path);
    }
    if (!st && nbad) {
        tb_buf b = {0};
        tb_buf_printf(&b, "%s: ", R->out);
        name_parts(&b, bad, N);
        tb_buf_printf(&b, " of %zu %s not complete%s", N,
                      nbad == 1 ? "is" : "are", why);
        rerun_hint(&b, R, first);
        st = tb_fail(err, TIMBER_ERR_INCOMPLETE, "%s",
                     b.failed ? "parts are missing" : b.data);
        free(b.data);
    }
out:
    free(bad);
    free(count);
    return st;
}

/* verify_parts' reading: every tensor's CRC-32s, on every core (reading
 * back a 70B output is ~140 GB; zlib's CRC-32 makes ~3 GB/s on one). */
typedef struct crc_pass {
    run *R;
    uint32_t *crc; /* ng per item */
    pthread_mutex_t lock;
    size_t done;
} crc_pass;

static timber_status crc_task(void *ctx, size_t i, tb_scratch *scr,
                              timber_error *err)
{
    (void)scr;
    crc_pass *C = ctx;
    run *R = C->R;
    if (R->opt->cancel && *R->opt->cancel)
        return tb_run_interrupted(err);
    timber_status st = item_crcs(R, i, C->crc + i * R->ng, err);
    if (st || !R->opt->progress)
        return st;
    pthread_mutex_lock(&C->lock);
    size_t done = ++C->done;
    timber_progress p = {done, R->plan.ninstruct,
                         R->plan.items[i].instruct->name, done,
                         R->plan.ninstruct, tb_now() - R->t0, 0};
    R->opt->progress(&p, R->opt->user);
    pthread_mutex_unlock(&C->lock);
    return TIMBER_OK;
}

static double crc_cost(void *ctx, size_t i)
{
    crc_pass *C = ctx;
    return (double)C->R->plan.items[i].instruct->nbytes;
}

/* Every tensor's bytes against its part's record, then counted as
 * written (so the shards commit as complete); the first tensor, in the
 * plan's order, whose bytes differ is the one named. */
static timber_status verify_parts(run *R, timber_error *err)
{
    size_t n = R->plan.ninstruct;
    crc_pass C = {R, tb_calloc_array(n ? n * R->ng : 1, sizeof(uint32_t)),
                  PTHREAD_MUTEX_INITIALIZER, 0};
    if (!C.crc)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    atomic_int failed = 0;
    tb_tasks t = {.n = n,
                  .threads = R->threads,
                  .run = crc_task,
                  .cost = crc_cost,
                  .ctx = &C,
                  .failed = &failed};
    timber_status st = tb_tasks_run(&t, err);
    pthread_mutex_destroy(&C.lock);
    size_t verified = 0;
    for (size_t i = 0; !st && i < n; i++) {
        tb_part_entry e = R->entries[i];
        R->have[i] = 0;
        if (adopt_crcs(R, &e, C.crc + i * R->ng)) {
            verified++;
        } else {
            tb_buf b = {0};
            const out_shard *o = &R->shards[R->item_shard[i]];
            tb_buf_printf(&b,
                          "%s: tensor '%s' in %s does not hold the bytes part "
                          "%zu/%zu recorded",
                          R->out, R->plan.items[i].instruct->name,
                          tb_writer_file(o->w[0]), (size_t)R->part_of[i],
                          R->nparts);
            rerun_hint(&b, R, R->part_of[i]);
            st = tb_fail(err, TIMBER_ERR_INCOMPLETE, "%s",
                         b.failed ? "a tensor does not match" : b.data);
            free(b.data);
        }
    }
    if (R->opt->progress)
        R->done = verified;
    free(C.crc);
    return st;
}

/* Phase "stage the finish": the staged output adopted for publishing,
 * every shard reopened in place (nothing is truncated). */
static timber_status stage_final(run *R, timber_error *err)
{
    timber_status st;
    struct stat sb;
    if (!(R->build = tb_path_join(R->staging, "out")))
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if (lstat(R->build, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tb_fail(err, TIMBER_ERR_INCOMPLETE,
                       "%s: no part has started (%s is missing)", R->out,
                       R->build);
    if ((st = tb_outdir_adopt(&R->dir, R->out, R->build, R->opt->force,
                              err)) ||
        (st = tb_run_make_gamma_dirs(R, err)) || (st = tb_run_open_shards(R, err)))
        return st;
    return TIMBER_OK;
}

/* The manifest's options, with the caller's say on how to run. */
static timber_status finalize_options(run *R, const timber_refine_options *o,
                                      timber_error *err)
{
    timber_refine_options *f = &R->fopt;
    timber_refine_options_init(f);
    f->gammas = R->man.gammas;
    f->ngammas = R->man.ngammas;
    f->include = (const char *const *)R->man.include;
    f->ninclude = R->man.ninclude;
    f->exclude = (const char *const *)R->man.exclude;
    f->nexclude = R->man.nexclude;
    f->strict = R->man.strict;
    f->matrix_view = R->man.view;
    f->command = R->man.command;
    f->no_cache = 1;
    if (o) {
        f->force = o->force;
        f->threads = o->threads;
        f->progress = o->progress;
        f->warning = o->warning;
        f->user = o->user;
        f->cancel = o->cancel;
        f->outputs = o->outputs;
        f->noutputs = o->noutputs;
    }
    (void)err;
    return TIMBER_OK;
}


/* A distributed part notes each tensor it finished in its journal: the
 * checksums of the bytes it wrote (read back) and its report. */
timber_status tb_run_journal_item(run *R, size_t i, timber_error *err)
{
    tb_part_entry e = {0};
    const timber_tensor_report *rep = &R->res->reports[i];
    e.item = i;
    e.erank = rep->erank;
    e.tail = rep->tail_energy;
    e.k = rep->k;
    e.from_cache = rep->from_cache;
    timber_status st = item_crcs(R, i, e.crc, err);
    if (st)
        return st;
    pthread_mutex_lock(&R->lock);
    st = tb_journal_append(R->journal, R->man.run_id, &e, R->ng, err);
    if (!st) {
        R->entries[i] = e;
        R->have[i] = 1;
    }
    pthread_mutex_unlock(&R->lock);
    return st;
}


/* Finalize: the manifest, open and plan as the parts did, the parts'
 * records, the bytes against them, finish, publish, and the staging
 * directory removed. */
timber_status timber_finalize(const char *out,
                              const timber_refine_options *options,
                              timber_result **result, timber_error *err)
{
    timber_refine_options defaults;
    run R;
    tb_run_begin(&R, options, &defaults, result, err);
    R.finalizing = 1;
    timber_status st = TIMBER_OK;
    char *trimmed = tb_strdup(out);
    if (!trimmed) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t l = strlen(trimmed); l > 1 && trimmed[l - 1] == '/'; l--)
        trimmed[l - 1] = '\0';
    if (!(R.staging = tb_parts_staging(trimmed))) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto done;
    }
    struct stat sb;
    if (lstat(R.staging, &sb) != 0) {
        st = tb_fail(err, TIMBER_ERR_INCOMPLETE,
                     "%s: no distributed run to finalize (%s does not "
                     "exist)",
                     trimmed, R.staging);
        goto done;
    }
    if ((st = tb_manifest_read(R.staging, &R.man, err)) ||
        (st = finalize_options(&R, options, err)))
        goto done;
    R.opt = &R.fopt;
    R.nparts = R.man.nparts;
    st = tb_run_open_and_plan(&R,
                       R.man.base_repo ? R.man.base_arg : R.man.base_dir,
                       R.man.instruct_repo ? R.man.instruct_arg
                                           : R.man.instruct_dir,
                       trimmed, err);
    if (!st && strcmp(R.fingerprint, R.man.fingerprint) != 0)
        st = tb_fail(err, TIMBER_ERR_INVALID,
                     "%s: the inputs (%s, %s) have fingerprint %s now, but "
                     "the parts were computed from fingerprint %s",
                     trimmed, R.man.base_arg, R.man.instruct_arg,
                     R.fingerprint, R.man.fingerprint);
    if (!st)
        st = assign_parts(&R, err);
    if (!st)
        st = check_parts(&R, err);
    if (!st)
        st = stage_final(&R, err);
    if (!st)
        st = verify_parts(&R, err);
    if (!st)
        st = tb_run_finish_dirs(&R, err);
    if (!st)
        st = tb_run_publish(&R, err);
    if (!st)
        tb_remove_tree(R.staging);
done:
    free(trimmed);
    tb_run_close(&R, result);
    return st;
}

/* ------------------------------------------------------------ the plan */

struct timber_parts {
    size_t nparts, n;
    char **names;
    timber_action *action;
    uint32_t *part_of;
    tb_item_cost *cost;
};

void timber_parts_free(timber_parts *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->names[i]);
    free(p->names);
    free(p->action);
    free(p->part_of);
    free(p->cost);
    free(p);
}

timber_status timber_parts_plan(const char *base, const char *instruct,
                                const timber_refine_options *options,
                                size_t nparts, timber_parts **out,
                                timber_error *err)
{
    timber_refine_options defaults;
    if (!options) {
        timber_refine_options_init(&defaults);
        options = &defaults;
    }
    *out = NULL;
    tb_error_clear(err);
    timber_model *b = NULL, *in = NULL;
    tb_plan plan = {0};
    timber_parts *p = calloc(1, sizeof *p);
    size_t ng = options->ngammas ? options->ngammas : 1;
    tb_selection sel = {options->include, options->ninclude,
                        options->exclude, options->nexclude};
    timber_status st =
        p ? TIMBER_OK : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    if (!st)
        st = timber_model_open(base, &b, err);
    if (!st)
        st = timber_model_open(instruct, &in, err);
    if (!st)
        st = tb_plan_build(b, in, &sel, options->strict,
                           options->matrix_view, &plan, err);
    if (!st) {
        size_t n = plan.ninstruct;
        p->nparts = nparts;
        p->names = tb_calloc_array(n + 1, sizeof(char *));
        p->action = tb_calloc_array(n + 1, sizeof *p->action);
        p->part_of = tb_calloc_array(n + 1, sizeof *p->part_of);
        p->cost = tb_calloc_array(n + 1, sizeof *p->cost);
        if (!p->names || !p->action || !p->part_of || !p->cost)
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !st && i < n; i++, p->n++) {
            if (!(p->names[i] = tb_strdup(plan.items[i].instruct->name)))
                st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            p->action[i] = plan.items[i].action;
            p->cost[i] = tb_item_estimate(&plan.items[i], ng);
        }
    }
    if (!st)
        st = tb_parts_assign(&plan, ng, nparts, p->part_of, err);
    tb_plan_clear(&plan);
    timber_model_free(b);
    timber_model_free(in);
    if (st)
        timber_parts_free(p);
    else
        *out = p;
    return st;
}

size_t timber_parts_count(const timber_parts *p) { return p->nparts; }
size_t timber_parts_tensor_count(const timber_parts *p) { return p->n; }
const char *timber_parts_tensor_name(const timber_parts *p, size_t i)
{
    return i < p->n ? p->names[i] : NULL;
}
timber_action timber_parts_tensor_action(const timber_parts *p, size_t i)
{
    return i < p->n ? p->action[i] : TIMBER_ACTION_COPIED;
}
size_t timber_parts_tensor_part(const timber_parts *p, size_t i)
{
    return i < p->n ? p->part_of[i] : 0;
}
uint64_t timber_parts_tensor_flops(const timber_parts *p, size_t i)
{
    return i < p->n ? p->cost[i].flops : 0;
}
uint64_t timber_parts_tensor_bytes(const timber_parts *p, size_t i)
{
    return i < p->n ? p->cost[i].bytes : 0;
}
