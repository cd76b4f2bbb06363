/*
 * parts.c — the split of a run into parts and the staging directory's
 * shared files (see parts.h for the layout): the cost model and the
 * assignment, the manifest (run.json), and one codec for the journal and
 * the completion records.
 */
#include "parts.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "tempfile.h"
#include "util.h"

/* Largest manifest or completion record read back (a record has one line
 * of ~100 bytes per tensor: 100,000 tensors fit). */
#define PARTS_MAX_FILE (64u << 20)

/* ------------------------------------------------------------- the split */

tb_item_cost tb_item_estimate(const tb_plan_item *it, size_t ngammas)
{
    tb_item_cost c = {0, 0};
    uint64_t nb = it->instruct->nbytes;
    if (it->action == TIMBER_ACTION_REFINED) {
        /* Gram L·S² + reduction 4/3·S³ + projection and update ~2·L·S²
         * per matrix (docs/performance.md; p is not known before the
         * spectrum, so the update is counted at p = S/2). */
        uint64_t L = it->rows > it->cols ? it->rows : it->cols;
        uint64_t S = it->rows > it->cols ? it->cols : it->rows;
        double f = (double)it->parts *
                   (3.0 * (double)L * (double)S * (double)S +
                    4.0 / 3.0 * (double)S * (double)S * (double)S);
        c.flops = f >= 1.8e19 ? UINT64_MAX : (uint64_t)f;
        nb += it->base ? it->base->nbytes : 0;
    }
    c.bytes = nb + it->instruct->nbytes * (uint64_t)ngammas;
    return c;
}

/* One weight for the greedy split: flops plus bytes at 50 flops a byte
 * (≈ 100 GFLOP/s against ≈ 2 GB/s of reading and writing). */
static uint64_t weight(tb_item_cost c)
{
    uint64_t w;
    if (!tb_mul_u64(c.bytes, 50, &w) || !tb_add_u64(w, c.flops, &w))
        return UINT64_MAX;
    return w;
}

typedef struct ranked {
    uint64_t w;
    size_t item;
} ranked;

static int by_weight(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

timber_status tb_parts_assign(const tb_plan *plan, size_t ngammas,
                              size_t nparts, uint32_t *part_of,
                              timber_error *err)
{
    if (nparts < 1 || nparts > TB_MAX_PARTS)
        return tb_fail(err, TIMBER_ERR_OPTION,
                       "--parts: %zu is not between 1 and %d", nparts,
                       TB_MAX_PARTS);
    size_t n = plan->ninstruct;
    ranked *r = tb_alloc_array(n ? n : 1, sizeof *r);
    uint64_t *load = tb_calloc_array(nparts, sizeof *load);
    if (!r || !load) {
        free(r);
        free(load);
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){weight(tb_item_estimate(&plan->items[i], ngammas)),
                        i};
    qsort(r, n, sizeof *r, by_weight);
    /* Longest processing time first.  A linear scan for the least loaded
     * part: n·N at most 10^5·10^5 in theory, but N > n only leaves parts
     * empty, so the scan stops early once one at zero is found. */
    for (size_t j = 0; j < n; j++) {
        size_t best = 0;
        for (size_t p = 0; p < nparts; p++) {
            if (load[p] < load[best])
                best = p;
            if (load[best] == 0)
                break;
        }
        part_of[r[j].item] = (uint32_t)best;
        uint64_t sum;
        load[best] = tb_add_u64(load[best], r[j].w ? r[j].w : 1, &sum)
                         ? sum
                         : UINT64_MAX;
    }
    free(r);
    free(load);
    return TIMBER_OK;
}

char *tb_parts_staging(const char *out)
{
    char *dir = tb_dirname(out);
    const char *name = tb_basename(out);
    if (!dir)
        return NULL;
    size_t len = strlen(dir) + strlen(name) + 32;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s/.%s.timber-parts", dir, name);
    free(dir);
    return s;
}

char *tb_part_file(const char *staging, size_t part, size_t nparts,
                   const char *ext)
{
    size_t len = strlen(staging) + 64;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s/parts/%zu-of-%zu.%s", staging, part, nparts,
                 ext);
    return s;
}

/* ------------------------------------------------------------ the manifest */

