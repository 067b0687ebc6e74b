/*
 * Balancing: each algorithm's distribution, skipping of unusable servers,
 * consistent hashing's stability when servers come and go, the failover
 * walk, and a concurrent smoke test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balance.h"

#define NCLIENTS 10000

/*
 * A backend built by hand: n servers named "web1".."webN" with the given
 * weights (NULL = all 1). Release with free_backend().
 */
static struct backend *make_backend(enum balance_algo algo, size_t n, const unsigned *weights)
{
    struct backend *b = calloc(1, sizeof(*b));

    assert_non_null(b);
    b->name = strdup("test");
    b->balance = algo;
    b->nservers = n;
    b->servers = calloc(n ? n : 1, sizeof(*b->servers));
    assert_non_null(b->servers);
    for (size_t i = 0; i < n; i++) {
        struct server *s = &b->servers[i];
        char name[32];
        snprintf(name, sizeof(name), "web%zu", i + 1);
        s->name = strdup(name);
        s->weight = weights ? weights[i] : 1;
        s->index = (unsigned)i;
        s->backend = b;
    }
    assert_int_equal(balance_build(b), 0);
    return b;
}

static void free_backend(struct backend *b)
{
    balance_free(b);
    for (size_t i = 0; i < b->nservers; i++)
        free(b->servers[i].name);
    free(b->servers);
    free(b->name);
    free(b);
}

/* Picks n times (client NULL) and counts per server index. */
static void count_picks(struct backend *b, unsigned n, unsigned *counts)
{
    memset(counts, 0, b->nservers * sizeof(*counts));
    for (unsigned i = 0; i < n; i++) {
        struct server *s = balance_pick(b, NULL);
        assert_non_null(s);
        assert_ptr_equal(s->backend, b);
        counts[s->index]++;
    }
}

/* Synthetic client i as an IPv4 address in 10.0.0.0/8 with port p. */
static struct sockaddr_in client4(unsigned i, uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

    sin.sin_addr.s_addr = htonl(0x0A000000u | (i & 0xFFFFFFu));
    return sin;
}

/* Synthetic client i as an IPv6 address in 2001:db8::/32 with port p. */
static struct sockaddr_in6 client6(unsigned i, uint16_t port)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

    sin6.sin6_addr.s6_addr[0] = 0x20;
    sin6.sin6_addr.s6_addr[1] = 0x01;
    sin6.sin6_addr.s6_addr[2] = 0x0d;
    sin6.sin6_addr.s6_addr[3] = 0xb8;
    sin6.sin6_addr.s6_addr[12] = (uint8_t)(i >> 24);
    sin6.sin6_addr.s6_addr[13] = (uint8_t)(i >> 16);
    sin6.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
    sin6.sin6_addr.s6_addr[15] = (uint8_t)i;
    return sin6;
}

/* The source pick for IPv4 client i. */
static struct server *pick4(struct backend *b, unsigned i)
{
    struct sockaddr_in sin = client4(i, (uint16_t)(1024 + i));

    return balance_pick(b, (struct sockaddr *)&sin);
}

/* ---- roundrobin -------------------------------------------------------- */

static void test_rr_equal_weights_alternate(void **state)
{
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 2, NULL);
    unsigned counts[2];
    struct server *prev = NULL;

    for (int i = 0; i < 10; i++) {
        struct server *s = balance_pick(b, NULL);
        assert_ptr_not_equal(s, prev);
        prev = s;
    }
    count_picks(b, 1000, counts);
    assert_int_equal(counts[0], 500);
    assert_int_equal(counts[1], 500);
    free_backend(b);
}

