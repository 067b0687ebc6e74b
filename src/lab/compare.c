/*
 * tlsgate compare: the same load against each listener of a configuration in
 * turn, one table side by side.
 *
 * For each listener the target is derived from the configuration: where to
 * connect (the bind address, loopback for a wildcard bind), whether to speak
 * TLS (every mode but http), and the name to send as SNI and Host (--sni, or
 * the first sni_routes pattern of a passthrough listener, or the first name
 * of an offload/bridge listener's default certificate). The gateway's CPU
 * time comes from its admin endpoint, read before and after each run
 * (tlsgate_listener_cpu_seconds_total for the listener, else the whole
 * process). What the origin saw comes from one sampled response: the lab
 * origin echoes its name, the client address, the TLS session (or null) and
 * the request headers. What the mode allowed comes from the listener's
 * configuration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "compare.h"
#include "config.h"

#define METRICS_MAX        (8 * 1024 * 1024) /* largest /metrics answer read */
#define METRICS_TIMEOUT_MS 3000
#define SETTLE_MS          200 /* pause after a run: connections close, counters settle */
#define CELL_MAX           256

static const char *const mode_names[] = {"passthrough", "offload", "bridge", "http"};

/* malloc'ed printf; NULL only when out of memory. */
static char *__attribute__((format(printf, 1, 2))) xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- the target of a listener ---- */

/* Where to connect for a listener bound to bind: a wildcard address becomes loopback. */
static void target_addr(const struct net_addr *bind, struct sockaddr_storage *ss, socklen_t *len)
{
    memcpy(ss, &bind->ss, sizeof(*ss));
    *len = bind->len;
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
            sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
            sin6->sin6_addr = in6addr_loopback;
    }
}

/* A name that a pattern matches: "*.lab.test" becomes "www.lab.test". */
static char *name_from_pattern(const char *pattern)
{
    if (strncmp(pattern, "*.", 2) == 0)
        return xasprintf("www.%s", pattern + 2);
    return strdup(pattern);
}

/* The first DNS name (else the CN) of the certificate in the PEM file path, or NULL. */
static char *cert_first_name(const char *path)
{
    GENERAL_NAMES *names;
    X509 *x = NULL;
    char *out = NULL, cn[256];
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return NULL;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        return NULL;
    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && out == NULL; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

        if (gn->type == GEN_DNS) {
            char *dns = strndup((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
                                (size_t)ASN1_STRING_length(gn->d.dNSName));
            if (dns != NULL)
                out = name_from_pattern(dns);
            free(dns);
        }
    }
    GENERAL_NAMES_free(names);
    if (out == NULL &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0)
        out = name_from_pattern(cn);
    X509_free(x);
    return out;
}

/* The SNI / Host name for l: --sni, a routed name, the certificate's name, else "localhost". */
static char *target_name(const struct listener *l, const char *sni)
{
    char *name = NULL;

    if (sni != NULL)
        return strdup(sni);
    if (l->mode == MODE_PASSTHROUGH && l->nsni_routes > 0)
        name = name_from_pattern(l->sni_routes[0].pattern);
    else if (l->has_tls && l->tls.ncertificates > 0)
        name = cert_first_name(l->tls.certificates[0].cert);
    return name != NULL ? name : strdup("localhost");
}

/* ---- what the mode allowed ---- */

/* Appends ", text" (or text when s is empty) to s, bounded by len. */
static void list_add(char *s, size_t len, const char *text)
{
    size_t n = strlen(s);

    snprintf(s + n, len - n, "%s%s", n ? ", " : "", text);
}

/* What the gateway could see in l's mode. */
static const char *mode_sees(const struct listener *l)
{
    switch (l->mode) {
    case MODE_PASSTHROUGH:
        return "ClientHello only (SNI, ALPN, versions); HTTP stays encrypted";
    case MODE_OFFLOAD:
        return "all of HTTP (decrypted); plain HTTP to origins";
    case MODE_BRIDGE:
        return "all of HTTP (decrypted); TLS again to origins";
    case MODE_HTTP:
        return "all of HTTP (never encrypted)";
    }
    return "";
}

