/*
 * safetensors.c — the safetensors shard format: validating reader and
 * atomic writer (the format and the checks are documented in
 * safetensors.h and docs/formats.md).  Nothing else parses or lays out
 * shard bytes.
 */
#include "safetensors.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dtype.h"
#include "tempfile.h"
#include "util.h"

/* JSON numbers are doubles in cJSON: integers are exact only below 2^53. */
#define TB_JSON_INT_LIMIT 9007199254740992.0
#define TB_JSON_INT_LIMIT_U64 (UINT64_C(1) << 53)

struct tb_shard {
    char *path;
    char *name;
    unsigned char *map;
    size_t map_len;
    uint64_t header_len;
    const unsigned char *data;
    uint64_t data_len;
    timber_tensor_info *tensors;
    size_t ntensors;
    char **names;
    uint64_t *dims; /* all shapes, back to back */
    char **meta_keys;
    char **meta_values;
    size_t nmeta;
    int borrowed;          /* map is the caller's buffer (tb_shard_parse) */
    int guard;             /* slot in the SIGBUS guard, -1 if none */
    dev_t dev;             /* identity of the file when opened */
    ino_t ino;
    struct timespec mtime;
    atomic_int short_read; /* a pread/copy found the file shorter */
};

/* ------------------------------------------------------------ utilities */

/* Length of the strict UTF-8 sequence at s (no overlongs, no surrogates,
 * at most U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t need;
    unsigned min, cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail <= need)
        return 0;
    for (size_t k = 1; k <= need; k++) {
        unsigned cc = s[k];
        if ((cc & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need + 1;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

/* Advances *i over a number in JSON's grammar,
 *   -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 * and returns 0 if the text there is not one (cJSON hands whatever
 * strtod takes to strtod, so it would accept "01", "1." or "-.5"). */
static int lex_number(const unsigned char *s, size_t len, size_t *i)
{
    size_t p = *i;
    if (p < len && s[p] == '-')
        p++;
    if (p >= len || !is_digit(s[p]))
        return 0;
    if (s[p] == '0')
        p++;
    else
        while (p < len && is_digit(s[p]))
            p++;
    if (p < len && s[p] == '.') {
        p++;
        if (p >= len || !is_digit(s[p]))
            return 0;
        while (p < len && is_digit(s[p]))
            p++;
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < len && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= len || !is_digit(s[p]))
            return 0;
        while (p < len && is_digit(s[p]))
            p++;
    }
    if (p < len && (is_digit(s[p]) || s[p] == '.' || s[p] == 'e' ||
                    s[p] == 'E' || s[p] == '+' || s[p] == '-'))
        return 0;
    *i = p;
    return 1;
}

enum lex_fault { LEX_OK, LEX_UTF8, LEX_CONTROL, LEX_NUMBER, LEX_NUL_ESCAPE };

/* The lexical half of "valid JSON" that cJSON does not check, run over
 * the whole header before cJSON parses its structure: strict UTF-8; no
 * raw control characters (JSON allows tab, LF and CR only as whitespace
 * between tokens, never inside strings); numbers in JSON's grammar; and no
 * \u0000 escape, which a C string cannot hold (cJSON would silently cut a
 * tensor name there).  Returns the offset of the first bad byte with its
 * fault in *why, or len if all is well. */
static size_t lex_header(const unsigned char *s, size_t len,
                         enum lex_fault *why)
{
    size_t i = 0;
    int in_string = 0;
    *why = LEX_OK;
    while (i < len) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_seq(s + i, len - i);
            if (n == 0) {
                *why = LEX_UTF8;
                return i;
            }
            i += n;
            continue;
        }
        if (c < 0x20 &&
            (in_string || (c != '\t' && c != '\n' && c != '\r'))) {
            *why = LEX_CONTROL;
            return i;
        }
        if (in_string) {
            if (c == '"') {
                in_string = 0;
            } else if (c == '\\' && i + 1 < len) {
                if (len - i >= 6 && memcmp(s + i + 1, "u0000", 5) == 0) {
                    *why = LEX_NUL_ESCAPE;
                    return i;
                }
                /* Skip an escaped quote or backslash as a unit; cJSON
                 * validates every other escape. */
                if (s[i + 1] == '"' || s[i + 1] == '\\')
                    i++;
            }
            i++;
        } else if (c == '"') {
            in_string = 1;
            i++;
        } else if (c == '-' || is_digit(c)) {
            size_t start = i;
            if (!lex_number(s, len, &i)) {
                *why = LEX_NUMBER;
                return start;
            }
        } else {
            i++;
        }
    }
    return len;
}

/* A JSON number that is a whole number in [0, 2^53).  Otherwise returns 0
 * and says what the item is instead, for the message: "= -2 is not ...". */
static int json_whole(const cJSON *item, uint64_t *out, char *why,
                      size_t whysize)
{
    if (!cJSON_IsNumber(item)) {
        snprintf(why, whysize, "is not a number");
        return 0;
    }
    double d = item->valuedouble;
    if (!(d >= 0.0) || d >= TB_JSON_INT_LIMIT || floor(d) != d) {
        char num[40];
        snprintf(num, sizeof num, "%.15g", d);
        if (strtod(num, NULL) != d)
            snprintf(num, sizeof num, "%.17g", d);
        snprintf(why, whysize, "= %s is not a whole number in [0, 2^53)",
                 num);
        return 0;
    }
    *out = (uint64_t)d;
    return 1;
}

static int count_key(const cJSON *obj, const char *key)
{
    int n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, key) == 0)
            n++;
    return n;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name, in sorted order, that appears twice in names[0..n), or
 * NULL; *nomem is set when the sorted copy could not be made.  Reader and
 * writer refuse the same duplicates through this one check. */
static const char *find_duplicate(const char *const *names, size_t n,
                                  int *nomem)
{
    *nomem = 0;
    if (n < 2)
        return NULL;
    const char **sorted = tb_alloc_array(n, sizeof(char *));
    if (!sorted) {
        *nomem = 1;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof(char *));
    qsort(sorted, n, sizeof(char *), cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}

/* Elements and bits of a tensor of shape dims[0..ndim) and dtype dt, every
 * product checked; a zero dimension anywhere makes the tensor empty
 * rather than an overflow.  Reader and writer size tensors through this
 * one function. */
typedef enum { SIZE_OK, SIZE_ELEMS_OVERFLOW, SIZE_BITS_OVERFLOW } size_rc;

static size_rc tensor_size(const uint64_t *dims, size_t ndim, timber_dtype dt,
                           uint64_t *nelems, uint64_t *bits)
{
    uint64_t n = 1;
    int has_zero = 0;
    for (size_t d = 0; d < ndim; d++)
        has_zero |= dims[d] == 0;
    if (has_zero)
        n = 0;
    for (size_t d = 0; d < ndim && !has_zero; d++)
        if (!tb_mul_u64(n, dims[d], &n))
            return SIZE_ELEMS_OVERFLOW;
    *nelems = n;
    return tb_mul_u64(n, timber_dtype_bits(dt), bits) ? SIZE_OK
                                                      : SIZE_BITS_OVERFLOW;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const timber_tensor_info *x = a, *y = b;
    uint64_t xe = x->offset + x->nbytes, ye = y->offset + y->nbytes;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (xe != ye)
        return xe < ye ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ------------------------------------------- files that shrink (SIGBUS) */

/* Shards are memory-mapped.  If a file is truncated while it is mapped
 * (another process rewrites a checkpoint in place), touching a page past
 * its new end raises SIGBUS, which would kill the process with nothing
 * cleaned up.  Instead, the code that reads tensor data does so inside a
 * recovery point (tb_guard, safetensors.h), and a SIGBUS handler that
 * recognises an address inside a mapped shard flags the shard and
 * siglongjmp()s back to that thread's recovery point: the read is
 * abandoned.  The handler does only what POSIX allows there (lock-free
 * atomics and siglongjmp; it used to mmap() zero pages over the mapping,
 * which is not async-signal-safe).  Nothing computed from an abandoned
 * read can leave the process: tb_mat_load fails naming the file, and a
 * run's writers (tb_writer_put/commit, through tb_writer_set_sources) and
 * its SVD cache records refuse to be written once one of the run's own
 * shards is flagged (tb_shard_faulted).  Faults
 * elsewhere go to the previous handler (or kill the process as before).
 *
 * The handler reads only the lock-free slot table below; registration
 * (open/free) and the checks take guard_lock. */
#define GUARD_SLOTS 4096

typedef struct guard_slot {
    atomic_uintptr_t lo, hi; /* the mapping, page-rounded; lo 0 when free */
    atomic_int faulted;
    tb_shard *shard;         /* under guard_lock */
} guard_slot;

static guard_slot guard_slots[GUARD_SLOTS];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static struct sigaction guard_prev; /* set before the handler exists */
static uintptr_t guard_page = 4096;
/* This thread's innermost recovery point (a lock-free atomic, so the
 * handler may read it). */
static _Thread_local _Atomic(tb_guard *) guard_top;

void tb_guard_push(tb_guard *g)
{
    g->slot = -1;
    g->prev = atomic_load(&guard_top);
    atomic_store(&guard_top, g);
}

int tb_guard_pop(tb_guard *g)
{
    atomic_store(&guard_top, g->prev);
    return g->slot >= 0;
}


static void guard_handler(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (size_t i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t lo = atomic_load(&guard_slots[i].lo);
        uintptr_t hi = atomic_load(&guard_slots[i].hi);
        if (!lo || a < lo || a >= hi)
            continue;
        atomic_store(&guard_slots[i].faulted, 1);
        tb_guard *g = atomic_load(&guard_top);
        if (!g)
            break; /* a read outside any recovery point: as without us */
        g->slot = (sig_atomic_t)i;
        atomic_store(&guard_top, g->prev);
        siglongjmp(g->jump, 1); /* SA_NODEFER: no mask to restore */
    }
    /* Not a shard: whatever would have happened without us. */
    if ((guard_prev.sa_flags & SA_SIGINFO) && guard_prev.sa_sigaction) {
        guard_prev.sa_sigaction(sig, si, uc);
        return;
    }
    if (guard_prev.sa_handler != SIG_DFL && guard_prev.sa_handler != SIG_IGN) {
        guard_prev.sa_handler(sig);
        return;
    }
    /* Default action: returning re-executes the access, which dies. */
    signal(sig, SIG_DFL);
}

static void guard_install(void)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0)
        guard_page = (uintptr_t)page;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    /* SA_NODEFER: SIGBUS stays unblocked in the handler, so jumping out
     * of it needs no saved signal mask (sigsetjmp(.., 0), no syscall). */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &guard_prev);
}