static void test_rr_weights_exact_per_cycle(void **state)
{
    static const unsigned w12[] = {1, 2};
    static const unsigned w511[] = {5, 1, 1};
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 2, w12);
    unsigned counts[3];

    for (int cycle = 0; cycle < 4; cycle++) {
        count_picks(b, 3, counts);
        assert_int_equal(counts[0], 1);
        assert_int_equal(counts[1], 2);
    }
    free_backend(b);

    /* every window of one cycle, not just aligned ones, holds the weights */
    b = make_backend(BALANCE_ROUNDROBIN, 3, w511);
    balance_pick(b, NULL);
    balance_pick(b, NULL);
    count_picks(b, 7, counts);
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 1);
    free_backend(b);
}

/* The heavy server's turns are spread out, not sent in one burst. */
static void test_rr_interleaves(void **state)
{
    static const unsigned w[] = {5, 1, 1};
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 3, w);
    unsigned run = 0, longest = 0;

    for (int i = 0; i < 70; i++) {
        struct server *s = balance_pick(b, NULL);
        run = s->index == 0 ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    assert_true(longest < 5);
    free_backend(b);
}

static void test_rr_skips_down(void **state)
{
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 3, NULL);
    unsigned counts[3];

    atomic_store(&b->servers[1].down, true);
    count_picks(b, 100, counts);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[2], 50);

    atomic_store(&b->servers[1].down, false);
    count_picks(b, 99, counts);
    assert_int_equal(counts[1], 33);
    free_backend(b);
}

static void test_rr_max_connections(void **state)
{
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 2, NULL);
    unsigned counts[2];

    b->servers[0].max_connections = 2;
    atomic_store(&b->servers[0].active, 2);
    assert_false(balance_server_usable(&b->servers[0]));
    count_picks(b, 10, counts);
    assert_int_equal(counts[0], 0);

    atomic_store(&b->servers[0].active, 1);
    assert_true(balance_server_usable(&b->servers[0]));
    count_picks(b, 10, counts);
    assert_int_equal(counts[0], 5);

    /* no limit: any number of connections */
    atomic_store(&b->servers[1].active, 1000000);
    assert_true(balance_server_usable(&b->servers[1]));
    free_backend(b);
}

/* Every algorithm answers NULL when nothing is usable. */
static void test_all_down_is_null(void **state)
{
    static const enum balance_algo algos[] = {BALANCE_ROUNDROBIN, BALANCE_LEASTCONN, BALANCE_SOURCE,
                                              BALANCE_RANDOM};
    struct sockaddr_in c = client4(7, 7);

    for (size_t a = 0; a < 4; a++) {
        struct backend *b = make_backend(algos[a], 3, NULL);
        atomic_store(&b->servers[0].down, true);
        atomic_store(&b->servers[1].down, true);
        b->servers[2].max_connections = 1;
        atomic_store(&b->servers[2].active, 1);
        assert_null(balance_pick(b, (struct sockaddr *)&c));
        assert_null(balance_next(b, &b->servers[0]));
        free_backend(b);

        b = make_backend(algos[a], 0, NULL);
        assert_null(balance_pick(b, (struct sockaddr *)&c));
        assert_null(balance_next(b, NULL));
        free_backend(b);
    }
}

/* Weight 0 drains: never chosen by a pick, still a failover candidate. */
static void test_weight_zero_not_picked(void **state)
{
    static const unsigned w[] = {0, 1};
    static const enum balance_algo algos[] = {BALANCE_ROUNDROBIN, BALANCE_LEASTCONN, BALANCE_SOURCE,
                                              BALANCE_RANDOM};

    for (size_t a = 0; a < 4; a++) {
        struct backend *b = make_backend(algos[a], 2, w);
        for (unsigned i = 0; i < 200; i++)
            assert_int_equal(pick4(b, i)->index, 1);
        assert_ptr_equal(balance_next(b, &b->servers[1]), &b->servers[0]);
        free_backend(b);
    }
}

/* ---- leastconn --------------------------------------------------------- */

