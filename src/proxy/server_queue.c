/*
 * The per-worker queue of sessions waiting for a server slot; see
 * server_queue.h. The queue is made when its first session arrives and freed
 * when its last one leaves, so an idle worker holds nothing for it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "balance.h"
#include "log.h"
#include "server_queue.h"
#include "session.h"
#include "worker-t.h"

/* How often a non-empty queue looks for slots other workers gave back. */
#define SQ_RECHECK_MS 10

/* One waiting session. */
struct queue_wait {
    struct session *s;             /* the session (its queued field points back here) */
    server_queue_resume_fn resume; /* what to do once a slot is taken for it */
    TAILQ_ENTRY(queue_wait) link;  /* in server_queue.waiting, oldest first */
};

struct server_queue {
    TAILQ_HEAD(, queue_wait) waiting; /* FIFO */
    unsigned n;                       /* entries in waiting */
    struct event *tick;               /* persistent re-check timer, also activated by kicks */
    bool running;                     /* sq_run is walking the queue: do not free it */
};

/* Waiting sessions over every worker, for the gauge. */
static atomic_uint sq_total;

/* Second of the last "queueing" warning, so an overload logs once a second. */
static atomic_llong sq_last_log;

static void sq_free(struct worker *w)
{
    struct server_queue *q = w->sq;

    event_free(q->tick);
    free(q);
    w->sq = NULL;
}

/* Unlinks qw from q and frees it; s is no longer queued. */
static void sq_unlink(struct server_queue *q, struct queue_wait *qw)
{
    TAILQ_REMOVE(&q->waiting, qw, link);
    q->n--;
    atomic_fetch_sub_explicit(&sq_total, 1, memory_order_relaxed);
    qw->s->queued = NULL;
    free(qw);
}

/*
 * Hands a free slot to each waiting session that can have one, oldest first.
 * Sessions a slot cannot be found for keep their place. A session queued
 * again while resuming lands behind the ones seen in this pass.
 */
static void sq_run(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct server_queue *q = w->sq;
    struct queue_wait *qw, *next;

    q->running = true;
    for (qw = TAILQ_FIRST(&q->waiting); qw != NULL; qw = next) {
        struct session *s = qw->s;
        server_queue_resume_fn resume = qw->resume;
        struct server *srv;

        next = TAILQ_NEXT(qw, link);
        srv = balance_pick_take(s->backend, (struct sockaddr *)&s->client_addr);
        if (srv == NULL)
            continue;
        sq_unlink(q, qw);
        log_debug("session %llx: backend %s: server %s has a free slot now",
                  (unsigned long long)s->id, s->backend->name, srv->name);
        resume(s, srv);
    }
    q->running = false;
    if (q->n == 0)
        sq_free(w);
}

/* Makes w's queue and starts its re-check timer. Returns it, or NULL. */
static struct server_queue *sq_get(struct worker *w)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = SQ_RECHECK_MS * 1000};
    struct server_queue *q = w->sq;

    if (q != NULL)
        return q;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    TAILQ_INIT(&q->waiting);
    q->tick = event_new(w->base, -1, EV_PERSIST, sq_run, w);
    if (q->tick == NULL || event_add(q->tick, &tv) < 0) {
        if (q->tick != NULL)
            event_free(q->tick);
        free(q);
        return NULL;
    }
    w->sq = q;
    return q;
}

/* Warns that a backend is saturated, at most once a second for the process. */
static void sq_log_saturated(const struct session *s)
{
    long long now = (long long)time(NULL);
    long long last = atomic_load_explicit(&sq_last_log, memory_order_relaxed);

    /* Of the workers that see a new second, the one that swaps it in logs. */
    if (now == last || !atomic_compare_exchange_strong(&sq_last_log, &last, now))
        return;
    log_warnx("backend %s: every server is at its max_connections: queueing requests "
              "(up to %u ms each)",
              s->backend->name, s->conf->timeouts.connect);
}

int server_queue_wait(struct session *s, server_queue_resume_fn resume)
{
    struct server_queue *q;
    struct queue_wait *qw;

    if (s->queued != NULL)
        return 0;
    qw = malloc(sizeof(*qw));
    if (qw == NULL)
        return -1;
    q = sq_get(s->w);
    if (q == NULL) {
        free(qw);
        return -1;
    }
    qw->s = s;
    qw->resume = resume;
    TAILQ_INSERT_TAIL(&q->waiting, qw, link);
    q->n++;
    atomic_fetch_add_explicit(&sq_total, 1, memory_order_relaxed);
    s->queued = qw;
    sq_log_saturated(s);
    log_debug("session %llx: backend %s: waiting for a server slot (%u queued on this worker)",
              (unsigned long long)s->id, s->backend->name, q->n);
    session_set_timer(s, s->conf->timeouts.connect);
    return 0;
}

void server_queue_leave(struct session *s)
{
    struct server_queue *q = s->w->sq;

    if (s->queued == NULL || q == NULL)
        return;
    sq_unlink(q, s->queued);
    if (q->n == 0 && !q->running)
        sq_free(s->w);
}

bool server_queue_has(const struct worker *w, const struct backend *b)
{
    const struct queue_wait *qw;

    if (w->sq == NULL)
        return false;
    TAILQ_FOREACH(qw, &w->sq->waiting, link)
    {
        if (qw->s->backend == b)
            return true;
    }
    return false;
}

void server_queue_kick(struct worker *w)
{
    /* Deferred to the loop: the caller may be in the middle of closing a session. */
    if (w->sq != NULL && !w->sq->running)
        event_active(w->sq->tick, EV_TIMEOUT, 0);
}

void server_queue_session_end(struct session *s)
{
    server_queue_leave(s);
    if (s->srv != NULL)
        server_queue_kick(s->w);
}

unsigned server_queue_total(void)
{
    return atomic_load_explicit(&sq_total, memory_order_relaxed);
}
