/*
 * replay.c — runs a fuzz target without libFuzzer: every file named on
 * the command line, and every regular file of every directory named
 * (sorted by name), is passed once to LLVMFuzzerTestOneInput.  Linked with
 * each fuzz_<target>.c into fuzz_replay_<target>, so the seed corpus and
 * the inputs that once crashed (tests/fuzz/regressions/<target>/) are
 * replayed as ordinary ctests in the gcc and sanitizer builds.  A target
 * reports a failure by aborting (the test fails); the name of the input
 * being run is printed before it runs.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *g = realloc(buf, cap *= 2);
            if (!g) {
                free(buf);
                buf = NULL;
            }
            buf = g;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return -1;
    }
    printf("replay %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    size_t total = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            total++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) {
            perror(argv[i]);
            failed = 1;
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue; /* ., .., .gitkeep */
            char **g = realloc(names, (n + 1) * sizeof *names);
            if (!g)
                break;
            names = g;
            size_t l = strlen(argv[i]) + strlen(de->d_name) + 2;
            names[n] = malloc(l);
            if (!names[n])
                break;
            snprintf(names[n], l, "%s/%s", argv[i], de->d_name);
            n++;
        }
        closedir(d);
        if (n > 1)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t k = 0; k < n; k++) {
            if (stat(names[k], &sb) == 0 && S_ISREG(sb.st_mode)) {
                failed |= run_file(names[k]) != 0;
                total++;
            }
            free(names[k]);
        }
        free(names);
    }
    printf("%zu inputs replayed%s\n", total, failed ? ", some unreadable" : "");
    return failed;
}
