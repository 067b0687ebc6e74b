/*
 * Cookie stickiness: the cookie names a server without revealing it and
 * cannot be forged. Its value is a MAC, HMAC-SHA256(key, backend name NUL
 * server name), truncated to 16 bytes and written as 32 lower-case hex
 * digits. Finding the server means computing the MAC of each server of the
 * backend and comparing in constant time; a client without the key can
 * neither pick a server nor learn how many there are.
 */
#ifndef TLSGATE_STICKY_H
#define TLSGATE_STICKY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config-t.h"

#define STICKY_KEY_LEN   32
#define STICKY_VALUE_LEN 32 /* hex digits in a cookie value */

/*
 * Loads the HMAC key from path: the file's bytes (at least 16, at most 4096)
 * hashed with SHA-256 into key. path "" or NULL: a random key made once per
 * process (same for every listener and across reloads). Returns 0, or -1
 * with why filled ("cannot read 'x': No such file", "shorter than 16 bytes").
 */
int sticky_key_load(const char *path, uint8_t key[STICKY_KEY_LEN], char *why, size_t why_len);

/*
 * Writes the cookie value for server s of backend b (STICKY_VALUE_LEN chars +
 * NUL), or "" if libcrypto fails (then set no cookie). Thread-safe.
 */
void sticky_value(const uint8_t key[STICKY_KEY_LEN], const struct backend *b,
                  const struct server *s, char out[STICKY_VALUE_LEN + 1]);

/* The server of b whose value is value[0..len), or NULL (forged, stale, removed). */
struct server *sticky_lookup(const uint8_t key[STICKY_KEY_LEN], struct backend *b,
                             const char *value, size_t len);

/*
 * Finds cookie name in one Cookie header value ("a=1; TLSGW=abc; b=2").
 * Returns 1 with *val and *val_len set, 0 when absent.
 */
int sticky_find_cookie(const char *header, size_t header_len, const char *name, const char **val,
                       size_t *val_len);

/*
 * Writes the Set-Cookie header value: "NAME=VALUE; Path=/; Secure; HttpOnly;
 * SameSite=Lax" plus "; Max-Age=N" when max_age > 0. secure is false on
 * plain-http listeners (a Secure cookie would never come back). Returns the
 * length or -1 when out is too small.
 */
int sticky_set_cookie(const struct sticky_conf *c, const char *value, bool secure, char *out,
                      size_t outlen);

#endif
