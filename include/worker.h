/* Worker threads. */
#ifndef TLSGATE_WORKER_H
#define TLSGATE_WORKER_H

#include "worker-t.h"

/*
 * Prepares worker w (on failure it frees what it took): event base, one listener per conf
 * listener on the given already-bound fds (-1: no socket). The fds stay the caller's: the worker
 * accepts on them and never closes them. Returns 0 or -1 (logged).
 */
int worker_init(struct worker *w, struct gateway *gw, unsigned id, struct config *conf,
                const int *listen_fds);

/*
 * Main thread, at a reload: hands w the snapshot conf (takes a reference) and fds, a malloc'd
 * array of its listening fd per conf listener (-1 = none; the array is the worker's from now
 * on, the sockets stay the caller's), and wakes it. The worker switches new connections to conf,
 * accepts on fds from then on, and acknowledges by setting gen_applied to gen and writing the
 * gateway's ack eventfd. A handover the worker has not taken yet is replaced.
 */
void worker_post_config(struct worker *w, struct config *conf, int *fds, uint64_t gen);

/* Starts the thread running the loop. Returns 0 or -1. */
int worker_start(struct worker *w);

/*
 * Asks the worker (from any thread) to stop accepting and drain. It acknowledges, once it has
 * let go of its listening sockets, by setting stopped_accepting and writing the ack eventfd.
 */
void worker_request_stop(struct worker *w);

/* Joins the thread and frees everything the worker owns. */
void worker_join_and_free(struct worker *w);

/* Called by session_close: ends the loop when a stopping worker has no session left. */
void worker_session_ended(struct worker *w);

/* Releases the process and listener connection slots a session held. */
void worker_release_slot(struct worker *w, struct listener *l);

/*
 * (Re)arms the timer ev of w's base to fire in ms milliseconds. Every session re-arms its timer
 * a few times per request, always with one of a handful of durations (the config's timeouts):
 * those become libevent common timeouts, kept in a queue per duration, so re-arming is a queue
 * move instead of a heap update. Past WORKER_TIMER_DURATIONS distinct durations (reloads), the
 * timer goes to the heap as usual.
 */
void worker_timer_add(struct worker *w, struct event *ev, unsigned ms);

#endif
