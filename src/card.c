/*
 * card.c — writes OUT/README.md, the refined checkpoint's model card
 * (see card.h and docs/cli.md, "The model card").  The front matter
 * follows the Hub's model-card metadata: base_model lists Instruct then
 * Base (repo ids when they were given as such, else directory names),
 * base_model_relation: merge (two parents), library_name: transformers,
 * tags: [timber], and Instruct's license when its own card has one.  The
 * body is built only from what this run did.
 */
#include "card.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define README_MAX_BYTES (4u << 20)

/* A model's name for the card: its repo id, else its directory's name. */
static char *model_label(const timber_model *m)
{
    const timber_location *loc = timber_model_location(m);
    if (timber_location_repo(loc))
        return tb_strdup(timber_location_repo(loc));
    char *rp = realpath(timber_model_path(m), NULL);
    char *label = tb_strdup(tb_basename(rp ? rp : timber_model_path(m)));
    free(rp);
    return label;
}

/* "ORG/NAME (revision main, commit abc...)" or "the directory PATH". */
static int put_source(tb_buf *b, const char *label, const timber_model *m,
                      const char *shown)
{
    const timber_location *loc = timber_model_location(m);
    const char *rev = timber_location_revision(loc);
    const char *commit = timber_location_commit(loc);
    if (timber_location_repo(loc) && strcmp(rev, commit) == 0)
        return tb_buf_printf(b,
                             "[%s](https://huggingface.co/%s) (commit `%s`)",
                             label, label, commit);
    if (timber_location_repo(loc))
        return tb_buf_printf(b,
                             "[%s](https://huggingface.co/%s) (revision `%s`, "
                             "commit `%s`)",
                             label, label, rev, commit);
    return tb_buf_printf(b, "`%s` (the local directory `%s`)", label,
                         shown ? shown : timber_model_path(m));
}

/* Top-level license keys of Instruct's own card (its YAML front matter,
 * between the first two "---" lines), copied as written. */
static int put_license(tb_buf *b, const timber_model *inst)
{
    char *path = tb_path_join(timber_model_path(inst), TB_CARD_NAME);
    char *text = NULL;
    size_t len = 0;
    int ok = 1;
    if (!path || tb_read_small_file(path, README_MAX_BYTES, &text, &len,
                                    NULL) != TIMBER_OK) {
        free(path);
        return path != NULL;
    }
    free(path);
    char *p = text;
    if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    if (strncmp(p, "---\n", 4) == 0 || strncmp(p, "---\r\n", 5) == 0) {
        p = strchr(p, '\n') + 1;
        while (ok && *p) {
            char *eol = strchr(p, '\n');
            size_t n = eol ? (size_t)(eol - p) : strlen(p);
            if (n && p[n - 1] == '\r')
                n--;
            if (n == 3 && strncmp(p, "---", 3) == 0)
                break;
            static const char *const keys[] = {"license:", "license_name:",
                                               "license_link:"};
            for (size_t k = 0; k < 3; k++) {
                size_t kl = strlen(keys[k]);
                const char *v = p + kl;
                while (v < p + n && (*v == ' ' || *v == '\t'))
                    v++;
                /* Only a scalar on the key's own line. */
                if (n > kl && strncmp(p, keys[k], kl) == 0 && v < p + n)
                    ok = tb_buf_printf(b, "%.*s\n", (int)n, p);
            }
            if (!eol)
                break;
            p = eol + 1;
        }
    }
    free(text);
    return ok;
}

static int put_patterns(tb_buf *b, const char *what,
                        const char *const *v, size_t n)
{
    int ok = tb_buf_printf(b, "%s ", what);
    for (size_t i = 0; ok && i < n; i++) {
        ok = tb_buf_puts(b, i ? ", `" : "`");
        /* A | would end the table cell. */
        for (const char *p = v[i]; ok && *p; p++)
            ok = *p == '|' ? tb_buf_puts(b, "\\|") : tb_buf_putc(b, *p);
        ok = ok && tb_buf_putc(b, '`');
    }
    return ok;
}

typedef struct module_sum {
    size_t n;
    double erank_sum, erank_min, erank_max, ratio_sum;
    uint64_t k_min, k_max;
} module_sum;