void tb_manifest_clear(tb_manifest *m)
{
    free(m->gammas);
    for (size_t i = 0; i < m->ninclude; i++)
        free(m->include[i]);
    for (size_t i = 0; i < m->nexclude; i++)
        free(m->exclude[i]);
    free(m->include);
    free(m->exclude);
    free(m->base_dir);
    free(m->instruct_dir);
    free(m->base_arg);
    free(m->instruct_arg);
    free(m->command);
    free(m->rerun);
    memset(m, 0, sizeof *m);
}

static cJSON *string_array(char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

static char *manifest_text(const tb_manifest *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *g = cJSON_CreateArray();
    int ok = o && g;
    for (size_t i = 0; ok && i < m->ngammas; i++) {
        char buf[40];
        tb_format_double(buf, sizeof buf, m->gammas[i]);
        ok = cJSON_AddItemToArray(g, cJSON_CreateString(buf));
    }
    cJSON *inc = string_array(m->include, m->ninclude);
    cJSON *exc = string_array(m->exclude, m->nexclude);
    ok = ok && inc && exc &&
         cJSON_AddNumberToObject(o, "timber_parts", 1) &&
         cJSON_AddStringToObject(o, "version", m->version) &&
         cJSON_AddStringToObject(o, "run", m->run_id) &&
         cJSON_AddStringToObject(o, "fingerprint", m->fingerprint) &&
         cJSON_AddNumberToObject(o, "parts", (double)m->nparts) &&
         cJSON_AddItemToObject(o, "gammas", g) &&
         cJSON_AddItemToObject(o, "include", inc) &&
         cJSON_AddItemToObject(o, "exclude", exc) &&
         cJSON_AddBoolToObject(o, "strict", m->strict) &&
         cJSON_AddStringToObject(o, "matrix_view",
                                 m->view == TIMBER_VIEW_FLATTEN ? "flatten"
                                                                : "auto") &&
         cJSON_AddStringToObject(o, "base", m->base_arg) &&
         cJSON_AddStringToObject(o, "base_dir", m->base_dir) &&
         cJSON_AddBoolToObject(o, "base_repo", m->base_repo) &&
         cJSON_AddStringToObject(o, "instruct", m->instruct_arg) &&
         cJSON_AddStringToObject(o, "instruct_dir", m->instruct_dir) &&
         cJSON_AddBoolToObject(o, "instruct_repo", m->instruct_repo) &&
         (m->command ? cJSON_AddStringToObject(o, "command", m->command)
                     : cJSON_AddNullToObject(o, "command")) &&
         (m->rerun ? cJSON_AddStringToObject(o, "rerun", m->rerun)
                   : cJSON_AddNullToObject(o, "rerun"));
    if (!ok) {
        if (!inc || !cJSON_IsArray(cJSON_GetObjectItem(o, "include")))
            cJSON_Delete(inc);
        if (!exc || !cJSON_IsArray(cJSON_GetObjectItem(o, "exclude")))
            cJSON_Delete(exc);
        if (!cJSON_GetObjectItem(o, "gammas"))
            cJSON_Delete(g);
        cJSON_Delete(o);
        return NULL;
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int strings_of(const cJSON *o, const char *key, char ***out,
                      size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a))
        return 0;
    size_t len = (size_t)cJSON_GetArraySize(a);
    *out = tb_calloc_array(len ? len : 1, sizeof(char *));
    if (!*out)
        return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (!cJSON_IsString(e) || !((*out)[*n] = tb_strdup(e->valuestring)))
            return 0;
        (*n)++;
    }
    return 1;
}

static char *dup_or_null(const char *s) { return s ? tb_strdup(s) : NULL; }