/* The features l's configuration uses, as a short list. */
static char *mode_features(const struct listener *l)
{
    char s[CELL_MAX] = "";
    bool deny = false, redirect = false, forward = false, source = false, pp = false;

    if (l->mode == MODE_PASSTHROUGH) {
        for (size_t i = 0; i < l->nsni_routes; i++) {
            source |= l->sni_routes[i].backend->balance == BALANCE_SOURCE;
            pp |= l->sni_routes[i].backend->proxy_protocol != PP_OFF;
        }
        if (l->default_backend != NULL) {
            source |= l->default_backend->balance == BALANCE_SOURCE;
            pp |= l->default_backend->proxy_protocol != PP_OFF;
        }
        if (l->nsni_routes > 0)
            list_add(s, sizeof(s), "SNI routing");
        list_add(s, sizeof(s), "L4 balancing");
        if (source)
            list_add(s, sizeof(s), "source stickiness");
        if (pp)
            list_add(s, sizeof(s), "PROXY protocol");
        list_add(s, sizeof(s), "no inspection/rules/redirects/cookies");
        return strdup(s);
    }
    for (size_t i = 0; i < l->http.nrules; i++) {
        deny |= l->http.rules[i].action == RULE_DENY;
        redirect |= l->http.rules[i].action == RULE_REDIRECT;
        forward |= l->http.rules[i].action == RULE_FORWARD;
    }
    list_add(s, sizeof(s), "inspection");
    if (l->http.nrules > 0) {
        char r[64];

        snprintf(r, sizeof(r), "rules:%zu", l->http.nrules);
        list_add(s, sizeof(s), r);
    }
    if (deny)
        list_add(s, sizeof(s), "deny");
    if (redirect)
        list_add(s, sizeof(s), "redirects");
    if (forward)
        list_add(s, sizeof(s), "host/path routing");
    if (l->http.sticky.enabled)
        list_add(s, sizeof(s), "cookie sticky");
    if (l->http.forwarded_headers)
        list_add(s, sizeof(s), "X-Forwarded-For");
    if (l->http.hsts != NULL && l->http.hsts[0] != '\0')
        list_add(s, sizeof(s), "HSTS");
    if (l->has_tls && l->tls.client_ca != NULL && l->tls.client_ca[0] != '\0')
        list_add(s, sizeof(s), "mTLS");
    return strdup(s);
}

/* ---- what the origin saw ---- */

/*
 * The JSON string value following needle (which ends with the opening quote)
 * in json, unescaped only as far as \" and \\; malloc'ed, or NULL.
 */
static char *json_string_after(const char *json, const char *needle, bool nocase)
{
    const char *p = nocase ? strcasestr(json, needle) : strstr(json, needle);
    char *out, *o;

    if (p == NULL)
        return NULL;
    p += strlen(needle);
    out = o = malloc(strlen(p) + 1);
    if (out == NULL)
        return NULL;
    while (*p != '\0' && *p != '"') {
        if (*p == '\\' && p[1] != '\0')
            p++;
        *o++ = *p++;
    }
    *o = '\0';
    return out;
}

/* One header of the sampled response head, or NULL. */
static char *head_header(const char *head, const char *name)
{
    char needle[64];
    const char *p;
    size_t n;

    snprintf(needle, sizeof(needle), "\n%s:", name);
    if (head == NULL || (p = strcasestr(head, needle)) == NULL)
        return NULL;
    p += strlen(needle);
    p += strspn(p, " \t");
    n = strcspn(p, "\r\n");
    return strndup(p, n);
}

/* What the origin saw, from the sampled response of r. */
static char *origin_view(const struct loadgen_result *r)
{
    char *origin, *client, *tlsv = NULL, *xff, *loc, *out;
    const char *body = r->sample_body;

    if (r->sample_status == 0)
        return strdup("(no response sampled)");
    if (body == NULL || (origin = json_string_after(body, "{\"origin\":\"", false)) == NULL) {
        loc = head_header(r->sample_head, "location");
        out = loc ? xasprintf("gateway answered %d -> %s", r->sample_status, loc)
                  : xasprintf("gateway answered %d (not the lab origin's echo)", r->sample_status);
        free(loc);
        return out;
    }
    client = json_string_after(body, "\"client\":\"", false);
    if (strstr(body, "\"tls\":null") == NULL)
        tlsv = json_string_after(body, "\"tls\":{\"version\":\"", false);
    xff = json_string_after(body, "[\"X-Forwarded-For\",\"", true);
    out = xasprintf("%s: %s from %s%s%s", origin, tlsv ? tlsv : "plain HTTP", client ? client : "?",
                    xff ? ", X-Forwarded-For " : "", xff ? xff : "");
    free(origin);
    free(client);
    free(tlsv);
    free(xff);
    return out;
}

