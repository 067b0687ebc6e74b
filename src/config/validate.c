/*
 * The semantic pass: what the schema cannot say. References between
 * sections, addresses, files, modes and the keys that make sense in them.
 *
 * Like relayd's parse.y, every problem is reported (never only the first)
 * and the caller fails the load as a unit when the count is not zero. Each
 * line names the key and where it is: "FILE:LINE:COL: key.path: message";
 * a missing key is reported at its nearest written ancestor.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config/conf.h"
#include "config/yaml_lines.h"

#define PATH_MAX_LEN 256

struct vctx {
    const char *file;
    const struct yaml_lines *yl;
    struct config_errors *errs;
    struct raw_config_conf *rc;
    SSL_CTX *ssl; /* scratch context to try cipher lists; created on first use */
    unsigned nerr;
};

/* Formats a key path into dst (PATH_MAX_LEN bytes); long paths are cut. */
static const char *__attribute__((format(printf, 2, 3))) subpath(char *dst, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
    return dst;
}

/* Joins base and key ("listeners[0]" + "tls" or "[1]") into buf. */
static const char *join(char *buf, size_t len, const char *base, const char *key)
{
    if (key == NULL || *key == '\0')
        snprintf(buf, len, "%s", base);
    else if (*base == '\0')
        snprintf(buf, len, "%s", key);
    else
        snprintf(buf, len, "%s%s%s", base, key[0] == '[' ? "" : ".", key);
    return buf;
}

/* Reports one problem at base.key, located at it or its nearest ancestor. */
static void __attribute__((format(printf, 4, 5)))
verr(struct vctx *v, const char *base, const char *key, const char *fmt, ...)
{
    char path[PATH_MAX_LEN], *msg;
    unsigned line, col;
    va_list ap;
    int n;

    v->nerr++;
    join(path, sizeof(path), base, key);
    yaml_lines_locate(v->yl, path, &line, &col);
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    config_errors_at(v->errs, v->file, line, col, path, "%s", msg);
    free(msg);
}

/* Line of base.key in the file, 0 when absent (for "first at line N"). */
static unsigned line_of(const struct vctx *v, const char *base, const char *key)
{
    char path[PATH_MAX_LEN];
    unsigned line = 0, col;

    join(path, sizeof(path), base, key);
    yaml_lines_find(v->yl, path, &line, &col);
    return line;
}

/* True for a string that is absent or empty (the "not set" of optional paths). */
static bool unset(const char *s)
{
    return s == NULL || *s == '\0';
}

/*
 * Reports a file that cannot be read, or is not a regular file (opening a
 * FIFO would block the loader, a device would be read without end). Never
 * opens it: keys are read later, once.
 */
static void check_file(struct vctx *v, const char *base, const char *key, const char *file)
{
    struct stat st;

    if (access(file, R_OK) < 0)
        verr(v, base, key, "cannot read '%s': %s", file, strerror(errno));
    else if (stat(file, &st) == 0 && !S_ISREG(st.st_mode))
        verr(v, base, key, "cannot read '%s': not a regular file", file);
}

/* Reports a name with characters other than letters, digits, - _ . : */
static void check_name(struct vctx *v, const char *base, const char *name)
{
    for (const char *p = name; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr("-_.:", *p) == NULL) {
            verr(v, base, "name",
                 "'%s': names may only contain letters, digits, '-', '_', "
                 "'.' and ':'",
                 name);
            return;
        }
    }
}

/* Reports a zero where zero makes no sense (timeouts, intervals, counters). */
static void check_nonzero(struct vctx *v, const char *base, const char *key, const unsigned *val)
{
    if (val != NULL && *val == 0)
        verr(v, base, key, "must be at least 1");
}

/* Checks one DNS label. Returns NULL or the reason it is wrong. */
static const char *label_problem(const char *label, size_t len)
{
    if (len == 0)
        return "empty label (two dots in a row?)";
    if (len > 63)
        return "label longer than 63 characters";
    if (label[0] == '-' || label[len - 1] == '-')
        return "a label may not begin or end with '-'";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)label[i];
        if (c >= 0x80)
            return "non-ASCII character: write international names in punycode (xn--...)";
        if (c == '*')
            return "'*' must be the whole first label, as in *.lab.test";
        if (!isalnum(c) && c != '-' && c != '_')
            return "character not valid in a DNS name";
    }
    return NULL;
}

/*
 * Checks a host name or, with wildcard, an SNI pattern ("*.x.test"). One
 * trailing dot is allowed. Returns NULL or the reason it is wrong.
 */
