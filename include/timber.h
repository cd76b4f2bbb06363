/*
 * timber.h — the public API of libtimber.
 *
 * timber refines an Instruct checkpoint with its paired Base checkpoint
 * (Wu et al., "Timber", arXiv 2509.23595): for every weight matrix it takes
 * the delta D = W_instruct - W_base, keeps the top ceil(eRank(D)) singular
 * components and attenuates the rest by gamma.  This header is everything the
 * command-line tool uses; nothing under src/ is reachable from outside.
 *
 * Conventions (one for the whole API):
 *   - Every name starts with `timber_` / `TIMBER_`.
 *   - Ownership: an object handed out through an out-pointer (`T **out`) is
 *     owned by the caller and released with its matching `*_free()`, which
 *     accepts NULL.  Every pointer returned by an accessor (names, shapes,
 *     info structs) is borrowed from the handle it came from and stays valid
 *     until that handle is freed.  Nothing else is ever owned by the caller.
 *   - Fallible calls return a timber_status.  When an optional timber_error
 *     is passed, it receives the same status and a one-line message naming
 *     the file, tensor and numbers involved (no trailing newline).
 *   - The library never prints, never exits, and never calls assert() on
 *     anything a file or a caller could cause.
 */
#ifndef TIMBER_H
#define TIMBER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* TIMBER_VERSION_MAJOR, _MINOR, _PATCH and TIMBER_VERSION_STRING ("0.1.0"),
 * generated from CMakeLists.txt's project() version. */
#include "timber_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns TIMBER_VERSION_STRING of the library actually linked. */
const char *timber_version(void);

/* ---------------------------------------------------------------- errors */

typedef enum timber_status {
    TIMBER_OK = 0,
    TIMBER_ERR_NOMEM,       /* an allocation failed */
    TIMBER_ERR_IO,          /* open/read/write/fsync/rename failed */
    TIMBER_ERR_FORMAT,      /* a malformed safetensors shard */
    TIMBER_ERR_INDEX,       /* index and shards of a checkpoint disagree */
    TIMBER_ERR_INVALID,     /* an invalid argument */
    TIMBER_ERR_NONFINITE,   /* NaN or Inf where a finite value is needed */
    TIMBER_ERR_SHAPE,       /* shapes that cannot be paired (under --strict) */
    TIMBER_ERR_EXISTS,      /* the output already exists */
    TIMBER_ERR_NUMERIC,     /* LAPACK reported a failure */
    TIMBER_ERR_INTERRUPTED, /* the caller's cancel flag was raised */
    TIMBER_ERR_CACHE,       /* the SVD cache file is unusable */
    TIMBER_ERR_OPTION,      /* an option's value is invalid (a usage error) */
    TIMBER_ERR_INCOMPLETE,  /* parts of a distributed run are missing,
                             * failed or disagree */
    TIMBER_STATUS_COUNT
} timber_status;

/* A short static description of a status ("malformed safetensors file"). */
const char *timber_strerror(timber_status status);

typedef struct timber_error {
    timber_status status;
    char message[1024];
} timber_error;

/* ---------------------------------------------------------------- dtypes */

/* Every dtype of the safetensors specification, in its order of increasing
 * alignment (the reference writer sorts by descending alignment). */
typedef enum timber_dtype {
    TIMBER_DT_BOOL = 0,
    TIMBER_DT_F4,
    TIMBER_DT_F6_E2M3,
    TIMBER_DT_F6_E3M2,
    TIMBER_DT_U8,
    TIMBER_DT_I8,
    TIMBER_DT_F8_E5M2,
    TIMBER_DT_F8_E4M3,
    TIMBER_DT_F8_E8M0,
    TIMBER_DT_F8_E4M3FNUZ,
    TIMBER_DT_F8_E5M2FNUZ,
    TIMBER_DT_I16,
    TIMBER_DT_U16,
    TIMBER_DT_F16,
    TIMBER_DT_BF16,
    TIMBER_DT_I32,
    TIMBER_DT_U32,
    TIMBER_DT_F32,
    TIMBER_DT_C64,
    TIMBER_DT_F64,
    TIMBER_DT_I64,
    TIMBER_DT_U64,
    TIMBER_DT_COUNT
} timber_dtype;