/* ---- gateway CPU from the admin endpoint ---- */

/* GETs path from the admin address; returns the body (malloc'ed) or NULL. */
static char *admin_get(const struct net_addr *admin, const char *path)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct pollfd pfd;
    char req[256], *buf = NULL, *body;
    size_t n = 0, cap = 0;
    int fd, rc;

    target_addr(admin, &ss, &len);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    {
        struct timeval tv = {METRICS_TIMEOUT_MS / 1000, 0};

        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0)
        goto fail;
    rc = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
                  path);
    if (send(fd, req, (size_t)rc, MSG_NOSIGNAL) != rc)
        goto fail;
    pfd.fd = fd;
    pfd.events = POLLIN;
    for (;;) {
        ssize_t got;

        if (poll(&pfd, 1, METRICS_TIMEOUT_MS) <= 0)
            goto fail;
        if (n + 65536 + 1 > cap) {
            char *nb;

            if (cap >= METRICS_MAX)
                goto fail;
            cap = cap ? cap * 2 : 131072;
            if ((nb = realloc(buf, cap)) == NULL)
                goto fail;
            buf = nb;
        }
        got = recv(fd, buf + n, cap - n - 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        n += (size_t)got;
        buf[n] = '\0';
        /* A keep-alive answer with Content-Length ends before EOF. */
        if ((body = strstr(buf, "\r\n\r\n")) != NULL) {
            char *cl = strcasestr(buf, "\ncontent-length:");

            if (cl != NULL && cl < body &&
                (size_t)(body + 4 - buf) + strtoul(cl + 16, NULL, 10) <= n)
                break;
        }
    }
    close(fd);
    if (buf == NULL || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 ||
        (body = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

/*
 * The value of metric name in Prometheus text, for the sample whose labels
 * include listener="listener" (or that has no labels when listener is NULL).
 * Returns NAN when absent.
 */
static double metric_value(const char *text, const char *name, const char *listener)
{
    size_t nlen = strlen(name);
    char want[CELL_MAX];
    const char *p = text;

    if (listener != NULL)
        snprintf(want, sizeof(want), "listener=\"%s\"", listener);
    while (p != NULL && *p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t llen = eol ? (size_t)(eol - p) : strlen(p);

        if (llen > nlen && strncmp(p, name, nlen) == 0 && (p[nlen] == '{' || p[nlen] == ' ')) {
            const char *v = p + nlen;
            bool ok = listener == NULL;

            if (*v == '{') {
                const char *close = memchr(v, '}', (size_t)(p + llen - v));

                if (close == NULL)
                    goto next;
                if (listener != NULL) {
                    char *labels = strndup(v, (size_t)(close - v));

                    ok = labels != NULL &&
                         (strstr(labels, want) == labels + 1 ||
                          (strstr(labels, want) != NULL && strstr(labels, want)[-1] == ','));
                    free(labels);
                }
                v = close + 1;
            }
            if (ok)
                return strtod(v, NULL);
        }
    next:
        p = eol ? eol + 1 : NULL;
    }
    return NAN;
}

/* Gateway CPU seconds so far: for the listener if *per_listener, else the process. */
static double gateway_cpu(const struct config *conf, const char *listener, bool *per_listener)
{
    char *text;
    double v = NAN;

    if (conf->admin.text == NULL || conf->admin.len == 0)
        return NAN;
    text = admin_get(&conf->admin, "/metrics");
    if (text == NULL)
        return NAN;
    v = metric_value(text, "tlsgate_listener_cpu_seconds_total", listener);
    *per_listener = !isnan(v);
    if (isnan(v))
        v = metric_value(text, "tlsgate_process_cpu_seconds_total", NULL);
    free(text);
    return v;
}

/* ---- the table ---- */

static void row_free(struct compare_row *row)
{
    free(row->listener);
    free(row->mode);
    free(row->address);
    free(row->sni);
    free(row->origin_view);
    free(row->sees);
    free(row->features);
    loadgen_result_free(&row->res);
}

/* Latency in ms with two decimals. */
static void fmt_ms(char *buf, size_t len, uint64_t usec)
{
    snprintf(buf, len, "%.2f", (double)usec / 1000.0);
}

enum {
    COL_LISTENER,
    COL_MODE,
    COL_REQS,
    COL_RPS,
    COL_P50,
    COL_P90,
    COL_P99,
    COL_HS,
    COL_ERR,
    COL_CPU,
    COL_ORIGIN,
    COL_FEATURES,
    NCOLS
};

/* Fills the cells of one row. */
static void row_cells(const struct compare_row *row, char cells[NCOLS][CELL_MAX])
{
    const struct lat_hist *h = &row->res.hist;

    snprintf(cells[COL_LISTENER], CELL_MAX, "%s", row->listener);
    snprintf(cells[COL_MODE], CELL_MAX, "%s", row->mode);
    snprintf(cells[COL_REQS], CELL_MAX, "%llu", (unsigned long long)row->res.requests);
    snprintf(cells[COL_RPS], CELL_MAX, "%.1f", row->rps);
    fmt_ms(cells[COL_P50], CELL_MAX, lat_hist_percentile(h, 50));
    fmt_ms(cells[COL_P90], CELL_MAX, lat_hist_percentile(h, 90));
    fmt_ms(cells[COL_P99], CELL_MAX, lat_hist_percentile(h, 99));
    if (row->tls)
        snprintf(cells[COL_HS], CELL_MAX, "%.1f", row->hs_rate);
    else
        snprintf(cells[COL_HS], CELL_MAX, "-");
    snprintf(cells[COL_ERR], CELL_MAX, "%llu", (unsigned long long)loadgen_errors(&row->res));
    if (row->cpu_ok)
        snprintf(cells[COL_CPU], CELL_MAX, "%.1f%s", row->cpu_us_per_req,
                 row->cpu_per_listener ? "" : "*");
    else
        snprintf(cells[COL_CPU], CELL_MAX, "n/a");
    snprintf(cells[COL_ORIGIN], CELL_MAX, "%s", row->origin_view);
    snprintf(cells[COL_FEATURES], CELL_MAX, "%s", row->features);
}

/* Prints the table: numbers right-aligned, text left-aligned, text columns last. */
static void print_table(FILE *out, const struct compare_row *rows, size_t n)
{
    static const char *const head[NCOLS] = {"listener", "mode",      "requests",   "req/s",
                                            "p50 ms",   "p90 ms",    "p99 ms",     "hs/s",
                                            "errors",   "gw us/req", "origin saw", "features"};
    char(*cells)[NCOLS][CELL_MAX] = calloc(n ? n : 1, sizeof(*cells));
    size_t w[NCOLS];
    bool any_process = false, any_err = false;

    if (cells == NULL)
        return;
    for (int c = 0; c < NCOLS; c++)
        w[c] = strlen(head[c]);
    for (size_t i = 0; i < n; i++) {
        row_cells(&rows[i], cells[i]);
        for (int c = 0; c < NCOLS; c++)
            if (strlen(cells[i][c]) > w[c])
                w[c] = strlen(cells[i][c]);
        any_process |= rows[i].cpu_ok && !rows[i].cpu_per_listener;
        any_err |= loadgen_errors(&rows[i].res) > 0;
    }
    for (int c = 0; c < NCOLS; c++) {
        bool left = c <= COL_MODE || c >= COL_ORIGIN;

        if (c == NCOLS - 1)
            fprintf(out, "  %s\n", head[c]);
        else
            fprintf(out, "%s%*s", c ? "  " : "", left ? -(int)w[c] : (int)w[c], head[c]);
    }
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            bool left = c <= COL_MODE || c >= COL_ORIGIN;

            /* No trailing blanks after the last column. */
            if (c == NCOLS - 1)
                fprintf(out, "  %s\n", cells[i][c]);
            else
                fprintf(out, "%s%*s", c ? "  " : "", left ? -(int)w[c] : (int)w[c], cells[i][c]);
        }
    }
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  %-*s gateway sees: %s\n", (int)w[COL_LISTENER], rows[i].listener,
                rows[i].sees);
    if (any_process)
        fprintf(out, "  * whole gateway process CPU (no per-listener CPU counter in /metrics)\n");
    for (size_t i = 0; i < n; i++)
        if (rows[i].res.aborted)
            fprintf(out, "  %s: stopped early, after %.2f s\n", rows[i].listener,
                    rows[i].res.elapsed_s);
    if (any_err) {
        for (size_t i = 0; i < n; i++) {
            const struct loadgen_result *r = &rows[i].res;

            if (loadgen_errors(r) == 0)
                continue;
            fprintf(out,
                    "  %s errors: connect %llu, tls %llu, io %llu, timeout %llu, http %llu, "
                    "4xx %llu, 5xx %llu\n",
                    rows[i].listener, (unsigned long long)r->err_connect,
                    (unsigned long long)r->err_tls, (unsigned long long)r->err_io,
                    (unsigned long long)r->err_timeout, (unsigned long long)r->err_http,
                    (unsigned long long)r->status[4], (unsigned long long)r->status[5]);
        }
    }
    free(cells);
}