const char *validate_hostname(const char *name, bool wildcard)
{
    struct in_addr in4;
    char buf[256];
    size_t len = strlen(name);
    const char *p, *dot;

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0)
        return "empty name";
    if (len > 253)
        return "name longer than 253 characters";
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (strcmp(buf, "*") == 0)
        return wildcard ? "'*' alone would match every name; use default_backend for that"
                        : "'*' is not a host name";
    p = buf;
    if (strncmp(buf, "*.", 2) == 0) {
        if (!wildcard)
            return "a wildcard is not allowed here: give one host name";
        p = buf + 2;
    }
    if (inet_pton(AF_INET, p, &in4) == 1)
        return "an IP address is never sent as a server name";
    for (;;) {
        const char *why;
        dot = strchr(p, '.');
        why = label_problem(p, dot ? (size_t)(dot - p) : strlen(p));
        if (why != NULL)
            return why;
        if (dot == NULL)
            return NULL;
        p = dot + 1;
    }
}

/* Parses "10.0.0.0/8", "2001:db8::/32" or a bare address into net/prefix (host bits cleared). */
int validate_parse_cidr(const char *text, struct sockaddr_storage *net, unsigned *prefix, char *why,
                        size_t why_len)
{
    char buf[INET6_ADDRSTRLEN + 8], *slash, *end;
    unsigned long bits;
    unsigned char *bytes;
    unsigned max;

    memset(net, 0, sizeof(*net));
    if (strlen(text) >= sizeof(buf))
        return snprintf(why, why_len, "'%s' is not an address/prefix", text), -1;
    strcpy(buf, text);
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash++ = '\0';
    if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)net)->sin_addr) == 1) {
        net->ss_family = AF_INET;
        bytes = (unsigned char *)&((struct sockaddr_in *)net)->sin_addr;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)net)->sin6_addr) == 1) {
        net->ss_family = AF_INET6;
        bytes = (unsigned char *)&((struct sockaddr_in6 *)net)->sin6_addr;
        max = 128;
    } else {
        return snprintf(why, why_len, "'%s' is not an IP address or network", text), -1;
    }
    bits = max;
    if (slash != NULL) {
        errno = 0;
        bits = strtoul(slash, &end, 10);
        if (*slash == '\0' || !isdigit((unsigned char)*slash) || *end != '\0' || bits > max)
            return snprintf(why, why_len, "bad prefix length '/%s' (0-%u)", slash, max), -1;
    }
    for (unsigned i = (unsigned)bits; i < max; i++)
        bytes[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    *prefix = (unsigned)bits;
    return 0;
}

/* True for an RFC 9110 token (method, header or cookie name). */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    return true;
}

/*
 * Resolves addr text into ss/len, reporting why it is unusable. Port 0 is
 * refused: nothing can connect to it and a listener on it is unreachable.
 */
static void check_addr(struct vctx *v, const char *base, const char *key, const char *text,
                       struct sockaddr_storage *ss, socklen_t *len)
{
    char why[128];

    *len = 0;
    if (addr_parse(text, ss, len, why, sizeof(why)) < 0) {
        verr(v, base, key, "bad address '%s': %s", text, why);
        *len = 0;
    } else if (addr_port((struct sockaddr *)ss) == 0) {
        verr(v, base, key, "bad address '%s': port 0", text);
        *len = 0;
    }
}

/* True when a listening socket on a would conflict with one on b. */
static bool binds_overlap(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family ||
        addr_port((const struct sockaddr *)a) != addr_port((const struct sockaddr *)b))
        return false;
    if (a->ss_family == AF_INET) {
        in_addr_t x = ((const struct sockaddr_in *)a)->sin_addr.s_addr;
        in_addr_t y = ((const struct sockaddr_in *)b)->sin_addr.s_addr;
        return x == y || x == htonl(INADDR_ANY) || y == htonl(INADDR_ANY);
    }
    if (a->ss_family == AF_INET6) {
        const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
        const struct in6_addr *y = &((const struct sockaddr_in6 *)b)->sin6_addr;
        return IN6_ARE_ADDR_EQUAL(x, y) || IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_UNSPECIFIED(y);
    }
    return false;
}

/* The backend called name, or NULL. */
static struct raw_backend_conf *find_backend(const struct vctx *v, const char *name)
{
    for (unsigned i = 0; i < v->rc->nbackends; i++)
        if (v->rc->backends[i].name && strcmp(v->rc->backends[i].name, name) == 0)
            return &v->rc->backends[i];
    return NULL;
}

