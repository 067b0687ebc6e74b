/*
 * tlsgate origin: the lab backend. Answers every HTTP/1.1 request (plain or
 * TLS, optionally behind a PROXY v1/v2 header) with JSON describing what it
 * received, plus a few test routes (/healthz, /bytes/N, /status/N, /delay/MS,
 * /close, WebSocket echo).
 *
 * Threads: the main thread parses options, binds every socket (so errors are
 * reported before anything runs), starts --workers threads each with its own
 * event_base and SO_REUSEPORT listeners, then waits in sigwait() for
 * SIGINT/SIGTERM and stops the workers through a pipe each (SIGUSR1 asks
 * them through the same pipe to stop or resume listening). Workers share
 * only read-only state (options, SSL_CTX, the byte pattern).
 *
 * A connection is one struct oconn with plain read/write events on its socket
 * (TLS through an SSL object on the same socket: measured faster than
 * bufferevents, which cost an ioctl and two epoll_ctl per request). A read
 * event reads once, runs the request state machine over the input, and
 * writes the responses at once; the write event is only armed while output
 * is pending. Requests are answered in order, one at a time; pipelined ones
 * wait in the input buffer. Output is bounded: request processing pauses
 * above OUT_HIGH buffered bytes and resumes below OUT_LOW. Idle, preamble and
 * linger deadlines are checked by a once-a-second sweep per worker instead
 * of a timer per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "addr.h"
#include "log.h"
#include "origin.h"
#include "origin_http.h"
#include "proxy_proto.h"

#define OUT_HIGH      (256 * 1024) /* stop producing output above this many buffered bytes */
#define OUT_LOW       (64 * 1024)  /* ...and resume below this */
#define READ_MIN      (16 * 1024)  /* first read size; reads double while they fill up */
#define READ_MAX      (256 * 1024) /* largest single read */
#define FLUSH_ROUNDS  16           /* write/refill rounds per event before yielding */
#define WS_CHUNK      (64 * 1024)  /* WebSocket payload unmasked per step */
#define BYTES_MAX     (UINT64_C(1) << 40)
#define DELAY_MAX_MS  600000
#define IDLE_S        60 /* no progress reading or writing: close */
#define PREAMBLE_S    10 /* HTTPS: PROXY header or ClientHello must arrive by then */
#define LINGER_S      2  /* after the last response: wait this long for the client's FIN */
#define WORKERS_MAX   256
#define NAME_MAX_LEN  64
#define PATTERN       "tlsgate-origin\n"
#define PATTERN_LEN   (sizeof(PATTERN) - 1)
#define PATTERN_BLOCK (PATTERN_LEN * 4369) /* 65535 bytes: whole periods, one reference each */
#define EMPTY_SHA256  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Bytes of /bytes/N responses: PATTERN repeated, plus one spare period for any start offset. */
static char bytes_block[PATTERN_BLOCK + PATTERN_LEN];

/* Connection ids, unique in the process across workers. */
static atomic_ullong conn_seq;

/* Command-line options. */
struct origin_opts {
    const char *name;  /* --name, reported in JSON and X-Origin */
    const char *http;  /* --http address text, or NULL */
    const char *https; /* --https address text, or NULL */
    const char *cert;  /* --cert PEM chain */
    const char *key;   /* --key PEM key */
    unsigned workers;  /* --workers, 1..WORKERS_MAX */
    bool quiet;        /* --quiet: no per-request log line */
};

/* One listening address (http or https) shared by every worker's socket. */
struct olisten {
    bool on;                    /* configured */
    bool tls;                   /* HTTPS */
    struct sockaddr_storage ss; /* bound address (real port after the first bind) */
    socklen_t len;              /* length of ss */
    char text[ADDR_STRLEN];     /* ss printed, for logs */
};

/* The whole server: options and read-only state shared by the workers. */
struct origin {
    struct origin_opts opt;  /* parsed options */
    struct olisten lis[2];   /* [0] http, [1] https */
    SSL_CTX *ssl_ctx;        /* with https, else NULL */
    EVP_MD *sha256;          /* fetched once, used by every body digest */
    struct oworker *workers; /* opt.workers entries */
};

/* A worker thread: its loop, listeners and connections. */
struct oworker {
    struct origin *o;              /* the server */
    unsigned index;                /* 0-based, "wN" in logs */
    pthread_t thread;              /* valid if started */
    bool started;                  /* thread was created and must be joined */
    struct event_base *base;       /* this thread's loop, owned */
    struct evconnlistener *lev[2]; /* per olisten, NULL if not configured; own their fd */
    struct event *accept_retry;    /* re-enables listeners after EMFILE and the like */
    struct event *tick_ev;         /* once a second: advance tick, close overdue connections */
    unsigned tick;                 /* seconds since the worker started */
    int stop_pipe[2];              /* main writes a byte to [1] to stop the loop */
    struct event *stop_ev;         /* reads stop_pipe[0] */
    struct oconn *conns;           /* open connections, doubly linked */
    struct sbuf hdr;               /* scratch: response head being rendered */
    struct sbuf body;              /* scratch: response body being rendered */
    uint8_t *scratch;              /* WS_CHUNK bytes for unmasking WebSocket payload */
};

/* Where a connection is in its life. */
enum ostate {
    OS_PREAMBLE, /* HTTPS: reading an optional PROXY header before the TLS handshake */
    OS_HEAD,     /* waiting for (more of) a request head (or the TLS handshake) */
    OS_BODY,     /* consuming a request body */
    OS_WAIT,     /* producing a response: /delay timer or /bytes stream; input waits */
    OS_WS,       /* WebSocket echo */
    OS_CLOSING,  /* flushing the last response */
    OS_LINGER,   /* write side shut; discarding input until EOF or the deadline */
};