/* Registers s's mapping (best effort: with every slot taken the shard is
 * simply not guarded). */
static void guard_register(tb_shard *s)
{
    pthread_once(&guard_once, guard_install);
    uintptr_t lo = (uintptr_t)s->map;
    uintptr_t hi = (lo + s->map_len + guard_page - 1) & ~(guard_page - 1);
    pthread_mutex_lock(&guard_lock);
    for (int i = 0; i < GUARD_SLOTS; i++)
        if (!guard_slots[i].shard) {
            guard_slots[i].shard = s;
            atomic_store(&guard_slots[i].faulted, 0);
            atomic_store(&guard_slots[i].hi, hi);
            atomic_store(&guard_slots[i].lo, lo);
            s->guard = i;
            break;
        }
    pthread_mutex_unlock(&guard_lock);
}

static void guard_unregister(tb_shard *s)
{
    if (s->guard < 0)
        return;
    guard_slot *g = &guard_slots[s->guard];
    pthread_mutex_lock(&guard_lock);
    atomic_store(&g->lo, 0);
    atomic_store(&g->hi, 0);
    atomic_store(&g->faulted, 0);
    g->shard = NULL;
    pthread_mutex_unlock(&guard_lock);
    s->guard = -1;
}

/* The error for a shard whose file changed under its mapping (naming
 * the tensor being read when one is known). */
static timber_status changed_error_in(const tb_shard *s, const char *tensor,
                                      timber_error *err)
{
    char what[600] = "";
    if (tensor)
        snprintf(what, sizeof what, " tensor '%s':", tensor);
    struct stat sb;
    if (stat(s->path, &sb) == 0 && (uint64_t)sb.st_size < s->map_len)
        return tb_fail(err, TIMBER_ERR_IO,
                       "%s:%s the file shrank from %llu to %llu bytes while "
                       "timber was reading it (truncated or rewritten in "
                       "place); nothing computed from it was written",
                       s->path, what, (unsigned long long)s->map_len,
                       (unsigned long long)sb.st_size);
    return tb_fail(err, TIMBER_ERR_IO,
                   "%s:%s the file was truncated or rewritten while timber "
                   "was reading it; nothing computed from it was written",
                   s->path, what);
}

static timber_status changed_error(const tb_shard *s, timber_error *err)
{
    return changed_error_in(s, NULL, err);
}

timber_status tb_shard_faulted(const tb_shard *s, timber_error *err)
{
    if ((s->guard >= 0 && atomic_load(&guard_slots[s->guard].faulted)) ||
        atomic_load(&((tb_shard *)s)->short_read))
        return changed_error(s, err);
    return TIMBER_OK;
}

timber_status tb_shard_check(const tb_shard *s, timber_error *err)
{
    if (tb_shard_faulted(s, err))
        return TIMBER_ERR_IO;
    if (s->borrowed)
        return TIMBER_OK;
    struct stat sb;
    if (stat(s->path, &sb) != 0)
        return TIMBER_OK; /* removed or renamed: our mapping still holds
                             the bytes we validated */
    if (sb.st_dev != s->dev || sb.st_ino != s->ino)
        return TIMBER_OK; /* replaced by rename: likewise */
    if ((uint64_t)sb.st_size != s->map_len ||
        sb.st_mtim.tv_sec != s->mtime.tv_sec ||
        sb.st_mtim.tv_nsec != s->mtime.tv_nsec)
        return changed_error(s, err);
    return TIMBER_OK;
}

timber_status tb_guard_error(const tb_guard *g, timber_error *err)
{
    timber_status st = TIMBER_OK;
    pthread_mutex_lock(&guard_lock);
    if (g->slot >= 0 && guard_slots[g->slot].shard)
        st = changed_error(guard_slots[g->slot].shard, err);
    pthread_mutex_unlock(&guard_lock);
    return st ? st
              : tb_fail(err, TIMBER_ERR_IO,
                        "an input file was truncated while timber was "
                        "reading it");
}

/* The shard whose mapping holds p, if its file shrank (for a write from
 * a mapping that failed with EFAULT: the kernel's own read of a page past
 * the new end of the file). */
static timber_status blame_shard(const void *p, timber_error *err)
{
    uintptr_t a = (uintptr_t)p;
    timber_status st = TIMBER_OK;
    pthread_mutex_lock(&guard_lock);
    for (int i = 0; i < GUARD_SLOTS && !st; i++) {
        tb_shard *s = guard_slots[i].shard;
        if (s && a >= atomic_load(&guard_slots[i].lo) &&
            a < atomic_load(&guard_slots[i].hi))
            st = changed_error(s, err);
    }
    pthread_mutex_unlock(&guard_lock);
    return st;
}

/* The reference reader takes "shape" and "data_offsets" as unsigned
 * integers (serde): it refuses 4.0, 1e3 and -0 there, which cJSON's
 * double and json_whole() would take for whole numbers.  Walks the header
 * (already valid JSON: this runs after cJSON parsed it) and returns the
 * first number in a tensor's "shape" or "data_offsets" array that is a
 * whole number in [0, 2^53) but not written as a plain integer, with the
 * tensor's raw name, the field and the index; 0 if there is none.  (A
 * number that is not whole, or out of range, is left to json_whole(),
 * which says so.) */
typedef struct int_fault {
    const unsigned char *name, *field, *num;
    size_t name_len, field_len, num_len, index;
} int_fault;

static int raw_key_is(const unsigned char *k, size_t n, const char *word)
{
    return n == strlen(word) && memcmp(k, word, n) == 0;
}

