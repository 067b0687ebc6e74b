/*
 * The L7 decisions of offload/bridge/http listeners, as pure functions:
 * which rule a request matches, where a redirect points, and the values of
 * the forwarded headers. No I/O; unit-tested in tests/unit/test_http_rules.c.
 */
#ifndef TLSGATE_HTTP_RULES_H
#define TLSGATE_HTTP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config-t.h"
#include "http_parse.h"

/* Room for a path that has to be normalised before rules compare it (see below). */
#define HTTP_RULES_PATH_MAX 8192

/* What rules look at in one request. Strings point into the request head. */
struct http_request_view {
    struct http_str method;
    struct http_str host; /* Host without port, as sent (compared case-insensitively) */
    struct http_str path; /* target up to '?' */
    /* The path as path_prefix rules see it: percent-decoded, "//" merged,
     * "." and ".." segments removed (RFC 3986, 5.2.4), in the caller's buffer
     * when that changed anything, else path itself. Why: a deny rule on
     * /admin must also hold for /%61dmin, //admin and /x/../admin, which
     * origins commonly serve as /admin. What is forwarded stays as sent. */
    struct http_str match_path;
    struct http_str query; /* after '?' (without it); len 0 when none */
    /* Whole origin-form target, path and "?query"; but only "/" for an
     * absolute-form target without a path ("http://h?q"): query holds "q". */
    struct http_str uri;
    const struct http_head *head;  /* for header matches */
    const struct sockaddr *client; /* real client address (after PROXY) */
};

/*
 * Fills v from a parsed request head: splits the target (absolute-form is
 * reduced to its path), strips a ":port" from Host (and [v6] brackets kept),
 * and normalises the path for matching into buf (buflen bytes) when needed.
 * v points into h, client and buf: it lives no longer than they do.
 * Returns 0, or -1 when the path needs normalising and is longer than
 * buflen (the caller answers 414; v is filled all the same, match_path = path).
 */
int http_request_view_init(struct http_request_view *v, const struct http_head *h,
                           const struct sockaddr *client, char *buf, size_t buflen);

/*
 * The first rule of c whose every given match key holds for v, or NULL.
 * *index is set to its position (for the access log "rule" field).
 * host: equal ignoring case (and one trailing dot); path_prefix: byte prefix
 * of match_path (case-sensitive); method: equal
 * (case-sensitive, methods are); src: client in the CIDR (an IPv4 CIDR also
 * holds for an IPv4-mapped IPv6 client); header: a header of that name (any
 * case) whose value equals exactly. index may be NULL.
 */
const struct rule *http_rules_match(const struct http_conf *c, const struct http_request_view *v,
                                    size_t *index);

/*
 * Expands a redirect template: {host} {uri} {path} {query} are replaced by
 * the request's values ({query} without '?'); other text copied. Returns
 * the length written (out always NUL-terminated), or -1 when out is too
 * small. CR, LF and other control bytes coming from the request are
 * percent-encoded so a client cannot inject header lines.
 */
int http_redirect_expand(const char *tmpl, const struct http_request_view *v, char *out,
                         size_t outlen);

/*
 * Forwarded header values. xff: the X-Forwarded-For value to send: when
 * prior (the client's own X-Forwarded-For, len 0 when none) is kept, "prior,
 * client-ip", else "client-ip". forwarded: RFC 7239 element
 * "for=...;proto=https;host=..." (IPv6 quoted and bracketed, host quoted when
 * it needs to be), appended after prior_fwd with ", " when kept.
 * IPv4-mapped clients are written as IPv4; a client without an IP address is
 * "unknown". A prior value holding control bytes is dropped, never copied.
 * Return length or -1 when out is too small (out is then "").
 */
int http_xff_value(const struct sockaddr *client, struct http_str prior, bool keep_prior, char *out,
                   size_t outlen);
int http_forwarded_value(const struct sockaddr *client, const char *proto, struct http_str host,
                         struct http_str prior, bool keep_prior, char *out, size_t outlen);

#endif