/* ---- running ---- */

/* Drives the load at listener l and fills row. Returns 0 or -1 (setup failed). */
static int compare_one(const struct compare_opts *o, const struct config *conf,
                       const struct listener *l, struct compare_row *row)
{
    struct loadgen_target t = {0};
    struct loadgen_opts lo = {0};
    char addr[ADDR_STRLEN];
    bool per_before = false, per_after = false;
    double cpu0, cpu1;

    target_addr(&l->bind, &t.ss, &t.len);
    row->listener = strdup(l->name);
    row->mode = strdup(mode_names[l->mode]);
    row->address = strdup(addr_format((struct sockaddr *)&t.ss, addr, sizeof(addr)));
    row->sni = target_name(l, o->sni);
    row->tls = l->mode != MODE_HTTP;
    row->sees = strdup(mode_sees(l));
    row->features = mode_features(l);
    if (row->listener == NULL || row->mode == NULL || row->address == NULL || row->sni == NULL ||
        row->sees == NULL || row->features == NULL)
        return -1;
    t.tls = row->tls;
    t.sni = row->tls ? row->sni : NULL;
    t.host = row->sni;
    t.path = o->path;
    lo.connections = o->connections;
    lo.threads = o->threads;
    lo.duration_ms = o->duration_ms;
    lo.timeout_ms = o->timeout_ms;
    lo.new_connections = o->new_connections;
    lo.stop = o->stop;
    if (!o->quiet)
        fprintf(stderr, "compare: %s (%s, %s%s%s) for %u ms with %u connections...\n", l->name,
                row->mode, row->address, row->tls ? ", TLS SNI " : ", Host ", row->sni,
                o->duration_ms, o->connections);
    cpu0 = gateway_cpu(conf, l->name, &per_before);
    if (loadgen_run(&t, &lo, &row->res) < 0)
        return -1;
    sleep_ms(SETTLE_MS);
    cpu1 = gateway_cpu(conf, l->name, &per_after);
    if (row->res.elapsed_s > 0) {
        row->rps = (double)row->res.requests / row->res.elapsed_s;
        row->hs_rate = (double)row->res.handshakes / row->res.elapsed_s;
    }
    row->cpu_ok = !isnan(cpu0) && !isnan(cpu1) && per_before == per_after && cpu1 >= cpu0 &&
                  row->res.requests > 0;
    row->cpu_per_listener = per_after;
    if (row->cpu_ok)
        row->cpu_us_per_req = (cpu1 - cpu0) * 1e6 / (double)row->res.requests;
    row->origin_view = origin_view(&row->res);
    return row->origin_view != NULL ? 0 : -1;
}

