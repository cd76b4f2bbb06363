/*
 * safetensors.h — one safetensors shard: the validating reader and the
 * atomic writer.  Nothing else in libtimber knows the byte layout.
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *   bytes 0..7   N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N the header: UTF-8 JSON object, padded with spaces
 *                  { "__metadata__": { "key": "string", ... },   (optional)
 *                    "tensor.name": { "dtype": "BF16",
 *                                     "shape": [rows, cols],
 *                                     "data_offsets": [begin, end] }, ... }
 *   bytes 8+N..  the data buffer: every tensor's elements, little-endian,
 *                row-major, at [begin, end) relative to the buffer start.
 *
 * The reader accepts a file only if it passes every check the reference
 * implementation makes (see docs/formats.md), plus the ones it should:
 * header at most 100,000,000 bytes and within the file; strict UTF-8 and no
 * raw control characters; a JSON object; known dtypes; every field present
 * exactly once; offsets and dims whole numbers below 2^53; shape x dtype
 * size equal to the byte range, with every multiplication overflow-checked;
 * ranges contiguous from 0 with no holes or overlaps; no trailing bytes; no
 * duplicate names; no tensor called "__metadata__"; metadata values strings.
 *
 * The writer lays tensors out as the reference writer does (descending
 * dtype alignment, then name), writes compact JSON with "__metadata__"
 * first, pads the header with spaces to a multiple of 8 so every tensor is
 * naturally aligned, and publishes the file atomically: temporary file in
 * the destination directory, fsync, rename, fsync of the directory.
 */
#ifndef TIMBER_SAFETENSORS_H
#define TIMBER_SAFETENSORS_H

#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "timber.h"

#define TB_ST_MAX_HEADER 100000000ull

/* ------------------------------------------------------------- reading */

/* JSON parsed as strictly as a shard header (the index uses it too):
 * strict UTF-8, no raw control characters, numbers in JSON's grammar, no
 * \u0000, nothing but whitespace after the value.  NULL after recording
 * `status` and a message "PATH: WHAT byte N ..." in err. */
struct cJSON;
struct cJSON *tb_json_parse_strict(const char *path, const char *what,
                                   const char *text, size_t len,
                                   timber_status status, timber_error *err);

typedef struct tb_shard tb_shard;

/* Opens, maps and validates the shard at path.  Tensor infos name the
 * shard by the file's base name. */
timber_status tb_shard_open(const char *path, tb_shard **out,
                            timber_error *err);
/* The same validation on a shard image already in memory (the whole
 * file: length prefix, header, data).  The shard borrows buf, which must
 * outlive it; path only names it in messages and tensor infos.  This is
 * the entry point of the fuzz target; tb_shard_open maps the file and
 * runs exactly the same checks. */
timber_status tb_shard_parse(const char *path, const void *buf, size_t len,
                             tb_shard **out, timber_error *err);
void tb_shard_free(tb_shard *shard);

/* A file that changes while it is mapped.  Truncating a mapped shard
 * makes reads past its new end raise SIGBUS; a handler (installed on the
 * first tb_shard_open, chaining to the previous one for other addresses)
 * flags the shard and jumps back to the reading thread's recovery point,
 * abandoning the read.  Tensor data is read only inside one:
 *
 *     tb_guard g;
 *     tb_guard_push(&g);
 *     if (sigsetjmp(g.jump, 0) == 0) {
 *         ... reads of mapped bytes (no locks taken, nothing allocated) ...
 *     }
 *     if (tb_guard_pop(&g))
 *         return tb_guard_error(&g, err);   (or leave it to the checks)
 *
 * A fault outside a recovery point (in the milliseconds of opening a
 * shard) gets the default action, as without timber's handler.  tb_shard_check: TIMBER_ERR_IO naming the file when it was
 * flagged, or when the file at its path is still the same inode but its
 * size or mtime changed since it was opened (rewritten in place).
 * tb_shard_faulted: the flag alone (one atomic load, no stat), for the
 * checks before every write: a run checks its own inputs' shards (through
 * tb_writer_set_sources and before each cache record), so a fault in one
 * run's shard does not stop the writers of another run in the process. */