static int spelled_integer_fault(const unsigned char *s, size_t len,
                                 int_fault *f)
{
    enum { MAXD = 4 };
    unsigned char type[MAXD + 1] = {0}; /* '{' or '[' per open level */
    int expect_key[MAXD + 1] = {0};
    size_t count[MAXD + 1] = {0};
    const unsigned char *key1 = NULL, *key2 = NULL;
    size_t key1_len = 0, key2_len = 0;
    size_t depth = 0, i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= 1 && depth <= MAXD && type[depth] == '[')
                count[depth]++;
            depth++;
            if (depth <= MAXD) {
                type[depth] = (unsigned char)c;
                expect_key[depth] = c == '{';
                count[depth] = 0;
            }
            i++;
        } else if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            i++;
        } else if (c == ',') {
            if (depth >= 1 && depth <= MAXD && type[depth] == '{')
                expect_key[depth] = 1;
            i++;
        } else if (c == '"') {
            size_t start = ++i;
            while (i < len && s[i] != '"')
                i += s[i] == '\\' ? 2 : 1;
            size_t n = (i < len ? i : len) - start;
            i++;
            if (depth >= 1 && depth <= MAXD && type[depth] == '{' &&
                expect_key[depth]) {
                expect_key[depth] = 0;
                if (depth == 1) {
                    key1 = s + start;
                    key1_len = n;
                } else if (depth == 2) {
                    key2 = s + start;
                    key2_len = n;
                }
            } else if (depth >= 1 && depth <= MAXD && type[depth] == '[') {
                count[depth]++;
            }
        } else if (c == '-' || is_digit(c)) {
            size_t start = i;
            while (i < len && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' ||
                               s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
                i++;
            size_t n = i - start;
            int plain = s[start] != '-';
            for (size_t k = start; k < i; k++)
                plain &= is_digit(s[k]);
            if (depth == 3 && type[3] == '[' && type[2] == '{' && key1 &&
                key2 && !raw_key_is(key1, key1_len, "__metadata__") &&
                (raw_key_is(key2, key2_len, "shape") ||
                 raw_key_is(key2, key2_len, "data_offsets")) &&
                !plain && n < 64) {
                char num[64];
                memcpy(num, s + start, n);
                num[n] = '\0';
                double v = strtod(num, NULL);
                if (v >= 0.0 && v < TB_JSON_INT_LIMIT && floor(v) == v) {
                    *f = (int_fault){key1, key2,     s + start,
                                     key1_len, key2_len, n, count[3]};
                    return 1;
                }
            }
            if (depth >= 1 && depth <= MAXD && type[depth] == '[')
                count[depth]++;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (depth >= 1 && depth <= MAXD && type[depth] == '[')
                count[depth]++;
            while (i < len && s[i] >= 'a' && s[i] <= 'z')
                i++;
        } else {
            i++;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- reading */

void tb_shard_free(tb_shard *s)
{
    if (!s)
        return;
    guard_unregister(s);
    if (s->map && !s->borrowed)
        munmap(s->map, s->map_len);
    if (s->names)
        for (size_t i = 0; i < s->ntensors; i++)
            free(s->names[i]);
    for (size_t i = 0; i < s->nmeta; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->meta_keys);
    free(s->meta_values);
    free(s->names);
    free(s->dims);
    free(s->tensors);
    free(s->path);
    free(s->name);
    free(s);
}

static timber_status parse_metadata(tb_shard *s, const cJSON *meta,
                                    timber_error *err)
{
    if (cJSON_IsNull(meta))
        return TIMBER_OK;
    if (!cJSON_IsObject(meta))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: \"__metadata__\" is not a JSON object", s->path);
    size_t n = 0;
    for (const cJSON *c = meta->child; c; c = c->next)
        n++;
    s->meta_keys = tb_calloc_array(n, sizeof(char *));
    s->meta_values = tb_calloc_array(n, sizeof(char *));
    if (!s->meta_keys || !s->meta_values)
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", s->path);
    for (const cJSON *c = meta->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return tb_fail(err, TIMBER_ERR_FORMAT,
                           "%s: \"__metadata__\" value of \"%s\" is not a "
                           "string",
                           s->path, c->string);
        s->meta_keys[s->nmeta] = tb_strdup(c->string);
        s->meta_values[s->nmeta] = tb_strdup(c->valuestring);
        s->nmeta++;
        if (!s->meta_keys[s->nmeta - 1] || !s->meta_values[s->nmeta - 1])
            return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory",
                           s->path);
    }
    /* Duplicate metadata keys are as ambiguous as duplicate tensors. */
    int nomem;
    const char *dup =
        find_duplicate((const char *const *)s->meta_keys, n, &nomem);
    if (nomem)
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", s->path);
    if (dup)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: \"__metadata__\" key \"%s\" appears twice",
                       s->path, dup);
    return TIMBER_OK;
}

/* Parses one tensor entry into s->tensors[i] (dims into `dims`). */
static timber_status parse_tensor(tb_shard *s, const cJSON *t, size_t i,
                                  uint64_t *dims, timber_error *err)
{
    const char *name = t->string;
    timber_tensor_info *info = &s->tensors[i];
    if (!cJSON_IsObject(t))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': entry is not a JSON object", s->path,
                       name);
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (size_t f = 0; f < 3; f++) {
        int n = count_key(t, fields[f]);
        if (n != 1)
            return tb_fail(err, TIMBER_ERR_FORMAT,
                           "%s: tensor '%s': field \"%s\" %s", s->path, name,
                           fields[f], n == 0 ? "is missing" : "appears twice");
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");

    if (!cJSON_IsString(dt))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': \"dtype\" is not a string", s->path,
                       name);
    int dtype = timber_dtype_from_name(dt->valuestring);
    if (dtype < 0)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': unknown dtype \"%s\"", s->path, name,
                       dt->valuestring);

    if (!cJSON_IsArray(shape))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': \"shape\" is not an array", s->path,
                       name);
    size_t ndim = (size_t)cJSON_GetArraySize(shape);
    uint64_t nelems, bits;
    size_t d = 0;
    for (const cJSON *c = shape->child; c; c = c->next, d++) {
        uint64_t v;
        char why[96];
        if (!json_whole(c, &v, why, sizeof why))
            return tb_fail(err, TIMBER_ERR_FORMAT,
                           "%s: tensor '%s': shape[%zu] %s", s->path, name, d,
                           why);
        dims[d] = v;
    }
    size_rc size = tensor_size(dims, ndim, (timber_dtype)dtype, &nelems,
                               &bits);
    if (size != SIZE_OK) {
        char sh[256];
        tb_format_shape(sh, sizeof sh, ndim, dims);
        if (size == SIZE_ELEMS_OVERFLOW)
            return tb_fail(err, TIMBER_ERR_FORMAT,
                           "%s: tensor '%s': shape %s has more elements "
                           "than fit in 64 bits",
                           s->path, name, sh);
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': shape %s of %s overflows 64 bits of "
                       "size",
                       s->path, name, sh, dt->valuestring);
    }

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': \"data_offsets\" is not an array of "
                       "two numbers",
                       s->path, name);
    uint64_t begin, end;
    char why[96];
    if (!json_whole(offs->child, &begin, why, sizeof why))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets[0] %s", s->path, name,
                       why);
    if (!json_whole(offs->child->next, &end, why, sizeof why))
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets[1] %s", s->path, name,
                       why);
    if (end < begin)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] end before "
                       "they begin",
                       s->path, name, (unsigned long long)begin,
                       (unsigned long long)end);
    if (end > s->data_len)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu] run past "
                       "the %llu-byte data buffer (truncated file?)",
                       s->path, name, (unsigned long long)begin,
                       (unsigned long long)end,
                       (unsigned long long)s->data_len);
    if (bits % 8 != 0) {
        char sh[256];
        tb_format_shape(sh, sizeof sh, ndim, dims);
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': shape %s of %s is %llu bits, not a "
                       "whole number of bytes",
                       s->path, name, sh, dt->valuestring,
                       (unsigned long long)bits);
    }
    if (bits / 8 != end - begin) {
        char sh[256];
        tb_format_shape(sh, sizeof sh, ndim, dims);
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: tensor '%s': shape %s of %s needs %llu bytes but "
                       "data_offsets [%llu, %llu] hold %llu",
                       s->path, name, sh, dt->valuestring,
                       (unsigned long long)(bits / 8),
                       (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)(end - begin));
    }

    s->names[i] = tb_strdup(name);
    if (!s->names[i])
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", s->path);
    info->name = s->names[i];
    info->dtype = (timber_dtype)dtype;
    info->ndim = ndim;
    info->shape = dims;
    info->nelems = nelems;
    info->nbytes = end - begin;
    info->offset = begin;
    info->shard = s->name;
    return TIMBER_OK;
}

cJSON *tb_json_parse_strict(const char *path, const char *what,
                            const char *text, size_t len,
                            timber_status status, timber_error *err)
{
    enum lex_fault why;
    size_t bad = lex_header((const unsigned char *)text, len, &why);
    unsigned byte = bad < len ? (unsigned char)text[bad] : 0;
    switch (why) {
    case LEX_OK:
        break;
    case LEX_UTF8:
        tb_fail(err, status, "%s: %s byte %zu (0x%02x) is not valid UTF-8",
                path, what, bad, byte);
        return NULL;
    case LEX_CONTROL:
        tb_fail(err, status,
                "%s: %s byte %zu (0x%02x) is a raw control character, "
                "which JSON does not allow there",
                path, what, bad, byte);
        return NULL;
    case LEX_NUMBER:
        tb_fail(err, status,
                "%s: %s byte %zu starts a number that is not valid JSON",
                path, what, bad);
        return NULL;
    case LEX_NUL_ESCAPE:
        tb_fail(err, status,
                "%s: %s byte %zu: a string holds \\u0000 (NUL), which "
                "timber does not support in names",
                path, what, bad);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        tb_fail(err, status,
                "%s: %s is not valid JSON (error near byte %zu of %zu)", path,
                what, at, len);
        return NULL;
    }
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            tb_fail(err, status,
                    "%s: unexpected text after the %s's JSON value at byte "
                    "%zu of %zu",
                    path, what, (size_t)(p - text), len);
            cJSON_Delete(root);
            return NULL;
        }
    return root;
}

