/*
 * Health state machine (src/health/health_state.c) and the http check's
 * status-line parser (health_parse.c): rise/fall counting, passive ejection
 * and its limits, the retry of check: none, carry-over on reload, jitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "health/health_int.h"

#define NSRV 3

/* A backend of NSRV servers named s0.. at 127.0.0.1:800N. */
struct fixture {
    struct config conf;
    struct backend be;
    struct server srv[NSRV];
    char names[NSRV][8];
    char addrs[NSRV][32];
};

static struct fixture *fixture_new(enum health_check check, unsigned rise, unsigned fall)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->be.name = "web";
    f->be.health = (struct health_conf){.check = check,
                                        .interval = 1000,
                                        .timeout = 500,
                                        .rise = rise,
                                        .fall = fall,
                                        .expect_status = 200};
    f->be.servers = f->srv;
    f->be.nservers = NSRV;
    for (unsigned i = 0; i < NSRV; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "s%u", i);
        snprintf(f->addrs[i], sizeof(f->addrs[i]), "127.0.0.1:800%u", i);
        f->srv[i].name = f->names[i];
        f->srv[i].addr.text = f->addrs[i];
        f->srv[i].index = i;
        f->srv[i].backend = &f->be;
    }
    f->conf.backends = &f->be;
    f->conf.nbackends = 1;
    return f;
}

static bool is_down(const struct server *s)
{
    return atomic_load(&s->down);
}

/* fall failed checks mark a server down, not one fewer; rise passes bring it back. */
static void test_check_fall_and_rise(void **state)
{
    struct fixture *f = fixture_new(HEALTH_HTTP, 2, 3);
    struct server *s = &f->srv[0];

    assert_int_equal(health_state_check(s, false, "refused"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, false, "refused"), HEALTH_SAME);
    assert_false(is_down(s));
    assert_int_equal(health_state_check(s, false, "refused"), HEALTH_WENT_DOWN);
    assert_true(is_down(s));
    assert_string_equal(s->health.last_reason, "refused");
    assert_int_equal(s->health.last, HEALTH_RESULT_FAILED);
    assert_int_equal(atomic_load(&s->health.check_failures), 3);
    assert_int_equal(atomic_load(&s->health.went_down), 1);
    /* still failing: no second transition */
    assert_int_equal(health_state_check(s, false, "refused"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_SAME);
    assert_true(is_down(s));
    assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_WENT_UP);
    assert_false(is_down(s));
    assert_int_equal(s->health.last, HEALTH_RESULT_OK);
    assert_int_equal(atomic_load(&s->health.went_up), 1);
    free(f);
}

/* The counts are of consecutive results: one pass in between starts over. */
static void test_check_consecutive_only(void **state)
{
    struct fixture *f = fixture_new(HEALTH_TCP, 2, 2);
    struct server *s = &f->srv[0];

    for (int i = 0; i < 5; i++) {
        assert_int_equal(health_state_check(s, false, "x"), HEALTH_SAME);
        assert_int_equal(health_state_check(s, true, "ok"), HEALTH_SAME);
    }
    assert_false(is_down(s));
    assert_int_equal(health_state_check(s, false, "x"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, false, "x"), HEALTH_WENT_DOWN);
    /* down: pass, fail, pass is not two passes in a row */
    assert_int_equal(health_state_check(s, true, "ok"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, false, "x"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, true, "ok"), HEALTH_SAME);
    assert_true(is_down(s));
    assert_int_equal(health_state_check(s, true, "ok"), HEALTH_WENT_UP);
    free(f);
}

/* rise 1 / fall 1: every check decides. */
static void test_check_rise_fall_one(void **state)
{
    struct fixture *f = fixture_new(HEALTH_TCP, 1, 1);
    struct server *s = &f->srv[1];

    assert_int_equal(health_state_check(s, false, "x"), HEALTH_WENT_DOWN);
    assert_int_equal(health_state_check(s, true, "ok"), HEALTH_WENT_UP);
    assert_int_equal(health_state_check(s, true, "ok"), HEALTH_SAME);
    free(f);
}

