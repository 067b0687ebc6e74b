/*
 * JA4 client fingerprint (include/ja4.h, rules in docs/ja4.md). Three parts:
 *
 *   a: t + version + d/i + cipher count + extension count + ALPN edges
 *   b: sha256 of the sorted cipher suites, "%04x" joined with ',', 12 hex
 *   c: sha256 of the sorted extensions without server_name and ALPN, then
 *      '_' and the signature algorithms in offered order, 12 hex
 *
 * GREASE values (RFC 8701) are dropped everywhere: clients pick them at
 * random, and a fingerprint must not change from one connection to the next.
 * The lists are streamed into the digest, never joined into a string, so a
 * hello with thousands of entries costs no memory here.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ja4.h"

#define JA4_HASH_HEX    12 /* hex digits kept of each sha256 */
#define EXT_SERVER_NAME 0x0000
#define EXT_ALPN        0x0010

static const char hexdigits[] = "0123456789abcdef";

/* SHA-256, fetched once: OpenSSL 3's implicit fetch on every init costs
 * several microseconds, more than the rest of a hello's parse. */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
/* Kept for the life of the process (reachable, so no leak report; freeing
 * it at exit would run after OpenSSL's own atexit cleanup). NULL when the
 * fetch failed: EVP_sha256() then. */
static EVP_MD *sha256_md;

static void ja4_fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Bytes on their way into the digest: a few large updates, not one per item. */
struct ja4_sink {
    EVP_MD_CTX *ctx; /* the digest being fed */
    char buf[512];   /* pending bytes */
    size_t n;        /* bytes pending in buf */
    bool ok;         /* no EVP call failed */
};

static void ja4_flush(struct ja4_sink *k)
{
    if (k->n > 0 && !EVP_DigestUpdate(k->ctx, k->buf, k->n))
        k->ok = false;
    k->n = 0;
}

static void ja4_put(struct ja4_sink *k, const char *p, size_t n)
{
    if (k->n + n > sizeof(k->buf))
        ja4_flush(k);
    memcpy(k->buf + k->n, p, n);
    k->n += n;
}

/* RFC 8701 GREASE: 0x0a0a, 0x1a1a, ... 0xfafa (same rule as clienthello_is_grease). */
static bool ja4_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static int ja4_cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

    return (x > y) - (x < y);
}

/* Insertion sort for the lists real clients send (a few dozen entries: glibc's
 * qsort costs more than the whole parse there), qsort beyond. */
static void ja4_sort(uint16_t *v, size_t n)
{
    if (n > 64) {
        qsort(v, n, sizeof(*v), ja4_cmp_u16);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint16_t x = v[i];
        size_t j = i;

        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* Non-GREASE entries of v, capped at 99 as the two digits allow. */
static unsigned ja4_count(const uint16_t *v, size_t n)
{
    unsigned c = 0;

    for (size_t i = 0; i < n && c < 99; i++)
        c += !ja4_grease(v[i]);
    return c;
}

static bool ja4_has(const uint16_t *v, size_t n, uint16_t type)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == type)
            return true;
    return false;
}

/*
 * The highest non-GREASE entry of supported_versions, else the hello's
 * legacy version (the record header's version never counts), as JA4's two
 * characters; "00" for anything JA4 does not name.
 */
static const char *ja4_version(const struct ja4_hello *h)
{
    uint16_t best = 0;
    bool found = false;

    for (size_t i = 0; i < h->nversions; i++)
        if (!ja4_grease(h->versions[i]) && (!found || h->versions[i] > best)) {
            best = h->versions[i];
            found = true;
        }
    if (!found)
        best = h->legacy_version;
    switch (best) {
    case 0x0304:
        return "13";
    case 0x0303:
        return "12";
    case 0x0302:
        return "11";
    case 0x0301:
        return "10";
    case 0x0300:
        return "s3";
    case 0x0002:
        return "s2";
    case 0xfeff:
        return "d1";
    case 0xfefd:
        return "d2";
    case 0xfefc:
        return "d3";
    default:
        return "00";
    }
}