static timber_status manifest_parse(const char *path, const char *text,
                                    tb_manifest *m, timber_error *err)
{
    memset(m, 0, sizeof *m);
    cJSON *o = cJSON_Parse(text);
    const char *run = str_of(o, "run"), *fp = str_of(o, "fingerprint"),
               *ver = str_of(o, "version"), *view = str_of(o, "matrix_view");
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(o, "parts");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gammas");
    int ok = o && run && strlen(run) < sizeof m->run_id && fp &&
             strlen(fp) < sizeof m->fingerprint && ver &&
             strlen(ver) < sizeof m->version && view &&
             cJSON_IsNumber(parts) && parts->valuedouble >= 1 &&
             parts->valuedouble <= TB_MAX_PARTS && cJSON_IsArray(g) &&
             cJSON_GetArraySize(g) >= 1 && cJSON_GetArraySize(g) <= 64 &&
             str_of(o, "base") && str_of(o, "base_dir") &&
             str_of(o, "instruct") && str_of(o, "instruct_dir");
    if (ok) {
        strcpy(m->run_id, run);
        strcpy(m->fingerprint, fp);
        strcpy(m->version, ver);
        m->nparts = (size_t)parts->valuedouble;
        m->strict = cJSON_IsTrue(cJSON_GetObjectItem(o, "strict"));
        m->view = strcmp(view, "flatten") == 0 ? TIMBER_VIEW_FLATTEN
                                               : TIMBER_VIEW_AUTO;
        m->base_repo = cJSON_IsTrue(cJSON_GetObjectItem(o, "base_repo"));
        m->instruct_repo =
            cJSON_IsTrue(cJSON_GetObjectItem(o, "instruct_repo"));
        m->gammas = tb_calloc_array((size_t)cJSON_GetArraySize(g),
                                    sizeof(double));
        const cJSON *e;
        cJSON_ArrayForEach(e, g)
        {
            char *end;
            if (!m->gammas || !cJSON_IsString(e)) {
                ok = 0;
                break;
            }
            m->gammas[m->ngammas++] = strtod(e->valuestring, &end);
            ok = ok && *end == '\0';
        }
        ok = ok && strings_of(o, "include", &m->include, &m->ninclude) &&
             strings_of(o, "exclude", &m->exclude, &m->nexclude) &&
             (m->base_arg = tb_strdup(str_of(o, "base"))) &&
             (m->base_dir = tb_strdup(str_of(o, "base_dir"))) &&
             (m->instruct_arg = tb_strdup(str_of(o, "instruct"))) &&
             (m->instruct_dir = tb_strdup(str_of(o, "instruct_dir")));
        if (ok && str_of(o, "command"))
            ok = (m->command = dup_or_null(str_of(o, "command"))) != NULL;
        if (ok && str_of(o, "rerun"))
            ok = (m->rerun = dup_or_null(str_of(o, "rerun"))) != NULL;
    }
    cJSON_Delete(o);
    if (!ok) {
        tb_manifest_clear(m);
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: not a manifest of a distributed timber run "
                       "(damaged, or of another version)",
                       path);
    }
    return TIMBER_OK;
}

timber_status tb_manifest_read(const char *staging, tb_manifest *m,
                               timber_error *err)
{
    memset(m, 0, sizeof *m);
    char *path = tb_path_join(staging, "run.json");
    char *text = NULL;
    size_t len;
    if (!path)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    timber_status st =
        tb_read_small_file(path, PARTS_MAX_FILE, &text, &len, err);
    if (!st)
        st = manifest_parse(path, text, m, err);
    free(text);
    free(path);
    return st;
}

/* "0.2,0.5" (as --gamma takes them). */
static void list_gammas(char *buf, size_t size, const tb_manifest *m)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->ngammas && n + 1 < size; i++) {
        char g[40];
        tb_format_double(g, sizeof g, m->gammas[i]);
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "", g);
    }
}

/* "'a' 'b'", or "(none)". */
static void list_strings(char *buf, size_t size, char *const *v, size_t n)
{
    size_t len = (size_t)snprintf(buf, size, "%s", n ? "" : "(none)");
    for (size_t i = 0; i < n && len + 1 < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s'%s'", i ? " " : "",
                                v[i]);
}

