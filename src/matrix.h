/*
 * matrix.h — a tensor pair seen as a matrix of d0 rows and d1*d2*... cols,
 * decoded to double in panels straight from the mapped shards: the delta
 * D = W_I - W_B (or one model's W alone), its Gram matrix, the CRC of the
 * raw bytes.  Refinement and the eRank analysis both stream through here,
 * so neither ever holds a whole matrix in double.
 */
#ifndef TIMBER_MATRIX_H
#define TIMBER_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "meter.h"
#include "safetensors.h"
#include "timber.h"

/* Doubles per streamed panel: 512 Ki = 4 MiB per buffer, small enough to
 * stay in cache between decoding and the BLAS call. */
#define TB_PANEL_ELEMS (1u << 19)

/* A read-tracking source: both inputs' CRC-32 (the cache key) gathered
 * as whole rows are read in order by whichever pass reads them so first
 * (a whole read, a tall Gram pass, the update's first pass), so the
 * inputs are read no more often with a cache than without.  Rows read out
 * of order, or again, are ignored. */
typedef struct tb_crc_track {
    uint32_t crc[2];    /* Base's, Instruct's, over rows [0, next) */
    uint64_t next;
    int expect_set;     /* expect: the CRCs of a cache record in use */
    uint32_t expect[2];
} tb_crc_track;

typedef struct tb_mat {
    const unsigned char *wi, *wb; /* wb NULL: one model, D = W_I */
    timber_dtype dti, dtb;
    size_t esi, esb;
    uint64_t rows, cols;
    /* Which matrix of the tensor this is: part `part` of `parts`, whose
     * first element is element elem0 of the tensor (a stacked expert
     * tensor [E, a, b] is E parts of a x b; anything else is 1 part). */
    uint64_t part, parts, elem0;
    const timber_tensor_info *ii, *bi;
    tb_shard *si, *sb;
    tb_crc_track *track; /* NULL: no CRC wanted */
    /* NULL: untimed.  Else the Gram and whole-read passes switch it
     * between the read and gram phases and tick their progress. */
    tb_meter *meter;
    int held; /* wi / wb point at a copy in memory (tb_mat_hold) */
} tb_mat;

/* Polled between panels: non-zero stops with TIMBER_ERR_INTERRUPTED. */
typedef int (*tb_stop_fn)(const void *ctx);

/* The matrix view of Instruct's tensor ii (and Base's bi, or NULL). */
void tb_mat_init(tb_mat *M, const timber_model *inst,
                 const timber_tensor_info *ii, const timber_model *base,
                 const timber_tensor_info *bi);
/* Part `part` of `parts` equal rows x cols matrices the tensor is, in
 * order (the per-expert view, plan.h); tb_mat_init is part 0 of 1. */
void tb_mat_init_part(tb_mat *M, const timber_model *inst,
                      const timber_tensor_info *ii, const timber_model *base,
                      const timber_tensor_info *bi, uint64_t rows,
                      uint64_t cols, uint64_t part, uint64_t parts);

/* Elements each panel buffer must hold for this matrix. */
uint64_t tb_mat_panel_elems(const tb_mat *M);
/* Rows per row block (at least 1). */
uint64_t tb_mat_row_step(const tb_mat *M);

/* Decodes rows [r0, r0+nr) x cols [c0, c0+nc) into D (= W_I - W_B, or W_I
 * for one model), and W_I / W_B into wi / wb when non-NULL; scratch holds
 * nc doubles and is used when wi is NULL.  check: a NaN or Inf is an error
 * naming the file, tensor and element. */
timber_status tb_mat_load(const tb_mat *M, uint64_t r0, uint64_t nr,
                          uint64_t c0, uint64_t nc, double *D, double *wi,
                          double *wb, double *scratch, int check,
                          timber_error *err);

/* Drops rows [r0, r0+nr) of both inputs from this process's RSS. */
void tb_mat_release_rows(const tb_mat *M, uint64_t r0, uint64_t nr);