/* ASCII letter or digit: the bytes JA4 prints as they are. */
static bool ja4_alnum(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/*
 * First and last character of the first ALPN protocol ("h2", "h1" for
 * http/1.1, the one character twice when it is one byte long); "00" without
 * one. When either end byte is not alphanumeric, the first and last
 * characters of the protocol's hex form instead: high nibble of the first
 * byte, low nibble of the last.
 */
static void ja4_alpn(const struct ja4_hello *h, char out[2])
{
    uint8_t first, last;

    if (h->alpn_first == NULL || h->alpn_first_len == 0) {
        out[0] = out[1] = '0';
        return;
    }
    first = h->alpn_first[0];
    last = h->alpn_first[h->alpn_first_len - 1];
    if (ja4_alnum(first) && ja4_alnum(last)) {
        out[0] = (char)first;
        out[1] = (char)last;
    } else {
        out[0] = hexdigits[first >> 4];
        out[1] = hexdigits[last & 15];
    }
}

/*
 * Feeds v's entries (GREASE and, with no_sni_alpn, server_name and ALPN left
 * out) to the digest as "%04x" joined by ','; the first one is preceded by
 * lead when lead is not 0. Returns how many were fed.
 */
static size_t ja4_feed(struct ja4_sink *k, const uint16_t *v, size_t n, bool no_sni_alpn, char lead)
{
    size_t fed = 0;

    for (size_t i = 0; i < n; i++) {
        char item[5];
        uint16_t x = v[i];

        if (ja4_grease(x) || (no_sni_alpn && (x == EXT_SERVER_NAME || x == EXT_ALPN)))
            continue;
        item[0] = fed > 0 ? ',' : lead;
        item[1] = hexdigits[x >> 12];
        item[2] = hexdigits[(x >> 8) & 15];
        item[3] = hexdigits[(x >> 4) & 15];
        item[4] = hexdigits[x & 15];
        if (item[0] == 0)
            ja4_put(k, item + 1, 4);
        else
            ja4_put(k, item, 5);
        fed++;
    }
    return fed;
}

/*
 * Part b (list = ciphers, sig = NULL) or c (list = extensions, sig =
 * signature algorithms) into out (JA4_HASH_HEX characters). A list empty
 * after filtering gives twelve zeros, as the spec asks, rather than the hash
 * of nothing. Returns 0 or -1.
 */
static int ja4_hash(EVP_MD_CTX *ctx, const uint16_t *list, size_t n, bool is_ext,
                    const uint16_t *sig, size_t nsig, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    struct ja4_sink k = {.ctx = ctx, .n = 0, .ok = true};

    if (!EVP_DigestInit_ex(ctx, sha256_md != NULL ? sha256_md : EVP_sha256(), NULL))
        return -1;
    if (ja4_feed(&k, list, n, is_ext, 0) == 0) {
        memset(out, '0', JA4_HASH_HEX);
        return 0;
    }
    /* No '_' at all when there are no (non-GREASE) signature algorithms. */
    if (sig != NULL)
        ja4_feed(&k, sig, nsig, false, '_');
    ja4_flush(&k);
    if (!k.ok || !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen * 2 < JA4_HASH_HEX)
        return -1;
    for (size_t i = 0; i < JA4_HASH_HEX / 2; i++) {
        out[2 * i] = hexdigits[md[i] >> 4];
        out[2 * i + 1] = hexdigits[md[i] & 15];
    }
    return 0;
}

int ja4_fingerprint(struct ja4_hello *h, char *out)
{
    char alpn[2], b[JA4_HASH_HEX], c[JA4_HASH_HEX];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;

    out[0] = '\0';
    if (ctx == NULL)
        return -1;
    pthread_once(&sha256_once, ja4_fetch_sha256);
    ja4_sort(h->ciphers, h->nciphers);
    ja4_sort(h->extensions, h->nextensions);
    ja4_alpn(h, alpn);
    if (ja4_hash(ctx, h->ciphers, h->nciphers, false, NULL, 0, b) == 0 &&
        ja4_hash(ctx, h->extensions, h->nextensions, true, h->sigalgs, h->nsigalgs, c) == 0) {
        snprintf(out, JA4_LEN + 1, "t%s%c%02u%02u%c%c_%.12s_%.12s", ja4_version(h),
                 ja4_has(h->extensions, h->nextensions, EXT_SERVER_NAME) ? 'd' : 'i',
                 ja4_count(h->ciphers, h->nciphers), ja4_count(h->extensions, h->nextensions),
                 alpn[0], alpn[1], b, c);
        rc = 0;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}