/* "BF16" etc.; NULL for an out-of-range value. */
const char *timber_dtype_name(timber_dtype dt);
/* Parses a spec name (exact, upper case); returns -1 if unknown. */
int timber_dtype_from_name(const char *name);
/* Bits per element (4, 6, 8, 16, 32, 64). */
unsigned timber_dtype_bits(timber_dtype dt);
/* 1 for F16, BF16, F32, F64: the dtypes timber converts to double and
 * refines; everything else is copied untouched. */
int timber_dtype_is_refinable(timber_dtype dt);

/* ------------------------------------------------------ repo ids, offline */

/* Where a checkpoint argument points.  A path that exists is itself; an
 * argument shaped ORG/NAME[@REVISION] that is not a path is looked up in
 * the local Hugging Face cache exactly as huggingface_hub does offline
 * ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub;
 * refs/REVISION -> snapshots/COMMIT; a 40-hex revision is the commit).
 * Never any network access.  A missing repo or revision is TIMBER_ERR_IO
 * naming the places looked in and the `hf download` command that would
 * fetch it.  timber_model_open (so refine, erank and inspect) does this
 * itself; this call is for saying where an argument went. */
typedef struct timber_location timber_location;

timber_status timber_locate(const char *spec, timber_location **out,
                            timber_error *err);
void timber_location_free(timber_location *loc);
/* The directory or file to open. */
const char *timber_location_path(const timber_location *loc);
/* "ORG/NAME", the revision asked for ("main" by default) and the
 * snapshot's commit; all NULL for a local path. */
const char *timber_location_repo(const timber_location *loc);
const char *timber_location_revision(const timber_location *loc);
const char *timber_location_commit(const timber_location *loc);
/* NULL, or a one-line note when a repo-shaped argument is a local path
 * (the local path wins). */
const char *timber_location_note(const timber_location *loc);

/* ------------------------------------------------------------ checkpoints */

typedef struct timber_tensor_info {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    const uint64_t *shape;  /* ndim entries; [] is a scalar */
    uint64_t nelems;
    uint64_t nbytes;
    uint64_t offset;        /* from the start of the shard's data buffer */
    const char *shard;      /* the shard's file name (no directory) */
} timber_tensor_info;

/* A checkpoint: a directory (with or without model.safetensors.index.json)
 * or a single .safetensors file, or a repo id in the local Hugging Face
 * cache (timber_locate).  Opening validates every shard completely and
 * cross-checks the index; data is memory-mapped, not read. */
typedef struct timber_model timber_model;

timber_status timber_model_open(const char *path, timber_model **out,
                                timber_error *err);
void timber_model_free(timber_model *model);

/* The directory or file opened (a repo id's snapshot directory). */
const char *timber_model_path(const timber_model *model);
/* Where the argument given to timber_model_open led (borrowed). */
const timber_location *timber_model_location(const timber_model *model);
/* 1 when the checkpoint has a model.safetensors.index.json. */
int timber_model_has_index(const timber_model *model);

/* Tensors in file order: shards by name, then by offset within a shard. */
size_t timber_model_tensor_count(const timber_model *model);
const timber_tensor_info *timber_model_tensor(const timber_model *model,
                                              size_t i);
/* NULL when the checkpoint has no tensor of that name. */
const timber_tensor_info *timber_model_find(const timber_model *model,
                                            const char *name);

size_t timber_model_shard_count(const timber_model *model);
const char *timber_model_shard_name(const timber_model *model, size_t i);

/* Regular files of the directory that are neither shards nor the index
 * (config.json, tokenizer files, chat templates, ...), by name. */