static int same_strings(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

/* The first field in which two manifests describe different runs, with
 * both values, or 0 when they agree (names and commands may differ:
 * another host may spell the same inputs another way). */
static int manifest_differs(const tb_manifest *a, const tb_manifest *b,
                            char *what, size_t size)
{
    if (a->nparts != b->nparts) {
        snprintf(what, size,
                 "it was started as %zu parts, this is one of %zu",
                 b->nparts, a->nparts);
        return 1;
    }
    if (strcmp(a->fingerprint, b->fingerprint) != 0) {
        snprintf(what, size,
                 "its inputs have fingerprint %s (%s, %s), these %s",
                 b->fingerprint, b->base_arg, b->instruct_arg,
                 a->fingerprint);
        return 1;
    }
    char mine[300] = "", theirs[300] = "";
    const char *field = NULL;
    if (strcmp(a->version, b->version) != 0) {
        field = "timber version";
        snprintf(mine, sizeof mine, "%s", a->version);
        snprintf(theirs, sizeof theirs, "%s", b->version);
    } else if (a->ngammas != b->ngammas ||
               memcmp(a->gammas, b->gammas, a->ngammas * sizeof(double))) {
        field = "--gamma";
        list_gammas(mine, sizeof mine, a);
        list_gammas(theirs, sizeof theirs, b);
    } else if (!same_strings(a->include, a->ninclude, b->include,
                             b->ninclude)) {
        field = "--include";
        list_strings(mine, sizeof mine, a->include, a->ninclude);
        list_strings(theirs, sizeof theirs, b->include, b->ninclude);
    } else if (!same_strings(a->exclude, a->nexclude, b->exclude,
                             b->nexclude)) {
        field = "--exclude";
        list_strings(mine, sizeof mine, a->exclude, a->nexclude);
        list_strings(theirs, sizeof theirs, b->exclude, b->nexclude);
    } else if (a->strict != b->strict) {
        field = "--strict";
        snprintf(mine, sizeof mine, "%s", a->strict ? "on" : "off");
        snprintf(theirs, sizeof theirs, "%s", b->strict ? "on" : "off");
    } else if (a->view != b->view) {
        field = "--matrix-view";
        snprintf(mine, sizeof mine, "%s",
                 a->view == TIMBER_VIEW_FLATTEN ? "flatten" : "auto");
        snprintf(theirs, sizeof theirs, "%s",
                 b->view == TIMBER_VIEW_FLATTEN ? "flatten" : "auto");
    }
    if (field) {
        snprintf(what, size, "it was started with %s %s, this part has %s",
                 field, theirs, mine);
        return 1;
    }
    return 0;
}

timber_status tb_manifest_settle(const char *staging, tb_manifest *m,
                                 timber_error *err)
{
    char *path = tb_path_join(staging, "run.json");
    if (!path)
        return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    snprintf(m->run_id, sizeof m->run_id, "%016" PRIx64 "%016" PRIx64,
             tb_random64(), tb_random64());
    timber_status st = TIMBER_OK;
    char *text = manifest_text(m);
    tb_temp t = {0};
    t.fd = -1;
    if (!text) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* A complete file under a temporary name, then link(2): the name
     * appears complete or not at all, and of several parts starting at
     * once exactly one wins; the others read the winner's. */
    size_t len = strlen(text);
    st = tb_temp_create(&t, path, TB_TEMP_FILE, err);
    if (st)
        goto out;
    if (tb_pwrite_all(t.fd, text, len, 0) != 0 || fsync(t.fd) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                           t.path);
        goto out;
    }
    if (link(t.path, path) == 0) {
        if (tb_fsync_parent_dir(path) != 0)
            st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                               "%s: cannot fsync its directory", path);
        goto out;
    }
    if (errno != EEXIST) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot create",
                           path);
        goto out;
    }
    tb_manifest theirs;
    if ((st = tb_manifest_read(staging, &theirs, err)))
        goto out;
    char what[600];
    if (manifest_differs(m, &theirs, what, sizeof what))
        st = tb_fail(err, TIMBER_ERR_INVALID,
                     "%s: %s; finish that run (timber finalize) or remove "
                     "%s to start another",
                     path, what, staging);
    else
        memcpy(m->run_id, theirs.run_id, sizeof m->run_id);
    tb_manifest_clear(&theirs);
out:
    tb_temp_end(&t); /* the temporary name goes; a linked file stays */
    free(text);
    free(path);
    return st;
}

/* ------------------------------------------------ journal and records */

/* The one entry codec: "t ITEM CRC[,CRC...] ERANK K TAIL CACHED\n". */
static int format_entry(char *buf, size_t size, const tb_part_entry *e,
                        size_t ng)
{
    int n = snprintf(buf, size, "t %zu ", e->item);
    for (size_t g = 0; g < ng && n > 0 && (size_t)n < size; g++)
        n += snprintf(buf + n, size - (size_t)n, "%s%08" PRIx32,
                      g ? "," : "", e->crc[g]);
    if (n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " %a %" PRIu64 " %a %d\n",
                      e->erank, e->k, e->tail, e->from_cache ? 1 : 0);
    return n > 0 && (size_t)n < size ? n : -1;
}

