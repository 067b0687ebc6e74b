/*
 * Loading a configuration snapshot: read the file once, check its structure
 * with line numbers (yaml_lines.c), load it with libcyaml (schema.c), check
 * its meaning (validate.c), then build the runtime structs of config-t.h as
 * deep copies, so nothing points into libcyaml's memory, which is freed
 * before returning. Defaults from SPEC.md are applied here and only here.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "balance.h"
#include "config.h"
#include "sticky.h"
#include "tls_ctx.h"
#include "config/conf.h"
#include "config/yaml_lines.h"

/* A configuration file is small; anything bigger is a mistake (or hostile). */
#define CONF_MAX_FILE (4u * 1024 * 1024)

/* What libcyaml said when it refused a document the walk had accepted. */
struct cyaml_capture {
    char msg[256];   /* first error message */
    char field[128]; /* innermost field of the backtrace */
    unsigned line;   /* its position, 0 = unknown */
    unsigned col;
};

/* Building state: the first allocation failure fails the whole build. */
struct build {
    bool oom;
};

/* See conf.h. */
bool conf_admin_disabled(const char *listen)
{
    return listen != NULL && (*listen == '\0' || strcmp(listen, "off") == 0);
}

/*
 * Reads path into a NUL-terminated buffer the caller frees. Returns NULL with
 * an error line ("FILE: cannot open: reason") in errs.
 */