static timber_status parse_header(tb_shard *s, timber_error *err)
{
    const char *text = (const char *)s->map + 8;
    size_t len = (size_t)s->header_len;
    cJSON *root = tb_json_parse_strict(s->path, "header", text, len,
                                       TIMBER_ERR_FORMAT, err);
    if (!root)
        return TIMBER_ERR_FORMAT;
    timber_status st = TIMBER_OK;
    if (!cJSON_IsObject(root)) {
        st = tb_fail(err, TIMBER_ERR_FORMAT,
                     "%s: header is JSON but not an object", s->path);
        goto out;
    }
    {
        int_fault f;
        if (spelled_integer_fault((const unsigned char *)text, len, &f)) {
            st = tb_fail(err, TIMBER_ERR_FORMAT,
                         "%s: tensor '%.*s': %.*s[%zu] is written %.*s, not "
                         "as an integer (the reference reader refuses it)",
                         s->path, (int)f.name_len, (const char *)f.name,
                         (int)f.field_len, (const char *)f.field, f.index,
                         (int)f.num_len, (const char *)f.num);
            goto out;
        }
    }

    size_t ntensors = 0, ndims = 0;
    int nmeta = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            nmeta++;
            continue;
        }
        ntensors++;
        const cJSON *sh = cJSON_IsObject(c)
                              ? cJSON_GetObjectItemCaseSensitive(c, "shape")
                              : NULL;
        if (cJSON_IsArray(sh))
            ndims += (size_t)cJSON_GetArraySize(sh);
    }
    if (nmeta > 1) {
        st = tb_fail(err, TIMBER_ERR_FORMAT,
                     "%s: \"__metadata__\" appears %d times; a tensor may not "
                     "be called \"__metadata__\"",
                     s->path, nmeta);
        goto out;
    }

    s->tensors = tb_calloc_array(ntensors, sizeof *s->tensors);
    s->names = tb_calloc_array(ntensors, sizeof *s->names);
    s->dims = tb_calloc_array(ndims, sizeof *s->dims);
    if (!s->tensors || !s->names || !s->dims) {
        st = tb_fail(err, TIMBER_ERR_NOMEM,
                     "%s: out of memory for %zu tensors", s->path, ntensors);
        goto out;
    }

    size_t i = 0, dim_at = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            st = parse_metadata(s, c, err);
            if (st)
                goto out;
            continue;
        }
        st = parse_tensor(s, c, i, s->dims + dim_at, err);
        if (st)
            goto out;
        dim_at += s->tensors[i].ndim;
        s->ntensors = ++i;
    }

    /* Duplicate names: cJSON keeps both entries, the spec forbids them. */
    {
        int nomem;
        const char *dup =
            find_duplicate((const char *const *)s->names, ntensors, &nomem);
        if (nomem || dup) {
            st = nomem ? tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory",
                                 s->path)
                       : tb_fail(err, TIMBER_ERR_FORMAT,
                                 "%s: tensor '%s' appears twice in the header",
                                 s->path, dup);
            goto out;
        }
    }

    /* Contiguity: sorted by offsets, the ranges must tile [0, data_len). */
    qsort(s->tensors, ntensors, sizeof *s->tensors, cmp_by_offset);
    uint64_t expect = 0;
    for (size_t k = 0; k < ntensors; k++) {
        const timber_tensor_info *t = &s->tensors[k];
        if (t->offset != expect) {
            if (k == 0)
                st = tb_fail(err, TIMBER_ERR_FORMAT,
                             "%s: tensor '%s' is the first in the data "
                             "buffer but begins at byte %llu, not 0",
                             s->path, t->name, (unsigned long long)t->offset);
            else if (t->offset > expect)
                st = tb_fail(err, TIMBER_ERR_FORMAT,
                             "%s: tensor '%s' begins at byte %llu but the "
                             "previous tensor ends at %llu (a hole in the "
                             "data)",
                             s->path, t->name, (unsigned long long)t->offset,
                             (unsigned long long)expect);
            else
                st = tb_fail(err, TIMBER_ERR_FORMAT,
                             "%s: tensor '%s' begins at byte %llu, inside "
                             "the previous tensor which ends at %llu "
                             "(overlap)",
                             s->path, t->name, (unsigned long long)t->offset,
                             (unsigned long long)expect);
            goto out;
        }
        expect = t->offset + t->nbytes;
    }
    if (expect != s->data_len) {
        st = tb_fail(err, TIMBER_ERR_FORMAT,
                     "%s: tensors cover %llu bytes of data but the file holds "
                     "%llu after the header (%llu trailing bytes)",
                     s->path, (unsigned long long)expect,
                     (unsigned long long)s->data_len,
                     (unsigned long long)(s->data_len - expect));
        goto out;
    }
out:
    cJSON_Delete(root);
    return st;
}

/* Allocates a shard named by path (no file touched yet). */
static timber_status shard_new(const char *path, tb_shard **out,
                               timber_error *err)
{
    *out = NULL;
    tb_shard *s = calloc(1, sizeof *s);
    if (!s)
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
    s->guard = -1;
    s->path = tb_strdup(path);
    s->name = tb_strdup(tb_basename(path));
    if (!s->path || !s->name) {
        tb_shard_free(s);
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
    }
    *out = s;
    return TIMBER_OK;
}

/* Checks 2, 4 and 5 of docs/formats.md and then the header, on the image
 * s->map[0 .. map_len) (the file's bytes, mapped or in memory).  The one
 * validation path for files and buffers alike. */
static timber_status validate_image(tb_shard *s, timber_error *err)
{
    uint64_t size = (uint64_t)s->map_len;
    if (size < 8)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: file is %llu bytes, too short for the 8-byte "
                       "header length",
                       s->path, (unsigned long long)size);
    uint64_t n = 0;
    for (int b = 7; b >= 0; b--)
        n = (n << 8) | s->map[b];
    if (n > TB_ST_MAX_HEADER)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: header length %llu exceeds the limit of %llu "
                       "bytes",
                       s->path, (unsigned long long)n, TB_ST_MAX_HEADER);
    if (n > size - 8)
        return tb_fail(err, TIMBER_ERR_FORMAT,
                       "%s: header length %llu runs past the end of the "
                       "%llu-byte file",
                       s->path, (unsigned long long)n,
                       (unsigned long long)size);
    s->header_len = n;
    s->data = s->map + 8 + n;
    s->data_len = size - 8 - n;
    return parse_header(s, err);
}

timber_status tb_shard_parse(const char *path, const void *buf, size_t len,
                             tb_shard **out, timber_error *err)
{
    *out = NULL;
    tb_shard *s;
    timber_status st = shard_new(path, &s, err);
    if (st)
        return st;
    /* Borrowed: never unmapped or freed by the shard. */
    s->map = (unsigned char *)buf;
    s->map_len = len;
    s->borrowed = 1;
    st = validate_image(s, err);
    if (st) {
        tb_shard_free(s);
        return st;
    }
    *out = s;
    return TIMBER_OK;
}

timber_status tb_shard_open(const char *path, tb_shard **out,
                            timber_error *err)
{
    *out = NULL;
    tb_shard *s;
    timber_status st = shard_new(path, &s, err);
    if (st)
        return st;

    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
     * refused as not a regular file.  (It changes nothing for mmap.) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        tb_shard_free(s);
        return tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot open", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot stat",
                           path);
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = tb_fail(err, TIMBER_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > SIZE_MAX) {
        st = tb_fail(err, TIMBER_ERR_FORMAT, "%s: file too large to map",
                     path);
        goto fail;
    }
    s->map_len = (size_t)size;
    s->dev = sb.st_dev;
    s->ino = sb.st_ino;
    s->mtime = sb.st_mtim;
    /* A file too short for the length prefix is refused by
     * validate_image; mmap cannot map zero bytes anyway. */
    if (size >= 8) {
        void *map = mmap(NULL, s->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            st = e == ENOMEM
                     ? tb_fail(err, TIMBER_ERR_NOMEM,
                               "%s: out of memory: cannot map its %llu "
                               "bytes (ulimit -v?)",
                               path, (unsigned long long)size)
                     : tb_fail_errno(err, TIMBER_ERR_IO, e,
                                     "%s: cannot mmap %llu bytes", path,
                                     (unsigned long long)size);
            goto fail;
        }
        s->map = map;
        guard_register(s);
    }
    close(fd);
    fd = -1;

    st = validate_image(s, err);
    if (st)
        goto fail;
    *out = s;
    return TIMBER_OK;
fail:
    if (fd >= 0)
        close(fd);
    tb_shard_free(s);
    return st;
}

const char *tb_shard_path(const tb_shard *s) { return s->path; }
const char *tb_shard_name(const tb_shard *s) { return s->name; }
uint64_t tb_shard_file_size(const tb_shard *s) { return s->map_len; }
size_t tb_shard_tensor_count(const tb_shard *s) { return s->ntensors; }
size_t tb_shard_meta_count(const tb_shard *s) { return s->nmeta; }

const void *tb_shard_header(const tb_shard *s, size_t *len)
{
    *len = (size_t)(8 + s->header_len);
    return s->map;
}

const timber_tensor_info *tb_shard_tensor(const tb_shard *s, size_t i)
{
    return i < s->ntensors ? &s->tensors[i] : NULL;
}

const char *tb_shard_meta_key(const tb_shard *s, size_t i)
{
    return i < s->nmeta ? s->meta_keys[i] : NULL;
}

const char *tb_shard_meta_value(const tb_shard *s, size_t i)
{
    return i < s->nmeta ? s->meta_values[i] : NULL;
}