/* One client connection. */
struct oconn {
    struct oworker *w;            /* owning worker */
    struct oconn *prev, *next;    /* in w->conns */
    enum ostate state;            /* see enum ostate */
    int fd;                       /* the socket, owned */
    SSL *ssl;                     /* TLS session on fd, owned; NULL for plain HTTP */
    struct evbuffer *in;          /* bytes read (decrypted), not yet consumed */
    struct evbuffer *out;         /* bytes to write (before encryption) */
    struct event *rev, *wev;      /* persistent read / write events on fd */
    bool rev_on, wev_on;          /* the events are added */
    bool hs_done;                 /* TLS handshake finished (unused for plain HTTP) */
    bool hs_wants_write;          /* the handshake waits for the socket to be writable */
    bool read_needs_write;        /* SSL_read returned WANT_WRITE */
    bool write_needs_read;        /* SSL_write returned WANT_READ */
    size_t tls_retry;             /* length of an SSL_write to repeat, 0 if none */
    size_t rsize;                 /* next read size, READ_MIN..READ_MAX */
    unsigned deadline;            /* worker tick at which the connection is closed */
    struct otls_pre pre;          /* OS_PREAMBLE: PROXY header bytes consumed so far */
    unsigned long long id;        /* connection_id */
    uint64_t request_no;          /* requests started on this connection */
    char client[ADDR_STRLEN];     /* peer "ip:port" */
    bool pp_checked;              /* PROXY header looked for (only at the start) */
    int pp_version;               /* 0: none, else 1 or 2 */
    bool pp_local;                /* v2 LOCAL / v1 UNKNOWN: no addresses */
    char pp_src[ADDR_STRLEN];     /* PROXY source "ip:port" */
    char pp_dst[ADDR_STRLEN];     /* PROXY destination "ip:port" */
    bool eof;                     /* client finished sending */
    bool paused;                  /* request processing waits for output to drain below OUT_LOW */
    struct ohttp_scan scan;       /* progress finding the end of the current head */
    char *head;                   /* copy of the current request head */
    size_t head_cap;              /* allocated bytes of head */
    struct ohttp_req req;         /* current request; strings point into head */
    struct ohttp_body_state body; /* request body framing and byte count */
    EVP_MD_CTX *md;               /* body digest, allocated on the first body */
    bool hashing;                 /* md holds this request's digest */
    uint64_t bytes_left;          /* /bytes: pattern bytes still to queue */
    uint64_t bytes_off;           /* /bytes: pattern bytes queued so far */
    struct event *timer;          /* /delay timer, allocated on first use */
    struct ows_state ws;          /* OS_WS */
};

static int oconn_process(struct oconn *c);
static int oconn_after_io(struct oconn *c);

/* Parses an address option into l; prints a message naming the option and returns -1 if bad. */
static int origin_addr_parse(const char *opt, const char *text, struct olisten *l)
{
    char why[160];

    if (addr_parse(text, &l->ss, &l->len, why, sizeof(why)) < 0) {
        fprintf(stderr, "tlsgate origin: %s '%s': %s\n", opt, text, why);
        return -1;
    }
    l->on = true;
    return 0;
}

/* Prints the --help text to f. */
static void origin_usage(FILE *f)
{
    fprintf(
        f,
        "usage: tlsgate origin --name N [--http ADDR] [--https ADDR --cert F --key F]\n"
        "                      [--workers N] [--quiet]\n"
        "\n"
        "A lab backend: answers every request with JSON describing what it received.\n"
        "\n"
        "  --name N       name reported in the JSON and in the X-Origin header (required)\n"
        "  --http ADDR    plain HTTP listener, host:port or [v6]:port (port 0: any free)\n"
        "  --https ADDR   HTTPS listener (TLS 1.2+, ALPN http/1.1); needs --cert/--key\n"
        "  --cert F       PEM certificate chain for --https\n"
        "  --key F        PEM private key for --https\n"
        "  --workers N    threads, each with its own SO_REUSEPORT sockets (default 1)\n"
        "  --quiet        no log line per request\n"
        "  -h, --help     this text\n"
        "\n"
        "SIGUSR1 toggles maintenance: the listening sockets close (new connections\n"
        "are refused, open ones go on); the next SIGUSR1 opens them again.\n"
        "\n"
        "A PROXY protocol v1 or v2 header before the request (or before the TLS\n"
        "ClientHello) is accepted and reported as \"proxy\".\n"
        "\n"
        "Routes (any method; a request body is always read and hashed first):\n"
        "  /healthz       200 \"ok\\n\"\n"
        "  /bytes/N       200 with exactly N bytes (N <= 2^40) of application/octet-stream:\n"
        "                 the 15-byte string \"tlsgate-origin\\n\" repeated and cut at N, i.e.\n"
        "                 byte i is \"tlsgate-origin\\n\"[i %% 15]. Regenerate with:\n"
        "                   yes tlsgate-origin | head -c N\n"
        "  /status/NNN    status NNN (200..599) with the JSON echo (no body for 204/304)\n"
        "  /delay/MS      the JSON echo after MS milliseconds (<= %d)\n"
        "  /close         the JSON echo, then the connection is closed\n"
        "  GET + Upgrade: websocket   RFC 6455 handshake, then every frame echoed back\n"
        "  anything else  200 application/json:\n"
        "    {\"origin\",\"method\",\"path\",\"version\",\"headers\":[[name,value],...],\n"
        "     \"client\",\"proxy\":null|{\"version\",\"local\",\"src\",\"dst\"},\n"
        "     \"tls\":null|{\"version\",\"cipher\",\"sni\",\"alpn\",\"resumed\"},\n"
        "     \"body_bytes\",\"body_sha256\",\"request_no\",\"connection_id\",\"worker\"}\n"
        "\n"
        "Limits: request head 64 KiB and %d header lines (else 431); malformed framing\n"
        "gets 400 and a close; a connection idle for %d s is closed.\n",
        DELAY_MAX_MS, OHTTP_HEADERS_MAX, IDLE_S);
}

/*
 * Parses argv into o. Returns -1 to go on, or the exit code to return now
 * (0 after --help, 1 after a usage error, already reported).
 */
static int origin_parse_args(struct origin *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"http", required_argument, NULL, 'p'},
        {"https", required_argument, NULL, 's'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"workers", required_argument, NULL, 'w'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *workers = NULL;
    char *end;
    long v;
    int ch;

    o->opt.workers = 1;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o->opt.name = optarg;
            break;
        case 'p':
            o->opt.http = optarg;
            break;
        case 's':
            o->opt.https = optarg;
            break;
        case 'c':
            o->opt.cert = optarg;
            break;
        case 'k':
            o->opt.key = optarg;
            break;
        case 'w':
            workers = optarg;
            break;
        case 'q':
            o->opt.quiet = true;
            break;
        case 'h':
            origin_usage(stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tlsgate origin: unexpected argument '%s'\n", argv[optind]);
        goto usage;
    }
    if (o->opt.name == NULL || o->opt.name[0] == '\0') {
        fprintf(stderr, "tlsgate origin: --name is required\n");
        goto usage;
    }
    if (strlen(o->opt.name) > NAME_MAX_LEN ||
        strspn(o->opt.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "._-:@+") != strlen(o->opt.name)) {
        fprintf(stderr, "tlsgate origin: --name '%s': up to %d of A-Z a-z 0-9 . _ - : @ +\n",
                o->opt.name, NAME_MAX_LEN);
        goto usage;
    }
    if (o->opt.http == NULL && o->opt.https == NULL) {
        fprintf(stderr, "tlsgate origin: give --http ADDR and/or --https ADDR\n");
        goto usage;
    }
    if (o->opt.https != NULL && (o->opt.cert == NULL || o->opt.key == NULL)) {
        fprintf(stderr, "tlsgate origin: --https needs --cert FILE and --key FILE\n");
        goto usage;
    }
    if (o->opt.https == NULL && (o->opt.cert != NULL || o->opt.key != NULL)) {
        fprintf(stderr, "tlsgate origin: --cert/--key are only used with --https\n");
        goto usage;
    }
    if (workers != NULL) {
        errno = 0;
        v = strtol(workers, &end, 10);
        if (errno != 0 || *end != '\0' || end == workers || v < 1 || v > WORKERS_MAX) {
            fprintf(stderr, "tlsgate origin: --workers '%s': expected 1..%d\n", workers,
                    WORKERS_MAX);
            goto usage;
        }
        o->opt.workers = (unsigned)v;
    }
    if (o->opt.http != NULL && origin_addr_parse("--http", o->opt.http, &o->lis[0]) < 0)
        goto usage;
    if (o->opt.https != NULL && origin_addr_parse("--https", o->opt.https, &o->lis[1]) < 0)
        goto usage;
    o->lis[1].tls = true;
    return -1;

usage:
    fprintf(stderr, "try 'tlsgate origin -h'\n");
    return 1;
}

