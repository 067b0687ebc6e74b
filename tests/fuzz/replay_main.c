/*
 * Replays saved inputs through a fuzz target without libFuzzer, so the seed
 * corpus and every regression input run in ordinary (gcc, sanitizer) builds.
 *
 *   fuzz_NAME DIR_OR_FILE...
 *
 * Each argument is a file or a directory whose regular files (not
 * recursively, dot files skipped) are each passed whole to
 * LLVMFuzzerTestOneInput, in name order so a failure is reproducible. A
 * target that crashes aborts the run; otherwise exit status 0 means every
 * input ran. Missing directories are an error: an empty run proves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Runs one file through the target. Returns 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* An exact-size heap copy, so the sanitizers see reads past the end. */
    if ((buf = malloc(size > 0 ? (size_t)size : 1)) == NULL)
        goto out;
    if (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto out;
    fprintf(stderr, "replay %s (%ld bytes)\n", path, size);
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "%s: cannot read\n", path);
    free(buf);
    fclose(f);
    return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int skip_dot(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Runs every regular file of dir. Returns the number replayed, or -1. */
static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, skip_dot, by_name);
    int ran = 0, failed = 0;

    if (n < 0) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) < 0)
                failed = 1;
            else
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : ran;
}

int main(int argc, char **argv)
{
    char **paths = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*paths));
    int total = 0, status = 0;

    if (paths == NULL)
        return 1;
    /* Absolute paths first: a target's initializer may change directory. */
    for (int i = 1; i < argc; i++) {
        if ((paths[i] = realpath(argv[i], NULL)) == NULL) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            status = 1;
        }
    }
    if (status == 0 && LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc && status == 0; i++) {
        struct stat st;
        int n;

        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            n = replay_dir(paths[i]);
        else
            n = replay_file(paths[i]) < 0 ? -1 : 1;
        if (n < 0)
            status = 1;
        else
            total += n;
    }
    for (int i = 1; i < argc; i++)
        free(paths[i]);
    free(paths);
    fprintf(stderr, "replayed %d input(s)%s\n", total, status ? ", some could not be read" : "");
    return status;
}
