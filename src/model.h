/*
 * model.h — library-internal view of a checkpoint (timber_model, declared
 * in timber.h): access to the shard behind a tensor, for reading its bytes.
 */
#ifndef TIMBER_MODEL_H
#define TIMBER_MODEL_H

#include "safetensors.h"
#include "timber.h"

#define TB_INDEX_NAME "model.safetensors.index.json"

/* The shard holding info (which must come from m). */
tb_shard *tb_model_shard_of(const timber_model *m,
                            const timber_tensor_info *info);
tb_shard *tb_model_shard(const timber_model *m, size_t i);
size_t tb_model_name_rank(const timber_model *m,
                          const timber_tensor_info *t);


/* Passes the model's location note (a repo-shaped argument that is a
 * local path, hub.c) to warn, when there is one and warn is set. */
void tb_model_note(const timber_model *m,
                   void (*warn)(const char *message, void *user), void *user);

/* tb_shard_check on every shard: TIMBER_ERR_IO naming the first file
 * that was truncated or rewritten in place since the model was opened.
 * Called after reading everything and before publishing results. */
timber_status tb_model_check(const timber_model *m, timber_error *err);
/* Only the fault flags of m's shards (tb_shard_faulted): cheap enough to
 * call before every write. */
timber_status tb_model_faulted(const timber_model *m, timber_error *err);

/* A 64-bit fingerprint of the checkpoint's structure: FNV-1a over every
 * shard's name, size and header bytes.  Cheap (no tensor data is read);
 * per-tensor data checksums live in the SVD cache's records. */
uint64_t tb_model_fingerprint(const timber_model *m);

/* The fingerprint of a Base/Instruct pair (names its default cache file
 * and goes into the output's metadata). */
uint64_t tb_pair_fingerprint(const timber_model *base,
                             const timber_model *inst);

/* Extends an FNV-1a 64 hash with len bytes. */
uint64_t tb_fnv1a(uint64_t h, const void *data, size_t len);
#define TB_FNV_OFFSET 0xcbf29ce484222325ull

/* One weight_map entry of an index. */
typedef struct tb_index_entry {
    const char *tensor;
    const char *shard;
} tb_index_entry;

/* Writes dir/model.safetensors.index.json atomically, byte for byte as
 * transformers' save_pretrained does: {"metadata": {"total_parameters",
 * "total_size"}, "weight_map": {...}} by json.dumps(indent=2,
 * sort_keys=True) plus a newline. */
timber_status tb_index_write(const char *dir, const tb_index_entry *entries,
                             size_t n, uint64_t total_size,
                             uint64_t total_parameters, timber_error *err);

#endif /* TIMBER_MODEL_H */
