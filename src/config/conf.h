/*
 * Private to src/config: the raw structs libcyaml fills from the YAML (one per
 * section, see schema.c) and the prototypes the config files share.
 *
 * Raw structs hold exactly what the file said: an optional scalar is a
 * pointer that stays NULL when its key is absent, so defaults are applied in
 * one place (config.c) and "absent" is never confused with "0". Sequence
 * counts sit beside their arrays. Fields marked "not from YAML" are left zero
 * by libcyaml and filled by validate.c for config.c.
 */
#ifndef TLSGATE_CONFIG_CONF_H
#define TLSGATE_CONFIG_CONF_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdbool.h>

#include "config.h"

struct raw_timeouts_conf {
    unsigned *client_hello;
    unsigned *handshake;
    unsigned *connect;
    unsigned *idle;
    unsigned *http_request;
    unsigned *http_keepalive;
    unsigned *drain;
};

struct raw_admin_conf {
    char *listen; /* "" or "off" = disabled */
};

struct raw_log_conf {
    enum log_level *level;
    char *access; /* stderr | stdout | off | a path */
    enum access_format *format;
};

struct raw_health_conf {
    enum health_check *check;
    unsigned *interval;
    unsigned *timeout;
    unsigned *rise;
    unsigned *fall;
    char *path;
    unsigned *expect_status;
    char *sni; /* tls only */
};

struct raw_backend_tls_conf {
    bool *verify;
    char *ca;
    char *sni;
};

struct raw_server_conf {
    char *name;
    char *address;
    unsigned *weight;
    unsigned *max_connections;
    struct sockaddr_storage ss; /* not from YAML: address resolved by validate */
    socklen_t sslen;            /* not from YAML: 0 until resolved */
};

struct raw_backend_conf {
    char *name;
    enum balance_algo *balance;
    enum pp_version *proxy_protocol;
    struct raw_backend_tls_conf *tls; /* NULL = plain TCP to servers */
    struct raw_health_conf *health;   /* NULL = no checks */
    struct raw_server_conf *servers;
    unsigned nservers;
};

struct raw_sni_route_conf {
    char *sni;
    char *backend;   /* exactly one of backend and terminate */
    char *terminate; /* name of an offload/bridge listener */
};

struct raw_cert_conf {
    char *cert;
    char *key;
};

struct raw_listener_tls_conf {
    struct raw_cert_conf *certificates;
    unsigned ncertificates;
    char *min_version;
    char *ciphers;
    char *ciphersuites;
    char **alpn; /* NULL = default [http/1.1] */
    unsigned nalpn;
    bool *session_tickets;
    char *ticket_key_file;
    char *client_ca;
};

struct raw_header_match_conf {
    char *name;
    char *value;
};

struct raw_rule_match_conf {
    char *src;
    char *host;
    char *path_prefix;
    char *method;
    struct raw_header_match_conf *header;
};

struct raw_rule_conf {
    struct raw_rule_match_conf *match; /* NULL = every request */
    enum rule_action action;
    unsigned *status;
    char *location;
    char *backend;
};

struct raw_sticky_conf {
    char *cookie;
    unsigned *max_age;
    char *secret_file;
};

struct raw_http_conf {
    unsigned *max_header_bytes;
    bool *forwarded_headers;
    char *hsts;
    struct raw_sticky_conf *sticky; /* NULL = no stickiness */
    struct raw_rule_conf *rules;
    unsigned nrules;
    char *default_backend;
};

struct raw_listener_conf {
    char *name;
    char *bind;
    enum listener_mode mode;
    enum pp_version *proxy_protocol;
    unsigned *max_connections;
    struct raw_sni_route_conf *sni_routes;
    unsigned nsni_routes;
    char *default_backend;
    char *default_terminate; /* passthrough: instead of default_backend */
    struct raw_listener_tls_conf *tls;
    struct raw_http_conf *http;
    struct sockaddr_storage ss; /* not from YAML: bind resolved by validate */
    socklen_t sslen;            /* not from YAML: 0 until resolved */
    bool no_bind;               /* not from YAML: bind is "none" */
};

/* The bind value of a listener reached only through terminate routes. */
#define CONF_BIND_NONE "none"

struct raw_config_conf {
    unsigned *workers;
    unsigned *max_connections;
    struct raw_timeouts_conf *timeouts;
    struct raw_admin_conf *admin;
    struct raw_log_conf *log;
    struct raw_backend_conf *backends;
    unsigned nbackends;
    struct raw_listener_conf *listeners;
    unsigned nlisteners;
    struct sockaddr_storage admin_ss; /* not from YAML: admin.listen resolved */
    socklen_t admin_sslen;            /* not from YAML: 0 = disabled/unresolved */
};

/* schema.c: the top-level schema; its value is a struct raw_config_conf *. */
extern const cyaml_schema_value_t schema_config;

struct yaml_lines;

/* validate.c: checks meaning; returns the number of errors appended to errs. */
unsigned validate_config(struct raw_config_conf *rc, const char *file, const struct yaml_lines *yl,
                         struct config_errors *errs);

/* validate.c: NULL when name is a valid host name (wildcard: or "*.x" SNI
 * pattern), else the reason. One trailing dot is allowed. */
const char *validate_hostname(const char *name, bool wildcard);

/* validate.c: parses "10.0.0.0/8", "2001:db8::/32" or one address (full
 * prefix) with host bits cleared. Returns 0, or -1 with why filled. */
int validate_parse_cidr(const char *text, struct sockaddr_storage *net, unsigned *prefix, char *why,
                        size_t why_len);

/* errors.c */
int config_errors_vadd(struct config_errors *errs, const char *fmt, va_list ap);
int config_errors_at(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                     const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Default values from SPEC.md, shared by validate.c (checks) and config.c (build). */
#define CONF_DEF_MAX_CONNECTIONS  20000
#define CONF_DEF_CLIENT_HELLO     5000
#define CONF_DEF_HANDSHAKE        10000
#define CONF_DEF_CONNECT          3000
#define CONF_DEF_IDLE             60000
#define CONF_DEF_HTTP_REQUEST     10000
#define CONF_DEF_HTTP_KEEPALIVE   15000
#define CONF_DEF_DRAIN            15000
#define CONF_DEF_ADMIN_LISTEN     "127.0.0.1:9900"
#define CONF_DEF_ACCESS           "stderr"
#define CONF_DEF_HEALTH_INTERVAL  2000
#define CONF_DEF_HEALTH_TIMEOUT   1000
#define CONF_DEF_HEALTH_RISE      2
#define CONF_DEF_HEALTH_FALL      3
#define CONF_DEF_HEALTH_PATH      "/healthz"
#define CONF_DEF_HEALTH_STATUS    200
#define CONF_DEF_WEIGHT           1
#define CONF_DEF_MIN_VERSION      "1.2"
#define CONF_DEF_ALPN             "http/1.1"
#define CONF_DEF_MAX_HEADER_BYTES 16384
#define CONF_DEF_STICKY_COOKIE    "TLSGW"
#define CONF_DEF_DENY_STATUS      403
#define CONF_DEF_REDIRECT_STATUS  302
#define CONF_MAX_WORKERS          256

/* True when an admin.listen value means "no admin listener". */
bool conf_admin_disabled(const char *listen);

#endif
