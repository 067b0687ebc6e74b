/*
 * The L7 decisions of HTTP listeners: what a request looks like to the
 * rules, which rule it matches, where a redirect points, and the values of
 * the forwarded headers. Pure functions over a parsed head; no I/O.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http_rules.h"

/* The path of an absolute-form target that has none ("http://h?q"). */
static const char http_root[] = "/";

/* What an empty query points at, so no caller ever gets a NULL pointer. */
static const char http_empty[] = "";

/* The first 12 bytes of an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A bounded writer: once a write does not fit, over sticks and nothing more is added. */
struct rules_out {
    char *buf;
    size_t cap; /* bytes of buf, room for the NUL included */
    size_t len; /* bytes written, NUL excluded */
    bool over;  /* something did not fit */
};

static struct http_str rules_str(const char *p, size_t len)
{
    struct http_str s = {p, len};

    return s;
}

static void out_init(struct rules_out *o, char *buf, size_t cap)
{
    o->buf = buf;
    o->cap = cap;
    o->len = 0;
    o->over = cap == 0;
}

static void out_add(struct rules_out *o, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (o->over || n >= o->cap - o->len) {
        o->over = true;
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_lit(struct rules_out *o, const char *lit)
{
    out_add(o, lit, strlen(lit));
}

/*
 * Ends the output: its length, or -1 with buf emptied when it did not fit,
 * so a caller that ignores the -1 still never sends half a value.
 */
static int out_end(struct rules_out *o)
{
    if (o->over || o->len > INT_MAX) {
        if (o->cap > 0)
            o->buf[0] = '\0';
        return -1;
    }
    o->buf[o->len] = '\0';
    return (int)o->len;
}

/* True for bytes that end or split a header line, or that a URL never holds raw. */
static bool must_encode(unsigned char c)
{
    return c < 0x21 || c >= 0x7f;
}

/* Appends request bytes, percent-encoding controls, space, DEL and non-ASCII. */
static void out_add_encoded(struct rules_out *o, struct http_str s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if (must_encode(c))
            out_add(o, esc, 3);
        else
            out_add(o, s.p + i, 1);
    }
}

/* The Host value without its ":port"; a "[v6]" literal keeps its brackets. */
static struct http_str host_without_port(struct http_str host)
{
    const char *end;

    if (host.len == 0)
        return host;
    if (host.p[0] == '[') {
        end = memchr(host.p, ']', host.len);
        if (end != NULL)
            host.len = (size_t)(end - host.p) + 1;
        return host;
    }
    end = memchr(host.p, ':', host.len);
    if (end != NULL)
        host.len = (size_t)(end - host.p);
    return host;
}

/*
 * Where the path of an absolute-form target starts ("http://h/p" -> "/p"),
 * or NULL for other forms. *end_auth is set past the authority either way.
 */
static const char *absolute_form_rest(struct http_str t, size_t *end_auth)
{
    size_t i;

    *end_auth = 0;
    if (t.len == 0 || t.p[0] == '/' || t.p[0] == '*')
        return NULL;
    for (i = 0; i + 2 < t.len; i++)
        if (t.p[i] == ':' && t.p[i + 1] == '/' && t.p[i + 2] == '/')
            break;
    if (i + 2 >= t.len)
        return NULL;
    for (i += 3; i < t.len; i++)
        if (t.p[i] == '/' || t.p[i] == '?' || t.p[i] == '#')
            break;
    *end_auth = i;
    return t.p + i;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The path is already what normalisation would make of it: no '%', no "//", no "/." */
static bool path_is_normal(struct http_str p)
{
    for (size_t i = 0; i < p.len; i++) {
        if (p.p[i] == '%')
            return false;
        if (p.p[i] == '/' && i + 1 < p.len && (p.p[i + 1] == '/' || p.p[i + 1] == '.'))
            return false;
    }
    return true;
}

/*
 * Percent-decodes p into out (a malformed escape is kept as it is), then
 * rewrites out in place segment by segment: empty and "." segments dropped,
 * ".." drops the segment before it (never above the root), a trailing slash
 * kept ("/a/b/.." is "/a/"). Returns the length, never more than p.len.
 * p starts with '/' (so does out: a decoded "%2F" is a '/' like any other).
 */
static size_t normalise_path(struct http_str p, char *out)
{
    size_t len = 0, r = 0, w = 0;
    bool trailing = false;

    for (size_t i = 0; i < p.len; i++) {
        int hi, lo;

        if (p.p[i] == '%' && i + 2 < p.len && (hi = hex_digit(p.p[i + 1])) >= 0 &&
            (lo = hex_digit(p.p[i + 2])) >= 0) {
            out[len++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[len++] = p.p[i];
        }
    }
    /* Each turn takes one segment: out[r] is the '/' before it. */
    while (r < len) {
        size_t seg = r + 1, end = seg, n;

        while (end < len && out[end] != '/')
            end++;
        n = end - seg;
        trailing = false;
        if (n == 0 || (n == 1 && out[seg] == '.')) {
            trailing = true;
        } else if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            while (w > 0 && out[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
            trailing = true;
        } else {
            out[w++] = '/';
            memmove(out + w, out + seg, n);
            w += n;
        }
        r = end;
    }
    if (trailing || w == 0)
        out[w++] = '/';
    return w;
}

int http_request_view_init(struct http_request_view *v, const struct http_head *h,
                           const struct sockaddr *client, char *buf, size_t buflen)
{
    int rc = 0;

    struct http_str t = h->target;
    const char *rest, *q;
    size_t end_auth;

    memset(v, 0, sizeof(*v));
    v->method = h->method;
    v->head = h;
    v->client = client;
    v->host = host_without_port(h->host);
    if (v->host.p == NULL) /* no Host (HTTP/1.0): "" rather than NULL for memcpy users */
        v->host = rules_str(http_empty, 0);

    rest = absolute_form_rest(t, &end_auth);
    if (rest != NULL) {
        t = rules_str(rest, t.len - end_auth);
        if (t.len == 0 || t.p[0] != '/') {
            /* No path: "/" it is. uri cannot hold "/?q" (not in the buffer);
             * http_redirect_expand adds the query back for {uri}. */
            v->path = rules_str(http_root, 1);
            v->match_path = v->path;
            v->uri = v->path;
            v->query = rules_str(http_empty, 0);
            if (t.len > 0 && t.p[0] == '?')
                v->query = rules_str(t.p + 1, t.len - 1);
            return 0;
        }
    }
    v->uri = t;
    v->query = rules_str(http_empty, 0);
    q = t.len > 0 ? memchr(t.p, '?', t.len) : NULL;
    if (q == NULL) {
        v->path = t;
    } else {
        v->path = rules_str(t.p, (size_t)(q - t.p));
        v->query = rules_str(q + 1, t.len - v->path.len - 1);
    }
    v->match_path = v->path;
    if (v->path.len > 0 && v->path.p[0] == '/' && !path_is_normal(v->path)) {
        if (v->path.len <= buflen)
            v->match_path = rules_str(buf, normalise_path(v->path, buf));
        else
            rc = -1;
    }
    return rc;
}

/* Host equality ignoring case and one trailing dot (config hosts have none). */
static bool match_host(struct http_str host, const char *want)
{
    if (host.len > 1 && host.p[host.len - 1] == '.')
        host.len--;
    return http_str_eq_nocase(host, want);
}

static bool match_prefix(struct http_str s, const char *prefix)
{
    size_t n = strlen(prefix);

    return n == 0 || (s.len >= n && memcmp(s.p, prefix, n) == 0);
}

static bool match_exact(struct http_str s, const char *want)
{
    size_t n = strlen(want);

    return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

/*
 * An address as 16 bytes of IPv6 and the number of its leading bits that
 * are not address: IPv4 is mapped to ::ffff:a.b.c.d (96 leading bits), so
 * an IPv4 CIDR matches both a plain and an IPv4-mapped client. Returns false
 * for other families.
 */
static bool addr_as_v6(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(out, v4_mapped, 12);
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

/* The client lies in the rule's network. */
static bool match_src(const struct rule_match *m, const struct sockaddr *client)
{
    uint8_t net[16], addr[16];
    unsigned bits = m->src_prefix, full, rest;

    if (!addr_as_v6((const struct sockaddr *)&m->src_net, net) || !addr_as_v6(client, addr))
        return false;
    if (m->src_net.ss_family == AF_INET)
        bits += 96;
    if (bits > 128)
        return false;
    full = bits / 8;
    rest = bits % 8;
    if (memcmp(net, addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((net[full] ^ addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

/* Some header named m->header.name (any case) has exactly the value wanted. */
static bool match_header(const struct header_match *hm, const struct http_head *h)
{
    if (h == NULL)
        return false;
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct http_header *hd = &h->headers[i];

        if (http_str_eq_nocase(hd->name, hm->name) &&
            match_exact(hd->value, hm->value != NULL ? hm->value : ""))
            return true;
    }
    return false;
}

/* Every match key the rule gives holds for v. */
static bool rule_holds(const struct rule_match *m, const struct http_request_view *v)
{
    if (m->host != NULL && !match_host(v->host, m->host))
        return false;
    if (m->path_prefix != NULL && !match_prefix(v->match_path, m->path_prefix))
        return false;
    if (m->method != NULL && !match_exact(v->method, m->method))
        return false;
    if (m->has_src && !match_src(m, v->client))
        return false;
    if (m->header.name != NULL && !match_header(&m->header, v->head))
        return false;
    return true;
}

const struct rule *http_rules_match(const struct http_conf *c, const struct http_request_view *v,
                                    size_t *index)
{
    for (size_t i = 0; i < c->nrules; i++) {
        if (rule_holds(&c->rules[i].match, v)) {
            if (index != NULL)
                *index = i;
            return &c->rules[i];
        }
    }
    return NULL;
}

/* Appends the request's whole target in origin-form, query included. */
static void out_uri(struct rules_out *o, const struct http_request_view *v)
{
    out_add_encoded(o, v->uri);
    if (v->uri.p == http_root && v->query.len > 0) {
        out_add(o, "?", 1);
        out_add_encoded(o, v->query);
    }
}

int http_redirect_expand(const char *tmpl, const struct http_request_view *v, char *out,
                         size_t outlen)
{
    struct rules_out o;
    const char *p = tmpl;

    out_init(&o, out, outlen);
    while (*p != '\0' && !o.over) {
        if (strncmp(p, "{host}", 6) == 0) {
            out_add_encoded(&o, v->host);
            p += 6;
        } else if (strncmp(p, "{uri}", 5) == 0) {
            out_uri(&o, v);
            p += 5;
        } else if (strncmp(p, "{path}", 6) == 0) {
            out_add_encoded(&o, v->path);
            p += 6;
        } else if (strncmp(p, "{query}", 7) == 0) {
            out_add_encoded(&o, v->query);
            p += 7;
        } else {
            out_add(&o, p, 1);
            p++;
        }
    }
    return out_end(&o);
}

/*
 * Writes the client's IP into buf: IPv4 dotted (also for an IPv4-mapped IPv6
 * client, which is how a dual-stack listener sees IPv4), IPv6 without scope.
 * Returns AF_INET, AF_INET6, or 0 for anything else ("unknown" written).
 */
static int client_ip(const struct sockaddr *client, char buf[INET6_ADDRSTRLEN])
{
    uint8_t a[16];

    if (addr_as_v6(client, a)) {
        if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
            /* By hand: glibc's inet_ntop goes through sprintf, twice per request. */
            char *p = buf;

            for (int i = 12; i < 16; i++) {
                if (a[i] >= 100)
                    *p++ = (char)('0' + a[i] / 100);
                if (a[i] >= 10)
                    *p++ = (char)('0' + a[i] / 10 % 10);
                *p++ = (char)('0' + a[i] % 10);
                *p++ = i < 15 ? '.' : '\0';
            }
            return AF_INET;
        }
        if (inet_ntop(AF_INET6, a, buf, INET6_ADDRSTRLEN) != NULL)
            return AF_INET6;
    }
    strcpy(buf, "unknown");
    return 0;
}

/*
 * True when a prior value may be copied into a header: the parser lets no
 * CR, LF or NUL through, but this function's output must never hold them
 * whoever calls it.
 */
static bool prior_usable(struct http_str prior, bool keep_prior)
{
    if (!keep_prior || prior.len == 0)
        return false;
    for (size_t i = 0; i < prior.len; i++) {
        unsigned char c = (unsigned char)prior.p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int http_xff_value(const struct sockaddr *client, struct http_str prior, bool keep_prior, char *out,
                   size_t outlen)
{
    struct rules_out o;
    char ip[INET6_ADDRSTRLEN];

    out_init(&o, out, outlen);
    if (prior_usable(prior, keep_prior)) {
        out_add(&o, prior.p, prior.len);
        out_lit(&o, ", ");
    }
    client_ip(client, ip);
    out_lit(&o, ip);
    return out_end(&o);
}

/* tchar (RFC 9110 §5.6.2): what an unquoted Forwarded value may hold. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/*
 * Appends ";host=" and the host, as a token or a quoted-string (RFC 7239 §4).
 * A host with control bytes cannot be written either way and is left out.
 */
static void out_forwarded_host(struct rules_out *o, struct http_str host)
{
    bool token = true;

    for (size_t i = 0; i < host.len; i++) {
        unsigned char c = (unsigned char)host.p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return;
        token = token && is_tchar(c);
    }
    out_lit(o, ";host=");
    if (token) {
        out_add(o, host.p, host.len);
        return;
    }
    out_add(o, "\"", 1);
    for (size_t i = 0; i < host.len; i++) {
        if (host.p[i] == '"' || host.p[i] == '\\')
            out_add(o, "\\", 1);
        out_add(o, host.p + i, 1);
    }
    out_add(o, "\"", 1);
}

int http_forwarded_value(const struct sockaddr *client, const char *proto, struct http_str host,
                         struct http_str prior, bool keep_prior, char *out, size_t outlen)
{
    struct rules_out o;
    char ip[INET6_ADDRSTRLEN];

    out_init(&o, out, outlen);
    if (prior_usable(prior, keep_prior)) {
        out_add(&o, prior.p, prior.len);
        out_lit(&o, ", ");
    }
    out_lit(&o, "for=");
    if (client_ip(client, ip) == AF_INET6) {
        out_lit(&o, "\"[");
        out_lit(&o, ip);
        out_lit(&o, "]\"");
    } else {
        out_lit(&o, ip);
    }
    if (proto != NULL && is_token(proto)) {
        out_lit(&o, ";proto=");
        out_lit(&o, proto);
    }
    if (host.len > 0)
        out_forwarded_host(&o, host);
    return out_end(&o);
}
