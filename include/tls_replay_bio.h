/*
 * A socket BIO that first replays bytes already read from the socket.
 *
 * A passthrough listener reads the ClientHello to route on its SNI; when the
 * route terminates TLS in-process, those bytes are no longer in the kernel.
 * This BIO serves them to OpenSSL first, then reads and writes the socket
 * directly, like OpenSSL's own socket BIO: once the prefix is consumed (in
 * the handshake) there is no extra copy and no filter in the stream.
 *
 * BIO_get_fd() answers the socket, so bufferevent_openssl_socket_new(base,
 * fd, ssl, ...) keeps this BIO (libevent only installs a socket BIO of its
 * own when the SSL has none with an fd) and closes the fd itself on free.
 */
#ifndef TLSGATE_TLS_REPLAY_BIO_H
#define TLSGATE_TLS_REPLAY_BIO_H

#include <stddef.h>

#include <openssl/bio.h>

/*
 * A BIO on socket fd that reads a copy of prefix[0..len) before the socket.
 * It does not close fd when freed (BIO_NOCLOSE). Returns NULL on out of
 * memory. Safe to call from any thread.
 */
BIO *tls_replay_bio_new(int fd, const void *prefix, size_t len);

#endif
