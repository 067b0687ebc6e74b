/*
 * Private interface of the lab origin (src/lab/origin*.c):
 *   origin_http.c  a small, fast HTTP/1.1 request-head parser, a chunked-body
 *                  decoder, response and JSON rendering, WebSocket frames;
 *   origin_tls.c   the SSL_CTX and non-blocking TLS I/O on plain events;
 *   origin.c       options, workers, connections and their state machine.
 *
 * This is not the gateway's strict parser (src/http/): it is lenient where an
 * echo server should report what it got (any byte >= 0x80 or control byte
 * other than NUL/CR in a header value is kept and escaped in the JSON), and
 * strict where framing is at stake (Content-Length vs Transfer-Encoding,
 * chunk sizes, obs-fold, NUL and bare CR).
 */
#ifndef TLSGATE_ORIGIN_HTTP_H
#define TLSGATE_ORIGIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "proxy_proto.h"

struct evbuffer;

#define OHTTP_HEAD_MAX    65536 /* request line + headers + blank line; beyond: 431 */
#define OHTTP_HEADERS_MAX 1024  /* header lines in one request; beyond: 431 */
#define OHTTP_CHUNK_LINE  4096  /* chunk-size line incl. extensions; beyond: bad */

/* Outcome of feeding bytes to an incremental decoder. */
enum ohttp_status {
    OHTTP_MORE, /* everything given was consumed; feed more */
    OHTTP_DATA, /* a span of body data was found (see ohttp_chunked_feed) */
    OHTTP_DONE, /* the message ended; bytes after *used belong to the next one */
    OHTTP_BAD,  /* framing error: answer 400 and close */
};

/* A byte range inside a request head buffer (not NUL-terminated). */
struct ostr {
    const char *p; /* first byte; NULL when absent */
    size_t len;    /* bytes */
};

/* One header line as received (name case preserved). */
struct ohttp_header {
    struct ostr name;  /* field name, validated token */
    struct ostr value; /* value without leading/trailing SP/HT */
};

