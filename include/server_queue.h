/*
 * Waiting for a server slot. When every server of a backend that could take
 * a connection is at its max_connections, a session waits in its worker's
 * FIFO queue instead of failing (HAProxy's server queue), up to
 * timeouts.connect (HAProxy's `timeout queue` defaults to `timeout connect`).
 *
 * A slot given back on the same worker wakes the queue at once; slots given
 * back by other workers are noticed by a short re-check timer that runs only
 * while the queue is not empty. The queue belongs to one worker: no locks.
 */
#ifndef TLSGATE_SERVER_QUEUE_H
#define TLSGATE_SERVER_QUEUE_H

#include <stdbool.h>

#include "config-t.h"
#include "session-t.h"

/*
 * Called when the queue took a slot for s on srv (srv->active counts it) and
 * took s out of the queue: the mode connects s to srv. s->timer is s's again.
 */
typedef void (*server_queue_resume_fn)(struct session *s, struct server *srv);

/*
 * Puts s at the tail of its worker's queue for a server of s->backend and
 * arms s->timer with timeouts.connect: when it fires the mode calls
 * server_queue_leave() and gives up (result "queue-timeout"). Returns 0, or
 * -1 when out of memory (s is not queued).
 */
int server_queue_wait(struct session *s, server_queue_resume_fn resume);

/* Takes s out of the queue; nothing when it is not queued. */
void server_queue_leave(struct session *s);

/* True when sessions of worker w wait for backend b: newcomers go behind them. */
bool server_queue_has(const struct worker *w, const struct backend *b);

/* A server slot was given back on worker w: look at the queue at once (deferred). */
void server_queue_kick(struct worker *w);

/*
 * The session is ending (called from the mode's free, after session_close
 * gave back s->srv's slot): leaves the queue, and wakes it when s held a slot.
 */
void server_queue_session_end(struct session *s);

/* Sessions waiting in every worker's queue now (a gauge for /metrics). */
unsigned server_queue_total(void);

#endif