const void *tb_shard_data(const tb_shard *s, const timber_tensor_info *info)
{
    return s->data + info->offset;
}

void tb_shard_release(const tb_shard *s, const timber_tensor_info *info,
                      uint64_t off, uint64_t len)
{
    /* Only whole pages strictly inside the range are dropped, so a
     * neighbouring tensor sharing a page keeps its bytes resident. */
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || len == 0)
        return;
    uintptr_t lo = (uintptr_t)(s->data + info->offset + off);
    uintptr_t hi = lo + len;
    uintptr_t a = (lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = hi & ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ------------------------------------------- reading without the map */

int tb_shard_reopen(const tb_shard *s)
{
    if (s->borrowed || !s->map)
        return -1;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat sb;
    /* Only the very file that was mapped and validated, unchanged: a file
     * renamed over it since is read through the mapping, which still
     * holds the bytes that were checked. */
    if (fstat(fd, &sb) != 0 || sb.st_dev != s->dev || sb.st_ino != s->ino ||
        (uint64_t)sb.st_size != s->map_len ||
        sb.st_mtim.tv_sec != s->mtime.tv_sec ||
        sb.st_mtim.tv_nsec != s->mtime.tv_nsec) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The file ended before bytes the header promised: flagged like a fault
 * of the mapping, so nothing of this run is written any more. */
static timber_status short_error(const tb_shard *s,
                                 const timber_tensor_info *t,
                                 timber_error *err)
{
    atomic_store(&((tb_shard *)s)->short_read, 1);
    return changed_error_in(s, t->name, err);
}

static uint64_t file_offset(const tb_shard *s, const timber_tensor_info *t,
                            uint64_t off)
{
    return (uint64_t)(s->data - s->map) + t->offset + off;
}

/* memcpy from a mapping inside a recovery point: non-zero when a fault
 * abandoned it. */
static int guarded_copy(void *dst, const void *src, size_t n)
{
    tb_guard g;
    tb_guard_push(&g);
    if (sigsetjmp(g.jump, 0) == 0)
        memcpy(dst, src, n);
    return tb_guard_pop(&g);
}

timber_status tb_shard_read(const tb_shard *s, int fd,
                            const timber_tensor_info *t, uint64_t off,
                            void *buf, size_t len, timber_error *err)
{
    if (fd < 0) {
        if (guarded_copy(buf,
                         (const unsigned char *)tb_shard_data(s, t) + off,
                         len))
            return changed_error_in(s, t->name, err);
        tb_shard_release(s, t, off, len);
        return TIMBER_OK;
    }
    unsigned char *p = buf;
    uint64_t at = file_offset(s, t, off);
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        ssize_t n = pread(fd, p, chunk, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                 "%s: tensor '%s': cannot read %zu bytes at "
                                 "offset %llu",
                                 s->path, t->name, chunk,
                                 (unsigned long long)at);
        if (n == 0)
            return short_error(s, t, err);
        p += n;
        len -= (size_t)n;
        at += (uint64_t)n;
    }
    return TIMBER_OK;
}

/* -------------------------------------------------------------- writing */

struct tb_writer {
    char *path;
    /* The file being built, NESTED in the output's temporary directory.
     * Its fd (tmp.fd) stays open from create to commit while the
     * process-wide budget of held fds allows (writer_fd_budget), so a put
     * is one pwrite; beyond it (many shards and gammas, or a low ulimit
     * -n) no fd is held between writes and each put opens the file, so
     * such a run holds no more fds than it has workers. */
    tb_temp tmp;
    /* In place (tb_writer_open_in_place): the file is `path` itself,
     * preallocated, and shared with other writers of other tensors. */
    int in_place;
    const char *file; /* what put writes: tmp.path, or path in place */
    int held;            /* tmp.fd is held, counted in writer_fds_held */
    int dfd;             /* held O_DIRECT fd of `file` (held writers), or -1 */
    atomic_int inflight; /* direct writes of this writer still in flight */
    size_t n;
    uint64_t data_start; /* 8 + padded header length */
    uint64_t *offsets;   /* by input index */
    uint64_t *sizes;     /* by input index */
    uint64_t *written;   /* by input index */
    uint64_t file_size;
    int committed;
    tb_source_check sources; /* NULL: nothing to check */
    const void *sources_ctx;
};

/* Sorts pointers into the caller's spec array (index = pointer - base). */
static int cmp_layout(const void *a, const void *b)
{
    const tb_tensor_spec *x = *(const tb_tensor_spec *const *)a;
    const tb_tensor_spec *y = *(const tb_tensor_spec *const *)b;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1; /* larger alignment first */
    return strcmp(x->name, y->name);
}

/* Held writer fds, process-wide, and their cap: a small share of
 * RLIMIT_NOFILE (none at all under a low limit such as ulimit -n 32, where
 * every put opens and closes the file as before). */
static atomic_int writer_fds_held;
static int writer_fd_cap;
static pthread_once_t writer_fd_once = PTHREAD_ONCE_INIT;

static void writer_fd_budget(void)
{
    struct rlimit rl;
    long soft = getrlimit(RLIMIT_NOFILE, &rl) != 0 ? 0
                : rl.rlim_cur == RLIM_INFINITY ? 1L << 20
                                                : (long)rl.rlim_cur;
    long cap = soft > 256 ? (soft - 128) / 8 : 0;
    writer_fd_cap = cap > 64 ? 64 : (int)cap;
}

/* Takes one of the held fds, or says there is none left. */
static int writer_fd_take(void)
{
    pthread_once(&writer_fd_once, writer_fd_budget);
    if (atomic_fetch_add(&writer_fds_held, 1) < writer_fd_cap)
        return 1;
    atomic_fetch_sub(&writer_fds_held, 1);
    return 0;
}

static void writer_fd_drop(tb_writer *w)
{
    if (!w->held)
        return;
    if (w->tmp.fd >= 0)
        close(w->tmp.fd);
    w->tmp.fd = -1;
    w->held = 0;
    atomic_fetch_sub(&writer_fds_held, 1);
    if (w->dfd >= 0) {
        close(w->dfd);
        w->dfd = -1;
        atomic_fetch_sub(&writer_fds_held, 1);
    }
}

/* ------------------------------------------------------ direct writes
 *
 * The bulk of every output shard goes to the file with O_DIRECT, around
 * the page cache.  Why: on the virtual machines timber is benchmarked and
 * tested on, a page of memory the guest has not used for a while costs
 * the hypervisor a fault on first touch, and a buffered write of a model-
 * sized shard needs gigabytes of such pages for the page cache: 2.5 GB
 * written by `dd` took 3.7-7.7 s of system time buffered against 1.3 s of
 * wall and 0.2 s of system time with O_DIRECT (docs/performance.md, "System
 * time").  Direct writes come from a small pool of reused, aligned bounce
 * buffers, so no fresh page is touched.
 *
 * Only the whole DIRECT_ALIGN blocks inside a put's range go direct; the
 * partial blocks at its two ends are buffered.  A block holding bytes of
 * two tensors (or of two puts of one tensor) is thus only ever written
 * buffered, by whichever writers own those bytes, and a block written
 * direct belongs to one put alone, so the two kinds of write never share a
 * page and the kernel keeps them coherent (a direct write first writes
 * back and drops any cached page of its range, e.g. from an earlier run of
 * a part).  Where the file system refuses O_DIRECT (tmpfs, some FUSE file
 * systems), or a direct write fails, the same bytes are written buffered
 * and any error is the buffered write's.  TB_DIRECT_IO=0 in the
 * environment turns direct writes off (tests compare the two).
 *
 * A direct write blocks its worker until the device has the data.  Into
 * a fresh (sparse) region of an ext4 file each one also allocated under
 * the exclusive inode lock, so the two workers' 1 MiB puts (bf16 panels)
 * took turns: a Qwen3-30B-A3B-shaped layer waited 4.7 worker-seconds on
 * them.  So the in-place writer reserves its file's blocks first
 * (fallocate, tb_writer_open_in_place); direct writes are then
 * overwrites of unwritten extents, run side by side, and the same layer
 * waited 2.5 s against 2 s buffered, with 1-2 s of system time against
 * 5-8 (docs/performance.md).
 *
 * Write-behind: so the device time is not the worker's, each thread keeps
 * one direct write in flight, on a short-lived thread of its own (no
 * queue, no thread that outlives the call that waits for it), while it
 * fills the next bounce buffer or computes the next panel.  The thread's
 * next write of any kind waits for it first (writer_begin), so its writes
 * land in the order it made them, a rewound tensor included; a direct
 * write that fails is done again buffered by that thread, and its error
 * is the error of the next call that waits: the thread's next put or copy,
 * tb_writer_flush (refine.c calls it when a part's tensor is done, before
 * its bytes are read back for the journal, and when a worker takes no
 * more tasks), sync, commit or free. */
enum {
    DIRECT_ALIGN = 4096,      /* any logical block size up to a page */
    DIRECT_MIN = 64 << 10,    /* smaller insides are buffered */
    BOUNCE_SIZE = TB_WRITER_BOUNCE, /* bytes per direct write */
    BOUNCE_POOL = 16,         /* idle bounce buffers kept for reuse */
};

static int direct_on = -1;
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;

static void direct_setting(void)
{
    const char *v = getenv("TB_DIRECT_IO");
    direct_on = !(v && strcmp(v, "0") == 0);
}

static int direct_enabled(void)
{
    pthread_once(&direct_once, direct_setting);
    return direct_on;
}

/* Idle bounce buffers: a put takes one for its duration.  Kept for the
 * life of the process (at most BOUNCE_POOL), so every worker writes from
 * memory it has touched before. */
static pthread_mutex_t bounce_lock = PTHREAD_MUTEX_INITIALIZER;
static void *bounce_idle[BOUNCE_POOL];
static int bounce_nidle;

static void *bounce_take(void)
{
    void *p = NULL;
    pthread_mutex_lock(&bounce_lock);
    if (bounce_nidle > 0)
        p = bounce_idle[--bounce_nidle];
    pthread_mutex_unlock(&bounce_lock);
    if (!p && posix_memalign(&p, DIRECT_ALIGN, BOUNCE_SIZE) != 0)
        p = NULL;
    return p;
}

static void bounce_give(void *p)
{
    pthread_mutex_lock(&bounce_lock);
    if (bounce_nidle < BOUNCE_POOL) {
        bounce_idle[bounce_nidle++] = p;
        p = NULL;
    }
    pthread_mutex_unlock(&bounce_lock);
    free(p);
}

/* This thread's direct write in flight (write-behind, above). */
typedef struct inflight {
    int active;   /* started and not yet waited for */
    int threaded; /* on its own thread (else already done, inline) */
    pthread_t tid;
    tb_writer *w;
    int dfd, close_dfd; /* close_dfd: the put that opened dfd has ended */
    unsigned char *buf; /* a bounce buffer, given back when waited for */
    size_t n;
    uint64_t off;
    int err_no; /* 0, or why the write failed both ways */
} inflight;
static _Thread_local inflight pending;

static void *inflight_write(void *arg)
{
    inflight *f = arg;
    f->err_no = 0;
    if (tb_pwrite_all(f->dfd, f->buf, f->n, f->off) == 0)
        return NULL;
    /* Done again buffered: the same bytes, its error. */
    int fd = open(f->w->file, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || tb_pwrite_all(fd, f->buf, f->n, f->off) != 0)
        f->err_no = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && !f->err_no)
        f->err_no = errno ? errno : EIO;
    return NULL;
}

