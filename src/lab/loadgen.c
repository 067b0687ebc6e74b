/*
 * The load generator of "tlsgate compare".
 *
 * Threads: loadgen_run starts opts->threads threads, each with its own
 * event_base and its share of the connections; they share only read-only
 * state (target, request bytes, the client SSL_CTX) and wait at a start gate so
 * that every loop starts measuring at the same moment. Each thread counts
 * into its own loadgen_result; the results are merged after the joins.
 *
 * A connection is one struct lg_conn driven by plain read/write events on its
 * socket (TLS through an SSL object on the same socket, as the origin does:
 * no bufferevent in the way). Its state machine:
 *
 *   IDLE -> CONNECTING -> [HANDSHAKE] -> SEND -> RECV -+-> SEND (keep-alive)
 *     ^                                                 |
 *     +------------- close (new connection / error) ----+
 *
 * One request is in flight per connection; the next one is written as soon
 * as a response ends, so the read event (persistent) is the only one armed
 * in steady state and the write event is added only while a write blocks.
 * The latency of a request runs from its first byte written (from connect()
 * when it opens the connection) to the last byte of its response.
 *
 * A connection that fails is counted once and reconnects on the next 100 ms
 * tick, so a refusing target costs a bounded number of attempts. Responses
 * are parsed only as far as framing needs (status, Content-Length,
 * Transfer-Encoding: chunked, Connection: close); the body is skipped except
 * for one sampled response kept for the caller.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "compare.h"

#define LG_BUF         (32 * 1024) /* per-connection read buffer; a response head must fit */
#define LG_SAMPLE_HEAD 4096        /* bytes of the sampled response head kept */
#define LG_SAMPLE_BODY (16 * 1024) /* bytes of the sampled body kept */
#define LG_REQ_MAX     4096        /* request bytes */
#define NSEC           1000000000ULL

/* Outcome of one step of a connection's state machine. */
enum lg_step {
    STEP_AGAIN,      /* the state changed: run the next step now */
    STEP_WAIT_READ,  /* blocked until readable (the read event is always armed) */
    STEP_WAIT_WRITE, /* blocked until writable: arm the write event */
    STEP_GONE,       /* the connection was closed (and maybe reopened): stop here */
};

enum lg_state {
    LG_IDLE,       /* no socket; (re)connects on the next tick */
    LG_CONNECTING, /* non-blocking connect() in progress */
    LG_HANDSHAKE,  /* TLS handshake */
    LG_SEND,       /* writing the request */
    LG_RECV,       /* reading the response */
};

/* How a response body is delimited. */
enum lg_body {
    BODY_NONE,    /* no body (204, 304, Content-Length: 0) */
    BODY_LENGTH,  /* Content-Length bytes */
    BODY_CHUNKED, /* chunked transfer coding */
    BODY_EOF,     /* until the server closes */
};

/* Chunked decoder positions. */
enum lg_chunk {
    CH_SIZE,          /* hex digits of a chunk size */
    CH_EXT,           /* chunk extensions, up to LF */
    CH_DATA,          /* chunk data */
    CH_DATA_END,      /* CRLF after chunk data */
    CH_TRAILER_START, /* start of a trailer line (LF here ends the body) */
    CH_TRAILER,       /* inside a trailer line */
};

/* Parse state of the response being read. */
struct lg_resp {
    bool head_done;       /* the head was parsed; buf now holds body bytes */
    size_t scanned;       /* head bytes already searched for the blank line */
    int status;           /* status code */
    enum lg_body body;    /* framing */
    uint64_t left;        /* BODY_LENGTH / CH_DATA: bytes still to come */
    bool close;           /* the server closes the connection after this response */
    enum lg_chunk cstate; /* BODY_CHUNKED: decoder position */
    bool digits;          /* CH_SIZE: a hex digit was seen */
};

struct lg_thread;

