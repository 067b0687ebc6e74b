/* Loading, validating and freeing configuration snapshots. */
#ifndef TLSGATE_CONFIG_H
#define TLSGATE_CONFIG_H

#include "config-t.h"

/* Error lines collected while loading, each "FILE:LINE:COL: key.path: message". */
struct config_errors {
    char **lines;
    size_t n;
};

/*
 * Reads, validates and builds the configuration in path. Returns a snapshot
 * holding one reference, or NULL with every problem found appended to errs
 * (the loader does not stop at the first error). Release with config_unref().
 * Never logs: the caller decides where errors go (--check prints them, a
 * reload logs them).
 */
struct config *config_load(const char *path, struct config_errors *errs);

/* Takes one more reference on c and returns it. */
struct config *config_ref(struct config *c);

/* Drops one reference; frees the snapshot when it was the last. NULL is ignored. */
void config_unref(struct config *c);

/* The backend named name, or NULL. */
struct backend *config_find_backend(const struct config *c, const char *name);

/* Frees the lines held by errs and empties it. */
void config_errors_free(struct config_errors *errs);

/* Appends one formatted line to errs. Returns 0 or -1 (out of memory). */
int config_errors_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
