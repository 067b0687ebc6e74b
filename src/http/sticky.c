/*
 * Cookie stickiness: a cookie value is HMAC-SHA256(key, backend NUL server)
 * cut to 16 bytes, so only the gateway can make one, and finding the server
 * it names means trying every server of the backend in constant time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "sticky.h"

#define STICKY_MAC_LEN     (STICKY_VALUE_LEN / 2) /* MAC bytes kept */
#define STICKY_KEYFILE_MIN 16
#define STICKY_KEYFILE_MAX 4096

/* The process-wide random key, made once (sticky_key_load with no file). */
static pthread_once_t sticky_random_once = PTHREAD_ONCE_INIT;
static uint8_t sticky_random_key[STICKY_KEY_LEN];
static bool sticky_random_ok;

/* HMAC, fetched once: fetching per request would take a lock in libcrypto. */
static pthread_once_t sticky_mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *sticky_mac;

static void sticky_random_init(void)
{
    sticky_random_ok = RAND_bytes(sticky_random_key, sizeof(sticky_random_key)) == 1;
}

static void sticky_mac_init(void)
{
    sticky_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* Fills why (when given) and returns -1. */
static int __attribute__((format(printf, 3, 4)))
sticky_fail(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Reads the whole of path into buf (at most cap bytes; *n one more than cap
 * tells the file is longer). Returns 0, or -1 with errno set.
 */
static int sticky_read_file(const char *path, uint8_t *buf, size_t cap, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int saved;
    ssize_t r;

    *n = 0;
    if (fd < 0)
        return -1;
    while (*n < cap) {
        r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
        if (r == 0)
            break;
        *n += (size_t)r;
    }
    close(fd);
    return 0;
}

int sticky_key_load(const char *path, uint8_t key[STICKY_KEY_LEN], char *why, size_t why_len)
{
    uint8_t buf[STICKY_KEYFILE_MAX + 1];
    unsigned int mdlen = 0;
    size_t n;
    int ok;

    if (path == NULL || path[0] == '\0') {
        pthread_once(&sticky_random_once, sticky_random_init);
        if (!sticky_random_ok)
            return sticky_fail(why, why_len, "cannot make a random cookie key");
        memcpy(key, sticky_random_key, STICKY_KEY_LEN);
        return 0;
    }
    if (sticky_read_file(path, buf, sizeof(buf), &n) < 0)
        return sticky_fail(why, why_len, "cannot read '%s': %s", path, strerror(errno));
    if (n < STICKY_KEYFILE_MIN || n > STICKY_KEYFILE_MAX) {
        OPENSSL_cleanse(buf, n);
        return sticky_fail(why, why_len, "'%s' is %s than %d bytes", path,
                           n < STICKY_KEYFILE_MIN ? "shorter" : "longer",
                           n < STICKY_KEYFILE_MIN ? STICKY_KEYFILE_MIN : STICKY_KEYFILE_MAX);
    }
    ok = EVP_Digest(buf, n, key, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == STICKY_KEY_LEN;
    OPENSSL_cleanse(buf, n);
    if (!ok)
        return sticky_fail(why, why_len, "cannot hash '%s'", path);
    return 0;
}

/*
 * A MAC context keyed with key that has absorbed "backend NUL": each server
 * then costs one dup and its name. Returns NULL when libcrypto fails; free
 * with EVP_MAC_CTX_free().
 */
static EVP_MAC_CTX *sticky_mac_begin(const uint8_t key[STICKY_KEY_LEN], const struct backend *b)
{
    const char *bname = b->name != NULL ? b->name : "";
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx;

    pthread_once(&sticky_mac_once, sticky_mac_init);
    if (sticky_mac == NULL || (ctx = EVP_MAC_CTX_new(sticky_mac)) == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, STICKY_KEY_LEN, params) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)bname, strlen(bname) + 1) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The truncated MAC of server s after sticky_mac_begin. Returns 0 or -1. */
static int sticky_mac_server(const EVP_MAC_CTX *base, const struct server *s,
                             uint8_t mac[STICKY_MAC_LEN])
{
    const char *sname = s->name != NULL ? s->name : "";
    unsigned char full[EVP_MAX_MD_SIZE];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(base);
    size_t len = 0;
    int ok;

    if (ctx == NULL)
        return -1;
    ok = EVP_MAC_update(ctx, (const unsigned char *)sname, strlen(sname)) == 1 &&
         EVP_MAC_final(ctx, full, &len, sizeof(full)) == 1 && len >= STICKY_MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return -1;
    memcpy(mac, full, STICKY_MAC_LEN);
    return 0;
}

/* Writes out as "" when libcrypto fails: the caller then sets no cookie. */
void sticky_value(const uint8_t key[STICKY_KEY_LEN], const struct backend *b,
                  const struct server *s, char out[STICKY_VALUE_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MAC_CTX *ctx = sticky_mac_begin(key, b);
    uint8_t mac[STICKY_MAC_LEN];
    int rc = ctx != NULL ? sticky_mac_server(ctx, s, mac) : -1;

    EVP_MAC_CTX_free(ctx);
    out[0] = '\0';
    if (rc < 0)
        return;
    for (size_t i = 0; i < STICKY_MAC_LEN; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[STICKY_VALUE_LEN] = '\0';
}

/* Lower-case hex digit value, or -1 (upper case is never written, so never valid). */
static int sticky_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Every server's MAC is computed and compared, match or not, so the time
 * taken tells nothing about which server (if any) the value names.
 */
struct server *sticky_lookup(const uint8_t key[STICKY_KEY_LEN], struct backend *b,
                             const char *value, size_t len)
{
    uint8_t want[STICKY_MAC_LEN], mac[STICKY_MAC_LEN];
    struct server *found = NULL;
    EVP_MAC_CTX *ctx;

    if (value == NULL || len != STICKY_VALUE_LEN || b->nservers == 0)
        return NULL;
    for (size_t i = 0; i < STICKY_MAC_LEN; i++) {
        int hi = sticky_hex(value[2 * i]), lo = sticky_hex(value[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return NULL;
        want[i] = (uint8_t)(hi << 4 | lo);
    }
    ctx = sticky_mac_begin(key, b);
    if (ctx == NULL)
        return NULL;
    for (size_t i = 0; i < b->nservers; i++) {
        if (sticky_mac_server(ctx, &b->servers[i], mac) < 0) {
            found = NULL;
            break;
        }
        if (CRYPTO_memcmp(mac, want, STICKY_MAC_LEN) == 0 && found == NULL)
            found = &b->servers[i];
    }
    EVP_MAC_CTX_free(ctx);
    return found;
}

static bool sticky_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces and tabs from both ends of p[*start..*end). */
static void sticky_trim(const char *p, size_t *start, size_t *end)
{
    while (*start < *end && sticky_ows(p[*start]))
        (*start)++;
    while (*end > *start && sticky_ows(p[*end - 1]))
        (*end)--;
}

/*
 * Pairs are split at ';' with optional whitespace around names and values;
 * a pair without '=' is skipped, and a DQUOTE-wrapped value loses its quotes
 * (RFC 6265 §4.1.1 allows them; they are not part of the value).
 */
int sticky_find_cookie(const char *header, size_t header_len, const char *name, const char **val,
                       size_t *val_len)
{
    size_t nlen = name != NULL ? strlen(name) : 0;
    size_t pos = 0;

    if (header == NULL || nlen == 0)
        return 0;
    while (pos < header_len) {
        const char *semi = memchr(header + pos, ';', header_len - pos);
        size_t end = semi != NULL ? (size_t)(semi - header) : header_len;
        const char *eq = memchr(header + pos, '=', end - pos);
        size_t ns = pos, ne, vs, ve;

        pos = end + 1;
        if (eq == NULL)
            continue;
        ne = (size_t)(eq - header);
        vs = ne + 1;
        ve = end;
        sticky_trim(header, &ns, &ne);
        if (ne - ns != nlen || memcmp(header + ns, name, nlen) != 0)
            continue;
        sticky_trim(header, &vs, &ve);
        if (ve - vs >= 2 && header[vs] == '"' && header[ve - 1] == '"') {
            vs++;
            ve--;
        }
        *val = header + vs;
        *val_len = ve - vs;
        return 1;
    }
    return 0;
}

int sticky_set_cookie(const struct sticky_conf *c, const char *value, bool secure, char *out,
                      size_t outlen)
{
    char age[32] = "";
    int n;

    if (outlen == 0)
        return -1;
    out[0] = '\0';
    if (c->cookie == NULL || value == NULL)
        return -1;
    if (c->max_age > 0)
        snprintf(age, sizeof(age), "; Max-Age=%u", c->max_age);
    n = snprintf(out, outlen, "%s=%s; Path=/%s; HttpOnly; SameSite=Lax%s", c->cookie, value,
                 secure ? "; Secure" : "", age);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    return n;
}
