/*
 * hub.c — checkpoint arguments given as Hugging Face repo ids,
 * ORG/NAME[@REVISION], resolved offline in the local Hub cache the way
 * huggingface_hub's snapshot_download(local_files_only=True) does it
 * (docs/formats.md, "Repo ids"):
 *
 *   cache root  $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else
 *               $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 *               ~/.cache/huggingface/hub (huggingface_hub/constants.py,
 *               with its ~ and $VAR expansion);
 *   repo        <root>/models--ORG--NAME/;
 *   revision    40 lowercase hex digits name snapshots/<rev>/ directly;
 *               anything else (default "main") is read from refs/<rev>,
 *               whose bytes are the commit;
 *   files       snapshots/<commit>/..., symbolic links into ../../blobs/
 *               (followed like any file).
 *
 * It never touches the network.  An argument that exists on disk is
 * always that path (a local directory named like a repo wins, and the
 * location carries a note saying so).  Every entry point (refine, erank,
 * inspect) goes through timber_model_open, which calls this.
 */
#include "timber.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pwd.h>
#include <unistd.h>

#include "util.h"

struct timber_location {
    char *path;     /* what to open */
    char *repo;     /* ORG/NAME, or NULL for a local path */
    char *revision; /* as asked ("main" by default), or NULL */
    char *commit;   /* the snapshot's commit, or NULL */
    char *note;     /* NULL, or why a repo-shaped name is a local path */
};

void timber_location_free(timber_location *loc)
{
    if (!loc)
        return;
    free(loc->path);
    free(loc->repo);
    free(loc->revision);
    free(loc->commit);
    free(loc->note);
    free(loc);
}

const char *timber_location_path(const timber_location *l) { return l->path; }
const char *timber_location_repo(const timber_location *l) { return l->repo; }
const char *timber_location_revision(const timber_location *l)
{
    return l->revision;
}
const char *timber_location_commit(const timber_location *l)
{
    return l->commit;
}
const char *timber_location_note(const timber_location *l) { return l->note; }

/* One part of a repo id, as huggingface_hub's REPO_ID_REGEX (ASCII) has
 * it: 1..96 of [A-Za-z0-9_.-], first and last a word character. */
static int repo_part_ok(const char *s, size_t n)
{
    if (n < 1 || n > 96)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int word = isascii(c) && (isalnum(c) || c == '_');
        if (!word && ((i == 0 || i == n - 1) || (c != '-' && c != '.')))
            return 0;
    }
    return 1;
}

/* ORG/NAME by validate_repo_id's rules (one slash here: timber takes
 * model repos with an owner, as `hf download ORG/NAME` does). */
static int tb_is_repo_id(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (!slash || memchr(slash + 1, '/', n - (size_t)(slash + 1 - s)))
        return 0;
    if (!repo_part_ok(s, (size_t)(slash - s)) ||
        !repo_part_ok(slash + 1, n - (size_t)(slash + 1 - s)))
        return 0;
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == '-' && s[i + 1] == '-') ||
            (s[i] == '.' && s[i + 1] == '.'))
            return 0;
    return !(n >= 4 && memcmp(s + n - 4, ".git", 4) == 0);
}

/* os.path.expanduser then os.path.expandvars, as huggingface_hub applies
 * them to its cache variables: a leading ~ or ~user, then $NAME and
 * ${NAME} of set variables (unset ones stay as written).  NULL when out
 * of memory. */