/* The per-module eRank/k table of the refined tensors. */
static int put_summary(tb_buf *b, const timber_result *r)
{
    module_sum s[TIMBER_MODULE_TYPES] = {{0}};
    size_t refined = 0, copied = 0, dropped = 0;
    for (size_t i = 0; i < timber_result_count(r); i++) {
        const timber_tensor_report *t = timber_result_tensor(r, i);
        if (t->action == TIMBER_ACTION_COPIED)
            copied++;
        if (t->action == TIMBER_ACTION_DROPPED)
            dropped++;
        if (t->action != TIMBER_ACTION_REFINED)
            continue;
        refined++;
        module_sum *m = &s[timber_module_type(t->name)];
        if (m->n == 0 || t->erank < m->erank_min)
            m->erank_min = t->erank;
        if (m->n == 0 || t->erank > m->erank_max)
            m->erank_max = t->erank;
        if (m->n == 0 || t->k < m->k_min)
            m->k_min = t->k;
        if (m->n == 0 || t->k > m->k_max)
            m->k_max = t->k;
        m->erank_sum += t->erank;
        m->ratio_sum += t->rank ? (double)t->k / (double)t->rank : 0.0;
        m->n++;
    }
    int ok = tb_buf_printf(
        b,
        "## Effective rank of the delta, per module type\n\n"
        "%zu weight matri%s refined, %zu tensor%s copied from Instruct "
        "unchanged, %zu Base-only tensor%s not written.  For each refined "
        "matrix of r = min(rows, cols), k = ceil(eRank) components of the "
        "delta were kept whole.\n\n",
        refined, refined == 1 ? "x" : "ces", copied, copied == 1 ? "" : "s",
        dropped, dropped == 1 ? "" : "s");
    if (!refined)
        return ok;
    ok = ok && tb_buf_puts(b, "| module | matrices | eRank mean | eRank "
                              "min | eRank max | k min | k max | k/r mean "
                              "|\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int m = 0; ok && m < TIMBER_MODULE_TYPES; m++) {
        if (!s[m].n)
            continue;
        ok = tb_buf_printf(b,
                           "| %s | %zu | %.2f | %.2f | %.2f | %llu | %llu | "
                           "%.4f |\n",
                           timber_module_type_name(m), s[m].n,
                           s[m].erank_sum / (double)s[m].n, s[m].erank_min,
                           s[m].erank_max, (unsigned long long)s[m].k_min,
                           (unsigned long long)s[m].k_max,
                           s[m].ratio_sum / (double)s[m].n);
    }
    return ok;
}

timber_status tb_card_write(const char *dir, const tb_card *c,
                            timber_error *err)
{
    const timber_refine_options *o = c->options;
    double gamma = timber_result_gamma(c->result, c->gamma);
    char gbuf[64];
    tb_format_double(gbuf, sizeof gbuf, gamma);
    char *inst = model_label(c->inst), *base = model_label(c->base);
    char *path = tb_path_join(dir, TB_CARD_NAME);
    tb_buf b = {0};
    timber_status st = TIMBER_OK;
    int ok = inst && base && path;
    /* Front matter: strings double-quoted (JSON escapes are valid YAML),
     * so a directory name can never break the YAML. */
    ok = ok && tb_buf_puts(&b, "---\nbase_model:\n- ") &&
         tb_buf_json_string(&b, inst) && tb_buf_puts(&b, "\n- ") &&
         tb_buf_json_string(&b, base) &&
         tb_buf_puts(&b, "\nbase_model_relation: merge\n"
                         "library_name: transformers\n") &&
         put_license(&b, c->inst) &&
         tb_buf_puts(&b, "tags:\n- timber\n---\n\n");
    ok = ok && tb_buf_printf(&b, "# %s refined with Timber (gamma %s)\n\n",
                             inst, gbuf);
    ok = ok && tb_buf_puts(&b, "This checkpoint is the Instruct model ") &&
         put_source(&b, inst, c->inst, c->inst_name) &&
         tb_buf_puts(&b, " refined with its Base model ") &&
         put_source(&b, base, c->base, c->base_name) &&
         tb_buf_puts(
             &b,
             " by timber, without any training.  The method is Timber "
             "(Wu et al., \"Timber: Training-free Instruct Model Refining "
             "with Base via Effective Rank\", "
             "[arXiv:2509.23595](https://arxiv.org/abs/2509.23595)): for "
             "every weight matrix the two models share, the delta D = "
             "W_instruct - W_base keeps its top k = ceil(eRank(D)) singular "
             "components and its tail is scaled by gamma,\n\n"
             "    W_out = W_instruct - (1 - gamma) * tail(D)\n\n"
             "computed in double precision and rounded to Instruct's "
             "dtypes.  Everything else (1-D tensors, tensors of another "
             "shape or only in Instruct) is Instruct's, byte for byte.\n\n");
    ok = ok && tb_buf_printf(&b,
                             "| setting | value |\n|---|---|\n"
                             "| gamma | %s%s |\n| selection | ",
                             gbuf,
                             gamma == 0.0 ? " (Timber-L)" : "");
    if (o->ninclude)
        ok = ok && put_patterns(&b, "include", o->include, o->ninclude);
    if (o->ninclude && o->nexclude)
        ok = ok && tb_buf_puts(&b, "; ");
    if (o->nexclude)
        ok = ok && put_patterns(&b, "exclude", o->exclude, o->nexclude);
    if (!o->ninclude && !o->nexclude)
        ok = ok && tb_buf_puts(&b, "every weight matrix");
    ok = ok && tb_buf_printf(&b,
                             " |\n| timber version | %s |\n"
                             "| pair fingerprint | `%s` |\n\n",
                             timber_version(), c->fingerprint);
    if (o->command)
        ok = ok && tb_buf_printf(&b, "Made with:\n\n```sh\n%s\n```\n\n",
                                 o->command);
    else
        ok = ok && tb_buf_puts(&b, "Made by a program calling libtimber's "
                                   "timber_refine().\n\n");
    ok = ok && put_summary(&b, c->result);
    ok = ok && tb_buf_puts(
        &b, "\nThe card of the Instruct model is not copied here: it "
            "describes another model.  Its license, when it states one, is "
            "carried over above; read it for the terms and the intended "
            "use.\n");
    if (!ok || b.failed)
        st = tb_fail(err, TIMBER_ERR_NOMEM, "out of memory");
    else
        st = tb_write_file_atomic(path, b.data, b.len, err);
    free(b.data);
    free(path);
    free(inst);
    free(base);
    return st;
}