/* How the request body is delimited. */
enum ohttp_body {
    OHTTP_BODY_NONE,    /* no body */
    OHTTP_BODY_LENGTH,  /* Content-Length bytes */
    OHTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

/*
 * A parsed request head. Strings point into the buffer given to
 * ohttp_parse_head, which must outlive their use. hdrs is owned and reused
 * across requests; release with ohttp_req_free().
 */
struct ohttp_req {
    struct ostr method;        /* e.g. "GET" */
    struct ostr target;        /* request-target as sent, e.g. "/x?y=1" */
    struct ostr path;          /* target up to '?' */
    struct ostr version;       /* "HTTP/1.0" or "HTTP/1.1" */
    int minor;                 /* 0 or 1 */
    struct ohttp_header *hdrs; /* nhdrs headers in order, owned */
    size_t nhdrs;              /* headers in use */
    size_t hcap;               /* allocated entries of hdrs */
    enum ohttp_body body;      /* framing of the body */
    uint64_t content_length;   /* with OHTTP_BODY_LENGTH */
    bool keep_alive;           /* connection persists after the response */
    bool expect_continue;      /* Expect: 100-continue */
    bool is_head;              /* method HEAD: no response body */
    bool ws_upgrade;           /* valid WebSocket upgrade request */
    struct ostr ws_key;        /* Sec-WebSocket-Key with ws_upgrade */
};

/*
 * State of the search for the end of a request head in an evbuffer, kept
 * between reads so each byte is examined once (no quadratic rescans under
 * slowloris-style 1-byte segments). Zero it before each request.
 */
struct ohttp_scan {
    size_t scanned; /* bytes already examined */
    size_t last_nl; /* offset of the last LF seen */
    bool have_nl;   /* last_nl is valid */
    char prev;      /* last byte examined (for CR before LF across chains) */
};

/*
 * Looks for the blank line ending a request head in buf, scanning at most
 * limit bytes in total. Returns the head length (including the blank line)
 * or 0 if not found yet. LF and CRLF line ends are both accepted.
 */
size_t ohttp_scan_head(struct ohttp_scan *s, struct evbuffer *buf, size_t limit);

/*
 * Parses the complete head buf[0..len) (as found by ohttp_scan_head) into req.
 * Returns 0, or the HTTP status to answer before closing: 400 (malformed),
 * 431 (too many headers), 505 (not HTTP/1.x), 500 (out of memory).
 */
int ohttp_parse_head(const char *buf, size_t len, struct ohttp_req *req);

/* Frees what req owns and zeroes it. */
void ohttp_req_free(struct ohttp_req *req);

/* True if s equals the NUL-terminated lit, ASCII case-insensitively. */
bool ostr_ieq(struct ostr s, const char *lit);

/* Incremental decoder of a chunked body (RFC 9112 section 7.1). Zero to start. */
struct ohttp_chunked {
    int state;       /* position in the chunk grammar (private) */
    uint64_t left;   /* data bytes left in the current chunk */
    size_t line;     /* bytes in the current size or trailer line */
    size_t trailers; /* total trailer bytes, bounded by OHTTP_HEAD_MAX */
    bool digits;     /* the size line had at least one hex digit */
};

/*
 * Feeds p[0..n). Consumes framing and stops at the first data span: returns
 * OHTTP_DATA with the span at p[*data_off..+*data_len) (*used covers it),
 * OHTTP_MORE when all n bytes were framing, OHTTP_DONE after the last chunk
 * and trailers (*used ends there), or OHTTP_BAD.
 */
enum ohttp_status ohttp_chunked_feed(struct ohttp_chunked *c, const uint8_t *p, size_t n,
                                     size_t *used, size_t *data_off, size_t *data_len);

/* A request body being consumed: framing state and what was received. */
struct ohttp_body_state {
    enum ohttp_body kind;       /* OHTTP_BODY_LENGTH or OHTTP_BODY_CHUNKED */
    uint64_t left;              /* LENGTH: bytes still to come */
    struct ohttp_chunked chunk; /* CHUNKED: decoder */
    uint64_t bytes;             /* body bytes received so far */
};

/*
 * Consumes body bytes from in (never more than the body), feeding them to
 * md. Returns OHTTP_MORE when in is exhausted, OHTTP_DONE at the end of the
 * body (bytes after it stay in in), or OHTTP_BAD (chunk framing).
 */
enum ohttp_status ohttp_body_feed(struct ohttp_body_state *b, struct evbuffer *in, EVP_MD_CTX *md);

/* Parses s as a decimal number (1..13 digits) no greater than max; returns 0 or -1. */
int ostr_to_u64(struct ostr s, uint64_t max, uint64_t *out);

/* A growable byte buffer, reused between responses to avoid malloc. */
struct sbuf {
    char *p;    /* bytes, owned */
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    bool oom;   /* an allocation failed; contents are truncated */
};

/* Makes room for n more bytes; returns 0 or -1 (and sets oom). */
int sbuf_reserve(struct sbuf *b, size_t n);
/* Empties b (keeping its memory) and forgets an earlier allocation failure. */
void sbuf_reset(struct sbuf *b);
void sbuf_add(struct sbuf *b, const void *p, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_add_u64(struct sbuf *b, uint64_t v);
void sbuf_free(struct sbuf *b);

/*
 * Appends p[0..n) as a quoted JSON string: quote, backslash and control
 * bytes escaped, valid UTF-8 kept, every other byte as \u00XX.
 */
void sbuf_add_json(struct sbuf *b, const char *p, size_t n);

/* A WebSocket frame header (RFC 6455 section 5.2). */
struct ows_frame {
    bool fin;        /* last fragment of a message */
    uint8_t opcode;  /* 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    bool masked;     /* client frames must be masked */
    uint8_t mask[4]; /* masking key when masked */
    uint64_t len;    /* payload bytes */
};

/*
 * Parses a frame header from p[0..n). Returns its length, 0 if more bytes
 * are needed, or -1 if it is invalid (reserved bits or opcode, unmasked,
 * fragmented or long control frame, 64-bit length with the top bit set).
 */
int ows_parse_frame(const uint8_t *p, size_t n, struct ows_frame *f);

/* Writes an unmasked frame header into out (at least 10 bytes); returns its length. */
size_t ows_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len);

/* Per-connection WebSocket echo state; zero it after the handshake. */
struct ows_state {
    bool in_payload; /* inside a data frame's payload */
    uint64_t left;   /* payload bytes of that frame still to echo */
    uint8_t mask[4]; /* its masking key */
    unsigned mpos;   /* payload bytes unmasked so far, modulo 4 */
};

/* Outcome of ows_echo. */
enum ows_result {
    OWS_MORE,  /* input exhausted */
    OWS_FULL,  /* out holds out_high bytes or more: call again once it drains */
    OWS_CLOSE, /* a close frame was echoed: close the connection after out */
    OWS_BAD,   /* protocol error: a close frame (1002) was queued; close after out */
};

/*
 * Server side of a WebSocket echo: every data frame goes back unmasked with
 * the same FIN, opcode and length, its payload streamed through as it
 * arrives (scratch holds scratch_len bytes for unmasking); ping gets pong,
 * pong is dropped, close is echoed.
 */
enum ows_result ows_echo(struct ows_state *ws, struct evbuffer *in, struct evbuffer *out,
                         uint8_t *scratch, size_t scratch_len, size_t out_high);

/* Writes the Sec-WebSocket-Accept value for key into out (29 bytes with NUL); 0 or -1. */
int ows_accept_key(struct ostr key, char out[29]);

/* Reason phrase of an HTTP status, or "Status" for those not named. */
const char *ohttp_reason(int status);

/*
 * Renders a response status line and headers into b (appending): optional
 * Content-Type, Content-Length unless clen < 0, X-Origin: name, and
 * Connection: close (keep_alive false) or keep-alive (HTTP/1.0 request).
 */
void ohttp_render_head(struct sbuf *b, int status, const char *ctype, int64_t clen,
                       const char *name, bool keep_alive, int minor);

/* What the JSON echo reports beside the request itself. */
struct oecho {
    const char *name;           /* --name, JSON-safe (checked at startup) */
    const char *client;         /* peer "ip:port" */
    int pp_version;             /* PROXY header version, 0 if none */
    bool pp_local;              /* PROXY LOCAL/UNKNOWN: no addresses */
    const char *pp_src;         /* PROXY source "ip:port" */
    const char *pp_dst;         /* PROXY destination "ip:port" */
    SSL *ssl;                   /* TLS session, or NULL */
    uint64_t body_bytes;        /* request body bytes */
    const char *body_sha256;    /* 64 hex digits */
    uint64_t request_no;        /* 1-based, per connection */
    unsigned long long conn_id; /* process-wide connection id */
    unsigned worker;            /* worker index */
};

/* Renders the JSON echo of req (one line, newline-terminated) into b (appending). */
void ohttp_render_echo(struct sbuf *b, const struct ohttp_req *req, const struct oecho *e);

/* Outcome of a non-blocking I/O step on a connection. */
enum oio {
    OIO_DONE,       /* finished: read what was there, wrote everything, handshake done */
    OIO_MORE,       /* stopped at the caller's budget; more may be ready now */
    OIO_WANT_READ,  /* blocked until the socket is readable */
    OIO_WANT_WRITE, /* blocked until the socket is writable */
    OIO_EOF,        /* peer closed (TLS: close_notify or a bare FIN) */
    OIO_ERROR,      /* failed; errno or the OpenSSL error queue says why */
};

/*
 * TLS (origin_tls.c). Builds a server SSL_CTX from a PEM certificate chain
 * and key: TLS 1.2 and up, ALPN "http/1.1" chosen when offered, read-ahead.
 * Logs an error naming the file and returns NULL on failure; free with
 * SSL_CTX_free().
 */
SSL_CTX *otls_ctx_new(const char *cert_file, const char *key_file);

/* Bytes read from a socket before TLS while looking for a PROXY header. */
struct otls_pre {
    uint8_t *buf; /* header bytes consumed so far, owned; free() it */
    size_t len;   /* bytes in buf */
    size_t cap;   /* allocated bytes */
};

/* Outcome of otls_preamble. */
enum otls_pre_result {
    OTLS_PRE_WAIT,   /* a header may be coming: wait for more bytes */
    OTLS_PRE_NONE,   /* no PROXY header: start TLS (nothing was consumed) */
    OTLS_PRE_PROXY,  /* a header was consumed into info: start TLS */
    OTLS_PRE_CLOSED, /* EOF or socket error */
    OTLS_PRE_BAD,    /* malformed header, or a header prefix followed by other bytes */
};

/*
 * Consumes an optional PROXY v1/v2 header from the socket fd without reading
 * past it (OpenSSL reads the socket itself afterwards): it peeks, and takes
 * only bytes that belong to the header. Call on each readable event.
 */
enum otls_pre_result otls_preamble(int fd, struct otls_pre *pre, struct pp_info *info);

/* Advances the server handshake: OIO_DONE, OIO_WANT_READ/WRITE, OIO_EOF or OIO_ERROR. */
enum oio otls_handshake(SSL *ssl);

/*
 * Appends decrypted bytes to in until OpenSSL wants the socket (OIO_DONE),
 * max bytes were read (OIO_MORE: call again, the data may already be
 * buffered inside OpenSSL), OIO_WANT_WRITE, OIO_EOF or OIO_ERROR. *got is
 * the count appended.
 */
enum oio otls_read(SSL *ssl, struct evbuffer *in, size_t max, size_t *got);

/*
 * Encrypts and sends out's bytes, draining what was sent: OIO_DONE when
 * empty, else OIO_WANT_WRITE, OIO_WANT_READ or OIO_ERROR. *retry holds the
 * length of an SSL_write to repeat (OpenSSL needs the same length); start at 0.
 */
enum oio otls_write(SSL *ssl, struct evbuffer *out, size_t *retry);

/* Moves OpenSSL's error queue into buf as "e1; e2"; returns its length (0: queue empty). */
size_t otls_errors(char *buf, size_t len);

/* Appends the JSON object describing the TLS session of ssl, or null if ssl is NULL. */
void otls_add_json(struct sbuf *b, SSL *ssl);

#endif
