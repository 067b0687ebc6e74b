/*
 * The access log. Each line is built in a stack buffer and written with one
 * write(2), so lines from several workers never interleave (O_APPEND files,
 * pipes under PIPE_BUF).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "addr.h"
#include "clienthello.h"
#include "log.h"
#include "metrics.h"
#include "worker-t.h"

static int access_fd = STDERR_FILENO; /* -1 = off */
static bool access_owned;             /* access_fd is a file we opened */
static enum access_format access_format = ACCESS_JSON;

int accesslog_open(const struct log_conf *conf)
{
    access_format = conf->format;
    access_owned = false;
    if (conf->access == NULL || strcmp(conf->access, "stderr") == 0) {
        access_fd = STDERR_FILENO;
    } else if (strcmp(conf->access, "stdout") == 0) {
        access_fd = STDOUT_FILENO;
    } else if (strcmp(conf->access, "off") == 0) {
        access_fd = -1;
    } else {
        access_fd = open(conf->access, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (access_fd < 0) {
            log_error("cannot open access log '%s'", conf->access);
            return -1;
        }
        access_owned = true;
    }
    return 0;
}

bool accesslog_enabled(void)
{
    return access_fd >= 0;
}

void accesslog_close(void)
{
    if (access_owned && access_fd >= 0)
        close(access_fd);
    access_fd = STDERR_FILENO;
    access_owned = false;
}

/* A growing line in a fixed buffer; writes past the end are dropped, never overflow. */
struct line {
    char buf[4096];
    size_t n;
};

static void line_printf(struct line *ln, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void line_printf(struct line *ln, const char *fmt, ...)
{
    va_list ap;
    int r;

    if (ln->n >= sizeof(ln->buf) - 1)
        return;
    va_start(ap, fmt);
    r = vsnprintf(ln->buf + ln->n, sizeof(ln->buf) - ln->n, fmt, ap);
    va_end(ap);
    if (r > 0)
        ln->n += (size_t)r < sizeof(ln->buf) - ln->n ? (size_t)r : sizeof(ln->buf) - ln->n - 1;
}

/* Appends "key":"escaped" (or "key":null for NULL). */
static void line_json_str(struct line *ln, const char *key, const char *val)
{
    if (val == NULL) {
        line_printf(ln, ",\"%s\":null", key);
        return;
    }
    line_printf(ln, ",\"%s\":\"", key);
    ln->n += json_escape(ln->buf + ln->n, sizeof(ln->buf) - ln->n, val);
    line_printf(ln, "\"");
}

/* Appends "key":["a","b"] from a comma-separated list. */
static void line_json_list(struct line *ln, const char *key, const char *csv)
{
    char item[256];
    const char *p = csv;

    line_printf(ln, ",\"%s\":[", key);
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len >= sizeof(item))
            len = sizeof(item) - 1;
        memcpy(item, p, len);
        item[len] = '\0';
        line_printf(ln, "%s\"", p == csv ? "" : ",");
        ln->n += json_escape(ln->buf + ln->n, sizeof(ln->buf) - ln->n, item);
        line_printf(ln, "\"");
        p = comma ? comma + 1 : NULL;
    }
    line_printf(ln, "]");
}

