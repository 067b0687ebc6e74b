/*
 * A small direct-mapped memo of cookie values per thread. An entry keeps
 * what the value is computed from (key, backend name, server name), not
 * pointers alone: a configuration reload frees servers and may reuse their
 * addresses, and an entry then simply fails to match. Names too long for an
 * entry are never remembered (computed every time). The last Set-Cookie
 * line is kept the same way (snprintf per response was the next cost).
 * Workers share nothing, hence no lock.
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>

#include "http/sticky_memo.h"

#define MEMO_SLOTS    64 /* a power of two */
#define MEMO_NAME_MAX 64 /* longest name kept, NUL included */

struct memo_slot {
    bool used;
    uint8_t key[STICKY_KEY_LEN];
    char backend[MEMO_NAME_MAX];
    char server[MEMO_NAME_MAX];
    char value[STICKY_VALUE_LEN + 1];
};

static __thread struct memo_slot memo[MEMO_SLOTS];

/* The last Set-Cookie line made on this thread, and what it was made from. */
#define MEMO_LINE_MAX 512
static __thread struct {
    char cookie[MEMO_NAME_MAX]; /* "" = nothing kept */
    char value[STICKY_VALUE_LEN + 1];
    unsigned max_age;
    bool secure;
    char line[MEMO_LINE_MAX];
    int len;
} memo_line;

static const char *memo_name(const char *name)
{
    return name != NULL ? name : "";
}

/* The slot for server s (by address: the cheap part; the content decides). */
static struct memo_slot *memo_slot_for(const struct server *s)
{
    return &memo[((uintptr_t)s / sizeof(*s)) & (MEMO_SLOTS - 1)];
}

static bool memo_holds(const struct memo_slot *m, const uint8_t key[STICKY_KEY_LEN],
                       const char *bname, const char *sname)
{
    return m->used && memcmp(m->key, key, STICKY_KEY_LEN) == 0 && strcmp(m->server, sname) == 0 &&
           strcmp(m->backend, bname) == 0;
}

/* See sticky_memo.h. */
void sticky_memo_value(const uint8_t key[STICKY_KEY_LEN], const struct backend *b,
                       const struct server *s, char out[STICKY_VALUE_LEN + 1])
{
    const char *bname = memo_name(b->name), *sname = memo_name(s->name);
    struct memo_slot *m = memo_slot_for(s);

    if (memo_holds(m, key, bname, sname)) {
        memcpy(out, m->value, STICKY_VALUE_LEN + 1);
        return;
    }
    sticky_value(key, b, s, out);
    if (out[0] == '\0' || strlen(bname) >= MEMO_NAME_MAX || strlen(sname) >= MEMO_NAME_MAX)
        return; /* a failure is not remembered, nor a name that does not fit */
    m->used = true;
    memcpy(m->key, key, STICKY_KEY_LEN);
    strcpy(m->backend, bname);
    strcpy(m->server, sname);
    memcpy(m->value, out, STICKY_VALUE_LEN + 1);
}

/* See sticky_memo.h. */
struct server *sticky_memo_lookup(const uint8_t key[STICKY_KEY_LEN], struct backend *b,
                                  const char *value, size_t len)
{
    struct server *found = NULL;
    char v[STICKY_VALUE_LEN + 1];

    if (value == NULL || len != STICKY_VALUE_LEN)
        return NULL;
    for (size_t i = 0; i < b->nservers; i++) {
        sticky_memo_value(key, b, &b->servers[i], v);
        if (v[0] == '\0')
            return NULL; /* libcrypto failed: as sticky_lookup, name none */
        if (CRYPTO_memcmp(v, value, STICKY_VALUE_LEN) == 0 && found == NULL)
            found = &b->servers[i];
    }
    return found;
}

/* See sticky_memo.h. */
int sticky_memo_set_cookie(const struct sticky_conf *c, const char *value, bool secure, char *out,
                           size_t outlen)
{
    int n;

    if (c->cookie != NULL && value != NULL && memo_line.cookie[0] != '\0' &&
        memo_line.secure == secure && memo_line.max_age == c->max_age &&
        (size_t)memo_line.len < outlen && strcmp(memo_line.value, value) == 0 &&
        strcmp(memo_line.cookie, c->cookie) == 0) {
        memcpy(out, memo_line.line, (size_t)memo_line.len + 1);
        return memo_line.len;
    }
    n = sticky_set_cookie(c, value, secure, out, outlen);
    if (n < 0 || n >= MEMO_LINE_MAX || strlen(c->cookie) >= MEMO_NAME_MAX ||
        strlen(value) > STICKY_VALUE_LEN)
        return n;
    strcpy(memo_line.cookie, c->cookie);
    strcpy(memo_line.value, value);
    memo_line.max_age = c->max_age;
    memo_line.secure = secure;
    memcpy(memo_line.line, out, (size_t)n + 1);
    memo_line.len = n;
    return n;
}
