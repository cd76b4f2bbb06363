/*
 * test_outdir.c — atomic publication of an output directory (src/outdir.c):
 *   - tb_outdir_check's refusals: unusable names, an existing OUT without
 *     force (a dangling symbolic link included); OUT that is, contains or
 *     lies inside an input (tb_places_check, as the run calls it); a
 *     missing parent (tb_outdir_begin);
 *   - begin / publish: the temporary lies beside OUT (same parent) and is
 *     gone once OUT is in place; with force an existing OUT is exchanged
 *     and the old one removed by tb_outdir_end; without publish nothing is
 *     left; an OUT that appears after the check is never overwritten;
 *   - the temporaries of killed runs are swept by the next begin, those of
 *     live runs (their lock held) are not (made by forked children, so
 *     the test does not depend on how temporaries are named);
 *   - tb_copy_file (through a temporary, replacing: copying again gives
 *     the same file and leaves no temporary) and tb_remove_tree (not following
 *     symbolic links).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outdir.h"
#include "pathid.h"
#include "testutil.h"

static char root[2048];

static const char *at(const char *name)
{
    static char bufs[16][4096];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s/%s", root, name);
    return b;
}

static int exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static void write_text(const char *path, const char *text)
{
    CHECK(tu_write_file(path, text, strlen(text)) == 0);
}

static int has_text(const char *path, const char *text)
{
    size_t len = 0;
    unsigned char *b = tu_read_file(path, &len);
    int ok = b && len == strlen(text) && memcmp(b, text, len) == 0;
    free(b);
    return ok;
}

/* OUT against the inputs, as the run checks it (pathid.h). */
static timber_status places(const char *out, const char *b, const char *i,
                            timber_error *err)
{
    tb_place pl[3] = {{b, TB_ROLE_INPUT, "the input"},
                      {i, TB_ROLE_INPUT, "the input"},
                      {out, TB_ROLE_OUTDIR, "the output directory"}};
    return tb_places_check(pl, 3, err);
}

static void test_check(void)
{
    timber_error err;
    mkdir(at("in-b"), 0777);
    mkdir(at("in-i"), 0777);
    char b[4096], i[4096];
    snprintf(b, sizeof b, "%s", at("in-b"));
    snprintf(i, sizeof i, "%s", at("in-i"));
    CHECK_OK("fresh OUT", tb_outdir_check(at("out"), 0, &err), &err);
    CHECK_OK("fresh OUT, places", places(at("out"), b, i, &err), &err);
    const char *bad[] = {".", "..", "x/.."};
    for (size_t k = 0; k < 3; k++)
        CHECK_ERROR("bad name", tb_outdir_check(at(bad[k]), 0, &err),
                    &err, TIMBER_ERR_INVALID, "not a usable output");
    CHECK_ERROR("OUT is an input", places(b, b, i, &err), &err,
                TIMBER_ERR_INVALID, "is the input", "refusing");
    CHECK_ERROR("OUT inside an input", places(at("in-i/sub"), b, i, &err),
                &err, TIMBER_ERR_INVALID, "lies inside the input", i);
    CHECK_ERROR("OUT contains an input", places(root, b, i, &err), &err,
                TIMBER_ERR_INVALID, "lies inside the output directory", b);
    /* the same through a symbolic link to the input */
    CHECK(symlink(i, at("link-to-i")) == 0);
    CHECK_ERROR("OUT under a link into an input",
                places(at("link-to-i/sub"), b, i, &err), &err,
                TIMBER_ERR_INVALID, "refusing");
    /* a sibling whose name merely starts like an input's is fine */
    CHECK_OK("prefix sibling", places(at("in-i2"), b, i, &err), &err);
    tb_outdir nd;
    CHECK_ERROR("missing parent", tb_outdir_begin(&nd, at("no/such/out"), 0,
                                                  &err),
                &err, TIMBER_ERR_IO, "cannot create its temporary directory");
    tb_outdir_end(&nd);
    mkdir(at("there"), 0777);
    CHECK_ERROR("exists", tb_outdir_check(at("there"), 0, &err), &err,
                TIMBER_ERR_EXISTS, "already exists", "--force");
    CHECK_OK("exists, force", tb_outdir_check(at("there"), 1, &err), &err);
    CHECK(symlink("/nonexistent/target", at("dangling")) == 0);
    CHECK_ERROR("dangling link", tb_outdir_check(at("dangling"), 0, &err),
                &err, TIMBER_ERR_EXISTS, "already exists");
}