/*
 * Checks before the run that the report can be written where asked (its
 * directory exists and is writable, and it is not a directory), so that a
 * typo does not cost the whole run. Returns 0, or -1 with the error printed.
 */
static int report_path_problem(const char *path)
{
    char *copy = strdup(path);
    const char *dir = copy != NULL ? dirname(copy) : ".";
    struct stat st;
    int rc = 0;

    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "tlsgate compare: cannot write report '%s': %s: %s\n", path, dir,
                strerror(errno));
        rc = -1;
    } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "tlsgate compare: cannot write report '%s': it is a directory\n", path);
        rc = -1;
    }
    free(copy);
    return rc;
}

/* The listener named name, or NULL. */
static const struct listener *find_listener(const struct config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nlisteners; i++)
        if (strcmp(conf->listeners[i].name, name) == 0)
            return &conf->listeners[i];
    return NULL;
}

int compare_run(const struct compare_opts *o, FILE *out)
{
    struct config_errors errs = {0};
    struct compare_row *rows = NULL;
    struct config *conf;
    size_t n, done = 0;
    int rc = 0;

    conf = config_load(o->config, &errs);
    if (conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        fprintf(stderr, "tlsgate compare: %s: %zu error(s)\n", o->config, errs.n);
        config_errors_free(&errs);
        return 1;
    }
    config_errors_free(&errs);
    n = o->nlisteners ? o->nlisteners : conf->nlisteners;
    for (size_t i = 0; i < o->nlisteners; i++) {
        if (find_listener(conf, o->listeners[i]) == NULL) {
            fprintf(stderr, "tlsgate compare: %s: no listener named '%s' (listeners:", o->config,
                    o->listeners[i]);
            for (size_t k = 0; k < conf->nlisteners; k++)
                fprintf(stderr, " %s", conf->listeners[k].name);
            fprintf(stderr, ")\n");
            config_unref(conf);
            return 1;
        }
    }
    if (o->report != NULL && report_path_problem(o->report) < 0) {
        config_unref(conf);
        return 1;
    }
    if (n == 0 || (rows = calloc(n, sizeof(*rows))) == NULL) {
        fprintf(stderr, "tlsgate compare: %s: no listener to compare\n", o->config);
        config_unref(conf);
        return 1;
    }
    fprintf(out, "compare: %u connections, %u ms per listener, %s, GET %s\n", o->connections,
            o->duration_ms,
            o->new_connections ? "new connection (full TLS handshake) per request"
                               : "HTTP/1.1 keep-alive",
            o->path);
    for (; done < n; done++) {
        const struct listener *l =
            o->nlisteners ? find_listener(conf, o->listeners[done]) : &conf->listeners[done];

        if (o->stop != NULL && *o->stop)
            break;
        if (done > 0)
            sleep_ms(SETTLE_MS);
        if (compare_one(o, conf, l, &rows[done]) < 0) {
            fprintf(stderr, "tlsgate compare: cannot drive listener '%s'\n", l->name);
            rc = 2;
            done++;
            break;
        }
        if (rows[done].res.requests == 0 && !rows[done].res.aborted) {
            fprintf(stderr, "tlsgate compare: listener '%s' (%s) answered no request\n", l->name,
                    rows[done].address);
            rc = 2;
        }
    }
    print_table(out, rows, done);
    fflush(out);
    if (o->report != NULL) {
        if (report_write(o->report, o, rows, done) < 0) {
            fprintf(stderr, "tlsgate compare: cannot write report '%s': %s\n", o->report,
                    strerror(errno));
            rc = 2;
        } else if (!o->quiet) {
            fprintf(stderr, "compare: report written to %s\n", o->report);
        }
    }
    for (size_t i = 0; i < n; i++)
        row_free(&rows[i]);
    free(rows);
    config_unref(conf);
    return rc;
}

