/*
 * cache.h — the SVD cache file: what refinement learns about each delta
 * (singular values, eRank, k, and the basis of the smaller side of the
 * cut), so a later run on the same pair, with any gamma, or a run resumed
 * after a kill, needs no factorisation.  Format: docs/cache-format.md.
 *
 *   header (32 bytes)
 *     0  "TIMBERSV"            magic
 *     8  u32 format version    TB_CACHE_VERSION
 *    12  u32 header size       32
 *    16  u64 pair fingerprint  of the pair that created the file (info)
 *    24  u32 transform version TB_TRANSFORM_VERSION when created (info)
 *    28  u32 CRC-32            of bytes 0..27
 *   records, back to back, each appended (and flushed) as a tensor ends
 *     0  u32 "TREC"
 *     4  u64 body length B
 *    12  body (B bytes):
 *          u32 name length, name bytes (UTF-8, no NUL)
 *          u32 ndim, u64 dims[ndim]
 *          u8 Base dtype, u8 Instruct dtype, u16 zero
 *          u32 CRC-32 of Base's bytes, u32 CRC-32 of Instruct's bytes
 *          u32 transform version
 *          u32 route             backend.h: (backend << 16) | spectral route
 *          u64 rows, cols, r, k
 *          f64 eRank, tail energy share
 *          u8 tail side (1: basis spans the tail, 0: the head), u8[7] zero
 *          u64 p (basis columns)
 *          f64 s[r]              singular values, descending
 *          f64 basis[S * p]      column j = eigenvector j, S = min(rows, cols)
 *    12+B u32 CRC-32 of bytes 0..12+B of the record
 * All integers little-endian; doubles are the little-endian bytes of their
 * IEEE-754 bit pattern (encode_body/decode_body in cache.c, the one codec).
 * A record is applied only when its CRC and
 * its whole key (name, shape, dtypes, both data CRCs, transform version,
 * route) match; anything else is recomputed.  Trailing bytes of a record cut
 * short by a kill are dropped when the file is next opened for writing.
 */
#ifndef TIMBER_CACHE_H
#define TIMBER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "spectrum.h"
#include "timber.h"

/* 3: every record names the route that computed it (2 did not; 1 stored
 * the basis in float32, which put outputs near zero a few ULP off the
 * float64 reference). */
#define TB_CACHE_VERSION 3u
/* Bump whenever the arithmetic that produces a record changes. */
#define TB_TRANSFORM_VERSION 2u

/* The name a record of one matrix of a tensor is kept under: NAME for a
 * tensor that is one matrix (parts 1), NAME[e] for expert e of a stacked
 * one (docs/cache-format.md), so each expert has its own record and a
 * per-expert record never answers the flatten view's (which is NAME, with
 * other rows and cols).  Truncated to size. */
void tb_cache_part_name(char *buf, size_t size, const char *name,
                        uint64_t part, uint64_t parts);

typedef struct tb_cache_key {
    const char *name;
    size_t ndim;
    const uint64_t *shape;
    timber_dtype base_dtype, inst_dtype;
    uint32_t crc_base, crc_inst;
    uint32_t route; /* tb_backend_route: a record of another is a miss */
} tb_cache_key;

/* ------------------------------------------------- one cache file (cache.c)
 * The record codec and one file's index.  The cache as refine and erank
 * see it is a tb_cache (below): one such file, or a directory of them. */

typedef struct tb_cache_file tb_cache_file;

typedef enum tb_cache_mode {
    /* Read and append: created if missing (with its directory), locked
     * (flock, exclusive, non-blocking: TIMBER_ERR_EXISTS when held), a
     * tail cut short by a kill cut off. */
    TB_CACHE_RW,
    /* Lookups only: no lock, no change to the file. */
    TB_CACHE_READ,
    /* A new file of a cache directory: created with O_EXCL (TIMBER_ERR_EXISTS
     * when the name is taken), not locked (no lock crosses hosts; the
     * name alone makes it this process's), read and append. */
    TB_CACHE_NEW
} tb_cache_mode;

/* A file that is not a cache, or of another format version, is
 * TIMBER_ERR_CACHE naming it; one that cannot be opened TIMBER_ERR_IO. */
timber_status tb_cache_file_open(const char *path, uint64_t fingerprint,
                                 tb_cache_mode mode, tb_cache_file **out,
                                 timber_error *err);
