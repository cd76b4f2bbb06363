/*
 * model.c — checkpoint directories: finding the shards (through
 * model.safetensors.index.json or by scanning), cross-checking the index
 * against what the shards really hold, and listing the non-weight files
 * (config, tokenizer, templates) a refined model must carry over.
 */
#include "model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util.h"

/* An index is a small JSON file; anything much larger is not one. */
#define TB_INDEX_MAX_BYTES (256u << 20)

struct timber_model {
    char *path;
    timber_location *loc; /* where the argument led (hub.c) */
    int has_index;
    tb_shard **shards;
    size_t nshards;
    const timber_tensor_info **tensors; /* file order */
    const timber_tensor_info **by_name; /* sorted by name */
    size_t ntensors;
    char **extras;
    size_t nextras;
};

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_info_name(const void *a, const void *b)
{
    const timber_tensor_info *x = *(const timber_tensor_info *const *)a;
    const timber_tensor_info *y = *(const timber_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void timber_model_free(timber_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nshards; i++)
        tb_shard_free(m->shards[i]);
    for (size_t i = 0; i < m->nextras; i++)
        free(m->extras[i]);
    timber_location_free(m->loc);
    free(m->shards);
    free(m->tensors);
    free(m->by_name);
    free(m->extras);
    free(m->path);
    free(m);
}

/* A shard name from an index must be a plain file name: an index is input
 * and must not be able to point outside its directory. */
static int plain_file_name(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

static timber_status add_shard(timber_model *m, const char *dir,
                               const char *name, timber_error *err)
{
    char *p = tb_path_join(dir, name);
    if (!p)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    tb_shard *s = NULL;
    timber_status st = tb_shard_open(p, &s, err);
    free(p);
    if (st)
        return st;
    m->shards[m->nshards++] = s;
    return TIMBER_OK;
}

static timber_status build_tables(timber_model *m, timber_error *err);

/* Cross-checks weight_map against the shards' headers in O(n log n):
 * every entry must be found, in the shard it names, exactly once, and then
 * no tensor can be missing unless the counts differ. */
static timber_status check_index(timber_model *m, const cJSON *map,
                                 const char *index_path, timber_error *err)
{
    size_t nmap = 0;
    for (const cJSON *c = map->child; c; c = c->next)
        nmap++;
    unsigned char *seen = calloc(m->ntensors ? m->ntensors : 1, 1);
    if (!seen)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    timber_status st = TIMBER_OK;
    for (const cJSON *c = map->child; c && !st; c = c->next) {
        const timber_tensor_info *t = timber_model_find(m, c->string);
        if (!t || strcmp(t->shard, c->valuestring) != 0) {
            if (t)
                st = tb_fail(err, TIMBER_ERR_INDEX,
                             "%s: tensor '%s' is in shard '%s' but the index "
                             "places it in '%s'",
                             index_path, c->string, t->shard, c->valuestring);
            else
                st = tb_fail(err, TIMBER_ERR_INDEX,
                             "%s: tensor '%s' is listed in shard '%s' but "
                             "that shard does not hold it",
                             index_path, c->string, c->valuestring);
            break;
        }
        size_t at = tb_model_name_rank(m, t);
        if (seen[at]) {
            st = tb_fail(err, TIMBER_ERR_INDEX,
                         "%s: tensor '%s' appears twice in weight_map",
                         index_path, c->string);
            break;
        }
        seen[at] = 1;
    }
    for (size_t i = 0; i < m->ntensors && !st && nmap != m->ntensors; i++)
        if (!seen[i])
            st = tb_fail(err, TIMBER_ERR_INDEX,
                         "%s: tensor '%s' of shard '%s' is missing from the "
                         "index",
                         index_path, m->by_name[i]->name,
                         m->by_name[i]->shard);
    free(seen);
    return st;
}

/* The index: {"metadata": {...}, "weight_map": {tensor: shard file}}.
 * Opens every shard it names and checks the map against their headers. */
static timber_status open_indexed(timber_model *m, const char *index_path,
                                  timber_error *err)
{
    char *text = NULL;
    size_t len = 0;
    timber_status st =
        tb_read_small_file(index_path, TB_INDEX_MAX_BYTES, &text, &len, err);
    if (st)
        return st;
    const char **names = NULL;
    /* As strict as a shard header: an index is input like a header. */
    cJSON *root = tb_json_parse_strict(index_path, "index", text, len,
                                       TIMBER_ERR_INDEX, err);
    if (!root) {
        st = TIMBER_ERR_INDEX;
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        st = tb_fail(err, TIMBER_ERR_INDEX, "%s: not a JSON object",
                     index_path);
        goto out;
    }
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        st = tb_fail(err, TIMBER_ERR_INDEX,
                     "%s: no \"weight_map\" object", index_path);
        goto out;
    }
    size_t nmap = 0;
    for (const cJSON *c = map->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !plain_file_name(c->valuestring)) {
            st = tb_fail(err, TIMBER_ERR_INDEX,
                         "%s: weight_map entry for tensor '%s' is not a "
                         "shard file name",
                         index_path, c->string);
            goto out;
        }
        nmap++;
    }
    /* Shard names, each once, sorted. */
    names = tb_alloc_array(nmap, sizeof(char *));
    if (!names && nmap) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (const cJSON *c = map->child; c; c = c->next)
        names[k++] = c->valuestring;
    qsort(names, nmap, sizeof(char *), cmp_str_ptr);
    size_t nuniq = 0;
    for (size_t i = 0; i < nmap; i++)
        if (nuniq == 0 || strcmp(names[nuniq - 1], names[i]) != 0)
            names[nuniq++] = names[i];
    if (nuniq == 0) {
        st = tb_fail(err, TIMBER_ERR_INDEX,
                     "%s: weight_map is empty: no shards named", index_path);
        goto out;
    }
    m->shards = tb_calloc_array(nuniq, sizeof(tb_shard *));
    if (!m->shards) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nuniq; i++) {
        char *p = tb_path_join(m->path, names[i]);
        struct stat sb;
        int missing = p && stat(p, &sb) != 0 && errno == ENOENT;
        free(p);
        if (missing) {
            st = tb_fail(err, TIMBER_ERR_INDEX,
                         "%s: names shard '%s', which does not exist",
                         index_path, names[i]);
            goto out;
        }
        st = add_shard(m, m->path, names[i], err);
        if (st)
            goto out;
    }
    st = build_tables(m, err);
    if (st)
        goto out;
    st = check_index(m, map, index_path, err);