/* One client connection. */
struct lg_conn {
    struct lg_thread *th; /* owner */
    unsigned index;       /* position in th->conns */
    enum lg_state state;  /* see enum lg_state */
    int fd;               /* socket, owned; -1 when IDLE */
    SSL *ssl;             /* TLS on fd, owned; NULL for plain HTTP or when IDLE */
    struct event *rev;    /* persistent read event, owned */
    struct event *wev;    /* one-shot write event, owned */
    bool sampling;        /* this request's response is the sample */
    size_t wpos;          /* plain HTTP: request bytes written so far */
    uint64_t t_start;     /* ns: start of the current request */
    size_t blen;          /* bytes in buf (head being accumulated) */
    struct lg_resp resp;  /* current response */
    char *buf;            /* LG_BUF bytes, owned */
};

/* State shared read-only by the threads of one run. */
struct lg_run {
    const struct loadgen_target *t; /* target */
    const struct loadgen_opts *o;   /* options */
    SSL_CTX *ctx;                   /* client context, NULL for plain HTTP */
    char req[LG_REQ_MAX];           /* the request, identical for every connection */
    size_t req_len;                 /* bytes of req */
    pthread_mutex_t lock;           /* guards go and cancel */
    pthread_cond_t cond;            /* signalled when go or cancel is set */
    bool go;                        /* every thread exists: start measuring */
    bool cancel;                    /* setup failed: threads return without running */
};

/* One event loop and its connections. */
struct lg_thread {
    struct lg_run *run;      /* shared state */
    unsigned index;          /* 0-based */
    pthread_t thread;        /* valid if started */
    bool started;            /* must be joined */
    struct event_base *base; /* owned */
    struct event *tick_ev;   /* every LOADGEN_SLOT_MS: timeouts, reconnects, stop flag */
    struct event *end_ev;    /* fires at end_ns */
    struct lg_conn *conns;   /* nconns entries, owned */
    unsigned nconns;         /* connections of this thread */
    uint64_t start_ns;       /* measured run start */
    uint64_t end_ns;         /* measured run end */
    bool ended;              /* the run is over: count nothing more */
    bool sampled;            /* a sample was captured */
    char *sbody;             /* sample body being captured, LG_SAMPLE_BODY + 1 bytes */
    size_t sbody_len;        /* bytes in sbody */
    struct loadgen_result r; /* this thread's counts */
};

static enum lg_step conn_open(struct lg_conn *c);

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram ---- */

/* Bucket of v: exact below 2*LAT_SUB, then LAT_SUB buckets per power of two. */
static unsigned lat_index(uint64_t v)
{
    unsigned shift, idx;

    if (v < 2 * LAT_SUB)
        return (unsigned)v;
    shift = (unsigned)(63 - __builtin_clzll(v)) - 6; /* v >> shift is in [64, 128) */
    idx = 2 * LAT_SUB + (shift - 1) * LAT_SUB + (unsigned)((v >> shift) - LAT_SUB);
    return idx < LAT_BUCKETS ? idx : LAT_BUCKETS - 1;
}

/* A representative value (the middle) of bucket idx. */
static uint64_t lat_value(unsigned idx)
{
    unsigned shift;
    uint64_t sub;

    if (idx < 2 * LAT_SUB)
        return idx;
    shift = (idx - 2 * LAT_SUB) / LAT_SUB + 1;
    sub = (idx - 2 * LAT_SUB) % LAT_SUB + LAT_SUB;
    return (sub << shift) + ((UINT64_C(1) << shift) - 1) / 2;
}

void lat_hist_add(struct lat_hist *h, uint64_t usec)
{
    if (h->count == 0 || usec < h->min)
        h->min = usec;
    if (usec > h->max)
        h->max = usec;
    h->count++;
    h->sum += usec;
    h->b[lat_index(usec)]++;
}

void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (unsigned i = 0; i < LAT_BUCKETS; i++)
        dst->b[i] += src->b[i];
}

