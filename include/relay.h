/* Byte relay between the two halves of a session: backpressure, half-close. */
#ifndef TLSGATE_RELAY_H
#define TLSGATE_RELAY_H

#include "session-t.h"

/* Output above this pauses reading the other side; it resumes at half of it. */
#define RELAY_HIGH_WATER (256 * 1024)

/*
 * Relays bytes both ways from now on. Bytes already waiting in the client's
 * input are sent to the server first. Arms the idle timer.
 */
void relay_start(struct session *s);

/*
 * As relay_start, without the PROXY header: for a connection already in use
 * (an HTTP connection upgraded by a 101). Bytes waiting in either input go
 * first.
 */
void relay_tunnel(struct session *s);

/* Idle check from the session timer: closes an idle session or re-arms. */
void relay_on_timer(struct session *s);

#endif