/*
 * Connection lifecycle
 */

/*
 * Frees c and everything it owns; closes the socket. The caller must not
 * touch c afterwards: every function that may get here returns -1, and
 * event callbacks return right away.
 */
static void oconn_free(struct oconn *c)
{
    struct oworker *w = c->w;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    /* Events go before the socket so libevent can still unregister it. */
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->timer != NULL)
        event_free(c->timer);
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    free(c->pre.buf);
    EVP_MD_CTX_free(c->md);
    free(c->head);
    ohttp_req_free(&c->req);
    free(c);
}

/* True if the connection wants input in its current state. */
static bool oconn_reading(const struct oconn *c)
{
    switch (c->state) {
    case OS_PREAMBLE:
        return true;
    case OS_HEAD:
    case OS_BODY:
    case OS_WS:
        return !c->eof && !c->paused;
    case OS_LINGER:
        return !c->eof;
    default:
        return false; /* OS_WAIT, OS_CLOSING: input waits in the socket */
    }
}

/*
 * Arms the read event when input is wanted and the write event while output
 * is pending (or TLS needs the other direction). Returns -1 if c was freed.
 */
static int oconn_set_events(struct oconn *c)
{
    bool r = oconn_reading(c) || c->write_needs_read;
    bool wr = evbuffer_get_length(c->out) > 0 || c->read_needs_write || c->hs_wants_write;

    if (r != c->rev_on) {
        if ((r ? event_add(c->rev, NULL) : event_del(c->rev)) < 0)
            goto fail;
        c->rev_on = r;
        /* Bytes OpenSSL already holds never make the socket readable again. */
        if (r && c->ssl != NULL && c->hs_done)
            event_active(c->rev, EV_READ, 0);
    }
    if (wr != c->wev_on) {
        if ((wr ? event_add(c->wev, NULL) : event_del(c->wev)) < 0)
            goto fail;
        c->wev_on = wr;
    }
    return 0;

fail:
    log_warnx("c%llu %s: cannot update socket events", c->id, c->client);
    oconn_free(c);
    return -1;
}

/*
 * The last response is flushed: shut our write side and wait briefly for the
 * client's FIN, so a close with unread input does not reset the connection
 * before the client read the response. Returns -1 if c was freed.
 */
static int oconn_linger(struct oconn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl); /* close_notify; best effort */
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
    if (c->eof) {
        oconn_free(c);
        return -1;
    }
    c->state = OS_LINGER;
    c->deadline = c->w->tick + LINGER_S;
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    return 0;
}

/* No more requests: flush what is queued, then linger. Returns -1 if c was freed. */
static int oconn_closing(struct oconn *c)
{
    c->state = OS_CLOSING;
    if (evbuffer_get_length(c->out) == 0)
        return oconn_linger(c);
    return 0;
}

/*
 * Responses
 */

/* Renders a status line and the common headers into w->hdr. */
static void oconn_head(struct oconn *c, int status, const char *ctype, int64_t clen)
{
    sbuf_reset(&c->w->hdr);
    ohttp_render_head(&c->w->hdr, status, ctype, clen, c->w->o->opt.name, c->req.keep_alive,
                      c->req.minor);
}

/* Logs one served request unless --quiet. */
static void oconn_log(struct oconn *c, int status, uint64_t len)
{
    if (c->w->o->opt.quiet || !log_enabled(LOG_LEVEL_INFO))
        return;
    log_info("c%llu #%llu %s %.*s %.*s %d %llu", c->id, (unsigned long long)c->request_no,
             c->client, (int)c->req.method.len, c->req.method.p, (int)c->req.target.len,
             c->req.target.p, status, (unsigned long long)len);
}

/* Queues the rendered head and, unless HEAD, body[0..n). Returns 0 or -1 (out of memory). */
static int oconn_send(struct oconn *c, const void *body, size_t n)
{
    if (c->w->hdr.oom)
        return -1;
    if (evbuffer_add(c->out, c->w->hdr.p, c->w->hdr.len) < 0)
        return -1;
    if (!c->req.is_head && n > 0 && evbuffer_add(c->out, body, n) < 0)
        return -1;
    return 0;
}

/*
 * Answers status with a short text body and closes (framing errors, limits);
 * why goes to the log. Returns -1 if c was freed, else 0.
 */
static int oconn_fail(struct oconn *c, int status, const char *why)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, ohttp_reason(status));

    log_warnx("c%llu %s: %s: answering %d and closing", c->id, c->client, why, status);
    c->req.keep_alive = false;
    c->req.is_head = false;
    oconn_head(c, status, "text/plain", n);
    if (oconn_send(c, body, (size_t)n) < 0) {
        oconn_free(c);
        return -1;
    }
    return oconn_closing(c);
}

/* The request is answered: close, or wait for the next one. Returns 1, 0 or -1 (freed). */
static int oconn_request_done(struct oconn *c)
{
    if (!c->req.keep_alive)
        return oconn_closing(c);
    c->state = OS_HEAD;
    return 1;
}