/* ---- command line ---- */

static void compare_usage(FILE *f)
{
    fprintf(f, "usage: tlsgate compare -c FILE [--listener NAME]... [--connections N]\n"
               "                       [--duration MS] [--new-connections] [--path P]\n"
               "                       [--report FILE.html] [--threads N] [--sni NAME]\n"
               "                       [--timeout MS] [--quiet]\n"
               "\n"
               "Drives the same HTTP load at each listener of a running gateway in turn\n"
               "and prints one table side by side.\n"
               "\n"
               "  -c FILE            the gateway's configuration (listeners, admin address)\n"
               "  --listener NAME    a listener to drive; repeat; default: every listener\n"
               "  --connections N    concurrent connections (default 16)\n"
               "  --duration MS      measured time per listener (default 5000)\n"
               "  --new-connections  one request per connection: a full TLS handshake each\n"
               "                     (default: HTTP/1.1 keep-alive)\n"
               "  --path P           request target (default /)\n"
               "  --report FILE      also write a self-contained HTML page with charts\n"
               "  --threads N        load threads (default: CPUs, at most 2 and connections)\n"
               "  --sni NAME         SNI and Host to send (default: from the listener:\n"
               "                     its first sni_routes pattern or certificate name)\n"
               "  --timeout MS       a request slower than this is an error (default 5000)\n"
               "  --quiet            no progress lines on stderr\n"
               "\n"
               "Columns: requests and req/s completed in the measured time; latency\n"
               "percentiles from the request's first byte (from connect() for a new\n"
               "connection) to its response's last byte; TLS handshakes/s completed by\n"
               "the client; errors (connect, TLS, I/O, timeouts, malformed, 4xx/5xx);\n"
               "gateway CPU microseconds per request from the admin /metrics before and\n"
               "after the run; what the origin saw (its JSON echo of one request) and\n"
               "what the listener's mode allowed.\n");
}