static void test_publish(void)
{
    timber_error err;
    tb_outdir d;
    char out[4096];
    snprintf(out, sizeof out, "%s", at("pub"));
    int before = tu_count_entries(root);
    if (!CHECK_OK("begin", tb_outdir_begin(&d, out, 0, &err), &err))
        return;
    /* beside OUT: same parent */
    char *slash = strrchr(d.tmp, '/');
    CHECK(slash && (size_t)(slash - d.tmp) == strlen(root) &&
          strncmp(d.tmp, root, strlen(root)) == 0);
    CHECK(!exists(out) && tu_count_entries(root) == before + 1);
    char f[4096];
    snprintf(f, sizeof f, "%s/file", d.tmp);
    write_text(f, "new");
    CHECK_OK("publish", tb_outdir_publish(&d, &err), &err);
    tb_outdir_end(&d);
    CHECK(has_text(at("pub/file"), "new"));
    CHECK(tu_count_entries(root) == before + 1); /* OUT only */

    /* force: the old OUT is exchanged, then removed */
    if (!CHECK_OK("begin force", tb_outdir_begin(&d, out, 1, &err), &err))
        return;
    snprintf(f, sizeof f, "%s/file", d.tmp);
    write_text(f, "newer");
    CHECK_OK("publish force", tb_outdir_publish(&d, &err), &err);
    CHECK(has_text(at("pub/file"), "newer"));
    CHECK(d.tmp && has_text(tu_path(d.tmp, "file"), "new")); /* the old */
    tb_outdir_end(&d);
    CHECK(tu_count_entries(root) == before + 1);

    /* no publish: nothing left */
    if (CHECK_OK("begin abandon", tb_outdir_begin(&d, at("never"), 0, &err),
                 &err))
        tb_outdir_end(&d);
    CHECK(!exists(at("never")) && tu_count_entries(root) == before + 1);
    tb_outdir_end(&d); /* on an ended d: a no-op */

    /* an OUT created after the check is not overwritten without force */
    if (CHECK_OK("begin race", tb_outdir_begin(&d, at("race"), 0, &err),
                 &err)) {
        mkdir(at("race"), 0777);
        write_text(at("race/theirs"), "theirs");
        CHECK_ERROR("race", tb_outdir_publish(&d, &err), &err, TIMBER_ERR_IO,
                    "cannot rename");
        tb_outdir_end(&d);
    }
    CHECK(has_text(at("race/theirs"), "theirs"));
    CHECK(tu_count_entries(root) == before + 2);
}

/* A child that begins a run on OUT, says so on its ready pipe, and then
 * exits (as if killed: no end) or, with stay, first waits for *hold_w to
 * be closed (a live run). */
static pid_t child_run(const char *out, int stay, int *hold_w)
{
    int hold[2], ready[2];
    CHECK(pipe(hold) == 0 && pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(hold[1]);
        close(ready[0]);
        tb_outdir d;
        timber_error err;
        if (tb_outdir_begin(&d, out, 0, &err) != TIMBER_OK)
            _exit(2);
        write_text(tu_path(d.tmp, "partial"), "x");
        char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        if (stay)
            while (read(hold[0], &c, 1) < 0 && errno == EINTR) {
            }
        _exit(0);
    }
    close(hold[0]);
    close(ready[1]);
    char c;
    while (read(ready[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(ready[0]);
    *hold_w = hold[1];
    return pid;
}

static void test_sweep(void)
{
    timber_error err;
    char out[4096];
    snprintf(out, sizeof out, "%s", at("sweep"));
    int before = tu_count_entries(root);
    int w_live, w_dead, status;
    pid_t live = child_run(out, 1, &w_live);
    pid_t dead = child_run(out, 0, &w_dead);
    waitpid(dead, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(w_dead);
    CHECK(tu_count_entries(root) == before + 2); /* both temporaries */
    tb_outdir d;
    if (CHECK_OK("begin sweeps", tb_outdir_begin(&d, out, 0, &err), &err)) {
        /* the dead run's temporary is gone, the live one's kept, ours new */
        CHECK(tu_count_entries(root) == before + 2);
        tb_outdir_end(&d);
    }
    CHECK(tu_count_entries(root) == before + 1);
    close(w_live);
    waitpid(live, &status, 0);
    /* the live run has died too now: the next begin sweeps it */
    if (CHECK_OK("begin sweeps 2", tb_outdir_begin(&d, out, 0, &err), &err))
        tb_outdir_end(&d);
    CHECK(tu_count_entries(root) == before);
}

static void test_files(void)
{
    timber_error err;
    write_text(at("src.txt"), "payload\n");
    CHECK_OK("copy", tb_copy_file(at("src.txt"), at("dst.txt"), &err), &err);
    CHECK(has_text(at("dst.txt"), "payload\n"));
    mkdir(at("copies"), 0777);
    write_text(at("copies/dst.txt"), "an earlier, cut-short cop");
    CHECK_OK("copy onto a file",
             tb_copy_file(at("src.txt"), at("copies/dst.txt"), &err), &err);
    CHECK(has_text(at("copies/dst.txt"), "payload\n"));
    CHECK(tu_count_entries(at("copies")) == 1); /* no temporary left */
    CHECK_ERROR("copy from nothing",
                tb_copy_file(at("nothing"), at("dst2.txt"), &err), &err,
                TIMBER_ERR_IO, "nothing", "cannot open");
    /* remove_tree stops at symbolic links */
    mkdir(at("keep"), 0777);
    write_text(at("keep/precious"), "p");
    mkdir(at("tree"), 0777);
    mkdir(at("tree/sub"), 0777);
    write_text(at("tree/sub/f"), "f");
    CHECK(symlink(at("keep"), at("tree/sub/link")) == 0);
    tb_remove_tree(at("tree"));
    CHECK(!exists(at("tree")) && has_text(at("keep/precious"), "p"));
}

int main(void)
{
    snprintf(root, sizeof root, "%s", tu_tempdir("outdir"));
    test_check();
    /* publication in a directory of its own, to count its entries */
    strncat(root, "/pub-area", sizeof root - strlen(root) - 1);
    mkdir(root, 0777);
    test_publish();
    test_sweep();
    test_files();
    return tu_report();
}
