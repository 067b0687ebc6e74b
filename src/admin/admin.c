/*
 * The admin endpoint: libevent's evhttp on the main thread's loop, serving
 * /metrics (Prometheus text), /stats (JSON), /healthz and the dashboard.
 *
 * It reads the live counters of the snapshot it started with (relaxed
 * atomic loads; the workers add to them concurrently) and the dashboard's
 * store of recent access-log lines in metrics.c. Every answer is built
 * whole in an evbuffer and sent with Content-Length; nothing is cached.
 *
 * /metrics families (labels in braces):
 *   tlsgate_build_info{version,openssl,libevent}             gauge, always 1
 *   tlsgate_process_start_time_seconds                        gauge
 *   tlsgate_process_cpu_seconds_total                         counter (getrusage)
 *   tlsgate_workers                                           gauge
 *   tlsgate_worker_cpu_seconds_total                          counter (worker threads)
 *   tlsgate_unattributed_cpu_seconds_total                    counter (see cpu.c)
 *   tlsgate_listener_cpu_seconds_total{listener,mode}         counter
 *   tlsgate_connections_total{listener,mode}                  counter
 *   tlsgate_connections_refused_total{listener,mode}          counter, closed at accept (limits)
 *   tlsgate_connections_active{listener,mode}                 gauge
 *   tlsgate_bytes_in_total{listener,mode}                     counter, from clients
 *   tlsgate_bytes_out_total{listener,mode}                    counter, to clients
 *   tlsgate_tls_handshakes_total{listener,mode,result}        counter, offload/bridge
 *   tlsgate_tls_handshake_duration_seconds{listener,mode}     histogram, offload/bridge
 *   tlsgate_http_requests_total{listener,mode,class}          counter, HTTP modes
 *   tlsgate_backend_up{backend}                               gauge, 1 = a server is up
 *   tlsgate_backend_servers_up{backend}                       gauge
 *   tlsgate_server_up{backend,server}                         gauge
 *   tlsgate_server_active_connections{backend,server}         gauge
 *   tlsgate_server_picks_total{backend,server}                counter
 *   tlsgate_server_check_failures_total{backend,server}       counter, active checks
 *   tlsgate_server_state_changes_total{backend,server,to}     counter, to = down|up
 * Families that only make sense for some modes are only given for those:
 * a passthrough listener has no handshakes and no requests the gateway can
 * see, and saying 0 would be a lie.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "config.h"
#include "cpu.h"
#include "log.h"
#include "metrics.h"
#include "server_queue.h"

#define ADMIN_BACKLOG     64
#define ADMIN_TIMEOUT_S   10   /* a client that sends nothing for this long is dropped */
#define ADMIN_MAX_HEADERS 8192 /* request head limit */
#define ADMIN_MAX_BODY    1024 /* we only answer GET and HEAD */
#define LOAD(x)           atomic_load_explicit(&(x), memory_order_relaxed)
#define ADD_LIT(b, s)     evbuffer_add((b), (s), sizeof(s) - 1) /* s: a string literal */

/* The running endpoint; main thread only. */
struct admin {
    struct evhttp *http;     /* owns the listening socket and the connections */
    struct config *conf;     /* snapshot whose counters we show (one reference) */
    struct timespec started; /* CLOCK_MONOTONIC at start, for uptime */
    time_t started_wall;     /* the same, as Unix time */
};

static struct admin *admin_self;

