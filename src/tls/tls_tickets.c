/*
 * Session ticket keys of a listener, shared by all its SSL_CTXs so that a
 * ticket issued under one certificate resumes under any other, and read from
 * ticket_key_file so that every instance of a fleet resumes every other's
 * tickets.
 *
 * File format: one or more keys of 80 raw bytes, back to back (80*N bytes;
 * `openssl rand 80 > ticket.key` makes one). A key is a 16-byte name sent in
 * clear in each ticket, a 32-byte HMAC-SHA256 secret and a 32-byte AES-256-CBC
 * key. The first key encrypts new tickets; every key decrypts. To rotate,
 * prepend a new key, reload every instance, and drop the last key once the
 * tickets it made have expired. A ticket decrypted by a key other than the
 * first is renewed under the first.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls/tls_int.h"
#include "tls_ctx.h"

/* One key as it is in the file. */
struct tls_ticket_key {
    unsigned char name[16]; /* identifies the key in tickets (not secret) */
    unsigned char hmac[32]; /* HMAC-SHA256 secret */
    unsigned char aes[32];  /* AES-256-CBC key */
};

_Static_assert(sizeof(struct tls_ticket_key) == TLS_TICKET_KEY_LEN, "key layout is the file's");

struct tls_ticket_keys {
    struct tls_ticket_key *keys; /* [0] encrypts, all decrypt; wiped on free */
    size_t n;
    EVP_CIPHER *cipher; /* AES-256-CBC, fetched once rather than per ticket */
};

/* SSL_CTX ex_data slot holding the ctx's struct tls_ticket_keys (not owned). */
static int ticket_idx = -1;
static pthread_once_t ticket_once = PTHREAD_ONCE_INIT;

static void ticket_idx_init(void)
{
    ticket_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Allocates a key set of n keys (contents to fill) with its cipher. */
static struct tls_ticket_keys *keys_new(size_t n)
{
    struct tls_ticket_keys *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return NULL;
    k->keys = calloc(n, sizeof(*k->keys));
    k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (k->keys == NULL || k->cipher == NULL) {
        tls_tickets_free(k);
        return NULL;
    }
    k->n = n;
    return k;
}

/* See tls_int.h. */
struct tls_ticket_keys *tls_tickets_load(const char *path, char *why, size_t why_len)
{
    struct tls_ticket_keys *k = NULL;
    struct stat st;
    size_t got = 0, size;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(why, why_len, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, why_len, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "cannot read '%s': not a regular file", path);
        goto fail;
    }
    size = (size_t)st.st_size;
    if (size == 0 || size % TLS_TICKET_KEY_LEN != 0) {
        snprintf(why, why_len,
                 "'%s' holds %zu bytes: a ticket key file is one or more %d-byte keys "
                 "(make one with: openssl rand %d > FILE)",
                 path, size, TLS_TICKET_KEY_LEN, TLS_TICKET_KEY_LEN);
        goto fail;
    }
    if (size / TLS_TICKET_KEY_LEN > TLS_TICKET_MAX_KEYS) {
        snprintf(why, why_len, "'%s' holds %zu keys: at most %d are kept for rotation", path,
                 size / TLS_TICKET_KEY_LEN, TLS_TICKET_MAX_KEYS);
        goto fail;
    }
    if ((k = keys_new(size / TLS_TICKET_KEY_LEN)) == NULL) {
        snprintf(why, why_len, "out of memory reading '%s'", path);
        goto fail;
    }
    while (got < size && (n = read(fd, (unsigned char *)k->keys + got, size - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "cannot read '%s': %s", path, strerror(errno));
            goto fail;
        }
        got += (size_t)n;
    }
    if (got != size) {
        snprintf(why, why_len, "cannot read '%s': it shrank while being read", path);
        goto fail;
    }
    close(fd);
    return k;
fail:
    tls_tickets_free(k);
    close(fd);
    return NULL;
}

