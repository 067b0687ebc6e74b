/*
 * Private to src/health: the pieces health.c (the checker) puts together.
 *
 *   health_state.c   the per-server state machine: rise/fall counting of
 *                    active checks, passive ejection, the retry of check: none,
 *                    jitter and the carry-over of state on reload. Pure: no
 *                    clock, no log, no I/O, so it is unit tested as is.
 *   health_parse.c   the status line of an http check's answer.
 *   health_probe.c   one check of one server on the event loop.
 */
#ifndef TLSGATE_HEALTH_INT_H
#define TLSGATE_HEALTH_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config-t.h"

struct event_base;

/* What a report did to a server's state; the caller logs a transition once. */
enum health_change {
    HEALTH_SAME,
    HEALTH_WENT_DOWN,
    HEALTH_WENT_UP,
};

/*
 * An active check of srv finished (main thread). Records the result and
 * reason for /stats; fall consecutive failures while up mark the server
 * down, rise consecutive passes while down mark it up (whoever put it down:
 * a check or passive ejection). rise and fall come from srv's backend.
 */
enum health_change health_state_check(struct server *srv, bool ok, const char *reason);

/* What a passive report is about; each kind has its own count. */
enum health_passive {
    HEALTH_PASSIVE_CONNECT, /* a connect: ok, or refused / timed out */
    HEALTH_PASSIVE_ANSWER,  /* an HTTP answer: ok, or 5xx */
};

/*
 * A worker saw a connect to srv, or an answer from it, succeed or fail. A
 * success resets the count of its kind: a server that accepts connections
 * and answers 500 to each is ejected all the same. The backend's `fall`
 * consecutive failures of one kind eject srv at now_ms, unless it is the
 * last server of its backend that is up: passive ejection never empties a
 * backend (checks may). Any thread.
 */
enum health_change health_state_passive(struct server *srv, enum health_passive what, bool ok,
                                        uint64_t now_ms);

/*
 * check: none: a passively ejected server is given back retry_ms after its
 * ejection, for another try (main thread).
 */
enum health_change health_state_retry(struct server *srv, unsigned retry_ms, uint64_t now_ms);

/* True when every other server of srv's backend is down. */
bool health_state_last_up(const struct server *srv);

/*
 * The server of old with the same backend name, server name and address
 * text as srv (of a new snapshot), or NULL. old may be NULL.
 */
const struct server *health_state_match(const struct config *old, const struct server *srv);

/*
 * Gives to (a server of a new snapshot, not yet in use) the state and
 * counters of from. With checks (active true) a down server stays down
 * until checks bring it up; without, only a passive ejection is carried
 * (its retry time with it): nothing could ever bring back a server that
 * checks had put down.
 */
void health_state_carry(struct server *to, const struct server *from, bool active);

/*
 * Milliseconds until the next check: interval +-15% (r is a random number),
 * so checks of many servers do not march in step. At least 1.
 */
unsigned health_jitter(unsigned interval, uint32_t r);

/* Delay of a server's first check: anywhere in [0, interval), spread by r. */
unsigned health_first_delay(unsigned interval, uint32_t r);

/* What health_parse_status() found in the first bytes of an answer. */
enum health_parse {
    HEALTH_PARSE_MORE, /* no whole status line yet */
    HEALTH_PARSE_BAD,  /* not an HTTP/1.x status line */
    HEALTH_PARSE_DONE, /* *status set */
};

/* Longest status line an http check waits for. */
#define HEALTH_STATUS_LINE_MAX 512

/*
 * Parses "HTTP/1.x NNN[ reason]\r\n" at the start of buf (len bytes, not
 * NUL-terminated). MORE until a line feed arrives (BAD past
 * HEALTH_STATUS_LINE_MAX bytes, or as soon as a byte cannot fit).
 */
enum health_parse health_parse_status(const char *buf, size_t len, unsigned *status);

/* ---- health_probe.c ---- */

struct health_probe;

/* Called once when a probe ends; the probe is already freed. reason is for logs and /stats. */
typedef void (*health_probe_done)(void *arg, bool ok, const char *reason);

/*
 * The SSL_CTX of a backend's tls checks: no ALPN, no session resumption (each
 * check is a full handshake), chain and name verified only when the backend
 * has tls with verify (its CA, else the system's). NULL when it cannot be
 * made, with why filled.
 */
SSL_CTX *health_probe_tls_ctx(const struct backend *be, char *why, size_t why_len);

/*
 * Starts the backend's check kind (tcp, tls or http) on srv, bounded by its
 * timeout. tls_ctx: the backend's from health_probe_tls_ctx (tls checks
 * only). done is called later, never from here. Returns the probe, or NULL
 * when it could not start (why filled: the check counts as failed).
 */
struct health_probe *health_probe_start(struct event_base *base, const struct server *srv,
                                        SSL_CTX *tls_ctx, health_probe_done done, void *arg,
                                        char *why, size_t why_len);

/* Stops p and frees everything it holds; done is not called. NULL is ignored. */
void health_probe_cancel(struct health_probe *p);

#endif
