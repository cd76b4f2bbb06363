/*
 * test_parts.c — parts.c: the split (deterministic, every item once,
 * largest first to the least loaded part, N > items), the entry codec of
 * journals and completion records (exact doubles, an unfinished last
 * line, another run's journal, damage, another part's record), the
 * manifest (the first creates it, an agreeing one adopts its run id, a
 * disagreeing one is refused naming what differs), and the in-place
 * writer the parts share (two writers of one file, each its own tensor).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "parts.h"
#include "safetensors.h"
#include "testutil.h"
#include "util.h"

/* A plan of n copied tensors of the given byte sizes (the split only
 * reads action, sizes and shapes). */
typedef struct fake_plan {
    tb_plan plan;
    tb_plan_item items[64];
    timber_tensor_info info[64];
} fake_plan;

static void make_plan(fake_plan *f, const uint64_t *bytes, size_t n)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        f->info[i].nbytes = bytes[i];
        f->items[i].instruct = &f->info[i];
        f->items[i].action = TIMBER_ACTION_COPIED;
    }
    f->plan.items = f->items;
    f->plan.n = f->plan.ninstruct = n;
}

static void test_assign(void)
{
    timber_error err;
    uint64_t bytes[10] = {5, 9, 1, 7, 7, 3, 2, 8, 6, 4};
    fake_plan f;
    make_plan(&f, bytes, 10);
    uint32_t a[10], b[10];
    CHECK_OK("assign", tb_parts_assign(&f.plan, 1, 3, a, &err), &err);
    CHECK_OK("assign again", tb_parts_assign(&f.plan, 1, 3, b, &err), &err);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* LPT by hand, largest first (ties: lower index): 9 -> part 0,
     * 8 -> 1, 7 (#3) -> 2, 7 (#4) -> 2 (least: 7), 6 -> 1, 5 -> 0, then
     * all at 14: 4 -> 0 (lowest), 3 -> 1, 2 -> 2, 1 -> 2. */
    uint32_t want[10] = {0, 0, 2, 2, 2, 1, 2, 1, 1, 0};
    CHECKF(memcmp(a, want, sizeof a) == 0, "%u %u %u %u %u %u %u %u %u %u",
           a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
    uint64_t load[3] = {0};
    for (int i = 0; i < 10; i++)
        load[a[i]] += bytes[i] * 2; /* read once, written once */
    CHECK(load[0] == 36 && load[1] == 34 && load[2] == 34);

    /* More parts than items: each item alone, the rest empty. */
    uint32_t c[10];
    CHECK_OK("N > items", tb_parts_assign(&f.plan, 1, 25, c, &err), &err);
    int used[25] = {0};
    for (int i = 0; i < 10; i++)
        CHECK(c[i] < 25 && !used[c[i]]++);
    CHECK_ERROR("N = 0", tb_parts_assign(&f.plan, 1, 0, c, &err), &err,
                TIMBER_ERR_OPTION, "--parts", "0");
}

static void test_codec(const char *dir)
{
    timber_error err;
    const char *log = tu_path(dir, "0-of-2.log");
    tb_part_entry e[3] = {
        {.item = 4, .crc = {0xdeadbeef, 7}, .erank = 1.0 / 3.0, .k = 2,
         .tail = 0.1, .from_cache = 1},
        {.item = 0, .crc = {1, 2}, .erank = 5e-324, .k = 0, .tail = 0},
        {.item = 9, .crc = {0xffffffff, 0}, .erank = 1e300, .k = 99,
         .tail = 1.0 - 1e-16},
    };
    for (int i = 0; i < 3; i++)
        CHECK_OK("append", tb_journal_append(log, "abc", &e[i], 2, &err),
                 &err);
    tb_part_entry *got = NULL;
    size_t n = 0;
    CHECK_OK("read", tb_journal_read(log, "abc", 2, 10, &got, &n, &err),
             &err);
    CHECK(n == 3);
    for (size_t i = 0; i < n && i < 3; i++)
        CHECK(got[i].item == e[i].item && got[i].crc[0] == e[i].crc[0] &&
              got[i].crc[1] == e[i].crc[1] && got[i].erank == e[i].erank &&
              got[i].k == e[i].k && got[i].tail == e[i].tail &&
              got[i].from_cache == e[i].from_cache);
    free(got);
    /* Another run's journal: nothing of it is used. */
    CHECK_OK("other run", tb_journal_read(log, "xyz", 2, 10, &got, &n, &err),
             &err);
    CHECK(n == 0);
    free(got);
    /* An item beyond the plan ends the entries there. */
    CHECK_OK("fewer items", tb_journal_read(log, "abc", 2, 5, &got, &n, &err),
             &err);
    CHECK(n == 2);
    free(got);
    /* An unfinished last line (a kill mid-write) is dropped. */
    size_t len;
    unsigned char *text = tu_read_file(log, &len);
    CHECK(text && tu_write_file(log, text, len - 3) == 0);
    free(text);
    CHECK_OK("cut", tb_journal_read(log, "abc", 2, 10, &got, &n, &err), &err);
    CHECK(n == 2);
    free(got);
    /* No journal: no entries. */
    CHECK_OK("none", tb_journal_read(tu_path(dir, "none.log"), "abc", 2, 10,
                                     &got, &n, &err),
             &err);
    CHECK(n == 0 && got == NULL);

    /* Completion records. */
    const char *done = tu_path(dir, "1-of-2.done");
    int found;
    CHECK_OK("write record",
             tb_done_write(done, "abc", 1, 2, e, 3, 2, &err), &err);
    CHECK_OK("read record", tb_done_read(done, "abc", 1, 2, 2, 10, &got, &n,
                                         &found, &err),
             &err);
    CHECK(found && n == 3 && got && got[2].erank == 1e300);
    free(got);
    CHECK_ERROR("another run",
                tb_done_read(done, "abd", 1, 2, 2, 10, &got, &n, &found,
                             &err),
                &err, TIMBER_ERR_INVALID, "1-of-2.done", "another run");
    CHECK_ERROR("another part",
                tb_done_read(done, "abc", 0, 2, 2, 10, &got, &n, &found,
                             &err),
                &err, TIMBER_ERR_INVALID, "another part");
    CHECK_OK("missing", tb_done_read(tu_path(dir, "0-of-2.done"), "abc", 0,
                                     2, 2, 10, &got, &n, &found, &err),
             &err);
    CHECK(!found && n == 0);
    /* One digit of one checksum changed, or the last entry cut off. */
    text = tu_read_file(done, &len);
    char *at = text ? strstr((char *)text, "deadbeef") : NULL;
    CHECK(at != NULL);
    if (at) {
        at[0] = 'c';
        CHECK(tu_write_file(done, text, len) == 0);
        CHECK_ERROR("flipped", tb_done_read(done, "abc", 1, 2, 2, 10, &got,
                                            &n, &found, &err),
                    &err, TIMBER_ERR_INVALID, "damaged");
        at[0] = 'd';
        char *last = strstr((char *)text, "t 9 ");
        CHECK(last && tu_write_file(done, text,
                                    (size_t)(last - (char *)text)) == 0);
        CHECK_ERROR("cut", tb_done_read(done, "abc", 1, 2, 2, 10, &got, &n,
                                        &found, &err),
                    &err, TIMBER_ERR_INVALID, "damaged");
    }
    free(text);
}

static void fill_manifest(tb_manifest *m, double gamma, size_t nparts)
{
    memset(m, 0, sizeof *m);
    strcpy(m->fingerprint, "0123456789abcdef");
    strcpy(m->version, "0.1.0");
    m->nparts = nparts;
    m->gammas = malloc(sizeof(double));
    m->gammas[0] = gamma;
    m->ngammas = 1;
    m->include = calloc(1, sizeof(char *));
    m->exclude = calloc(1, sizeof(char *));
    m->base_dir = tb_strdup("/abs/base");
    m->instruct_dir = tb_strdup("/abs/inst");
    m->base_arg = tb_strdup("base");
    m->instruct_arg = tb_strdup("inst");
    m->command = tb_strdup("timber base inst out");
}

static void test_manifest(const char *dir)
{
    timber_error err;
    tb_manifest a, b, c, r;
    fill_manifest(&a, 0.2, 3);
    CHECK_OK("first", tb_manifest_settle(dir, &a, &err), &err);
    fill_manifest(&b, 0.2, 3);
    free(b.base_arg);
    b.base_arg = tb_strdup("./base"); /* another spelling: the same run */
    CHECK_OK("agreeing", tb_manifest_settle(dir, &b, &err), &err);
    CHECK(strcmp(a.run_id, b.run_id) == 0 && strlen(a.run_id) == 32);
    fill_manifest(&c, 0.5, 3);
    CHECK_ERROR("other gamma", tb_manifest_settle(dir, &c, &err), &err,
                TIMBER_ERR_INVALID, "run.json",
                "started with --gamma 0.2, this part has 0.5");
    tb_manifest_clear(&c);
    fill_manifest(&c, 0.2, 4);
    CHECK_ERROR("other N", tb_manifest_settle(dir, &c, &err), &err,
                TIMBER_ERR_INVALID, "started as 3 parts, this is one of 4");
    tb_manifest_clear(&c);
    fill_manifest(&c, 0.2, 3);
    strcpy(c.fingerprint, "fedcba9876543210");
    CHECK_ERROR("other inputs", tb_manifest_settle(dir, &c, &err), &err,
                TIMBER_ERR_INVALID, "fingerprint 0123456789abcdef");
    CHECK_OK("read", tb_manifest_read(dir, &r, &err), &err);
    CHECK(strcmp(r.run_id, a.run_id) == 0 && r.nparts == 3 &&
          r.ngammas == 1 && r.gammas[0] == 0.2 &&
          strcmp(r.base_arg, "base") == 0 &&
          strcmp(r.instruct_dir, "/abs/inst") == 0 &&
          strcmp(r.command, "timber base inst out") == 0);
    /* Nothing but run.json is left (the temporaries are gone). */
    CHECK(tu_count_entries(dir) == 1);
    tb_manifest_clear(&a);
    tb_manifest_clear(&b);
    tb_manifest_clear(&c);
    tb_manifest_clear(&r);
}

/* Two in-place writers of one file, as two parts: each puts its own
 * tensor; the file is complete and reads back as both. */
static void test_in_place(const char *dir)
{
    timber_error err;
    const char *path = tu_path(dir, "shared.safetensors");
    uint64_t s4[] = {4};
    tb_tensor_spec t[] = {{"a", TIMBER_DT_F32, 1, s4},
                          {"b", TIMBER_DT_F32, 1, s4}};
    tb_writer *w1 = NULL, *w2 = NULL;
    CHECK_OK("w1", tb_writer_open_in_place(path, NULL, 0, t, 2, &w1, &err),
             &err);
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    CHECK_OK("put a", tb_writer_put(w1, 0, a, sizeof a, &err), &err);
    CHECK_OK("w2", tb_writer_open_in_place(path, NULL, 0, t, 2, &w2, &err),
             &err);
    CHECK_OK("put b", tb_writer_put(w2, 1, b, sizeof b, &err), &err);
    uint32_t crc;
    CHECK_OK("crc", tb_parts_crc(path, tb_writer_tensor_offset(w2, 0), 16,
                                 &crc, &err),
             &err);
    CHECK(crc != 0);
    /* w1 knows only its own tensor: incomplete until b is counted. */
    CHECK(tb_writer_commit(w1, &err) == TIMBER_ERR_INVALID);
    tb_writer_mark_written(w1, 1);
    CHECK_OK("commit", tb_writer_commit(w1, &err), &err);
    tb_writer_free(w1);
    tb_writer_free(w2); /* never removes the file */
    tb_shard *sh = NULL;
    CHECK_OK("open", tb_shard_open(path, &sh, &err), &err);
    tb_shard_free(sh);
    size_t len;
    unsigned char *text = tu_read_file(path, &len);
    CHECK(text && len >= 32 && memcmp(text + len - 32, a, 16) == 0 &&
          memcmp(text + len - 16, b, 16) == 0);
    free(text);
    /* A file of another size is not ours. */
    uint64_t s8[] = {8};
    tb_tensor_spec big[] = {{"a", TIMBER_DT_F32, 1, s8}};
    CHECK_ERROR("other size",
                tb_writer_open_in_place(path, NULL, 0, big, 1, &w1, &err),
                &err, TIMBER_ERR_INVALID, "shared.safetensors", "not from "
                                                                "this run");
}

int main(void)
{
    const char *dir = tu_tempdir("parts");
    char sub[4096];
    test_assign();
    snprintf(sub, sizeof sub, "%s/codec", dir);
    mkdir(sub, 0777);
    test_codec(sub);
    snprintf(sub, sizeof sub, "%s/manifest", dir);
    mkdir(sub, 0777);
    test_manifest(sub);
    test_in_place(dir);
    return tu_report();
}