timber_status tb_shard_check(const tb_shard *shard, timber_error *err);
timber_status tb_shard_faulted(const tb_shard *shard, timber_error *err);

typedef struct tb_guard {
    sigjmp_buf jump;
    struct tb_guard *prev;
    volatile sig_atomic_t slot; /* the faulted shard's slot, or -1 */
} tb_guard;
void tb_guard_push(tb_guard *g);
/* Leaves the recovery point; non-zero when a fault jumped back to it. */
int tb_guard_pop(tb_guard *g);
/* The error naming the file whose fault jumped back to g. */
timber_status tb_guard_error(const tb_guard *g, timber_error *err);

const char *tb_shard_path(const tb_shard *shard);
const char *tb_shard_name(const tb_shard *shard);
uint64_t tb_shard_file_size(const tb_shard *shard);

/* Tensors sorted by offset. */
size_t tb_shard_tensor_count(const tb_shard *shard);
const timber_tensor_info *tb_shard_tensor(const tb_shard *shard, size_t i);

/* The tensor's bytes (info must come from this shard). */
const void *tb_shard_data(const tb_shard *shard,
                          const timber_tensor_info *info);
/* Tells the kernel the pages of [off, off+len) of the tensor's bytes will
 * not be needed again (they are dropped from this process's RSS). */
void tb_shard_release(const tb_shard *shard, const timber_tensor_info *info,
                      uint64_t off, uint64_t len);

/* Reading a tensor's bytes without faulting the mapping in: pread from
 * the shard's file reopened (per matrix or tensor, not per shard, so the
 * fd count does not grow with the number of shards).
 * tb_shard_reopen: an fd of the very file that was opened, still of the
 * size and mtime it had, or -1 (then reads go through the mapping: a
 * file renamed over it since, a buffer shard); the caller closes it.
 * tb_shard_read: bytes [off, off+len) of tensor t into buf, by pread
 * from fd (fd < 0: copied from the mapping inside a recovery point, and
 * those pages dropped).  A file that ends early (truncated since it was
 * opened: pread's short read is what a mapping's SIGBUS would have been)
 * flags the shard as a fault does (tb_shard_faulted) and fails with
 * TIMBER_ERR_IO naming the file and tensor. */
int tb_shard_reopen(const tb_shard *shard);
timber_status tb_shard_read(const tb_shard *shard, int fd,
                            const timber_tensor_info *t, uint64_t off,
                            void *buf, size_t len, timber_error *err);

/* The raw bytes 0..8+N of the file (length prefix and header). */
const void *tb_shard_header(const tb_shard *shard, size_t *len);

size_t tb_shard_meta_count(const tb_shard *shard);
const char *tb_shard_meta_key(const tb_shard *shard, size_t i);
const char *tb_shard_meta_value(const tb_shard *shard, size_t i);

/* ------------------------------------------------------------- writing */

typedef struct tb_tensor_spec {
    const char *name;
    timber_dtype dtype;
    size_t ndim;
    const uint64_t *shape;
} tb_tensor_spec;

typedef struct tb_meta {
    const char *key;
    const char *value;
} tb_meta;

typedef struct tb_writer tb_writer;

/* Plans the layout of `n` tensors, creates a temporary file beside `path`
 * and writes the header.  Nothing appears under `path` until commit.
 * Refused (TIMBER_ERR_INVALID): duplicate tensor names or metadata keys, a
 * tensor called "__metadata__", a size that is not whole bytes, and
 * dimensions or data of 2^53 or more (no reader could read them). */
timber_status tb_writer_create(const char *path, const tb_meta *meta,
                               size_t nmeta, const tb_tensor_spec *tensors,
                               size_t n, tb_writer **out, timber_error *err);

/* The same layout, written in place: `path` itself is created (or, when
 * it exists with exactly this layout's size, reopened without truncating)
 * and preallocated to its final size, and the header is written.  Several
 * writers, in several processes or on several hosts sharing the file
 * system, may each put different tensors of one such file: every one
 * derives the same header and offsets from the same specs, and each put
 * is a pwrite to its tensor's own range (no mmap, no lock).  Commit only
 * checks completeness and fsyncs; free never removes the file (it lives
 * in a directory that is published or removed as a whole). */
