/*
 * HTTP/1.1 head parser and chunked scanner: tables of valid and refused
 * messages, each fed whole and at every split point (every strict prefix of a
 * valid head must be NEED_MORE, every prefix of a refused one NEED_MORE or the
 * same refusal), the head size and field count limits, and chunked bodies fed
 * whole, byte by byte and split anywhere, followed by pipelined bytes.
 *
 * Prefixes are parsed from exact-size heap copies, so ASan catches any read
 * past the bytes given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_parse.h"

#define MAXH 16384 /* the listener default for max_header_bytes */

/* A string literal that may hold NULs: its bytes and length. */
#define TEXT(s) .text = s, .len = sizeof(s) - 1

/* A copy of buf[0..len) in a block of exactly len bytes (ASan sees over-reads). */
static char *exact_copy(const char *buf, size_t len)
{
    char *p = malloc(len > 0 ? len : 1);

    assert_non_null(p);
    memcpy(p, buf, len);
    return p;
}

/* Parses a request (method NULL) or a response to method. */
static enum http_result run(const char *buf, size_t len, size_t max, const char *method,
                            struct http_head *h)
{
    struct http_str m;

    if (method == NULL)
        return http_parse_request(buf, len, max, h);
    m.p = method;
    m.len = strlen(method);
    return http_parse_response(buf, len, max, m, h);
}

static void assert_str(struct http_str s, const char *want)
{
    size_t n = strlen(want);

    if (s.len != n || (n > 0 && memcmp(s.p, want, n) != 0))
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.p != NULL ? s.p : "", want);
}

/* Two http_str at the same offset of their own buffers. */
static void assert_same_str(struct http_str a, const char *abuf, struct http_str b,
                            const char *bbuf)
{
    assert_int_equal(a.len, b.len);
    assert_int_equal(a.p == NULL, b.p == NULL);
    if (a.p != NULL)
        assert_int_equal(a.p - abuf, b.p - bbuf);
}

/* Two parse results of the same bytes held in different buffers are the same. */
static void assert_same_head(const struct http_head *a, const char *abuf, const struct http_head *b,
                             const char *bbuf)
{
    assert_same_str(a->method, abuf, b->method, bbuf);
    assert_same_str(a->target, abuf, b->target, bbuf);
    assert_int_equal(a->status, b->status);
    assert_same_str(a->reason, abuf, b->reason, bbuf);
    assert_int_equal(a->version_minor, b->version_minor);
    assert_int_equal(a->nheaders, b->nheaders);
    for (size_t i = 0; i < a->nheaders; i++) {
        assert_same_str(a->headers[i].name, abuf, b->headers[i].name, bbuf);
        assert_same_str(a->headers[i].value, abuf, b->headers[i].value, bbuf);
    }
    assert_int_equal(a->head_len, b->head_len);
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->content_length, b->content_length);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_int_equal(a->upgrade, b->upgrade);
    assert_int_equal(a->expect_continue, b->expect_continue);
    assert_same_str(a->host, abuf, b->host, bbuf);
}

/*
 * Parses text whole into *h (must be OK), then every prefix from a separate
 * buffer: shorter than the head is NEED_MORE, the rest is OK and the same.
 */
static void parse_ok_every_split(const char *name, const char *text, size_t len, size_t max,
                                 const char *method, struct http_head *h)
{
    static struct http_head part;
    enum http_result r = run(text, len, max, method, h);

    if (r != HTTP_OK)
        fail_msg("%s: result %d (%u %s), want OK", name, r, h->error_status,
                 h->error != NULL ? h->error : "");
    assert_int_equal(h->error_status, 0);
    assert_null(h->error);
    for (size_t k = 0; k <= len; k++) {
        char *copy = exact_copy(text, k);

        r = run(copy, k, max, method, &part);
        if (k < h->head_len && r != HTTP_NEED_MORE)
            fail_msg("%s: prefix of %zu bytes gave %d (%s), want NEED_MORE", name, k, r,
                     part.error != NULL ? part.error : "");
        if (k >= h->head_len) {
            if (r != HTTP_OK)
                fail_msg("%s: %zu bytes gave %d, want OK", name, k, r);
            assert_same_head(h, text, &part, copy);
        }
        free(copy);
    }
}

/*
 * text whole is refused with want; each prefix is NEED_MORE until some
 * length, and from there on the same refusal (never OK, never another status).
 */
static void parse_bad_every_split(const char *name, const char *text, size_t len, size_t max,
                                  const char *method, unsigned want)
{
    static struct http_head h;
    enum http_result r = run(text, len, max, method, &h);
    bool refused = false;

    if (r != HTTP_ERROR || h.error_status != want)
        fail_msg("%s: result %d status %u, want error %u", name, r, h.error_status, want);
    assert_non_null(h.error);
    for (size_t k = 0; k < len; k++) {
        char *copy = exact_copy(text, k);

        r = run(copy, k, max, method, &h);
        free(copy);
        if (r == HTTP_OK)
            fail_msg("%s: prefix of %zu bytes was accepted", name, k);
        if (r == HTTP_NEED_MORE && refused)
            fail_msg("%s: prefix of %zu bytes needs more after an earlier refusal", name, k);
        if (r == HTTP_ERROR && h.error_status != want)
            fail_msg("%s: prefix of %zu bytes refused with %u (%s), want %u", name, k,
                     h.error_status, h.error, want);
        refused |= r == HTTP_ERROR;
    }
}

/* ---- requests that must be accepted ---- */

struct req_case {
    const char *name;
    const char *text;
    size_t len;
    size_t body_len; /* bytes after the head (body, next request) */
    const char *method, *target, *host;
    unsigned minor;
    enum http_body body;
    uint64_t content_length;
    bool keep_alive, upgrade, expect;
    size_t nheaders;
};

