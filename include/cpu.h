/*
 * Gateway CPU time attributed per listener (src/admin/cpu.c).
 *
 * Each worker thread reads its own CPU clock on a 100 ms timer and splits
 * what it used since the last reading over the listeners in proportion to
 * the work the data path reported meanwhile (cpu_work(), fed by metrics.c).
 * No system call per event: one clock read per worker per 100 ms.
 */
#ifndef TLSGATE_CPU_H
#define TLSGATE_CPU_H

#include <stdint.h>

#include "config-t.h"

struct worker;

/*
 * Work units, roughly nanoseconds of gateway CPU each thing costs; only their
 * ratios matter (see the comment at the top of cpu.c for where they come from).
 */
#define CPU_W_CONN      20000  /* a client connection: accept, backend connect, close, log */
#define CPU_W_HANDSHAKE 300000 /* a TLS handshake at the gateway (public-key operations) */
#define CPU_W_REQUEST   5000   /* an HTTP request: parse, rules, forward, log line */

/* Work units per relayed byte on a listener of this mode (more TLS legs, more crypto). */
unsigned cpu_byte_weight(enum listener_mode mode);

/*
 * Credits units of work to listener l on the calling thread's worker. A plain
 * add into that worker's own array; a no-op on threads that are not workers.
 */
void cpu_work(const struct listener *l, uint64_t units);

/*
 * Sets up w's accounting (state and its 100 ms timer on w->base), called once
 * the base exists. Returns 0 or -1 (out of memory). Freed by cpu_worker_free().
 */
int cpu_worker_init(struct worker *w);

/* On the worker's thread, before its loop runs: makes cpu_work() count for w. */
void cpu_worker_enter(struct worker *w);

/* On the worker's thread, after its loop ended: attributes the last slice, stops counting. */
void cpu_worker_leave(struct worker *w);

/* Frees what cpu_worker_init() took (safe on a worker where it never ran). */
void cpu_worker_free(struct worker *w);

/* Process-wide, in nanoseconds: CPU of all worker threads sampled so far. */
uint64_t cpu_workers_nsec(void);

/* Process-wide, in nanoseconds: worker CPU no listener's work explains (idle loop, timers). */
uint64_t cpu_unattributed_nsec(void);

#endif