out:
    free((void *)names);
    cJSON_Delete(root);
    free(text);
    return st;
}

/* Scans dir: every *.safetensors file is a shard (when there is no index),
 * every other regular file is an extra to carry over. */
static timber_status scan_dir(timber_model *m, int want_shards,
                              timber_error *err)
{
    DIR *d = opendir(m->path);
    if (!d)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open "
                             "directory", m->path);
    size_t cap = 16, nshard_names = 0;
    char **shard_names = malloc(cap * sizeof(char *));
    size_t ecap = 16;
    m->extras = malloc(ecap * sizeof(char *));
    timber_status st = TIMBER_OK;
    if (!shard_names || !m->extras) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char *p = tb_path_join(m->path, n);
        if (!p) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            goto out;
        }
        struct stat sb;
        int found = stat(p, &sb) == 0, e = errno;
        int regular = found && S_ISREG(sb.st_mode);
        /* Without an index the directory listing is the list of shards:
         * a shard that cannot be read (a dangling symbolic link, a FIFO)
         * must not silently drop its tensors from the checkpoint. */
        if (!regular && want_shards && ends_with(n, ".safetensors") &&
            (!found || !S_ISDIR(sb.st_mode))) {
            st = found ? tb_fail(err, TIMBER_ERR_IO,
                                 "%s: not a regular file, so its tensors "
                                 "cannot be read",
                                 p)
                       : tb_fail_errno(err, TIMBER_ERR_IO, e,
                                       "%s: cannot read this shard%s", p,
                                       e == ENOENT
                                           ? " (a dangling symbolic link?)"
                                           : "");
            free(p);
            goto out;
        }
        free(p);
        if (!regular)
            continue; /* subdirectories are not part of the checkpoint */
        if (strcmp(n, TB_INDEX_NAME) == 0)
            continue;
        if (ends_with(n, ".safetensors")) {
            if (!want_shards)
                continue;
            if (nshard_names == cap) {
                char **g = realloc(shard_names, 2 * cap * sizeof(char *));
                if (!g) {
                    st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
                    goto out;
                }
                shard_names = g;
                cap *= 2;
            }
            if (!(shard_names[nshard_names] = tb_strdup(n))) {
                st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
                goto out;
            }
            nshard_names++;
            continue;
        }
        if (m->nextras == ecap) {
            char **g = realloc(m->extras, 2 * ecap * sizeof(char *));
            if (!g) {
                st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
                goto out;
            }
            m->extras = g;
            ecap *= 2;
        }
        if (!(m->extras[m->nextras] = tb_strdup(n))) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            goto out;
        }
        m->nextras++;
    }
    qsort(m->extras, m->nextras, sizeof(char *), cmp_str_ptr);
    if (want_shards) {
        if (nshard_names == 0) {
            st = tb_fail(err, TIMBER_ERR_INDEX,
                         "%s: no .safetensors files and no %s", m->path,
                         TB_INDEX_NAME);
            goto out;
        }
        qsort(shard_names, nshard_names, sizeof(char *), cmp_str_ptr);
        m->shards = tb_calloc_array(nshard_names, sizeof(tb_shard *));
        if (!m->shards) {
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nshard_names && !st; i++)
            st = add_shard(m, m->path, shard_names[i], err);
    }