/* ISO-8601 UTC timestamp with milliseconds. */
static void format_ts(char *buf, size_t len)
{
    struct timeval tv;
    struct tm tm;
    size_t n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/*
 * Milliseconds since the session started, by the same clock that stamped
 * s->started: the worker loop's cached time. (The wall clock read directly
 * can be a few ms behind that cache, which made short durations negative.)
 */
static long session_ms(const struct session *s)
{
    struct timeval now, d;
    long ms;

    event_base_gettimeofday_cached(s->w->base, &now);
    timersub(&now, &s->started, &d);
    ms = (long)(d.tv_sec * 1000 + d.tv_usec / 1000);
    return ms < 0 ? 0 : ms;
}

/* Writes the line for listener l, and keeps a copy for the admin dashboard. */
static void line_write(struct line *ln, const struct listener *l)
{
    if (ln->n >= sizeof(ln->buf) - 1)
        ln->n = sizeof(ln->buf) - 2;
    metrics_recent_add(l, ln->buf, ln->n);
    ln->buf[ln->n++] = '\n';
    (void)!write(access_fd, ln->buf, ln->n);
}

/*
 * What else the ClientHello showed without decrypting: its JA4 fingerprint,
 * the cipher suites (hex, as JA4 writes them) and groups offered, and
 * whether it used ECH, in which case the SNI logged is only the outer one.
 */
static void line_json_hello(struct line *ln, const struct clienthello *ch)
{
    char ciphers[CH_KEEP_CIPHERS * 5 + 1], groups[256];

    ciphers[0] = groups[0] = '\0';
    if (ch) {
        clienthello_ciphers_str(ch, ciphers, sizeof(ciphers));
        clienthello_groups_str(ch, groups, sizeof(groups));
    }
    line_json_str(ln, "ja4", ch && ch->ja4[0] ? ch->ja4 : NULL);
    line_json_list(ln, "ciphers", ciphers);
    if (ch && ch->nciphers > CH_KEEP_CIPHERS)
        line_printf(ln, ",\"ciphers_offered\":%u", ch->nciphers);
    line_json_list(ln, "groups", groups);
    line_printf(ln, ",\"ech\":%s", ch && ch->has_ech ? "true,\"sni_outer_only\":true" : "false");
}

/* "-" for a NULL or empty string in text lines. */
static const char *dash(const char *v)
{
    return v == NULL || *v == '\0' ? "-" : v;
}

/*
 * A field a client chose (SNI, ALPN, method, target, Host) for a text line,
 * in buf: "-" when NULL or empty, else escaped by log_escape, spaces and
 * quotes too, so that it can neither split the line nor shift the fields
 * after it. Truncated to fit buf.
 */
static const char *text_field(char *buf, size_t size, const char *v)
{
    size_t n = 0;

    if (v == NULL || *v == '\0')
        return "-";
    log_escape(buf, size, &n, v, " \"");
    buf[n] = '\0';
    return buf;
}

/*
 * The passthrough line of s as listener l saw it: relayed to a backend, or,
 * when terminate is set, handed to that offload/bridge listener (result
 * "terminated"; its requests get their own lines there). in and out: bytes
 * from the client and from the server.
 */
static void passthrough_line(const struct session *s, const struct listener *l,
                             const char *terminate, const char *result, uint64_t in, uint64_t out)
{
    const struct clienthello *ch = s->hello_parsed ? s->hello : NULL;
    char ts[40], client[ADDR_STRLEN], versions[256];
    struct line ln; /* only n is set: zeroing 4 KiB per request would be wasted */
    const char *sni = ch && ch->has_sni ? ch->sni : NULL;
    const char *backend = s->backend ? s->backend->name : NULL;
    const char *server = s->srv ? s->srv->name : NULL;

    if (access_fd < 0)
        return;
    ln.n = 0;
    format_ts(ts, sizeof(ts));
    addr_format((const struct sockaddr *)&s->client_addr, client, sizeof(client));
    versions[0] = '\0';
    if (ch)
        clienthello_versions_str(ch, versions, sizeof(versions));
    if (access_format == ACCESS_TEXT) {
        char sni_text[1024], alpn_text[1024];
        line_printf(&ln,
                    "%s %s passthrough %s sni=%s alpn=%s versions=%s ja4=%s ciphers=%u ech=%s -> ",
                    ts, l->name, client, text_field(sni_text, sizeof(sni_text), sni),
                    text_field(alpn_text, sizeof(alpn_text), ch && ch->nalpn ? ch->alpn : NULL),
                    versions[0] ? versions : "-", ch && ch->ja4[0] ? ch->ja4 : "-",
                    ch ? ch->nciphers : 0, ch && ch->has_ech ? "yes(sni-is-outer)" : "no");
        if (terminate)
            line_printf(&ln, "terminate:%s", terminate);
        else
            line_printf(&ln, "%s/%s", backend ? backend : "-", server ? server : "-");
        line_printf(&ln, " in=%llu out=%llu ms=%ld result=%s", (unsigned long long)in,
                    (unsigned long long)out, session_ms(s), result);
        line_write(&ln, l);
        return;
    }
    line_printf(&ln, "{\"ts\":\"%s\",\"id\":\"%llx\"", ts, (unsigned long long)s->id);
    line_json_str(&ln, "listener", l->name);
    line_printf(&ln, ",\"mode\":\"passthrough\"");
    line_json_str(&ln, "client", client);
    line_json_str(&ln, "sni", sni);
    line_json_list(&ln, "alpn", ch ? ch->alpn : "");
    line_json_list(&ln, "tls_versions", versions);
    line_json_hello(&ln, ch);
    if (terminate)
        line_json_str(&ln, "terminate", terminate);
    line_json_str(&ln, "backend", backend);
    line_json_str(&ln, "server", server);
    line_printf(&ln, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%ld",
                (unsigned long long)in, (unsigned long long)out, session_ms(s));
    line_json_str(&ln, "result", result);
    line_printf(&ln, "}");
    line_write(&ln, l);
}

void accesslog_passthrough(const struct session *s, uint64_t bytes_in)
{
    passthrough_line(s, s->l, NULL, s->result, bytes_in, s->server.bytes_read);
}

void accesslog_terminated(const struct session *s, const struct listener *from, size_t replayed)
{
    passthrough_line(s, from, s->l->name, "terminated", replayed, 0);
}

/* Appends "key":N, or "key":null when n < 0. */
static void line_json_int(struct line *ln, const char *key, long long n)
{
    if (n < 0)
        line_printf(ln, ",\"%s\":null", key);
    else
        line_printf(ln, ",\"%s\":%lld", key, n);
}

void accesslog_http(const struct session *s, const struct access_http *a)
{
    char ts[40], client[ADDR_STRLEN];
    struct line ln; /* only n is set: zeroing 4 KiB per request would be wasted */
    const char *mode;

    if (access_fd < 0)
        return;
    ln.n = 0;
    format_ts(ts, sizeof(ts));
    addr_format((const struct sockaddr *)&s->client_addr, client, sizeof(client));
    mode = s->l->mode == MODE_OFFLOAD ? "offload" : s->l->mode == MODE_BRIDGE ? "bridge" : "http";
    if (access_format == ACCESS_TEXT) {
        char sni[1024], method[64], path[2048], host[1024];
        line_printf(&ln,
                    "%s %s %s %s sni=%s \"%s %s\" host=%s %u rule=%d sticky=%s -> %s/%s "
                    "in=%llu out=%llu ms=%ld result=%s",
                    ts, s->l->name, mode, client, text_field(sni, sizeof(sni), a->sni),
                    text_field(method, sizeof(method), a->method),
                    text_field(path, sizeof(path), a->path),
                    text_field(host, sizeof(host), a->host), a->status, a->rule, dash(a->sticky),
                    dash(a->backend), dash(a->server), a->bytes_in, a->bytes_out, a->duration_ms,
                    dash(a->result));
        line_write(&ln, s->l);
        return;
    }
    line_printf(&ln, "{\"ts\":\"%s\",\"id\":\"%llx\"", ts, (unsigned long long)s->id);
    line_json_str(&ln, "listener", s->l->name);
    line_json_str(&ln, "mode", mode);
    line_json_str(&ln, "client", client);
    line_json_str(&ln, "sni", a->sni && *a->sni ? a->sni : NULL);
    line_json_str(&ln, "tls_version", a->tls_version && *a->tls_version ? a->tls_version : NULL);
    line_json_str(&ln, "tls_cipher", a->tls_cipher && *a->tls_cipher ? a->tls_cipher : NULL);
    line_printf(&ln, ",\"request\":%u", a->request_no);
    line_json_str(&ln, "method", a->method);
    line_json_str(&ln, "host", a->host);
    line_json_str(&ln, "path", a->path);
    line_json_int(&ln, "status", a->status ? (long long)a->status : -1);
    line_json_int(&ln, "rule", a->rule);
    line_json_str(&ln, "rule_action", a->rule_action);
    line_json_str(&ln, "sticky", a->sticky);
    line_json_str(&ln, "backend", a->backend);
    line_json_str(&ln, "server", a->server);
    line_printf(&ln, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%ld", a->bytes_in,
                a->bytes_out, a->duration_ms);
    line_json_str(&ln, "result", a->result);
    line_printf(&ln, "}");
    line_write(&ln, s->l);
}
