/*
 * SNI routing tests: a passthrough listener with the routes of the SPEC
 * example, and what each SNI a client could send ends up at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

static struct backend bank = {.name = "bank"};
static struct backend web = {.name = "web_tls"};
static struct backend api = {.name = "api"};
static struct backend fallback = {.name = "fallback"};

/* Order matters: the exact bank route shadows the wildcard after it. */
static struct sni_route routes[] = {
    {.pattern = "bank.lab.test", .wildcard = false, .backend = &bank},
    {.pattern = "*.lab.test", .wildcard = true, .backend = &web},
    {.pattern = "api.lab.test", .wildcard = false, .backend = &api}, /* never reached */
    {.pattern = "*.api.test", .wildcard = true, .backend = &api},
    {.pattern = "api.test", .wildcard = false, .backend = &bank},
};

/* A listener with the routes above and, if given, a default backend. */
static struct listener listener_with(struct backend *def)
{
    struct listener l = {
        .name = "secure",
        .mode = MODE_PASSTHROUGH,
        .sni_routes = routes,
        .nsni_routes = sizeof(routes) / sizeof(routes[0]),
        .default_backend = def,
    };

    return l;
}

/* An exact pattern matches that name only. */
static void test_exact(void **state)
{
    const struct sni_route *r = &routes[0];

    assert_true(route_sni_matches(r, "bank.lab.test"));
    assert_false(route_sni_matches(r, "bank.lab.tes"));
    assert_false(route_sni_matches(r, "bank.lab.test.evil"));
    assert_false(route_sni_matches(r, "xbank.lab.test"));
    assert_false(route_sni_matches(r, "www.bank.lab.test"));
    assert_false(route_sni_matches(r, ""));
    assert_false(route_sni_matches(r, NULL));
}

/* Matching ignores case (patterns and SNI are normalised, but be safe). */
static void test_case(void **state)
{
    struct sni_route upper = {.pattern = "Bank.LAB.test", .backend = &bank};
    struct sni_route wild = {.pattern = "*.Lab.Test", .wildcard = true, .backend = &web};

    assert_true(route_sni_matches(&routes[0], "BANK.Lab.Test"));
    assert_true(route_sni_matches(&upper, "bank.lab.test"));
    assert_true(route_sni_matches(&routes[1], "WWW.LAB.TEST"));
    assert_true(route_sni_matches(&wild, "www.lab.test"));
}

/* "*.lab.test" matches exactly one more label: not the apex, not two labels. */
static void test_wildcard_one_label(void **state)
{
    const struct sni_route *r = &routes[1];

    assert_true(route_sni_matches(r, "a.lab.test"));
    assert_true(route_sni_matches(r, "www-2.lab.test"));
    assert_true(route_sni_matches(r, "_x.lab.test"));
    assert_false(route_sni_matches(r, "lab.test"));
    assert_false(route_sni_matches(r, ".lab.test"));
    assert_false(route_sni_matches(r, "a.b.lab.test"));
    assert_false(route_sni_matches(r, "alab.test"));
    assert_false(route_sni_matches(r, "a.lab.test.other"));
    assert_false(route_sni_matches(r, "a.xlab.test"));
    assert_false(route_sni_matches(r, "test"));
    assert_false(route_sni_matches(r, ""));
    assert_false(route_sni_matches(r, NULL));
}

/* A "*." pattern not flagged wildcard is compared literally (matches nothing real). */
static void test_wildcard_flag_required(void **state)
{
    struct sni_route literal = {.pattern = "*.lab.test", .wildcard = false, .backend = &web};
    struct sni_route none = {.pattern = NULL, .backend = &web};

    assert_false(route_sni_matches(&literal, "a.lab.test"));
    assert_false(route_sni_matches(&none, "a.lab.test"));
}

/* First match wins: bank before the wildcard, the wildcard before api. */
static void test_first_match_wins(void **state)
{
    struct listener l = listener_with(&fallback);
    const struct sni_route *m = NULL;

    assert_ptr_equal(route_sni(&l, "bank.lab.test", &m), &bank);
    assert_ptr_equal(m, &routes[0]);
    assert_ptr_equal(route_sni(&l, "www.lab.test", &m), &web);
    assert_ptr_equal(m, &routes[1]);
    assert_ptr_equal(route_sni(&l, "api.lab.test", &m), &web); /* shadowed by the wildcard */
    assert_ptr_equal(m, &routes[1]);
    assert_ptr_equal(route_sni(&l, "v1.api.test", &m), &api);
    assert_ptr_equal(m, &routes[3]);
    assert_ptr_equal(route_sni(&l, "api.test", &m), &bank);
    assert_ptr_equal(m, &routes[4]);
}