/* Writes the hex SHA-256 of this request's body into hex (65 bytes). */
static void oconn_sha256_hex(struct oconn *c, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;

    if (!c->hashing || EVP_DigestFinal_ex(c->md, md, &n) != 1 || n != 32) {
        memcpy(hex, EMPTY_SHA256, 65);
        return;
    }
    c->hashing = false;
    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

/* Queues the JSON echo with status. Returns 0, or -1 if c was freed. */
static int oconn_queue_json(struct oconn *c, int status)
{
    bool bodyless = status == 204 || status == 304;
    char sha[65];
    struct oecho e = {
        .name = c->w->o->opt.name,
        .client = c->client,
        .pp_version = c->pp_version,
        .pp_local = c->pp_local,
        .pp_src = c->pp_src,
        .pp_dst = c->pp_dst,
        .ssl = c->ssl,
        .body_bytes = c->body.bytes,
        .body_sha256 = sha,
        .request_no = c->request_no,
        .conn_id = c->id,
        .worker = c->w->index,
    };

    oconn_sha256_hex(c, sha);
    sbuf_reset(&c->w->body);
    ohttp_render_echo(&c->w->body, &c->req, &e);
    if (bodyless)
        oconn_head(c, status, NULL, -1);
    else
        oconn_head(c, status, "application/json", (int64_t)c->w->body.len);
    if (c->w->body.oom || oconn_send(c, c->w->body.p, bodyless ? 0 : c->w->body.len) < 0) {
        oconn_free(c);
        return -1;
    }
    oconn_log(c, status, bodyless ? 0 : c->w->body.len);
    return 0;
}

/* Sends the JSON echo with status. Returns as oconn_request_done. */
static int oconn_send_json(struct oconn *c, int status)
{
    if (oconn_queue_json(c, status) < 0)
        return -1;
    return oconn_request_done(c);
}

/* Sends a small text response. Returns as oconn_request_done. */
static int oconn_send_text(struct oconn *c, int status, const char *text)
{
    size_t n = strlen(text);

    oconn_head(c, status, "text/plain", (int64_t)n);
    if (oconn_send(c, text, n) < 0) {
        oconn_free(c);
        return -1;
    }
    oconn_log(c, status, n);
    return oconn_request_done(c);
}

/*
 * Queues /bytes pattern by reference (no copy for plain HTTP) until the
 * output holds OUT_HIGH bytes or the response is complete. Returns true when
 * complete.
 */
static bool oconn_fill_bytes(struct oconn *c)
{
    while (c->bytes_left > 0 && evbuffer_get_length(c->out) < OUT_HIGH) {
        size_t k = c->bytes_left < PATTERN_BLOCK ? (size_t)c->bytes_left : PATTERN_BLOCK;

        if (evbuffer_add_reference(c->out, bytes_block + c->bytes_off % PATTERN_LEN, k, NULL,
                                   NULL) < 0)
            break; /* out of memory: try again when the output drains */
        c->bytes_left -= k;
        c->bytes_off += k;
    }
    return c->bytes_left == 0;
}

/* An OS_WAIT response is complete: go on with the connection. Returns -1 if c was freed. */
static int oconn_resume(struct oconn *c)
{
    int r = oconn_request_done(c);

    if (r <= 0)
        return r;
    return oconn_process(c); /* pipelined requests may be buffered already */
}

/* Starts a /bytes/N response. Returns as oconn_request_done. */
static int oconn_start_bytes(struct oconn *c, uint64_t n)
{
    oconn_head(c, 200, "application/octet-stream", (int64_t)n);
    if (oconn_send(c, NULL, 0) < 0) {
        oconn_free(c);
        return -1;
    }
    oconn_log(c, 200, n);
    c->bytes_left = c->req.is_head ? 0 : n;
    c->bytes_off = 0;
    if (oconn_fill_bytes(c))
        return oconn_request_done(c);
    c->state = OS_WAIT; /* oconn_after_io queues the rest as the output drains */
    return 0;
}

/* /delay timer fired: answer, then go on with the connection. */
static void oconn_delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oconn *c = arg;

    c->deadline = c->w->tick + IDLE_S;
    if (oconn_queue_json(c, 200) < 0 || oconn_resume(c) < 0)
        return;
    oconn_after_io(c);
}

/* Starts a /delay/MS response. Returns 0, or -1 if c was freed. */
static int oconn_start_delay(struct oconn *c, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    if (c->timer == NULL && (c->timer = evtimer_new(c->w->base, oconn_delay_cb, c)) == NULL) {
        log_warnx("c%llu: cannot allocate a timer", c->id);
        oconn_free(c);
        return -1;
    }
    if (evtimer_add(c->timer, &tv) < 0) {
        oconn_free(c);
        return -1;
    }
    c->state = OS_WAIT;
    c->deadline = c->w->tick + IDLE_S + (unsigned)(ms / 1000) + 1;
    return 0;
}

/*
 * True if path is prefix followed by a decimal number no greater than max;
 * *bad is set when the prefix matches but the number does not.
 */
static bool path_number(struct ostr path, const char *prefix, uint64_t max, uint64_t *out,
                        bool *bad)
{
    size_t n = strlen(prefix);
    struct ostr rest;

    if (path.len < n || memcmp(path.p, prefix, n) != 0)
        return false;
    rest.p = path.p + n;
    rest.len = path.len - n;
    *bad = ostr_to_u64(rest, max, out) < 0;
    return true;
}