/*
 * Checks a reference to a backend at base.key. bridge: the backend must speak
 * TLS to its servers. Returns the backend or NULL.
 */
static struct raw_backend_conf *check_ref(struct vctx *v, const char *base, const char *key,
                                          const char *name, bool bridge)
{
    struct raw_backend_conf *b = find_backend(v, name);

    if (b == NULL) {
        verr(v, base, key, "no backend named '%s'", name);
        return NULL;
    }
    if (bridge && b->tls == NULL)
        verr(v, base, key,
             "backend '%s' has no tls: section, but a bridge listener speaks TLS "
             "to its servers (add tls: to the backend, or use mode offload)",
             name);
    return b;
}

/* Global scalars and timeouts. */
static void check_globals(struct vctx *v)
{
    const struct raw_timeouts_conf *t = v->rc->timeouts;

    if (v->rc->workers != NULL && *v->rc->workers > CONF_MAX_WORKERS)
        verr(v, "", "workers", "%u is more than %u", *v->rc->workers, CONF_MAX_WORKERS);
    check_nonzero(v, "", "max_connections", v->rc->max_connections);
    if (t == NULL)
        return;
    check_nonzero(v, "timeouts", "client_hello", t->client_hello);
    check_nonzero(v, "timeouts", "handshake", t->handshake);
    check_nonzero(v, "timeouts", "connect", t->connect);
    check_nonzero(v, "timeouts", "idle", t->idle);
    check_nonzero(v, "timeouts", "http_request", t->http_request);
    check_nonzero(v, "timeouts", "http_keepalive", t->http_keepalive);
}

/* admin: and log: */
static void check_admin_log(struct vctx *v)
{
    const struct raw_log_conf *l = v->rc->log;
    const char *listen = v->rc->admin ? v->rc->admin->listen : NULL;
    char *copy;

    if (listen == NULL)
        listen = CONF_DEF_ADMIN_LISTEN;
    if (!conf_admin_disabled(listen))
        check_addr(v, "admin", "listen", listen, &v->rc->admin_ss, &v->rc->admin_sslen);
    if (l == NULL || l->access == NULL)
        return;
    if (*l->access == '\0') {
        verr(v, "log", "access", "empty; write off, stderr, stdout or a file path");
        return;
    }
    if (!strcmp(l->access, "off") || !strcmp(l->access, "stderr") || !strcmp(l->access, "stdout"))
        return;
    if (access(l->access, F_OK) == 0) {
        if (access(l->access, W_OK) < 0)
            verr(v, "log", "access", "cannot write '%s': %s", l->access, strerror(errno));
        return;
    }
    copy = strdup(l->access);
    if (copy != NULL && access(dirname(copy), W_OK | X_OK) < 0)
        verr(v, "log", "access", "cannot create '%s': %s", l->access, strerror(errno));
    free(copy);
}

/* backends[i].health */
static void check_health(struct vctx *v, const char *base, const struct raw_health_conf *h)
{
    enum health_check check = h->check ? *h->check : HEALTH_TCP;

    check_nonzero(v, base, "interval", h->interval);
    check_nonzero(v, base, "timeout", h->timeout);
    check_nonzero(v, base, "rise", h->rise);
    check_nonzero(v, base, "fall", h->fall);
    /* With no active check, fall and interval still drive passive ejection. */
    if (check == HEALTH_NONE && (h->timeout || h->rise))
        verr(v, base, "check", "none: timeout and rise have no effect");
    if (h->path != NULL && check != HEALTH_HTTP)
        verr(v, base, "path", "only used with check: http");
    else if (h->path != NULL && h->path[0] != '/')
        verr(v, base, "path", "'%s' must begin with '/'", h->path);
    if (h->expect_status != NULL && check != HEALTH_HTTP)
        verr(v, base, "expect_status", "only used with check: http");
    else if (h->expect_status != NULL && (*h->expect_status < 100 || *h->expect_status > 599))
        verr(v, base, "expect_status", "%u is not an HTTP status (100-599)", *h->expect_status);
    if (h->sni != NULL && check != HEALTH_TLS)
        verr(v, base, "sni", "only used with check: tls");
}

