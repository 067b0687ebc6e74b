/*
 * Cookie stickiness: the value is the documented MAC, stable for one key and
 * different for every server, backend and key; lookup finds the server it
 * names and nothing for a forged, altered or stale value; Cookie header
 * parsing; the Set-Cookie line; the key file and the per-process random key.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sticky.h"

/* Two keys one bit apart. */
static const uint8_t key_a[STICKY_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[STICKY_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                              12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                              23, 24, 25, 26, 27, 28, 29, 30, 31, 33};

/* A backend named name with servers named by names[0..n). */
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

static const char *const web3[] = {"web1", "web2", "web3"};

/* The value computed independently: HMAC-SHA256(key, backend NUL server)[0..16) in hex. */
static void expected_value(const uint8_t *key, const char *backend, const char *server,
                           char out[STICKY_VALUE_LEN + 1])
{
    unsigned char data[256], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t bl = strlen(backend), sl = strlen(server);

    assert_true(bl + 1 + sl <= sizeof(data));
    memcpy(data, backend, bl + 1);
    memcpy(data + bl + 1, server, sl);
    assert_non_null(HMAC(EVP_sha256(), key, STICKY_KEY_LEN, data, bl + 1 + sl, md, &mdlen));
    for (size_t i = 0; i < STICKY_VALUE_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The value is the MAC the header documents, and the same every time. */
static void test_value_format_and_stable(void **state)
{
    struct fixture f;
    char v1[STICKY_VALUE_LEN + 1], v2[STICKY_VALUE_LEN + 1], want[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", web3, 3);
    sticky_value(key_a, &f.b, &f.s[0], v1);
    sticky_value(key_a, &f.b, &f.s[0], v2);
    assert_int_equal(strlen(v1), STICKY_VALUE_LEN);
    assert_string_equal(v1, v2);
    assert_int_equal(strspn(v1, "0123456789abcdef"), STICKY_VALUE_LEN);
    expected_value(key_a, "web", "web1", want);
    assert_string_equal(v1, want);
}

/* Every server, every backend, every key gives another value. */
static void test_value_differs(void **state)
{
    static const char *const swapped[] = {"web", "1web2"};
    struct fixture f, g, h;
    char v[3][STICKY_VALUE_LEN + 1], other[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", web3, 3);
    for (size_t i = 0; i < 3; i++)
        sticky_value(key_a, &f.b, &f.s[i], v[i]);
    assert_string_not_equal(v[0], v[1]);
    assert_string_not_equal(v[0], v[2]);
    assert_string_not_equal(v[1], v[2]);

    sticky_value(key_b, &f.b, &f.s[0], other);
    assert_string_not_equal(v[0], other);

    fixture_init(&g, "api", web3, 3);
    sticky_value(key_a, &g.b, &g.s[0], other);
    assert_string_not_equal(v[0], other);

    /* The NUL between the names: "web"+"1web2" is not "web1"+"web2". */
    fixture_init(&g, "web1", web3 + 1, 1);
    fixture_init(&h, "web", swapped + 1, 1);
    sticky_value(key_a, &g.b, &g.s[0], v[0]);
    sticky_value(key_a, &h.b, &h.s[0], v[1]);
    assert_string_not_equal(v[0], v[1]);
}

/* Lookup finds the server each value names. */
static void test_lookup_finds(void **state)
{
    struct fixture f;
    char v[STICKY_VALUE_LEN + 1];

    fixture_init(&f, "web", web3, 3);
    for (size_t i = 0; i < 3; i++) {
        sticky_value(key_a, &f.b, &f.s[i], v);
        assert_ptr_equal(sticky_lookup(key_a, &f.b, v, STICKY_VALUE_LEN), &f.s[i]);
    }
}

/* Forged, altered, cut, lengthened, upper-cased or non-hex values name nobody. */
static void test_lookup_refuses(void **state)
{
    struct fixture f, g;
    char v[STICKY_VALUE_LEN + 1], bad[STICKY_VALUE_LEN + 2];

    fixture_init(&f, "web", web3, 3);
    sticky_value(key_a, &f.b, &f.s[1], v);

    assert_null(sticky_lookup(key_a, &f.b, "00000000000000000000000000000000", 32));
    assert_null(sticky_lookup(key_a, &f.b, "0123456789abcdef0123456789abcdef", 32));
    for (size_t i = 0; i < STICKY_VALUE_LEN; i++) {
        memcpy(bad, v, sizeof(v));
        bad[i] = bad[i] == '0' ? '1' : '0';
        assert_null(sticky_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));
    }
    assert_null(sticky_lookup(key_a, &f.b, v, STICKY_VALUE_LEN - 1));
    assert_null(sticky_lookup(key_a, &f.b, v + 1, STICKY_VALUE_LEN - 1));
    assert_null(sticky_lookup(key_a, &f.b, v, 0));
    assert_null(sticky_lookup(key_a, &f.b, NULL, STICKY_VALUE_LEN));
    memcpy(bad, v, STICKY_VALUE_LEN);
    bad[STICKY_VALUE_LEN] = '0';
    assert_null(sticky_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN + 1));

    /* Upper case decodes to the same bytes but is never what we write. */
    memcpy(bad, v, sizeof(v));
    for (size_t i = 0; i < STICKY_VALUE_LEN; i++)
        if (bad[i] >= 'a' && bad[i] <= 'f')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    if (strcmp(bad, v) != 0)
        assert_null(sticky_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));
    memcpy(bad, v, sizeof(v));
    bad[5] = 'g';
    assert_null(sticky_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));
    bad[5] = ' ';
    assert_null(sticky_lookup(key_a, &f.b, bad, STICKY_VALUE_LEN));

    /* Another key, or the same server name in another backend: no. */
    assert_null(sticky_lookup(key_b, &f.b, v, STICKY_VALUE_LEN));
    fixture_init(&g, "api", web3, 3);
    assert_null(sticky_lookup(key_a, &g.b, v, STICKY_VALUE_LEN));
}

/* A server removed by a reload: its old cookie names nobody; the others still work. */
static void test_lookup_server_removed(void **state)
{
    static const char *const without2[] = {"web1", "web3"};
    struct fixture before, after;
    char v[3][STICKY_VALUE_LEN + 1];

    fixture_init(&before, "web", web3, 3);
    for (size_t i = 0; i < 3; i++)
        sticky_value(key_a, &before.b, &before.s[i], v[i]);
    fixture_init(&after, "web", without2, 2);
    assert_null(sticky_lookup(key_a, &after.b, v[1], STICKY_VALUE_LEN));
    assert_ptr_equal(sticky_lookup(key_a, &after.b, v[0], STICKY_VALUE_LEN), &after.s[0]);
    assert_ptr_equal(sticky_lookup(key_a, &after.b, v[2], STICKY_VALUE_LEN), &after.s[1]);

    fixture_init(&after, "web", NULL, 0);
    assert_null(sticky_lookup(key_a, &after.b, v[0], STICKY_VALUE_LEN));
}

/* Finds name in a Cookie header; NULL want = absent. */
static void check_cookie(const char *header, const char *name, const char *want)
{
    const char *val = NULL;
    size_t len = 0;
    int rc = sticky_find_cookie(header, strlen(header), name, &val, &len);

    if (want == NULL) {
        if (rc != 0)
            fail_msg("\"%s\": found \"%.*s\", want none", header, (int)len, val);
        return;
    }
    if (rc != 1)
        fail_msg("\"%s\": %s not found, want \"%s\"", header, name, want);
    if (len != strlen(want) || memcmp(val, want, len) != 0)
        fail_msg("\"%s\": got \"%.*s\", want \"%s\"", header, (int)len, val, want);
    assert_true(val >= header && val + len <= header + strlen(header));
}

static void test_find_cookie(void **state)
{
    check_cookie("a=1; TLSGW=abc; b=2", "TLSGW", "abc");
    check_cookie("TLSGW=abc", "TLSGW", "abc");
    check_cookie("a=1;TLSGW=abc;b=2", "TLSGW", "abc");
    check_cookie("a=1 ;  \tTLSGW = abc\t ;b=2", "TLSGW", "abc");
    check_cookie("a=1; TLSGW=abc ", "TLSGW", "abc");
    /* The name must be the whole name, case and all. */
    check_cookie("XTLSGW=1", "TLSGW", NULL);
    check_cookie("TLSGWX=1", "TLSGW", NULL);
    check_cookie("XTLSGW=1; TLSGW=2", "TLSGW", "2");
    check_cookie("tlsgw=1", "TLSGW", NULL);
    check_cookie("a=TLSGW=1", "TLSGW", NULL);
    /* First occurrence wins. */
    check_cookie("TLSGW=1; TLSGW=2", "TLSGW", "1");
    /* Empty values are present but empty; pairs without '=' are skipped. */
    check_cookie("TLSGW=", "TLSGW", "");
    check_cookie("TLSGW=; b=2", "TLSGW", "");
    check_cookie("TLSGW; TLSGW=x", "TLSGW", "x");
    check_cookie("TLSGW", "TLSGW", NULL);
    /* Quotes are not part of the value; a lone quote is kept. */
    check_cookie("TLSGW=\"abc\"", "TLSGW", "abc");
    check_cookie("a=1; TLSGW=\"\"; b", "TLSGW", "");
    check_cookie("TLSGW=\"", "TLSGW", "\"");
    check_cookie("TLSGW=a=b", "TLSGW", "a=b");
    check_cookie("", "TLSGW", NULL);
    check_cookie(";;; ;", "TLSGW", NULL);
    check_cookie("=x; TLSGW=y", "TLSGW", "y");
    check_cookie("TLSGW=1", "", NULL);
}

/* Only header_len bytes are read (header values are not NUL-terminated). */
static void test_find_cookie_bounded(void **state)
{
    const char *hdr = "TLSGW=abcdef; x=1";
    const char *val = NULL;
    size_t len = 0;
    char *exact = malloc(9);

    assert_non_null(exact);
    memcpy(exact, hdr, 9);
    assert_int_equal(sticky_find_cookie(exact, 9, "TLSGW", &val, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(val, "abc", 3);
    assert_int_equal(sticky_find_cookie(exact, 5, "TLSGW", &val, &len), 0);
    assert_int_equal(sticky_find_cookie(exact, 0, "TLSGW", &val, &len), 0);
    free(exact);
}

static void test_set_cookie(void **state)
{
    struct sticky_conf c = {.enabled = true, .cookie = "TLSGW"};
    const char *v = "00112233445566778899aabbccddeeff";
    char out[256];
    int n;

    n = sticky_set_cookie(&c, v, true, out, sizeof(out));
    assert_string_equal(out, "TLSGW=00112233445566778899aabbccddeeff; Path=/; Secure; HttpOnly; "
                             "SameSite=Lax");
    assert_int_equal(n, (int)strlen(out));
    sticky_set_cookie(&c, v, false, out, sizeof(out));
    assert_string_equal(out, "TLSGW=00112233445566778899aabbccddeeff; Path=/; HttpOnly; "
                             "SameSite=Lax");
    c.max_age = 3600;
    sticky_set_cookie(&c, v, true, out, sizeof(out));
    assert_string_equal(out, "TLSGW=00112233445566778899aabbccddeeff; Path=/; Secure; HttpOnly; "
                             "SameSite=Lax; Max-Age=3600");
    sticky_set_cookie(&c, v, false, out, sizeof(out));
    assert_string_equal(out, "TLSGW=00112233445566778899aabbccddeeff; Path=/; HttpOnly; "
                             "SameSite=Lax; Max-Age=3600");
}

static void test_set_cookie_too_small(void **state)
{
    struct sticky_conf c = {.enabled = true, .cookie = "S", .max_age = 60};
    char out[128];
    int n;

    n = sticky_set_cookie(&c, "v", true, out, sizeof(out));
    assert_int_equal(n, (int)strlen("S=v; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=60"));
    assert_int_equal(sticky_set_cookie(&c, "v", true, out, (size_t)n + 1), n);
    assert_int_equal(sticky_set_cookie(&c, "v", true, out, (size_t)n), -1);
    assert_string_equal(out, "");
    assert_int_equal(sticky_set_cookie(&c, "v", true, out, 0), -1);
}

/* A temporary file holding n bytes of fill; its path in path[64]. */
static void temp_file(char path[64], size_t n, char fill)
{
    char buf[8192];
    int fd;

    assert_true(n <= sizeof(buf));
    snprintf(path, 64, "/tmp/tlsgate-sticky-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    memset(buf, fill, n);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

/* The key is SHA-256 of the file's bytes, for every length from 16 to 4096. */
static void test_key_file(void **state)
{
    static const size_t sizes[] = {16, 17, 4095, 4096};
    uint8_t key[STICKY_KEY_LEN], want[STICKY_KEY_LEN], buf[4096];
    char path[64], why[256];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        temp_file(path, sizes[i], 'k');
        memset(buf, 'k', sizes[i]);
        assert_int_equal(EVP_Digest(buf, sizes[i], want, NULL, EVP_sha256(), NULL), 1);
        why[0] = '\0';
        assert_int_equal(sticky_key_load(path, key, why, sizeof(why)), 0);
        assert_memory_equal(key, want, STICKY_KEY_LEN);
        assert_string_equal(why, "");
        unlink(path);
    }
}

static void test_key_file_errors(void **state)
{
    uint8_t key[STICKY_KEY_LEN];
    char path[64], why[256], want[320];

    assert_int_equal(sticky_key_load("/nonexistent/tlsgate.key", key, why, sizeof(why)), -1);
    assert_string_equal(why, "cannot read '/nonexistent/tlsgate.key': No such file or directory");

    assert_int_equal(sticky_key_load("/tmp", key, why, sizeof(why)), -1);
    assert_string_equal(why, "cannot read '/tmp': Is a directory");

    temp_file(path, 15, 's');
    assert_int_equal(sticky_key_load(path, key, why, sizeof(why)), -1);
    snprintf(want, sizeof(want), "'%s' is shorter than 16 bytes", path);
    assert_string_equal(why, want);
    unlink(path);

    temp_file(path, 0, 's');
    assert_int_equal(sticky_key_load(path, key, why, sizeof(why)), -1);
    snprintf(want, sizeof(want), "'%s' is shorter than 16 bytes", path);
    assert_string_equal(why, want);
    unlink(path);

    temp_file(path, 4097, 'l');
    assert_int_equal(sticky_key_load(path, key, why, sizeof(why)), -1);
    snprintf(want, sizeof(want), "'%s' is longer than 4096 bytes", path);
    assert_string_equal(why, want);
    unlink(path);

    /* why is optional. */
    assert_int_equal(sticky_key_load("/nonexistent/tlsgate.key", key, NULL, 0), -1);
}

static void *random_key_thread(void *arg)
{
    uint8_t *key = arg;

    return sticky_key_load(NULL, key, NULL, 0) == 0 ? key : NULL;
}

/* No file: one random key for the whole process, whoever asks first. */
static void test_random_key(void **state)
{
    static const uint8_t zero[STICKY_KEY_LEN];
    uint8_t k1[STICKY_KEY_LEN], k2[STICKY_KEY_LEN], kt[4][STICKY_KEY_LEN];
    pthread_t t[4];
    char why[64];
    void *ret;

    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, random_key_thread, kt[i]), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_ptr_equal(ret, kt[i]);
    }
    assert_int_equal(sticky_key_load("", k1, why, sizeof(why)), 0);
    assert_int_equal(sticky_key_load(NULL, k2, why, sizeof(why)), 0);
    assert_memory_equal(k1, k2, STICKY_KEY_LEN);
    assert_memory_not_equal(k1, zero, STICKY_KEY_LEN);
    for (size_t i = 0; i < 4; i++)
        assert_memory_equal(kt[i], k1, STICKY_KEY_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_format_and_stable),
        cmocka_unit_test(test_value_differs),
        cmocka_unit_test(test_lookup_finds),
        cmocka_unit_test(test_lookup_refuses),
        cmocka_unit_test(test_lookup_server_removed),
        cmocka_unit_test(test_find_cookie),
        cmocka_unit_test(test_find_cookie_bounded),
        cmocka_unit_test(test_set_cookie),
        cmocka_unit_test(test_set_cookie_too_small),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_key_file_errors),
        cmocka_unit_test(test_random_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
