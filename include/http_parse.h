/*
 * Strict HTTP/1.1 message heads and chunked bodies (RFC 9112).
 *
 * The parser works on a contiguous copy of the first bytes of a stream and is
 * resumable: call it again with more bytes (the same prefix plus what came
 * since) until it stops saying HTTP_NEED_MORE. It never allocates; the parsed
 * head points into the caller's buffer, so the buffer must outlive it.
 *
 * It refuses what request smuggling relies on (RFC 9112 §6.3, §11.2):
 * Content-Length together with Transfer-Encoding, several differing or
 * malformed Content-Lengths, a Transfer-Encoding whose last coding is not
 * chunked (requests) or any coding but chunked, obs-fold, bare CR or LF, NUL
 * and control bytes, whitespace before a colon, an oversized head.
 */
#ifndef TLSGATE_HTTP_PARSE_H
#define TLSGATE_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 100 /* more header fields than this: 431 */

enum http_result {
    HTTP_OK,        /* a whole head was parsed: h is filled */
    HTTP_NEED_MORE, /* no end of head yet, and still under the size limit */
    HTTP_ERROR,     /* refused: h->error_status and h->error say why */
};

/* How the body after a head is delimited. */
enum http_body {
    HTTP_BODY_NONE,       /* no body (no length, Content-Length: 0, HEAD response, 204, 304, 1xx) */
    HTTP_BODY_LENGTH,     /* exactly content_length bytes */
    HTTP_BODY_CHUNKED,    /* chunked coding, ends with the last chunk and trailers */
    HTTP_BODY_UNTIL_CLOSE /* responses only: everything until the server closes */
};

/* A string inside the parsed buffer (not NUL-terminated). */
struct http_str {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_str name;  /* as sent (case kept) */
    struct http_str value; /* leading and trailing whitespace removed */
};

struct http_head {
    /* request line */
    struct http_str method; /* token, e.g. "GET" */
    struct http_str target; /* request-target as sent, e.g. "/a?b=1" */
    /* status line */
    unsigned status;        /* 100..999 */
    struct http_str reason; /* may be empty */
    /* both */
    unsigned version_minor; /* HTTP/1.x: 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    size_t head_len; /* bytes of the head including the empty line ending it */

    /* Derived while parsing. */
    enum http_body body;
    uint64_t content_length; /* HTTP_BODY_LENGTH only */
    bool keep_alive;         /* 1.1 without "Connection: close", or 1.0 with keep-alive */
    bool upgrade;            /* "Connection: upgrade" and an Upgrade header present */
    bool expect_continue;    /* requests: "Expect: 100-continue" */
    struct http_str host;    /* requests: Host header value (empty when absent) */

    /* When HTTP_ERROR is returned. */
    unsigned error_status; /* requests: 400, 431 (head too large), 501 (CONNECT, unknown coding),
                              505 (HTTP version); responses: always 502 */
    const char *error;     /* static, short: "both Content-Length and Transfer-Encoding" */
};

/*
 * Parses a request head from buf[0..len). max_head bounds the head in bytes
 * (the listener's max_header_bytes): a head longer than that, or with more
 * than HTTP_MAX_HEADERS fields, is HTTP_ERROR with status 431. Requests need
 * HTTP/1.0 or HTTP/1.1; HTTP/1.1 requests need exactly one Host header.
 * The request target must be origin-form ("/..."), "*" for OPTIONS, or
 * absolute-form ("http://host/path", whose host is then h->host when no Host
 * header came; a Host header that names another host or port is 400).
 * CONNECT (authority-form) is refused with 501. Only buf[0..max_head) is
 * read; once len >= max_head and no head ended inside it, the answer is 431.
 */
enum http_result http_parse_request(const char *buf, size_t len, size_t max_head,
                                    struct http_head *h);

/*
 * Parses a response head. req_method is the method of the request it answers
 * (HEAD and CONNECT change the body rules); body is HTTP_BODY_NONE for HEAD,
 * 1xx, 204 and 304; HTTP_BODY_UNTIL_CLOSE when neither length nor chunked is
 * given. Errors carry error_status 502.
 */
enum http_result http_parse_response(const char *buf, size_t len, size_t max_head,
                                     struct http_str req_method, struct http_head *h);

/* The first header named name (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_head *h, const char *name);

/* True when s equals the NUL-terminated lit, ignoring ASCII case. */
bool http_str_eq_nocase(struct http_str s, const char *lit);

/* True when the comma-separated list in s holds token tok (case-insensitive),
 * e.g. http_list_has(value of Connection, "close"). */
bool http_list_has(struct http_str s, const char *tok);

/*
 * Chunked body scanner. The gateway forwards chunked bodies unchanged; this
 * only finds where the body ends and refuses malformed framing: chunk sizes
 * that are not 1-16 hex digits or overflow, a missing CRLF after the data,
 * chunk extensions or trailer lines over limits or with control bytes.
 */
struct http_chunked {
    unsigned state;       /* private */
    uint64_t left;        /* data bytes left in the current chunk */
    unsigned line_len;    /* bytes seen of the current size/trailer line */
    unsigned size_digits; /* hex digits of the current size */
    unsigned trailer_bytes;
};

enum http_chunk_result {
    HTTP_CHUNK_MORE,  /* all len bytes belong to the body, the body goes on */
    HTTP_CHUNK_DONE,  /* the body ended: *used bytes of p were the last of it */
    HTTP_CHUNK_ERROR, /* malformed: stop and close */
};

void http_chunked_init(struct http_chunked *c);

/*
 * Scans the next len bytes of a chunked body. *used is set to the number of
 * bytes of p that belong to the body (all of them on HTTP_CHUNK_MORE; up to
 * and including the final CRLF on HTTP_CHUNK_DONE; the bytes before the bad
 * one on HTTP_CHUNK_ERROR). Data bytes are skipped in bulk, so scanning a
 * large chunk is cheap. DONE and ERROR stick until http_chunked_init.
 */
enum http_chunk_result http_chunked_scan(struct http_chunked *c, const char *p, size_t len,
                                         size_t *used);

/* Reason phrase for a status code ("Not Found"), "" when unknown. */
const char *http_reason(unsigned status);

#endif
