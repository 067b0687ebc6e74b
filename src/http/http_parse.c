/*
 * Strict HTTP/1.1 heads and chunked bodies (RFC 9112, RFC 9110).
 *
 * A head is parsed from scratch on every call: the caller hands the same
 * prefix plus what came since. Lines are found with memchr and each complete
 * line is checked in order, so the answer depends only on the bytes and never
 * on where they were split; the unfinished line at the end is only checked
 * for bytes no line may hold, so garbage is refused before its line ends.
 * Only the first max_head bytes are ever looked at: a head that does not end
 * inside them is too large, decided as soon as that many bytes are there.
 *
 * Meaning (Host, framing, connection options) is checked once the whole head
 * is there; the refusals follow RFC 9112 §6.3 and §11.2 so that no server
 * behind us can read the body boundaries differently than we do.
 */
#include "http_parse.h"

#include <string.h>

#define MAX_LEADING_CRLF 4 /* empty lines skipped before a request line (RFC 9112 §2.2) */

#define CHUNK_LINE_MAX    4096  /* chunk-size line: digits and extensions, without CRLF */
#define CHUNK_TRAILER_MAX 16384 /* trailer lines with their CRLFs, without the final CRLF */
#define CHUNK_SIZE_DIGITS 16    /* 16 hex digits fill a uint64_t: more could overflow */

/* How far the line reader got. */
enum line_result {
    LINE_OK,   /* a whole line */
    LINE_MORE, /* the line goes on past the bytes given */
    LINE_BAD,  /* refused: h->error is set */
};

/* One head being parsed. */
struct parser {
    const char *buf;     /* start of the message */
    size_t len;          /* bytes given */
    size_t max_head;     /* the caller's limit on the head */
    size_t win;          /* bytes that may belong to the head: min(len, max_head) */
    size_t off;          /* start of the next line */
    struct http_head *h; /* filled as we go */
    unsigned bad;        /* status for malformed input: 400 or 502 */
    unsigned too_large;  /* status for a head over the limits: 431 or 502 */
    /* absolute-form request target */
    struct http_str authority; /* host[:port] of the target; p is NULL for other forms */
    unsigned default_port;     /* 80 or 443, by the target's scheme */
};

/* What the framing fields say, once checked. */
struct framing {
    bool te;              /* a Transfer-Encoding field is present */
    bool te_last_chunked; /* its last coding is chunked */
    unsigned te_chunked;  /* how many times chunked is listed */
    unsigned te_unknown;  /* codings other than chunked */
    bool cl;              /* a Content-Length field is present */
    uint64_t length;      /* its value */
};

