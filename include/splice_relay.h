/*
 * Passthrough byte relay on the raw sockets: splice(2) through pipes lent by
 * the worker for bulk transfers, one read and one write through a shared
 * buffer for small messages. Same contract as relay.h (backpressure,
 * half-close, idle timer, byte counts) without bufferevents.
 */
#ifndef TLSGATE_SPLICE_RELAY_H
#define TLSGATE_SPLICE_RELAY_H

#include "session-t.h"

struct worker;

/*
 * The passthrough .connected: sends the PROXY header the backend asked for
 * and the bytes already read from the client (the ClientHello), lets both
 * bufferevents go (the session keeps their sockets) and relays both ways from
 * now on. Arms the idle timer; relay_on_timer() serves it.
 */
void splice_relay_start(struct session *s);

/*
 * Releases what the relay holds for s: events, buffered bytes, pipes (back to
 * the worker when empty) and the sockets it took over. Does nothing for a
 * session whose relay never started. The passthrough .free.
 */
void splice_relay_free(struct session *s);

/* Closes the worker's spare pipes and frees its copy buffer (worker exit). */
void splice_relay_worker_free(struct worker *w);

#endif