out:
    if (shard_names)
        for (size_t i = 0; i < nshard_names; i++)
            free(shard_names[i]);
    free(shard_names);
    closedir(d);
    return st;
}

/* Builds the file-order and by-name tables; a name in two shards is an
 * error (the index check catches most, a scan without index needs this). */
static timber_status build_tables(timber_model *m, timber_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nshards; i++)
        n += tb_shard_tensor_count(m->shards[i]);
    m->tensors = tb_alloc_array(n, sizeof *m->tensors);
    m->by_name = tb_alloc_array(n, sizeof *m->by_name);
    if (!m->tensors || !m->by_name)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < m->nshards; i++)
        for (size_t t = 0; t < tb_shard_tensor_count(m->shards[i]); t++)
            m->tensors[k++] = tb_shard_tensor(m->shards[i], t);
    m->ntensors = n;
    if (n)
        memcpy(m->by_name, m->tensors, n * sizeof *m->by_name);
    qsort(m->by_name, n, sizeof *m->by_name, cmp_info_name);
    for (size_t i = 1; i < n; i++)
        if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0)
            return tb_fail(err, TIMBER_ERR_INDEX,
                           "%s: tensor '%s' is in two shards, '%s' and '%s'",
                           m->path, m->by_name[i]->name,
                           m->by_name[i - 1]->shard, m->by_name[i]->shard);
    return TIMBER_OK;
}

timber_status timber_model_open(const char *path, timber_model **out,
                                timber_error *err)
{
    *out = NULL;
    tb_error_clear(err);
    timber_location *loc = NULL;
    timber_status lst = timber_locate(path, &loc, err);
    if (lst)
        return lst;
    path = timber_location_path(loc);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lst = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s", path);
        timber_location_free(loc);
        return lst;
    }
    timber_model *m = calloc(1, sizeof *m);
    if (!m) {
        timber_location_free(loc);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    m->loc = loc;
    m->path = tb_strdup(path);
    if (!m->path) {
        timber_model_free(m);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    /* Trailing slashes make messages ugly ("dir//model.safetensors"). */
    for (size_t l = strlen(m->path); l > 1 && m->path[l - 1] == '/'; l--)
        m->path[l - 1] = '\0';

    timber_status st;
    if (S_ISREG(sb.st_mode)) {
        m->shards = calloc(1, sizeof(tb_shard *));
        st = m->shards ? TIMBER_OK
                       : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        if (!st) {
            tb_shard *s = NULL;
            st = tb_shard_open(m->path, &s, err);
            if (!st)
                m->shards[m->nshards++] = s;
        }
    } else if (S_ISDIR(sb.st_mode)) {
        char *index = tb_path_join(m->path, TB_INDEX_NAME);
        struct stat ib;
        /* An index entry of any kind is the index: one that cannot be
         * read (a dangling or looping link, no permission, a FIFO) is an
         * error when it is opened, never "no index", which would make a
         * checkpoint of whatever shards happen to be there. */
        m->has_index = index && lstat(index, &ib) == 0;
        if (!index)
            st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        else if (!m->has_index && errno != ENOENT)
            st = tb_fail_errno(err, TIMBER_ERR_INDEX, errno,
                               "%s: cannot tell whether it exists", index);
        else
            st = scan_dir(m, !m->has_index, err);
        if (!st && m->has_index)
            st = open_indexed(m, index, err);
        free(index);
    } else {
        st = tb_fail(err, TIMBER_ERR_IO,
                     "%s: neither a directory nor a regular file", path);
    }
    if (!st && !m->has_index)
        st = build_tables(m, err);
    if (st) {
        /* A repo-shaped name that is a local path: say that the Hub
         * cache was not what failed. */
        size_t len = err ? strlen(err->message) : 0;
        if (err && timber_location_note(m->loc) && len + 80 < sizeof err->message)
            snprintf(err->message + len, sizeof err->message - len,
                     " (a local path of that name, so the Hugging Face "
                     "cache was not used)");
        timber_model_free(m);
        return st;
    }
    *out = m;
    return TIMBER_OK;
}

const char *timber_model_path(const timber_model *m) { return m->path; }
const timber_location *timber_model_location(const timber_model *m)
{
    return m->loc;
}

void tb_model_note(const timber_model *m,
                   void (*warn)(const char *message, void *user), void *user)
{
    const char *note = timber_location_note(m->loc);
    if (note && warn)
        warn(note, user);
}
int timber_model_has_index(const timber_model *m) { return m->has_index; }
size_t timber_model_tensor_count(const timber_model *m) { return m->ntensors; }
size_t timber_model_shard_count(const timber_model *m) { return m->nshards; }
size_t timber_model_extra_count(const timber_model *m) { return m->nextras; }

const timber_tensor_info *timber_model_tensor(const timber_model *m, size_t i)
{
    return i < m->ntensors ? m->tensors[i] : NULL;
}

const char *timber_model_shard_name(const timber_model *m, size_t i)
{
    return i < m->nshards ? tb_shard_name(m->shards[i]) : NULL;
}

const char *timber_model_extra_name(const timber_model *m, size_t i)
{
    return i < m->nextras ? m->extras[i] : NULL;
}

/* Position of t in the by-name table (t must belong to m). */
size_t tb_model_name_rank(const timber_model *m,
                          const timber_tensor_info *t)
{
    size_t lo = 0, hi = m->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->by_name[mid]->name, t->name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

const timber_tensor_info *timber_model_find(const timber_model *m,
                                            const char *name)
{
    size_t lo = 0, hi = m->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->by_name[mid]->name, name);
        if (c == 0)
            return m->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

tb_shard *tb_model_shard_of(const timber_model *m,
                            const timber_tensor_info *info)
{
    for (size_t i = 0; i < m->nshards; i++)
        if (info->shard == tb_shard_name(m->shards[i]))
            return m->shards[i];
    return NULL;
}

timber_status tb_model_check(const timber_model *m, timber_error *err)
{
    for (size_t i = 0; i < m->nshards; i++) {
        timber_status st = tb_shard_check(m->shards[i], err);
        if (st)
            return st;
    }
    return TIMBER_OK;
}

timber_status tb_model_faulted(const timber_model *m, timber_error *err)
{
    for (size_t i = 0; i < m->nshards; i++)
        if (tb_shard_faulted(m->shards[i], err))
            return TIMBER_ERR_IO;
    return TIMBER_OK;
}

tb_shard *tb_model_shard(const timber_model *m, size_t i)
{
    return i < m->nshards ? m->shards[i] : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const tb_index_entry *)a)->tensor,
                  ((const tb_index_entry *)b)->tensor);
}