uint64_t lat_hist_percentile(const struct lat_hist *h, double pct)
{
    uint64_t target, cum = 0, v;

    if (h->count == 0)
        return 0;
    if (pct >= 100.0)
        return h->max;
    target = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999);
    if (target < 1)
        target = 1;
    for (unsigned i = 0; i < LAT_BUCKETS; i++) {
        cum += h->b[i];
        if (cum >= target) {
            v = lat_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ---- response parsing ---- */

/* True if the header line [p, p+len) is "name: ..." for name (case-insensitive). */
static bool header_is(const char *p, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t n = strlen(name);

    if (len <= n || p[n] != ':' || strncasecmp(p, name, n) != 0)
        return false;
    p += n + 1;
    len -= n + 1;
    while (len > 0 && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;
    *value = p;
    *vlen = len;
    return true;
}

/* True if the comma-separated list [v, v+len) contains token (case-insensitive). */
static bool list_has(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token);

    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp(v + i, token, n) == 0 && (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
            (i + n == len || v[i + n] == ',' || v[i + n] == ' ' || v[i + n] == ';'))
            return true;
    }
    return false;
}

/* Parses the head buf[0..len) into rp. Returns 0 or -1 (malformed). */
static int resp_parse_head(struct lg_resp *rp, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len, *nl, *v;
    bool have_len = false, chunked = false, http10, keep_alive = false;
    uint64_t clen = 0;
    size_t vlen;

    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    http10 = p[7] == '0';
    if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
        return -1;
    rp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    rp->close = http10;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nl + 1 < end) {
        const char *line = nl + 1;
        const char *lend = memchr(line, '\n', (size_t)(end - line));
        size_t llen = (size_t)((lend ? lend : end) - line);

        p = line;
        if (header_is(line, llen, "content-length", &v, &vlen)) {
            if (vlen == 0 || vlen > 15)
                return -1;
            clen = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return -1;
                clen = clen * 10 + (uint64_t)(v[i] - '0');
            }
            have_len = true;
        } else if (header_is(line, llen, "transfer-encoding", &v, &vlen)) {
            chunked = list_has(v, vlen, "chunked");
        } else if (header_is(line, llen, "connection", &v, &vlen)) {
            if (list_has(v, vlen, "close"))
                rp->close = true;
            if (list_has(v, vlen, "keep-alive"))
                keep_alive = true;
        }
    }
    if (http10 && keep_alive)
        rp->close = false;
    if ((rp->status >= 100 && rp->status < 200) || rp->status == 204 || rp->status == 304)
        rp->body = BODY_NONE;
    else if (chunked)
        rp->body = BODY_CHUNKED;
    else if (have_len)
        rp->body = clen ? BODY_LENGTH : BODY_NONE;
    else
        rp->body = BODY_EOF;
    rp->left = clen;
    if (rp->body == BODY_EOF)
        rp->close = true;
    return 0;
}

