/* Connecting a session to a server of its backend, with retry on the next server. */
#ifndef TLSGATE_BACKEND_CONN_H
#define TLSGATE_BACKEND_CONN_H

#include "session-t.h"

/*
 * Picks a server of s->backend (by the backend's algorithm) and starts a
 * non-blocking connect. When it succeeds s->ops->connected(s) runs; when it
 * fails or times out the next server is tried, each server at most once;
 * when none is left the session is closed with result "no-server". When
 * every server is at its max_connections the session waits for a slot
 * (server_queue.h) up to timeouts.connect, then closes ("queue-timeout").
 */
void backend_connect(struct session *s);

/* The connect (or queue) deadline passed (the mode's on_timer in SESSION_CONNECT). */
void backend_connect_timeout(struct session *s);

#endif