static const char *const mode_names[] = {"passthrough", "offload", "bridge", "http"};
static const char *const balance_names[] = {"roundrobin", "leastconn", "source", "random"};
static const char *const pp_names[] = {"off", "v1", "v2", "any"};
static const char *const health_names[] = {"none", "tcp", "tls", "http"};
static const char *const class_names[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

/* True when the gateway itself ends TLS for this listener. */
static bool terminates_tls(const struct listener *l)
{
    return l->mode == MODE_OFFLOAD || l->mode == MODE_BRIDGE;
}

/* True when the gateway sees HTTP requests on this listener. */
static bool speaks_http(const struct listener *l)
{
    return l->mode != MODE_PASSTHROUGH;
}

static bool any_listener(const struct config *c, bool (*pred)(const struct listener *))
{
    for (size_t i = 0; i < c->nlisteners; i++)
        if (pred(&c->listeners[i]))
            return true;
    return false;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static double process_cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Length of the well-formed UTF-8 sequence at p (n bytes left), or 0 if there is none. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/*
 * Appends s[0..n) as a JSON string. Besides what JSON requires, < > & are
 * escaped so the text can sit inside the dashboard's <script>, and bytes
 * that are not UTF-8 become U+FFFD.
 */
static void json_str_n(struct evbuffer *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, start = 0;

    ADD_LIT(b, "\"");
    while (i < n) {
        unsigned char c = p[i];
        size_t len = utf8_len(p + i, n - i);

        if (len > 1 || (len == 1 && c >= 0x20 && c != 0x7f && !strchr("\"\\<>&", c))) {
            i += len;
            continue;
        }
        evbuffer_add(b, s + start, i - start);
        if (c == '"' || c == '\\')
            evbuffer_add_printf(b, "\\%c", c);
        else if (len == 0)
            ADD_LIT(b, "\\ufffd");
        else
            evbuffer_add_printf(b, "\\u%04x", c);
        start = ++i;
    }
    evbuffer_add(b, s + start, n - start);
    ADD_LIT(b, "\"");
}

/* Appends s as a JSON string, or null. */
static void json_str(struct evbuffer *b, const char *s)
{
    if (s == NULL)
        ADD_LIT(b, "null");
    else
        json_str_n(b, s, strlen(s));
}

/* Appends ,"key":"value" (or "key":... without the comma when first). */
static void json_kv_str(struct evbuffer *b, const char *key, const char *val, bool first)
{
    evbuffer_add_printf(b, "%s\"%s\":", first ? "" : ",", key);
    json_str(b, val);
}

/* ---- Prometheus text ---- */

/* A Prometheus label value: \ " and newline escaped; bytes that are not UTF-8 become '?'. */
static void prom_value(struct evbuffer *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;

    while (i < n) {
        size_t len = utf8_len(p + i, n - i);

        if (len == 0) {
            ADD_LIT(b, "?");
            len = 1;
        } else if (p[i] == '\\' || p[i] == '"') {
            evbuffer_add_printf(b, "\\%c", p[i]);
        } else if (p[i] == '\n') {
            ADD_LIT(b, "\\n");
        } else {
            evbuffer_add(b, p + i, len);
        }
        i += len;
    }
}

static void prom_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends listener="..",mode=".." (no braces). */
static void prom_listener(struct evbuffer *b, const struct listener *l)
{
    ADD_LIT(b, "listener=\"");
    prom_value(b, l->name);
    evbuffer_add_printf(b, "\",mode=\"%s\"", mode_names[l->mode]);
}

/* Appends backend=".."[,server=".."] (no braces). */
static void prom_server(struct evbuffer *b, const struct backend *be, const struct server *srv)
{
    ADD_LIT(b, "backend=\"");
    prom_value(b, be->name);
    ADD_LIT(b, "\"");
    if (srv != NULL) {
        ADD_LIT(b, ",server=\"");
        prom_value(b, srv->name);
        ADD_LIT(b, "\"");
    }
}

/* The counters picked by field, one sample per listener selected by pred (NULL = all). */
enum listener_field { LF_CONNS, LF_REFUSED, LF_ACTIVE, LF_BYTES_IN, LF_BYTES_OUT, LF_CPU };

static void prom_listeners(struct evbuffer *b, const struct config *c, const char *name,
                           enum listener_field f)
{
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener *l = &c->listeners[i];

        evbuffer_add_printf(b, "%s{", name);
        prom_listener(b, l);
        switch (f) {
        case LF_CONNS:
            evbuffer_add_printf(b, "} %llu\n", LOAD(l->stats.conns_total));
            break;
        case LF_REFUSED:
            evbuffer_add_printf(b, "} %llu\n", LOAD(l->stats.conns_refused));
            break;
        case LF_ACTIVE:
            evbuffer_add_printf(b, "} %u\n", LOAD(l->active));
            break;
        case LF_BYTES_IN:
            evbuffer_add_printf(b, "} %llu\n", LOAD(l->stats.bytes_in));
            break;
        case LF_BYTES_OUT:
            evbuffer_add_printf(b, "} %llu\n", LOAD(l->stats.bytes_out));
            break;
        case LF_CPU:
            evbuffer_add_printf(b, "} %.9f\n", (double)LOAD(l->stats.cpu_nsec) / 1e9);
            break;
        }
    }
}

/* TLS handshake counts and latency histogram of the listeners that end TLS. */
static void prom_handshakes(struct evbuffer *b, const struct config *c)
{
    if (!any_listener(c, terminates_tls))
        return;
    prom_family(b, "tlsgate_tls_handshakes_total", "counter",
                "TLS handshakes the gateway ran with clients (offload and bridge), by result.");
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener *l = &c->listeners[i];

        if (!terminates_tls(l))
            continue;
        ADD_LIT(b, "tlsgate_tls_handshakes_total{");
        prom_listener(b, l);
        evbuffer_add_printf(b, ",result=\"ok\"} %llu\n", LOAD(l->stats.handshakes_ok));
        ADD_LIT(b, "tlsgate_tls_handshakes_total{");
        prom_listener(b, l);
        evbuffer_add_printf(b, ",result=\"failed\"} %llu\n", LOAD(l->stats.handshakes_failed));
    }
    prom_family(b, "tlsgate_tls_handshake_duration_seconds", "histogram",
                "Time from the first ClientHello byte to the end of the gateway's TLS handshake.");
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener *l = &c->listeners[i];
        unsigned long long cum = 0;

        if (!terminates_tls(l))
            continue;
        for (size_t k = 0; k < METRICS_HS_BUCKETS; k++) {
            cum += LOAD(l->stats.handshake_buckets[k]);
            ADD_LIT(b, "tlsgate_tls_handshake_duration_seconds_bucket{");
            prom_listener(b, l);
            if (k < METRICS_HS_BUCKETS - 1)
                evbuffer_add_printf(b, ",le=\"%g\"} %llu\n",
                                    (double)metrics_hs_bounds_usec[k] / 1e6, cum);
            else
                evbuffer_add_printf(b, ",le=\"+Inf\"} %llu\n", cum);
        }
        ADD_LIT(b, "tlsgate_tls_handshake_duration_seconds_sum{");
        prom_listener(b, l);
        evbuffer_add_printf(b, "} %.6f\n", (double)LOAD(l->stats.handshake_usec_sum) / 1e6);
        ADD_LIT(b, "tlsgate_tls_handshake_duration_seconds_count{");
        prom_listener(b, l);
        evbuffer_add_printf(b, "} %llu\n", cum);
    }
}

