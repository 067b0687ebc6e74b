/*
 * The per-thread memo of cookie values answers exactly what sticky_value and
 * sticky_lookup answer: the same values, never a stale one when the key or a
 * name changed behind the same server address (a reload), names too long to
 * remember, and lookups that refuse what sticky_lookup refuses; and the same
 * Set-Cookie lines as sticky_set_cookie whatever changes between calls.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/sticky_memo.h"

static const uint8_t key_a[STICKY_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[STICKY_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 33};

#define LONG_NAME "a-server-name-longer-than-the-memo-keeps-0123456789-0123456789-0123456789"

struct fixture {
    struct backend b;
    struct server s[4];
};

static void fixture_init(struct fixture *f, const char *name, const char *const *names, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->b.name = (char *)name;
    f->b.servers = f->s;
    f->b.nservers = n;
    for (size_t i = 0; i < n; i++) {
        f->s[i].name = (char *)names[i];
        f->s[i].index = (unsigned)i;
        f->s[i].backend = &f->b;
    }
}

static const char *const names4[] = {"web1", "web2", LONG_NAME, "web4"};

/* Memo answers equal sticky_value's, first time and every time after. */
static void test_value_matches(void **state)
{
    struct fixture f;
    char want[STICKY_VALUE_LEN + 1], got[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", names4, 4);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 4; i++) {
            sticky_value(key_a, &f.b, &f.s[i], want);
            sticky_memo_value(key_a, &f.b, &f.s[i], got);
            assert_int_equal(strlen(got), STICKY_VALUE_LEN);
            assert_string_equal(got, want);
        }
    }
}

/* Same server address, another key, backend or server name: a new value, never the memo's. */
static void test_value_not_stale(void **state)
{
    struct fixture f;
    char first[STICKY_VALUE_LEN + 1], got[STICKY_VALUE_LEN + 1], want[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", names4, 2);
    sticky_memo_value(key_a, &f.b, &f.s[0], first);

    sticky_memo_value(key_b, &f.b, &f.s[0], got);
    sticky_value(key_b, &f.b, &f.s[0], want);
    assert_string_equal(got, want);
    assert_string_not_equal(got, first);

    f.b.name = "api";
    sticky_memo_value(key_a, &f.b, &f.s[0], got);
    sticky_value(key_a, &f.b, &f.s[0], want);
    assert_string_equal(got, want);
    assert_string_not_equal(got, first);

    f.b.name = "web";
    f.s[0].name = "web9";
    sticky_memo_value(key_a, &f.b, &f.s[0], got);
    sticky_value(key_a, &f.b, &f.s[0], want);
    assert_string_equal(got, want);
    assert_string_not_equal(got, first);

    f.s[0].name = "web1";
    sticky_memo_value(key_a, &f.b, &f.s[0], got);
    assert_string_equal(got, first);
}

/* Lookup names each server by its value, long names included. */
static void test_lookup_finds(void **state)
{
    struct fixture f;
    char v[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", names4, 4);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 4; i++) {
            sticky_value(key_a, &f.b, &f.s[i], v);
            assert_ptr_equal(sticky_memo_lookup(key_a, &f.b, v, STICKY_VALUE_LEN), &f.s[i]);
            assert_ptr_equal(sticky_lookup(key_a, &f.b, v, STICKY_VALUE_LEN), &f.s[i]);
        }
    }
}

/* What sticky_lookup refuses, the memo refuses too. */
static void test_lookup_refuses(void **state)
{
    struct fixture f, other;
    char v[STICKY_VALUE_LEN + 1], bad[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", names4, 4);
    fixture_init(&other, "web", (const char *const[]){"web1", "web2", "web3", "web5"}, 4);
    sticky_value(key_a, &f.b, &f.s[1], v);
    assert_null(sticky_memo_lookup(key_a, &f.b, NULL, 0));
    assert_null(sticky_memo_lookup(key_a, &f.b, v, STICKY_VALUE_LEN - 1));
    assert_null(sticky_memo_lookup(key_b, &f.b, v, STICKY_VALUE_LEN));
    memcpy(bad, v, sizeof(bad));
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_null(sticky_memo_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));
    memcpy(bad, v, sizeof(bad));
    for (size_t i = 0; i < STICKY_VALUE_LEN; i++)
        if (bad[i] >= 'a' && bad[i] <= 'f')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    if (strcmp(bad, v) != 0)
        assert_null(sticky_memo_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));
    /* A server gone from the backend (reload) is found no more. */
    sticky_value(key_a, &f.b, &f.s[3], v);
    assert_null(sticky_memo_lookup(key_a, &other.b, v, STICKY_VALUE_LEN));
    other.b.nservers = 0;
    assert_null(sticky_memo_lookup(key_a, &other.b, v, STICKY_VALUE_LEN));
}

static void *thread_values(void *arg)
{
    struct fixture *f = arg;
    char got[STICKY_VALUE_LEN + 1], want[STICKY_VALUE_LEN + 1];

    for (int round = 0; round < 100; round++) {
        for (size_t i = 0; i < f->b.nservers; i++) {
            sticky_memo_value(key_a, &f->b, &f->s[i], got);
            sticky_value(key_a, &f->b, &f->s[i], want);
            if (strcmp(got, want) != 0)
                return (void *)1;
        }
    }
    return NULL;
}

/* Each thread has its memo: threads that use the same servers all get the right values. */
static void test_threads(void **state)
{
    struct fixture f;
    pthread_t t[4];
    void *ret;

    fixture_init(&f, "web", names4, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_values, &f), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
}

/* Every input of the line changes it; a buffer too small is refused even when remembered. */
static void test_set_cookie(void **state)
{
    struct sticky_conf c = {.enabled = true, .cookie = "SRV"};
    const char *values[] = {"0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"};
    char got[512], want[512];
    int n;

    for (int round = 0; round < 2; round++) {
        for (int v = 0; v < 2; v++) {
            for (int secure = 0; secure < 2; secure++) {
                for (unsigned age = 0; age < 2; age++) {
                    c.max_age = age * 3600;
                    c.cookie = round == 0 ? "SRV" : "TLSGW";
                    n = sticky_memo_set_cookie(&c, values[v], secure, got, sizeof(got));
                    assert_int_equal(n,
                                     sticky_set_cookie(&c, values[v], secure, want, sizeof(want)));
                    assert_string_equal(got, want);
                    n = sticky_memo_set_cookie(&c, values[v], secure, got, sizeof(got));
                    assert_int_equal(n, (int)strlen(want));
                    assert_string_equal(got, want);
                }
            }
        }
    }
    assert_int_equal(sticky_memo_set_cookie(&c, values[1], true, got, 10), -1);
    assert_int_equal(sticky_memo_set_cookie(&c, NULL, true, got, sizeof(got)), -1);
    c.cookie = NULL;
    assert_int_equal(sticky_memo_set_cookie(&c, values[1], true, got, sizeof(got)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_matches), cmocka_unit_test(test_value_not_stale),
        cmocka_unit_test(test_lookup_finds),  cmocka_unit_test(test_lookup_refuses),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_set_cookie),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