size_t timber_model_extra_count(const timber_model *model);
const char *timber_model_extra_name(const timber_model *model, size_t i);


/* ------------------------------------------------------- module types */

/* The module type of a tensor, from its name, in the order of erank's
 * tables and the model card's summary. */
typedef enum timber_module {
    TIMBER_MOD_Q, TIMBER_MOD_K, TIMBER_MOD_V, TIMBER_MOD_O, TIMBER_MOD_GATE,
    TIMBER_MOD_UP, TIMBER_MOD_DOWN, TIMBER_MOD_ROUTER, TIMBER_MOD_EXPERTS,
    TIMBER_MOD_EMBEDDINGS, TIMBER_MOD_LM_HEAD, TIMBER_MOD_OTHER,
    TIMBER_MODULE_TYPES
} timber_module;
/* A timber_module (as int, to index tables). */
int timber_module_type(const char *tensor_name);
/* The type's short name; NULL out of range. */
const char *timber_module_type_name(int type);

/* ------------------------------------------------------------ refinement */

typedef enum timber_action {
    TIMBER_ACTION_REFINED = 0, /* tail of the delta attenuated by gamma */
    TIMBER_ACTION_COPIED,      /* Instruct's bytes written unchanged */
    TIMBER_ACTION_DROPPED      /* only in Base: not part of the output */
} timber_action;

/* "refined", "copied", "dropped". */
const char *timber_action_name(timber_action action);

/* How a tensor of 3+ dimensions is seen as matrices (docs/numerics.md,
 * "Matrix views").  AUTO: a 3-D tensor of the experts module type (a
 * stack [E, a, b] such as mlp.experts.gate_up_proj) is E matrices of
 * a x b, refined one by one; every other tensor is one matrix of d0 rows
 * and d1*d2*... columns.  FLATTEN: every tensor is d0 x rest, the
 * authors' view (for reproducing their script). */
typedef enum timber_matrix_view {
    TIMBER_VIEW_AUTO = 0,
    TIMBER_VIEW_FLATTEN
} timber_matrix_view;

/* Where a tensor's time went, phase by phase (docs/cli.md, "Timings").
 * Each phase counts the wall time the tensor's worker spent in it while
 * running on a CPU (its thread's CPU clock: user and system time, page
 * faults of the mapped inputs included); WAIT is the rest of the
 * tensor's wall time, when that thread was off the CPU: blocked on disk
 * I/O (reads of the mapped inputs, writes), on a lock, or waiting for a
 * core.  So the phases of a tensor add up to its wall time.  A copied
 * tensor has WRITE (its bytes go from the mapped input to the output in
 * one write) and WAIT only. */
typedef enum timber_phase {
    TIMBER_PHASE_READ = 0, /* decoding both inputs, D = W_I - W_B, the
                            * finiteness checks, the CRCs of the key */
    TIMBER_PHASE_GRAM,     /* G = A^T A (dsyrk) */
    TIMBER_PHASE_REDUCE,   /* G to tridiagonal form (dsytrd) */
    TIMBER_PHASE_VALUES,   /* every eigenvalue of the tridiagonal matrix */
    TIMBER_PHASE_VECTORS,  /* the p wanted tridiagonal eigenvectors */
    TIMBER_PHASE_BACK,     /* back-transform of those p vectors */
    TIMBER_PHASE_PROJECT,  /* projection onto the basis (DGEMMs), T */
    TIMBER_PHASE_WRITE,    /* O = W_I - (1 - gamma) T, rounding, encoding,
                            * writing the output (a copy: all of it) */
    TIMBER_PHASE_CACHE,    /* looking up and appending cache records */
    TIMBER_PHASE_WAIT,     /* off the CPU (above) */
    TIMBER_PHASE_COUNT
} timber_phase;

/* "read", "gram", "reduce", "values", "vectors", "back", "project",
 * "write", "cache", "wait"; NULL out of range. */