/* Waits for this thread's write in flight, if any; its failure is
 * reported into err (NULL: dropped, the caller is failing already). */
static timber_status inflight_wait(timber_error *err)
{
    inflight *f = &pending;
    if (!f->active)
        return TIMBER_OK;
    if (f->threaded)
        pthread_join(f->tid, NULL);
    f->active = 0;
    bounce_give(f->buf);
    if (f->close_dfd)
        close(f->dfd);
    atomic_fetch_sub(&f->w->inflight, 1);
    if (!f->err_no)
        return TIMBER_OK;
    return tb_fail_errno(err, TIMBER_ERR_IO, f->err_no,
                         "%s: cannot write %zu bytes at offset %llu",
                         f->w->file, f->n, (unsigned long long)f->off);
}

/* Starts writing buf[0..n) at off of w's file through dfd (the caller
 * waited for the previous write); buf is the write's until waited for.
 * Where no thread can be started, the write is done here and now. */
static void inflight_start(tb_writer *w, int dfd, unsigned char *buf,
                           size_t n, uint64_t off)
{
    inflight *f = &pending;
    assert(!f->active);
    *f = (inflight){.active = 1, .w = w, .dfd = dfd, .buf = buf, .n = n,
                    .off = off};
    atomic_fetch_add(&w->inflight, 1);
    f->threaded = pthread_create(&f->tid, NULL, inflight_write, f) == 0;
    if (!f->threaded)
        inflight_write(f);
}

timber_status tb_writer_flush(timber_error *err)
{
    return inflight_wait(err);
}

/* A held writer also holds an O_DIRECT fd of its file, within the same
 * budget; none (each put opens one) when the budget is spent. */
static void writer_hold_direct(tb_writer *w)
{
    if (!w->held || !direct_enabled() || !writer_fd_take())
        return;
    w->dfd = open(w->file, O_WRONLY | O_CLOEXEC | O_DIRECT);
    if (w->dfd < 0)
        atomic_fetch_sub(&writer_fds_held, 1);
}

/* Where a put's or a copy's bytes come from: memory (a buffer of the
 * caller's, or a shard's mapping), or tensor t of shard s from byte
 * `from` on, read through src_fd (tb_shard_read). */
typedef struct put_src {
    const unsigned char *mem;
    const tb_shard *s;
    int src_fd;
    const timber_tensor_info *t;
    uint64_t from;
} put_src;

/* Bytes [rel, rel + n) of src into buf. */
static timber_status src_fill(const put_src *src, uint64_t rel, void *buf,
                              size_t n, timber_error *err)
{
    if (!src->mem)
        return tb_shard_read(src->s, src->src_fd, src->t, src->from + rel,
                             buf, n, err);
    if (!guarded_copy(buf, src->mem + rel, n))
        return TIMBER_OK;
    timber_status st = blame_shard(src->mem + rel, err);
    return st ? st
              : tb_fail(err, TIMBER_ERR_IO,
                        "an input file was truncated while timber was "
                        "reading it");
}

static timber_status writer_close(tb_writer *w, int fd, int own,
                                  uint64_t off, uint64_t len,
                                  timber_error *err);

/* Writes [off, off + len) of w's file, tensor `index`'s next bytes, from
 * src: its whole aligned blocks direct, the rest through fd (the block
 * comment above).  Returns 1, having written nothing, when direct writes
 * do not apply here (off, too small a range, no O_DIRECT, no buffer): the
 * caller writes the usual way.  Otherwise 0 with the put finished as
 * tb_writer_put finishes one (the bytes counted, fd given to writer_close;
 * on failure fd closed if own) and *st its outcome. */
static int direct_put(tb_writer *w, size_t index, int fd, int own,
                      const put_src *src, uint64_t off, uint64_t len,
                      timber_status *st, timber_error *err)
{
    const uint64_t mask = DIRECT_ALIGN - 1;
    uint64_t a = (off + mask) & ~mask, b = (off + len) & ~mask;
    if (!direct_enabled() || len < DIRECT_MIN || b <= a ||
        b - a < DIRECT_MIN)
        return 1;
    int dfd = w->dfd, down = 0;
    if (dfd < 0) {
        dfd = open(w->file, O_WRONLY | O_CLOEXEC | O_DIRECT);
        if (dfd < 0)
            return 1;
        down = 1;
    }
    unsigned char *buf = bounce_take();
    if (!buf) {
        if (down)
            close(dfd);
        return 1;
    }
    *st = TIMBER_OK;
    for (uint64_t x = off; x < off + len && !*st;) {
        uint64_t end = x < a                     ? a
                       : x < b && b - x > BOUNCE_SIZE ? x + BOUNCE_SIZE
                       : x < b                   ? b
                                                 : off + len;
        size_t n = (size_t)(end - x);
        if (!buf && !(*st = inflight_wait(err)) && !(buf = bounce_take()))
            *st = tb_fail(err, TIMBER_ERR_NOMEM,
                          "%s: out of memory for a write buffer", w->file);
        if (*st)
            break;
        *st = src_fill(src, x - off, buf, n, err);
        if (*st)
            break;
        if (x >= a && end <= b) {
            /* whole blocks: direct, in flight while the next is filled */
            *st = inflight_wait(err);
            if (*st)
                break;
            inflight_start(w, dfd, buf, n, x);
            buf = bounce_take(); /* NULL: taken again above */
        } else if (tb_pwrite_all(fd, buf, n, x) != 0) {
            *st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                                "%s: cannot write %zu bytes at offset %llu",
                                w->file, n, (unsigned long long)x);
        }
        x = end;
    }
    if (buf)
        bounce_give(buf);
    /* The write in flight may be this put's, through its own dfd: that
     * write closes it when waited for. */
    if (down) {
        if (pending.active && pending.dfd == dfd)
            pending.close_dfd = 1;
        else
            close(dfd);
    }
    if (*st) {
        if (own)
            close(fd);
    } else {
        w->written[index] += len;
        *st = writer_close(w, fd, own, off, len, err);
    }
    return 0;
}

void tb_writer_free(tb_writer *w)
{
    if (!w)
        return;
    if (pending.active && pending.w == w)
        inflight_wait(NULL); /* failing or abandoned: its error is moot */
    assert(atomic_load(&w->inflight) == 0);
    writer_fd_drop(w);
    tb_temp_end(&w->tmp); /* removes it unless committed */
    free(w->path);
    free(w->offsets);
    free(w->sizes);
    free(w->written);
    free(w);
}

/* Appends an integer to a JSON array, printed in full: cJSON prints
 * numbers with "%1.15g", which writes 10^15 as "1e+15", a number the
 * reference reader does not take for an integer. */