void tb_cache_file_close(tb_cache_file *f);
/* Lookup as tb_cache_get (any_crc 0) or tb_cache_get_latest (any_crc 1,
 * the record's CRCs into crc). */
int tb_cache_file_get(tb_cache_file *f, const tb_cache_key *key,
                      uint64_t rows, uint64_t cols, tb_spectrum *sp,
                      int any_crc, uint32_t crc[2]);
timber_status tb_cache_file_put(tb_cache_file *f, const tb_cache_key *key,
                                uint64_t rows, uint64_t cols,
                                const tb_spectrum *sp, timber_error *err);
/* Closes the fd of a TB_CACHE_READ file after its scan: each lookup that
 * hits then opens the file again (checking it is still the same file), so
 * a directory of many files holds few descriptors. */
void tb_cache_file_drop_fd(tb_cache_file *f);
uint64_t tb_cache_file_size(const tb_cache_file *f);
const char *tb_cache_file_path(const tb_cache_file *f);

/* ------------------------------------------- the cache (cachedir.c)
 * One file (as above, opened TB_CACHE_RW), or a cache directory shared by
 * many processes: each reads every file of its pair in it and appends
 * only to a file of its own, created on its first record
 * (docs/cache-format.md#cache-directories). */

typedef struct tb_cache tb_cache;

/* 1 when path names a cache directory: an existing directory, or a path
 * ending in '/'. */
int tb_cache_is_dir(const char *path);

/* Opens the cache at path for reading and appending.  A file: created if
 * missing (with its directory) and locked; not a cache, or of another
 * format version, is an error naming it; TIMBER_ERR_EXISTS when another
 * process holds the lock.  A directory: created when path ends in '/'
 * and is missing (its parent must exist); every file of this pair's
 * fingerprint read; a file that cannot be used is skipped with a warning
 * (tb_cache_warnings). */
timber_status tb_cache_open(const char *path, uint64_t fingerprint,
                            tb_cache **out, timber_error *err);
/* Opens an existing cache for lookups only: no lock, no change to it;
 * tb_cache_put must not be called on it.  A directory's files of other
 * fingerprints are skipped, unless fingerprint is 0. */
timber_status tb_cache_open_read(const char *path, uint64_t fingerprint,
                                 tb_cache **out, timber_error *err);
/* Says each warning of the opening (one line each: a file of a cache
 * directory that was skipped, and why). */
void tb_cache_warnings(const tb_cache *cache,
                       void (*warn)(const char *message, void *user),
                       void *user);
void tb_cache_close(tb_cache *cache);

/* Fills sp from a record matching key (basis widened to double); returns
 * 1 on a hit, 0 on a miss (a damaged record is a miss).  Thread-safe. */
int tb_cache_get(tb_cache *cache, const tb_cache_key *key, uint64_t rows,
                 uint64_t cols, tb_spectrum *sp);

/* The newest record matching key in everything but the two data CRCs,
 * which are returned in crc (Base, Instruct): the caller computes the real
 * CRCs on its way through the data and applies the record only if they
 * match, so the inputs are read once.  Returns 1 when found. */
int tb_cache_get_latest(tb_cache *cache, const tb_cache_key *key,
                        uint64_t rows, uint64_t cols, tb_spectrum *sp,
                        uint32_t crc[2]);

/* Appends a record for key and
 * flushes it.  The caller checks first that its inputs did not change
 * under their mappings (tb_model_faulted): a spectrum computed from zero
 * pages must never reach the file, where its key (the CRCs of the real
 * bytes) would make it look valid.  On failure the file is cut back to its previous end, so it
 * stays valid.  A directory's own file is created by the first put.
 * Thread-safe. */
timber_status tb_cache_put(tb_cache *cache, const tb_cache_key *key,
                           uint64_t rows, uint64_t cols,
                           const tb_spectrum *sp, timber_error *err);

/* Bytes of whole records and headers (a directory: of all its files
 * read, and of the own file); the path as given. */
uint64_t tb_cache_size(const tb_cache *cache);
const char *tb_cache_path(const tb_cache *cache);

/* The default cache file for a pair: $XDG_CACHE_HOME/timber/ or
 * ~/.cache/timber/, named from the fingerprint.  NULL if neither variable
 * is set. */
char *tb_cache_default_path(uint64_t fingerprint);

#endif /* TIMBER_CACHE_H */