const char *timber_phase_name(int phase);

/* What happened to one tensor (one row of the report).  Reports are
 * allocated by the library and handed out by pointer; new fields are
 * only ever appended. */
typedef struct timber_tensor_report {
    const char *name;
    timber_dtype dtype;      /* Instruct's (Base's for a dropped tensor) */
    timber_dtype base_dtype; /* Base's, when Base has the tensor */
    size_t ndim;
    const uint64_t *shape;   /* Instruct's shape (Base's when dropped) */
    const char *shard;       /* shard written (Base's when dropped) */
    timber_action action;
    const char *reason;      /* why copied or dropped; "" when refined */
    int warned;              /* a warning was issued for this tensor */
    /* Refined tensors only (0 otherwise): */
    uint64_t rows, cols;     /* each matrix: d0 x (d1*d2*...), or a x b */
    uint64_t rank;           /* r = min(rows, cols) */
    double erank;            /* effective rank of the delta (the mean
                              * over the matrices of a per-expert tensor) */
    uint64_t k;              /* ceil(erank): components kept whole (the
                              * largest over the matrices) */
    double tail_energy;      /* share of ||D||_F^2 in the tail (mean) */
    int from_cache;          /* spectrum taken from the SVD cache (every
                              * matrix's) */
    /* The view it got: "matrix" (2-D), "flatten" (d0 x rest) or
     * "per-expert" (parts matrices of rows x cols); "" when not refined. */
    const char *view;
    uint64_t parts;          /* matrices refined (1, or E) */
    /* In a distributed part's result: the tensor belongs to another part
     * (only name, dtype, shape, shard and action are set). */
    int elsewhere;
    /* Wall seconds from the tensor's start to its end on its worker, and
     * their split by phase (timber_phase; the phases sum to it).  Dropped
     * tensors: 0. */
    double seconds;
    double phase_seconds[TIMBER_PHASE_COUNT];
} timber_tensor_report;

typedef struct timber_progress {
    size_t index;          /* tensors finished so far */
    size_t total;          /* tensors to write */
    const char *tensor;    /* the tensor just finished */
    uint64_t work_done;    /* arbitrary units, for an ETA */
    uint64_t work_total;
    double elapsed;        /* seconds since the start */
    /* 1: a call from inside `tensor`, which is not finished (index does
     * not count it yet; work_done includes the part of it done so far).
     * Such calls come at most every few tenths of a second. */
    int within;
} timber_progress;

/* The most worker threads a run uses (and the top of --threads). */
#define TIMBER_MAX_THREADS 64

typedef struct timber_refine_options {
    const double *gammas;  /* values in [0, 1]; NULL/0 entries: {0.2} */
    size_t ngammas;        /* more than one: OUT/gamma-<g>/ each */
    const char *const *include; /* POSIX extended regexes on names */
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
    int strict;            /* a shape mismatch is an error, not a copy */
    int force;             /* replace an existing OUT once complete */
    int threads;           /* 0: one per online core (capped at
                            * TIMBER_MAX_THREADS) */
    /* The SVD cache: NULL for the default file of this pair under
     * $XDG_CACHE_HOME/timber/ (or ~/.cache/timber/); no_cache to skip. */
    const char *cache_path;
    int no_cache;
    /* Called after each tensor, and within a large one as its passes
     * progress (timber_progress.within), from a worker thread; calls are
     * serialised (never two at once). */
    void (*progress)(const timber_progress *progress, void *user);
    /* Called with one-line warnings (no trailing newline). */
    void (*warning)(const char *message, void *user);
    void *user;
    /* Polled often: when it becomes non-zero the run stops, removes its
     * temporaries and returns TIMBER_ERR_INTERRUPTED. */
    const volatile sig_atomic_t *cancel;
    /* The command line, as the model card (OUT/README.md) quotes it;
     * NULL: the card says the library was called directly. */
    const char *command;
    timber_matrix_view matrix_view;
    /* Files the caller will write once the run succeeds (reports): the
     * run refuses to start (TIMBER_ERR_INVALID, nothing done) when one
     * is, or lies inside, an input, OUT or the cache, is another of them,
     * or exists and is not a regular file.  Paths are compared by device
     * and inode, so links and bind mounts do not get around it. */
    const char *const *outputs;
    size_t noutputs;
    /* A distributed part (docs/distributed.md): with part_count > 0 the
     * run computes only part part_index of part_count (0 <= index <
     * count) into the staging directory beside OUT, DIR/.NAME.timber-parts/,
     * and writes that part's completion record; OUT itself appears only
     * when timber_finalize() finds all parts complete.  0: the whole run
     * in this process. */
    size_t part_index, part_count;
    /* A part's command line less its --part (and --parts): what
     * timber_finalize suggests to rerun a missing part (NULL: command). */
    const char *part_command;
} timber_refine_options;