/* HTTP responses by status class, for listeners where the gateway sees HTTP. */
static void prom_requests(struct evbuffer *b, const struct config *c)
{
    if (!any_listener(c, speaks_http))
        return;
    prom_family(b, "tlsgate_http_requests_total", "counter",
                "HTTP requests answered, by status class (none = no response, e.g. cut short).");
    for (size_t i = 0; i < c->nlisteners; i++) {
        struct listener *l = &c->listeners[i];

        if (!speaks_http(l))
            continue;
        for (size_t k = 1; k <= 6; k++) {
            size_t cls = k % 6; /* 1xx..5xx, then none */
            ADD_LIT(b, "tlsgate_http_requests_total{");
            prom_listener(b, l);
            evbuffer_add_printf(b, ",class=\"%s\"} %llu\n", class_names[cls],
                                LOAD(l->stats.requests[cls]));
        }
    }
}

/* Servers up in backend be. */
static size_t backend_up_count(const struct backend *be)
{
    size_t up = 0;

    for (size_t k = 0; k < be->nservers; k++)
        up += !LOAD(be->servers[k].down);
    return up;
}

/*
 * Reads a 64-bit counter. Not inlined on purpose: inlined into the loops
 * below, GCC 12 -O2 reports a bogus -Wstringop-overflow on the atomic load.
 */
