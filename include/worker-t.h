/* A worker thread: one event loop serving a share of every listener. */
#ifndef TLSGATE_WORKER_T_H
#define TLSGATE_WORKER_T_H

#include <pthread.h>
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
struct cpu_acct;

TAILQ_HEAD(session_list, session);

/* Empty pipes a worker keeps for its splice relays; more are closed when returned. */
#define WORKER_RELAY_PIPES 32

struct worker;

/* Listener callback argument: which listener of which worker accepted. */
struct accept_ctx {
    struct worker *w;   /* the worker */
    struct listener *l; /* the listener (in w->conf) */
};

struct worker {
    unsigned id;                       /* 0..nworkers-1 */
    pthread_t thread;                  /* its thread, valid when started */
    bool started;                      /* thread running: join it */
    struct gateway *gw;                /* owner */
    struct event_base *base;           /* its event loop */
    struct config *conf;               /* snapshot new connections use (one reference) */
    struct evconnlistener **listeners; /* one per conf listener, NULL once stopped */
    struct accept_ctx *accept_ctx;     /* callback argument of each listener */
    size_t nlisteners;
    int notify_fd;                /* eventfd the main thread writes to wake it */
    struct event *notify_ev;      /* reads notify_fd */
    struct event *drain_ev;       /* fires when the drain time is up */
    struct session_list sessions; /* open sessions */
    unsigned nsessions;
    bool stopping;           /* no new connections; exit when sessions end */
    uint64_t next_id;        /* session id counter (combined with id) */
    time_t last_refusal_log; /* rate-limits "connection refused" warnings */
    struct http_pool *pool;  /* idle keep-alive backend connections (src/http/) */
    struct cpu_acct *cpu;    /* CPU attribution per listener (src/admin/cpu.c), owned */
    int relay_pipes[WORKER_RELAY_PIPES][2]; /* empty pipes lent to splice relays on need */
    unsigned nrelay_pipes;                  /* how many of relay_pipes are held */
    uint8_t *relay_buf; /* the splice relay's copy buffer for small reads (made on need) */
};

#endif
