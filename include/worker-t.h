/* A worker thread: one event loop serving a share of every listener. */
#ifndef TLSGATE_WORKER_T_H
#define TLSGATE_WORKER_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "session-t.h"

struct event_base;
struct event;
struct evconnlistener;
struct gateway;
struct http_pool;
struct server_queue;
struct cpu_acct;

TAILQ_HEAD(session_list, session);

/* Distinct timer durations a worker keeps as libevent common timeouts (see worker_timer_add). */
#define WORKER_TIMER_DURATIONS 16

/* Empty pipes a worker keeps for its splice relays; more are closed when returned. */
#define WORKER_RELAY_PIPES 32

struct worker;
struct timeval;

/* One timer duration as a libevent common timeout of the worker's base. */
struct worker_duration {
    unsigned ms;              /* the duration */
    const struct timeval *tv; /* libevent's token for it (owned by the base) */
};

/* Listener callback argument: which listener of which worker accepted. */
struct accept_ctx {
    struct worker *w;   /* the worker */
    struct listener *l; /* the listener (in w->conf) */
};

/*
 * What the main thread hands a worker at a reload: written under lock by the
 * main thread, taken under lock by the worker when the eventfd wakes it. The
 * only lock a worker ever takes, once per reload: never on the data path.
 */
struct worker_mailbox {
    pthread_mutex_t lock;
    struct config *conf; /* snapshot to switch to (one reference), NULL = nothing new */
    int *fds;            /* its listening fd per conf listener, -1 = none (owned array) */
    uint64_t gen;        /* reload generation of conf */
};

/* Sessions of listeners a reload removed: closed when the drain time after it is over. */
struct worker_retired {
    struct worker *w;
    struct event *timer; /* fires timeouts.drain after the reload */
    char **names;        /* names of the removed listeners (owned) */
    size_t nnames;
    LIST_ENTRY(worker_retired) link;
};
LIST_HEAD(worker_retired_list, worker_retired);

struct worker {
    unsigned id;                       /* 0..nworkers-1 */
    pthread_t thread;                  /* its thread, valid when started */
    bool started;                      /* thread running: join it */
    struct gateway *gw;                /* owner */
    struct event_base *base;           /* its event loop */
    struct config *conf;               /* snapshot new connections use (one reference) */
    struct evconnlistener **listeners; /* one per conf listener, NULL once stopped; their fds are
                                          the main thread's (bindtab.h), never closed here */
    struct accept_ctx *accept_ctx;     /* callback argument of each listener */
    size_t nlisteners;
    struct worker_mailbox mbox;         /* a new snapshot from the main thread (reload) */
    bool mbox_ready;                    /* mbox.lock initialised */
    atomic_bool stop_requested;         /* set by the main thread, read at the next wake-up */
    _Atomic uint64_t gen_applied;       /* last reload generation switched to (main thread reads) */
    atomic_bool stopped_accepting;      /* acknowledged a stop: its sockets may close */
    struct worker_retired_list retired; /* drain timers of removed listeners */
    int notify_fd;                      /* eventfd the main thread writes to wake it */
    struct event *notify_ev;            /* reads notify_fd */
    struct event *drain_ev;             /* fires when the drain time is up */
    struct session_list sessions;       /* open sessions */
    unsigned nsessions;
    bool stopping;           /* no new connections; exit when sessions end */
    uint64_t next_id;        /* session id counter (combined with id) */
    time_t last_refusal_log; /* rate-limits "connection refused" warnings */
    struct http_pool *pool;  /* idle keep-alive backend connections (src/http/) */
    struct server_queue *sq; /* sessions waiting for a server slot, NULL when none */
    struct cpu_acct *cpu;    /* CPU attribution per listener (src/admin/cpu.c), owned */
    int relay_pipes[WORKER_RELAY_PIPES][2]; /* empty pipes lent to splice relays on need */
    unsigned nrelay_pipes;                  /* how many of relay_pipes are held */
    uint8_t *relay_buf; /* the splice relay's copy buffer for small reads (made on need) */
    LIST_HEAD(relay_nap_list, half) relay_napping; /* relay sides waiting for the nap timer */
    int relay_nap_fd;                              /* timerfd ending their nap, -1 until needed */
    struct event *relay_nap_ev;                    /* reads relay_nap_fd */
    struct worker_duration durations[WORKER_TIMER_DURATIONS]; /* see worker_timer_add */
    unsigned ndurations;
    uint32_t turn;          /* loop turns run (worker_run), for busy naps */
    unsigned turn_sessions; /* sessions that had I/O in this turn (session_touch) */
};

#endif