/* Switches to WebSocket echo after a valid upgrade request. Returns 1 or -1 (freed). */
static int oconn_start_ws(struct oconn *c)
{
    char accept[29];
    struct sbuf *b = &c->w->hdr;

    if (ows_accept_key(c->req.ws_key, accept) < 0)
        return oconn_fail(c, 500, "cannot compute Sec-WebSocket-Accept") < 0 ? -1 : 0;
    sbuf_reset(b);
    sbuf_adds(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    sbuf_add(b, accept, 28);
    sbuf_add(b, "\r\nX-Origin: ", 12);
    sbuf_adds(b, c->w->o->opt.name);
    sbuf_add(b, "\r\n\r\n", 4);
    if (oconn_send(c, NULL, 0) < 0) {
        oconn_free(c);
        return -1;
    }
    oconn_log(c, 101, 0);
    memset(&c->ws, 0, sizeof(c->ws));
    c->state = OS_WS;
    return 1;
}

/*
 * The request (head and body) is complete: answer it. Returns 1 to go on
 * with the next request, 0 to wait, -1 if c was freed.
 */
static int oconn_respond(struct oconn *c)
{
    struct ostr path = c->req.path;
    bool bad = false;
    uint64_t n;

    if (c->req.ws_upgrade)
        return oconn_start_ws(c);
    if (path.len == 8 && memcmp(path.p, "/healthz", 8) == 0)
        return oconn_send_text(c, 200, "ok\n");
    if (path_number(path, "/bytes/", BYTES_MAX, &n, &bad)) {
        if (bad)
            return oconn_send_text(c, 400, "bad /bytes/N: N is 0..1099511627776\n");
        return oconn_start_bytes(c, n);
    }
    if (path_number(path, "/status/", 599, &n, &bad)) {
        if (bad || n < 200)
            return oconn_send_text(c, 400, "bad /status/NNN: NNN is 200..599\n");
        return oconn_send_json(c, (int)n);
    }
    if (path_number(path, "/delay/", DELAY_MAX_MS, &n, &bad)) {
        if (bad)
            return oconn_send_text(c, 400, "bad /delay/MS: MS is 0..600000\n");
        return oconn_start_delay(c, n);
    }
    if (path.len == 6 && memcmp(path.p, "/close", 6) == 0)
        c->req.keep_alive = false;
    return oconn_send_json(c, 200);
}

/*
 * Request reading
 */

/* Records a parsed PROXY header. */
static void oconn_set_proxy(struct oconn *c, const struct pp_info *info)
{
    c->pp_version = info->version;
    c->pp_local = info->local;
    if (!info->local) {
        addr_format((const struct sockaddr *)&info->src, c->pp_src, ADDR_STRLEN);
        addr_format((const struct sockaddr *)&info->dst, c->pp_dst, ADDR_STRLEN);
    }
}

/*
 * Plain HTTP: looks for a PROXY header at the start of the input. Returns 1
 * when decided (header stripped or absent), 0 to wait for more, or as
 * oconn_fail on a malformed header.
 */
static int oconn_plain_proxy(struct oconn *c)
{
    size_t len = evbuffer_get_length(c->in), n = len < 16 ? len : 16;
    struct pp_info info;
    enum pp_result r;

    if (len == 0)
        return 0;
    for (;;) {
        r = pp_parse(evbuffer_pullup(c->in, (ev_ssize_t)n), n, PP_ANY, &info);
        if (r != PP_NEED_MORE)
            break;
        if (n == len)
            return 0;
        if (n == PP_V2_MAX) {
            r = PP_BAD;
            break;
        }
        n = len < PP_V2_MAX ? len : PP_V2_MAX;
    }
    c->pp_checked = true;
    if (r == PP_ABSENT)
        return 1;
    if (r != PP_OK || info.consumed > n)
        return oconn_fail(c, 400, "malformed PROXY header");
    oconn_set_proxy(c, &info);
    evbuffer_drain(c->in, info.consumed);
    return 1;
}

/* Drops CR/LF before a request line (RFC 9112 2.2 allows them between requests). */
static void oconn_skip_empty_lines(struct evbuffer *in)
{
    for (;;) {
        struct evbuffer_iovec v;
        const char *p;
        size_t i = 0;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
            return;
        p = v.iov_base;
        while (i < v.iov_len && (p[i] == '\r' || p[i] == '\n'))
            i++;
        if (i == 0)
            return;
        evbuffer_drain(in, i);
    }
}

/* A request head is in c->req: set up its body or answer. Returns as oconn_respond. */
static int oconn_start_request(struct oconn *c)
{
    c->request_no++;
    memset(&c->body, 0, sizeof(c->body));
    if (c->req.body == OHTTP_BODY_NONE)
        return oconn_respond(c);
    if ((c->md == NULL && (c->md = EVP_MD_CTX_new()) == NULL) ||
        EVP_DigestInit_ex2(c->md, c->w->o->sha256, NULL) != 1)
        return oconn_fail(c, 500, "cannot start SHA-256") < 0 ? -1 : 0;
    c->hashing = true;
    c->body.kind = c->req.body;
    c->body.left = c->req.content_length;
    if (c->req.expect_continue && c->req.minor == 1)
        evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = OS_BODY;
    return 1;
}

/* Reads a request head from the input. Returns 1 on progress, 0 to wait, -1 if c was freed. */
static int oconn_read_head(struct oconn *c)
{
    size_t len, hl;
    int r, st;

    if (!c->pp_checked && (r = oconn_plain_proxy(c)) <= 0)
        return r;
    if (c->scan.scanned == 0)
        oconn_skip_empty_lines(c->in);
    len = evbuffer_get_length(c->in);
    if (len == 0)
        return 0;
    hl = ohttp_scan_head(&c->scan, c->in, OHTTP_HEAD_MAX);
    if (hl == 0)
        return len >= OHTTP_HEAD_MAX ? oconn_fail(c, 431, "request head over 64 KiB") : 0;
    if (hl > c->head_cap) {
        size_t cap = c->head_cap ? c->head_cap : 1024;
        char *h;

        while (cap < hl)
            cap *= 2;
        if ((h = realloc(c->head, cap)) == NULL)
            return oconn_fail(c, 500, "out of memory");
        c->head = h;
        c->head_cap = cap;
    }
    evbuffer_remove(c->in, c->head, hl);
    memset(&c->scan, 0, sizeof(c->scan));
    st = ohttp_parse_head(c->head, hl, &c->req);
    if (st != 0)
        return oconn_fail(c, st,
                          st == 505   ? "not HTTP/1.x"
                          : st == 431 ? "too many header lines"
                          : st == 500 ? "out of memory"
                                      : "malformed request head");
    return oconn_start_request(c);
}

/* Consumes request body bytes. Returns 1 (answered), 0 to wait, -1 if c was freed. */
static int oconn_read_body(struct oconn *c)
{
    switch (ohttp_body_feed(&c->body, c->in, c->md)) {
    case OHTTP_DONE:
        return oconn_respond(c);
    case OHTTP_BAD:
        return oconn_fail(c, 400, "malformed chunked body");
    default:
        return 0;
    }
}

/* WebSocket echo over the buffered input. Returns 0 to wait, -1 if c was freed. */
static int oconn_ws(struct oconn *c)
{
    switch (ows_echo(&c->ws, c->in, c->out, c->w->scratch, WS_CHUNK, OUT_HIGH)) {
    case OWS_FULL:
        c->paused = true;
        return 0;
    case OWS_BAD:
        log_warnx("c%llu %s: bad WebSocket frame; closing", c->id, c->client);
        return oconn_closing(c);
    case OWS_CLOSE:
        return oconn_closing(c);
    default:
        return 0;
    }
}

/* The client finished sending and the input is exhausted. Returns 0 or -1 (freed). */
static int oconn_eof(struct oconn *c)
{
    switch (c->state) {
    case OS_HEAD:
    case OS_WS:
        if (evbuffer_get_length(c->out) > 0)
            return oconn_closing(c);
        oconn_free(c);
        return -1;
    case OS_BODY:
        log_warnx("c%llu %s: connection closed in a request body", c->id, c->client);
        oconn_free(c);
        return -1;
    case OS_LINGER:
        oconn_free(c);
        return -1;
    default:
        return 0; /* a response is in progress; it ends the connection when done */
    }
}

/*
 * Runs the request state machine over the buffered input until it needs
 * more bytes or must wait. Returns -1 if c was freed, else 0.
 */
static int oconn_process(struct oconn *c)
{
    int r;

    for (;;) {
        switch (c->state) {
        case OS_HEAD:
            if (evbuffer_get_length(c->out) >= OUT_HIGH) {
                c->paused = true; /* a client pipelining without reading */
                return 0;
            }
            r = oconn_read_head(c);
            break;
        case OS_BODY:
            r = oconn_read_body(c);
            break;
        case OS_WS:
            r = oconn_ws(c);
            if (r == 0 && c->paused)
                return 0;
            break;
        case OS_LINGER:
            evbuffer_drain(c->in, evbuffer_get_length(c->in));
            r = 0;
            break;
        default:
            r = 0; /* OS_WAIT, OS_CLOSING: input waits */
            break;
        }
        if (r < 0)
            return -1;
        if (r == 0)
            break;
    }
    if (c->eof)
        return oconn_eof(c);
    return 0;
}

/*
 * Socket I/O
 */

/* Logs why a connection failed (TLS errors drained from OpenSSL's queue). */
static void oconn_log_failure(struct oconn *c, const char *what)
{
    char why[256];

    if (c->ssl != NULL && otls_errors(why, sizeof(why)) > 0)
        log_warnx("c%llu %s: TLS %s: %s", c->id, c->client, what, why);
    else if (c->state != OS_LINGER && c->state != OS_CLOSING)
        log_debug("c%llu %s: %s: %s", c->id, c->client, what, strerror(errno));
}

/* One read(2) of up to max bytes appended to in: OIO_DONE, OIO_EOF or OIO_ERROR. */
static enum oio oio_read_plain(int fd, struct evbuffer *in, size_t max, size_t *got)
{
    struct evbuffer_iovec v;
    ssize_t n;

    *got = 0;
    if (evbuffer_reserve_space(in, (ev_ssize_t)max, &v, 1) != 1)
        return OIO_ERROR;
    n = read(fd, v.iov_base, v.iov_len);
    if (n <= 0) {
        evbuffer_commit_space(in, &v, 0);
        if (n == 0)
            return OIO_EOF;
        return errno == EAGAIN || errno == EINTR ? OIO_DONE : OIO_ERROR;
    }
    v.iov_len = (size_t)n;
    evbuffer_commit_space(in, &v, 1);
    *got = (size_t)n;
    return OIO_DONE;
}

/* Reads what the socket has and processes it. Returns -1 if c was freed. */
static int oconn_do_read(struct oconn *c)
{
    size_t got = 0;
    enum oio r;

    if (!oconn_reading(c))
        return 0; /* a stale activation */
    c->read_needs_write = false;
    if (c->ssl != NULL)
        r = otls_read(c->ssl, c->in, c->rsize, &got);
    else
        r = oio_read_plain(c->fd, c->in, c->rsize, &got);
    /* Bulk uploads get bigger reads; small requests keep small buffers. */
    if (got >= c->rsize && c->rsize < READ_MAX)
        c->rsize *= 2;
    else if (got < READ_MIN / 2)
        c->rsize = READ_MIN;
    switch (r) {
    case OIO_ERROR:
        oconn_log_failure(c, "read");
        oconn_free(c);
        return -1;
    case OIO_EOF:
        c->eof = true;
        break;
    case OIO_WANT_WRITE:
        c->read_needs_write = true;
        break;
    case OIO_MORE:
        event_active(c->rev, EV_READ, 0); /* OpenSSL may hold more; come back */
        break;
    default:
        break;
    }
    if (got == 0 && !c->eof)
        return 0;
    return oconn_process(c);
}

/* Writes pending output: OIO_DONE, OIO_WANT_WRITE, OIO_WANT_READ or OIO_ERROR. */
static enum oio oconn_flush(struct oconn *c)
{
    enum oio r;
    int n;

    c->write_needs_read = false;
    if (c->ssl != NULL) {
        r = otls_write(c->ssl, c->out, &c->tls_retry);
        c->write_needs_read = r == OIO_WANT_READ;
        return r;
    }
    n = evbuffer_write_atmost(c->out, c->fd, -1);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? OIO_WANT_WRITE : OIO_ERROR;
    return evbuffer_get_length(c->out) > 0 ? OIO_WANT_WRITE : OIO_DONE;
}

/*
 * After any event: writes pending output and reacts to it draining (more
 * /bytes, the end of a closing connection, paused request processing going
 * on), a bounded number of rounds so one fast client cannot starve the
 * others; then arms the events for what is left. Returns -1 if c was freed.
 */
static int oconn_after_io(struct oconn *c)
{
    int round;

    for (round = 0; round < FLUSH_ROUNDS; round++) {
        bool blocked = false;

        if (evbuffer_get_length(c->out) > 0) {
            enum oio r = oconn_flush(c);

            if (r == OIO_ERROR) {
                oconn_log_failure(c, "write");
                oconn_free(c);
                return -1;
            }
            blocked = r != OIO_DONE;
        }
        if (evbuffer_get_length(c->out) > OUT_LOW)
            break; /* the write event brings us back */
        if (c->state == OS_WAIT && c->bytes_left > 0) {
            if (oconn_fill_bytes(c) && oconn_resume(c) < 0)
                return -1;
        } else if (c->state == OS_CLOSING) {
            if (evbuffer_get_length(c->out) == 0 && oconn_linger(c) < 0)
                return -1;
            break;
        } else if (c->paused) {
            c->paused = false;
            if (oconn_process(c) < 0)
                return -1;
        } else {
            break;
        }
        if (blocked)
            break;
    }
    return oconn_set_events(c);
}

/* HTTPS: the preamble is over; set up the SSL object. Returns 0 or -1 (logged). */
static int oconn_start_tls(struct oconn *c)
{
    c->pp_checked = true;
    free(c->pre.buf);
    c->pre.buf = NULL;
    c->state = OS_HEAD;
    c->deadline = c->w->tick + IDLE_S;
    if ((c->ssl = SSL_new(c->w->o->ssl_ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        log_ssl_error("c%llu %s: cannot set up TLS", c->id, c->client);
        return -1;
    }
    SSL_set_accept_state(c->ssl);
    return 0;
}

/* HTTPS: reads an optional PROXY header. Returns 1 when TLS may start, 0 to wait, -1 to close. */
static int oconn_preamble(struct oconn *c)
{
    struct pp_info info;

    switch (otls_preamble(c->fd, &c->pre, &info)) {
    case OTLS_PRE_WAIT:
        return 0;
    case OTLS_PRE_PROXY:
        oconn_set_proxy(c, &info);
        return 1;
    case OTLS_PRE_NONE:
        return 1;
    case OTLS_PRE_BAD:
        log_warnx("c%llu %s: malformed PROXY header before TLS; closing", c->id, c->client);
        return -1;
    default:
        return -1;
    }
}

/* HTTPS: advances the handshake. Returns 1 when done, 0 to wait, -1 if c was freed. */
static int oconn_handshake(struct oconn *c)
{
    enum oio r = otls_handshake(c->ssl);

    c->hs_wants_write = r == OIO_WANT_WRITE;
    if (r == OIO_DONE) {
        c->hs_done = true;
        return 1;
    }
    if (r == OIO_EOF || r == OIO_ERROR) {
        oconn_log_failure(c, "handshake");
        oconn_free(c);
        return -1;
    }
    return oconn_set_events(c) < 0 ? -1 : 0;
}

/* Read or write event on a client socket. */
static void oconn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oconn *c = arg;
    int r;

    if (c->state == OS_PREAMBLE) {
        if ((r = oconn_preamble(c)) == 0)
            return;
        if (r < 0 || oconn_start_tls(c) < 0) {
            oconn_free(c);
            return;
        }
    } else if (c->state != OS_LINGER) {
        c->deadline = c->w->tick + IDLE_S;
    }
    if (c->ssl != NULL && !c->hs_done) {
        if ((r = oconn_handshake(c)) <= 0)
            return;
        what |= EV_READ; /* the first request may have come with the Finished */
    }
    if (((what & EV_READ) || c->read_needs_write) && oconn_do_read(c) < 0)
        return;
    oconn_after_io(c);
}

/*
 * Workers
 */

/* Accepts one connection on listener li of worker w (takes fd). */
static void oworker_accept(struct oworker *w, int li, evutil_socket_t fd, struct sockaddr *sa)
{
    struct oconn *c = calloc(1, sizeof(*c));
    int one = 1;

    if (c == NULL) {
        close(fd);
        return;
    }
    c->w = w;
    c->fd = fd;
    c->id = atomic_fetch_add(&conn_seq, 1) + 1;
    c->rsize = READ_MIN;
    addr_format(sa, c->client, ADDR_STRLEN);
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->state = w->o->lis[li].tls ? OS_PREAMBLE : OS_HEAD;
    c->deadline = w->tick + (c->state == OS_PREAMBLE ? PREAMBLE_S : IDLE_S);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, oconn_io_cb, c);
    c->wev = event_new(w->base, fd, EV_WRITE | EV_PERSIST, oconn_io_cb, c);
    if (c->in == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL) {
        log_warnx("c%llu %s: out of memory", c->id, c->client);
        oconn_free(c);
        return;
    }
    log_debug("c%llu %s: accepted on %s", c->id, c->client, w->o->lis[li].text);
    oconn_set_events(c);
}

static void oworker_accept_http(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                                int salen, void *arg)
{
    oworker_accept(arg, 0, fd, sa);
}

static void oworker_accept_https(struct evconnlistener *lev, evutil_socket_t fd,
                                 struct sockaddr *sa, int salen, void *arg)
{
    oworker_accept(arg, 1, fd, sa);
}

/* accept() failed (e.g. EMFILE): pause accepting for 100 ms instead of spinning. */
static void oworker_accept_error(struct evconnlistener *lev, void *arg)
{
    struct oworker *w = arg;
    struct timeval tv = {0, 100000};
    int i;

    log_warn("w%u: accept", w->index);
    for (i = 0; i < 2; i++)
        if (w->lev[i] != NULL)
            evconnlistener_disable(w->lev[i]);
    evtimer_add(w->accept_retry, &tv);
}

/* Re-enables the listeners after oworker_accept_error. */
static void oworker_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct oworker *w = arg;
    int i;

    for (i = 0; i < 2; i++)
        if (w->lev[i] != NULL)
            evconnlistener_enable(w->lev[i]);
}