static const struct req_case good_requests[] = {
    {.name = "GET",
     TEXT("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "a.test",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "GET with query, OWS trimmed, empty and obs-text values",
     TEXT("GET /a/b?c=1&d=%20 HTTP/1.1\r\nHost: a.test:8443\r\nUser-Agent:  curl/8 \t\r\n"
          "Accept:*/*\r\nX-Empty:\r\nX-Blank: \t \r\nX-Obs: caf\xc3\xa9\r\n\r\n"),
     .method = "GET",
     .target = "/a/b?c=1&d=%20",
     .host = "a.test:8443",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 6},
    {.name = "POST with Content-Length",
     TEXT("POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"),
     .body_len = 11,
     .method = "POST",
     .target = "/form",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_LENGTH,
     .content_length = 11,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "largest Content-Length",
     TEXT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n"),
     .method = "POST",
     .target = "/",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_LENGTH,
     .content_length = UINT64_MAX,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "Content-Length 0 is no body",
     TEXT("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
     .method = "POST",
     .target = "/",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_NONE,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "chunked",
     TEXT("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
     .body_len = 10,
     .method = "POST",
     .target = "/up",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_CHUNKED,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "chunked in any case, empty list elements and an empty field",
     TEXT("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nTransfer-Encoding: , Chunked ,"
          "\r\nConnection: close\r\n\r\n"),
     .method = "POST",
     .target = "/",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_CHUNKED,
     .nheaders = 4},
    {.name = "absolute-form with the same Host",
     TEXT("GET http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n"),
     .method = "GET",
     .target = "http://a.test/x?y",
     .host = "a.test",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "absolute-form https, default port and case differ",
     TEXT("GET HTTPS://A.test:443 HTTP/1.1\r\nHost: a.TEST\r\n\r\n"),
     .method = "GET",
     .target = "HTTPS://A.test:443",
     .host = "a.TEST",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "absolute-form HTTP/1.0 without Host takes the target's host",
     TEXT("GET http://b.test:8080/p HTTP/1.0\r\n\r\n"),
     .method = "GET",
     .target = "http://b.test:8080/p",
     .host = "b.test:8080",
     .minor = 0},
    {.name = "OPTIONS *",
     TEXT("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
     .method = "OPTIONS",
     .target = "*",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "HTTP/1.0 keep-alive",
     TEXT("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "",
     .minor = 0,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "HTTP/1.0 closes by default",
     TEXT("GET / HTTP/1.0\r\nHost: a\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "a",
     .minor = 0,
     .nheaders = 1},
    {.name = "HTTP/1.0 keep-alive and close: close wins",
     TEXT("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "",
     .minor = 0,
     .nheaders = 2},
    {.name = "Connection: close in a list",
     TEXT("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "a",
     .minor = 1,
     .nheaders = 2},
    {.name = "websocket upgrade",
     TEXT("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
          "Upgrade: websocket\r\n\r\n"),
     .method = "GET",
     .target = "/ws",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .upgrade = true,
     .nheaders = 3},
    {.name = "Connection: upgrade without Upgrade",
     TEXT("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"),
     .method = "GET",
     .target = "/ws",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "HTTP/1.0 cannot upgrade",
     TEXT("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
     .method = "GET",
     .target = "/ws",
     .host = "",
     .minor = 0,
     .nheaders = 2},
    {.name = "Expect: 100-continue",
     TEXT("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\nabc"),
     .body_len = 3,
     .method = "PUT",
     .target = "/f",
     .host = "a",
     .minor = 1,
     .body = HTTP_BODY_LENGTH,
     .content_length = 3,
     .keep_alive = true,
     .expect = true,
     .nheaders = 3},
    {.name = "other Expect values are ignored",
     TEXT("PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-ish\r\n\r\n"),
     .method = "PUT",
     .target = "/f",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 2},
    {.name = "leading empty lines are skipped and counted in head_len",
     TEXT("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "IPv6 Host with port",
     TEXT("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "[::1]:8080",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "empty Host (RFC 9110 §7.2)",
     TEXT("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
     .method = "GET",
     .target = "/",
     .host = "",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "pipelined request after the head",
     TEXT("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
     .body_len = 28,
     .method = "GET",
     .target = "/1",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
    {.name = "extension method, obs-text in the target",
     TEXT("M-SEARCH /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"),
     .method = "M-SEARCH",
     .target = "/caf\xc3\xa9",
     .host = "a",
     .minor = 1,
     .keep_alive = true,
     .nheaders = 1},
};

static void test_request_good(void **state)
{
    static struct http_head h;

    for (size_t i = 0; i < sizeof(good_requests) / sizeof(good_requests[0]); i++) {
        const struct req_case *c = &good_requests[i];

        parse_ok_every_split(c->name, c->text, c->len, MAXH, NULL, &h);
        assert_int_equal(h.head_len, c->len - c->body_len);
        assert_str(h.method, c->method);
        assert_str(h.target, c->target);
        assert_str(h.host, c->host);
        assert_int_equal(h.version_minor, c->minor);
        assert_int_equal(h.status, 0);
        if (h.body != c->body)
            fail_msg("%s: body %d, want %d", c->name, h.body, c->body);
        assert_int_equal(h.content_length, c->content_length);
        if (h.keep_alive != c->keep_alive || h.upgrade != c->upgrade ||
            h.expect_continue != c->expect)
            fail_msg("%s: keep_alive %d upgrade %d expect %d", c->name, h.keep_alive, h.upgrade,
                     h.expect_continue);
        assert_int_equal(h.nheaders, c->nheaders);
    }
}

/* Field names keep their case, values lose OWS on both sides only. */
static void test_request_fields(void **state)
{
    static const char text[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Two-Words:  one \t two\t\r\n"
                               "x-empty:\r\nX-Tab:\tv\r\n\r\n";
    static struct http_head h;

    assert_int_equal(http_parse_request(text, sizeof(text) - 1, MAXH, &h), HTTP_OK);
    assert_int_equal(h.nheaders, 4);
    assert_str(h.headers[1].name, "X-Two-Words");
    assert_str(h.headers[1].value, "one \t two");
    assert_str(h.headers[2].name, "x-empty");
    assert_str(h.headers[2].value, "");
    assert_str(h.headers[3].value, "v");
    assert_ptr_equal(http_find_header(&h, "X-EMPTY"), &h.headers[2]);
    assert_ptr_equal(http_find_header(&h, "host"), &h.headers[0]);
    assert_null(http_find_header(&h, "x-two"));
    assert_ptr_equal(h.method.p, text);
}

/* ---- requests that must be refused ---- */

struct bad_case {
    const char *name;
    const char *text;
    size_t len;
    unsigned status;
};

#define REQ(s) "POST / HTTP/1.1\r\nHost: a\r\n" s "\r\n"

static const struct bad_case bad_requests[] = {
    /* smuggling through framing */
    {"CL then TE", TEXT(REQ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 400},
    {"TE then CL", TEXT(REQ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")), 400},
    {"TE with CL 0", TEXT(REQ("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n")), 400},
    /* an unknown coding is 501 (RFC 9112 §6.1) even when chunked is not last */
    {"TE chunked, gzip", TEXT(REQ("Transfer-Encoding: chunked, gzip\r\n")), 501},
    {"TE gzip, chunked", TEXT(REQ("Transfer-Encoding: gzip, chunked\r\n")), 501},
    {"TE gzip alone", TEXT(REQ("Transfer-Encoding: gzip\r\n")), 501},
    {"TE identity", TEXT(REQ("Transfer-Encoding: identity\r\n")), 501},
    {"TE xchunked", TEXT(REQ("Transfer-Encoding: xchunked\r\n")), 501},
    {"TE chunkedx", TEXT(REQ("Transfer-Encoding: chunkedx\r\n")), 501},
    {"TE gzip on a second line",
     TEXT(REQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n")), 501},
    {"TE chunked, chunked", TEXT(REQ("Transfer-Encoding: chunked, chunked\r\n")), 400},
    {"TE chunked on two lines",
     TEXT(REQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")), 400},
    {"TE chunked with a parameter", TEXT(REQ("Transfer-Encoding: chunked;q=1\r\n")), 400},
    {"TE two words", TEXT(REQ("Transfer-Encoding: chunked x\r\n")), 400},
    {"TE quoted", TEXT(REQ("Transfer-Encoding: \"chunked\"\r\n")), 400},
    {"TE empty", TEXT(REQ("Transfer-Encoding:\r\n")), 400},
    {"TE only commas", TEXT(REQ("Transfer-Encoding: , ,\r\n")), 400},
    {"TE with space before the colon", TEXT(REQ("Transfer-Encoding : chunked\r\n")), 400},
    {"TE with tab before the colon", TEXT(REQ("Transfer-Encoding\t: chunked\r\n")), 400},
    {"TE in HTTP/1.0", TEXT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {"CL list of two values", TEXT(REQ("Content-Length: 1, 2\r\n")), 400},
    {"two differing CL lines", TEXT(REQ("Content-Length: 1\r\nContent-Length: 2\r\n")), 400},
    {"two identical CL lines", TEXT(REQ("Content-Length: 5\r\ncontent-length: 5\r\n")), 400},
    {"CL list of one number twice", TEXT(REQ("Content-Length: 5, 5\r\n")), 400},
    {"CL same number spelled twice", TEXT(REQ("Content-Length: 5\r\nContent-Length: 005\r\n")),
     400},
    {"CL +5", TEXT(REQ("Content-Length: +5\r\n")), 400},
    {"CL -1", TEXT(REQ("Content-Length: -1\r\n")), 400},
    {"CL hex", TEXT(REQ("Content-Length: 0x10\r\n")), 400},
    {"CL with an inner space", TEXT(REQ("Content-Length: 5 5\r\n")), 400},
    {"CL empty", TEXT(REQ("Content-Length:\r\n")), 400},
    {"CL trailing comma", TEXT(REQ("Content-Length: 5,\r\n")), 400},
    {"CL leading comma", TEXT(REQ("Content-Length: ,5\r\n")), 400},
    {"CL fraction", TEXT(REQ("Content-Length: 5.0\r\n")), 400},
    {"CL 20 digits", TEXT(REQ("Content-Length: 99999999999999999999\r\n")), 400},
    {"CL 2^64", TEXT(REQ("Content-Length: 18446744073709551616\r\n")), 400},
    {"CL with space before the colon", TEXT(REQ("Content-Length : 5\r\n")), 400},
    /* line syntax */
    {"obs-fold with SP", TEXT(REQ("X: a\r\n b\r\n")), 400},
    {"obs-fold with HTAB", TEXT(REQ("X: a\r\n\tb\r\n")), 400},
    {"whitespace before the first field", TEXT("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    {"NUL in a value", TEXT(REQ("X: a\0b\r\n")), 400},
    {"bare CR in a value", TEXT(REQ("X: a\rb\r\n")), 400},
    {"CR CR LF", TEXT(REQ("X: a\r\r\n")), 400},
    {"DEL in a value", TEXT(REQ("X: a\x7f\r\n")), 400},
    {"control byte in a value", TEXT(REQ("X: a\x01\r\n")), 400},
    {"bare LF line endings", TEXT("GET / HTTP/1.1\nHost: a\n\n"), 400},
    {"bare LF after a field", TEXT("GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n"), 400},
    {"bare LF ending the head", TEXT("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400},
    {"bare CR ending the head", TEXT("GET / HTTP/1.1\r\nHost: a\r\n\rX"), 400},
    {"control byte in a name", TEXT(REQ("X\x01Y: z\r\n")), 400},
    {"separator in a name", TEXT(REQ("X(Y): z\r\n")), 400},
    {"obs-text in a name", TEXT(REQ("X\xc3\xa9: z\r\n")), 400},
    {"field without colon", TEXT(REQ("X-No-Colon\r\n")), 400},
    {"field name with space", TEXT(REQ("X Y: z\r\n")), 400},
    {"empty field name", TEXT(REQ(": z\r\n")), 400},
    /* Host */
    {"no Host in HTTP/1.1", TEXT("GET / HTTP/1.1\r\nX: a\r\n\r\n"), 400},
    {"two Host fields", TEXT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400},
    {"two Host fields in HTTP/1.0", TEXT("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), 400},
    {"Host with a space", TEXT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {"Host with a slash", TEXT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400},
    {"Host with userinfo", TEXT("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400},
    {"Host list", TEXT("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"), 400},
    {"Host with empty port", TEXT("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), 400},
    {"Host with a big port", TEXT("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"), 400},
    {"Host with a bad port", TEXT("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400},
    {"Host unclosed IPv6", TEXT("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400},
    {"Host IPv6 junk", TEXT("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n"), 400},
    {"Host percent-encoded", TEXT("GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n"), 400},
    /* request target */
    {"absolute-form with another Host", TEXT("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"), 400},
    {"absolute-form with another port", TEXT("GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form https port 80 vs Host", TEXT("GET https://a/ HTTP/1.1\r\nHost: a:80\r\n\r\n"),
     400},
    {"absolute-form HTTP/1.1 without Host", TEXT("GET http://a/ HTTP/1.1\r\n\r\n"), 400},
    {"absolute-form with userinfo", TEXT("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form without authority", TEXT("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"absolute-form scheme only", TEXT("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"other scheme", TEXT("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"authority-form outside CONNECT", TEXT("GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"relative target", TEXT("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"asterisk outside OPTIONS", TEXT("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"NUL in the target", TEXT("GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"DEL in the target", TEXT("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"CONNECT", TEXT("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"), 501},
    /* request line */
    {"HTTP/1.2", TEXT("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/2.0", TEXT("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {"HTTP/0.9", TEXT("GET / HTTP/0.9\r\n\r\n"), 505},
    {"lowercase http/1.1", TEXT("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {"HTTP/11.1", TEXT("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), 400},
    {"HTTP/1.1 with a suffix", TEXT("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400},
    {"HTTP/2", TEXT("GET / HTTP/2\r\nHost: a\r\n\r\n"), 400},
    {"double space after the method", TEXT("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"double space after the target", TEXT("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"space at the end", TEXT("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {"space at the start", TEXT(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"tab instead of SP", TEXT("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"tab before the version", TEXT("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"space inside the target", TEXT("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"no version (HTTP/0.9)", TEXT("GET /\r\n\r\n"), 400},
    {"separator in the method", TEXT("GE@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"five empty lines first", TEXT("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {"bare LF first", TEXT("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    /* refused before the line ends */
    {"TLS ClientHello", TEXT("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), 400},
    {"control byte in an unfinished line", TEXT("GET / HTTP/1.1\r\nHost: a\r\nX: \x01"), 400},
    {"bare CR in an unfinished line", TEXT("GET / HTTP/1.1\r\nHo\rst"), 400},
};

static void test_request_bad(void **state)
{
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const struct bad_case *c = &bad_requests[i];

        parse_bad_every_split(c->name, c->text, c->len, MAXH, NULL, c->status);
    }
}

/* ---- limits ---- */

/* "GET / HTTP/1.1\r\nHost: a\r\n" then nfields "X-N: v" lines and the empty line. */
static char *head_with_fields(size_t nfields, size_t *len)
{
    size_t cap = 64 + nfields * 16, n;
    char *p = malloc(cap);

    assert_non_null(p);
    n = (size_t)snprintf(p, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 0; i < nfields; i++)
        n += (size_t)snprintf(p + n, cap - n, "X-%zu: v\r\n", i);
    n += (size_t)snprintf(p + n, cap - n, "\r\n");
    *len = n;
    return p;
}

/* A head that never ends: NEED_MORE below max_head bytes, 431 from there on. */
static void test_head_too_large_never_ends(void **state)
{
    static struct http_head h;
    const size_t max = 64;
    char text[200];
    size_t prefix = (size_t)snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\nX: ");

    memset(text + prefix, 'a', sizeof(text) - prefix);
    for (size_t k = 0; k <= sizeof(text); k++) {
        char *copy = exact_copy(text, k);
        enum http_result r = http_parse_request(copy, k, max, &h);

        free(copy);
        if (k < max) {
            assert_int_equal(r, HTTP_NEED_MORE);
        } else {
            assert_int_equal(r, HTTP_ERROR);
            assert_int_equal(h.error_status, 431);
        }
    }
    /* A request line alone that is too long. */
    memcpy(text, "GET /", 5);
    memset(text + 5, 'b', sizeof(text) - 5);
    assert_int_equal(http_parse_request(text, sizeof(text), max, &h), HTTP_ERROR);
    assert_int_equal(h.error_status, 431);
}

/* A head that ends, but late: 431; one that ends exactly at max_head: OK. */
static void test_head_too_large_ends_late(void **state)
{
    static struct http_head h;
    static const char text[] = "GET /some/path HTTP/1.1\r\nHost: a.test\r\nUser-Agent: t\r\n\r\n";
    size_t len = sizeof(text) - 1;

    parse_ok_every_split("exactly max_head", text, len, len, NULL, &h);
    assert_int_equal(h.head_len, len);
    parse_bad_every_split("one over max_head", text, len, len - 1, NULL, 431);
    parse_bad_every_split("far over max_head", text, len, 20, NULL, 431);
    /* The body and what follows do not count. */
    {
        static const char with_body[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n"
                                        "0123456789012345678901234567890123456789";

        assert_int_equal(http_parse_request(with_body, sizeof(with_body) - 1, 48, &h), HTTP_OK);
        assert_int_equal(h.head_len, 48);
    }
    /* Responses: 502. */
    parse_bad_every_split("response over max_head", "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", 25, 24,
                          "GET", 502);
}

static void test_header_count(void **state)
{
    static struct http_head h;
    size_t len;
    char *text = head_with_fields(HTTP_MAX_HEADERS - 1, &len); /* plus Host: 100 */

    parse_ok_every_split("100 fields", text, len, MAXH, NULL, &h);
    assert_int_equal(h.nheaders, HTTP_MAX_HEADERS);
    free(text);
    text = head_with_fields(HTTP_MAX_HEADERS, &len);
    parse_bad_every_split("101 fields", text, len, MAXH, NULL, 431);
    free(text);
    text = head_with_fields(HTTP_MAX_HEADERS + 50, &len);
    parse_bad_every_split("150 fields", text, len, MAXH, NULL, 431);
    free(text);
}

/* ---- responses ---- */

struct resp_case {
    const char *name;
    const char *text;
    size_t len;
    size_t body_len;
    const char *method; /* of the request answered */
    unsigned status;
    const char *reason;
    unsigned minor;
    enum http_body body;
    uint64_t content_length;
    bool keep_alive, upgrade;
};

static const struct resp_case good_responses[] = {
    {.name = "200 with Content-Length",
     TEXT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
     .body_len = 5,
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .body = HTTP_BODY_LENGTH,
     .content_length = 5,
     .keep_alive = true},
    {.name = "answer to HEAD",
     TEXT("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
     .method = "HEAD",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .keep_alive = true},
    {.name = "answer to HEAD, chunked",
     TEXT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     .method = "HEAD",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .keep_alive = true},
    {.name = "204 with Content-Length",
     TEXT("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
     .method = "GET",
     .status = 204,
     .reason = "No Content",
     .minor = 1,
     .keep_alive = true},
    {.name = "304 with Content-Length",
     TEXT("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n"),
     .method = "GET",
     .status = 304,
     .reason = "Not Modified",
     .minor = 1,
     .keep_alive = true},
    {.name = "100 Continue",
     TEXT("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
     .body_len = 17,
     .method = "PUT",
     .status = 100,
     .reason = "Continue",
     .minor = 1,
     .keep_alive = true},
    {.name = "101 upgrade",
     TEXT("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
     .method = "GET",
     .status = 101,
     .reason = "Switching Protocols",
     .minor = 1,
     .keep_alive = true,
     .upgrade = true},
    {.name = "200 to CONNECT",
     TEXT("HTTP/1.1 200 Connection established\r\n\r\n"),
     .method = "CONNECT",
     .status = 200,
     .reason = "Connection established",
     .minor = 1,
     .keep_alive = true},
    {.name = "no length: until close",
     TEXT("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc"),
     .body_len = 3,
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .body = HTTP_BODY_UNTIL_CLOSE},
    {.name = "Content-Length 0",
     TEXT("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
     .method = "GET",
     .status = 404,
     .reason = "Not Found",
     .minor = 1,
     .keep_alive = true},
    {.name = "chunked",
     TEXT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
     .body_len = 5,
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .body = HTTP_BODY_CHUNKED,
     .keep_alive = true},
    {.name = "gzip, chunked is chunked",
     TEXT("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .body = HTTP_BODY_CHUNKED,
     .keep_alive = true},
    {.name = "chunked, gzip is until close",
     TEXT("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 1,
     .body = HTTP_BODY_UNTIL_CLOSE},
    {.name = "HTTP/1.0 with keep-alive",
     TEXT("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
     .body_len = 2,
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 0,
     .body = HTTP_BODY_LENGTH,
     .content_length = 2,
     .keep_alive = true},
    {.name = "HTTP/1.0 closes by default",
     TEXT("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n"),
     .method = "GET",
     .status = 200,
     .reason = "OK",
     .minor = 0,
     .body = HTTP_BODY_LENGTH,
     .content_length = 2},
    {.name = "Connection: close",
     TEXT("HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"),
     .method = "POST",
     .status = 500,
     .reason = "Oops",
     .minor = 1,
     .body = HTTP_BODY_LENGTH,
     .content_length = 2},
    {.name = "no reason, no space",
     TEXT("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
     .method = "GET",
     .status = 200,
     .reason = "",
     .minor = 1,
     .keep_alive = true},
    {.name = "no reason after the space",
     TEXT("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"),
     .method = "GET",
     .status = 200,
     .reason = "",
     .minor = 1,
     .keep_alive = true},
    {.name = "odd status, obs-text and tab in the reason",
     TEXT("HTTP/1.1 599 Tr\xc3\xa8s\tloin\r\nContent-Length: 0\r\n\r\n"),
     .method = "GET",
     .status = 599,
     .reason = "Tr\xc3\xa8s\tloin",
     .minor = 1,
     .keep_alive = true},
};

static void test_response_good(void **state)
{
    static struct http_head h;

    for (size_t i = 0; i < sizeof(good_responses) / sizeof(good_responses[0]); i++) {
        const struct resp_case *c = &good_responses[i];

        parse_ok_every_split(c->name, c->text, c->len, MAXH, c->method, &h);
        assert_int_equal(h.head_len, c->len - c->body_len);
        assert_int_equal(h.status, c->status);
        assert_str(h.reason, c->reason);
        assert_int_equal(h.version_minor, c->minor);
        if (h.body != c->body)
            fail_msg("%s: body %d, want %d", c->name, h.body, c->body);
        assert_int_equal(h.content_length, c->content_length);
        if (h.keep_alive != c->keep_alive || h.upgrade != c->upgrade)
            fail_msg("%s: keep_alive %d upgrade %d", c->name, h.keep_alive, h.upgrade);
        assert_int_equal(h.method.len, 0);
        assert_int_equal(h.host.len, 0);
        assert_false(h.expect_continue);
    }
}

#define RESP(s) "HTTP/1.1 200 OK\r\n" s "\r\n"

static const struct bad_case bad_responses[] = {
    {"two-digit status", TEXT("HTTP/1.1 20 OK\r\n\r\n"), 502},
    {"four-digit status", TEXT("HTTP/1.1 2000 OK\r\n\r\n"), 502},
    {"status 099", TEXT("HTTP/1.1 099 X\r\n\r\n"), 502},
    {"letters for status", TEXT("HTTP/1.1 abc OK\r\n\r\n"), 502},
    {"HTTP/1.2", TEXT("HTTP/1.2 200 OK\r\n\r\n"), 502},
    {"HTTP/2", TEXT("HTTP/2 200 OK\r\n\r\n"), 502},
    {"lowercase version", TEXT("http/1.1 200 OK\r\n\r\n"), 502},
    {"double space", TEXT("HTTP/1.1  200 OK\r\n\r\n"), 502},
    {"tab after the status", TEXT("HTTP/1.1 200\tOK\r\n\r\n"), 502},
    {"control byte in the reason", TEXT("HTTP/1.1 200 O\x01K\r\n\r\n"), 502},
    {"leading empty line", TEXT("\r\nHTTP/1.1 200 OK\r\n\r\n"), 502},
    {"not HTTP", TEXT("SSH-2.0-OpenSSH_9.2\r\n"), 502},
    {"CL and TE", TEXT(RESP("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")), 502},
    {"CL and TE on a 304",
     TEXT("HTTP/1.1 304 NM\r\nContent-Length: 5\r\n"
          "Transfer-Encoding: chunked\r\n\r\n"),
     502},
    {"differing CL", TEXT(RESP("Content-Length: 5\r\nContent-Length: 6\r\n")), 502},
    {"identical CL", TEXT(RESP("Content-Length: 5\r\nContent-Length: 5\r\n")), 502},
    {"CL list of one number twice", TEXT(RESP("Content-Length: 5, 5\r\n")), 502},
    {"bad CL", TEXT(RESP("Content-Length: 5x\r\n")), 502},
    {"chunked twice", TEXT(RESP("Transfer-Encoding: chunked, chunked\r\n")), 502},
    {"TE in HTTP/1.0", TEXT("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 502},
    {"bare LF", TEXT("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), 502},
    {"obs-fold", TEXT(RESP("X: a\r\n b\r\n")), 502},
    {"NUL in a value", TEXT(RESP("X: \0\r\n")), 502},
    {"space before a colon", TEXT(RESP("Content-Length : 0\r\n")), 502},
};

static void test_response_bad(void **state)
{
    size_t len;
    char *text;

    for (size_t i = 0; i < sizeof(bad_responses) / sizeof(bad_responses[0]); i++) {
        const struct bad_case *c = &bad_responses[i];

        parse_bad_every_split(c->name, c->text, c->len, MAXH, "GET", c->status);
    }
    text = head_with_fields(HTTP_MAX_HEADERS, &len);
    memcpy(text, "HTTP/1.1 200 OK\r\nX: 123\r\n", 25); /* as long as the first two lines */
    parse_bad_every_split("101 fields", text, len, MAXH, "GET", 502);
    free(text);
}

/* Methods are case-sensitive: "head" is not HEAD, so its answer has a body. */
static void test_response_method_case(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    static struct http_head h;
    struct http_str m = {"head", 4};

    assert_int_equal(http_parse_response(text, sizeof(text) - 1, MAXH, m, &h), HTTP_OK);
    assert_int_equal(h.body, HTTP_BODY_LENGTH);
}

/* ---- small helpers ---- */

static struct http_str hs(const char *s)
{
    struct http_str r = {s, strlen(s)};

    return r;
}

static void test_str_helpers(void **state)
{
    assert_true(http_str_eq_nocase(hs("Content-Length"), "content-length"));
    assert_true(http_str_eq_nocase(hs(""), ""));
    assert_false(http_str_eq_nocase(hs("Content-Length2"), "content-length"));
    assert_false(http_str_eq_nocase(hs("Content-Lengt"), "content-length"));
    assert_false(http_str_eq_nocase(hs("[ost"), "{ost")); /* no bit tricks on non-letters */

    assert_true(http_list_has(hs("close"), "close"));
    assert_true(http_list_has(hs(" Close\t"), "close"));
    assert_true(http_list_has(hs("keep-alive, Upgrade"), "upgrade"));
    assert_true(http_list_has(hs(",,close,,"), "close"));
    assert_true(http_list_has(hs("a ,\tclose , b"), "close"));
    assert_false(http_list_has(hs("closed"), "close"));
    assert_false(http_list_has(hs("close-ish, xclose"), "close"));
    assert_false(http_list_has(hs("clo se"), "close"));
    assert_false(http_list_has(hs(""), "close"));
    assert_false(http_list_has(hs(" , "), ""));
}

static void test_reason(void **state)
{
    static const unsigned known[] = {100, 101, 200, 201, 204, 206, 301, 302, 303, 304, 307, 308,
                                     400, 401, 403, 404, 405, 408, 410, 411, 413, 414, 417, 421,
                                     426, 429, 431, 451, 500, 501, 502, 503, 504, 505};

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        assert_true(http_reason(known[i])[0] != '\0');
    assert_string_equal(http_reason(200), "OK");
    assert_string_equal(http_reason(404), "Not Found");
    assert_string_equal(http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_reason(451), "Unavailable For Legal Reasons"); /* a deny status */
    assert_string_equal(http_reason(0), "");
    assert_string_equal(http_reason(299), "");
    assert_string_equal(http_reason(999), "");
}

/* ---- chunked bodies ---- */

#define NEXT_REQUEST "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

struct chunk_case {
    const char *name;
    const char *text;
    size_t len;
};

static const struct chunk_case good_chunked[] = {
    {"last chunk only", TEXT("0\r\n\r\n")},
    {"one chunk", TEXT("5\r\nhello\r\n0\r\n\r\n")},
    {"two chunks", TEXT("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")},
    {"upper and lower hex", TEXT("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n")},
    {"leading zeros", TEXT("0005\r\nhello\r\n000\r\n\r\n")},
    {"extensions", TEXT("5;name=value\r\nhello\r\n0;last\r\n\r\n")},
    {"extension with BWS and a quoted value", TEXT("5 \t; a = \"q s\"\r\nhello\r\n0\r\n\r\n")},
    {"trailers", TEXT("1\r\nx\r\n0\r\nX-Sum: abc\r\nY:\r\nZ: \xc3\xa9\t\r\n\r\n")},
    {"data that looks like the end", TEXT("7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n")},
    {"data with NUL and LF bytes", TEXT("4\r\n\0\n\r\0\r\n0\r\n\r\n")},
};

/*
 * Feeds text (a whole chunked body) followed by the next request in pieces
 * that end at the offsets in cuts[0..ncuts) and then at the end. The body
 * must end exactly where text ends, with MORE before.
 */
static void chunked_feed(const char *name, const char *text, size_t len, const size_t *cuts,
                         size_t ncuts)
{
    size_t total = len + sizeof(NEXT_REQUEST) - 1, at = 0, consumed = 0;
    char *all = malloc(total);
    struct http_chunked c;
    bool done = false;

    assert_non_null(all);
    memcpy(all, text, len);
    memcpy(all + len, NEXT_REQUEST, sizeof(NEXT_REQUEST) - 1);
    http_chunked_init(&c);
    for (size_t i = 0; i <= ncuts && !done; i++) {
        size_t end = i < ncuts ? cuts[i] : total, used = 12345;
        char *piece = exact_copy(all + at, end - at);
        enum http_chunk_result r = http_chunked_scan(&c, piece, end - at, &used);

        free(piece);
        if (r == HTTP_CHUNK_ERROR)
            fail_msg("%s: refused in the piece at %zu..%zu", name, at, end);
        if (r == HTTP_CHUNK_MORE && used != end - at)
            fail_msg("%s: MORE used %zu of %zu", name, used, end - at);
        consumed += used;
        done = r == HTTP_CHUNK_DONE;
        at = end;
    }
    free(all);
    if (!done)
        fail_msg("%s: never done", name);
    if (consumed != len)
        fail_msg("%s: used %zu bytes, the body has %zu", name, consumed, len);
}

static void test_chunked_good(void **state)
{
    for (size_t i = 0; i < sizeof(good_chunked) / sizeof(good_chunked[0]); i++) {
        const struct chunk_case *c = &good_chunked[i];
        size_t total = c->len + sizeof(NEXT_REQUEST) - 1;
        size_t *cuts = malloc(total * sizeof(*cuts));

        assert_non_null(cuts);
        chunked_feed(c->name, c->text, c->len, NULL, 0); /* all at once */
        for (size_t k = 0; k < total; k++)
            cuts[k] = k + 1; /* byte by byte */
        chunked_feed(c->name, c->text, c->len, cuts, total - 1);
        for (size_t k = 0; k <= total; k++) {
            cuts[0] = k; /* two pieces, the first possibly empty */
            chunked_feed(c->name, c->text, c->len, cuts, 1);
        }
        for (size_t a = 0; a < c->len; a++) {
            for (size_t b = a; b < c->len; b++) {
                cuts[0] = a; /* three pieces */
                cuts[1] = b;
                chunked_feed(c->name, c->text, c->len, cuts, 2);
            }
        }
        free(cuts);
    }
}

static const struct chunk_case bad_chunked[] = {
    {"no size", TEXT("\r\n\r\n")},
    {"bad hex", TEXT("x\r\n")},
    {"0x prefix", TEXT("0x5\r\nhello\r\n0\r\n\r\n")},
    {"negative", TEXT("-5\r\nhello\r\n")},
    {"plus", TEXT("+5\r\nhello\r\n")},
    {"17 digits", TEXT("00000000000000005\r\nhello\r\n0\r\n\r\n")},
    {"17 digits of f", TEXT("fffffffffffffffff\r\n")},
    {"extension without size", TEXT(";a\r\n")},
    {"space before the size", TEXT(" 5\r\nhello\r\n")},
    {"space after the size", TEXT("5 \r\nhello\r\n")},
    {"space in the size", TEXT("5 5\r\nhello\r\n")},
    {"bare LF after the size", TEXT("5\nhello\r\n0\r\n\r\n")},
    {"bare CR after the size", TEXT("5\rhello\r\n0\r\n\r\n")},
    {"bare LF in an extension", TEXT("5;a\nb\r\nhello\r\n")},
    {"control byte in an extension", TEXT("5;a\x01\r\nhello\r\n")},
    {"NUL in an extension", TEXT("5;a\0\r\nhello\r\n")},
    {"data longer than the size", TEXT("5\r\nhelloX\r\n0\r\n\r\n")},
    {"data shorter than the size", TEXT("6\r\nhello\r\n0\r\n\r\n\r\n")},
    {"bare LF after the data", TEXT("5\r\nhello\n0\r\n\r\n")},
    {"LF CR after the data", TEXT("5\r\nhello\n\r0\r\n\r\n")},
    {"bare LF ending the body", TEXT("0\r\n\n")},
    {"bare CR ending the body", TEXT("0\r\n\rX")},
    {"obs-fold in the trailers", TEXT("0\r\nX: a\r\n b\r\n\r\n")},
    {"trailer starting with a space", TEXT("0\r\n X: a\r\n\r\n")},
    {"space before a trailer colon", TEXT("0\r\nX : a\r\n\r\n")},
    {"empty trailer name", TEXT("0\r\n: a\r\n\r\n")},
    {"trailer without colon", TEXT("0\r\nXa\r\n\r\n")},
    {"NUL in a trailer", TEXT("0\r\nX: \0\r\n\r\n")},
    {"bare LF after a trailer", TEXT("0\r\nX: a\n\r\n")},
};

/* Refused whole at the offending byte, and at the same byte when fed byte by byte. */
static void test_chunked_bad(void **state)
{
    for (size_t i = 0; i < sizeof(bad_chunked) / sizeof(bad_chunked[0]); i++) {
        const struct chunk_case *c = &bad_chunked[i];
        struct http_chunked ch;
        size_t used, at_whole, k;
        enum http_chunk_result r;

        http_chunked_init(&ch);
        if (http_chunked_scan(&ch, c->text, c->len, &at_whole) != HTTP_CHUNK_ERROR)
            fail_msg("%s: not refused", c->name);
        /* Stays refused. */
        assert_int_equal(http_chunked_scan(&ch, "0\r\n\r\n", 5, &used), HTTP_CHUNK_ERROR);
        http_chunked_init(&ch);
        for (k = 0; k < c->len; k++) {
            char *piece = exact_copy(c->text + k, 1);

            r = http_chunked_scan(&ch, piece, 1, &used);
            free(piece);
            if (r == HTTP_CHUNK_ERROR)
                break;
            if (r != HTTP_CHUNK_MORE)
                fail_msg("%s: byte %zu gave %d", c->name, k, r);
        }
        if (k != at_whole)
            fail_msg("%s: refused at byte %zu fed whole, %zu byte by byte", c->name, at_whole, k);
    }
}

/* A big chunk is skipped in one step; the body ends right before the next request. */
static void test_chunked_bulk(void **state)
{
    const size_t size = 1 << 20;
    static const char head[] = "100000\r\n";
    static const char tail[] = "\r\n0\r\n\r\n" NEXT_REQUEST;
    size_t total = sizeof(head) - 1 + size + sizeof(tail) - 1, used;
    char *body = malloc(total);
    struct http_chunked c;

    assert_non_null(body);
    memcpy(body, head, sizeof(head) - 1);
    memset(body + sizeof(head) - 1, '\n', size);
    memcpy(body + sizeof(head) - 1 + size, tail, sizeof(tail) - 1);
    http_chunked_init(&c);
    assert_int_equal(http_chunked_scan(&c, body, total, &used), HTTP_CHUNK_DONE);
    assert_int_equal(used, total - (sizeof(NEXT_REQUEST) - 1));

    /* In pieces: the size line, most of the data, the rest. */
    http_chunked_init(&c);
    assert_int_equal(http_chunked_scan(&c, body, 8, &used), HTTP_CHUNK_MORE);
    assert_int_equal(c.left, size);
    assert_int_equal(http_chunked_scan(&c, body + 8, size - 1, &used), HTTP_CHUNK_MORE);
    assert_int_equal(used, size - 1);
    assert_int_equal(c.left, 1);
    assert_int_equal(http_chunked_scan(&c, body + 8 + size - 1, total - 8 - size + 1, &used),
                     HTTP_CHUNK_DONE);
    assert_int_equal(used, 1 + 7);
    /* Done stays done and takes nothing more. */
    assert_int_equal(http_chunked_scan(&c, "0\r\n\r\n", 5, &used), HTTP_CHUNK_DONE);
    assert_int_equal(used, 0);
    free(body);
}

/* 16 hex digits are the most; the size line and trailers have byte limits. */
static void test_chunked_limits(void **state)
{
    struct http_chunked c;
    size_t used, n;
    char *line = malloc(20000);

    assert_non_null(line);
    http_chunked_init(&c);
    assert_int_equal(http_chunked_scan(&c, "ffffffffffffffff\r\n", 18, &used), HTTP_CHUNK_MORE);
    assert_true(c.left == UINT64_MAX);

    /* Size line of 4096 bytes without its CRLF: taken; 4097: refused. */
    for (size_t extra = 0; extra <= 1; extra++) {
        n = 4096 + extra;
        line[0] = '0';
        line[1] = ';';
        memset(line + 2, 'e', n - 2);
        memcpy(line + n, "\r\n\r\n", 4);
        http_chunked_init(&c);
        assert_int_equal(http_chunked_scan(&c, line, n + 4, &used),
                         extra == 0 ? HTTP_CHUNK_DONE : HTTP_CHUNK_ERROR);
        if (extra == 1)
            assert_int_equal(used, 4096);
    }

    /* Trailers of 16384 bytes (lines with their CRLF): taken; one more byte: refused. */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t tr = 16384 + extra;

        memcpy(line, "0\r\nX: ", 6);
        memset(line + 6, 'v', tr - 5);
        memcpy(line + 3 + tr - 2, "\r\n\r\n", 4);
        n = 3 + tr + 2;
        http_chunked_init(&c);
        assert_int_equal(http_chunked_scan(&c, line, n, &used),
                         extra == 0 ? HTTP_CHUNK_DONE : HTTP_CHUNK_ERROR);
        if (extra == 0)
            assert_int_equal(used, n);
    }
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_good),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_bad),
        cmocka_unit_test(test_head_too_large_never_ends),
        cmocka_unit_test(test_head_too_large_ends_late),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_response_good),
        cmocka_unit_test(test_response_bad),
        cmocka_unit_test(test_response_method_case),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_chunked_good),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_chunked_bulk),
        cmocka_unit_test(test_chunked_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
