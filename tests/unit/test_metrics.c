/*
 * Metrics and CPU attribution: counters land where the data path puts them,
 * handshake latencies in the right bucket (bounds inclusive), status
 * classes, the recent-lines store (last METRICS_RECENT per listener name,
 * oldest first, shared by two snapshots' listeners of the same name), and a
 * worker's CPU split over listeners by reported work, adding up exactly to
 * what the worker's thread used.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "cpu.h"
#include "metrics.h"
#include "worker-t.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* A listener good enough for metrics: name, mode, index; counters zeroed. */
static void make_listener(struct listener *l, const char *name, enum listener_mode mode,
                          unsigned index)
{
    memset(l, 0, sizeof(*l));
    l->name = (char *)name;
    l->mode = mode;
    l->index = index;
}

static void test_counters(void **state)
{
    struct listener l;
    struct server srv = {0};

    make_listener(&l, "web", MODE_OFFLOAD, 0);
    metrics_conn_open(&l);
    metrics_conn_open(&l);
    metrics_bytes(&l, 100, 2000);
    metrics_bytes(&l, 1, 2);
    metrics_server_pick(&srv);
    assert_int_equal(LOAD(l.stats.conns_total), 2);
    assert_int_equal(LOAD(l.stats.bytes_in), 101);
    assert_int_equal(LOAD(l.stats.bytes_out), 2002);
    assert_int_equal(LOAD(srv.stats.picks), 1);
}

static void test_status_classes(void **state)
{
    struct listener l;
    static const unsigned statuses[] = {0, 101, 200, 204, 301, 404, 431, 503, 99, 600};
    static const unsigned expect[6] = {3, 1, 2, 1, 2, 1}; /* 0, 99 and 600 count as none */

    make_listener(&l, "web", MODE_HTTP, 0);
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        metrics_request(&l, statuses[i]);
    for (size_t c = 0; c < 6; c++)
        assert_int_equal(LOAD(l.stats.requests[c]), expect[c]);
}

static void test_handshake_buckets(void **state)
{
    struct listener l;

    make_listener(&l, "web", MODE_OFFLOAD, 0);
    metrics_handshake(&l, 0, true);        /* bucket 0 (<= 0.5 ms) */
    metrics_handshake(&l, 500, true);      /* bound is inclusive: bucket 0 */
    metrics_handshake(&l, 501, true);      /* bucket 1 (<= 1 ms) */
    metrics_handshake(&l, 1000000, true);  /* <= 1 s: last finite bucket */
    metrics_handshake(&l, 1000001, false); /* +Inf */
    assert_int_equal(LOAD(l.stats.handshake_buckets[0]), 2);
    assert_int_equal(LOAD(l.stats.handshake_buckets[1]), 1);
    assert_int_equal(LOAD(l.stats.handshake_buckets[METRICS_HS_BUCKETS - 2]), 1);
    assert_int_equal(LOAD(l.stats.handshake_buckets[METRICS_HS_BUCKETS - 1]), 1);
    assert_int_equal(LOAD(l.stats.handshakes_ok), 4);
    assert_int_equal(LOAD(l.stats.handshakes_failed), 1);
    assert_int_equal(LOAD(l.stats.handshake_usec_sum), 0 + 500 + 501 + 1000000 + 1000001);
    for (size_t k = 1; k < METRICS_HS_BUCKETS - 1; k++)
        assert_true(metrics_hs_bounds_usec[k] > metrics_hs_bounds_usec[k - 1]);
}

struct collected {
    char lines[2 * METRICS_RECENT][64];
    size_t n;
};

static void collect(const char *line, size_t len, void *arg)
{
    struct collected *c = arg;

    assert_true(len < sizeof(c->lines[0]));
    assert_int_equal(strlen(line), len);
    memcpy(c->lines[c->n++], line, len + 1);
}