/* Once a second: closes connections past their deadline (idle, preamble, linger). */
static void oworker_tick(evutil_socket_t fd, short what, void *arg)
{
    struct oworker *w = arg;
    struct oconn *c, *next;

    w->tick++;
    for (c = w->conns; c != NULL; c = next) {
        next = c->next;
        if ((int)(c->deadline - w->tick) <= 0) {
            if (c->state != OS_LINGER)
                log_debug("c%llu %s: timeout in state %d", c->id, c->client, (int)c->state);
            oconn_free(c);
        }
    }
}

static int origin_listen(struct olisten *l, bool reuseport, bool record);

/*
 * Opens the worker's listening sockets that are configured and not open.
 * record: first start (main thread), so the real port of ":0" is kept.
 * Returns 0 or -1 (logged).
 */
static int oworker_listen(struct oworker *w, bool record)
{
    static evconnlistener_cb accept_cbs[2] = {oworker_accept_http, oworker_accept_https};
    struct origin *o = w->o;
    int i, fd;

    for (i = 0; i < 2; i++) {
        if (!o->lis[i].on || w->lev[i] != NULL)
            continue;
        if ((fd = origin_listen(&o->lis[i], o->opt.workers > 1, record)) < 0)
            return -1;
        w->lev[i] = evconnlistener_new(w->base, accept_cbs[i], w,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        if (w->lev[i] == NULL) {
            close(fd);
            log_errorx("origin: out of memory for a listener");
            return -1;
        }
        evconnlistener_set_error_cb(w->lev[i], oworker_accept_error);
    }
    return 0;
}

/*
 * Accepts and serves what waits in listener i's accept queue: closing a
 * listening socket resets the connections the kernel already completed.
 */
static void oworker_drain_accept_queue(struct oworker *w, int i)
{
    static evconnlistener_cb accept_cbs[2] = {oworker_accept_http, oworker_accept_https};
    evutil_socket_t lfd = evconnlistener_get_fd(w->lev[i]);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;

    while ((fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        accept_cbs[i](w->lev[i], fd, (struct sockaddr *)&ss, (int)len, w);
        len = sizeof(ss);
    }
}

/*
 * SIGUSR1, "maintenance": closes the listening sockets (new connections are
 * refused; open ones go on), or opens them again. Lets a lab or a soak make a
 * server flap without cutting a request in flight.
 */
static void oworker_toggle_listeners(struct oworker *w)
{
    bool open = false;
    int i;

    for (i = 0; i < 2; i++)
        open |= w->lev[i] != NULL;
    if (!open) {
        if (oworker_listen(w, false) == 0)
            log_info("origin %s: listening again", w->o->opt.name);
        return;
    }
    for (i = 0; i < 2; i++) {
        if (w->lev[i] != NULL) {
            oworker_drain_accept_queue(w, i);
            evconnlistener_free(w->lev[i]); /* closes the socket */
            w->lev[i] = NULL;
        }
    }
    log_info("origin %s: maintenance: not accepting new connections", w->o->opt.name);
}

/* The main thread asked this worker to stop. */
static void oworker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oworker *w = arg;
    char b;

    if (read(fd, &b, 1) == 1 && b == 'm') {
        oworker_toggle_listeners(w);
        return;
    }
    event_base_loopbreak(w->base);
}

/* Worker thread body: run the loop until stopped. Cleanup is oworker_free's. */
static void *oworker_run(void *arg)
{
    struct oworker *w = arg;
    char name[16];

    snprintf(name, sizeof(name), "w%u", w->index);
    log_set_thread_name(name);
    if (event_base_dispatch(w->base) < 0)
        log_errorx("w%u: event loop failed", w->index);
    return NULL;
}

/*
 * Opens a listening socket for l. SO_REUSEPORT only with several workers, so
 * a single origin still fails loudly on a port already in use. Records the
 * bound address (the real port after port 0) so the other workers share it.
 * Returns the fd, or -1 (logged, naming the address).
 */
static int origin_listen(struct olisten *l, bool reuseport, bool record)
{
    char text[ADDR_STRLEN];
    int fd, one = 1;

    addr_format((struct sockaddr *)&l->ss, text, sizeof(text));
    fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("origin: socket for %s", text);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        log_error("origin: SO_REUSEPORT on %s", text);
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&l->ss, l->len) < 0) {
        log_error("origin: cannot bind %s", text);
        goto fail;
    }
    if (listen(fd, 4096) < 0) {
        log_error("origin: cannot listen on %s", text);
        goto fail;
    }
    if (record) { /* first bind, main thread: remember the real port */
        l->len = sizeof(l->ss);
        getsockname(fd, (struct sockaddr *)&l->ss, &l->len);
        addr_format((struct sockaddr *)&l->ss, l->text, sizeof(l->text));
    }
    return fd;