/* backends[i].tls */
static void check_backend_tls(struct vctx *v, const char *base,
                              const struct raw_backend_tls_conf *t)
{
    const char *why;

    if (!unset(t->ca))
        check_file(v, base, "ca", t->ca);
    if (!unset(t->sni) && (why = validate_hostname(t->sni, false)) != NULL)
        verr(v, base, "sni", "'%s': %s", t->sni, why);
}

/* backends[i].servers */
static void check_servers(struct vctx *v, const char *bbase, struct raw_backend_conf *b)
{
    char base[PATH_MAX_LEN], other[PATH_MAX_LEN];
    unsigned total_weight = 0;

    for (unsigned j = 0; j < b->nservers; j++) {
        struct raw_server_conf *s = &b->servers[j];
        subpath(base, "%s.servers[%u]", bbase, j);
        check_name(v, base, s->name);
        for (unsigned k = 0; k < j; k++) {
            if (strcmp(b->servers[k].name, s->name) != 0)
                continue;
            subpath(other, "%s.servers[%u]", bbase, k);
            verr(v, base, "name", "duplicate server name '%s' in this backend (first at line %u)",
                 s->name, line_of(v, other, "name"));
            break;
        }
        check_addr(v, base, "address", s->address, &s->ss, &s->sslen);
        if (s->weight != NULL && *s->weight > 256)
            verr(v, base, "weight", "%u is more than 256", *s->weight);
        total_weight += s->weight ? *s->weight : CONF_DEF_WEIGHT;
    }
    if (b->nservers > 0 && total_weight == 0)
        verr(v, bbase, "servers", "every server has weight 0: no traffic could go anywhere");
}

/* backends: */
static void check_backends(struct vctx *v)
{
    char base[PATH_MAX_LEN], other[PATH_MAX_LEN];

    for (unsigned i = 0; i < v->rc->nbackends; i++) {
        struct raw_backend_conf *b = &v->rc->backends[i];
        subpath(base, "backends[%u]", i);
        check_name(v, base, b->name);
        for (unsigned k = 0; k < i; k++) {
            if (strcmp(v->rc->backends[k].name, b->name) != 0)
                continue;
            subpath(other, "backends[%u]", k);
            verr(v, base, "name", "duplicate backend name '%s' (first at line %u)", b->name,
                 line_of(v, other, "name"));
            break;
        }
        if (b->tls != NULL) {
            subpath(other, "%s.tls", base);
            check_backend_tls(v, other, b->tls);
        }
        if (b->health != NULL) {
            subpath(other, "%s.health", base);
            check_health(v, other, b->health);
        }
        check_servers(v, base, b);
    }
}

/* The listener called name, or NULL. */
static struct raw_listener_conf *find_listener(const struct vctx *v, const char *name)
{
    for (unsigned i = 0; i < v->rc->nlisteners; i++)
        if (v->rc->listeners[i].name && strcmp(v->rc->listeners[i].name, name) == 0)
            return &v->rc->listeners[i];
    return NULL;
}

/*
 * Checks a terminate reference at base.key: a listener of this file that
 * terminates TLS and serves HTTP (offload or bridge). The connection is
 * handed to it on the passthrough listener's socket, after the ClientHello.
 */
static void check_terminate_ref(struct vctx *v, const char *base, const char *key, const char *name)
{
    const struct raw_listener_conf *t = find_listener(v, name);

    if (t == NULL)
        verr(v, base, key, "no listener named '%s'", name);
    else if (t->mode != MODE_OFFLOAD && t->mode != MODE_BRIDGE)
        verr(v, base, key,
             "listener '%s' is in mode %s; terminate names an offload or bridge "
             "listener (the one that terminates TLS for these names)",
             name, t->mode == MODE_PASSTHROUGH ? "passthrough" : "http");
}