/* Keeps body bytes of the sampled response. */
static void sample_add(struct lg_conn *c, const char *p, size_t n)
{
    struct lg_thread *th = c->th;
    size_t room;

    if (!c->sampling || th->sbody == NULL)
        return;
    room = LG_SAMPLE_BODY - th->sbody_len;
    if (n > room)
        n = room;
    memcpy(th->sbody + th->sbody_len, p, n);
    th->sbody_len += n;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Feeds chunked body bytes. Returns 1 at the end of the body, 0 for more, -1 if malformed. */
static int chunked_feed(struct lg_conn *c, const char *p, size_t n)
{
    struct lg_resp *rp = &c->resp;

    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        int hv;

        switch (rp->cstate) {
        case CH_SIZE:
            if ((hv = hexval(ch)) >= 0) {
                if (rp->left > (UINT64_MAX >> 4))
                    return -1;
                rp->left = rp->left * 16 + (uint64_t)hv;
                rp->digits = true;
                break;
            }
            if (!rp->digits)
                return -1;
            if (ch != '\n') {
                rp->cstate = CH_EXT;
                break;
            }
            /* fall through */
        case CH_EXT:
            if (ch == '\n')
                rp->cstate = rp->left ? CH_DATA : CH_TRAILER_START;
            break;
        case CH_DATA: {
            size_t take = n - i < rp->left ? n - i : (size_t)rp->left;

            sample_add(c, p + i, take);
            rp->left -= take;
            i += take - 1;
            if (rp->left == 0)
                rp->cstate = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (ch == '\n') {
                rp->cstate = CH_SIZE;
                rp->digits = false;
            } else if (ch != '\r') {
                return -1;
            }
            break;
        case CH_TRAILER_START:
            if (ch == '\n')
                return i + 1 == n ? 1 : -1;
            if (ch != '\r')
                rp->cstate = CH_TRAILER;
            break;
        case CH_TRAILER:
            if (ch == '\n')
                rp->cstate = CH_TRAILER_START;
            break;
        }
    }
    return 0;
}

/* Feeds body bytes. Returns 1 at the end of the response, 0 for more, -1 if malformed. */
static int body_feed(struct lg_conn *c, const char *p, size_t n)
{
    struct lg_resp *rp = &c->resp;

    switch (rp->body) {
    case BODY_NONE:
        return n == 0 ? 1 : -1;
    case BODY_LENGTH:
        if (n > rp->left)
            return -1; /* bytes beyond the response: nothing was asked for */
        sample_add(c, p, n);
        rp->left -= n;
        return rp->left == 0 ? 1 : 0;
    case BODY_CHUNKED:
        return chunked_feed(c, p, n);
    case BODY_EOF:
        sample_add(c, p, n);
        return 0;
    }
    return -1;
}

/* Offset just past the blank line ending the head in buf[0..len), or 0 if not there yet. */
static size_t head_end(struct lg_resp *rp, const char *buf, size_t len)
{
    size_t i = rp->scanned;

    for (; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if ((i >= 1 && buf[i - 1] == '\n') ||
            (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')) {
            rp->scanned = i + 1;
            return i + 1;
        }
    }
    rp->scanned = len;
    return 0;
}

/* Handles n new bytes at buf + blen (head) or buf (body): 1 response done, 0 more, -1 bad. */
static int resp_feed(struct lg_conn *c, size_t n)
{
    struct lg_thread *th = c->th;
    size_t end;

    if (c->resp.head_done)
        return body_feed(c, c->buf, n);
    c->blen += n;
    for (;;) {
        end = head_end(&c->resp, c->buf, c->blen);
        if (end == 0)
            return 0;
        if (resp_parse_head(&c->resp, c->buf, end) < 0)
            return -1;
        if (c->resp.status >= 200 || c->resp.status == 101)
            break;
        /* An interim 1xx response: the real one follows. */
        memmove(c->buf, c->buf + end, c->blen - end);
        c->blen -= end;
        memset(&c->resp, 0, sizeof(c->resp));
    }
    c->resp.head_done = true;
    if (c->sampling && th->r.sample_head == NULL)
        th->r.sample_head = strndup(c->buf, end < LG_SAMPLE_HEAD ? end : LG_SAMPLE_HEAD);
    n = c->blen - end;
    c->blen = 0;
    return body_feed(c, c->buf + end, n);
}

/* ---- connections ---- */

/* True while events still count towards the result. */
static bool counting(const struct lg_thread *th, uint64_t now)
{
    return !th->ended && now <= th->end_ns;
}

/* Releases the socket, TLS session and events of c; it becomes IDLE. */
static void conn_close(struct lg_conn *c, bool clean)
{
    if (c->ssl != NULL) {
        if (clean && c->state >= LG_SEND)
            (void)SSL_shutdown(c->ssl); /* close_notify, without waiting for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = LG_IDLE;
    c->sampling = false;
}

/* Counts one failure in *counter (while the run counts) and closes c until the next tick. */
static enum lg_step conn_fail(struct lg_conn *c, uint64_t *counter)
{
    if (counting(c->th, now_ns()))
        (*counter)++;
    conn_close(c, false);
    return STEP_GONE;
}

/* Resets the response state and decides whether this request's response is the sample. */
static void request_begin(struct lg_conn *c, uint64_t now)
{
    struct lg_thread *th = c->th;

    c->t_start = now;
    c->wpos = 0;
    c->blen = 0;
    memset(&c->resp, 0, sizeof(c->resp));
    c->sampling = th->index == 0 && c->index == 0 && !th->sampled && th->sbody != NULL;
    if (c->sampling) {
        th->sbody_len = 0;
        free(th->r.sample_head);
        th->r.sample_head = NULL;
    }
}

/* Records the finished response and starts the next request. */
static enum lg_step conn_response_done(struct lg_conn *c)
{
    struct lg_thread *th = c->th;
    struct loadgen_result *r = &th->r;
    uint64_t now = now_ns();
    int cls = c->resp.status / 100;

    if (counting(th, now)) {
        size_t slot = (size_t)((now - th->start_ns) / (LOADGEN_SLOT_MS * 1000000ULL));

        r->requests++;
        r->status[cls >= 1 && cls <= 5 ? cls : 0]++;
        lat_hist_add(&r->hist, (now - c->t_start) / 1000);
        if (slot < r->nseries)
            r->series[slot]++;
        if (c->sampling) {
            th->sbody[th->sbody_len] = '\0';
            r->sample_body = strdup(th->sbody);
            r->sample_status = c->resp.status;
            th->sampled = true;
        }
    }
    c->sampling = false;
    if (th->run->o->new_connections || c->resp.close) {
        conn_close(c, true);
        if (!th->ended)
            conn_open(c);
        return STEP_GONE;
    }
    request_begin(c, now);
    c->state = LG_SEND;
    return STEP_AGAIN;
}

static enum lg_step conn_handshake(struct lg_conn *c)
{
    struct lg_thread *th = c->th;
    int n;

    ERR_clear_error();
    n = SSL_connect(c->ssl);
    if (n == 1) {
        if (counting(th, now_ns())) {
            th->r.handshakes++;
            if (SSL_session_reused(c->ssl))
                th->r.resumed++;
        }
        c->state = LG_SEND;
        return STEP_AGAIN;
    }
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return STEP_WAIT_READ;
    case SSL_ERROR_WANT_WRITE:
        return STEP_WAIT_WRITE;
    default:
        return conn_fail(c, &th->r.err_tls);
    }
}

static enum lg_step conn_send(struct lg_conn *c)
{
    struct lg_run *run = c->th->run;
    ssize_t n;

    if (c->ssl != NULL) {
        ERR_clear_error();
        n = SSL_write(c->ssl, run->req, (int)run->req_len);
        if (n <= 0) {
            switch (SSL_get_error(c->ssl, (int)n)) {
            case SSL_ERROR_WANT_WRITE:
                return STEP_WAIT_WRITE;
            case SSL_ERROR_WANT_READ:
                return STEP_WAIT_READ;
            default:
                return conn_fail(c, &c->th->r.err_io);
            }
        }
        c->wpos = run->req_len; /* SSL_write sends all or nothing */
    } else {
        n = send(c->fd, run->req + c->wpos, run->req_len - c->wpos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return STEP_WAIT_WRITE;
            return conn_fail(c, &c->th->r.err_io);
        }
        c->wpos += (size_t)n;
        if (c->wpos < run->req_len)
            return STEP_WAIT_WRITE;
    }
    c->state = LG_RECV;
    /* The answer cannot be there yet: a read now would only cost an EAGAIN. */
    return STEP_WAIT_READ;
}

/* The peer closed: that ends a close-delimited body, and is an error anywhere else. */
static enum lg_step conn_eof(struct lg_conn *c)
{
    if (c->resp.head_done && c->resp.body == BODY_EOF)
        return conn_response_done(c);
    return conn_fail(c, &c->th->r.err_io);
}

static enum lg_step conn_recv(struct lg_conn *c)
{
    struct lg_thread *th = c->th;
    ssize_t n;
    int done;

    for (;;) {
        size_t off = c->resp.head_done ? 0 : c->blen;
        size_t cap = LG_BUF - off;

        if (cap == 0)
            return conn_fail(c, &th->r.err_http); /* head larger than the buffer */
        if (c->ssl != NULL) {
            ERR_clear_error();
            n = SSL_read(c->ssl, c->buf + off, (int)cap);
            if (n <= 0) {
                switch (SSL_get_error(c->ssl, (int)n)) {
                case SSL_ERROR_WANT_READ:
                    return STEP_WAIT_READ;
                case SSL_ERROR_WANT_WRITE:
                    return STEP_WAIT_WRITE;
                case SSL_ERROR_ZERO_RETURN:
                    return conn_eof(c);
                case SSL_ERROR_SYSCALL:
                    if (ERR_peek_error() == 0 && n == 0)
                        return conn_eof(c);
                    return conn_fail(c, &th->r.err_io);
                default:
                    /* OpenSSL 3 reports a FIN without close_notify as an SSL error. */
                    if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
                        return conn_eof(c);
                    return conn_fail(c, &th->r.err_io);
                }
            }
        } else {
            n = recv(c->fd, c->buf + off, cap, 0);
            if (n == 0)
                return conn_eof(c);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return STEP_WAIT_READ;
                return conn_fail(c, &th->r.err_io);
            }
        }
        if (counting(th, now_ns()))
            th->r.bytes_in += (uint64_t)n;
        done = resp_feed(c, (size_t)n);
        if (done < 0)
            return conn_fail(c, &th->r.err_http);
        if (done > 0)
            return conn_response_done(c);
    }
}

/* Runs the state machine until it blocks. */
static void conn_advance(struct lg_conn *c)
{
    enum lg_step st;

    for (;;) {
        switch (c->state) {
        case LG_HANDSHAKE:
            st = conn_handshake(c);
            break;
        case LG_SEND:
            st = conn_send(c);
            break;
        case LG_RECV:
            st = conn_recv(c);
            break;
        default:
            return;
        }
        if (st == STEP_AGAIN)
            continue;
        if (st == STEP_WAIT_WRITE && event_add(c->wev, NULL) < 0)
            conn_fail(c, &c->th->r.err_io);
        return;
    }
}

/* The TCP connection is up: arm reading, start TLS or the request. */
static void conn_connected(struct lg_conn *c)
{
    struct lg_thread *th = c->th;
    const struct loadgen_target *t = th->run->t;

    if (counting(th, now_ns()))
        th->r.connects++;
    if (event_add(c->rev, NULL) < 0) {
        conn_fail(c, &th->r.err_connect);
        return;
    }
    if (!t->tls) {
        c->state = LG_SEND;
        return;
    }
    c->ssl = SSL_new(th->run->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        (t->sni != NULL && SSL_set_tlsext_host_name(c->ssl, t->sni) != 1)) {
        conn_fail(c, &th->r.err_tls);
        return;
    }
    SSL_set_connect_state(c->ssl);
    c->state = LG_HANDSHAKE;
}

/* Both events of a connection land here. */
static void conn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg_conn *c = arg;
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->state == LG_CONNECTING) {
        if (!(what & EV_WRITE))
            return;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            conn_fail(c, &c->th->r.err_connect);
            return;
        }
        conn_connected(c);
    }
    conn_advance(c);
}

