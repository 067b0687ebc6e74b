/*
 * One client connection and everything the gateway holds for it.
 *
 * A session owns both halves (client and server side), a timer, and a
 * reference on the configuration snapshot it started with. It lives on its
 * worker's list and is freed only by session_close().
 */
#ifndef TLSGATE_SESSION_T_H
#define TLSGATE_SESSION_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/util.h>

#include "config-t.h"

struct bufferevent;
struct event;
struct session;
struct worker;
struct clienthello;
struct http_sess;
struct queue_wait;

/* One side of a session: the client or the backend server. */
struct half {
    struct bufferevent *bev; /* NULL until opened / after close */
    struct session *s;       /* owner */
    struct half *peer;       /* the other side */
    uint64_t bytes_read;     /* bytes received from this side */
    bool eof;                /* this side sent FIN (or we gave up reading it) */
    bool shut_wr;            /* we passed the peer's FIN on to this side */
    bool throttled;          /* reading paused: the peer's output is full */
    /* Raw-socket relay (splice_relay.c), once the bufferevent has been let go: */
    bool raw;                  /* fd is ours (bev is NULL): close it at session end */
    bool bulk;                 /* recent reads were large: move this side's bytes by splice */
    bool blocked;              /* the peer can't take more: rd_ev off, the peer's wr_ev on */
    bool has_pipe;             /* pipe[] is a pooled pipe lent to this side */
    bool napping;              /* rd_ev off until the worker's nap timer or the peer's next bytes */
    evutil_socket_t fd;        /* the socket, when raw */
    struct event *rd_ev;       /* readable: move this side's bytes to the peer */
    struct event *wr_ev;       /* writable: flush the peer's bytes to this side (made on need) */
    uint8_t *spill;            /* bytes from this side the peer could not take yet, or NULL */
    uint32_t spill_len;        /* bytes in spill */
    uint32_t spill_off;        /* of which already written */
    uint32_t piped;            /* bytes from this side in pipe[] not yet written to the peer */
    int pipe[2];               /* read and write ends, while has_pipe */
    LIST_ENTRY(half) nap_link; /* in the worker's napping list, while napping */
};

enum session_state {
    SESSION_PROXY_HDR, /* waiting for the PROXY header of a balancer in front */
    SESSION_HELLO,     /* passthrough: waiting for the whole ClientHello */
    SESSION_CONNECT,   /* connecting to a server */
    SESSION_RELAY,     /* relaying bytes both ways */
};

/* Mode-specific behaviour; passthrough is the first implementation. */
struct session_ops {
    const char *name;                     /* mode name for logs */
    void (*start)(struct session *s);     /* called once the session is registered */
    void (*on_timer)(struct session *s);  /* the session timer fired */
    void (*connected)(struct session *s); /* the server connection is up */
    void (*log)(const struct session *s); /* write the access-log line at close */
    void (*free)(struct session *s);      /* release mode state (may be NULL) */
    void (*on_stop)(struct session *s);   /* the worker stops: end if idle (may be NULL) */
    bool opens_client; /* start() opens client.bev on s->fd itself (e.g. after a PROXY header) */
};

struct session {
    uint64_t id;                   /* unique within the process, for logs */
    struct worker *w;              /* the worker (thread) that owns it */
    struct config *conf;           /* snapshot it started on (one reference) */
    struct listener *l;            /* its listener in conf */
    const struct session_ops *ops; /* mode behaviour */
    enum session_state state;
    uint32_t io_turn;                    /* the worker's last loop turn with I/O for it */
    struct half client;                  /* accepted connection */
    struct half server;                  /* backend connection (bev NULL until connecting) */
    struct sockaddr_storage client_addr; /* real client: TCP peer, or PROXY header source */
    struct sockaddr_storage local;       /* address the client connected to (or PROXY dst) */
    struct clienthello *hello;           /* passthrough: what the client offered (owned) */
    bool hello_parsed;                   /* hello holds a complete ClientHello */
    struct backend *backend;             /* chosen backend, NULL before routing */
    struct server *srv;        /* server connected or being tried; holds one srv->active */
    unsigned attempts;         /* servers tried for this connection */
    struct queue_wait *queued; /* waiting for a server slot (server_queue.c), NULL otherwise */
    struct event *timer;       /* the one deadline in force (hello, connect, idle) */
    struct timeval started;    /* accept time */
    struct timeval last_io;    /* last bytes either way (cached loop time) */
    const char *result;        /* why it ended, for the access log (static string) */
    bool closing;              /* session_close() ran */
    struct http_sess *http;    /* HTTP modes: request state (owned, src/http/) */
    evutil_socket_t fd;        /* accepted socket; the mode opens client.bev on it */
    TAILQ_ENTRY(session) link; /* in w->sessions */
};

#endif
