/*
 * OpenSSL contexts of a configuration snapshot.
 *
 * Server side (offload and bridge listeners): one SSL_CTX per certificate,
 * the first the default, the others chosen by the client's SNI against each
 * certificate's names; min_version, ciphers, ciphersuites, ALPN, session
 * tickets with keys from ticket_key_file, client certificates (mTLS) when
 * client_ca is set. Safe defaults: TLS 1.2 and up, forward-secret AEAD
 * ciphers only, server cipher preference, no renegotiation, no compression.
 *
 * Client side (backends with tls:): one SSL_CTX per backend with the CA and
 * verification it asks for, and per server one cached session to resume.
 *
 * ticket_key_file: one or more 80-byte keys, raw binary, back to back
 * (`openssl rand 80 > ticket.key`): 16-byte name, 32-byte HMAC-SHA256 secret,
 * 32-byte AES-256-CBC key. The first encrypts, all decrypt; rotate by
 * prepending a new key and reloading. Without the file each snapshot draws a
 * random key, which a reload replaces with the running one's
 * (tls_tickets_keep), so tickets survive reloads but not restarts.
 *
 * Contexts are built when a configuration is loaded (keys are read then and
 * never again, never logged) and freed with it. SSL_CTX is shared by every
 * worker; the session cache is guarded by a mutex. The contexts' callbacks
 * point into the snapshot: free every SSL made here before the snapshot's
 * last reference goes.
 */
#ifndef TLSGATE_TLS_CTX_H
#define TLSGATE_TLS_CTX_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "config-t.h"

struct bufferevent;
struct config_errors;
struct yaml_lines;

/*
 * Builds l->tls_server for every listener with tls: and b->tls_client for
 * every backend with tls:. Each problem is appended to errs as
 * "FILE:LINE:COL: listeners[i].tls.certificates[j].key: cannot read 'x.key': ..."
 * (yl locates the key; it may be NULL). Returns the number of errors.
 */
unsigned tls_config_build(struct config *c, const struct yaml_lines *yl,
                          struct config_errors *errs);

/* Frees what tls_config_build made (NULL pointers ignored). */
void tls_config_free(struct config *c);

/*
 * Reload: makes listener l of a snapshot not yet serving use the random
 * ticket key of listener old of the running snapshot (both with
 * session_tickets and no ticket_key_file), so tickets issued before the
 * reload still resume after it. Returns 0, or -1 when either has no random
 * key of its own.
 */
int tls_tickets_keep(struct listener *l, const struct listener *old);

/* A new server-side SSL for a connection accepted on l (l->tls_server set). */
SSL *tls_server_ssl_new(const struct listener *l);

/*
 * A new client-side SSL for a connection to server srv of b (b->tls_client
 * set): SNI and verified host name set (b->tls.sni, else the host of the
 * server's address), the server's cached session offered for resumption.
 */
SSL *tls_client_ssl_new(const struct backend *b, const struct server *srv);

/*
 * When a connection ends, before its SSL (or the bufferevent_openssl that
 * owns it) is freed, on either side. OpenSSL drops the session of a
 * connection freed without close_notify from the server's session cache and
 * marks it not resumable; bufferevent_openssl never sends close_notify, so
 * without this call no session-id (TLS 1.2) or stateful (TLS 1.3 with
 * session_tickets: false) resumption would work. Marks the connection as
 * shut down, as nginx does; sends nothing.
 */
void tls_ssl_closing(SSL *ssl);

/*
 * Sends close_notify on a connection whose output is all written (nothing of
 * an earlier SSL_write waits for a retry), before its FIN: the clean end of
 * TLS. A client that reads to the end sees the FIN as a truncation without
 * it, and OpenSSL clients then refuse to resume that session: measured with
 * wrk, only half of its reconnections resumed. Does nothing if it was sent.
 */
void tls_send_close_notify(SSL *ssl);

/* After a client handshake: keeps its session for the next connection to srv. */
void tls_client_save_session(const struct backend *b, const struct server *srv, SSL *ssl);

/*
 * Text for logs: "TLSv1.3 TLS_AES_128_GCM_SHA256" style parts of a finished
 * handshake. Never NULL.
 */
const char *tls_version_name(const SSL *ssl);
const char *tls_cipher_name(const SSL *ssl);

/* The SNI the client sent on ssl ("" when none). */
const char *tls_sni(const SSL *ssl);

/* Raw bytes OpenSSL has read from and written to ssl's peer so far (records, not plaintext). */
uint64_t tls_bytes_read(const SSL *ssl);
uint64_t tls_bytes_written(const SSL *ssl);

/*
 * Why a handshake failed, as one short line (the OpenSSL error queue, or the
 * verify result for client certificates), e.g.
 * "client certificate: unable to get local issuer certificate". Clears the
 * error queue. buf is returned.
 */
char *tls_handshake_error(SSL *ssl, char *buf, size_t len);

/*
 * The same for an SSL run by a bufferevent_openssl: libevent moves OpenSSL's
 * error queue into the bufferevent when a handshake fails, so the reason is
 * only there (tls_handshake_error on its SSL would find an empty queue).
 * Drains those errors and the queue. buf is returned; "" when nothing is
 * known (e.g. the peer just closed).
 */
char *tls_bev_handshake_error(struct bufferevent *bev, char *buf, size_t len);

#endif