static int parse_entry(const char *line, size_t ng, size_t nitems,
                       tb_part_entry *e)
{
    memset(e, 0, sizeof *e);
    char *end;
    if (strncmp(line, "t ", 2) != 0)
        return 0;
    errno = 0;
    unsigned long long item = strtoull(line + 2, &end, 10);
    if (errno || end == line + 2 || *end != ' ' || item >= nitems)
        return 0;
    e->item = (size_t)item;
    const char *p = end + 1;
    for (size_t g = 0; g < ng; g++) {
        unsigned long v = strtoul(p, &end, 16);
        if (end - p != 8 || v > 0xffffffffu ||
            *end != (g + 1 < ng ? ',' : ' '))
            return 0;
        e->crc[g] = (uint32_t)v;
        p = end + 1;
    }
    e->erank = strtod(p, &end);
    if (end == p || *end != ' ')
        return 0;
    p = end + 1;
    e->k = strtoull(p, &end, 10);
    if (end == p || *end != ' ')
        return 0;
    p = end + 1;
    e->tail = strtod(p, &end);
    if (end == p || *end != ' ')
        return 0;
    p = end + 1;
    if ((*p != '0' && *p != '1') || p[1] != '\n')
        return 0;
    e->from_cache = *p == '1';
    return 1;
}

timber_status tb_journal_append(const char *path, const char *run_id,
                                const tb_part_entry *e, size_t ng,
                                timber_error *err)
{
    char line[1024];
    int len = format_entry(line, sizeof line, e, ng);
    if (len < 0)
        return tb_fail(err, TIMBER_ERR_INVALID, "%s: entry too long", path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             path);
    struct stat sb;
    int bad = fstat(fd, &sb) != 0;
    if (!bad && sb.st_size == 0) {
        char head[64];
        int hl = snprintf(head, sizeof head, "run %s\n", run_id);
        bad = write(fd, head, (size_t)hl) != hl;
    }
    /* One write per line: a kill leaves at most one unfinished last
     * line, which the reader drops. */
    if (!bad)
        bad = write(fd, line, (size_t)len) != len;
    int e2 = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e2 = errno;
    }
    return bad ? tb_fail_errno(err, TIMBER_ERR_IO, e2, "%s: cannot append",
                               path)
               : TIMBER_OK;
}

/* Entries of text (lines after the header lines the caller checked);
 * stops at the first line that is not a well-formed entry. */
static timber_status parse_entries(const char *p, size_t ng, size_t nitems,
                                   tb_part_entry **out, size_t *n,
                                   const char **stop)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (;;) {
        const char *nl = strchr(p, '\n');
        tb_part_entry e;
        if (!nl || !parse_entry(p, ng, nitems, &e))
            break;
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            tb_part_entry *g = realloc(*out, nc * sizeof **out);
            if (!g) {
                free(*out);
                *out = NULL;
                return TIMBER_ERR_NOMEM;
            }
            *out = g;
            cap = nc;
        }
        (*out)[(*n)++] = e;
        p = nl + 1;
    }
    *stop = p;
    return TIMBER_OK;
}

timber_status tb_journal_read(const char *path, const char *run_id,
                              size_t ng, size_t nitems, tb_part_entry **out,
                              size_t *n, timber_error *err)
{
    *out = NULL;
    *n = 0;
    char *text = NULL;
    size_t len;
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        return TIMBER_OK;
    timber_status st =
        tb_read_small_file(path, PARTS_MAX_FILE, &text, &len, err);
    if (st)
        return st;
    char head[64];
    snprintf(head, sizeof head, "run %s\n", run_id);
    const char *stop;
    if (strncmp(text, head, strlen(head)) == 0 &&
        parse_entries(text + strlen(head), ng, nitems, out, n, &stop))
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    free(text);
    return st;
}