__attribute__((noinline)) static unsigned long long counter_u64(const atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Health counters of every server (src/health/). */
static void prom_server_health(struct evbuffer *b, const struct config *c)
{
    prom_family(b, "tlsgate_server_check_failures_total", "counter",
                "Active health checks of the server that failed.");
    for (size_t i = 0; i < c->nbackends; i++)
        for (size_t k = 0; k < c->backends[i].nservers; k++) {
            ADD_LIT(b, "tlsgate_server_check_failures_total{");
            prom_server(b, &c->backends[i], &c->backends[i].servers[k]);
            evbuffer_add_printf(b, "} %llu\n",
                                counter_u64(&c->backends[i].servers[k].health.check_failures));
        }
    prom_family(b, "tlsgate_server_state_changes_total", "counter",
                "Times the server was marked down (checks or passive ejection) or up again.");
    for (size_t i = 0; i < c->nbackends; i++)
        for (size_t k = 0; k < c->backends[i].nservers; k++) {
            const struct server *srv = &c->backends[i].servers[k];

            ADD_LIT(b, "tlsgate_server_state_changes_total{");
            prom_server(b, &c->backends[i], srv);
            evbuffer_add_printf(b, ",to=\"down\"} %llu\n", counter_u64(&srv->health.went_down));
            ADD_LIT(b, "tlsgate_server_state_changes_total{");
            prom_server(b, &c->backends[i], srv);
            evbuffer_add_printf(b, ",to=\"up\"} %llu\n", counter_u64(&srv->health.went_up));
        }
}

static void prom_backends(struct evbuffer *b, const struct config *c)
{
    if (c->nbackends == 0)
        return;
    prom_family(b, "tlsgate_backend_up", "gauge",
                "1 when at least one server of the backend is up, else 0.");
    for (size_t i = 0; i < c->nbackends; i++) {
        ADD_LIT(b, "tlsgate_backend_up{");
        prom_server(b, &c->backends[i], NULL);
        evbuffer_add_printf(b, "} %d\n", backend_up_count(&c->backends[i]) > 0);
    }
    prom_family(b, "tlsgate_backend_servers_up", "gauge", "Servers of the backend that are up.");
    for (size_t i = 0; i < c->nbackends; i++) {
        ADD_LIT(b, "tlsgate_backend_servers_up{");
        prom_server(b, &c->backends[i], NULL);
        evbuffer_add_printf(b, "} %zu\n", backend_up_count(&c->backends[i]));
    }
    prom_family(b, "tlsgate_server_up", "gauge",
                "1 when the server is up (health checks), else 0.");
    for (size_t i = 0; i < c->nbackends; i++)
        for (size_t k = 0; k < c->backends[i].nservers; k++) {
            ADD_LIT(b, "tlsgate_server_up{");
            prom_server(b, &c->backends[i], &c->backends[i].servers[k]);
            evbuffer_add_printf(b, "} %d\n", !LOAD(c->backends[i].servers[k].down));
        }
    prom_family(b, "tlsgate_server_active_connections", "gauge",
                "Connections open from the gateway to the server.");
    for (size_t i = 0; i < c->nbackends; i++)
        for (size_t k = 0; k < c->backends[i].nservers; k++) {
            ADD_LIT(b, "tlsgate_server_active_connections{");
            prom_server(b, &c->backends[i], &c->backends[i].servers[k]);
            evbuffer_add_printf(b, "} %u\n", LOAD(c->backends[i].servers[k].active));
        }
    prom_family(b, "tlsgate_server_picks_total", "counter",
                "Connections (passthrough) or requests (HTTP modes) sent to the server.");
    for (size_t i = 0; i < c->nbackends; i++)
        for (size_t k = 0; k < c->backends[i].nservers; k++) {
            ADD_LIT(b, "tlsgate_server_picks_total{");
            prom_server(b, &c->backends[i], &c->backends[i].servers[k]);
            evbuffer_add_printf(b, "} %llu\n", LOAD(c->backends[i].servers[k].stats.picks));
        }
    prom_server_health(b, c);
}

/*
 * CPU figures, read in this order so that they agree however the workers'
 * samples interleave (a sample adds to the worker total before it splits):
 * listeners + unattributed <= workers <= process.
 */
static void prom_cpu(struct evbuffer *b, const struct config *c)
{
    if (c->nlisteners > 0) {
        prom_family(b, "tlsgate_listener_cpu_seconds_total", "counter",
                    "Worker CPU time attributed to the listener by the work it did.");
        prom_listeners(b, c, "tlsgate_listener_cpu_seconds_total", LF_CPU);
    }
    prom_family(b, "tlsgate_unattributed_cpu_seconds_total", "counter",
                "Worker CPU time no listener's work explains (idle loop, timers).");
    evbuffer_add_printf(b, "tlsgate_unattributed_cpu_seconds_total %.9f\n",
                        (double)cpu_unattributed_nsec() / 1e9);
    prom_family(b, "tlsgate_worker_cpu_seconds_total", "counter",
                "CPU time of the worker threads, sampled every 100 ms.");
    evbuffer_add_printf(b, "tlsgate_worker_cpu_seconds_total %.9f\n",
                        (double)cpu_workers_nsec() / 1e9);
    prom_family(b, "tlsgate_process_cpu_seconds_total", "counter",
                "User and system CPU time of the whole gateway process (getrusage).");
    evbuffer_add_printf(b, "tlsgate_process_cpu_seconds_total %.6f\n", process_cpu_seconds());
}

/* The whole /metrics answer. */
static void admin_metrics(struct evbuffer *b, const struct admin *a)
{
    const struct config *c = a->conf;

    prom_family(b, "tlsgate_build_info", "gauge",
                "tlsgate version and the library versions it runs with (value always 1).");
    evbuffer_add_printf(b, "tlsgate_build_info{version=\"%s\",openssl=\"", TLSGATE_VERSION);
    prom_value(b, OpenSSL_version(OPENSSL_VERSION_STRING));
    ADD_LIT(b, "\",libevent=\"");
    prom_value(b, event_get_version());
    ADD_LIT(b, "\"} 1\n");
    prom_family(b, "tlsgate_process_start_time_seconds", "gauge",
                "Start time of the gateway, Unix seconds.");
    evbuffer_add_printf(b, "tlsgate_process_start_time_seconds %lld\n", (long long)a->started_wall);
    prom_family(b, "tlsgate_workers", "gauge", "Worker threads.");
    evbuffer_add_printf(b, "tlsgate_workers %u\n", c->workers);
    if (c->nlisteners > 0) {
        prom_family(b, "tlsgate_connections_total", "counter", "Client connections accepted.");
        prom_listeners(b, c, "tlsgate_connections_total", LF_CONNS);
        prom_family(b, "tlsgate_connections_refused_total", "counter",
                    "Client connections closed at accept: a max_connections limit was reached.");
        prom_listeners(b, c, "tlsgate_connections_refused_total", LF_REFUSED);
        prom_family(b, "tlsgate_connections_active", "gauge", "Client connections open now.");
        prom_listeners(b, c, "tlsgate_connections_active", LF_ACTIVE);
        prom_family(b, "tlsgate_bytes_in_total", "counter",
                    "Bytes received from clients (counted when a connection or request ends).");
        prom_listeners(b, c, "tlsgate_bytes_in_total", LF_BYTES_IN);
        prom_family(b, "tlsgate_bytes_out_total", "counter",
                    "Bytes sent to clients (counted when a connection or request ends).");
        prom_listeners(b, c, "tlsgate_bytes_out_total", LF_BYTES_OUT);
    }
    prom_handshakes(b, c);
    prom_requests(b, c);
    prom_backends(b, c);
    prom_family(b, "tlsgate_queued_sessions", "gauge",
                "Connections and requests waiting for a server below its max_connections.");
    evbuffer_add_printf(b, "tlsgate_queued_sessions %u\n", server_queue_total());
    prom_cpu(b, c);
}

/* ---- /stats JSON ---- */

/* The k-th backend a listener can send to (routes, default, rules), or NULL. */
static const struct backend *listener_backend_at(const struct listener *l, size_t k)
{
    if (k < l->nsni_routes)
        return l->sni_routes[k].backend;
    k -= l->nsni_routes;
    if (k == 0)
        return l->default_backend;
    k--;
    if (k < l->http.nrules)
        return l->http.rules[k].action == RULE_FORWARD ? l->http.rules[k].backend : NULL;
    return k == l->http.nrules ? l->http.default_backend : NULL;
}

/* "backends":[names], each backend the listener may use, once, in config order of mention. */
static void stats_listener_backends(struct evbuffer *b, const struct listener *l)
{
    size_t n = l->nsni_routes + l->http.nrules + 2;
    bool first = true;

    ADD_LIT(b, ",\"backends\":[");
    for (size_t k = 0; k < n; k++) {
        const struct backend *be = listener_backend_at(l, k);
        bool seen = be == NULL;

        for (size_t j = 0; j < k && !seen; j++)
            seen = listener_backend_at(l, j) == be;
        if (seen)
            continue;
        if (!first)
            ADD_LIT(b, ",");
        json_str(b, be->name);
        first = false;
    }
    ADD_LIT(b, "]");
}

struct recent_ctx {
    struct evbuffer *b;
    bool first;
};

static void stats_recent_line(const char *line, size_t len, void *arg)
{
    struct recent_ctx *rc = arg;

    if (!rc->first)
        ADD_LIT(rc->b, ",");
    json_str_n(rc->b, line, len);
    rc->first = false;
}

static void stats_listener(struct evbuffer *b, const struct listener *l)
{
    const struct listener_stats *st = &l->stats;
    struct recent_ctx rc = {.b = b, .first = true};
    unsigned long long hs_count = 0;

    json_kv_str(b, "name", l->name, true);
    json_kv_str(b, "mode", mode_names[l->mode], false);
    json_kv_str(b, "bind", l->bind.text, false);
    json_kv_str(b, "proxy_protocol", pp_names[l->proxy_protocol], false);
    evbuffer_add_printf(b,
                        ",\"max_connections\":%u,\"connections_total\":%llu,"
                        "\"connections_active\":%u,\"bytes_in\":%llu,\"bytes_out\":%llu,"
                        "\"cpu_seconds\":%.9f",
                        l->max_connections, LOAD(st->conns_total), LOAD(l->active),
                        LOAD(st->bytes_in), LOAD(st->bytes_out), (double)LOAD(st->cpu_nsec) / 1e9);
    if (terminates_tls(l)) {
        ADD_LIT(b, ",\"handshakes\":{\"buckets\":[");
        for (size_t k = 0; k < METRICS_HS_BUCKETS; k++) {
            hs_count += LOAD(st->handshake_buckets[k]);
            if (k < METRICS_HS_BUCKETS - 1)
                evbuffer_add_printf(b, "%s{\"le_ms\":%g,\"count\":%llu}", k ? "," : "",
                                    (double)metrics_hs_bounds_usec[k] / 1e3, hs_count);
            else
                evbuffer_add_printf(b, ",{\"le_ms\":null,\"count\":%llu}", hs_count);
        }
        evbuffer_add_printf(b, "],\"ok\":%llu,\"failed\":%llu,\"sum_ms\":%.3f",
                            LOAD(st->handshakes_ok), LOAD(st->handshakes_failed),
                            (double)LOAD(st->handshake_usec_sum) / 1e3);
        json_kv_str(b, "min_version", l->tls.min_version, false);
        evbuffer_add_printf(b, ",\"client_certificates\":%s,\"session_tickets\":%s}",
                            l->tls.client_ca && *l->tls.client_ca ? "true" : "false",
                            l->tls.session_tickets ? "true" : "false");
    }
    if (speaks_http(l)) {
        ADD_LIT(b, ",\"requests\":{");
        for (size_t k = 1; k <= 6; k++)
            evbuffer_add_printf(b, "%s\"%s\":%llu", k > 1 ? "," : "", class_names[k % 6],
                                LOAD(st->requests[k % 6]));
        evbuffer_add_printf(b,
                            "},\"http\":{\"rules\":%zu,\"sticky\":%s,\"forwarded_headers\":%s,"
                            "\"hsts\":%s}",
                            l->http.nrules, l->http.sticky.enabled ? "true" : "false",
                            l->http.forwarded_headers ? "true" : "false",
                            l->http.hsts && *l->http.hsts ? "true" : "false");
    } else {
        ADD_LIT(b, ",\"sni_routes\":[");
        for (size_t k = 0; k < l->nsni_routes; k++) {
            const struct sni_route *r = &l->sni_routes[k];

            evbuffer_add(b, k ? ",{" : "{", k ? 2 : 1);
            json_kv_str(b, "sni", r->pattern, true);
            json_kv_str(b, "backend", r->backend ? r->backend->name : NULL, false);
            json_kv_str(b, "terminate", r->terminate ? r->terminate->name : NULL, false);
            ADD_LIT(b, "}");
        }
        ADD_LIT(b, "]");
        json_kv_str(b, "default_backend", l->default_backend ? l->default_backend->name : NULL,
                    false);
        json_kv_str(b, "default_terminate",
                    l->default_terminate ? l->default_terminate->name : NULL, false);
    }
    stats_listener_backends(b, l);
    ADD_LIT(b, ",\"recent\":[");
    metrics_recent_foreach(l->name, stats_recent_line, &rc);
    ADD_LIT(b, "]");
}

/*
 * ,"health":{...}} closing a server's object: the check kind, the last
 * check's result and what it saw, and the transition counters.
 */
static void stats_server_health(struct evbuffer *b, const struct server *srv)
{
    static const char *const results[] = {"none", "ok", "failed"};
    const struct server_health *h = &srv->health;

    ADD_LIT(b, ",\"health\":{");
    json_kv_str(b, "check", health_names[srv->backend->health.check], true);
    json_kv_str(b, "last", results[h->last], false);
    json_kv_str(b, "reason", h->last_reason, false);
    evbuffer_add_printf(b,
                        ",\"check_failures\":%llu,\"went_down\":%llu,\"went_up\":%llu,"
                        "\"connect_fails\":%u,\"status_fails\":%u,\"ejected\":%s}}",
                        LOAD(h->check_failures), LOAD(h->went_down), LOAD(h->went_up),
                        LOAD(h->connect_fails), LOAD(h->status_fails),
                        LOAD(h->ejected_ms) ? "true" : "false");
}

static void stats_backend(struct evbuffer *b, const struct backend *be)
{
    json_kv_str(b, "name", be->name, true);
    json_kv_str(b, "balance", balance_names[be->balance], false);
    json_kv_str(b, "proxy_protocol", pp_names[be->proxy_protocol], false);
    json_kv_str(b, "health", health_names[be->health.check], false);
    evbuffer_add_printf(b, ",\"tls\":%s,\"servers_up\":%zu,\"servers\":[",
                        be->tls.enabled ? "true" : "false", backend_up_count(be));
    for (size_t k = 0; k < be->nservers; k++) {
        const struct server *srv = &be->servers[k];

        evbuffer_add(b, k ? ",{" : "{", k ? 2 : 1);
        json_kv_str(b, "name", srv->name, true);
        json_kv_str(b, "address", srv->addr.text, false);
        evbuffer_add_printf(b,
                            ",\"up\":%s,\"active\":%u,\"picks\":%llu,\"weight\":%u,"
                            "\"max_connections\":%u",
                            LOAD(srv->down) ? "false" : "true", LOAD(srv->active),
                            LOAD(srv->stats.picks), srv->weight, srv->max_connections);
        stats_server_health(b, srv);
    }
    ADD_LIT(b, "]");
}

/* The whole /stats answer. */
static void admin_stats(struct evbuffer *b, const struct admin *a)
{
    const struct config *c = a->conf;

    ADD_LIT(b, "{");
    json_kv_str(b, "version", TLSGATE_VERSION, true);
    json_kv_str(b, "openssl", OpenSSL_version(OPENSSL_VERSION_STRING), false);
    json_kv_str(b, "libevent", event_get_version(), false);
    evbuffer_add_printf(b, ",\"uptime_seconds\":%.3f,\"workers\":%u,\"max_connections\":%u",
                        seconds_since(&a->started), c->workers, c->max_connections);
    ADD_LIT(b, ",\"listeners\":[");
    for (size_t i = 0; i < c->nlisteners; i++) {
        evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
        stats_listener(b, &c->listeners[i]);
        ADD_LIT(b, "}");
    }
    ADD_LIT(b, "],\"backends\":[");
    for (size_t i = 0; i < c->nbackends; i++) {
        evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
        stats_backend(b, &c->backends[i]);
        ADD_LIT(b, "}");
    }
    /* Last, in the order prom_cpu() explains, after the listeners' cpu_seconds. */
    evbuffer_add_printf(b, "],\"unattributed_cpu_seconds\":%.9f",
                        (double)cpu_unattributed_nsec() / 1e9);
    evbuffer_add_printf(b, ",\"worker_cpu_seconds\":%.9f", (double)cpu_workers_nsec() / 1e9);
    evbuffer_add_printf(b, ",\"process_cpu_seconds\":%.6f}", process_cpu_seconds());
}

/* ---- HTTP ---- */

/*
 * Sends body with status code and the headers every admin answer carries.
 * To HEAD: the headers only, with the Content-Length a GET would get
 * (libevent's evhttp would send the body after them, which a keep-alive
 * client then reads as the start of its next response).
 */
static void admin_reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                        struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[24];

        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
        evhttp_add_header(h, "Content-Length", len);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, reason, body);
}