/* listeners[i].sni_routes and default_backend/default_terminate of a passthrough listener. */
static void check_sni_routes(struct vctx *v, const char *lbase, const struct raw_listener_conf *l)
{
    char base[PATH_MAX_LEN], other[PATH_MAX_LEN];
    const char *why;

    for (unsigned j = 0; j < l->nsni_routes; j++) {
        const struct raw_sni_route_conf *r = &l->sni_routes[j];
        subpath(base, "%s.sni_routes[%u]", lbase, j);
        if ((why = validate_hostname(r->sni, true)) != NULL)
            verr(v, base, "sni", "bad pattern '%s': %s", r->sni, why);
        for (unsigned k = 0; why == NULL && k < j; k++) {
            size_t a = strlen(r->sni), b = strlen(l->sni_routes[k].sni);
            a -= a > 0 && r->sni[a - 1] == '.';
            b -= b > 0 && l->sni_routes[k].sni[b - 1] == '.';
            if (a != b || strncasecmp(r->sni, l->sni_routes[k].sni, a) != 0)
                continue;
            subpath(other, "%s.sni_routes[%u]", lbase, k);
            verr(v, base, "sni", "'%s' never matches: same pattern as line %u", r->sni,
                 line_of(v, other, "sni"));
            break;
        }
        if (r->backend != NULL && r->terminate != NULL)
            verr(v, base, "terminate",
                 "give backend (relay to servers) or terminate (TLS ends here), not both");
        else if (r->backend != NULL)
            check_ref(v, base, "backend", r->backend, false);
        else if (r->terminate != NULL)
            check_terminate_ref(v, base, "terminate", r->terminate);
        else
            verr(v, base, NULL,
                 "needs backend (relay to servers) or terminate (name of an offload or "
                 "bridge listener that terminates TLS here)");
    }
    if (!unset(l->default_backend) && !unset(l->default_terminate))
        verr(v, lbase, "default_terminate",
             "give default_backend or default_terminate, not both (line %u)",
             line_of(v, lbase, "default_backend"));
    else if (!unset(l->default_backend))
        check_ref(v, lbase, "default_backend", l->default_backend, false);
    else if (!unset(l->default_terminate))
        check_terminate_ref(v, lbase, "default_terminate", l->default_terminate);
    else if (l->nsni_routes == 0)
        verr(v, lbase, "sni_routes",
             "a passthrough listener needs sni_routes, default_backend or "
             "default_terminate: it would close every connection");
}

/* A cipher list OpenSSL accepts (whole TLS 1.2 list, or each TLS 1.3 suite). */
static void check_ciphers(struct vctx *v, const char *base, const struct raw_listener_tls_conf *t)
{
    char *copy, *save = NULL;

    if (v->ssl == NULL && (v->ssl = SSL_CTX_new(TLS_method())) == NULL)
        return;
    if (!unset(t->ciphers) && SSL_CTX_set_cipher_list(v->ssl, t->ciphers) != 1)
        verr(v, base, "ciphers", "no cipher OpenSSL knows in '%s'", t->ciphers);
    if (unset(t->ciphersuites) || (copy = strdup(t->ciphersuites)) == NULL)
        return;
    for (char *s = strtok_r(copy, ":", &save); s != NULL; s = strtok_r(NULL, ":", &save)) {
        if (SSL_CTX_set_ciphersuites(v->ssl, s) != 1) {
            verr(v, base, "ciphersuites", "unknown TLS 1.3 cipher suite '%s'", s);
            break;
        }
    }
    free(copy);
}

/* listeners[i].tls of an offload or bridge listener. */
static void check_listener_tls(struct vctx *v, const char *lbase,
                               const struct raw_listener_tls_conf *t)
{
    char base[PATH_MAX_LEN], cbase[PATH_MAX_LEN];

    subpath(base, "%s.tls", lbase);
    if (t->ncertificates == 0)
        verr(v, base, "certificates", "at least one { cert, key } is needed to terminate TLS");
    for (unsigned j = 0; j < t->ncertificates; j++) {
        subpath(cbase, "%s.certificates[%u]", base, j);
        check_file(v, cbase, "cert", t->certificates[j].cert);
        check_file(v, cbase, "key", t->certificates[j].key);
    }
    if (t->min_version != NULL && strcmp(t->min_version, "1.2") && strcmp(t->min_version, "1.3"))
        verr(v, base, "min_version", "'%s' is not \"1.2\" or \"1.3\"", t->min_version);
    check_ciphers(v, base, t);
    for (unsigned j = 0; t->alpn != NULL && j < t->nalpn; j++) {
        if (strcmp(t->alpn[j], "http/1.1") == 0 || strcmp(t->alpn[j], "http/1.0") == 0)
            continue;
        /* A client that gets this protocol speaks it next: h2 would be answered 505. */
        verr(v, base, "alpn", "'%s': the gateway speaks HTTP/1.x only (http/1.1, http/1.0)",
             t->alpn[j]);
        break;
    }
    if (t->session_tickets != NULL && !*t->session_tickets && !unset(t->ticket_key_file))
        verr(v, base, "ticket_key_file", "has no effect with session_tickets: false");
    if (!unset(t->ticket_key_file))
        check_file(v, base, "ticket_key_file", t->ticket_key_file);
    if (!unset(t->client_ca))
        check_file(v, base, "client_ca", t->client_ca);
}

