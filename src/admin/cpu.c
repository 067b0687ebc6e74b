/*
 * Gateway CPU time per listener, without a system call per event.
 *
 * Every worker thread reads its own CPU clock (CLOCK_THREAD_CPUTIME_ID) on a
 * 100 ms timer: one clock_gettime per worker per 100 ms, whatever the load.
 * Between two readings the data path reports work through metrics.c, which
 * calls cpu_work(): a plain add into this worker's per-listener-index array,
 * found through a thread-local pointer (no atomics, no sharing: only the
 * worker's own thread touches the array). At each reading the CPU used since
 * the last one is split over the listeners in proportion to that work, and
 * added to listener->stats.cpu_nsec (relaxed atomics, read by /metrics).
 *
 * Work units (cpu.h) are rough nanoseconds of gateway CPU, measured on a
 * loopback lab: a connection (accept, backend connect, two sockets, close,
 * access-log line) ~20 us; a TLS handshake at the gateway (one signature
 * and an ECDHE) ~300 us; an HTTP request (parse, rules, forward, log) ~5 us;
 * a relayed byte ~1 ns (read+write system calls on 16 KiB buffers), times
 * the number of TLS legs the gateway encrypts: passthrough and http 1,
 * offload 2, bridge 3. Only the ratios matter, and only when several
 * listeners are busy in the same 100 ms.
 *
 * What the sum covers: every nanosecond a worker thread uses goes either to
 * a listener or, when the worker had no open session and no work was
 * reported (the idle loop, the timer itself), to "unattributed". So
 *   sum over listeners + unattributed = CPU of all worker threads.
 * Bytes are reported when a connection (passthrough) or request (HTTP)
 * ends, so a slice with open sessions but no reported work is held back and
 * goes with the next slice that reports work; after 1 s without any it is
 * split by the number of open sessions per listener instead (a long
 * download), which costs one walk of the worker's session list per second
 * at most, and only while nothing else is reported.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cpu.h"
#include "session-t.h"
#include "worker-t.h"

#define CPU_SAMPLE_MS       100 /* how often a worker reads its CPU clock */
#define CPU_PENDING_SAMPLES 10  /* slices held back before splitting by open sessions */

/* One worker's accounting; only its own thread touches it once the loop runs. */
struct cpu_acct {
    struct event *timer; /* every CPU_SAMPLE_MS on the worker's base */
    uint64_t last_ns;    /* thread CPU clock at the last reading */
    uint64_t pending_ns; /* CPU of slices with open sessions but no reported work */
    unsigned quiet;      /* slices pending_ns has been held for */
    uint64_t *work;      /* work units per listener index since the last reading */
    size_t n;            /* entries in work */
};

static __thread struct cpu_acct *cpu_self; /* the worker running on this thread, or NULL */
static atomic_ullong cpu_workers_total;    /* ns, all worker threads */
static atomic_ullong cpu_unattributed;     /* ns not credited to any listener */

unsigned cpu_byte_weight(enum listener_mode mode)
{
    switch (mode) {
    case MODE_OFFLOAD:
        return 2;
    case MODE_BRIDGE:
        return 3;
    case MODE_PASSTHROUGH:
    case MODE_HTTP:
        break;
    }
    return 1;
}

void cpu_work(const struct listener *l, uint64_t units)
{
    struct cpu_acct *a = cpu_self;

    if (a != NULL && l->index < a->n)
        a->work[l->index] += units;
}

/* This thread's CPU time in ns (0 if the clock cannot be read). */
static uint64_t cpu_thread_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cpu_credit(struct worker *w, size_t i, uint64_t ns)
{
    atomic_fetch_add_explicit(&w->conf->listeners[i].stats.cpu_nsec, ns, memory_order_relaxed);
}

/*
 * Credits ns to the first n listeners of w->conf in proportion to weight
 * (total = their sum, > 0). The rounding remainder goes to the heaviest, so
 * the parts add up to ns exactly.
 */
static void cpu_split(struct worker *w, uint64_t ns, const uint64_t *weight, size_t n,
                      uint64_t total)
{
    uint64_t given = 0;
    size_t heaviest = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t share;

        if (weight[i] == 0)
            continue;
        share = (uint64_t)((double)ns * ((double)weight[i] / (double)total));
        if (share > ns - given)
            share = ns - given;
        cpu_credit(w, i, share);
        given += share;
        if (weight[i] > weight[heaviest])
            heaviest = i;
    }
    if (given < ns)
        cpu_credit(w, heaviest, ns - given);
}