/* The dashboard page with the current /stats in place of its mark. */
static void admin_dashboard(struct evhttp_request *req, struct evbuffer *b, const struct admin *a)
{
    const char *mark = strstr(dashboard_page, DASHBOARD_STATS_MARK);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (mark == NULL) { /* a broken build, not bad input */
        evbuffer_add(b, dashboard_page, strlen(dashboard_page));
    } else {
        evbuffer_add(b, dashboard_page, (size_t)(mark - dashboard_page));
        admin_stats(b, a);
        mark += strlen(DASHBOARD_STATS_MARK);
        evbuffer_add(b, mark, strlen(mark));
    }
    /* Everything is inline and same-origin: the page cannot load anything else. */
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                      "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                      "frame-ancestors 'none'");
    admin_reply(req, 200, "OK", "text/html; charset=utf-8", b);
}

/* Every request: dispatch on the path (the query string is ignored). */
static void admin_on_request(struct evhttp_request *req, void *arg)
{
    const struct admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *b = evbuffer_new();

    if (b == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    if (path == NULL || *path == '\0')
        path = "/";
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        evbuffer_add_printf(b, "read only: GET or HEAD\n");
        admin_reply(req, 405, "Method Not Allowed", "text/plain; charset=utf-8", b);
    } else if (strcmp(path, "/metrics") == 0) {
        admin_metrics(b, a);
        admin_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    } else if (strcmp(path, "/stats") == 0) {
        admin_stats(b, a);
        admin_reply(req, 200, "OK", "application/json", b);
    } else if (strcmp(path, "/healthz") == 0) {
        ADD_LIT(b, "ok\n");
        admin_reply(req, 200, "OK", "text/plain; charset=utf-8", b);
    } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        admin_dashboard(req, b, a);
    } else {
        evbuffer_add_printf(b, "not found; try /, /metrics, /stats or /healthz\n");
        admin_reply(req, 404, "Not Found", "text/plain; charset=utf-8", b);
    }
    evbuffer_free(b);
}

