/* json_escape: what a client's bytes become in a JSON access-log string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "accesslog.h"

static void expect(const char *in, const char *want)
{
    char buf[256];
    size_t n = json_escape(buf, sizeof(buf), in);

    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_ascii(void **state)
{
    (void)state;
    expect("/path?q=1", "/path?q=1");
    expect("a\"b\\c", "a\\\"b\\\\c");
    expect("", "");
}

static void test_control_bytes(void **state)
{
    (void)state;
    expect("a\nb\r\tc", "a\\u000ab\\u000d\\u0009c");
    expect("\x7f", "\\u007f");
    expect("\x1b[31m", "\\u001b[31m");
}

static void test_utf8_kept(void **state)
{
    (void)state;
    expect("/caf\xc3\xa9", "/caf\xc3\xa9");           /* é, 2 bytes */
    expect("\xe2\x82\xac", "\xe2\x82\xac");           /* €, 3 bytes */
    expect("\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!"); /* U+1F600, 4 bytes */
    expect("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");   /* U+10FFFF, the last */
    expect("\xed\x9f\xbf", "\xed\x9f\xbf");           /* U+D7FF, just below the surrogates */
}

static void test_not_utf8_escaped(void **state)
{
    (void)state;
    expect("\x80", "\\u0080");                                  /* a lone continuation byte */
    expect("\xc0\xaf", "\\u00c0\\u00af");                       /* overlong '/' */
    expect("\xe0\x80\xaf", "\\u00e0\\u0080\\u00af");            /* overlong, 3 bytes */
    expect("\xed\xa0\x80", "\\u00ed\\u00a0\\u0080");            /* a surrogate */
    expect("\xf4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080"); /* above U+10FFFF */
    expect("\xe2\x82", "\\u00e2\\u0082");                       /* cut short by the end */
    expect("\xe2\x82x", "\\u00e2\\u0082x");                     /* cut short by ASCII */
    expect("\xff\xfe", "\\u00ff\\u00fe");
}

static void test_bounded(void **state)
{
    char buf[8];

    (void)state;
    assert_int_equal(json_escape(buf, sizeof(buf), "abcdefghij"), 7);
    assert_string_equal(buf, "abcdefg");
    /* A character or an escape that does not fit whole is left out whole. */
    assert_int_equal(json_escape(buf, sizeof(buf), "abcde\xe2\x82\xac"), 5);
    assert_string_equal(buf, "abcde");
    assert_int_equal(json_escape(buf, sizeof(buf), "ab\n"), 2);
    assert_string_equal(buf, "ab");
    assert_int_equal(json_escape(buf, 0, "x"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),     cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_utf8_kept), cmocka_unit_test(test_not_utf8_escaped),
        cmocka_unit_test(test_bounded),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
