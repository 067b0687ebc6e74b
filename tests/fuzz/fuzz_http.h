/*
 * What the HTTP fuzz targets share: the checks that a resumable head parse
 * and the chunked scanner give the same answer however the bytes arrive.
 * Each target file passes in its parse function (request or response).
 */
#ifndef TLSGATE_FUZZ_HTTP_H
#define TLSGATE_FUZZ_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "http_parse.h"

#define FUZZ_MAX_HEAD 8192 /* the listeners' default max_header_bytes */

/* Parses buf[0..len) with a head limit; a request or a response parser. */
typedef enum http_result (*fuzz_head_fn)(const char *buf, size_t len, size_t max_head,
                                         struct http_head *h);

static inline bool fuzz_str_same(struct http_str a, struct http_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* True when two parses found the same head (each pointing into its own buffer). */
static inline bool fuzz_head_same(const struct http_head *a, const struct http_head *b)
{
    if (!fuzz_str_same(a->method, b->method) || !fuzz_str_same(a->target, b->target) ||
        a->status != b->status || !fuzz_str_same(a->reason, b->reason) ||
        a->version_minor != b->version_minor || a->nheaders != b->nheaders ||
        a->head_len != b->head_len || a->body != b->body || a->keep_alive != b->keep_alive ||
        a->upgrade != b->upgrade || a->expect_continue != b->expect_continue ||
        !fuzz_str_same(a->host, b->host))
        return false;
    if (a->body == HTTP_BODY_LENGTH && a->content_length != b->content_length)
        return false;
    for (size_t i = 0; i < a->nheaders; i++)
        if (!fuzz_str_same(a->headers[i].name, b->headers[i].name) ||
            !fuzz_str_same(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

/* True when s lies inside buf[0..len). */
static inline bool fuzz_str_inside(struct http_str s, const char *buf, size_t len)
{
    return s.len == 0 || (s.p >= buf && s.p + s.len <= buf + len);
}

/* What an accepted head promises to the code that forwards it. */
static inline void fuzz_check_head(const struct http_head *h, const char *buf, size_t len,
                                   size_t max_head)
{
    FUZZ_CHECK(h->head_len >= 4 && h->head_len <= len && h->head_len <= max_head);
    FUZZ_CHECK(memcmp(buf + h->head_len - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(h->nheaders <= HTTP_MAX_HEADERS);
    FUZZ_CHECK(h->version_minor <= 1);
    FUZZ_CHECK(fuzz_str_inside(h->method, buf, h->head_len));
    FUZZ_CHECK(fuzz_str_inside(h->target, buf, h->head_len));
    FUZZ_CHECK(fuzz_str_inside(h->reason, buf, h->head_len));
    FUZZ_CHECK(fuzz_str_inside(h->host, buf, h->head_len));
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *f = &h->headers[i];
        char name[256];

        FUZZ_CHECK(f->name.len > 0 && fuzz_str_inside(f->name, buf, h->head_len));
        FUZZ_CHECK(fuzz_str_inside(f->value, buf, h->head_len));
        FUZZ_CHECK(memchr(f->name.p, ':', f->name.len) == NULL);
        FUZZ_CHECK(f->value.len == 0 || memchr(f->value.p, '\n', f->value.len) == NULL);
        FUZZ_CHECK(f->value.len == 0 || memchr(f->value.p, '\r', f->value.len) == NULL);
        FUZZ_CHECK(f->value.len == 0 || memchr(f->value.p, '\0', f->value.len) == NULL);
        if (f->name.len < sizeof(name)) {
            memcpy(name, f->name.p, f->name.len);
            name[f->name.len] = '\0';
            FUZZ_CHECK(http_find_header(h, name) != NULL);
        }
        (void)http_list_has(f->value, "close");
    }
}

/*
 * Parses data whole and as a prefix of cut bytes (an exact copy) with the
 * same limit, and once more whole with a smaller limit, and checks the
 * answers fit: more bytes never change a verdict, a head that fits a limit
 * parses the same under any limit it fits, and one that does not is refused.
 * Returns the whole parse's result with *whole filled.
 */
static inline enum http_result fuzz_head_both_ways(fuzz_head_fn parse, const uint8_t *data,
                                                   size_t size, unsigned err_too_big,
                                                   struct http_head *whole)
{
    static struct http_head part; /* big: not on the stack */
    const char *buf = (const char *)data;
    size_t cut = fuzz_cut(data, size, 0), small = fuzz_cut(data, size, 1);
    char *prefix = (char *)fuzz_copy(data, cut);
    enum http_result rw = parse(buf, size, FUZZ_MAX_HEAD, whole);
    enum http_result rp = parse(prefix, cut, FUZZ_MAX_HEAD, &part);

    FUZZ_CHECK(rw != HTTP_ERROR || (whole->error != NULL && whole->error_status >= 400));
    if (rw == HTTP_OK) {
        fuzz_check_head(whole, buf, size, FUZZ_MAX_HEAD);
        FUZZ_CHECK(rp == (cut < whole->head_len ? HTTP_NEED_MORE : HTTP_OK));
    }
    if (rp != HTTP_NEED_MORE)
        FUZZ_CHECK(rp == rw);
    if (rp == HTTP_OK)
        FUZZ_CHECK(fuzz_head_same(whole, &part));
    if (rp == HTTP_ERROR)
        FUZZ_CHECK(part.error_status == whole->error_status);
    free(prefix);

    if (rw == HTTP_OK) {
        enum http_result rs = parse(buf, size, small, &part);

        if (whole->head_len <= small)
            FUZZ_CHECK(rs == HTTP_OK && fuzz_head_same(whole, &part));
        else if (size >= small)
            FUZZ_CHECK(rs == HTTP_ERROR && part.error_status == err_too_big);
        else
            FUZZ_CHECK(rs == HTTP_NEED_MORE);
        /* The gateway parses again after each read: the head must stay the same. */
        rs = parse(buf, size, FUZZ_MAX_HEAD, &part);
        FUZZ_CHECK(rs == HTTP_OK && fuzz_head_same(whole, &part));
    }
    return rw;
}

/* Scans body in up to three exact-copy pieces. Returns the result, total used in *used. */
static inline enum http_chunk_result fuzz_chunked_pieces(const uint8_t *body, size_t len, size_t a,
                                                         size_t b, size_t *used)
{
    size_t cuts[3] = {a < b ? a : b, a < b ? b : a, len}, at = 0;
    enum http_chunk_result r = HTTP_CHUNK_MORE;
    struct http_chunked c;

    *used = 0;
    http_chunked_init(&c);
    for (int i = 0; i < 3 && r == HTTP_CHUNK_MORE; i++) {
        size_t n = cuts[i] - at, u = (size_t)-1;
        char *piece = (char *)fuzz_copy(body + at, n);

        r = http_chunked_scan(&c, piece, n, &u);
        FUZZ_CHECK(u <= n);
        if (r == HTTP_CHUNK_MORE)
            FUZZ_CHECK(u == n);
        if (r == HTTP_CHUNK_ERROR)
            FUZZ_CHECK(u < n);
        *used += u;
        at = cuts[i];
        if (r != HTTP_CHUNK_MORE) {
            /* DONE and ERROR stick. */
            FUZZ_CHECK(http_chunked_scan(&c, piece, n, &u) == r);
        }
        free(piece);
    }
    return r;
}

/* Scans body whole and in pieces: the body ends (or fails) at the same byte. */
static inline void fuzz_chunked_both_ways(const uint8_t *body, size_t len)
{
    size_t a = fuzz_cut(body, len, 2), b = fuzz_cut(body, len, 3), uw, up;
    enum http_chunk_result rw = fuzz_chunked_pieces(body, len, len, len, &uw);
    enum http_chunk_result rp = fuzz_chunked_pieces(body, len, a, b, &up);

    FUZZ_CHECK(rw == rp);
    FUZZ_CHECK(uw == up);
}

#endif
