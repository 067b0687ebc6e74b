/*
 * Address parsing and printing, table-driven: what an operator may write in a
 * bind, server or admin address, and the reason given when it is wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

struct good_case {
    const char *text;
    int family;
    const char *formatted; /* addr_format of the result */
};

struct bad_case {
    const char *text;
    const char *why; /* prefix of the reason */
};

/* Every accepted form parses and prints back as ip:port. */
static void test_parse_good(void **state)
{
    static const struct good_case cases[] = {
        {"127.0.0.1:80", AF_INET, "127.0.0.1:80"},
        {"0.0.0.0:8443", AF_INET, "0.0.0.0:8443"},
        {"10.1.2.3:65535", AF_INET, "10.1.2.3:65535"},
        {"1.2.3.4:0", AF_INET, "1.2.3.4:0"},
        {"[::1]:443", AF_INET6, "[::1]:443"},
        {"[::]:8443", AF_INET6, "[::]:8443"},
        {"[2001:db8::5]:9000", AF_INET6, "[2001:db8::5]:9000"},
        {"*:8080", AF_INET, "0.0.0.0:8080"},
        {":8080", AF_INET, "0.0.0.0:8080"},
        {"127.0.0.1:00080", AF_INET, "127.0.0.1:80"},
    };
    struct sockaddr_storage ss;
    char buf[ADDR_STRLEN], why[128];
    socklen_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        if (addr_parse(cases[i].text, &ss, &len, why, sizeof(why)) != 0)
            fail_msg("'%s' refused: %s", cases[i].text, why);
        assert_int_equal(ss.ss_family, cases[i].family);
        assert_int_equal(len, cases[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                         : sizeof(struct sockaddr_in6));
        assert_string_equal(addr_format((struct sockaddr *)&ss, buf, sizeof(buf)),
                            cases[i].formatted);
    }
}

/* Host names are resolved (localhost is in every /etc/hosts). */
static void test_parse_name(void **state)
{
    struct sockaddr_storage ss;
    char why[128];
    socklen_t len;

    assert_int_equal(addr_parse("localhost:9445", &ss, &len, why, sizeof(why)), 0);
    assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    assert_int_equal(addr_port((struct sockaddr *)&ss), 9445);
}

/* Every refused form says why. */
static void test_parse_bad(void **state)
{
    static const struct bad_case cases[] = {
        {"", "empty address"},
        {"127.0.0.1", "missing ':port'"},
        {"127.0.0.1:", "missing port after ':'"},
        {"127.0.0.1:65536", "port 65536 out of range (0-65535)"},
        {"127.0.0.1:9999999", "port 9999999 out of range"},
        {"127.0.0.1:-1", "port '-1' is not a number"},
        {"127.0.0.1:http", "port 'http' is not a number"},
        {"::1:80", "IPv6 addresses need brackets, e.g. [::1]:443"},
        {"[::1", "missing ']' after IPv6 address"},
        {"[::1]80", "missing ':port' after ']'"},
        {"[]:80", "empty IPv6 address between brackets"},
        {"[127.0.0.1]:80", "'127.0.0.1' is not an IPv6 address"},
        {"[web.lab.test]:80", "'web.lab.test' is not an IPv6 address"},
        {"no-such-host.invalid:80", "cannot resolve 'no-such-host.invalid': "},
    };
    struct sockaddr_storage ss;
    char why[128];
    socklen_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        assert_int_equal(addr_parse(cases[i].text, &ss, &len, why, sizeof(why)), -1);
        if (strncmp(why, cases[i].why, strlen(cases[i].why)) != 0)
            fail_msg("'%s': got reason '%s', want '%s'", cases[i].text, why, cases[i].why);
    }
    assert_int_equal(addr_parse(NULL, &ss, &len, NULL, 0), -1);
    assert_int_equal(addr_parse("x", &ss, &len, why, 4), -1);
    assert_string_equal(why, "mis");
}

/* IP-only printing, ports, and families other than IPv4/IPv6. */
static void test_format(void **state)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1234)};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = "/run/x.sock"};
    struct sockaddr_storage other = {.ss_family = AF_PACKET};
    char buf[ADDR_STRLEN], small[8];

    inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
    inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
    assert_string_equal(addr_format((struct sockaddr *)&sin, buf, sizeof(buf)), "192.0.2.7:1234");
    assert_string_equal(addr_format_ip((struct sockaddr *)&sin, buf, sizeof(buf)), "192.0.2.7");
    assert_int_equal(addr_port((struct sockaddr *)&sin), 1234);
    assert_string_equal(addr_format((struct sockaddr *)&sin6, buf, sizeof(buf)),
                        "[2001:db8::7]:443");
    assert_string_equal(addr_format_ip((struct sockaddr *)&sin6, buf, sizeof(buf)), "2001:db8::7");
    assert_int_equal(addr_port((struct sockaddr *)&sin6), 443);
    assert_string_equal(addr_format((struct sockaddr *)&sun, buf, sizeof(buf)), "unix:/run/x.sock");
    assert_int_equal(addr_port((struct sockaddr *)&sun), 0);
    assert_string_equal(addr_format((struct sockaddr *)&other, buf, sizeof(buf)), "?");
    assert_int_equal(addr_port((struct sockaddr *)&other), 0);
    /* Truncated, still terminated. */
    addr_format((struct sockaddr *)&sin, small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* The longest address fits ADDR_STRLEN. */
static void test_format_longest(void **state)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(65535)};
    char buf[ADDR_STRLEN];

    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", &sin6.sin6_addr);
    sin6.sin6_scope_id = 4000000000u;
    addr_format((struct sockaddr *)&sin6, buf, sizeof(buf));
    assert_non_null(strstr(buf, "]:65535"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),     cmocka_unit_test(test_parse_name),
        cmocka_unit_test(test_parse_bad),      cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_longest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