static void test_leastconn_picks_least_loaded(void **state)
{
    static const unsigned w[] = {1, 3};
    struct backend *b = make_backend(BALANCE_LEASTCONN, 3, NULL);

    atomic_store(&b->servers[0].active, 5);
    atomic_store(&b->servers[1].active, 2);
    atomic_store(&b->servers[2].active, 7);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(balance_pick(b, NULL), &b->servers[1]);

    atomic_store(&b->servers[1].down, true);
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(balance_pick(b, NULL), &b->servers[0]);
    free_backend(b);

    /* relative to weight: 3 connections on weight 3 is lighter than 2 on 1 */
    b = make_backend(BALANCE_LEASTCONN, 2, w);
    atomic_store(&b->servers[0].active, 2);
    atomic_store(&b->servers[1].active, 3);
    assert_ptr_equal(balance_pick(b, NULL), &b->servers[1]);
    free_backend(b);
}

static void test_leastconn_spreads_ties(void **state)
{
    static const unsigned w[] = {1, 2, 1};
    struct backend *b = make_backend(BALANCE_LEASTCONN, 3, NULL);
    unsigned counts[3];

    /* nothing connected: consecutive picks take turns */
    count_picks(b, 3, counts);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 1);

    /* connections that stay open: the load evens out exactly */
    for (int i = 0; i < 300; i++)
        atomic_fetch_add(&balance_pick(b, NULL)->active, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&b->servers[i].active), 100);
    free_backend(b);

    b = make_backend(BALANCE_LEASTCONN, 3, w);
    for (int i = 0; i < 400; i++)
        atomic_fetch_add(&balance_pick(b, NULL)->active, 1);
    assert_int_equal(atomic_load(&b->servers[0].active), 100);
    assert_int_equal(atomic_load(&b->servers[1].active), 200);
    assert_int_equal(atomic_load(&b->servers[2].active), 100);
    free_backend(b);
}

/* ---- source ------------------------------------------------------------ */

static void test_source_ring_built(void **state)
{
    static const unsigned w[] = {1, 2, 1};
    struct backend *b = make_backend(BALANCE_SOURCE, 3, w);

    assert_non_null(b->ring);
    assert_int_equal(b->nring, 4 * 160);
    for (size_t i = 1; i < b->nring; i++)
        assert_true(b->ring[i - 1].hash <= b->ring[i].hash);
    balance_free(b);
    assert_null(b->ring);
    assert_int_equal(b->nring, 0);
    balance_free(b);
    free_backend(b);

    b = make_backend(BALANCE_ROUNDROBIN, 3, NULL);
    assert_null(b->ring);
    free_backend(b);
}

static void test_source_sticky_ipv4_ports(void **state)
{
    struct backend *b = make_backend(BALANCE_SOURCE, 3, NULL);

    for (unsigned i = 0; i < 1000; i++) {
        struct sockaddr_in c = client4(i, 1000);
        struct server *first = balance_pick(b, (struct sockaddr *)&c);
        assert_non_null(first);
        for (uint16_t port = 1; port < 60000; port += 7919) {
            c.sin_port = htons(port);
            assert_ptr_equal(balance_pick(b, (struct sockaddr *)&c), first);
        }
    }
    free_backend(b);
}