/* Opens a new connection for c (IDLE) and starts its first request. */
static enum lg_step conn_open(struct lg_conn *c)
{
    struct lg_thread *th = c->th;
    const struct loadgen_target *t = th->run->t;
    int one = 1;

    request_begin(c, now_ns());
    c->fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return conn_fail(c, &th->r.err_connect);
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->rev = event_new(th->base, c->fd, EV_READ | EV_PERSIST, conn_cb, c);
    c->wev = event_new(th->base, c->fd, EV_WRITE, conn_cb, c);
    if (c->rev == NULL || c->wev == NULL)
        return conn_fail(c, &th->r.err_connect);
    c->state = LG_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
        if (errno != EINPROGRESS)
            return conn_fail(c, &th->r.err_connect);
        if (event_add(c->wev, NULL) < 0)
            return conn_fail(c, &th->r.err_connect);
        return STEP_WAIT_WRITE;
    }
    conn_connected(c);
    conn_advance(c);
    return STEP_GONE;
}

/* ---- threads ---- */

/* Ends the measured run of th. */
static void thread_end(struct lg_thread *th)
{
    th->ended = true;
    event_base_loopbreak(th->base);
}

static void end_cb(evutil_socket_t fd, short what, void *arg)
{
    thread_end(arg);
}

/* Every slot: request timeouts, reconnects after failures, the stop flag. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg_thread *th = arg;
    const struct loadgen_opts *o = th->run->o;
    uint64_t now = now_ns();

    if (o->stop != NULL && *o->stop) {
        th->r.aborted = true;
        if (now < th->end_ns)
            th->end_ns = now;
        thread_end(th);
        return;
    }
    for (unsigned i = 0; i < th->nconns; i++) {
        struct lg_conn *c = &th->conns[i];

        if (c->state == LG_IDLE)
            conn_open(c);
        else if (now - c->t_start > (uint64_t)o->timeout_ms * 1000000ULL)
            conn_fail(c, &th->r.err_timeout);
    }
}

static void *thread_main(void *arg)
{
    struct lg_thread *th = arg;
    struct timeval dur, tick = {0, LOADGEN_SLOT_MS * 1000};
    unsigned ms = th->run->o->duration_ms;

    /* Every loop starts measuring at the same moment. */
    pthread_mutex_lock(&th->run->lock);
    while (!th->run->go && !th->run->cancel)
        pthread_cond_wait(&th->run->cond, &th->run->lock);
    pthread_mutex_unlock(&th->run->lock);
    if (th->run->cancel)
        return NULL;
    th->start_ns = now_ns();
    th->end_ns = th->start_ns + (uint64_t)ms * 1000000ULL;
    dur.tv_sec = ms / 1000;
    dur.tv_usec = (ms % 1000) * 1000;
    if (evtimer_add(th->end_ev, &dur) < 0 || event_add(th->tick_ev, &tick) < 0) {
        fprintf(stderr, "tlsgate compare: cannot arm timers\n");
        return NULL;
    }
    for (unsigned i = 0; i < th->nconns && !th->ended; i++)
        conn_open(&th->conns[i]);
    event_base_dispatch(th->base);
    th->ended = true;
    for (unsigned i = 0; i < th->nconns; i++)
        conn_close(&th->conns[i], true);
    ERR_clear_error();
    return NULL;
}