/* Defaults: gamma 0.2, no selection, not strict, no force, no callbacks. */
void timber_refine_options_init(timber_refine_options *options);

/* The outcome of a run: one report per Instruct tensor (file order), then
 * one per Base-only tensor. */
typedef struct timber_result timber_result;

/* Refines INSTRUCT with BASE into the directory OUT.  OUT is built beside
 * itself under a temporary name and renamed into place only when
 * complete; on any failure nothing is left behind.  OUT must not exist
 * unless options->force, and may not be, contain, or lie inside an input.
 * *result (optional) receives the report even when the run fails after
 * planning (then it covers what was done). */
timber_status timber_refine(const char *base, const char *instruct,
                            const char *out,
                            const timber_refine_options *options,
                            timber_result **result, timber_error *err);

/* Finishes a distributed run whose parts were computed by
 * timber_refine() with part_count > 0 (in any processes, on any hosts
 * sharing the file system): checks that every part's completion record
 * is there and agrees with the run's manifest, checks each tensor's bytes
 * against its record, writes the index, the model card and the carried-
 * over files, fsyncs, publishes OUT atomically and removes the staging
 * directory.  The output is byte for byte what one timber_refine() with
 * the same inputs and options writes.  Of `options` only force, threads,
 * progress, warning, user, cancel and outputs are used: everything else
 * comes from the manifest.  Missing, failed or disagreeing parts:
 * TIMBER_ERR_INCOMPLETE, naming them and the command that reruns them;
 * nothing is published and the staging directory is left as it was. */
timber_status timber_finalize(const char *out,
                              const timber_refine_options *options,
                              timber_result **result, timber_error *err);

/* How a run would be split into nparts parts: a deterministic function
 * of the two models' headers, the selection and nparts, balanced by
 * estimated cost (largest first, each to the least loaded part).  Only
 * the selection options (include, exclude, strict, matrix_view, gammas)
 * of `options` are used. */
typedef struct timber_parts timber_parts;
timber_status timber_parts_plan(const char *base, const char *instruct,
                                const timber_refine_options *options,
                                size_t nparts, timber_parts **out,
                                timber_error *err);
void timber_parts_free(timber_parts *parts);
size_t timber_parts_count(const timber_parts *parts);
/* Instruct's tensors, in file order: name, action, part, estimates. */
size_t timber_parts_tensor_count(const timber_parts *parts);
const char *timber_parts_tensor_name(const timber_parts *parts, size_t i);
timber_action timber_parts_tensor_action(const timber_parts *parts,
                                         size_t i);
size_t timber_parts_tensor_part(const timber_parts *parts, size_t i);
/* Estimated double-precision flops and bytes read and written. */
uint64_t timber_parts_tensor_flops(const timber_parts *parts, size_t i);
uint64_t timber_parts_tensor_bytes(const timber_parts *parts, size_t i);

void timber_result_free(timber_result *result);
/* For a distributed part: its index and the number of parts (count 0: a
 * whole run or a finalize). */