/* The {placeholders} of a redirect location. */
static void check_location(struct vctx *v, const char *base, const char *loc)
{
    static const char *const known[] = {"{host}", "{uri}", "{path}", "{query}"};
    const char *p = loc, *close;

    while ((p = strchr(p, '{')) != NULL) {
        bool ok = false;
        close = strchr(p, '}');
        for (size_t i = 0; close != NULL && i < sizeof(known) / sizeof(known[0]); i++)
            ok |= (size_t)(close - p + 1) == strlen(known[i]) &&
                  strncmp(p, known[i], strlen(known[i])) == 0;
        if (!ok) {
            verr(v, base, "location",
                 "unknown placeholder in '%s' (use {host} {uri} {path} "
                 "{query})",
                 loc);
            return;
        }
        p = close + 1;
    }
}

/* A path_prefix as requests are compared (http_rules.h: match_path): nothing to decode or merge. */
static bool prefix_is_normal(const char *p)
{
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] == '%')
            return false;
        if (p[i] == '/' &&
            (p[i + 1] == '/' || (p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == '\0')) ||
             (p[i + 1] == '.' && p[i + 2] == '.' && (p[i + 3] == '/' || p[i + 3] == '\0'))))
            return false;
    }
    return true;
}

/* rules[j].match */
static void check_match(struct vctx *v, const char *rbase, const struct raw_rule_match_conf *m)
{
    char base[PATH_MAX_LEN], why[128];
    struct sockaddr_storage net;
    struct in_addr in4;
    unsigned prefix;
    const char *bad;

    subpath(base, "%s.match", rbase);
    if (m->src != NULL && validate_parse_cidr(m->src, &net, &prefix, why, sizeof(why)) < 0)
        verr(v, base, "src", "%s", why);
    if (m->host != NULL && inet_pton(AF_INET, m->host, &in4) != 1 &&
        (bad = validate_hostname(m->host, false)) != NULL)
        verr(v, base, "host", "'%s': %s", m->host, bad);
    if (m->path_prefix != NULL && m->path_prefix[0] != '/')
        verr(v, base, "path_prefix", "'%s' must begin with '/'", m->path_prefix);
    else if (m->path_prefix != NULL && !prefix_is_normal(m->path_prefix))
        verr(v, base, "path_prefix",
             "'%s': write it as rules compare paths: decoded (no %%XX), without '//', "
             "'.' or '..' segments",
             m->path_prefix);
    if (m->method != NULL && !is_token(m->method))
        verr(v, base, "method", "'%s' is not an HTTP method", m->method);
    if (m->header != NULL && !is_token(m->header->name))
        verr(v, base, "header.name", "'%s' is not a header name", m->header->name);
}

/* True when a rule's match holds for every request. */
static bool match_all(const struct raw_rule_match_conf *m)
{
    return m == NULL || (!m->src && !m->host && !m->path_prefix && !m->method && !m->header);
}

/* rules[j]: keys that fit the action, status range, target. */
static void check_rule(struct vctx *v, const char *base, const struct raw_rule_conf *r, bool bridge)
{
    unsigned st = r->status ? *r->status : 0;

    if (r->match != NULL)
        check_match(v, base, r->match);
    if (r->action != RULE_REDIRECT && r->location != NULL)
        verr(v, base, "location", "only used with action: redirect");
    if (r->action != RULE_FORWARD && r->backend != NULL)
        verr(v, base, "backend", "only used with action: forward");
    switch (r->action) {
    case RULE_DENY:
        if (r->status && (st < 400 || st > 599))
            verr(v, base, "status", "%u: deny answers with a 4xx or 5xx status", st);
        break;
    case RULE_REDIRECT:
        if (unset(r->location))
            verr(v, base, "location", "action redirect needs a location");
        else
            check_location(v, base, r->location);
        if (r->status && st != 301 && st != 302 && st != 303 && st != 307 && st != 308)
            verr(v, base, "status", "%u: redirect status is 301, 302, 303, 307 or 308", st);
        break;
    case RULE_FORWARD:
        if (r->status)
            verr(v, base, "status", "only used with action: deny or redirect");
        if (unset(r->backend))
            verr(v, base, "backend", "action forward needs a backend");
        else
            check_ref(v, base, "backend", r->backend, bridge);
        break;
    }
}