/* Frees what thread_setup made. */
static void thread_free(struct lg_thread *th)
{
    if (th->conns != NULL) {
        for (unsigned i = 0; i < th->nconns; i++) {
            conn_close(&th->conns[i], false);
            free(th->conns[i].buf);
        }
        free(th->conns);
    }
    if (th->tick_ev != NULL)
        event_free(th->tick_ev);
    if (th->end_ev != NULL)
        event_free(th->end_ev);
    if (th->base != NULL)
        event_base_free(th->base);
    free(th->sbody);
    loadgen_result_free(&th->r);
}

/* Builds the loop, timers and idle connections of th. Returns 0 or -1. */
static int thread_setup(struct lg_thread *th, unsigned nconns, size_t nseries)
{
    th->nconns = nconns;
    th->base = event_base_new();
    th->conns = calloc(nconns, sizeof(*th->conns));
    th->r.series = calloc(nseries, sizeof(*th->r.series));
    th->r.nseries = nseries;
    if (th->base == NULL || th->conns == NULL || th->r.series == NULL)
        return -1;
    th->tick_ev = event_new(th->base, -1, EV_PERSIST, tick_cb, th);
    th->end_ev = evtimer_new(th->base, end_cb, th);
    if (th->tick_ev == NULL || th->end_ev == NULL)
        return -1;
    if (th->index == 0 && (th->sbody = malloc(LG_SAMPLE_BODY + 1)) == NULL)
        return -1;
    for (unsigned i = 0; i < nconns; i++) {
        th->conns[i].th = th;
        th->conns[i].index = i;
        th->conns[i].fd = -1;
        if ((th->conns[i].buf = malloc(LG_BUF)) == NULL)
            return -1;
    }
    return 0;
}