static char *expand(const char *v)
{
    const char *home = NULL;
    size_t skip = 0;
    if (v[0] == '~') {
        size_t n = strcspn(v + 1, "/");
        if (n == 0) {
            home = getenv("HOME");
            if (!home) {
                struct passwd *pw = getpwuid(getuid());
                home = pw ? pw->pw_dir : NULL;
            }
        } else {
            char user[256];
            if (n < sizeof user) {
                memcpy(user, v + 1, n);
                user[n] = '\0';
                struct passwd *pw = getpwnam(user);
                home = pw ? pw->pw_dir : NULL;
            }
        }
        if (home)
            skip = 1 + n;
    }
    size_t cap = strlen(v) + (home ? strlen(home) : 0) + 1, len = 0;
    char *r = malloc(cap);
    if (!r)
        return NULL;
    if (home) {
        memcpy(r, home, strlen(home));
        len = strlen(home);
    }
    for (const char *p = v + skip; *p;) {
        const char *name = NULL, *next = p + 1;
        size_t n = 0;
        if (*p == '$') {
            int brace = p[1] == '{';
            name = p + 1 + brace;
            while (isascii((unsigned char)name[n]) &&
                   (isalnum((unsigned char)name[n]) || name[n] == '_'))
                n++;
            if (n == 0 || (brace && name[n] != '}'))
                name = NULL;
            else
                next = name + n + brace;
        }
        char key[256];
        const char *val = NULL;
        if (name && n < sizeof key) {
            memcpy(key, name, n);
            key[n] = '\0';
            val = getenv(key);
        }
        const char *src = val ? val : p;
        size_t sn = val ? strlen(val) : (size_t)(next - p);
        if (len + sn + 1 > cap) {
            cap = 2 * (len + sn + 1);
            char *g = realloc(r, cap);
            if (!g) {
                free(r);
                return NULL;
            }
            r = g;
        }
        memcpy(r + len, src, sn);
        len += sn;
        p = next;
    }
    r[len] = '\0';
    return r;
}

static const char *env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *tb_hub_cache_root(void)
{
    const char *v;
    if ((v = env_set("HF_HUB_CACHE")) || (v = env_set("HUGGINGFACE_HUB_CACHE")))
        return expand(v);
    char *home = NULL;
    if ((v = env_set("HF_HOME"))) {
        home = expand(v);
    } else {
        const char *xdg = env_set("XDG_CACHE_HOME");
        char *base = xdg ? tb_strdup(xdg) : NULL;
        if (!base) {
            const char *h = env_set("HOME");
            base = h ? tb_path_join(h, ".cache") : NULL;
        }
        home = base ? tb_path_join(base, "huggingface") : NULL;
        free(base);
        if (home) {
            char *e = expand(home);
            free(home);
            home = e;
        }
    }
    char *root = home ? tb_path_join(home, "hub") : NULL;
    free(home);
    return root;
}

