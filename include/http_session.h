/* HTTP modes (offload, bridge, http): the session ops. */
#ifndef TLSGATE_HTTP_SESSION_H
#define TLSGATE_HTTP_SESSION_H

#include "session-t.h"

extern const struct session_ops http_ops;

struct worker;

/* Closes worker w's idle keep-alive connections to servers (when it stops). */
void http_pool_free(struct worker *w);

#endif