/* listeners[i].http.rules */
static bool check_rules(struct vctx *v, const char *hbase, const struct raw_http_conf *h,
                        bool bridge)
{
    char base[PATH_MAX_LEN];
    bool forwards = false;
    int catch_all = -1;

    for (unsigned j = 0; j < h->nrules; j++) {
        const struct raw_rule_conf *r = &h->rules[j];
        subpath(base, "%s.rules[%u]", hbase, j);
        if (catch_all >= 0 && (unsigned)catch_all == j - 1)
            verr(v, base, NULL,
                 "never reached (nor the rules after it): rules[%d] before it "
                 "matches every request",
                 catch_all);
        check_rule(v, base, r, bridge);
        forwards |= r->action == RULE_FORWARD;
        if (catch_all < 0 && match_all(r->match))
            catch_all = (int)j;
    }
    return forwards;
}

/* listeners[i].http (h may be NULL) of an offload, bridge or http listener. */
static void check_http(struct vctx *v, const char *lbase, const struct raw_listener_conf *l)
{
    const struct raw_http_conf *h = l->http;
    bool bridge = l->mode == MODE_BRIDGE, forwards;
    char base[PATH_MAX_LEN], sbase[PATH_MAX_LEN];

    subpath(base, "%s.http", lbase);
    if (h == NULL) {
        verr(v, lbase, "http",
             "needs http.default_backend or http.rules: "
             "every request would get 404");
        return;
    }
    if (h->max_header_bytes && (*h->max_header_bytes == 0 || *h->max_header_bytes > 1048576))
        verr(v, base, "max_header_bytes", "%u is not in 1..1048576", *h->max_header_bytes);
    if (!unset(h->hsts) && l->mode == MODE_HTTP)
        verr(v, base, "hsts", "browsers ignore HSTS over plain HTTP; set it on the TLS listener");
    else if (!unset(h->hsts) && strstr(h->hsts, "max-age=") == NULL)
        verr(v, base, "hsts", "'%s' lacks max-age=SECONDS", h->hsts);
    if (h->sticky != NULL) {
        subpath(sbase, "%s.sticky", base);
        if (h->sticky->cookie != NULL && !is_token(h->sticky->cookie))
            verr(v, sbase, "cookie", "'%s' is not a cookie name", h->sticky->cookie);
        if (!unset(h->sticky->secret_file))
            check_file(v, sbase, "secret_file", h->sticky->secret_file);
    }
    forwards = check_rules(v, base, h, bridge);
    if (!unset(h->default_backend))
        check_ref(v, base, "default_backend", h->default_backend, bridge);
    else if (!forwards && h->nrules == 0)
        verr(v, base, "default_backend",
             "needed when there are no rules: every request "
             "would get 404");
}

/* Keys that belong to another mode. */
static void check_mode_keys(struct vctx *v, const char *base, const struct raw_listener_conf *l)
{
    if (l->mode == MODE_PASSTHROUGH) {
        if (l->tls != NULL)
            verr(v, base, "tls",
                 "a passthrough listener does not terminate TLS (the servers "
                 "hold the certificates); use mode offload or bridge");
        if (l->http != NULL)
            verr(v, base, "http",
                 "a passthrough listener never sees HTTP (it is encrypted); "
                 "use mode offload or bridge for HTTP features");
        return;
    }
    if (l->nsni_routes > 0)
        verr(v, base, "sni_routes",
             "only for passthrough listeners; route by host with "
             "http.rules match.host");
    if (l->default_backend != NULL)
        verr(v, base, "default_backend",
             "only for passthrough listeners; use "
             "http.default_backend");
    if (l->default_terminate != NULL)
        verr(v, base, "default_terminate", "only for passthrough listeners");
    if (l->mode == MODE_HTTP && l->tls != NULL)
        verr(v, base, "tls", "an http listener has no TLS; use mode offload to terminate TLS");
    if (l->mode != MODE_HTTP && l->tls == NULL)
        verr(v, base, "tls", "an %s listener terminates TLS and needs tls.certificates",
             l->mode == MODE_OFFLOAD ? "offload" : "bridge");
}

