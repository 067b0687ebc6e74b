/* Session lifecycle: from accept() to the one access-log line. */
#ifndef TLSGATE_SESSION_H
#define TLSGATE_SESSION_H

#include <event2/util.h>

#include "session-t.h"

/*
 * Creates a session for an accepted socket fd on listener l of worker w,
 * takes a reference on conf, and starts the mode's state machine. Returns 0:
 * the session owns fd and the connection slots (it may already have ended).
 * Returns -1: fd closed, the caller still holds the slots.
 */
int session_new(struct worker *w, struct config *conf, struct listener *l, evutil_socket_t fd,
                const struct sockaddr *peer, int peerlen);

/*
 * Ends the session: writes its access-log line, closes both sides, drops its
 * counters and config reference, unlinks and frees it. result is a static
 * string naming why ("done", "timeout-hello", ...). Idempotent. After this
 * call the caller must not touch s.
 */
void session_close(struct session *s, const char *result);

/* (Re)arms the session timer to fire in ms milliseconds. */
void session_set_timer(struct session *s, unsigned ms);

/* Records activity now (cheap: uses the loop's cached time). */
void session_touch(struct session *s);

#endif
