/*
 * Helpers shared by the fuzz targets: where to split an input in two, exact
 * heap copies (so the sanitizers see any read past what was "received") and
 * a check that aborts, which libFuzzer records as a crash with its input.
 */
#ifndef TLSGATE_FUZZ_UTIL_H
#define TLSGATE_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts with the failed condition when an invariant of a parser breaks. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*
 * A split point in [0, size] that depends on the input, so the fuzzer can
 * steer it (the last bytes move it) while the same input always splits the
 * same way. salt gives a second, different point from the same input.
 */
static inline size_t fuzz_cut(const uint8_t *data, size_t size, unsigned salt)
{
    uint32_t h = 2166136261u ^ salt; /* FNV-1a over the last 4 bytes and the size */

    for (size_t i = size > 4 ? size - 4 : 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    h = (h ^ (uint32_t)size) * 16777619u;
    return size == 0 ? 0 : h % (size + 1);
}

/* An exact-size malloc'd copy of data[0..n) (1 byte allocated for n == 0). */
static inline uint8_t *fuzz_copy(const uint8_t *data, size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);

    if (p == NULL)
        abort();
    if (n > 0)
        memcpy(p, data, n);
    return p;
}

#endif