/* listeners[i].bind against earlier listeners and the admin listener. */
static void check_bind(struct vctx *v, const char *base, unsigned i)
{
    struct raw_listener_conf *l = &v->rc->listeners[i];
    char other[PATH_MAX_LEN];

    if (strcmp(l->bind, CONF_BIND_NONE) == 0) {
        l->no_bind = true;
        if (l->mode != MODE_OFFLOAD && l->mode != MODE_BRIDGE)
            verr(v, base, "bind",
                 "none: only an offload or bridge listener can go without a socket "
                 "(reached through a passthrough listener's terminate route)");
        return;
    }
    check_addr(v, base, "bind", l->bind, &l->ss, &l->sslen);
    if (l->sslen == 0)
        return;
    for (unsigned k = 0; k < i; k++) {
        if (v->rc->listeners[k].sslen == 0 || !binds_overlap(&l->ss, &v->rc->listeners[k].ss))
            continue;
        subpath(other, "listeners[%u]", k);
        verr(v, base, "bind", "%s conflicts with listener '%s' bound to %s (line %u)", l->bind,
             v->rc->listeners[k].name, v->rc->listeners[k].bind, line_of(v, other, "bind"));
        return;
    }
    if (v->rc->admin_sslen != 0 && binds_overlap(&l->ss, &v->rc->admin_ss))
        verr(v, base, "bind", "%s conflicts with the admin listener", l->bind);
}

/* listeners: */
static void check_listeners(struct vctx *v)
{
    char base[PATH_MAX_LEN], other[PATH_MAX_LEN];

    for (unsigned i = 0; i < v->rc->nlisteners; i++) {
        struct raw_listener_conf *l = &v->rc->listeners[i];
        subpath(base, "listeners[%u]", i);
        check_name(v, base, l->name);
        for (unsigned k = 0; k < i; k++) {
            if (strcmp(v->rc->listeners[k].name, l->name) != 0)
                continue;
            subpath(other, "listeners[%u]", k);
            verr(v, base, "name", "duplicate listener name '%s' (first at line %u)", l->name,
                 line_of(v, other, "name"));
            break;
        }
        check_bind(v, base, i);
        check_mode_keys(v, base, l);
        if (l->mode == MODE_PASSTHROUGH) {
            check_sni_routes(v, base, l);
            continue;
        }
        if (l->tls != NULL && l->mode != MODE_HTTP)
            check_listener_tls(v, base, l->tls);
        check_http(v, base, l);
    }
}

/* True when a passthrough listener's sni_routes or default_terminate names listener name. */
static bool terminate_names(const struct raw_listener_conf *pt, const char *name)
{
    if (pt->mode != MODE_PASSTHROUGH)
        return false;
    if (pt->default_terminate != NULL && strcmp(pt->default_terminate, name) == 0)
        return true;
    for (unsigned j = 0; j < pt->nsni_routes; j++)
        if (pt->sni_routes[j].terminate != NULL && strcmp(pt->sni_routes[j].terminate, name) == 0)
            return true;
    return false;
}

/*
 * Listeners reached through terminate routes. Several passthrough listeners
 * may share one. Its own proxy_protocol would be meaningless (the PROXY
 * header, if any, came before the ClientHello and was read by the
 * passthrough listener), and a bind: none listener nobody names is dead.
 */
static void check_terminate_targets(struct vctx *v)
{
    char base[PATH_MAX_LEN];

    for (unsigned i = 0; i < v->rc->nlisteners; i++) {
        const struct raw_listener_conf *l = &v->rc->listeners[i];
        const struct raw_listener_conf *by = NULL;

        if (l->mode != MODE_OFFLOAD && l->mode != MODE_BRIDGE)
            continue;
        for (unsigned k = 0; k < v->rc->nlisteners && by == NULL; k++)
            if (terminate_names(&v->rc->listeners[k], l->name))
                by = &v->rc->listeners[k];
        subpath(base, "listeners[%u]", i);
        if (by != NULL && l->proxy_protocol != NULL && *l->proxy_protocol != PP_OFF)
            verr(v, base, "proxy_protocol",
                 "listener '%s' is a terminate target of passthrough listener '%s', which "
                 "reads the PROXY header before the ClientHello; set proxy_protocol there",
                 l->name, by->name);
        if (by == NULL && l->no_bind)
            verr(v, base, "bind",
                 "none, but no passthrough listener names '%s' in sni_routes terminate or "
                 "default_terminate: it is unreachable",
                 l->name);
    }
}

/* See conf.h. */
unsigned validate_config(struct raw_config_conf *rc, const char *file, const struct yaml_lines *yl,
                         struct config_errors *errs)
{
    struct vctx v = {.file = file, .yl = yl, .errs = errs, .rc = rc};

    check_globals(&v);
    check_admin_log(&v);
    check_backends(&v);
    check_listeners(&v);
    check_terminate_targets(&v);
    SSL_CTX_free(v.ssl);
    return v.nerr;
}