/* A listening socket on addr. Returns the fd or -1 (logged). */
static int admin_listen(const struct net_addr *addr)
{
    const struct sockaddr *sa = (const struct sockaddr *)&addr->ss;
    int one = 1, fd, err;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("admin: socket");
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, addr->len) < 0 || listen(fd, ADMIN_BACKLOG) < 0) {
        err = errno;
        close(fd);
        errno = err;
        log_error("admin: cannot listen on %s", addr->text);
        return -1;
    }
    return fd;
}

int admin_start(struct event_base *base, struct config *conf)
{
    struct admin *a;
    int fd;

    if (conf->admin.text == NULL || conf->admin.len == 0 || admin_self != NULL)
        return 0;
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        log_errorx("admin: out of memory");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &a->started);
    a->started_wall = time(NULL);
    a->conf = config_ref(conf);
    admin_self = a;
    if ((fd = admin_listen(&conf->admin)) < 0)
        return -1;
    a->http = evhttp_new(base);
    if (a->http == NULL) {
        close(fd);
        log_errorx("admin: cannot set up the HTTP server");
        return -1;
    }
    /* Let every method reach admin_on_request, which answers 405 (libevent would say 501). */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_gencb(a->http, admin_on_request, a);
    if (evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
        close(fd);
        log_errorx("admin: cannot accept on %s", conf->admin.text);
        return -1;
    }
    log_info("admin: http://%s/ (dashboard; /metrics, /stats, /healthz)", conf->admin.text);
    return 0;
}

void admin_set_config(struct config *conf)
{
    struct config *old;

    if (admin_self == NULL)
        return;
    old = admin_self->conf;
    admin_self->conf = config_ref(conf);
    config_unref(old);
}

void admin_stop(void)
{
    struct admin *a = admin_self;

    metrics_recent_free();
    if (a == NULL)
        return;
    if (a->http != NULL)
        evhttp_free(a->http);
    config_unref(a->conf);
    free(a);
    admin_self = NULL;
}