static int is_commit(const char *s)
{
    size_t n = strlen(s);
    if (n != 40)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* <root>/models--ORG--NAME (ORG/NAME: idlen bytes of spec); NULL when
 * out of memory. */
static char *repo_folder(const char *root, const char *spec, size_t idlen)
{
    char folder[256] = "models--";
    size_t at = strlen(folder);
    for (size_t i = 0; i < idlen && at + 3 < sizeof folder; i++) {
        if (spec[i] == '/') {
            folder[at++] = '-';
            folder[at++] = '-';
        } else {
            folder[at++] = spec[i];
        }
    }
    folder[at] = '\0';
    return tb_path_join(root, folder);
}

static timber_status nomem(timber_error *err)
{
    return tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
}

/* The snapshot of repo at rev in the cache at root, into loc. */
static timber_status from_cache(timber_location *loc, const char *spec,
                                const char *root, timber_error *err)
{
    char *repo_dir = repo_folder(root, loc->repo, strlen(loc->repo));
    char *refs = repo_dir ? tb_path_join(repo_dir, "refs") : NULL;
    char *ref = refs ? tb_path_join(refs, loc->revision) : NULL;
    char *text = NULL, *snaps = NULL;
    timber_status st = TIMBER_OK;
    if (!ref) {
        st = nomem(err);
        goto out;
    }
    /* Where this looked, for the message if nothing is there. */
    char looked[1024];
    snprintf(looked, sizeof looked, "no directory '%s' here, and not in the "
             "Hugging Face cache %s", spec, root);
    char fetch[400];
    snprintf(fetch, sizeof fetch, "hf download %s%s%s", loc->repo,
             strcmp(loc->revision, "main") ? " --revision " : "",
             strcmp(loc->revision, "main") ? loc->revision : "");
    struct stat sb;
    /* A revision names a file under refs/ (branches may hold slashes:
     * refs/pr/1), never a path out of the repo's folder. */
    if (strstr(loc->revision, "..") || loc->revision[0] == '/') {
        st = tb_fail(err, TIMBER_ERR_INVALID, "%s: '%s' is not a revision",
                     spec, loc->revision);
        goto out;
    }
    if (stat(repo_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = tb_fail(err, TIMBER_ERR_IO, "%s: %s (no %s); fetch it with: %s",
                     spec, looked, repo_dir, fetch);
        goto out;
    }
    if (is_commit(loc->revision)) {
        loc->commit = tb_strdup(loc->revision);
    } else {
        size_t len = 0;
        timber_error rerr;
        if (stat(ref, &sb) != 0) {
            st = tb_fail(err, TIMBER_ERR_IO,
                         "%s: %s (no %s: revision '%s' was never "
                         "downloaded); fetch it with: %s",
                         spec, looked, ref, loc->revision, fetch);
            goto out;
        }
        st = tb_read_small_file(ref, 4096, &text, &len, &rerr);
        if (st) {
            if (err)
                *err = rerr;
            goto out;
        }
        /* huggingface_hub uses the file's bytes as they are. */
        if (len == 0 || strchr(text, '/') || strlen(text) != len) {
            st = tb_fail(err, TIMBER_ERR_IO,
                         "%s: %s does not hold a commit id (%zu bytes)",
                         spec, ref, len);
            goto out;
        }
        loc->commit = text;
        text = NULL;
    }
    snaps = tb_path_join(repo_dir, "snapshots");
    loc->path = snaps && loc->commit ? tb_path_join(snaps, loc->commit)
                                     : NULL;
    if (!loc->path) {
        st = nomem(err);
        goto out;
    }
    if (stat(loc->path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        st = tb_fail(err, TIMBER_ERR_IO,
                     "%s: %s (no snapshot %s for revision '%s'); fetch it "
                     "with: %s",
                     spec, looked, loc->path, loc->revision, fetch);
out:
    free(text);
    free(snaps);
    free(ref);
    free(refs);
    free(repo_dir);
    return st;
}

timber_status timber_locate(const char *spec, timber_location **out,
                            timber_error *err)
{
    *out = NULL;
    tb_error_clear(err);
    timber_location *loc = calloc(1, sizeof *loc);
    if (!loc)
        return nomem(err);
    const char *atp = strchr(spec, '@');
    size_t idlen = atp ? (size_t)(atp - spec) : strlen(spec);
    int repo_shaped = tb_is_repo_id(spec, idlen) &&
                      (!atp || atp[1] != '\0');
    timber_status st = TIMBER_OK;
    struct stat sb;
    if (stat(spec, &sb) == 0 || !repo_shaped) {
        /* A path (existing or not: opening it gives the error). */
        loc->path = tb_strdup(spec);
        if (!loc->path)
            st = nomem(err);
        /* Said only when the name really is ambiguous: the cache holds
         * that repo too (a relative path like runs/base is no repo). */
        char *root = repo_shaped && !st ? tb_hub_cache_root() : NULL;
        char *dir = root ? repo_folder(root, spec, idlen) : NULL;
        struct stat rb;
        int shadows = dir && stat(dir, &rb) == 0 && S_ISDIR(rb.st_mode);
        free(dir);
        free(root);
        if (shadows) {
            size_t size = 2 * strlen(spec) + 160;
            loc->note = malloc(size);
            if (loc->note)
                snprintf(loc->note, size,
                         "'%s' is a local %s here: using it, not the "
                         "Hugging Face cache's repo of that name (move or "
                         "rename it to use the cache)",
                         spec, S_ISDIR(sb.st_mode) ? "directory" : "file");
            else
                st = nomem(err);
        }
    } else {
        char *root = tb_hub_cache_root();
        loc->repo = malloc(idlen + 1);
        loc->revision = tb_strdup(atp ? atp + 1 : "main");
        if (!root || !loc->repo || !loc->revision) {
            st = root ? nomem(err)
                      : tb_fail(err, TIMBER_ERR_IO,
                                "%s: no Hugging Face cache to look in "
                                "(HF_HUB_CACHE, HF_HOME and HOME are unset)",
                                spec);
        } else {
            memcpy(loc->repo, spec, idlen);
            loc->repo[idlen] = '\0';
            st = from_cache(loc, spec, root, err);
        }
        free(root);
    }
    if (st) {
        timber_location_free(loc);
        return st;
    }
    *out = loc;
    return TIMBER_OK;
}
