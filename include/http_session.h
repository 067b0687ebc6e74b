/* HTTP modes (offload, bridge, http): the session ops. */
#ifndef TLSGATE_HTTP_SESSION_H
#define TLSGATE_HTTP_SESSION_H

#include <openssl/bio.h>

#include "session-t.h"

extern const struct session_ops http_ops;

/*
 * Takes over a connection that a passthrough listener routed to an offload
 * or bridge listener (sni_routes terminate): s->ops is http_ops, s->l the
 * terminating listener, s->fd the socket with no bufferevent on it, and bio
 * (owned from here on) a replay BIO on s->fd holding the bytes already read
 * (tls_replay_bio.h). Runs the TLS handshake from those bytes, then serves
 * HTTP exactly as for a connection accepted on s->l.
 */
void http_start_terminated(struct session *s, BIO *bio);

struct worker;

/* Closes worker w's idle keep-alive connections to servers (when it stops). */
void http_pool_free(struct worker *w);

#endif