size_t timber_result_part_index(const timber_result *result);
size_t timber_result_part_count(const timber_result *result);
/* For a distributed part: how many of its tensors an earlier try had
 * already written (checked against its journal, not computed again). */
size_t timber_result_part_kept(const timber_result *result);
size_t timber_result_count(const timber_result *result);
const timber_tensor_report *timber_result_tensor(const timber_result *result,
                                                 size_t i);
/* Directory names under OUT for each gamma ("" when only one gamma). */
const char *timber_result_gamma_dir(const timber_result *result, size_t i);
size_t timber_result_gamma_count(const timber_result *result);
double timber_result_gamma(const timber_result *result, size_t i);
uint64_t timber_result_bytes_written(const timber_result *result);
size_t timber_result_shards_written(const timber_result *result);
double timber_result_seconds(const timber_result *result);
/* The cache file used ("" if none), its size after the run, and how many
 * refined tensors it answered / had to be computed and added. */
const char *timber_result_cache_path(const timber_result *result);
uint64_t timber_result_cache_bytes(const timber_result *result);
size_t timber_result_cache_hits(const timber_result *result);
size_t timber_result_cache_misses(const timber_result *result);

/* ------------------------------------------------------------ the cache */

/* One record of an SVD cache file (see docs/cache-format.md). */
typedef struct timber_cache_record {
    uint64_t offset;         /* of the record in the file */
    int valid;               /* 0: damaged (checksum or structure) */
    const char *name;        /* the rest only when valid */
    size_t ndim;
    const uint64_t *shape;
    uint64_t rows, cols, rank, k, basis_columns;
    double erank;
    uint64_t bytes;
    uint32_t transform_version;
    /* The compute route that produced the record (docs/cache-format.md,
     * "Routes"): its id and its name, "cpu/dsytrd-mrrr" or "unknown". */
    uint32_t route;
    const char *route_name;
} timber_cache_record;

typedef struct timber_cache_stats {
    uint32_t format_version;
    uint64_t fingerprint;    /* of the pair that created the file */
    uint64_t file_size;
    size_t records;          /* valid records */
    size_t damaged;          /* damaged records (skipped, recomputed) */
    uint64_t trailing_bytes; /* an unfinished last record */
} timber_cache_stats;

/* Reads every record of a cache file, calling each (optional) per record
 * in file order.  Fails only when the file is not a cache of this format
 * version; damaged records are counted, not fatal. */
timber_status timber_cache_inspect(const char *path,
                                   void (*each)(const timber_cache_record *r,
                                                void *user),
                                   void *user, timber_cache_stats *stats,
                                   timber_error *err);

/* A cache directory (docs/cache-format.md#cache-directories): many
 * processes share it, each appending to a file of its own and reading
 * every file of its pair.  1 when path names one: an existing directory,
 * or a path ending in '/'. */
int timber_cache_is_dir(const char *path);

typedef enum timber_cache_file_state {
    TIMBER_CACHE_FILE_OK,           /* read: stats hold its totals */
    TIMBER_CACHE_FILE_EMPTY,        /* no header yet (being created, or its
                                     * writer died at once): ignored */
    TIMBER_CACHE_FILE_OTHER_FORMAT, /* named for another format version:
                                     * never read by this timber */
    TIMBER_CACHE_FILE_UNREADABLE,   /* cannot be opened: skipped */
    TIMBER_CACHE_FILE_DAMAGED       /* not a cache of this format, or its
                                     * header is corrupt: skipped */
} timber_cache_file_state;

/* One file of a cache directory. */
typedef struct timber_cache_file {
    const char *path;
    timber_cache_file_state state;
    const char *message;      /* why, when not OK ("" when OK) */
    timber_cache_stats stats; /* when OK */
} timber_cache_file;

/* Reads every cache file of a directory (of any pair), in name order:
 * each_record (optional) per record as timber_cache_inspect, then
 * each_file (optional) for that file.  Fails only when dir cannot be
 * listed; a file that cannot be used is reported in its state. */