/* The client SSL_CTX: no verification, no session reuse, ALPN http/1.1. */
static SSL_CTX *client_ctx(bool new_connections)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Sessions are never offered again: every connection is a full handshake. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (new_connections)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Adds the counts of src to dst; takes the sample if dst has none. */
static void result_merge(struct loadgen_result *dst, struct loadgen_result *src)
{
    dst->requests += src->requests;
    for (int i = 0; i < 6; i++)
        dst->status[i] += src->status[i];
    dst->err_connect += src->err_connect;
    dst->err_tls += src->err_tls;
    dst->err_io += src->err_io;
    dst->err_timeout += src->err_timeout;
    dst->err_http += src->err_http;
    dst->connects += src->connects;
    dst->handshakes += src->handshakes;
    dst->resumed += src->resumed;
    dst->bytes_in += src->bytes_in;
    dst->aborted |= src->aborted;
    lat_hist_merge(&dst->hist, &src->hist);
    for (size_t i = 0; i < dst->nseries && i < src->nseries; i++)
        dst->series[i] += src->series[i];
    if (dst->sample_status == 0 && src->sample_status != 0) {
        dst->sample_status = src->sample_status;
        dst->sample_head = src->sample_head;
        dst->sample_body = src->sample_body;
        src->sample_head = src->sample_body = NULL;
    }
}