/* Passive: fall consecutive failures eject; a success in between resets the count. */
static void test_passive_ejects_after_fall(void **state)
{
    struct fixture *f = fixture_new(HEALTH_NONE, 2, 3);
    struct server *s = &f->srv[0];

    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 100), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 100), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, true, 100), HEALTH_SAME);
    assert_int_equal(atomic_load(&s->health.connect_fails), 0);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 100), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 100), HEALTH_SAME);
    assert_false(is_down(s));
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 100), HEALTH_WENT_DOWN);
    assert_true(is_down(s));
    assert_int_equal(atomic_load(&s->health.ejected_ms), 100);
    /* reports about a down server change nothing */
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 150), HEALTH_SAME);
    assert_int_equal(atomic_load(&s->health.went_down), 1);
    free(f);
}

/* A server that accepts every connection and answers 500 to each is ejected all the same. */
static void test_passive_5xx_despite_connects(void **state)
{
    struct fixture *f = fixture_new(HEALTH_NONE, 2, 3);
    struct server *s = &f->srv[0];

    for (int i = 0; i < 2; i++) {
        assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, true, 1), HEALTH_SAME);
        assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, false, 1), HEALTH_SAME);
    }
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, true, 1), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, false, 1), HEALTH_WENT_DOWN);
    /* while a good answer in between starts the count over */
    atomic_store(&s->down, false);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, false, 1), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, false, 1), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, true, 1), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_ANSWER, false, 1), HEALTH_SAME);
    assert_false(is_down(s));
    free(f);
}

/* Passive ejection never takes the last server that is up; checks may. */
static void test_passive_spares_last_up(void **state)
{
    struct fixture *f = fixture_new(HEALTH_NONE, 2, 1);

    assert_int_equal(health_state_passive(&f->srv[0], HEALTH_PASSIVE_ANSWER, false, 10),
                     HEALTH_WENT_DOWN);
    assert_int_equal(health_state_passive(&f->srv[1], HEALTH_PASSIVE_ANSWER, false, 10),
                     HEALTH_WENT_DOWN);
    assert_true(health_state_last_up(&f->srv[2]));
    for (int i = 0; i < 5; i++)
        assert_int_equal(health_state_passive(&f->srv[2], HEALTH_PASSIVE_ANSWER, false, 10),
                         HEALTH_SAME);
    assert_false(is_down(&f->srv[2]));
    /* once another is back, the failing one can go */
    atomic_store(&f->srv[0].down, false);
    assert_int_equal(health_state_passive(&f->srv[2], HEALTH_PASSIVE_ANSWER, false, 10),
                     HEALTH_WENT_DOWN);
    free(f);

    f = fixture_new(HEALTH_TCP, 2, 1);
    for (unsigned i = 0; i < NSRV; i++)
        assert_int_equal(health_state_check(&f->srv[i], false, "x"), HEALTH_WENT_DOWN);
    free(f);
}

/* check: none: a passively ejected server gets another try after the interval. */
static void test_retry_after_interval(void **state)
{
    struct fixture *f = fixture_new(HEALTH_NONE, 2, 1);
    struct server *s = &f->srv[0];

    assert_int_equal(health_state_retry(s, 1000, 5000), HEALTH_SAME); /* not ejected */
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 5000),
                     HEALTH_WENT_DOWN);
    assert_int_equal(health_state_retry(s, 1000, 5999), HEALTH_SAME);
    assert_int_equal(health_state_retry(s, 1000, 6000), HEALTH_WENT_UP);
    assert_false(is_down(s));
    assert_int_equal(atomic_load(&s->health.ejected_ms), 0);
    assert_int_equal(health_state_retry(s, 1000, 9000), HEALTH_SAME);
    /* a server put down by checks is not the retry's business */
    atomic_store(&s->down, true);
    assert_int_equal(health_state_retry(s, 1000, 99000), HEALTH_SAME);
    free(f);
}

