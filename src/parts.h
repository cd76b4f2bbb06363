/*
 * parts.h — a refinement split into N parts that run anywhere (other
 * processes, other hosts sharing a file system, in any order, at once),
 * then finalized: the split itself, and the files the parts and the
 * finalize step share in the staging directory beside OUT.
 *
 * The staging directory of OUT is DIR/.NAME.timber-parts/ (OUT = DIR/NAME):
 *
 *   run.json          the manifest: which inputs, which options, how many
 *                     parts, and a random run id.  The first part creates
 *                     it (a temporary linked into place: link(2) is atomic
 *                     and fails on an existing name, even on NFS); every
 *                     later part must agree with it or refuses to start.
 *   out/              the output as it will be published: every shard
 *                     preallocated at its final size and filled in place
 *                     by pwrite (safetensors.h, tb_writer_open_in_place);
 *                     finalize adds the index, card and carried-over files
 *                     and renames out/ to OUT.
 *   parts/I-of-N.log  part I's journal: one line per tensor it finished
 *                     (checksums of the bytes it wrote, per gamma, and the
 *                     tensor's report).  A part run again after a crash
 *                     re-reads each tensor listed here, keeps those whose
 *                     bytes still match, and computes the rest.
 *   parts/I-of-N.done part I's completion record: the same entries for all
 *                     of its tensors, with the run id and a checksum of
 *                     the record, written atomically once its shards are
 *                     fsynced.  Finalize publishes only when all N agree.
 *
 * Entry lines are text: "t ITEM CRC[,CRC...] ERANK K TAIL CACHED", the
 * doubles as C99 hex floats (exact).  One codec writes and reads both
 * files.  Nothing here takes a lock: each part writes only its own files,
 * and shared files are created idempotently.
 */
#ifndef TIMBER_PARTS_H
#define TIMBER_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "timber.h"

/* The most parts a run may be split into. */
#define TB_MAX_PARTS 100000

/* Estimated cost of one plan item (Instruct's), in flops and bytes moved
 * (for every gamma).  Integers, so every host computes the same split. */
typedef struct tb_item_cost {
    uint64_t flops, bytes;
} tb_item_cost;

tb_item_cost tb_item_estimate(const tb_plan_item *it, size_t ngammas);

/* Splits Instruct's items among nparts: largest estimated cost first
 * (ties: plan order), each to the part with the least cost so far (ties:
 * the lowest part).  part_of[i] for i < plan->ninstruct.  A deterministic
 * function of the plan (the headers and the selection) and nparts. */
timber_status tb_parts_assign(const tb_plan *plan, size_t ngammas,
                              size_t nparts, uint32_t *part_of,
                              timber_error *err);

/* "DIR/.NAME.timber-parts" for OUT = DIR/NAME; NULL when out of memory. */
char *tb_parts_staging(const char *out);

/* The manifest (run.json). */
typedef struct tb_manifest {
    char run_id[33];        /* random hex, made by the first part */
    char fingerprint[17];   /* the pair's (tb_pair_fingerprint) */
    char version[32];
    size_t nparts;
    double *gammas;
    size_t ngammas;
    char **include, **exclude;
    size_t ninclude, nexclude;
    int strict;
    timber_matrix_view view;
    /* Where the inputs were found (absolute directories) and how they
     * were named (the card quotes the names). */
    char *base_dir, *instruct_dir, *base_arg, *instruct_arg;
    int base_repo, instruct_repo; /* named by a Hugging Face repo id */
    char *command;          /* for the card (NULL: the library was
                             * called directly) */
    char *rerun;            /* a part's command less --part, to rerun
                             * one (NULL: none) */
} tb_manifest;

void tb_manifest_clear(tb_manifest *m);

/* Creates STAGING/run.json from m (m->run_id is filled in), or, when it
 * exists, checks that it describes the same run (inputs' fingerprint,
 * options, N) and fills m->run_id from it; a disagreement is
 * TIMBER_ERR_INVALID naming the field and both values. */
timber_status tb_manifest_settle(const char *staging, tb_manifest *m,
                                 timber_error *err);

/* Reads STAGING/run.json into m (zeroed first). */
timber_status tb_manifest_read(const char *staging, tb_manifest *m,
                               timber_error *err);

/* One tensor a part has written. */
typedef struct tb_part_entry {
    size_t item;            /* plan item */
    uint32_t crc[64];       /* CRC-32 of its bytes, per gamma */
    double erank, tail;     /* its report */
    uint64_t k;
    int from_cache;
} tb_part_entry;

/* "STAGING/parts/I-of-N.log" or ".done". */
char *tb_part_file(const char *staging, size_t part, size_t nparts,
                   const char *ext);

/* Appends one entry to the journal (created with its run line when
 * missing or when it belongs to another run). */
timber_status tb_journal_append(const char *path, const char *run_id,
                                const tb_part_entry *e, size_t ngammas,
                                timber_error *err);

/* Reads the journal's entries of this run (an unfinished last line, or a
 * journal of another run, gives fewer: never an error but for memory).
 * *out is malloc'ed (free it); *n entries. */
timber_status tb_journal_read(const char *path, const char *run_id,
                              size_t ngammas, size_t nitems,
                              tb_part_entry **out, size_t *n,
                              timber_error *err);

/* Writes the completion record atomically. */
timber_status tb_done_write(const char *path, const char *run_id,
                            size_t part, size_t nparts,
                            const tb_part_entry *e, size_t n, size_t ngammas,
                            timber_error *err);

/* Reads a completion record: *found 0 when there is none (not an
 * error); TIMBER_ERR_INVALID when damaged, of another run or of another
 * part (the message says which). */
timber_status tb_done_read(const char *path, const char *run_id, size_t part,
                           size_t nparts, size_t ngammas, size_t nitems,
                           tb_part_entry **out, size_t *n, int *found,
                           timber_error *err);

/* CRC-32 of len bytes of path from off (reading a written tensor back). */
timber_status tb_parts_crc(const char *path, uint64_t off, uint64_t len,
                           uint32_t *crc, timber_error *err);

#endif /* TIMBER_PARTS_H */
