/*
 * tlsgate compare: drives the same HTTP load at several listeners of one
 * configuration, in turn, and reports them side by side.
 *
 *   src/lab/loadgen.c  the load generator: libevent threads, one state machine
 *                      per connection (connect, TLS handshake, request,
 *                      response), latency histogram;
 *   src/lab/compare.c  options, targets derived from the configuration, gateway
 *                      CPU from the admin endpoint, the text table;
 *   src/lab/report.c   the self-contained HTML report (inline SVG charts).
 */
#ifndef TLSGATE_COMPARE_H
#define TLSGATE_COMPARE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

/* Latency histogram: log-linear buckets of microseconds, ~1.6% resolution. */
#define LAT_SUB     64   /* sub-buckets per power of two */
#define LAT_BUCKETS 2048 /* covers values up to ~2^36 us (19 hours) */

struct lat_hist {
    uint64_t count;          /* values recorded */
    uint64_t sum;            /* their sum, us */
    uint64_t min;            /* smallest value, us (valid if count) */
    uint64_t max;            /* largest value, us */
    uint64_t b[LAT_BUCKETS]; /* values per bucket */
};

/* Records one latency of usec microseconds. */
void lat_hist_add(struct lat_hist *h, uint64_t usec);

/* Adds every value of src to dst. */
void lat_hist_merge(struct lat_hist *dst, const struct lat_hist *src);

/* The latency (us) below which pct percent (0..100) of the values lie; 0 if empty. */
uint64_t lat_hist_percentile(const struct lat_hist *h, double pct);

/* Where and what the load generator sends. */
struct loadgen_target {
    struct sockaddr_storage ss; /* address to connect to */
    socklen_t len;              /* length of ss */
    bool tls;                   /* speak TLS (no certificate verification) */
    const char *sni;            /* SNI to send with tls; NULL = none */
    const char *host;           /* Host header value */
    const char *path;           /* request target, e.g. "/" */
};

/* How hard and how long. */
struct loadgen_opts {
    unsigned connections;        /* concurrent connections, >= 1 */
    unsigned threads;            /* event loops, 1..connections */
    unsigned duration_ms;        /* measured run length */
    unsigned timeout_ms;         /* a request slower than this is an error */
    bool new_connections;        /* one request per connection, full handshake each */
    volatile sig_atomic_t *stop; /* optional: set to non-zero to end the run early */
};

/* Response statistics and what one sampled response looked like. */
struct loadgen_result {
    uint64_t requests;    /* responses completed within the run */
    uint64_t status[6];   /* by class: [0] other, [1] 1xx (unused) .. [5] 5xx */
    uint64_t err_connect; /* connect() failed or was refused */
    uint64_t err_tls;     /* TLS handshake failed */
    uint64_t err_io;      /* reset, EOF before a whole response, read/write errors */
    uint64_t err_timeout; /* no whole response within timeout_ms */
    uint64_t err_http;    /* malformed response */
    uint64_t connects;    /* TCP connections established */
    uint64_t handshakes;  /* TLS handshakes completed */
    uint64_t resumed;     /* ... of which resumed a session (should stay 0) */
    uint64_t bytes_in;    /* response bytes (plaintext) */
    double elapsed_s;     /* measured time */
    bool aborted;         /* stop was set before the end */
    struct lat_hist hist; /* latency of completed requests */
    uint64_t *series;     /* requests completed per 100 ms slot, owned */
    size_t nseries;       /* slots in series */
    int sample_status;    /* status of the sampled response, 0 = none */
    char *sample_head;    /* its head (NUL-terminated, bounded), owned, or NULL */
    char *sample_body;    /* its body (NUL-terminated, bounded), owned, or NULL */
};

#define LOADGEN_SLOT_MS 100 /* width of a series slot */

/*
 * Runs the load against t. Fills r (zero it first; release with
 * loadgen_result_free). Returns 0, or -1 if the run could not be set up
 * (message on stderr); failures of individual connections are counted, not
 * fatal.
 */
int loadgen_run(const struct loadgen_target *t, const struct loadgen_opts *o,
                struct loadgen_result *r);

/* Errors of every kind plus responses with a 4xx/5xx status. */
uint64_t loadgen_errors(const struct loadgen_result *r);

/* Frees what r owns and zeroes it. */
void loadgen_result_free(struct loadgen_result *r);

/* What to compare: the command line of "tlsgate compare", also used by demo. */
struct compare_opts {
    const char *config;          /* gateway configuration file (-c) */
    const char **listeners;      /* listener names, in order; none = all */
    size_t nlisteners;           /* entries of listeners */
    unsigned connections;        /* --connections */
    unsigned threads;            /* --threads, 0 = one per CPU (at most 2... connections) */
    unsigned duration_ms;        /* --duration per listener */
    unsigned timeout_ms;         /* --timeout per request */
    bool new_connections;        /* --new-connections */
    const char *path;            /* --path */
    const char *sni;             /* --sni: overrides the name derived from the listener */
    const char *report;          /* --report FILE, or NULL */
    bool quiet;                  /* no progress lines on stderr */
    volatile sig_atomic_t *stop; /* optional: abort between and within runs */
};

/* One compared listener: its description and what the run measured. */
struct compare_row {
    char *listener;            /* name */
    char *mode;                /* "passthrough", "offload", "bridge", "http" */
    char *address;             /* where the load went, "ip:port" */
    char *sni;                 /* SNI / Host used */
    bool tls;                  /* TLS at the front */
    struct loadgen_result res; /* the run */
    double rps;                /* requests / elapsed */
    double hs_rate;            /* handshakes / elapsed */
    bool cpu_ok;               /* gateway CPU could be read */
    bool cpu_per_listener;     /* ... from the per-listener counter (else the process one) */
    double cpu_us_per_req;     /* gateway CPU microseconds per request */
    char *origin_view;         /* what the origin saw (from the sampled response) */
    char *sees;                /* what the gateway could see in this mode */
    char *features;            /* what the mode allowed, from the listener's config */
};

/*
 * Runs the comparison described by o and prints the table to out. Returns
 * the exit code: 0, 1 (bad configuration or usage, printed), 2 (a listener
 * could not be driven at all, or the report could not be written).
 */
int compare_run(const struct compare_opts *o, FILE *out);

/* Entry point of "tlsgate compare [options]"; argv[0] is "compare". */
int compare_main(int argc, char **argv);

/*
 * Writes the HTML report of rows to path: one self-contained page (inline
 * CSS and SVG). Returns 0, or -1 with errno set.
 */
int report_write(const char *path, const struct compare_opts *o, const struct compare_row *rows,
                 size_t nrows);

#endif
