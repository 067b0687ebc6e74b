/*
 * Private to src/tls: what tls_server.c, tls_client.c and tls_tickets.c
 * share. The public side is include/tls_ctx.h.
 */
#ifndef TLSGATE_TLS_INT_H
#define TLSGATE_TLS_INT_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "config-t.h"

struct config_errors;
struct yaml_lines;

/* Where a build reports its problems: the file and its key positions. */
struct tls_report {
    const char *file;            /* the configuration file */
    const struct yaml_lines *yl; /* key positions; may be NULL */
    struct config_errors *errs;  /* where lines go */
    unsigned nerr;               /* lines added so far */
};

/* Appends "FILE:LINE:COL: keypath: message" to r and counts it. */
void tls_report(struct tls_report *r, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The reason of the oldest error in this thread's OpenSSL queue ("no start
 * line", "No such file or directory"), or "unknown error"; clears the queue.
 * Returns buf.
 */
char *tls_ssl_reason(char *buf, size_t len);

/*
 * Why the PEM file at path cannot be read (a reason to print), or NULL when
 * it is a regular file of at most TLS_PEM_MAX bytes. Checked before OpenSSL
 * opens it: a FIFO would block the loader forever, a device or a huge file
 * would be read to its end.
 */
#define TLS_PEM_MAX (1024 * 1024)
const char *tls_pem_file_problem(const char *path);

/* tls_server.c: builds l->tls_server; problems go to r under "listeners[i].tls". */
void tls_server_build(struct listener *l, struct tls_report *r);
void tls_server_free(struct tls_server *ts);

/* tls_client.c: builds b->tls_client; problems go to r under "backends[i].tls". */
void tls_client_build(struct backend *b, size_t i, struct tls_report *r);
void tls_client_free(struct tls_client *tc);

/*
 * tls_tickets.c: session ticket keys shared by the SSL_CTXs of a listener.
 * Each key is 80 bytes: 16-byte name, 32-byte HMAC-SHA256 secret, 32-byte
 * AES-256-CBC key. The first key encrypts new tickets, every key decrypts.
 */
#define TLS_TICKET_KEY_LEN  80
#define TLS_TICKET_MAX_KEYS 64

struct tls_ticket_keys;

/*
 * Reads path: one or more 80-byte keys, raw, back to back. Returns the keys,
 * or NULL with why filled (the key bytes are never put in why).
 */
struct tls_ticket_keys *tls_tickets_load(const char *path, char *why, size_t why_len);

/* One random key, for a listener without ticket_key_file. NULL when out of memory. */
struct tls_ticket_keys *tls_tickets_random(void);

/* Makes ctx encrypt and decrypt tickets with k, which must outlive ctx. Returns 0 or -1. */
int tls_tickets_install(SSL_CTX *ctx, struct tls_ticket_keys *k);

/* Wipes and frees k. NULL is ignored. */
void tls_tickets_free(struct tls_ticket_keys *k);

/*
 * Makes ctx resume a session only under the SNI it was made for
 * (tls_resume_sni.c): each connection's session id context becomes a digest
 * of listener_sid (SSL_MAX_SID_CTX_LENGTH bytes, which must outlive ctx) and
 * its SNI.
 */
void tls_resume_sni_install(SSL_CTX *ctx, const unsigned char *listener_sid);

#endif