static int add_integer(cJSON *array, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    cJSON *item = cJSON_CreateRaw(text);
    return item && cJSON_AddItemToArray(array, item);
}

static char *build_header(const tb_meta *meta, size_t nmeta,
                          const tb_tensor_spec *t,
                          const tb_tensor_spec *const *order,
                          size_t n, const uint64_t *offsets,
                          const uint64_t *sizes)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    char *text = NULL;
    if (nmeta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m)
            goto out;
        for (size_t i = 0; i < nmeta; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value))
                goto out;
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)(order[k] - t);
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype",
                                           timber_dtype_name(t[i].dtype)))
            goto out;
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        if (!shape)
            goto out;
        for (size_t d = 0; d < t[i].ndim; d++)
            if (!add_integer(shape, t[i].shape[d]))
                goto out;
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        if (!offs || !add_integer(offs, offsets[i]) ||
            !add_integer(offs, offsets[i] + sizes[i]))
            goto out;
    }
    text = cJSON_PrintUnformatted(root);
out:
    cJSON_Delete(root);
    return text;
}

/* The layout both writers share: offsets and sizes of every tensor, the
 * header (padded to 8 bytes with spaces; *padded_len), and every refusal
 * of a file no reader could read. */
static timber_status writer_layout(const char *path, const tb_meta *meta,
                                   size_t nmeta, const tb_tensor_spec *t,
                                   size_t n, tb_writer **out, char **hdr,
                                   size_t *padded_len, timber_error *err)
{
    *out = NULL;
    *hdr = NULL;
    timber_status st = TIMBER_OK;
    char *header = NULL;
    const tb_tensor_spec **order = NULL;
    tb_writer *w = calloc(1, sizeof *w);
    if (!w)
        return tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
    w->tmp.fd = -1;
    w->dfd = -1;
    w->n = n;
    w->path = tb_strdup(path);
    w->offsets = tb_calloc_array(n, sizeof(uint64_t));
    w->sizes = tb_calloc_array(n, sizeof(uint64_t));
    w->written = tb_calloc_array(n, sizeof(uint64_t));
    order = tb_alloc_array(n, sizeof *order);
    if (!w->path || !w->offsets || !w->sizes || !w->written || !order) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }

    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].name, "__metadata__") == 0) {
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s: a tensor may not be called \"__metadata__\"",
                         path);
            goto fail;
        }
        uint64_t elems, bits;
        for (size_t d = 0; d < t[i].ndim; d++) {
            /* Readers (this one included) refuse what a double cannot
             * hold exactly: do not write a file no one can read. */
            if (t[i].shape[d] >= TB_JSON_INT_LIMIT_U64) {
                st = tb_fail(err, TIMBER_ERR_INVALID,
                             "%s: tensor '%s': shape[%zu] = %llu is 2^53 or "
                             "more, which readers refuse",
                             path, t[i].name, d,
                             (unsigned long long)t[i].shape[d]);
                goto fail;
            }
        }
        if (tensor_size(t[i].shape, t[i].ndim, t[i].dtype, &elems, &bits) !=
            SIZE_OK)
            goto too_big;
        if (bits % 8) {
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s: tensor '%s' of %s is %llu bits, not whole "
                         "bytes",
                         path, t[i].name, timber_dtype_name(t[i].dtype),
                         (unsigned long long)bits);
            goto fail;
        }
        w->sizes[i] = bits / 8;
        order[i] = &t[i];
        continue;
    too_big:
        st = tb_fail(err, TIMBER_ERR_INVALID,
                     "%s: tensor '%s' is too large to address", path,
                     t[i].name);
        goto fail;
    }
    qsort(order, n, sizeof *order, cmp_layout);
    uint64_t at = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (size_t)(order[k] - t);
        w->offsets[i] = at;
        if (!tb_add_u64(at, w->sizes[i], &at) ||
            at >= TB_JSON_INT_LIMIT_U64) {
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s: data of 2^53 bytes or more, which readers "
                         "refuse",
                         path);
            goto fail;
        }
    }
    /* Duplicate metadata keys or tensor names (of any dtype) would make a
     * file the reader refuses: the reader's own check. */
    {
        const char **keys = tb_alloc_array(nmeta, sizeof(char *));
        const char **names = tb_alloc_array(n, sizeof(char *));
        for (size_t i = 0; keys && i < nmeta; i++)
            keys[i] = meta[i].key;
        for (size_t i = 0; names && i < n; i++)
            names[i] = t[i].name;
        int nomem_k = 0, nomem_n = 0;
        const char *dk = keys ? find_duplicate(keys, nmeta, &nomem_k) : NULL;
        const char *dn = names ? find_duplicate(names, n, &nomem_n) : NULL;
        if ((!keys && nmeta) || (!names && n) || nomem_k || nomem_n)
            st = tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
        else if (dk)
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s: metadata key \"%s\" given twice", path, dk);
        else if (dn)
            st = tb_fail(err, TIMBER_ERR_INVALID,
                         "%s: tensor '%s' given twice", path, dn);
        free(keys);
        free(names);
        if (st)
            goto fail;
    }

    header = build_header(meta, nmeta, t, order, n, w->offsets, w->sizes);
    if (!header) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory building the "
                     "header", path);
        goto fail;
    }
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7;
    char *hp = realloc(header, padded);
    if (!hp) {
        st = tb_fail(err, TIMBER_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    header = hp;
    memset(header + hlen, ' ', padded - hlen);
    w->data_start = 8 + (uint64_t)padded;
    w->file_size = w->data_start + at;

    /* Readers (this one included) refuse a header over the limit: refuse
     * to write one, before any work (the output's shards are all created
     * before the first tensor is computed). */
    if (padded > TB_ST_MAX_HEADER) {
        st = tb_fail(err, TIMBER_ERR_INVALID,
                     "%s: its header would be %zu bytes, over the %llu-byte "
                     "limit of safetensors readers",
                     path, padded, TB_ST_MAX_HEADER);
        goto fail;
    }
    free((void *)order);
    *out = w;
    *hdr = header;
    *padded_len = padded;
    return TIMBER_OK;
fail:
    free(header);
    free((void *)order);
    tb_writer_free(w);
    return st;
}

/* The 8-byte length and the header, at the start of fd. */
static int put_header(int fd, const char *header, size_t padded)
{
    unsigned char len8[8];
    for (int b = 0; b < 8; b++)
        len8[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    return tb_pwrite_all(fd, len8, 8, 0) != 0 ||
                   tb_pwrite_all(fd, header, padded, 8) != 0
               ? -1
               : 0;
}

timber_status tb_writer_create(const char *path, const tb_meta *meta,
                               size_t nmeta, const tb_tensor_spec *t,
                               size_t n, tb_writer **out, timber_error *err)
{
    *out = NULL;
    tb_writer *w;
    char *header;
    size_t padded;
    timber_status st =
        writer_layout(path, meta, nmeta, t, n, &w, &header, &padded, err);
    if (st)
        return st;
    st = tb_temp_create(&w->tmp, path, TB_TEMP_FILE | TB_TEMP_NESTED, err);
    if (!st && put_header(w->tmp.fd, header, padded) != 0)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                           w->tmp.path);
    free(header);
    if (st) {
        tb_writer_free(w);
        return st;
    }
    if (writer_fd_take())
        w->held = 1;
    else
        tb_temp_close_fd(&w->tmp);
    w->file = w->tmp.path;
    writer_hold_direct(w);
    *out = w;
    return TIMBER_OK;
}

timber_status tb_writer_open_in_place(const char *path, const tb_meta *meta,
                                      size_t nmeta, const tb_tensor_spec *t,
                                      size_t n, tb_writer **out,
                                      timber_error *err)
{
    *out = NULL;
    tb_writer *w;
    char *header;
    size_t padded;
    timber_status st =
        writer_layout(path, meta, nmeta, t, n, &w, &header, &padded, err);
    if (st)
        return st;
    w->in_place = 1;
    w->file = w->path;
    /* No O_TRUNC: other writers (other parts, other hosts) may already
     * have put their tensors.  Every writer of this file computes the
     * same header and size from the same Instruct header, so writing
     * them again changes nothing; a file of another size is not ours. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                           path);
    } else if (!S_ISREG(sb.st_mode)) {
        st = tb_fail(err, TIMBER_ERR_INVALID, "%s: not a regular file",
                     path);
    } else if (sb.st_size != 0 && (uint64_t)sb.st_size != w->file_size) {
        st = tb_fail(err, TIMBER_ERR_INVALID,
                     "%s: holds %llu bytes where this output shard has %llu; "
                     "it is not from this run",
                     path, (unsigned long long)sb.st_size,
                     (unsigned long long)w->file_size);
    } else if ((uint64_t)sb.st_size != w->file_size &&
               ftruncate(fd, (off_t)w->file_size) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno,
                           "%s: cannot extend to %llu bytes", path,
                           (unsigned long long)w->file_size);
    } else if (put_header(fd, header, padded) != 0) {
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot write",
                           path);
    }
    /* A file this writer extended gets its blocks reserved, best effort
     * (a file system without fallocate, or a disk too full: the writes
     * then say so).  Direct writes (above) into reserved, unwritten
     * extents are overwrites, which ext4 runs side by side under a
     * shared inode lock instead of allocating one write at a time. */
    if (!st && (uint64_t)sb.st_size != w->file_size)
        (void)fallocate(fd, 0, 0, (off_t)w->file_size);
    if (!st && fd >= 0 && writer_fd_take()) {
        /* Kept for the puts, within the budget (tb_writer_create). */
        w->tmp.fd = fd;
        w->held = 1;
        fd = -1;
    }
    if (fd >= 0 && close(fd) != 0 && !st)
        st = tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot close",
                           path);
    free(header);
    if (st) {
        tb_writer_free(w);
        return st;
    }
    writer_hold_direct(w);
    *out = w;
    return TIMBER_OK;
}