timber_status tb_index_write(const char *dir, const tb_index_entry *entries,
                             size_t n, uint64_t total_size,
                             uint64_t total_parameters, timber_error *err)
{
    char *path = tb_path_join(dir, TB_INDEX_NAME);
    tb_index_entry *sorted = tb_alloc_array(n, sizeof *sorted);
    tb_buf b = {0};
    timber_status st = TIMBER_OK;
    if (!path || (!sorted && n)) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (n)
        memcpy(sorted, entries, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_entry);
    /* json.dumps(index, indent=2, sort_keys=True) + "\n", as transformers'
     * save_pretrained writes it (keys in code-point order, which strcmp
     * on UTF-8 is). */
    int ok = tb_buf_printf(&b,
                           "{\n  \"metadata\": {\n"
                           "    \"total_parameters\": %llu,\n"
                           "    \"total_size\": %llu\n  },\n"
                           "  \"weight_map\": {",
                           (unsigned long long)total_parameters,
                           (unsigned long long)total_size);
    for (size_t i = 0; ok && i < n; i++)
        ok = tb_buf_puts(&b, i ? ",\n    " : "\n    ") &&
             tb_buf_json_string(&b, sorted[i].tensor) &&
             tb_buf_puts(&b, ": ") && tb_buf_json_string(&b, sorted[i].shard);
    ok = ok && tb_buf_puts(&b, n ? "\n  }\n}\n" : "}\n}\n");
    if (!ok) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    st = tb_write_file_atomic(path, b.data, b.len, err);
out:
    free(b.data);
    free(sorted);
    free(path);
    return st;
}

uint64_t tb_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t tb_model_fingerprint(const timber_model *m)
{
    uint64_t h = TB_FNV_OFFSET;
    for (size_t i = 0; i < m->nshards; i++) {
        const tb_shard *s = m->shards[i];
        const char *name = tb_shard_name(s);
        uint64_t size = tb_shard_file_size(s);
        size_t len;
        const void *hdr = tb_shard_header(s, &len);
        h = tb_fnv1a(h, name, strlen(name) + 1);
        h = tb_fnv1a(h, &size, sizeof size);
        h = tb_fnv1a(h, hdr, len);
    }
    return h;
}

uint64_t tb_pair_fingerprint(const timber_model *base,
                             const timber_model *inst)
{
    uint64_t h = tb_model_fingerprint(base);
    uint64_t hi = tb_model_fingerprint(inst);
    return tb_fnv1a(h, &hi, sizeof hi);
}
