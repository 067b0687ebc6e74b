/*
 * Runtime configuration types: what a validated YAML file becomes.
 *
 * The YAML is read by libcyaml into private *_conf structs (src/config/schema.c),
 * checked by src/config/validate.c, then built into these structs. A struct
 * config is one immutable snapshot: workers read it without locks; the only
 * fields that change after build are the atomics marked "live".
 */
#ifndef TLSGATE_CONFIG_T_H
#define TLSGATE_CONFIG_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum listener_mode {
    MODE_PASSTHROUGH, /* peek the ClientHello, relay raw TCP */
    MODE_OFFLOAD,     /* terminate TLS, plain HTTP to backends */
    MODE_BRIDGE,      /* terminate TLS, TLS again to backends */
    MODE_HTTP,        /* no TLS at the front */
};

enum balance_algo {
    BALANCE_ROUNDROBIN,
    BALANCE_LEASTCONN,
    BALANCE_SOURCE, /* consistent hash of the client address */
    BALANCE_RANDOM,
};

enum pp_version {
    PP_OFF,
    PP_V1,
    PP_V2,
    PP_ANY, /* listeners only: accept either version */
};

enum health_check {
    HEALTH_NONE,
    HEALTH_TCP,
    HEALTH_TLS,
    HEALTH_HTTP,
};