/* Ejected in traffic while checks pass: it needs rise fresh passes to come back. */
static void test_passive_then_checks_rise(void **state)
{
    struct fixture *f = fixture_new(HEALTH_HTTP, 3, 2);
    struct server *s = &f->srv[0];

    for (int i = 0; i < 5; i++)
        assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 1), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 1), HEALTH_WENT_DOWN);
    assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_SAME);
    assert_true(is_down(s));
    assert_int_equal(health_state_check(s, true, "status 200"), HEALTH_WENT_UP);
    assert_int_equal(atomic_load(&s->health.ejected_ms), 0);
    /* and a check that finds it already ejected does not count a second transition */
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 2), HEALTH_SAME);
    assert_int_equal(health_state_passive(s, HEALTH_PASSIVE_CONNECT, false, 2), HEALTH_WENT_DOWN);
    assert_int_equal(health_state_check(s, false, "x"), HEALTH_SAME);
    assert_int_equal(health_state_check(s, false, "x"), HEALTH_SAME);
    assert_int_equal(atomic_load(&s->health.went_down), 2);
    free(f);
}

/* Reload: servers match by backend name, server name and address text. */
static void test_carry_match(void **state)
{
    struct fixture *old = fixture_new(HEALTH_HTTP, 2, 2), *neu = fixture_new(HEALTH_HTTP, 2, 2);

    assert_ptr_equal(health_state_match(&old->conf, &neu->srv[1]), &old->srv[1]);
    assert_null(health_state_match(NULL, &neu->srv[1]));
    neu->srv[1].addr.text = "127.0.0.1:9999"; /* moved: a new server */
    assert_null(health_state_match(&old->conf, &neu->srv[1]));
    neu->srv[2].name = "renamed";
    assert_null(health_state_match(&old->conf, &neu->srv[2]));
    neu->be.name = "other";
    assert_null(health_state_match(&old->conf, &neu->srv[0]));
    free(old);
    free(neu);
}

/* Reload: state and counters move over; a check-down server stays down only with checks. */
static void test_carry_state(void **state)
{
    struct fixture *old = fixture_new(HEALTH_HTTP, 2, 2), *neu = fixture_new(HEALTH_HTTP, 2, 2);

    health_state_check(&old->srv[0], false, "status 503, expected 200");
    health_state_check(&old->srv[0], false, "status 503, expected 200");
    health_state_check(&old->srv[0], true, "status 200"); /* one pass toward rise */
    assert_true(is_down(&old->srv[0]));
    health_state_carry(&neu->srv[0], &old->srv[0], true);
    assert_true(is_down(&neu->srv[0]));
    assert_int_equal(atomic_load(&neu->srv[0].health.check_failures), 2);
    assert_int_equal(atomic_load(&neu->srv[0].health.went_down), 1);
    assert_string_equal(neu->srv[0].health.last_reason, "status 200");
    /* the pass before the reload counts: one more brings it up */
    assert_int_equal(health_state_check(&neu->srv[0], true, "status 200"), HEALTH_WENT_UP);

    /* checks off in the new file: nothing would bring it back, so it starts up */
    health_state_carry(&neu->srv[1], &old->srv[0], false);
    assert_false(is_down(&neu->srv[1]));
    /* but a passive ejection is carried with its time */
    assert_int_equal(health_state_passive(&old->srv[2], HEALTH_PASSIVE_ANSWER, false, 40),
                     HEALTH_SAME);
    assert_int_equal(health_state_passive(&old->srv[2], HEALTH_PASSIVE_ANSWER, false, 42),
                     HEALTH_WENT_DOWN);
    health_state_carry(&neu->srv[2], &old->srv[2], false);
    assert_true(is_down(&neu->srv[2]));
    assert_int_equal(atomic_load(&neu->srv[2].health.ejected_ms), 42);
    free(old);
    free(neu);
}

/* Jitter stays within +-15% and is never 0; first checks spread over the interval. */
static void test_jitter(void **state)
{
    unsigned lo = UINT32_MAX, hi = 0;

    for (uint32_t r = 0; r < 1000; r++) {
        unsigned j = health_jitter(1000, r * 2654435761u);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
        assert_true(health_first_delay(200, r * 2654435761u) < 200);
    }
    assert_int_equal(lo, 850);
    assert_int_equal(hi, 1150);
    assert_int_equal(health_jitter(1, 0), 1);
    assert_int_equal(health_jitter(0, 7), 1);
    assert_int_equal(health_first_delay(0, 7), 0);
}