/* No route matches: the default backend, *matched NULL. */
static void test_default_backend(void **state)
{
    struct listener l = listener_with(&fallback);
    const struct sni_route *m = &routes[0];

    assert_ptr_equal(route_sni(&l, "other.test", &m), &fallback);
    assert_null(m);
    m = &routes[0];
    assert_ptr_equal(route_sni(&l, "a.b.lab.test", &m), &fallback);
    assert_null(m);
}

/* A client without SNI goes to the default, even where a route could match "". */
static void test_no_sni(void **state)
{
    struct listener l = listener_with(&fallback);
    const struct sni_route *m = &routes[0];

    assert_ptr_equal(route_sni(&l, NULL, &m), &fallback);
    assert_null(m);
}

/* No default backend: unmatched and missing SNI give NULL (close). */
static void test_no_default(void **state)
{
    struct listener l = listener_with(NULL);
    const struct sni_route *m = &routes[0];

    assert_null(route_sni(&l, "other.test", &m));
    assert_null(m);
    assert_null(route_sni(&l, NULL, &m));
    assert_null(m);
    assert_ptr_equal(route_sni(&l, "bank.lab.test", &m), &bank);
}

/* No routes at all; and matched may be NULL when the caller does not care. */
static void test_no_routes(void **state)
{
    struct listener l = {.name = "plain", .default_backend = &web};

    assert_ptr_equal(route_sni(&l, "a.lab.test", NULL), &web);
    l.default_backend = NULL;
    assert_null(route_sni(&l, "a.lab.test", NULL));
    l = listener_with(NULL);
    assert_ptr_equal(route_sni(&l, "a.lab.test", NULL), &web);
}

/*
 * route_sni_pick: a route or default may name a listener that terminates
 * TLS here instead of a backend; the pick says which, and which route.
 */
static void test_pick_terminate(void **state)
{
    struct listener shop = {.name = "shop", .mode = MODE_OFFLOAD};
    struct listener site = {.name = "site", .mode = MODE_BRIDGE};
    struct sni_route mixed[] = {
        {.pattern = "bank.lab.test", .backend = &bank},
        {.pattern = "*.shop.test", .wildcard = true, .terminate = &shop},
    };
    struct listener l = {.name = "public", .sni_routes = mixed, .nsni_routes = 2};
    struct route_pick p;

    assert_int_equal(route_sni_pick(&l, "bank.lab.test", &p), 0);
    assert_ptr_equal(p.backend, &bank);
    assert_null(p.terminate);
    assert_ptr_equal(p.matched, &mixed[0]);
    assert_int_equal(route_sni_pick(&l, "WWW.shop.test", &p), 0);
    assert_null(p.backend);
    assert_ptr_equal(p.terminate, &shop);
    assert_ptr_equal(p.matched, &mixed[1]);
    /* Nowhere to go: -1, nothing picked. */
    assert_int_equal(route_sni_pick(&l, "other.test", &p), -1);
    assert_null(p.backend);
    assert_null(p.terminate);
    assert_null(p.matched);
    /* The default may terminate too, also for a client without SNI. */
    l.default_terminate = &site;
    assert_int_equal(route_sni_pick(&l, "other.test", &p), 0);
    assert_ptr_equal(p.terminate, &site);
    assert_null(p.matched);
    assert_int_equal(route_sni_pick(&l, NULL, &p), 0);
    assert_ptr_equal(p.terminate, &site);
    /* or relay: a default backend is taken as it is. */
    l.default_terminate = NULL;
    l.default_backend = &fallback;
    assert_int_equal(route_sni_pick(&l, NULL, &p), 0);
    assert_ptr_equal(p.backend, &fallback);
    assert_null(p.terminate);
    /* route_sni still answers the backend, NULL for a terminate route. */
    assert_null(route_sni(&l, "a.shop.test", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_wildcard_one_label),
        cmocka_unit_test(test_wildcard_flag_required),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_default_backend),
        cmocka_unit_test(test_no_sni),
        cmocka_unit_test(test_no_default),
        cmocka_unit_test(test_no_routes),
        cmocka_unit_test(test_pick_terminate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