/* Parses an unsigned option value in [min, max]; prints why and returns -1 if bad. */
static int parse_uint(const char *opt, const char *text, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "tlsgate compare: %s '%s': expected %u..%u\n", opt, text, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Default load threads: CPUs, at most 2 (the gateway and origins need the rest). */
static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n >= 2 ? 2 : 1;
}

int compare_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listener", required_argument, NULL, 'l'},
        {"connections", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'},
        {"new-connections", no_argument, NULL, 'N'},
        {"path", required_argument, NULL, 'p'},
        {"report", required_argument, NULL, 'r'},
        {"threads", required_argument, NULL, 't'},
        {"sni", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct compare_opts o = {0};
    const char **names;
    int ch, rc;

    names = calloc((size_t)argc + 1, sizeof(*names));
    if (names == NULL)
        return 2;
    o.listeners = names;
    o.connections = 16;
    o.duration_ms = 5000;
    o.timeout_ms = 5000;
    o.path = "/";
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o.config = optarg;
            break;
        case 'l':
            names[o.nlisteners++] = optarg;
            break;
        case 'n':
            if (parse_uint("--connections", optarg, 1, 10000, &o.connections) < 0)
                goto usage;
            break;
        case 'd':
            if (parse_uint("--duration", optarg, 100, 3600000, &o.duration_ms) < 0)
                goto usage;
            break;
        case 'N':
            o.new_connections = true;
            break;
        case 'p':
            if (optarg[0] != '/' || strpbrk(optarg, " \r\n") != NULL) {
                fprintf(stderr,
                        "tlsgate compare: --path '%s': must start with '/' and have no "
                        "spaces\n",
                        optarg);
                goto usage;
            }
            o.path = optarg;
            break;
        case 'r':
            o.report = optarg;
            break;
        case 't':
            if (parse_uint("--threads", optarg, 1, 64, &o.threads) < 0)
                goto usage;
            break;
        case 's':
            if (optarg[0] == '\0' || strpbrk(optarg, " \r\n/") != NULL) {
                fprintf(stderr, "tlsgate compare: --sni '%s': not a host name\n", optarg);
                goto usage;
            }
            o.sni = optarg;
            break;
        case 'T':
            if (parse_uint("--timeout", optarg, 10, 600000, &o.timeout_ms) < 0)
                goto usage;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            compare_usage(stdout);
            free(names);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tlsgate compare: unexpected argument '%s'\n", argv[optind]);
        goto usage;
    }
    if (o.config == NULL) {
        fprintf(stderr, "tlsgate compare: -c FILE is required\n");
        goto usage;
    }
    if (o.threads == 0)
        o.threads = default_threads();
    rc = compare_run(&o, stdout);
    free(names);
    return rc;
usage:
    compare_usage(stderr);
    free(names);
    return 1;
}