/* ---- status line ---- */

struct status_case {
    const char *in;
    enum health_parse want;
    unsigned status;
};

static const struct status_case status_cases[] = {
    {"HTTP/1.1 200 OK\r\n", HEALTH_PARSE_DONE, 200},
    {"HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\n", HEALTH_PARSE_DONE, 503},
    {"HTTP/1.1 204\r\n", HEALTH_PARSE_DONE, 204},
    {"HTTP/1.1 301\n", HEALTH_PARSE_DONE, 301},
    {"HTTP/1.1 599 \r\n", HEALTH_PARSE_DONE, 599},
    {"HTTP/1.1 200 OK", HEALTH_PARSE_MORE, 0},
    {"HTTP/1.1 20", HEALTH_PARSE_MORE, 0},
    {"", HEALTH_PARSE_MORE, 0},
    {"HTTP/2 200\r\n", HEALTH_PARSE_BAD, 0},
    {"HTTP/1.1 2000 OK\r\n", HEALTH_PARSE_BAD, 0},
    {"HTTP/1.1 20x OK\r\n", HEALTH_PARSE_BAD, 0},
    {"HTTP/1.1  200 OK\r\n", HEALTH_PARSE_BAD, 0},
    {"HTTP/1.1 099 Low\r\n", HEALTH_PARSE_BAD, 0},
    {"http/1.1 200 OK\r\n", HEALTH_PARSE_BAD, 0},
    {"SSH-2.0-OpenSSH_9.6\r\n", HEALTH_PARSE_BAD, 0},
    {"\x16\x03\x03\x00\x02\x02\x28", HEALTH_PARSE_BAD, 0},
};

/* Each case whole, then fed as every prefix: a prefix of a good line is MORE, never BAD. */
static void test_parse_status(void **state)
{
    for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const struct status_case *c = &status_cases[i];
        size_t len = strlen(c->in);
        unsigned status = 0;
        bool bad_seen = false;

        assert_int_equal(health_parse_status(c->in, len, &status), c->want);
        if (c->want == HEALTH_PARSE_DONE)
            assert_int_equal(status, c->status);
        for (size_t n = 0; n < len; n++) {
            enum health_parse r = health_parse_status(c->in, n, &status);
            if (c->want != HEALTH_PARSE_BAD) {
                /* up to the line feed it is MORE, after it DONE */
                const char *lf = strchr(c->in, '\n');
                enum health_parse w =
                    lf != NULL && (size_t)(lf - c->in) < n ? HEALTH_PARSE_DONE : HEALTH_PARSE_MORE;
                assert_int_equal(r, w);
            } else if (r == HEALTH_PARSE_BAD) {
                bad_seen = true;
            } else {
                assert_false(bad_seen); /* once BAD, longer input stays BAD */
            }
        }
    }
}

/* A line that never ends is BAD once it passes the limit, not MORE for ever. */
static void test_parse_status_limit(void **state)
{
    char buf[HEALTH_STATUS_LINE_MAX + 10];
    unsigned status;

    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "HTTP/1.1 200 ", 13);
    assert_int_equal(health_parse_status(buf, HEALTH_STATUS_LINE_MAX - 1, &status),
                     HEALTH_PARSE_MORE);
    assert_int_equal(health_parse_status(buf, HEALTH_STATUS_LINE_MAX, &status), HEALTH_PARSE_BAD);
    assert_int_equal(health_parse_status(buf, sizeof(buf), &status), HEALTH_PARSE_BAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_fall_and_rise),
        cmocka_unit_test(test_check_consecutive_only),
        cmocka_unit_test(test_check_rise_fall_one),
        cmocka_unit_test(test_passive_ejects_after_fall),
        cmocka_unit_test(test_passive_5xx_despite_connects),
        cmocka_unit_test(test_passive_spares_last_up),
        cmocka_unit_test(test_retry_after_interval),
        cmocka_unit_test(test_passive_then_checks_rise),
        cmocka_unit_test(test_carry_match),
        cmocka_unit_test(test_carry_state),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_parse_status),
        cmocka_unit_test(test_parse_status_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
