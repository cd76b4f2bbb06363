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

typedef struct tb_cache tb_cache;

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

/* Opens (creating if missing, with its directory) the cache at path for
 * reading and appending, and takes an exclusive lock on it.  A file that
 * is not a cache, or of another format version, is an error naming it;
 * TIMBER_ERR_EXISTS when another process holds the lock. */
timber_status tb_cache_open(const char *path, uint64_t fingerprint,
                            tb_cache **out, timber_error *err);
/* Opens an existing cache for lookups only: no lock, no change to the
 * file; tb_cache_put must not be called on it. */
timber_status tb_cache_open_read(const char *path, tb_cache **out,
                                 timber_error *err);
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
 * stays valid.  Thread-safe. */
timber_status tb_cache_put(tb_cache *cache, const tb_cache_key *key,
                           uint64_t rows, uint64_t cols,
                           const tb_spectrum *sp, timber_error *err);

uint64_t tb_cache_size(const tb_cache *cache);
const char *tb_cache_path(const tb_cache *cache);

/* The default cache file for a pair: $XDG_CACHE_HOME/timber/ or
 * ~/.cache/timber/, named from the fingerprint.  NULL if neither variable
 * is set. */
char *tb_cache_default_path(uint64_t fingerprint);

#endif /* TIMBER_CACHE_H */