enum log_level {
    LOG_LEVEL_ERROR,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

enum access_format {
    ACCESS_JSON,
    ACCESS_TEXT,
};

enum rule_action {
    RULE_DENY,
    RULE_REDIRECT,
    RULE_FORWARD,
};

/* A resolved socket address and the text it came from. */
struct net_addr {
    struct sockaddr_storage ss; /* resolved address (first getaddrinfo result) */
    socklen_t len;              /* length of ss in use */
    char *text;                 /* as written in the file, e.g. "127.0.0.1:9080" */
};

/* All in milliseconds. */
struct timeouts_conf {
    unsigned client_hello;   /* passthrough: whole ClientHello must arrive by then */
    unsigned handshake;      /* TLS handshake at the gateway */
    unsigned connect;        /* to a backend server */
    unsigned idle;           /* no bytes either way */
    unsigned http_request;   /* whole request head */
    unsigned http_keepalive; /* idle between requests */
    unsigned drain;          /* graceful stop / reload */
};

struct log_conf {
    enum log_level level;
    char *access;              /* "stderr" | "stdout" | "off" | a path */
    enum access_format format; /* json | text */
};

struct health_conf {
    enum health_check check;
    unsigned interval;      /* ms between checks */
    unsigned timeout;       /* ms for one check */
    unsigned rise;          /* consecutive successes to mark up */
    unsigned fall;          /* consecutive failures to mark down */
    char *path;             /* http only */
    unsigned expect_status; /* http only */
    char *sni; /* tls only: SNI of the check's handshake; NULL = tls.sni, else the server host */
};

/* TLS towards the servers of a backend (bridge listeners need it). */
struct backend_tls_conf {
    bool enabled; /* "tls:" present */
    bool verify;  /* verify chain against ca and name against sni */
    char *ca;     /* CA file path, NULL = system default */
    char *sni;    /* SNI and name to verify; NULL = server address host */
};

/* Live counters of a listener, fed by metrics.c (all relaxed atomics). */
#define METRICS_HS_BUCKETS 12 /* TLS handshake latency buckets, see metrics.c */
struct listener_stats {
    atomic_ullong conns_total;
    atomic_ullong conns_refused; /* closed at accept: a max_connections limit was reached */
    atomic_ullong bytes_in;      /* from clients */
    atomic_ullong bytes_out;     /* to clients */
    atomic_ullong handshakes_ok;
    atomic_ullong handshakes_failed;
    atomic_ullong handshake_buckets[METRICS_HS_BUCKETS]; /* count per bucket, not cumulative */
    atomic_ullong handshake_usec_sum;
    atomic_ullong requests[6]; /* by status class: [0] none, [1] 1xx .. [5] 5xx */
    atomic_ullong cpu_nsec;    /* gateway CPU time attributed to this listener */
};

struct server_stats {
    atomic_ullong picks; /* connections or requests sent to the server */
};

/* What the last active check of a server said. */
enum health_result {
    HEALTH_RESULT_NONE, /* no check finished yet (or check: none) */
    HEALTH_RESULT_OK,
    HEALTH_RESULT_FAILED,
};

/*
 * Health of a server (src/health/). The workers write the passive counts and,
 * when they eject the server, ejected_ms and down; the checker on the main
 * thread writes the rest. The plain fields are main thread only: the checker
 * and the admin endpoint that shows them run on that thread.
 */
struct server_health {
    atomic_uint connect_fails;    /* live: consecutive failed connects (a connect resets it) */
    atomic_uint status_fails;     /* live: consecutive 5xx answers (another answer resets it) */
    atomic_ullong ejected_ms;     /* live: monotonic ms of a passive ejection in force, 0 = none */
    atomic_ullong check_failures; /* live: failed active checks, total */
    atomic_ullong went_down;      /* live: transitions up -> down, total */
    atomic_ullong went_up;        /* live: transitions down -> up, total */
    unsigned rise_count;          /* main thread: consecutive passed checks while down */
    unsigned fall_count;          /* main thread: consecutive failed checks while up */
    enum health_result last;      /* main thread: result of the last check */
    char last_reason[96];         /* main thread: what the last check saw */
};

struct backend;
struct listener;
struct tls_server; /* src/tls/tls_server.c: a listener's SSL_CTXs */
struct tls_client; /* src/tls/tls_client.c: a backend's SSL_CTX and session cache */

struct server {
    char *name;                /* unique within its backend */
    struct net_addr addr;      /* where to connect */
    unsigned weight;           /* relative share for roundrobin/random/source */
    unsigned max_connections;  /* 0 = unlimited */
    unsigned index;            /* position in backend->servers */
    struct backend *backend;   /* owner */
    atomic_uint active;        /* live: open connections to this server */
    atomic_bool down;          /* live: set by health checks / ejection */
    struct server_stats stats; /* live */
    /* live (partly main thread only): see struct server_health */
    struct server_health health;
};

/* Consistent-hash ring for BALANCE_SOURCE, built by balance_build(). */
struct hash_ring_point {
    uint32_t hash;   /* position on the ring */
    uint32_t server; /* index into backend->servers */
};

struct backend {
    char *name; /* unique */
    enum balance_algo balance;
    enum pp_version proxy_protocol; /* PP_OFF, PP_V1 or PP_V2: header sent to servers */
    struct backend_tls_conf tls;
    struct health_conf health;
    struct server *servers; /* array of nservers, owned */
    size_t nservers;
    struct hash_ring_point *ring; /* sorted by hash, owned; NULL unless source */
    size_t nring;
    atomic_uint rr_next;           /* live: roundrobin cursor */
    struct tls_client *tls_client; /* owned; NULL unless tls.enabled */
};

/* One sni_routes entry of a passthrough listener. */
struct sni_route {
    char *pattern;           /* lower-case, no trailing dot; "*.x.test" kept as written */
    bool wildcard;           /* pattern starts with "*." and matches exactly one label */
    struct backend *backend; /* where matching connections go (not owned); NULL with terminate */
    /* or: the offload/bridge listener (bind: none or not) that terminates matching
     * connections in-process on the same socket (not owned); NULL with backend */
    struct listener *terminate;
};

struct cert_conf {
    char *cert; /* PEM certificate (chain) path */
    char *key;  /* PEM private key path; read at load, never logged */
};

struct listener_tls_conf {
    struct cert_conf *certificates; /* first is the default */
    size_t ncertificates;
    char *min_version; /* "1.2" | "1.3" */
    char *ciphers;     /* TLS 1.2 list; "" = safe default */
    char *ciphersuites;
    char **alpn; /* protocol names */
    size_t nalpn;
    bool session_tickets;
    char *ticket_key_file; /* "" = none */
    char *client_ca;       /* "" = no client certificates */
};

struct header_match {
    char *name;  /* header name, compared case-insensitively */
    char *value; /* exact value */
};

struct rule_match {
    char *host;                      /* NULL = any; lower-case */
    char *path_prefix;               /* NULL = any */
    char *method;                    /* NULL = any */
    bool has_src;                    /* src CIDR given */
    struct sockaddr_storage src_net; /* network address of the CIDR */
    unsigned src_prefix;             /* prefix length */
    char *src_text;                  /* as written */
    struct header_match header;      /* name NULL = no header match */
};

struct rule {
    struct rule_match match;
    enum rule_action action;
    unsigned status;         /* deny/redirect status */
    char *location;          /* redirect template: {host} {uri} {path} {query} */
    struct backend *backend; /* forward target (not owned) */
};

struct sticky_conf {
    bool enabled;      /* "sticky:" present */
    char *cookie;      /* cookie name */
    unsigned max_age;  /* seconds; 0 = session cookie */
    char *secret_file; /* HMAC key file; "" = random key per process */
    uint8_t key[32];   /* HMAC key read from secret_file at load (STICKY_KEY_LEN) */
};

struct http_conf {
    unsigned max_header_bytes;
    bool forwarded_headers;
    char *hsts; /* "" = no header */
    struct sticky_conf sticky;
    struct rule *rules;
    size_t nrules;
    struct backend *default_backend; /* NULL = 404 when no rule forwards (not owned) */
};

struct listener {
    char *name;
    struct net_addr bind;
    bool no_bind; /* "bind: none": reached only through a passthrough listener's terminate route */
    enum listener_mode mode;
    enum pp_version proxy_protocol; /* accepted from a balancer in front */
    unsigned max_connections;       /* 0 = only the process limit */
    unsigned index;                 /* position in config->listeners */
    /* passthrough */
    struct sni_route *sni_routes;
    size_t nsni_routes;
    struct backend *default_backend;    /* passthrough: no/unknown SNI; NULL = close */
    struct listener *default_terminate; /* passthrough: or terminate those here (not owned) */
    /* offload / bridge */
    bool has_tls;
    struct listener_tls_conf tls;
    struct tls_server *tls_server; /* owned; NULL unless has_tls */
    /* offload / bridge / http */
    struct http_conf http;
    atomic_uint active;          /* live: open client connections */
    struct listener_stats stats; /* live */
};

struct config {
    char *path;       /* the file this came from */
    unsigned workers; /* resolved: never 0 after build */
    unsigned max_connections;
    struct timeouts_conf timeouts;
    struct net_addr admin; /* admin.listen; text NULL = disabled */
    struct log_conf log;
    struct backend *backends;
    size_t nbackends;
    struct listener *listeners;
    size_t nlisteners;
    atomic_uint refs; /* live: snapshot references (reload) */
};

#endif
