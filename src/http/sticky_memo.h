/*
 * Cookie values remembered per worker thread: a value is HMAC-SHA256 over
 * names that rarely change (sticky.h), and computing it took about 8% of
 * the gateway's CPU per keep-alive request (one or more HMACs per request:
 * key setup, digest fetch, context copies).
 */
#ifndef TLSGATE_STICKY_MEMO_H
#define TLSGATE_STICKY_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sticky.h"

/* As sticky_value(), from this thread's memo when it holds the value. */
void sticky_memo_value(const uint8_t key[STICKY_KEY_LEN], const struct backend *b,
                       const struct server *s, char out[STICKY_VALUE_LEN + 1]);

/*
 * As sticky_lookup(): the server of b whose value is value[0..len), or
 * NULL. Every server's value is compared, in constant time, whichever
 * matches.
 */
struct server *sticky_memo_lookup(const uint8_t key[STICKY_KEY_LEN], struct backend *b,
                                  const char *value, size_t len);

/*
 * As sticky_set_cookie(), from this thread's last line when its inputs
 * (cookie name, value, max_age, secure) are the same.
 */
int sticky_memo_set_cookie(const struct sticky_conf *c, const char *value, bool secure, char *out,
                           size_t outlen);

#endif