timber_status tb_writer_open_in_place(const char *path, const tb_meta *meta,
                                      size_t nmeta,
                                      const tb_tensor_spec *tensors, size_t n,
                                      tb_writer **out, timber_error *err);

/* The file put writes to, and tensor `index`'s absolute offset in it
 * (for reading a written tensor back). */
const char *tb_writer_file(const tb_writer *w);
uint64_t tb_writer_tensor_offset(const tb_writer *w, size_t index);

/* Counts tensor `index` as complete without putting it (in place: its
 * bytes were put by another writer, or by an earlier process, and were
 * checked by the caller). */
void tb_writer_mark_written(tb_writer *w, size_t index);

/* fsyncs the file written so far (a distributed part's share of it). */
timber_status tb_writer_sync(tb_writer *w, timber_error *err);

/* Bytes of tensor `index` (its position in the array given to create).
 * Each tensor's bytes are appended in order: call put repeatedly with
 * consecutive chunks; tensors may be filled in any order.  The whole
 * aligned blocks of a large put (or copy) go to the file with O_DIRECT
 * through bounce buffers of TB_WRITER_BOUNCE bytes, at most two per
 * writing thread (safetensors.c, "direct writes"); the bytes are the same
 * either way.  The last of them may still be in flight when put returns:
 * a thread that has put or copied must call tb_writer_flush before the
 * bytes are read back, and before another thread syncs, commits or frees
 * the writer (the writing thread's own sync, commit and free wait). */
#define TB_WRITER_BOUNCE (4u << 20)
timber_status tb_writer_put(tb_writer *w, size_t index, const void *data,
                            size_t len, timber_error *err);

/* Waits for the calling thread's direct write in flight, of any writer;
 * its error, if it failed (naming the file and offset). */
timber_status tb_writer_flush(timber_error *err);

/* Appends bytes [from, from+len) of shard s's tensor t to tensor `index`
 * of w, as put does, but copied by the kernel file to file
 * (copy_file_range: no page of either file is mapped into this process,
 * and a file system that shares extents shares them) from src_fd, an fd
 * of tb_shard_reopen; with src_fd < 0, or where the kernel cannot copy
 * between the two files, put from the mapping.  A source that ends early
 * fails as tb_shard_read does. */
timber_status tb_writer_copy(tb_writer *w, size_t index, const tb_shard *s,
                             int src_fd, const timber_tensor_info *t,
                             uint64_t from, size_t len, timber_error *err);

/* What w's bytes are computed from: put and commit call check(ctx) first
 * and fail with its error, so nothing computed from an input that changed
 * under its mapping is written (by default nothing is checked: the bytes
 * are the caller's own). */
typedef timber_status (*tb_source_check)(const void *ctx, timber_error *err);
void tb_writer_set_sources(tb_writer *w, tb_source_check check,
                           const void *ctx);

/* Forgets the bytes put for tensor `index` after its first `to` (0: all),
 * so they can be put again (a matrix recomputed after its cache record
 * proved stale; one expert of a stacked tensor rewinds to its own start). */
void tb_writer_rewind(tb_writer *w, size_t index, uint64_t to);

/* Byte size of tensor `index` as laid out. */
uint64_t tb_writer_tensor_bytes(const tb_writer *w, size_t index);

/* Total file size once complete. */
uint64_t tb_writer_file_size(const tb_writer *w);

/* Checks every tensor is complete, flushes, fsyncs, renames into place and
 * fsyncs the directory.  On failure nothing appears under `path`; the
 * temporary is removed by tb_writer_free (after an incomplete tensor the
 * writer stays usable: put the missing bytes and commit again). */
timber_status tb_writer_commit(tb_writer *w, timber_error *err);

/* Frees the writer; an uncommitted temporary file is removed. */
void tb_writer_free(tb_writer *w);

#endif /* TIMBER_SAFETENSORS_H */