fail:
    close(fd);
    return -1;
}

/* Releases everything w holds: connections, listeners, events, loop. */
static void oworker_free(struct oworker *w)
{
    int i;

    while (w->conns != NULL)
        oconn_free(w->conns);
    for (i = 0; i < 2; i++)
        if (w->lev[i] != NULL)
            evconnlistener_free(w->lev[i]); /* closes the socket */
    if (w->accept_retry != NULL)
        event_free(w->accept_retry);
    if (w->tick_ev != NULL)
        event_free(w->tick_ev);
    if (w->stop_ev != NULL)
        event_free(w->stop_ev);
    if (w->base != NULL)
        event_base_free(w->base);
    for (i = 0; i < 2; i++)
        if (w->stop_pipe[i] >= 0)
            close(w->stop_pipe[i]);
    sbuf_free(&w->hdr);
    sbuf_free(&w->body);
    free(w->scratch);
}

/*
 * Sets up worker index of o: loop, sockets, listeners, timers, stop pipe.
 * Returns 0, or -1 (logged) leaving w for oworker_free.
 */
static int oworker_init(struct origin *o, struct oworker *w, unsigned index)
{
    struct timeval second = {1, 0};
    struct event_config *cfg;

    w->o = o;
    w->index = index;
    if ((w->scratch = malloc(WS_CHUNK)) == NULL || (cfg = event_config_new()) == NULL)
        goto nomem;
    /* Each base is used by its own thread only: no locking needed. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (w->base == NULL) {
        log_errorx("origin: cannot create an event loop");
        return -1;
    }
    if (oworker_listen(w, true) < 0)
        return -1;
    if (pipe2(w->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_error("origin: pipe");
        return -1;
    }
    w->stop_ev = event_new(w->base, w->stop_pipe[0], EV_READ | EV_PERSIST, oworker_stop_cb, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, oworker_tick, w);
    w->accept_retry = evtimer_new(w->base, oworker_accept_retry, w);
    if (w->stop_ev == NULL || w->tick_ev == NULL || w->accept_retry == NULL ||
        event_add(w->stop_ev, NULL) < 0 || event_add(w->tick_ev, &second) < 0)
        goto nomem;
    return 0;

nomem:
    log_errorx("origin: out of memory setting up worker %u", index);
    return -1;
}

/* Frees what origin_main set up in o (workers must have stopped). */
static void origin_free(struct origin *o)
{
    unsigned i;

    if (o->workers != NULL) {
        for (i = 0; i < o->opt.workers; i++)
            oworker_free(&o->workers[i]);
        free(o->workers);
    }
    SSL_CTX_free(o->ssl_ctx);
    EVP_MD_free(o->sha256);
}

int origin_main(int argc, char **argv)
{
    struct origin o;
    sigset_t stop_set;
    unsigned i;
    int rc, sig = 0;

    memset(&o, 0, sizeof(o));
    if ((rc = origin_parse_args(&o, argc, argv)) >= 0)
        return rc;
    for (i = 0; i < sizeof(bytes_block); i++)
        bytes_block[i] = PATTERN[i % PATTERN_LEN];
    rc = 2;
    if ((o.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
        log_ssl_error("origin: SHA-256 unavailable");
        goto done;
    }
    if (o.lis[1].on && (o.ssl_ctx = otls_ctx_new(o.opt.cert, o.opt.key)) == NULL)
        goto done;
    if ((o.workers = calloc(o.opt.workers, sizeof(*o.workers))) == NULL)
        goto done;
    for (i = 0; i < o.opt.workers; i++)
        o.workers[i].stop_pipe[0] = o.workers[i].stop_pipe[1] = -1;
    for (i = 0; i < o.opt.workers; i++)
        if (oworker_init(&o, &o.workers[i], i) < 0)
            goto done;

    /*
     * Workers inherit a mask blocking SIGINT/SIGTERM, so only sigwait() below
     * sees them. The mask stays afterwards: unblocking would let a second
     * Ctrl-C kill the process on its way out.
     */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < o.opt.workers; i++) {
        if (pthread_create(&o.workers[i].thread, NULL, oworker_run, &o.workers[i]) != 0) {
            log_errorx("origin: cannot start worker %u", i);
            goto stop;
        }
        o.workers[i].started = true;
    }
    log_info("origin %s listening%s%s%s%s", o.opt.name, o.lis[0].on ? " http=" : "",
             o.lis[0].on ? o.lis[0].text : "", o.lis[1].on ? " https=" : "",
             o.lis[1].on ? o.lis[1].text : "");
    while (sigwait(&stop_set, &sig) == 0 && sig == SIGUSR1)
        for (i = 0; i < o.opt.workers; i++)
            (void)!write(o.workers[i].stop_pipe[1], "m", 1);
    log_info("origin %s: %s, stopping", o.opt.name, sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;

stop:
    for (i = 0; i < o.opt.workers; i++) {
        if (!o.workers[i].started)
            continue;
        (void)!write(o.workers[i].stop_pipe[1], "x", 1);
        pthread_join(o.workers[i].thread, NULL);
    }
done:
    origin_free(&o);
    return rc;
}
