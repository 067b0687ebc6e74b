/*
 * The HTTP engine's private types, shared by the files of src/http/.
 *
 * A client connection of an offload, bridge or http listener is a session
 * (core/session.c) whose mode state is a struct http_sess. It serves one
 * request at a time (pipelined ones wait in the client's input buffer):
 *
 *   [PROXY header] -> [TLS handshake] -> request head -> rules -> server
 *     -> head + body to the server -> response head + body to the client
 *     -> next request (keep-alive) | tunnel (101 Upgrade) | close
 *
 * The backend side (s->server) is a connection taken from the worker's pool
 * of idle keep-alive connections or newly opened, and given back to the pool
 * when the exchange ended cleanly.
 */
#ifndef TLSGATE_HTTP_ENGINE_H
#define TLSGATE_HTTP_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <openssl/ssl.h>

#include "http_parse.h"
#include "http_session.h"
#include "session-t.h"
#include "sticky.h"

struct evbuffer;

/* Where a client connection is. */
enum http_phase {
    HTTP_PROXY_HDR, /* reading a PROXY header from the raw socket */
    HTTP_HANDSHAKE, /* TLS handshake with the client */
    HTTP_WAIT_HEAD, /* waiting for (the rest of) a request head */
    HTTP_CONNECT,   /* connecting to a server for the current request */
    HTTP_EXCHANGE,  /* request going to the server, response coming back */
    HTTP_TUNNEL,    /* after a 101: raw relay both ways (relay.c) */
    HTTP_CLOSING,   /* a last response is being flushed, then close */
};

/*
 * The request's host and target as its log line shows them: copies, because
 * the head buffer is gone by then. Allocated for each request and freed with
 * it, so that an idle keep-alive connection holds none.
 */
struct http_txn_names {
    char host[256];
    char path[512]; /* target, truncated */
};

/* One request and its response. Reset for every request on the connection. */
struct http_txn {
    struct timeval started;       /* first byte of the request head seen */
    unsigned no;                  /* 1 for the first request on the connection */
    char method[16];              /* for the response's framing and the log */
    struct http_txn_names *names; /* NULL until the request line is read (owned) */
    int rule;                     /* index of the matched rule, -1 none */
    const char *sticky;           /* NULL (off), "hit", "miss", "reset" */
    const char *result;           /* "ok", or why it failed (static) */
    unsigned status;              /* status sent to the client, 0 none yet */
    uint64_t bytes_in;            /* request bytes from the client (head + body) */
    uint64_t bytes_out;           /* response bytes to the client (head + body) */
    bool logged;                  /* the access-log line was written */

    /* Routing. */
    struct backend *backend;           /* chosen backend */
    struct server *server;             /* server that got the request (for the log) */
    struct server *sticky_target;      /* server a valid cookie named, NULL none */
    char cookie[STICKY_VALUE_LEN + 1]; /* value to Set-Cookie, "" = none */

    /* Request framing. */
    bool head_request;      /* HEAD: no response body */
    bool client_keep_alive; /* the client wants to keep the connection */
    bool upgrade;           /* the client asked to upgrade (WebSocket) */
    bool expect_continue;
    unsigned client_minor; /* HTTP/1.x of the client */
    enum http_body req_body;
    uint64_t req_left; /* HTTP_BODY_LENGTH: body bytes still to forward */
    struct http_chunked req_chunked;
    bool req_done;  /* the whole request went to the server */
    bool retried;   /* sent again after a reused connection failed (once at most) */
    char *req_head; /* rewritten head for the server, kept for a retry (owned) */
    size_t req_head_len;

    /* Response framing. */
    bool resp_head_done; /* the final (non-1xx) response head went to the client */
    enum http_body resp_body;
    uint64_t resp_left;
    struct http_chunked resp_chunked;
    bool resp_done;
    bool server_keep_alive; /* the server connection may be reused */
};

