/*
 * run.h — the state of one refinement run, private to the two files that
 * drive its phases: refine.c (a whole run, and the compute every kind of
 * run shares) and distrib.c (a run split into parts: a part's staging
 * and completion, finalize, the plan).  A one-machine run is
 * open_and_plan -> stage_output -> compute -> finish_dirs -> publish; a
 * part is open_and_plan -> stage_part -> compute (its items) ->
 * complete_part; finalize is open_and_plan (from the manifest) -> the
 * parts' records -> finish_dirs -> publish.  Every kind ends in close_run.
 */
#ifndef TIMBER_RUN_H
#define TIMBER_RUN_H

#include <pthread.h>
#include <stdatomic.h>

#include "cache.h"
#include "outdir.h"
#include "parts.h"
#include "plan.h"
#include "safetensors.h"
#include "timber.h"

struct timber_result {
    timber_model *base, *inst; /* reports point into their names/shapes */
    timber_tensor_report *reports;
    size_t n;
    char **reasons; /* owned copies of plan reasons */
    double *gammas;
    char **gamma_dirs;
    size_t ngammas;
    uint64_t bytes_written;
    size_t shards_written;
    double seconds;
    char *cache_path;
    uint64_t cache_bytes;
    size_t cache_hits, cache_misses;
    size_t part_index, part_count;
    size_t part_kept; /* a part's tensors an earlier try had written */
};

typedef struct out_shard {
    size_t first, n;  /* plan items of this shard */
    tb_writer **w;    /* per gamma */
} out_shard;

typedef struct run {
    const timber_refine_options *opt;
    timber_model *base, *inst;
    tb_plan plan;
    timber_result *res;
    char *out;     /* OUT, trailing slashes removed */
    tb_outdir dir; /* the temporary directory beside OUT */
    char **gdirs;  /* per gamma: the checkpoint directory being built */
    size_t ng;
    char fingerprint[17];
    uint64_t fp;
    char *include_json, *exclude_json; /* the selection, for metadata */
    const size_t *part; /* the plan items being computed (NULL: all) */
    size_t npart;
    uint64_t work_done, work_total;
    uint64_t work_partial; /* credited so far by tensors not yet done */
    double last_progress;  /* tb_now() of the last progress call */
    size_t done, total;
    double t0;
    const struct tb_backend *be; /* every BLAS/LAPACK step goes through it */
    int threads;          /* workers for small tensors, BLAS for big ones */
    tb_cache *cache;      /* NULL: no cache */
    char *cache_file;     /* its path until opened (check_places) */
    atomic_size_t hits, misses;
    struct out_shard *shards;  /* the output shards being written */
    size_t nshards;
    size_t *item_shard;        /* per plan item: its output shard */
    char *build;               /* the directory being built: the
                                * temporary beside OUT, or a distributed
                                * run's STAGING/out */
    /* A distributed run (parts.h): this process's part (nparts 0: the
     * whole run), or a finalize. */
    size_t part_i, nparts;
    int finalizing;
    timber_refine_options fopt; /* finalize: the manifest's options */
    tb_manifest man;
    char *staging;
    char *journal;             /* this part's journal */
    uint32_t *part_of;         /* per Instruct item: its part */
    size_t *mine, nmine;       /* the items this process computes */
    tb_part_entry *entries;    /* per Instruct item, once written */
    unsigned char *have;       /* per Instruct item: entries[i] is set */
    atomic_int failed;    /* a worker failed: the others stop early */
    pthread_mutex_t lock; /* progress, first error */
} run;

/* Phases and helpers of refine.c that distrib.c uses. */
int tb_run_cancelled(const run *R);
timber_status tb_run_interrupted(timber_error *err);
void tb_run_begin(run *R, const timber_refine_options *options,
                  timber_refine_options *defaults, timber_result **result,
                  timber_error *err);
timber_status tb_run_open_and_plan(run *R, const char *base,
                                   const char *instruct, const char *out,
                                   timber_error *err);
timber_status tb_run_make_gamma_dirs(run *R, timber_error *err);
timber_status tb_run_open_shards(run *R, timber_error *err);
timber_status tb_run_compute_part(run *R, const size_t *part, size_t n,
                                  timber_error *err);
timber_status tb_run_finish_dirs(run *R, timber_error *err);
timber_status tb_run_publish(run *R, timber_error *err);
void tb_run_close(run *R, timber_result **result);

/* distrib.c: a part's phases, and its journal entry for item i (called
 * by the compute once the item is written). */
timber_status tb_run_stage_part(run *R, const char *base_arg,
                                const char *inst_arg, timber_error *err);
timber_status tb_run_complete_part(run *R, timber_error *err);
timber_status tb_run_journal_item(run *R, size_t i, timber_error *err);

#endif /* TIMBER_RUN_H */