/* See tls_int.h. */
struct tls_ticket_keys *tls_tickets_random(void)
{
    struct tls_ticket_keys *k = keys_new(1);

    if (k != NULL && RAND_priv_bytes((unsigned char *)k->keys, sizeof(*k->keys)) != 1) {
        tls_tickets_free(k);
        return NULL;
    }
    return k;
}

/* Keys hctx with key's HMAC-SHA256 secret. Returns 0 or -1. */
static int ticket_hmac_init(EVP_MAC_CTX *hctx, struct tls_ticket_key *key)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key->hmac, sizeof(key->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };

    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/*
 * OpenSSL's ticket callback. enc: pick the first key, a fresh IV, and key
 * both contexts; returns 1, or -1 on failure. Decrypt: find the key named in
 * the ticket; returns 0 when unknown (full handshake and a new ticket), 1
 * for the first key, 2 for an older one (use it, then renew the ticket).
 * TLS 1.3 always renews: its clients use a ticket once (RFC 8446, C.4), so
 * a resumption that issued none would make the next connection a full
 * handshake (measured with wrk: every other reconnection was).
 */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ticket_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_idx);
    struct tls_ticket_key *key;
    int ivlen;
    size_t i;

    if (k == NULL || (ivlen = EVP_CIPHER_get_iv_length(k->cipher)) > EVP_MAX_IV_LENGTH)
        return -1;
    if (enc) {
        key = &k->keys[0];
        memcpy(key_name, key->name, sizeof(key->name));
        if (RAND_bytes(iv, ivlen) != 1 || ticket_hmac_init(hctx, key) < 0 ||
            EVP_EncryptInit_ex2(cctx, k->cipher, key->aes, iv, NULL) != 1)
            return -1;
        return 1;
    }
    for (i = 0; i < k->n; i++)
        if (memcmp(key_name, k->keys[i].name, sizeof(k->keys[i].name)) == 0)
            break;
    if (i == k->n)
        return 0;
    key = &k->keys[i];
    if (ticket_hmac_init(hctx, key) < 0 ||
        EVP_DecryptInit_ex2(cctx, k->cipher, key->aes, iv, NULL) != 1)
        return -1;
    return i == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
}

/* See tls_int.h. */
int tls_tickets_install(SSL_CTX *ctx, struct tls_ticket_keys *k)
{
    pthread_once(&ticket_once, ticket_idx_init);
    if (ticket_idx < 0 || SSL_CTX_set_ex_data(ctx, ticket_idx, k) != 1)
        return -1;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) == 1 ? 0 : -1;
}

/* See tls_int.h. */
void tls_tickets_free(struct tls_ticket_keys *k)
{
    if (k == NULL)
        return;
    if (k->keys != NULL)
        OPENSSL_cleanse(k->keys, k->n * sizeof(*k->keys));
    free(k->keys);
    EVP_CIPHER_free(k->cipher);
    free(k);
}

/*
 * The key set a listener's contexts use: every SSL_CTX of the listener holds
 * the same one, reached through a throwaway SSL on the default context
 * (struct tls_server is private to tls_server.c).
 */
static struct tls_ticket_keys *tickets_of(const struct listener *l)
{
    SSL *ssl = tls_server_ssl_new(l);
    struct tls_ticket_keys *k;

    if (ssl == NULL)
        return NULL;
    pthread_once(&ticket_once, ticket_idx_init);
    k = ticket_idx < 0 ? NULL : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_idx);
    SSL_free(ssl);
    return k;
}

/* See tls_ctx.h. l's contexts serve nobody yet, so its key can be overwritten in place. */
int tls_tickets_keep(struct listener *l, const struct listener *old)
{
    struct tls_ticket_keys *to = tickets_of(l), *from = tickets_of(old);

    if (to == NULL || from == NULL || to->n != 1 || from->n != 1)
        return -1;
    memcpy(to->keys, from->keys, sizeof(*to->keys));
    return 0;
}