static void test_recent_ring(void **state)
{
    struct listener a, a_reloaded, b;
    struct collected got = {.n = 0};
    char line[64];

    make_listener(&a, "shop", MODE_OFFLOAD, 0);
    make_listener(&a_reloaded, "shop", MODE_OFFLOAD, 3); /* same name, another snapshot */
    make_listener(&b, "bank", MODE_PASSTHROUGH, 1);
    for (int i = 0; i < METRICS_RECENT + 5; i++) {
        int n = snprintf(line, sizeof(line), "{\"n\":%d}\n", i);
        metrics_recent_add(i % 2 ? &a_reloaded : &a, line, (size_t)n);
    }
    metrics_recent_add(&b, "{\"bank\":1}", 10);
    metrics_recent_foreach("shop", collect, &got);
    assert_int_equal(got.n, METRICS_RECENT);
    assert_string_equal(got.lines[0], "{\"n\":5}"); /* oldest kept, newline dropped */
    assert_string_equal(got.lines[METRICS_RECENT - 1], "{\"n\":24}");
    got.n = 0;
    metrics_recent_foreach("bank", collect, &got);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.lines[0], "{\"bank\":1}");
    got.n = 0;
    metrics_recent_foreach("nobody", collect, &got);
    assert_int_equal(got.n, 0);
    metrics_recent_free();
    metrics_recent_foreach("shop", collect, &got);
    assert_int_equal(got.n, 0);
}

/* Burns roughly ms of this thread's CPU. */
static void burn_cpu(unsigned ms)
{
    struct timespec t0, t;
    volatile unsigned long x = 0;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do {
        for (int i = 0; i < 10000; i++)
            x += (unsigned long)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static void on_burn(evutil_socket_t fd, short what, void *arg)
{
    struct config *conf = arg;

    /* Three times the work on listener 1 as on listener 0, nothing on 2. */
    metrics_conn_open(&conf->listeners[0]);
    metrics_conn_open(&conf->listeners[1]);
    metrics_conn_open(&conf->listeners[1]);
    metrics_conn_open(&conf->listeners[1]);
    burn_cpu(30);
}

static void test_cpu_split(void **state)
{
    struct listener ls[3];
    struct config conf = {.nlisteners = 3, .listeners = ls};
    struct worker w = {.conf = &conf};
    struct timeval every = {0, 20000}, stop = {0, 450000};
    struct event *burner;
    uint64_t sum = 0, before_total = cpu_workers_nsec(), before_idle = cpu_unattributed_nsec();

    make_listener(&ls[0], "a", MODE_PASSTHROUGH, 0);
    make_listener(&ls[1], "b", MODE_PASSTHROUGH, 1);
    make_listener(&ls[2], "c", MODE_PASSTHROUGH, 2);
    TAILQ_INIT(&w.sessions);
    w.base = event_base_new();
    assert_non_null(w.base);
    assert_int_equal(cpu_worker_init(&w), 0);
    burner = event_new(w.base, -1, EV_PERSIST, on_burn, &conf);
    event_add(burner, &every);
    cpu_worker_enter(&w);
    event_base_loopexit(w.base, &stop);
    event_base_dispatch(w.base);
    cpu_worker_leave(&w);
    for (size_t i = 0; i < 3; i++)
        sum += LOAD(ls[i].stats.cpu_nsec);
    /* Every nanosecond the thread used went to a listener or to "unattributed". */
    assert_int_equal(sum + (cpu_unattributed_nsec() - before_idle),
                     cpu_workers_nsec() - before_total);
    assert_true(sum > 100 * 1000000ull); /* ~20 burns of 30 ms */
    assert_int_equal(LOAD(ls[2].stats.cpu_nsec), 0);
    /* The split follows the work: b did three times what a did. */
    assert_true(LOAD(ls[1].stats.cpu_nsec) > 2 * LOAD(ls[0].stats.cpu_nsec));
    assert_true(LOAD(ls[1].stats.cpu_nsec) < 4 * LOAD(ls[0].stats.cpu_nsec));
    /* Off a worker thread, cpu_work is a no-op (and must not crash). */
    cpu_work(&ls[0], 12345);
    event_free(burner);
    cpu_worker_free(&w);
    cpu_worker_free(&w); /* idempotent */
    event_base_free(w.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters),          cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_handshake_buckets), cmocka_unit_test(test_recent_ring),
        cmocka_unit_test(test_cpu_split),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