uint64_t tb_writer_tensor_offset(const tb_writer *w, size_t index)
{
    return index < w->n ? w->data_start + w->offsets[index] : 0;
}

const char *tb_writer_file(const tb_writer *w) { return w->file; }

void tb_writer_mark_written(tb_writer *w, size_t index)
{
    if (index < w->n)
        w->written[index] = w->sizes[index];
}

/* Before w's file is synced or committed: this thread's write in flight
 * landed, and every other writing thread has waited for its own
 * (tb_writer_flush). */
static timber_status writer_settle(tb_writer *w, timber_error *err)
{
    timber_status st = inflight_wait(err);
    assert(st || atomic_load(&w->inflight) == 0);
    (void)w; /* without assertions */
    return st;
}

timber_status tb_writer_sync(tb_writer *w, timber_error *err)
{
    timber_status st0 = writer_settle(w, err);
    if (st0)
        return st0;
    int fd = open(w->file, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             w->file);
    int bad = fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    return bad ? tb_fail_errno(err, TIMBER_ERR_IO, e, "%s: cannot fsync",
                               w->file)
               : TIMBER_OK;
}

/* The fd to write w's file with: the held one, or one opened for this
 * write (*own set: the caller closes it with writer_close). */
static timber_status writer_open(tb_writer *w, int *fd, int *own,
                                 timber_error *err)
{
    *own = !w->held;
    *fd = w->held ? w->tmp.fd : open(w->file, O_WRONLY | O_CLOEXEC);
    if (*fd < 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot open",
                             w->file);
    return TIMBER_OK;
}

/* After bytes [off, off + len) were written: their writeback started
 * (otherwise a shard the size of a model sits dirty in the page cache
 * until the commit's fsync, which then waits for all of it after the
 * computing is done instead of alongside it), and an fd opened for the
 * write closed (a write error the file system reports only at close, as
 * NFS does, is still an error). */
static timber_status writer_close(tb_writer *w, int fd, int own,
                                  uint64_t off, uint64_t len,
                                  timber_error *err)
{
    sync_file_range(fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
    if (own && close(fd) != 0)
        return tb_fail_errno(err, TIMBER_ERR_IO, errno, "%s: cannot close",
                             w->file);
    return TIMBER_OK;
}

/* The checks before every write: the range, and the sources. */
static timber_status writer_check(tb_writer *w, size_t index, size_t len,
                                  timber_error *err)
{
    if (index >= w->n || w->written[index] + len > w->sizes[index])
        return tb_fail(err, TIMBER_ERR_INVALID,
                       "%s: tensor #%zu written past its %llu bytes", w->path,
                       index,
                       index < w->n ? (unsigned long long)w->sizes[index]
                                    : 0ull);
    /* Nothing read from a shard that shrank under us is ever written. */
    return w->sources ? w->sources(w->sources_ctx, err) : 0;
}

/* The start of every put and copy: the checks, the file offset of
 * tensor `index`'s next bytes, and the fd to write them with. */
static timber_status writer_begin(tb_writer *w, size_t index, size_t len,
                                  uint64_t *off, int *fd, int *own,
                                  timber_error *err)
{
    /* This thread's write in flight lands first: its writes keep their
     * order (a tensor rewound and written again, a buffered edge beside a
     * direct block). */
    timber_status st = inflight_wait(err);
    if (!st)
        st = writer_check(w, index, len, err);
    if (st)
        return st;
    *off = w->data_start + w->offsets[index] + w->written[index];
    return writer_open(w, fd, own, err);
}

timber_status tb_writer_put(tb_writer *w, size_t index, const void *data,
                            size_t len, timber_error *err)
{
    uint64_t off;
    int fd, own;
    timber_status st = writer_begin(w, index, len, &off, &fd, &own, err);
    if (st)
        return st;
    const put_src src = {.mem = data};
    if (direct_put(w, index, fd, own, &src, off, len, &st, err) == 0)
        return st;
    if (tb_pwrite_all(fd, data, len, off) != 0) {
        int e = errno;
        if (own)
            close(fd);
        if (e == EFAULT && blame_shard(data, err))
            return TIMBER_ERR_IO;
        return tb_fail_errno(err, TIMBER_ERR_IO, e,
                             "%s: cannot write %zu bytes at offset %llu",
                             w->file, len, (unsigned long long)off);
    }
    w->written[index] += len;
    return writer_close(w, fd, own, off, len, err);
}

timber_status tb_writer_copy(tb_writer *w, size_t index, const tb_shard *s,
                             int src_fd, const timber_tensor_info *t,
                             uint64_t from, size_t len, timber_error *err)
{
    if (src_fd < 0)
        goto mapped;
    uint64_t off;
    int fd, own;
    timber_status st = writer_begin(w, index, len, &off, &fd, &own, err);
    if (st)
        return st;
    const put_src src = {.s = s, .src_fd = src_fd, .t = t, .from = from};
    if (direct_put(w, index, fd, own, &src, off, len, &st, err) == 0)
        return st;
    loff_t in = (loff_t)file_offset(s, t, from), outo = (loff_t)off;
    size_t left = len;
    while (left > 0) {
        ssize_t n = copy_file_range(src_fd, &in, fd, &outo, left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && left == len &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
             errno == EOPNOTSUPP || errno == EBADF || errno == EPERM)) {
            /* Not between these files (another file system on an old
             * kernel, a special file system): through the mapping. */
            if (own)
                close(fd);
            goto mapped;
        }
        if (n < 0) {
            int e = errno;
            if (own)
                close(fd);
            return tb_fail_errno(err, TIMBER_ERR_IO, e,
                                 "%s: cannot copy %zu bytes of tensor '%s' "
                                 "from %s at offset %llu",
                                 w->file, left, t->name, s->path,
                                 (unsigned long long)outo);
        }
        if (n == 0) {
            if (own)
                close(fd);
            return short_error(s, t, err);
        }
        left -= (size_t)n;
    }
    w->written[index] += len;
    return writer_close(w, fd, own, off, len, err);
mapped:
    /* A fault is caught by the guard: put fails through blame_shard or
     * the kernel's EFAULT; the pages are dropped afterwards. */
    st = tb_writer_put(w, index,
                       (const unsigned char *)tb_shard_data(s, t) + from, len,
                       err);
    if (!st)
        tb_shard_release(s, t, from, len);
    return st;
}

uint64_t tb_writer_tensor_bytes(const tb_writer *w, size_t index)
{
    return index < w->n ? w->sizes[index] : 0;
}

uint64_t tb_writer_file_size(const tb_writer *w) { return w->file_size; }

void tb_writer_set_sources(tb_writer *w, tb_source_check check,
                           const void *ctx)
{
    w->sources = check;
    w->sources_ctx = ctx;
}

void tb_writer_rewind(tb_writer *w, size_t index, uint64_t to)
{
    if (index < w->n && to < w->written[index])
        w->written[index] = to;
}

timber_status tb_writer_commit(tb_writer *w, timber_error *err)
{
    timber_status st0 = writer_settle(w, err);
    if (st0)
        return st0;
    for (size_t i = 0; i < w->n; i++)
        if (w->written[i] != w->sizes[i])
            return tb_fail(err, TIMBER_ERR_INVALID,
                           "%s: tensor #%zu has %llu of its %llu bytes",
                           w->path, i, (unsigned long long)w->written[i],
                           (unsigned long long)w->sizes[i]);
    timber_status st = w->sources ? w->sources(w->sources_ctx, err) : 0;
    if (st)
        return st;
    if (w->in_place) {
        st = tb_writer_sync(w, err);
        if (!st) {
            w->committed = 1;
            writer_fd_drop(w);
        }
        return st;
    }
    /* fsync before rename: otherwise a crash can publish the name with
     * the data still missing (the classic zero-length-file-after-crash);
     * then the directory, which holds the rename. */
    st = tb_temp_publish(&w->tmp, TB_PUBLISH_REPLACE, err);
    if (st)
        return st;
    w->committed = 1;
    writer_fd_drop(w); /* its fd is free for another writer */
    return TIMBER_OK;
}