/* Puts ns on the unattributed counter. */
static void cpu_drop(uint64_t ns)
{
    atomic_fetch_add_explicit(&cpu_unattributed, ns, memory_order_relaxed);
}

/*
 * Held-back CPU and no work reported for a while: split it by open sessions
 * per listener (a->work is all zero here and is used as the weights).
 */
static void cpu_split_by_sessions(struct worker *w, size_t n)
{
    struct cpu_acct *a = w->cpu;
    struct session *s;
    uint64_t total = 0;

    TAILQ_FOREACH(s, &w->sessions, link)
    {
        if (s->l != NULL && s->l->index < n) {
            a->work[s->l->index]++;
            total++;
        }
    }
    if (total > 0)
        cpu_split(w, a->pending_ns, a->work, n, total);
    else
        cpu_drop(a->pending_ns);
}

/* Follows a reload that changed the number of listeners (work is all zero here). */
static void cpu_resize(struct worker *w)
{
    struct cpu_acct *a = w->cpu;
    size_t want = w->conf->nlisteners;
    uint64_t *work;

    if (want == a->n || (work = calloc(want ? want : 1, sizeof(*work))) == NULL)
        return;
    free(a->work);
    a->work = work;
    a->n = want;
}

/* Reads the clock and attributes the CPU used since the last reading. */
static void cpu_sample(struct worker *w)
{
    struct cpu_acct *a = w->cpu;
    size_t n = a->n < w->conf->nlisteners ? a->n : w->conf->nlisteners;
    uint64_t now = cpu_thread_ns(), total = 0;

    if (now <= a->last_ns)
        return; /* clock unreadable, or nothing used */
    atomic_fetch_add_explicit(&cpu_workers_total, now - a->last_ns, memory_order_relaxed);
    a->pending_ns += now - a->last_ns;
    a->last_ns = now;
    for (size_t i = 0; i < n; i++)
        total += a->work[i];
    if (total > 0) {
        cpu_split(w, a->pending_ns, a->work, n, total);
    } else if (w->nsessions == 0) {
        cpu_drop(a->pending_ns);
    } else if (++a->quiet >= CPU_PENDING_SAMPLES) {
        cpu_split_by_sessions(w, n);
    } else {
        return; /* hold it until work is reported */
    }
    a->pending_ns = 0;
    a->quiet = 0;
    memset(a->work, 0, a->n * sizeof(*a->work));
    cpu_resize(w);
}

static void cpu_on_timer(evutil_socket_t fd, short what, void *arg)
{
    cpu_sample(arg);
}

int cpu_worker_init(struct worker *w)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = CPU_SAMPLE_MS * 1000};
    struct cpu_acct *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return -1;
    w->cpu = a;
    a->n = w->conf->nlisteners;
    a->work = calloc(a->n ? a->n : 1, sizeof(*a->work));
    a->timer = event_new(w->base, -1, EV_PERSIST, cpu_on_timer, w);
    if (a->work == NULL || a->timer == NULL || event_add(a->timer, &tv) < 0) {
        cpu_worker_free(w);
        return -1;
    }
    return 0;
}

void cpu_worker_enter(struct worker *w)
{
    if (w->cpu == NULL)
        return;
    w->cpu->last_ns = cpu_thread_ns();
    cpu_self = w->cpu;
}

void cpu_worker_leave(struct worker *w)
{
    if (w->cpu == NULL)
        return;
    cpu_sample(w);
    cpu_drop(w->cpu->pending_ns); /* sessions still open end on the main thread */
    w->cpu->pending_ns = 0;
    cpu_self = NULL;
}

void cpu_worker_free(struct worker *w)
{
    struct cpu_acct *a = w->cpu;

    if (a == NULL)
        return;
    if (a->timer != NULL)
        event_free(a->timer);
    free(a->work);
    free(a);
    w->cpu = NULL;
}

uint64_t cpu_workers_nsec(void)
{
    return atomic_load_explicit(&cpu_workers_total, memory_order_relaxed);
}

uint64_t cpu_unattributed_nsec(void)
{
    return atomic_load_explicit(&cpu_unattributed, memory_order_relaxed);
}
