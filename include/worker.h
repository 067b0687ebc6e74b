/* Worker threads. */
#ifndef TLSGATE_WORKER_H
#define TLSGATE_WORKER_H

#include "worker-t.h"

/*
 * Prepares worker w (on failure it frees what it took and closes the fds): event base, listeners on
 * the given already-bound fds, one per conf listener, owned from now on. Returns 0 or -1 (logged).
 */
int worker_init(struct worker *w, struct gateway *gw, unsigned id, struct config *conf,
                int *listen_fds);

/* Starts the thread running the loop. Returns 0 or -1. */
int worker_start(struct worker *w);

/* Asks the worker (from any thread) to stop accepting and drain. */
void worker_request_stop(struct worker *w);

/* Joins the thread and frees everything the worker owns. */
void worker_join_and_free(struct worker *w);

/* Called by session_close: ends the loop when a stopping worker has no session left. */
void worker_session_ended(struct worker *w);

/* Releases the process and listener connection slots a session held. */
void worker_release_slot(struct worker *w, struct listener *l);

#endif