/* Starts tracking M's CRCs into t (M->track = t). */
void tb_mat_track(tb_mat *M, tb_crc_track *t);
/* Rows [r0, r0+nr) were just read whole: added to the CRCs when they are
 * the next ones; a no-op without a tracker. */
void tb_mat_track_rows(const tb_mat *M, uint64_t r0, uint64_t nr);
/* Whether every row is in the CRCs (1 without a tracker: nothing to do). */
int tb_mat_track_done(const tb_mat *M);
/* Reads the rows not yet in the CRCs (dropping their pages). */
void tb_mat_track_finish(const tb_mat *M);
/* The CRCs are complete and differ from the expected record's. */
int tb_mat_track_stale(const tb_mat *M);

/* Gram matrices G = A^T A (A = X, or X^T when rows < cols; S x S with row
 * stride ldg (tb_gram_ld), row-major upper triangle, accumulated into
 * zeroed buffers) of the delta
 * (gd), Base (gb) and Instruct (gi); any may be NULL.  Checks finiteness.
 * bufs: three buffers of tb_mat_panel_elems() doubles.  M's tracker
 * sees the rows when rows >= cols (they are read in order then; a wide
 * matrix is read by columns). */
timber_status tb_mat_gram(const tb_mat *M, const tb_backend *be,
                          double *gd, double *gb, double *gi, size_t ldg,
                          double *const bufs[3],
                          tb_stop_fn stop, const void *ctx,
                          timber_error *err);

/* Matrices of at most this many elements are read once, whole, into
 * memory (D and W_I as doubles: 2 x 32 MiB at most) and refined from
 * there; bigger ones are streamed twice (Gram, then update).  Reading once
 * saves decoding both inputs and faulting their pages a second time.  The
 * arithmetic is the same either way: both go through the same panels.
 * A variable only so tests can force streaming (0) and compare. */
extern uint64_t tb_whole_elems;
#define TB_WHOLE_ELEMS (1u << 22)

/* A matrix too big to read whole in double but whose raw bytes (both
 * inputs, as stored) are at most this many is read once, by pread into
 * memory (tb_mat_hold), and every pass decodes from that copy: its pages
 * are neither faulted in (twice) nor dropped, and the file is read once.
 * A variable only so tests can turn it off (0) and compare. */
extern uint64_t tb_hold_bytes;
#define TB_HOLD_BYTES (512ull << 20)

/* Bytes tb_mat_hold needs for M, or 0 when M is not to be held: read
 * whole anyway (tb_whole_elems), over tb_hold_bytes, or under a memory
 * rlimit (resources.h: the run's estimate did not count the copy). */
uint64_t tb_mat_hold_size(const tb_mat *M);

/* Reads M's raw bytes of both inputs into buf (tb_mat_hold_size bytes)
 * without faulting the mapping (tb_shard_read) and points M at the copy
 * (M->held: tb_mat_release_rows does nothing any more).  A file that
 * shrank is the same one-line error as a fault of the mapping. */
timber_status tb_mat_hold(tb_mat *M, unsigned char *buf, tb_stop_fn stop,
                          const void *ctx, timber_error *err);

/* Reads the whole matrix: D (rows x cols, row-major) and W_I into wi, with
 * the finiteness check, M's tracker fed, and the input pages dropped
 * once it is read (one madvise per input). */
timber_status tb_mat_load_all(const tb_mat *M, double *D, double *wi,
                              tb_stop_fn stop,
                              const void *ctx, timber_error *err);

/* The Gram matrix of a delta held whole in memory (as tb_mat_load_all
 * leaves it), accumulated into zeroed G over exactly tb_mat_gram's panels,
 * so the result is bit-identical to streaming it. */
void tb_mat_gram_of(const tb_mat *M, const tb_backend *be, const double *D,
                    double *G, size_t ldg);

/* CRC-32 of a tensor's bytes, dropping its pages as it goes. */
uint32_t tb_tensor_crc(const tb_shard *s, const timber_tensor_info *t);

#endif /* TIMBER_MATRIX_H */