timber_status timber_cache_inspect_dir(
    const char *dir, void (*each_file)(const timber_cache_file *f, void *user),
    void (*each_record)(const timber_cache_record *r, void *user), void *user,
    timber_error *err);

/* ------------------------------------------------------------ the eRank */

/* One analysed tensor.  For a single model only `erank_instruct` (the
 * model's eRank) is set; the pair-only fields are NaN / 0. */
typedef struct timber_erank_row {
    const char *name;
    size_t ndim;
    const uint64_t *shape;
    timber_dtype dtype;
    uint64_t rows, cols, rank;   /* matrix view d0 x (d1*...), r */
    double erank_base;
    double erank_instruct;
    double erank_delta;
    uint64_t k;                  /* ceil(erank_delta) */
    double delta_ratio;          /* erank_delta / r */
    double delta_rel_norm;       /* ||D||_F / ||W_B||_F */
    int from_cache;              /* the delta's spectrum came from the cache */
} timber_erank_row;

typedef struct timber_erank_options {
    const char *const *include;  /* as in timber_refine_options */
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
    int threads;
    const char *cache_path;      /* read only: NULL for the default file */
    int no_cache;
    void (*progress)(const timber_progress *progress, void *user);
    void *user;
    const volatile sig_atomic_t *cancel;
    /* Called with one-line notes (a repo-shaped argument that is a local
     * path); may be NULL. */
    void (*warning)(const char *message, void *user);
    /* As in timber_refine_options: a per-expert tensor gives one row per
     * expert, named "NAME[e]". */
    timber_matrix_view matrix_view;
    /* Files the caller will write (--json, --csv, --plot): refused as in
     * timber_refine_options when one is or lies inside an input, is the
     * cache or another of them, or is not a regular file. */
    const char *const *outputs;
    size_t noutputs;
} timber_erank_options;

void timber_erank_options_init(timber_erank_options *options);

typedef struct timber_erank_result timber_erank_result;

/* eRank of every tensor that refinement would refine (same pairing and
 * selection rules).  instruct NULL: one checkpoint, every float tensor of
 * 2+ dimensions.  Singular values only, in double precision. */
timber_status timber_erank(const char *base, const char *instruct,
                           const timber_erank_options *options,
                           timber_erank_result **result, timber_error *err);
void timber_erank_result_free(timber_erank_result *result);
size_t timber_erank_count(const timber_erank_result *result);
const timber_erank_row *timber_erank_row_at(const timber_erank_result *result,
                                            size_t i);
/* 1 when the result is for a Base/Instruct pair. */
int timber_erank_is_pair(const timber_erank_result *result);

/* ------------------------------------------------------- writing files */

/* Every file timber publishes is built under a temporary name beside its
 * final one, ".NAME.timber-tmp.PID.RANDOM", held locked (flock) by the
 * live process, and renamed into place when complete; a temporary whose
 * lock is free belongs to a run that is gone and is removed by the next
 * one for the same NAME, whatever its PID.  These calls give callers the
 * same scheme. */

/* Writes len bytes to path through such a temporary (fsync, rename,
 * fsync of the directory): path holds the old file or the new one. */
timber_status timber_write_file(const char *path, const void *data,
                                size_t len, timber_error *err);

typedef struct timber_temp timber_temp;
/* A fresh temporary for final_path: an empty file, or (directory != 0)
 * an empty directory.  timber_temp_free removes it unless published. */
timber_status timber_temp_create(const char *final_path, int directory,
                                 timber_temp **out, timber_error *err);
const char *timber_temp_path(const timber_temp *temp);
/* fsync, rename over final_path, fsync of the directory (files). */
timber_status timber_temp_publish(timber_temp *temp, timber_error *err);
void timber_temp_free(timber_temp *temp);

#ifdef __cplusplus
}
#endif
#endif /* TIMBER_H */