/* The fields that carry meaning for the gateway, found in one pass. */
struct fields {
    const struct http_header *host; /* the first Host field */
    unsigned nhost;                 /* Host fields seen */
    bool conn_close;                /* Connection lists "close" */
    bool conn_keep_alive;           /* Connection lists "keep-alive" */
    bool conn_upgrade;              /* Connection lists "upgrade" */
    bool has_upgrade;               /* an Upgrade field is present */
    bool expect_continue;           /* an Expect field is "100-continue" */
};

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* tchar (RFC 9110 §5.6.2): what methods, field names and codings are made of. */
static bool is_tchar(unsigned char c)
{
    if (is_digit(c) || is_alpha(c))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A byte a field value or reason phrase may hold: VCHAR, obs-text, SP, HTAB. */
static bool is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A byte a request target may hold: anything visible, obs-text included. */
static bool is_target_byte(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static int hex_value(unsigned char c)
{
    if (is_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static bool mem_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (to_lower((unsigned char)a[i]) != to_lower((unsigned char)b[i]))
            return false;
    return true;
}

static struct http_str str_make(const char *p, size_t len)
{
    struct http_str s = {p, len};

    return s;
}

/* True when s equals lit exactly (methods are case-sensitive). */
static bool str_eq(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* s without leading and trailing OWS. */
static struct http_str str_trim(struct http_str s)
{
    while (s.len > 0 && is_ows((unsigned char)s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && is_ows((unsigned char)s.p[s.len - 1]))
        s.len--;
    return s;
}

/*
 * Takes the next element of the comma-separated list *rest, trimmed (it may
 * be empty), and moves *rest past it. Returns false once the list is used up;
 * start with *rest set to the whole list.
 */
static bool list_next(struct http_str *rest, bool *done, struct http_str *elem)
{
    const char *comma;
    size_t n;

    if (*done)
        return false;
    comma = rest->len > 0 ? memchr(rest->p, ',', rest->len) : NULL;
    n = comma != NULL ? (size_t)(comma - rest->p) : rest->len;
    *elem = str_trim(str_make(rest->p, n));
    if (comma != NULL) {
        rest->p = comma + 1;
        rest->len -= n + 1;
    } else {
        *done = true;
    }
    return true;
}

static enum http_result fail(struct http_head *h, unsigned status, const char *why)
{
    h->error_status = status;
    h->error = why;
    return HTTP_ERROR;
}

static enum line_result line_fail(struct parser *ps, unsigned status, const char *why)
{
    fail(ps->h, status, why);
    return LINE_BAD;
}

/*
 * The next line, without its CRLF. A bare LF is refused at once, and so is a
 * byte no line may hold in the unfinished line at the end (a CR there that
 * is not the last byte given cannot be followed by LF). A line that cannot
 * end within max_head bytes makes the head too large.
 */
static enum line_result next_line(struct parser *ps, struct http_str *line)
{
    const char *start = ps->buf + ps->off;
    size_t avail = ps->win - ps->off;
    const char *lf = avail > 0 ? memchr(start, '\n', avail) : NULL;

    if (lf == NULL) {
        for (size_t i = 0; i < avail; i++) {
            unsigned char c = (unsigned char)start[i];

            if (c == '\r' && i + 1 == avail)
                break;
            if (c == '\r')
                return line_fail(ps, ps->bad, "bare CR in the head");
            if (!is_field_byte(c))
                return line_fail(ps, ps->bad, "control byte in the head");
        }
        if (ps->len >= ps->max_head)
            return line_fail(ps, ps->too_large, "head too large");
        return LINE_MORE;
    }
    if (lf == start || lf[-1] != '\r')
        return line_fail(ps, ps->bad, "bare LF in the head");
    *line = str_make(start, (size_t)(lf - 1 - start));
    ps->off = (size_t)(lf + 1 - ps->buf);
    return LINE_OK;
}

static void parser_init(struct parser *ps, const char *buf, size_t len, size_t max_head,
                        struct http_head *h, unsigned bad, unsigned too_large)
{
    memset(ps, 0, sizeof(*ps));
    ps->buf = buf;
    ps->len = len;
    ps->max_head = max_head;
    ps->win = len < max_head ? len : max_head;
    ps->h = h;
    ps->bad = bad;
    ps->too_large = too_large;

    /* Everything but the header array, which nheaders bounds. */
    h->method = str_make(NULL, 0);
    h->target = str_make(NULL, 0);
    h->status = 0;
    h->reason = str_make(NULL, 0);
    h->version_minor = 0;
    h->nheaders = 0;
    h->head_len = 0;
    h->body = HTTP_BODY_NONE;
    h->content_length = 0;
    h->keep_alive = false;
    h->upgrade = false;
    h->expect_continue = false;
    h->host = str_make(NULL, 0);
    h->error_status = 0;
    h->error = NULL;
}

static enum http_result line_result_to_http(enum line_result r)
{
    return r == LINE_MORE ? HTTP_NEED_MORE : HTTP_ERROR;
}

/*
 * "HTTP/1.0" or "HTTP/1.1": returns 0 and sets *minor. Another well-formed
 * HTTP-version returns 505, anything else 400.
 */
static unsigned parse_version(struct http_str v, unsigned *minor)
{
    if (v.len != 8 || memcmp(v.p, "HTTP/", 5) != 0 || !is_digit((unsigned char)v.p[5]) ||
        v.p[6] != '.' || !is_digit((unsigned char)v.p[7]))
        return 400;
    if (v.p[5] != '1' || v.p[7] > '1')
        return 505;
    *minor = (unsigned)(v.p[7] - '0');
    return 0;
}

/*
 * A port of 1 to 5 digits up to 65535 (RFC 3986 allows an empty one; no
 * client sends it and it only gives rules two spellings of a host to match).
 */
static bool parse_port(const char *p, size_t n, unsigned *port)
{
    unsigned v = 0;

    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = v;
    return true;
}

/*
 * Splits an authority, host[:port] or [v6]:port, into *host and *port
 * (default_port when absent). Returns false unless it is one. Hosts are held
 * to what DNS names and IP literals use: no userinfo, no percent-encoding,
 * no sub-delims, so "a.test, b.test" or "a@b" never reaches the rules.
 */
static bool split_authority(struct http_str a, unsigned default_port, struct http_str *host,
                            unsigned *port)
{
    size_t i = 0;

    if (a.len == 0)
        return false;
    if (a.p[0] == '[') {
        bool colon = false;

        for (i = 1; i < a.len && a.p[i] != ']'; i++) {
            unsigned char c = (unsigned char)a.p[i];

            if (c == ':')
                colon = true;
            else if (hex_value(c) < 0 && c != '.')
                return false;
        }
        if (i == a.len || i < 3 || !colon)
            return false;
        i++; /* past ']' */
    } else {
        for (; i < a.len && a.p[i] != ':'; i++) {
            unsigned char c = (unsigned char)a.p[i];

            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_' && c != '~')
                return false;
        }
        if (i == 0)
            return false;
    }
    *host = str_make(a.p, i);
    *port = default_port;
    if (i == a.len)
        return true;
    if (a.p[i] != ':')
        return false;
    return parse_port(a.p + i + 1, a.len - i - 1, port);
}

/* Checks the target's form (RFC 9112 §3.2); notes an absolute-form's authority. */
static enum http_result check_target(struct parser *ps)
{
    struct http_head *h = ps->h;
    struct http_str t = h->target;
    struct http_str host;
    size_t skip, end;
    unsigned port;

    if (t.p[0] == '/')
        return HTTP_OK;
    if (t.len == 1 && t.p[0] == '*') {
        if (!str_eq(h->method, "OPTIONS"))
            return fail(h, 400, "asterisk-form target outside OPTIONS");
        return HTTP_OK;
    }
    if (t.len > 7 && mem_eq_nocase(t.p, "http://", 7)) {
        skip = 7;
        ps->default_port = 80;
    } else if (t.len > 8 && mem_eq_nocase(t.p, "https://", 8)) {
        skip = 8;
        ps->default_port = 443;
    } else {
        return fail(h, 400, "bad request target");
    }
    for (end = skip; end < t.len; end++)
        if (t.p[end] == '/' || t.p[end] == '?' || t.p[end] == '#')
            break;
    ps->authority = str_make(t.p + skip, end - skip);
    if (!split_authority(ps->authority, ps->default_port, &host, &port))
        return fail(h, 400, "bad authority in the request target");
    return HTTP_OK;
}

/* method SP request-target SP HTTP-version (RFC 9112 §3), single spaces only. */
static enum http_result parse_request_line(struct parser *ps, struct http_str line)
{
    struct http_head *h = ps->h;
    const char *p = line.p;
    size_t n = line.len, i = 0, t0;
    unsigned status;

    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return fail(h, 400, "bad method");
    h->method = str_make(p, i);
    t0 = ++i;
    while (i < n && is_target_byte((unsigned char)p[i]))
        i++;
    if (i == t0 || i == n || p[i] != ' ')
        return fail(h, 400, "bad request target");
    h->target = str_make(p + t0, i - t0);
    i++;
    status = parse_version(str_make(p + i, n - i), &h->version_minor);
    if (status != 0)
        return fail(h, status, status == 505 ? "unsupported HTTP version" : "bad HTTP version");
    if (str_eq(h->method, "CONNECT"))
        return fail(h, 501, "CONNECT is not supported");
    return check_target(ps);
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] (RFC 9112 §4); a missing reason is tolerated. */
static enum http_result parse_status_line(struct parser *ps, struct http_str line)
{
    struct http_head *h = ps->h;
    const char *p = line.p;
    size_t n = line.len;

    if (n < 12 || parse_version(str_make(p, 8), &h->version_minor) != 0 || p[8] != ' ' ||
        p[9] < '1' || p[9] > '9' || !is_digit((unsigned char)p[10]) ||
        !is_digit((unsigned char)p[11]))
        return fail(h, 502, "bad status line");
    h->status = (unsigned)((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
    if (n == 12) {
        h->reason = str_make(p + 12, 0);
        return HTTP_OK;
    }
    if (p[12] != ' ')
        return fail(h, 502, "bad status line");
    for (size_t i = 13; i < n; i++)
        if (!is_field_byte((unsigned char)p[i]))
            return fail(h, 502, "control byte in the reason phrase");
    h->reason = str_make(p + 13, n - 13);
    return HTTP_OK;
}

/* field-name ":" OWS field-value OWS (RFC 9112 §5), into *f. */
static enum http_result parse_field(struct parser *ps, struct http_str line, struct http_header *f)
{
    const char *p = line.p;
    size_t n = line.len, i = 0;

    if (is_ows((unsigned char)p[0]))
        return fail(ps->h, ps->bad, "obs-fold or whitespace before a field name");
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == n || p[i] != ':')
        return fail(ps->h, ps->bad,
                    i < n && is_ows((unsigned char)p[i]) ? "whitespace before a colon"
                                                         : "bad field name");
    if (i == 0)
        return fail(ps->h, ps->bad, "empty field name");
    for (size_t j = i + 1; j < n; j++)
        if (!is_field_byte((unsigned char)p[j]))
            return fail(ps->h, ps->bad, "control byte in a field value");
    f->name = str_make(p, i);
    f->value = str_trim(str_make(p + i + 1, n - i - 1));
    return HTTP_OK;
}

/*
 * Reads field lines up to the empty line that ends the head. A 101st field
 * is refused as soon as its first bytes show it is not the empty line.
 */
static enum http_result parse_fields(struct parser *ps)
{
    struct http_head *h = ps->h;

    for (;;) {
        struct http_str line;
        enum line_result lr;
        enum http_result r;

        if (h->nheaders == HTTP_MAX_HEADERS && ps->off < ps->win) {
            const char *p = ps->buf + ps->off;

            if (p[0] != '\r' || (ps->off + 1 < ps->win && p[1] != '\n'))
                return fail(h, ps->too_large, "too many header fields");
        }
        lr = next_line(ps, &line);
        if (lr != LINE_OK)
            return line_result_to_http(lr);
        if (line.len == 0) {
            h->head_len = ps->off;
            return HTTP_OK;
        }
        r = parse_field(ps, line, &h->headers[h->nheaders]);
        if (r != HTTP_OK)
            return r;
        h->nheaders++;
    }
}

/* Notes the fields whose meaning the gateway acts on. */
static void scan_fields(const struct http_head *h, struct fields *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];

        if (http_str_eq_nocase(hd->name, "host")) {
            if (f->nhost++ == 0)
                f->host = hd;
        } else if (http_str_eq_nocase(hd->name, "connection")) {
            f->conn_close |= http_list_has(hd->value, "close");
            f->conn_keep_alive |= http_list_has(hd->value, "keep-alive");
            f->conn_upgrade |= http_list_has(hd->value, "upgrade");
        } else if (http_str_eq_nocase(hd->name, "upgrade")) {
            f->has_upgrade = true;
        } else if (http_str_eq_nocase(hd->name, "expect")) {
            f->expect_continue |= http_str_eq_nocase(hd->value, "100-continue");
        }
    }
}

/*
 * One Content-Length value: 1*DIGIT that fits in 64 bits. A second value, in
 * a list ("5, 5") or a repeated field, is refused even when it is the same
 * number: RFC 9110 (8.6) lets a recipient either refuse it or send on one
 * value, and forwarding the field as received would leave the next parser to
 * decide (nginx refuses too).
 */
static enum http_result parse_content_length(struct parser *ps, struct http_str v,
                                             struct framing *fr)
{
    struct http_str rest = v, elem;
    bool done = false;

    while (list_next(&rest, &done, &elem)) {
        uint64_t n = 0;

        if (elem.len == 0)
            return fail(ps->h, ps->bad, "empty Content-Length");
        for (size_t i = 0; i < elem.len; i++) {
            unsigned char c = (unsigned char)elem.p[i];

            if (!is_digit(c))
                return fail(ps->h, ps->bad, "bad Content-Length");
            if (n > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
                return fail(ps->h, ps->bad, "Content-Length overflows");
            n = n * 10 + (uint64_t)(c - '0');
        }
        if (fr->cl)
            return fail(ps->h, ps->bad, "more than one Content-Length value");
        fr->cl = true;
        fr->length = n;
    }
    return HTTP_OK;
}

/*
 * One Transfer-Encoding field: a list of codings, each a token with optional
 * ";param" (chunked takes none). Empty elements are skipped (RFC 9110 §5.6.1).
 */
static enum http_result parse_transfer_encoding(struct parser *ps, struct http_str v,
                                                struct framing *fr)
{
    struct http_str rest = v, elem;
    bool done = false;

    while (list_next(&rest, &done, &elem)) {
        size_t i = 0;
        struct http_str name, params;

        if (elem.len == 0)
            continue;
        while (i < elem.len && is_tchar((unsigned char)elem.p[i]))
            i++;
        name = str_make(elem.p, i);
        params = str_trim(str_make(elem.p + i, elem.len - i));
        if (i == 0 || (params.len > 0 && params.p[0] != ';'))
            return fail(ps->h, ps->bad, "bad Transfer-Encoding");
        fr->te_last_chunked = http_str_eq_nocase(name, "chunked");
        if (fr->te_last_chunked && params.len > 0)
            return fail(ps->h, ps->bad, "bad Transfer-Encoding");
        if (fr->te_last_chunked)
            fr->te_chunked++;
        else
            fr->te_unknown++;
    }
    return HTTP_OK;
}

/* Checks Content-Length and Transfer-Encoding, common to requests and responses. */
static enum http_result parse_framing(struct parser *ps, struct framing *fr)
{
    const struct http_head *h = ps->h;
    bool has_cl = false;

    memset(fr, 0, sizeof(*fr));
    for (size_t i = 0; i < h->nheaders; i++) {
        if (http_str_eq_nocase(h->headers[i].name, "transfer-encoding"))
            fr->te = true;
        else if (http_str_eq_nocase(h->headers[i].name, "content-length"))
            has_cl = true;
    }
    if (fr->te && has_cl)
        return fail(ps->h, ps->bad, "both Content-Length and Transfer-Encoding");
    if (fr->te && h->version_minor == 0)
        return fail(ps->h, ps->bad, "Transfer-Encoding in an HTTP/1.0 message");
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];
        enum http_result r = HTTP_OK;

        if (http_str_eq_nocase(hd->name, "transfer-encoding"))
            r = parse_transfer_encoding(ps, hd->value, fr);
        else if (http_str_eq_nocase(hd->name, "content-length"))
            r = parse_content_length(ps, hd->value, fr);
        if (r != HTTP_OK)
            return r;
    }
    if (fr->te && fr->te_chunked + fr->te_unknown == 0)
        return fail(ps->h, ps->bad, "empty Transfer-Encoding");
    if (fr->te_chunked > 1)
        return fail(ps->h, ps->bad, "chunked applied more than once");
    return HTTP_OK;
}

/* Host and target agree: same host (any case) and the same port, defaults applied. */
static bool same_authority(struct http_str a, struct http_str b, unsigned default_port)
{
    struct http_str ha, hb;
    unsigned pa, pb;

    if (!split_authority(a, default_port, &ha, &pa) || !split_authority(b, default_port, &hb, &pb))
        return false;
    return pa == pb && ha.len == hb.len && mem_eq_nocase(ha.p, hb.p, ha.len);
}

/* What a complete request head means: Host, framing, connection options. */
static enum http_result request_semantics(struct parser *ps)
{
    struct http_head *h = ps->h;
    struct framing fr;
    struct fields f;
    struct http_str host_port;
    unsigned port;
    enum http_result r;

    scan_fields(h, &f);
    if (f.nhost > 1)
        return fail(h, 400, "several Host fields");
    if (f.nhost == 0 && h->version_minor == 1)
        return fail(h, 400, "no Host field");
    if (f.host != NULL) {
        h->host = f.host->value;
        if (h->host.len > 0 && !split_authority(h->host, 80, &host_port, &port))
            return fail(h, 400, "bad Host");
        if (ps->authority.p != NULL && !same_authority(h->host, ps->authority, ps->default_port))
            return fail(h, 400, "Host differs from the target's authority");
    } else if (ps->authority.p != NULL) {
        h->host = ps->authority;
    }

    r = parse_framing(ps, &fr);
    if (r != HTTP_OK)
        return r;
    if (fr.te) {
        /* RFC 9112 §6.1: a coding we cannot decode is 501; it is refused before
         * asking whether chunked is last (§6.3's 400), both close. */
        if (fr.te_unknown > 0)
            return fail(h, 501, "unsupported transfer coding");
        if (!fr.te_last_chunked)
            return fail(h, 400, "chunked is not the last transfer coding");
        h->body = HTTP_BODY_CHUNKED;
    } else if (fr.cl && fr.length > 0) {
        h->body = HTTP_BODY_LENGTH;
        h->content_length = fr.length;
    } else {
        h->body = HTTP_BODY_NONE;
    }

    if (h->version_minor == 1)
        h->keep_alive = !f.conn_close;
    else
        h->keep_alive = f.conn_keep_alive && !f.conn_close;
    /* RFC 9110 §7.8 and §10.1.1: HTTP/1.0 requests can neither upgrade nor expect 100. */
    h->upgrade = h->version_minor == 1 && f.conn_upgrade && f.has_upgrade;
    h->expect_continue = h->version_minor == 1 && f.expect_continue;
    return HTTP_OK;
}

/* What a complete response head means: body framing (RFC 9112 §6.3) and connection. */
static enum http_result response_semantics(struct parser *ps, struct http_str req_method)
{
    struct http_head *h = ps->h;
    struct framing fr;
    struct fields f;
    enum http_result r;

    scan_fields(h, &f);
    r = parse_framing(ps, &fr);
    if (r != HTTP_OK)
        return r;
    if (str_eq(req_method, "HEAD") || h->status < 200 || h->status == 204 || h->status == 304)
        h->body = HTTP_BODY_NONE;
    else if (str_eq(req_method, "CONNECT") && h->status < 300)
        h->body = HTTP_BODY_NONE;
    else if (fr.te)
        h->body = fr.te_last_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_UNTIL_CLOSE;
    else if (fr.cl && fr.length > 0)
        h->body = HTTP_BODY_LENGTH;
    else if (fr.cl)
        h->body = HTTP_BODY_NONE;
    else
        h->body = HTTP_BODY_UNTIL_CLOSE;
    if (h->body == HTTP_BODY_LENGTH)
        h->content_length = fr.length;

    if (h->body == HTTP_BODY_UNTIL_CLOSE)
        h->keep_alive = false;
    else if (h->version_minor == 1)
        h->keep_alive = !f.conn_close;
    else
        h->keep_alive = f.conn_keep_alive && !f.conn_close;
    h->upgrade = h->status == 101 && f.conn_upgrade && f.has_upgrade;
    return HTTP_OK;
}

enum http_result http_parse_request(const char *buf, size_t len, size_t max_head,
                                    struct http_head *h)
{
    struct parser ps;
    struct http_str line;
    enum line_result lr;
    enum http_result r;

    parser_init(&ps, buf, len, max_head, h, 400, 431);
    for (unsigned empty = 0;; empty++) {
        lr = next_line(&ps, &line);
        if (lr != LINE_OK)
            return line_result_to_http(lr);
        if (line.len > 0)
            break;
        if (empty == MAX_LEADING_CRLF)
            return fail(h, 400, "too many empty lines before the request line");
    }
    r = parse_request_line(&ps, line);
    if (r != HTTP_OK)
        return r;
    r = parse_fields(&ps);
    if (r != HTTP_OK)
        return r;
    return request_semantics(&ps);
}

enum http_result http_parse_response(const char *buf, size_t len, size_t max_head,
                                     struct http_str req_method, struct http_head *h)
{
    struct parser ps;
    struct http_str line;
    enum line_result lr;
    enum http_result r;

    parser_init(&ps, buf, len, max_head, h, 502, 502);
    lr = next_line(&ps, &line);
    if (lr != LINE_OK)
        return line_result_to_http(lr);
    r = parse_status_line(&ps, line);
    if (r != HTTP_OK)
        return r;
    r = parse_fields(&ps);
    if (r != HTTP_OK)
        return r;
    return response_semantics(&ps, req_method);
}

const struct http_header *http_find_header(const struct http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (http_str_eq_nocase(h->headers[i].name, name))
            return &h->headers[i];
    return NULL;
}

bool http_str_eq_nocase(struct http_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && (n == 0 || mem_eq_nocase(s.p, lit, n));
}

bool http_list_has(struct http_str s, const char *tok)
{
    struct http_str rest = s, elem;
    bool done = false;

    if (tok[0] == '\0')
        return false;
    while (list_next(&rest, &done, &elem))
        if (http_str_eq_nocase(elem, tok))
            return true;
    return false;
}

const char *http_reason(unsigned status)
{
    static const struct {
        unsigned status;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {410, "Gone"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "";
}

/* Where the chunked scanner is; 0 must be the start (http_chunked_init). */
enum chunk_state {
    CS_SIZE = 0, /* chunk-size hex digits */
    CS_SIZE_WS,  /* BWS after the size: only ';' may follow */
    CS_EXT,      /* chunk extensions, up to CR */
    CS_SIZE_LF,  /* LF ending the size line */
    CS_DATA,     /* chunk data, skipped in bulk */
    CS_DATA_CR,  /* CR after the data */
    CS_DATA_LF,  /* LF after the data */
    CS_TRAILER,  /* start of a trailer line, or the CR of the final CRLF */
    CS_TR_NAME,  /* trailer field name */
    CS_TR_VALUE, /* trailer field value, up to CR */
    CS_TR_LF,    /* LF ending a trailer line */
    CS_END_LF,   /* LF of the final CRLF */
    CS_DONE,     /* the body ended */
    CS_ERROR,    /* the body was refused */
};

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CS_SIZE;
}

/* Refuses the body: the scanner stays in error. */
static enum http_chunk_result chunk_fail(struct http_chunked *c, size_t at, size_t *used)
{
    c->state = CS_ERROR;
    *used = at;
    return HTTP_CHUNK_ERROR;
}

/* One byte of a chunk-size line. Returns false when it is refused. */
static bool chunk_size_byte(struct http_chunked *c, unsigned char ch)
{
    int v;

    if (ch != '\r' && ++c->line_len > CHUNK_LINE_MAX)
        return false;
    switch (c->state) {
    case CS_SIZE:
        v = hex_value(ch);
        if (v >= 0) {
            if (c->size_digits == CHUNK_SIZE_DIGITS)
                return false;
            c->size_digits++;
            c->left = (c->left << 4) | (uint64_t)v;
            return true;
        }
        if (c->size_digits == 0)
            return false;
        if (ch == '\r')
            c->state = CS_SIZE_LF;
        else if (ch == ';')
            c->state = CS_EXT;
        else if (is_ows(ch))
            c->state = CS_SIZE_WS;
        else
            return false;
        return true;
    case CS_SIZE_WS:
        if (ch == ';')
            c->state = CS_EXT;
        return ch == ';' || is_ows(ch);
    default: /* CS_EXT */
        if (ch == '\r')
            c->state = CS_SIZE_LF;
        return ch == '\r' || is_field_byte(ch);
    }
}

/* One byte of the trailer section. Returns false when it is refused. */
static bool chunk_trailer_byte(struct http_chunked *c, unsigned char ch)
{
    if (c->state == CS_TRAILER && ch == '\r') {
        c->state = CS_END_LF;
        return true;
    }
    if (++c->trailer_bytes > CHUNK_TRAILER_MAX)
        return false;
    switch (c->state) {
    case CS_TRAILER: /* a field name starts: not whitespace (obs-fold), not ':' */
        c->state = CS_TR_NAME;
        return is_tchar(ch);
    case CS_TR_NAME:
        if (ch == ':')
            c->state = CS_TR_VALUE;
        return ch == ':' || is_tchar(ch);
    case CS_TR_VALUE:
        if (ch == '\r')
            c->state = CS_TR_LF;
        return ch == '\r' || is_field_byte(ch);
    default: /* CS_TR_LF */
        c->state = CS_TRAILER;
        return ch == '\n';
    }
}

enum http_chunk_result http_chunked_scan(struct http_chunked *c, const char *p, size_t len,
                                         size_t *used)
{
    size_t i = 0;

    *used = 0;
    if (c->state == CS_DONE)
        return HTTP_CHUNK_DONE;
    if (c->state == CS_ERROR)
        return HTTP_CHUNK_ERROR;
    while (i < len) {
        unsigned char ch = (unsigned char)p[i];

        switch (c->state) {
        case CS_DATA: {
            size_t n = len - i;

            if ((uint64_t)n > c->left)
                n = (size_t)c->left;
            i += n;
            c->left -= n;
            if (c->left == 0)
                c->state = CS_DATA_CR;
            continue;
        }
        case CS_SIZE:
        case CS_SIZE_WS:
        case CS_EXT:
            if (!chunk_size_byte(c, ch))
                return chunk_fail(c, i, used);
            break;
        case CS_SIZE_LF:
            if (ch != '\n')
                return chunk_fail(c, i, used);
            c->state = c->left > 0 ? CS_DATA : CS_TRAILER;
            break;
        case CS_DATA_CR:
            if (ch != '\r')
                return chunk_fail(c, i, used);
            c->state = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (ch != '\n')
                return chunk_fail(c, i, used);
            c->state = CS_SIZE;
            c->line_len = 0;
            c->size_digits = 0;
            break;
        case CS_TRAILER:
        case CS_TR_NAME:
        case CS_TR_VALUE:
        case CS_TR_LF:
            if (!chunk_trailer_byte(c, ch))
                return chunk_fail(c, i, used);
            break;
        case CS_END_LF:
            if (ch != '\n')
                return chunk_fail(c, i, used);
            c->state = CS_DONE;
            *used = i + 1;
            return HTTP_CHUNK_DONE;
        default:
            return chunk_fail(c, i, used);
        }
        i++;
    }
    *used = len;
    return HTTP_CHUNK_MORE;
}
