/* Access log: one line per connection (passthrough) or request (HTTP modes). */
#ifndef TLSGATE_ACCESSLOG_H
#define TLSGATE_ACCESSLOG_H

#include "config-t.h"
#include "session-t.h"

/* Opens the destination named in conf (stderr, stdout, off, or a path to append to). Returns 0 or
 * -1 (logged). */
int accesslog_open(const struct log_conf *conf);

/* Closes a file destination. */
void accesslog_close(void);

/* False when log.access is off: nothing would read what a line shows. */
bool accesslog_enabled(void);

/*
 * Writes the line for a passthrough session that ends (one write(2), JSON or
 * text); bytes_in: all the client sent that the gateway read.
 */
void accesslog_passthrough(const struct session *s, uint64_t bytes_in);

/*
 * Writes the passthrough line of a connection that listener `from` hands to
 * s->l (a `terminate:` route): what its ClientHello showed, the target
 * listener as "terminate", result "terminated", bytes_in the bytes read so
 * far (replayed into the handshake).
 */
void accesslog_terminated(const struct session *s, const struct listener *from, size_t replayed);

/* What the access log says of one HTTP request (strings may be NULL: null / "-"). */
struct access_http {
    unsigned request_no; /* 1 for the first request on the connection */
    const char *sni;     /* TLS listeners: the SNI the client sent */
    const char *tls_version;
    const char *tls_cipher;
    const char *method;
    const char *host;
    const char *path;
    unsigned status;         /* 0: no response (e.g. TLS handshake failed) */
    const char *rule_action; /* "deny" | "redirect" | "forward" of the matched rule */
    int rule;                /* index of the matched rule, -1 none */
    const char *sticky;      /* "hit" | "miss" | "reset", NULL when off */
    const char *backend;
    const char *server;
    unsigned long long bytes_in;  /* from the client */
    unsigned long long bytes_out; /* to the client */
    long duration_ms;             /* since the request head began */
    const char *result;           /* "ok" or why it failed */
};

/* Writes the line for one request of an HTTP-mode session. */
void accesslog_http(const struct session *s, const struct access_http *a);

/*
 * Appends s to buf as a JSON string body (without quotes): quotes and
 * backslashes escaped, control bytes, DEL and bytes that are not well-formed
 * UTF-8 as \u00XX, well-formed UTF-8 characters as they are
 * (src/core/json_escape.c). Returns bytes written, never more than len-1, and
 * never cuts a character; buf stays NUL-terminated.
 */
size_t json_escape(char *buf, size_t len, const char *s);

#endif