static void test_source_ipv6(void **state)
{
    struct backend *b = make_backend(BALANCE_SOURCE, 3, NULL);
    unsigned counts[3] = {0};

    for (unsigned i = 0; i < 3000; i++) {
        struct sockaddr_in6 c = client6(i, 443);
        struct server *s = balance_pick(b, (struct sockaddr *)&c);
        assert_non_null(s);
        c.sin6_port = htons(50000);
        assert_ptr_equal(balance_pick(b, (struct sockaddr *)&c), s);
        counts[s->index]++;
    }
    for (int i = 0; i < 3; i++)
        assert_true(counts[i] > 500);

    /* a v4 client seen through a dual-stack socket keeps its server */
    struct sockaddr_in v4 = client4(42, 1);
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
    mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
    memcpy(&mapped.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    assert_ptr_equal(balance_pick(b, (struct sockaddr *)&mapped),
                     balance_pick(b, (struct sockaddr *)&v4));
    free_backend(b);
}

static void test_source_even_distribution(void **state)
{
    struct backend *b = make_backend(BALANCE_SOURCE, 3, NULL);
    unsigned counts[3] = {0};

    for (unsigned i = 0; i < NCLIENTS; i++)
        counts[pick4(b, i)->index]++;
    for (int i = 0; i < 3; i++) {
        print_message("  web%d: %u\n", i + 1, counts[i]);
        assert_in_range(counts[i], NCLIENTS / 3 * 8 / 10, NCLIENTS / 3 * 12 / 10);
    }
    free_backend(b);
}

/* Adding a 4th server moves about a quarter of the clients, all to it. */
static void test_source_add_server_moves_few(void **state)
{
    struct backend *b3 = make_backend(BALANCE_SOURCE, 3, NULL);
    struct backend *b4 = make_backend(BALANCE_SOURCE, 4, NULL);
    unsigned moved = 0;

    for (unsigned i = 0; i < NCLIENTS; i++) {
        struct server *before = pick4(b3, i), *after = pick4(b4, i);
        if (strcmp(before->name, after->name) == 0)
            continue;
        moved++;
        assert_string_equal(after->name, "web4");
    }
    print_message("  moved %u of %u\n", moved, NCLIENTS);
    assert_in_range(moved, NCLIENTS * 15 / 100, NCLIENTS * 35 / 100);
    free_backend(b3);
    free_backend(b4);
}

/* Marking a server down moves its clients only; bringing it back restores. */
static void test_source_remove_server_moves_only_its_clients(void **state)
{
    struct backend *b = make_backend(BALANCE_SOURCE, 3, NULL);
    static unsigned before[NCLIENTS];
    unsigned moved = 0;

    for (unsigned i = 0; i < NCLIENTS; i++)
        before[i] = pick4(b, i)->index;
    atomic_store(&b->servers[1].down, true);
    for (unsigned i = 0; i < NCLIENTS; i++) {
        unsigned now = pick4(b, i)->index;
        if (before[i] == 1) {
            assert_int_not_equal(now, 1);
            moved++;
        } else {
            assert_int_equal(now, before[i]);
        }
    }
    assert_true(moved > 0);
    atomic_store(&b->servers[1].down, false);
    for (unsigned i = 0; i < NCLIENTS; i++)
        assert_int_equal(pick4(b, i)->index, before[i]);
    free_backend(b);
}

/* Weight scales a server's share of clients. */
static void test_source_weighted(void **state)
{
    static const unsigned w[] = {1, 3};
    struct backend *b = make_backend(BALANCE_SOURCE, 2, w);
    unsigned counts[2] = {0};

    for (unsigned i = 0; i < NCLIENTS; i++)
        counts[pick4(b, i)->index]++;
    assert_in_range(counts[1], NCLIENTS * 65 / 100, NCLIENTS * 85 / 100);
    free_backend(b);
}

/* ---- random ------------------------------------------------------------ */

static void test_random_even_and_weighted(void **state)
{
    static const unsigned w[] = {1, 3};
    struct backend *b = make_backend(BALANCE_RANDOM, 3, NULL);
    unsigned counts[3];

    count_picks(b, 30000, counts);
    for (int i = 0; i < 3; i++)
        assert_in_range(counts[i], 9000, 11000);
    atomic_store(&b->servers[0].down, true);
    count_picks(b, 3000, counts);
    assert_int_equal(counts[0], 0);
    free_backend(b);

    b = make_backend(BALANCE_RANDOM, 2, w);
    count_picks(b, 40000, counts);
    assert_in_range(counts[0], 9000, 11000);
    assert_in_range(counts[1], 29000, 31000);
    free_backend(b);
}

/* ---- failover walk ----------------------------------------------------- */

static void test_next_walks_index_order(void **state)
{
    struct backend *b = make_backend(BALANCE_ROUNDROBIN, 4, NULL);
    struct server *s = b->servers;

    atomic_store(&s[2].down, true);
    assert_ptr_equal(balance_next(b, &s[0]), &s[1]);
    assert_ptr_equal(balance_next(b, &s[1]), &s[3]);
    assert_ptr_equal(balance_next(b, &s[3]), &s[0]);
    assert_ptr_equal(balance_next(b, &s[2]), &s[3]);

    s[3].max_connections = 1;
    atomic_store(&s[3].active, 1);
    assert_ptr_equal(balance_next(b, &s[1]), &s[0]);

    /* only prev is usable: never prev itself */
    atomic_store(&s[1].down, true);
    assert_null(balance_next(b, &s[0]));
    free_backend(b);

    b = make_backend(BALANCE_ROUNDROBIN, 1, NULL);
    assert_null(balance_next(b, &b->servers[0]));
    free_backend(b);
}

/* ---- threads ----------------------------------------------------------- */

#define PICKS_PER_THREAD 60000

struct picker {
    struct backend *b;
    unsigned counts[2];
};

static void *picker_run(void *arg)
{
    struct picker *p = arg;

    for (int i = 0; i < PICKS_PER_THREAD; i++) {
        struct server *s = balance_pick(p->b, NULL);
        if (s == NULL)
            return NULL;
        p->counts[s->index]++;
    }
    return p;
}

/* Two workers picking at once: no pick lost or doubled, weights hold. */
static void test_threads_roundrobin(void **state)
{
    static const unsigned w[] = {1, 2};
    static const enum balance_algo algos[] = {BALANCE_ROUNDROBIN, BALANCE_RANDOM,
                                              BALANCE_LEASTCONN};

    for (size_t a = 0; a < 3; a++) {
        struct backend *b = make_backend(algos[a], 2, w);
        struct picker p[2] = {{.b = b}, {.b = b}};
        pthread_t t[2];
        void *ret;

        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, picker_run, &p[i]), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(pthread_join(t[i], &ret), 0);
            assert_ptr_equal(ret, &p[i]);
        }
        unsigned c0 = p[0].counts[0] + p[1].counts[0];
        unsigned c1 = p[0].counts[1] + p[1].counts[1];
        assert_int_equal(c0 + c1, 2 * PICKS_PER_THREAD);
        if (algos[a] == BALANCE_ROUNDROBIN) {
            assert_int_equal(c0, 2 * PICKS_PER_THREAD / 3);
            assert_int_equal(c1, 4 * PICKS_PER_THREAD / 3);
        }
        free_backend(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_equal_weights_alternate),
        cmocka_unit_test(test_rr_weights_exact_per_cycle),
        cmocka_unit_test(test_rr_interleaves),
        cmocka_unit_test(test_rr_skips_down),
        cmocka_unit_test(test_rr_max_connections),
        cmocka_unit_test(test_all_down_is_null),
        cmocka_unit_test(test_weight_zero_not_picked),
        cmocka_unit_test(test_leastconn_picks_least_loaded),
        cmocka_unit_test(test_leastconn_spreads_ties),
        cmocka_unit_test(test_source_ring_built),
        cmocka_unit_test(test_source_sticky_ipv4_ports),
        cmocka_unit_test(test_source_ipv6),
        cmocka_unit_test(test_source_even_distribution),
        cmocka_unit_test(test_source_add_server_moves_few),
        cmocka_unit_test(test_source_remove_server_moves_only_its_clients),
        cmocka_unit_test(test_source_weighted),
        cmocka_unit_test(test_random_even_and_weighted),
        cmocka_unit_test(test_next_walks_index_order),
        cmocka_unit_test(test_threads_roundrobin),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