static char *read_config_file(const char *path, size_t *len, struct config_errors *errs)
{
    struct stat st;
    char *buf = NULL;
    ssize_t n;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        config_errors_add(errs, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        config_errors_add(errs, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > CONF_MAX_FILE) {
        config_errors_add(errs, "%s: cannot open: %s", path,
                          !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 4 MiB");
        goto fail;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        goto oom;
    while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            config_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    close(fd);
    return buf;
oom:
    config_errors_add(errs, "%s: out of memory", path);
fail:
    free(buf);
    close(fd);
    return NULL;
}

/* libcyaml log callback: keeps the first error and the innermost backtrace line. */
static void cyaml_capture_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    struct cyaml_capture *cap = ctx;
    char line[256], *nl, *pos;

    if (level < CYAML_LOG_ERROR)
        return;
    vsnprintf(line, sizeof(line), fmt, args);
    if ((nl = strchr(line, '\n')) != NULL)
        *nl = '\0';
    if (cap->msg[0] == '\0' && strstr(line, "Backtrace") == NULL) {
        snprintf(cap->msg, sizeof(cap->msg), "%s",
                 strncmp(line, "Load: ", 6) == 0 ? line + 6 : line);
        return;
    }
    if (cap->line == 0 && (pos = strstr(line, "(line: ")) != NULL &&
        sscanf(pos, "(line: %u, column: %u)", &cap->line, &cap->col) == 2) {
        char *q1 = strchr(line, '\''), *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
        if (q1 != NULL && q2 != NULL)
            snprintf(cap->field, sizeof(cap->field), "%.*s", (int)(q2 - q1 - 1), q1 + 1);
    }
}

/*
 * Loads buf with libcyaml. Should never fail after a clean walk; if it does,
 * libcyaml's own message becomes the error line, at the place it names.
 */
static struct raw_config_conf *load_raw(const char *path, const char *buf, size_t len,
                                        const cyaml_config_t *cfg, struct cyaml_capture *cap,
                                        struct config_errors *errs)
{
    struct raw_config_conf *rc = NULL;
    cyaml_err_t err;

    err =
        cyaml_load_data((const uint8_t *)buf, len, cfg, &schema_config, (cyaml_data_t **)&rc, NULL);
    if (err == CYAML_OK && rc != NULL)
        return rc;
    if (err == CYAML_OK)
        config_errors_at(errs, path, 1, 1, "listeners", "missing required key");
    else
        config_errors_at(errs, path, cap->line ? cap->line : 1, cap->line ? cap->col : 1,
                         cap->field, "%s", cap->msg[0] ? cap->msg : cyaml_strerror(err));
    return NULL;
}

/* strdup that records failure in b; NULL stays NULL. */
static char *bdup(struct build *b, const char *s)
{
    char *d;

    if (s == NULL)
        return NULL;
    if ((d = strdup(s)) == NULL)
        b->oom = true;
    return d;
}

/* calloc that records failure in b; 0 elements give NULL without failing. */
static void *bcalloc(struct build *b, size_t n, size_t size)
{
    void *p;

    if (n == 0)
        return NULL;
    if ((p = calloc(n, size)) == NULL)
        b->oom = true;
    return p;
}

/* The value of an optional number, or def when the key was absent. */
static unsigned opt_u(const unsigned *v, unsigned def)
{
    return v != NULL ? *v : def;
}

/* Copy of a host name or SNI pattern: lower-case, without a trailing dot. */
static char *bdup_host(struct build *b, const char *s)
{
    char *d = bdup(b, s);
    size_t len;

    if (d == NULL)
        return NULL;
    for (char *p = d; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    len = strlen(d);
    if (len > 0 && d[len - 1] == '.')
        d[len - 1] = '\0';
    return d;
}

/* Fills a net_addr from an address validate.c already resolved. */
static void build_addr(struct build *b, struct net_addr *a, const char *text,
                       const struct sockaddr_storage *ss, socklen_t len)
{
    a->ss = *ss;
    a->len = len;
    a->text = bdup(b, text);
}

/* Global scalars, timeouts, admin and log. */
static void build_globals(struct build *b, struct config *c, const struct raw_config_conf *rc)
{
    const struct raw_timeouts_conf none = {0};
    const struct raw_timeouts_conf *t = rc->timeouts ? rc->timeouts : &none;
    const char *listen = rc->admin && rc->admin->listen ? rc->admin->listen : CONF_DEF_ADMIN_LISTEN;
    long cpus;

    c->workers = opt_u(rc->workers, 0);
    if (c->workers == 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = cpus < 1 ? 1 : cpus > CONF_MAX_WORKERS ? CONF_MAX_WORKERS : (unsigned)cpus;
    }
    c->max_connections = opt_u(rc->max_connections, CONF_DEF_MAX_CONNECTIONS);
    c->timeouts.client_hello = opt_u(t->client_hello, CONF_DEF_CLIENT_HELLO);
    c->timeouts.handshake = opt_u(t->handshake, CONF_DEF_HANDSHAKE);
    c->timeouts.connect = opt_u(t->connect, CONF_DEF_CONNECT);
    c->timeouts.idle = opt_u(t->idle, CONF_DEF_IDLE);
    c->timeouts.http_request = opt_u(t->http_request, CONF_DEF_HTTP_REQUEST);
    c->timeouts.http_keepalive = opt_u(t->http_keepalive, CONF_DEF_HTTP_KEEPALIVE);
    c->timeouts.drain = opt_u(t->drain, CONF_DEF_DRAIN);
    if (!conf_admin_disabled(listen))
        build_addr(b, &c->admin, listen, &rc->admin_ss, rc->admin_sslen);
    c->log.level = rc->log && rc->log->level ? *rc->log->level : LOG_LEVEL_INFO;
    c->log.format = rc->log && rc->log->format ? *rc->log->format : ACCESS_JSON;
    c->log.access = bdup(b, rc->log && rc->log->access ? rc->log->access : CONF_DEF_ACCESS);
}

/* backends[i].health: "none" unless health: is given, then check: tcp. */
static void build_health(struct build *b, struct health_conf *h, const struct raw_health_conf *r)
{
    const struct raw_health_conf none = {0};

    h->check = r == NULL ? HEALTH_NONE : r->check ? *r->check : HEALTH_TCP;
    if (r == NULL)
        r = &none;
    h->interval = opt_u(r->interval, CONF_DEF_HEALTH_INTERVAL);
    h->timeout = opt_u(r->timeout, CONF_DEF_HEALTH_TIMEOUT);
    h->rise = opt_u(r->rise, CONF_DEF_HEALTH_RISE);
    h->fall = opt_u(r->fall, CONF_DEF_HEALTH_FALL);
    h->path = bdup(b, r->path ? r->path : CONF_DEF_HEALTH_PATH);
    h->expect_status = opt_u(r->expect_status, CONF_DEF_HEALTH_STATUS);
    h->sni = r->sni && *r->sni ? bdup_host(b, r->sni) : NULL;
}

/* One backend and its servers. */
static void build_backend(struct build *b, struct backend *be, const struct raw_backend_conf *r)
{
    be->name = bdup(b, r->name);
    be->balance = r->balance ? *r->balance : BALANCE_ROUNDROBIN;
    be->proxy_protocol = r->proxy_protocol ? *r->proxy_protocol : PP_OFF;
    be->tls.enabled = r->tls != NULL;
    if (r->tls != NULL) {
        be->tls.verify = r->tls->verify ? *r->tls->verify : true;
        be->tls.ca = r->tls->ca && *r->tls->ca ? bdup(b, r->tls->ca) : NULL;
        be->tls.sni = r->tls->sni && *r->tls->sni ? bdup_host(b, r->tls->sni) : NULL;
    }
    build_health(b, &be->health, r->health);
    be->servers = bcalloc(b, r->nservers, sizeof(*be->servers));
    if (be->servers == NULL)
        return;
    be->nservers = r->nservers;
    for (unsigned j = 0; j < r->nservers; j++) {
        struct server *s = &be->servers[j];
        const struct raw_server_conf *rs = &r->servers[j];
        s->name = bdup(b, rs->name);
        build_addr(b, &s->addr, rs->address, &rs->ss, rs->sslen);
        s->weight = opt_u(rs->weight, CONF_DEF_WEIGHT);
        s->max_connections = opt_u(rs->max_connections, 0);
        s->index = j;
        s->backend = be;
    }
    if (!b->oom && balance_build(be) < 0)
        b->oom = true;
}

/* A backend by name; validate.c guarantees it exists. NULL name gives NULL. */
static struct backend *ref(const struct config *c, const char *name)
{
    return name != NULL && *name != '\0' ? config_find_backend(c, name) : NULL;
}

/*
 * A listener by name, for terminate routes; validate.c guarantees it exists.
 * Looked up in the raw config because the runtime listener named may not be
 * built yet: same index in both arrays. NULL name gives NULL.
 */
static struct listener *lref(const struct raw_config_conf *rc, struct config *c, const char *name)
{
    if (name == NULL || *name == '\0' || c->listeners == NULL)
        return NULL;
    for (size_t i = 0; i < rc->nlisteners; i++)
        if (strcmp(rc->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

/* listeners[i].sni_routes */
static void build_sni_routes(struct build *b, struct config *c, const struct raw_config_conf *rc,
                             struct listener *l, const struct raw_listener_conf *r)
{
    l->sni_routes = bcalloc(b, r->nsni_routes, sizeof(*l->sni_routes));
    if (l->sni_routes == NULL)
        return;
    l->nsni_routes = r->nsni_routes;
    for (unsigned j = 0; j < r->nsni_routes; j++) {
        struct sni_route *sr = &l->sni_routes[j];
        sr->pattern = bdup_host(b, r->sni_routes[j].sni);
        sr->wildcard = sr->pattern != NULL && strncmp(sr->pattern, "*.", 2) == 0;
        sr->backend = ref(c, r->sni_routes[j].backend);
        sr->terminate = lref(rc, c, r->sni_routes[j].terminate);
    }
}

/* listeners[i].tls with its defaults. */
static void build_listener_tls(struct build *b, struct listener_tls_conf *t,
                               const struct raw_listener_tls_conf *r)
{
    t->certificates = bcalloc(b, r->ncertificates, sizeof(*t->certificates));
    if (t->certificates != NULL) {
        t->ncertificates = r->ncertificates;
        for (unsigned j = 0; j < r->ncertificates; j++) {
            t->certificates[j].cert = bdup(b, r->certificates[j].cert);
            t->certificates[j].key = bdup(b, r->certificates[j].key);
        }
    }
    t->min_version = bdup(b, r->min_version ? r->min_version : CONF_DEF_MIN_VERSION);
    t->ciphers = bdup(b, r->ciphers ? r->ciphers : "");
    t->ciphersuites = bdup(b, r->ciphersuites ? r->ciphersuites : "");
    t->nalpn = r->alpn ? r->nalpn : 1;
    t->alpn = bcalloc(b, t->nalpn, sizeof(*t->alpn));
    if (t->alpn == NULL)
        t->nalpn = 0;
    for (size_t j = 0; j < t->nalpn; j++)
        t->alpn[j] = bdup(b, r->alpn ? r->alpn[j] : CONF_DEF_ALPN);
    t->session_tickets = r->session_tickets ? *r->session_tickets : true;
    t->ticket_key_file = bdup(b, r->ticket_key_file ? r->ticket_key_file : "");
    t->client_ca = bdup(b, r->client_ca ? r->client_ca : "");
}

/* One rule: match, action, status default by action, target. */
static void build_rule(struct build *b, const struct config *c, struct rule *ru,
                       const struct raw_rule_conf *r)
{
    const struct raw_rule_match_conf *m = r->match;
    char why[128];

    if (m != NULL) {
        ru->match.host = m->host ? bdup_host(b, m->host) : NULL;
        ru->match.path_prefix = bdup(b, m->path_prefix);
        ru->match.method = bdup(b, m->method);
        if (m->src != NULL) {
            ru->match.has_src = validate_parse_cidr(m->src, &ru->match.src_net,
                                                    &ru->match.src_prefix, why, sizeof(why)) == 0;
            ru->match.src_text = bdup(b, m->src);
        }
        if (m->header != NULL) {
            ru->match.header.name = bdup(b, m->header->name);
            ru->match.header.value = bdup(b, m->header->value);
        }
    }
    ru->action = r->action;
    ru->status = r->action == RULE_DENY       ? opt_u(r->status, CONF_DEF_DENY_STATUS)
                 : r->action == RULE_REDIRECT ? opt_u(r->status, CONF_DEF_REDIRECT_STATUS)
                                              : 0;
    ru->location = bdup(b, r->location);
    ru->backend = r->action == RULE_FORWARD ? ref(c, r->backend) : NULL;
}

/* listeners[i].http with its defaults (r may be NULL). */
static void build_http(struct build *b, const struct config *c, struct http_conf *h,
                       const struct raw_http_conf *r)
{
    const struct raw_http_conf none = {0};

    if (r == NULL)
        r = &none;
    h->max_header_bytes = opt_u(r->max_header_bytes, CONF_DEF_MAX_HEADER_BYTES);
    h->forwarded_headers = r->forwarded_headers ? *r->forwarded_headers : true;
    h->hsts = bdup(b, r->hsts ? r->hsts : "");
    h->sticky.enabled = r->sticky != NULL;
    if (r->sticky != NULL) {
        h->sticky.cookie = bdup(b, r->sticky->cookie ? r->sticky->cookie : CONF_DEF_STICKY_COOKIE);
        h->sticky.max_age = opt_u(r->sticky->max_age, 0);
        h->sticky.secret_file = bdup(b, r->sticky->secret_file ? r->sticky->secret_file : "");
    }
    h->rules = bcalloc(b, r->nrules, sizeof(*h->rules));
    if (h->rules != NULL) {
        h->nrules = r->nrules;
        for (unsigned j = 0; j < r->nrules; j++)
            build_rule(b, c, &h->rules[j], &r->rules[j]);
    }
    h->default_backend = ref(c, r->default_backend);
}

/* One listener. */
static void build_listener(struct build *b, struct config *c, const struct raw_config_conf *rc,
                           struct listener *l, const struct raw_listener_conf *r)
{
    l->name = bdup(b, r->name);
    build_addr(b, &l->bind, r->bind, &r->ss, r->sslen);
    l->no_bind = r->no_bind;
    l->mode = r->mode;
    l->proxy_protocol = r->proxy_protocol ? *r->proxy_protocol : PP_OFF;
    l->max_connections = opt_u(r->max_connections, 0);
    if (l->mode == MODE_PASSTHROUGH) {
        build_sni_routes(b, c, rc, l, r);
        l->default_backend = ref(c, r->default_backend);
        l->default_terminate = lref(rc, c, r->default_terminate);
        return;
    }
    l->has_tls = r->tls != NULL;
    if (r->tls != NULL)
        build_listener_tls(b, &l->tls, r->tls);
    build_http(b, c, &l->http, r->http);
}

/*
 * Builds the runtime snapshot from a validated raw config. Returns it with
 * one reference, or NULL (out of memory, noted in errs).
 */
static struct config *build_config(const struct raw_config_conf *rc, const char *path,
                                   struct config_errors *errs)
{
    struct build b = {.oom = false};
    struct config *c = calloc(1, sizeof(*c));

    if (c == NULL)
        goto oom;
    atomic_init(&c->refs, 1);
    c->path = bdup(&b, path);
    build_globals(&b, c, rc);
    c->backends = bcalloc(&b, rc->nbackends, sizeof(*c->backends));
    if (c->backends != NULL)
        c->nbackends = rc->nbackends;
    for (size_t i = 0; i < c->nbackends; i++)
        build_backend(&b, &c->backends[i], &rc->backends[i]);
    c->listeners = bcalloc(&b, rc->nlisteners, sizeof(*c->listeners));
    if (c->listeners != NULL)
        c->nlisteners = rc->nlisteners;
    for (size_t i = 0; i < c->nlisteners; i++) {
        c->listeners[i].index = (unsigned)i;
        build_listener(&b, c, rc, &c->listeners[i], &rc->listeners[i]);
    }
    if (!b.oom)
        return c;
    config_unref(c);
oom:
    config_errors_add(errs, "%s: out of memory while building the configuration", path);
    return NULL;
}

/* Reads the cookie HMAC key of every listener with sticky:. Returns the number of errors. */
static unsigned load_sticky_keys(struct config *c, const struct yaml_lines *yl,
                                 struct config_errors *errs)
{
    unsigned nerr = 0;

    for (size_t i = 0; i < c->nlisteners; i++) {
        struct sticky_conf *sc = &c->listeners[i].http.sticky;
        char key[80], why[256];
        unsigned line, col;

        if (!sc->enabled || sticky_key_load(sc->secret_file, sc->key, why, sizeof(why)) == 0)
            continue;
        snprintf(key, sizeof(key), "listeners[%zu].http.sticky.secret_file", i);
        yaml_lines_locate(yl, key, &line, &col);
        config_errors_at(errs, c->path, line, col, key, "%s", why);
        nerr++;
    }
    return nerr;
}

/* See config.h. */
struct config *config_load(const char *path, struct config_errors *errs)
{
    struct cyaml_capture cap = {.line = 0};
    cyaml_config_t cfg = {
        .log_fn = cyaml_capture_log,
        .log_ctx = &cap,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_NO_ALIAS,
    };
    struct raw_config_conf *rc = NULL;
    struct yaml_lines *yl = NULL;
    struct config *c = NULL;
    unsigned nerr = 0;
    size_t len = 0;
    char *buf;

    if ((buf = read_config_file(path, &len, errs)) == NULL)
        return NULL;
    yl = yaml_lines_scan(path, buf, len, &schema_config, errs, &nerr);
    if (yl == NULL)
        config_errors_add(errs, "%s: out of memory while reading", path);
    if (yl == NULL || nerr > 0)
        goto done;
    if ((rc = load_raw(path, buf, len, &cfg, &cap, errs)) == NULL)
        goto done;
    if (validate_config(rc, path, yl, errs) == 0)
        c = build_config(rc, path, errs);
    if (c != NULL && load_sticky_keys(c, yl, errs) > 0) {
        config_unref(c);
        c = NULL;
    }
    if (c != NULL && tls_config_build(c, yl, errs) > 0) {
        config_unref(c);
        c = NULL;
    }
    cyaml_free(&cfg, &schema_config, rc, 0);
done:
    yaml_lines_free(yl);
    free(buf);
    return c;
}

/* See config.h. */
struct config *config_ref(struct config *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

/* Frees a net_addr's text. */
static void free_addr(struct net_addr *a)
{
    free(a->text);
}

/* Frees what build_backend allocated, including the ring balance_build made. */
static void free_backend(struct backend *be)
{
    free(be->name);
    free(be->tls.ca);
    free(be->tls.sni);
    free(be->health.path);
    free(be->health.sni);
    for (size_t j = 0; j < be->nservers; j++) {
        free(be->servers[j].name);
        free_addr(&be->servers[j].addr);
    }
    free(be->servers);
    balance_free(be);
}

/* Frees what build_listener_tls allocated. */
static void free_listener_tls(struct listener_tls_conf *t)
{
    for (size_t j = 0; j < t->ncertificates; j++) {
        free(t->certificates[j].cert);
        free(t->certificates[j].key);
    }
    free(t->certificates);
    free(t->min_version);
    free(t->ciphers);
    free(t->ciphersuites);
    for (size_t j = 0; j < t->nalpn; j++)
        free(t->alpn[j]);
    free(t->alpn);
    free(t->ticket_key_file);
    free(t->client_ca);
}

/* Frees what build_http allocated. */
static void free_http(struct http_conf *h)
{
    free(h->hsts);
    free(h->sticky.cookie);
    free(h->sticky.secret_file);
    for (size_t j = 0; j < h->nrules; j++) {
        struct rule *r = &h->rules[j];
        free(r->match.host);
        free(r->match.path_prefix);
        free(r->match.method);
        free(r->match.src_text);
        free(r->match.header.name);
        free(r->match.header.value);
        free(r->location);
    }
    free(h->rules);
}

/* Frees what build_listener allocated. */
static void free_listener(struct listener *l)
{
    free(l->name);
    free_addr(&l->bind);
    for (size_t j = 0; j < l->nsni_routes; j++)
        free(l->sni_routes[j].pattern);
    free(l->sni_routes);
    free_listener_tls(&l->tls);
    free_http(&l->http);
}

/* See config.h. */
void config_unref(struct config *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    tls_config_free(c);
    for (size_t i = 0; i < c->nbackends; i++)
        free_backend(&c->backends[i]);
    free(c->backends);
    for (size_t i = 0; i < c->nlisteners; i++)
        free_listener(&c->listeners[i]);
    free(c->listeners);
    free(c->path);
    free_addr(&c->admin);
    free(c->log.access);
    free(c);
}

/* See config.h. */
struct backend *config_find_backend(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nbackends; i++)
        if (c->backends[i].name != NULL && strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}