int loadgen_run(const struct loadgen_target *t, const struct loadgen_opts *o,
                struct loadgen_result *r)
{
    struct lg_run *run;
    struct lg_thread *ths = NULL;
    unsigned nth = o->threads, i;
    size_t nseries = o->duration_ms / LOADGEN_SLOT_MS + 1;
    uint64_t longest = 0;
    int n, rc = -1;

    if (nth < 1)
        nth = 1;
    if (nth > o->connections)
        nth = o->connections;
    if (o->connections < 1 || o->duration_ms < 1)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* SSL_write reaches write(2) on a reset socket */
    run = calloc(1, sizeof(*run));
    if (run == NULL)
        return -1;
    run->t = t;
    run->o = o;
    n = snprintf(run->req, sizeof(run->req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsgate-compare\r\n%s\r\n", t->path,
                 t->host, o->new_connections ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(run->req)) {
        fprintf(stderr, "tlsgate compare: request line too long\n");
        free(run);
        return -1;
    }
    run->req_len = (size_t)n;
    if (t->tls && (run->ctx = client_ctx(o->new_connections)) == NULL) {
        fprintf(stderr, "tlsgate compare: cannot build the TLS client context\n");
        free(run);
        return -1;
    }
    pthread_mutex_init(&run->lock, NULL);
    pthread_cond_init(&run->cond, NULL);
    ths = calloc(nth, sizeof(*ths));
    if (ths == NULL)
        goto out;
    for (i = 0; i < nth; i++) {
        ths[i].run = run;
        ths[i].index = i;
        if (thread_setup(&ths[i], o->connections / nth + (i < o->connections % nth), nseries) < 0) {
            fprintf(stderr, "tlsgate compare: out of memory\n");
            goto out;
        }
    }
    for (i = 0; i < nth; i++) {
        if (pthread_create(&ths[i].thread, NULL, thread_main, &ths[i]) != 0) {
            fprintf(stderr, "tlsgate compare: cannot start a load thread\n");
            break;
        }
        ths[i].started = true;
    }
    pthread_mutex_lock(&run->lock);
    if (i < nth)
        run->cancel = true;
    else
        run->go = true;
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->lock);
    for (i = 0; i < nth; i++) {
        if (ths[i].started)
            pthread_join(ths[i].thread, NULL);
    }
    if (run->cancel)
        goto out;
    r->series = calloc(nseries, sizeof(*r->series));
    r->nseries = r->series ? nseries : 0;
    for (i = 0; i < nth; i++) {
        result_merge(r, &ths[i].r);
        if (ths[i].end_ns - ths[i].start_ns > longest)
            longest = ths[i].end_ns - ths[i].start_ns;
    }
    r->elapsed_s = (double)longest / 1e9;
    rc = 0;
out:
    if (ths != NULL) {
        for (i = 0; i < nth; i++)
            thread_free(&ths[i]);
        free(ths);
    }
    pthread_cond_destroy(&run->cond);
    pthread_mutex_destroy(&run->lock);
    SSL_CTX_free(run->ctx);
    free(run);
    return rc;
}

uint64_t loadgen_errors(const struct loadgen_result *r)
{
    return r->err_connect + r->err_tls + r->err_io + r->err_timeout + r->err_http + r->status[4] +
           r->status[5];
}

void loadgen_result_free(struct loadgen_result *r)
{
    free(r->series);
    free(r->sample_head);
    free(r->sample_body);
    memset(r, 0, sizeof(*r));
}