timber_status tb_done_write(const char *path, const char *run_id,
                            size_t part, size_t nparts,
                            const tb_part_entry *e, size_t n, size_t ng,
                            timber_error *err)
{
    tb_buf b = {0};
    tb_buf_printf(&b, "timber-part 1\nrun %s\npart %zu %zu\nentries %zu\n",
                  run_id, part, nparts, n);
    for (size_t i = 0; i < n && !b.failed; i++) {
        char line[1024];
        if (format_entry(line, sizeof line, &e[i], ng) < 0) {
            free(b.data);
            return tb_fail(err, TIMBER_ERR_INVALID, "%s: entry too long",
                           path);
        }
        tb_buf_puts(&b, line);
    }
    uLong crc = crc32(0L, (const Bytef *)b.data, (uInt)b.len);
    tb_buf_printf(&b, "end %08lx\n", crc);
    timber_status st =
        b.failed ? tb_fail(err, TIMBER_ERR_NOMEM, "out of memory")
                 : tb_write_file_atomic(path, b.data, b.len, err);
    free(b.data);
    return st;
}

timber_status tb_done_read(const char *path, const char *run_id, size_t part,
                           size_t nparts, size_t ng, size_t nitems,
                           tb_part_entry **out, size_t *n, int *found,
                           timber_error *err)
{
    *out = NULL;
    *n = 0;
    *found = 0;
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT)
        return TIMBER_OK;
    *found = 1;
    char *text = NULL;
    size_t len;
    timber_status st =
        tb_read_small_file(path, PARTS_MAX_FILE, &text, &len, err);
    if (st)
        return st;
    char rid[40];
    size_t pi, pn, count;
    int off = 0;
    const char *stop = NULL;
    const char *why = NULL;
    if (sscanf(text, "timber-part 1\nrun %39s\npart %zu %zu\nentries %zu\n%n",
               rid, &pi, &pn, &count, &off) != 4 ||
        off == 0)
        why = "not a completion record";
    else if (strcmp(rid, run_id) != 0)
        why = "a record of another run";
    else if (pi != part || pn != nparts)
        why = "a record of another part";
    else if (parse_entries(text + off, ng, nitems, out, n, &stop))
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    else {
        unsigned long want;
        int tail = 0;
        uLong crc = crc32(0L, (const Bytef *)text, (uInt)(stop - text));
        if (*n != count ||
            sscanf(stop, "end %8lx\n%n", &want, &tail) != 1 || tail == 0 ||
            stop[tail] != '\0' || want != crc)
            why = "damaged (its checksum or entry count does not match)";
    }
    if (why && !st)
        st = tb_fail(err, TIMBER_ERR_INVALID, "%s: %s", path, why);
    if (st) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    free(text);
    return st;
}

/* Reads go around the page cache where the file system allows
 * (O_DIRECT, whole aligned blocks, the wanted bytes cut out of them): the
 * bytes were just written by direct writes (safetensors.c), so they are
 * not cached, and reading them through the cache would pay for fresh
 * pages what the direct writes saved (performance.md, "System time").
 * A direct read the file system refuses is done again buffered. */
timber_status tb_parts_crc(const char *path, uint64_t off, uint64_t len,
                           uint32_t *crc, timber_error *err)
{
    enum { CHUNK = 1 << 20, ALIGN = 4096 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             path);
    int dfd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    void *mem = NULL;
    if (posix_memalign(&mem, ALIGN, CHUNK) != 0)
        mem = NULL;
    unsigned char *buf = mem;
    uLong c = crc32(0L, Z_NULL, 0);
    timber_status st = buf ? TIMBER_OK
                           : tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    while (!st && len) {
        /* Direct: the aligned chunk holding off; else just the bytes. */
        uint64_t at = dfd >= 0 ? off & ~(uint64_t)(ALIGN - 1) : off;
        uint64_t skip = off - at;
        size_t want = dfd >= 0 ? CHUNK
                      : len < CHUNK ? (size_t)len : CHUNK;
        ssize_t got = pread(dfd >= 0 ? dfd : fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && dfd >= 0) {
            close(dfd); /* refused: buffered from here on */
            dfd = -1;
            continue;
        }
        if (got <= (ssize_t)skip) {
            st = got < 0 ? tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                         "%s: cannot read at offset %llu",
                                         path, (unsigned long long)off)
                         : tb_fail(err, TIMBER_ERR_IO,
                                   "%s: ends before offset %llu", path,
                                   (unsigned long long)(off + len));
            break;
        }
        uint64_t n = (uint64_t)got - skip;
        if (n > len)
            n = len;
        c = crc32(c, buf + skip, (uInt)n);
        off += n;
        len -= n;
    }
    free(buf);
    if (dfd >= 0)
        close(dfd);
    close(fd);
    *crc = (uint32_t)c;
    return st;
}