struct http_sess {
    enum http_phase phase;
    struct http_txn txn;
    unsigned nrequests;  /* requests seen on this connection */
    bool tls;            /* the client side speaks TLS */
    SSL *ssl;            /* client TLS (owned by client.bev once opened) */
    struct event *pp_ev; /* reading the PROXY header */
    const char *sni;     /* SNI of the client handshake, "" none (ssl's, or static) */
    const char *tls_version;
    const char *tls_cipher;
    struct timeval handshake_started;
    bool server_pooled; /* s->server came from the pool */
    bool server_tls;    /* s->server.bev is a TLS bufferevent */
    bool server_pp_tls; /* s->server.bev is the plain TCP connect of a TLS server that gets a
                           PROXY header first; TLS starts on it once connected */
    bool close_after;   /* close once the current response is out */
    bool lingering;     /* closing: our FIN is sent, discarding what the client still sends */
};

/* http_session.c */
void http_exchange_failed(struct session *s, unsigned status, const char *result);
void http_server_connected(struct session *s);

/* http_upstream.c: connections to servers and the per-worker pool. */

/*
 * Gives s a connection to srv: from the worker's pool when one is idle there
 * (http_server_connected runs at once), else a new connect (TLS for backends
 * with tls:). On failure the next server of the backend is tried, each once;
 * when none is left http_exchange_failed(s, 503, ...) runs. srv NULL (no
 * server usable now) or full: when every live server is at its
 * max_connections the request waits for a slot (server_queue.h) up to
 * timeouts.connect, then gets 503 "queue-timeout"; else 503 "no-server".
 */
void http_upstream_connect(struct session *s, struct server *srv);

/* As http_upstream_connect, but never from the pool (a pooled one just failed). */
void http_upstream_connect_new(struct session *s, struct server *srv);

/* The connect or queue deadline passed (HTTP_CONNECT phase). */
void http_upstream_connect_timeout(struct session *s);

/* Gives s->server back to the pool when it may be reused, else closes it. */
void http_upstream_release(struct session *s, bool reusable);

/* http_forward.c: the heads sent on. */

/* Values of the forwarded headers for one request. */
struct http_fwd {
    const struct sockaddr *client; /* real client address */
    const char *proto;             /* "https" or "http" */
    bool add_forwarded;            /* listener forwarded_headers */
    bool keep_prior;               /* append to the client's (trusted PROXY peer) */
    bool upgrade;                  /* keep Connection: upgrade + Upgrade */
};

/*
 * Writes the request head to send to the server: request line with the
 * client's version, headers minus hop-by-hop ones and (when add_forwarded)
 * minus the client's forwarded headers unless kept, plus our forwarded
 * headers. Returns a malloc'ed head and its length, NULL on out of memory
 * or a head too large.
 */
char *http_forward_request(const struct http_head *h, const struct http_fwd *f, size_t *len);

/* Extra headers to put on a response to the client. */
struct http_resp_extra {
    const char *set_cookie; /* full Set-Cookie value, NULL none */
    const char *hsts;       /* Strict-Transport-Security value, NULL none */
    bool close;             /* send Connection: close */
    bool keep_alive_10;     /* HTTP/1.0 client kept alive: Connection: keep-alive */
};

/*
 * Appends the response head for the client to out: status line, headers
 * minus hop-by-hop ones (a 101 keeps Connection and Upgrade), plus extra.
 * Returns bytes appended, or -1.
 */
int http_forward_response(struct evbuffer *out, const struct http_head *h,
                          const struct http_resp_extra *x);

/* http_reply.c: responses made by the gateway itself. */

/*
 * Queues a short response to the client (text/plain body naming the
 * status), with location for redirects (NULL otherwise) and HSTS when the
 * listener sets it. close: add Connection: close. Returns bytes queued.
 */
size_t http_reply(struct session *s, unsigned status, const char *location, bool close);

#endif
