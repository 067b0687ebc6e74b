/*
 * PROXY protocol v1/v2: build -> parse round trips, a table of valid and
 * invalid headers fed whole, byte by byte and at every split point, and the
 * signature decisions (ABSENT vs NEED_MORE vs BAD).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_proto.h"

#define V2_SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

/* One table row: header bytes, what pp_parse says about them whole. */
struct pp_case {
    const char *name;
    const char *bytes; /* may hold NULs: len says how many */
    size_t len;        /* 0 = strlen(bytes) */
    enum pp_version accept;
    enum pp_result want;
    /* PP_OK rows only */
    int version;
    bool local;
    const char *src; /* "ip port", NULL for local */
    const char *dst;
};

#define ROW_V1(n, s, acc, res)                                                                     \
    {                                                                                              \
        n, s, 0, acc, res, 1, false, NULL, NULL                                                    \
    }
#define BIN(s) s, sizeof(s) - 1

static const struct pp_case valid_cases[] = {
    {"spec example tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", 0, PP_ANY, PP_OK, 1,
     false, "192.168.0.1 56324", "192.168.0.11 443"},
    {"tcp4 longest", "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", 0, PP_V1, PP_OK,
     1, false, "255.255.255.255 65535", "255.255.255.255 65535"},
    {"tcp4 ports 0", "PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", 0, PP_ANY, PP_OK, 1, false, "0.0.0.0 0",
     "10.0.0.1 0"},
    {"tcp6 compressed", "PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", 0, PP_ANY, PP_OK, 1, false,
     "2001:db8::1 1", "::1 65535"},
    {"tcp6 longest (104)",
     "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "65535 65535\r\n",
     0, PP_ANY, PP_OK, 1, false, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535",
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535"},
    {"tcp6 mapped v4", "PROXY TCP6 ::ffff:10.1.2.3 ::ffff:10.1.2.4 1000 443\r\n", 0, PP_ANY, PP_OK,
     1, false, "::ffff:10.1.2.3 1000", "::ffff:10.1.2.4 443"},
    {"unknown short", "PROXY UNKNOWN\r\n", 0, PP_ANY, PP_OK, 1, true, NULL, NULL},
    {"unknown worst case (107)",
     "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
     "65535 65535\r\n",
     0, PP_V1, PP_OK, 1, true, NULL, NULL},
    {"unknown with junk", "PROXY UNKNOWN whatever goes\r\n", 0, PP_ANY, PP_OK, 1, true, NULL, NULL},
    {"v2 tcp4",
     BIN(V2_SIG "\x21\x11\x00\x0C"
                "\x7F\x00\x00\x01\x0A\x00\x00\x02\x04\xD2\x01\xBB"),
     PP_V2, PP_OK, 2, false, "127.0.0.1 1234", "10.0.0.2 443"},
    {"v2 tcp6",
     BIN(V2_SIG "\x21\x21\x00\x24"
                "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
                "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
                "\xFF\xFF\x00\x00"),
     PP_ANY, PP_OK, 2, false, "2001:db8::1 65535", "::1 0"},
    {"v2 tcp4 with TLVs skipped",
     BIN(V2_SIG "\x21\x11\x00\x1D"
                "\x7F\x00\x00\x01\x0A\x00\x00\x02\x04\xD2\x01\xBB"
                "\x01\x00\x02h2" /* ALPN */
                "\x04\x00\x00"   /* NOOP, empty */
                "\x02\x00\x06"
                "a.test"), /* AUTHORITY */
     PP_ANY, PP_OK, 2, false, "127.0.0.1 1234", "10.0.0.2 443"},
    {"v2 local unspec", BIN(V2_SIG "\x20\x00\x00\x00"), PP_ANY, PP_OK, 2, true, NULL, NULL},
    {"v2 local with ignored block",
     BIN(V2_SIG "\x20\x11\x00\x05"
                "abcde"),
     PP_V2, PP_OK, 2, true, NULL, NULL},
    {"v2 local unix family", BIN(V2_SIG "\x20\x31\x00\x00"), PP_ANY, PP_OK, 2, true, NULL, NULL},
};

static const struct pp_case invalid_cases[] = {
    ROW_V1("http", "GET / HTTP/1.1\r\n", PP_ANY, PP_ABSENT),
    ROW_V1("lower-case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ANY, PP_ABSENT),
    ROW_V1("PROXX", "PROXX TCP4\r\n", PP_ANY, PP_ABSENT),
    ROW_V1("no space after PROXY", "PROXY\r\n", PP_ANY, PP_BAD),
    ROW_V1("two spaces after PROXY", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("unknown proto", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("udp proto", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("two spaces between addresses", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("tab separator", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("space before CRLF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", PP_ANY, PP_BAD),
    ROW_V1("extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", PP_ANY, PP_BAD),
    ROW_V1("missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", PP_ANY, PP_BAD),
    ROW_V1("missing addresses", "PROXY TCP4\r\n", PP_ANY, PP_BAD),
    ROW_V1("LF only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", PP_ANY, PP_BAD),
    ROW_V1("CR only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", PP_ANY, PP_BAD),
    ROW_V1("unknown LF only", "PROXY UNKNOWN\n", PP_ANY, PP_BAD),
    ROW_V1("unknown lone CR", "PROXY UNKNOWN a\rb\r\n", PP_ANY, PP_BAD),
    ROW_V1("unknownX", "PROXY UNKNOWNX\r\n", PP_ANY, PP_BAD),
    ROW_V1("port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("port 99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", PP_ANY, PP_BAD),
    ROW_V1("port 6 digits", "PROXY TCP4 1.2.3.4 5.6.7.8 000001 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("port heading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("port plus sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("port minus sign", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("port hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv4 octet 256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv4 heading zero", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv4 three parts", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv4 hostname", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv6 in tcp4", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv4 in tcp6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv6 two ::", "PROXY TCP6 1::2::3 ::1 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("ipv6 scope id", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", PP_ANY, PP_BAD),
    ROW_V1("tcp6 over 107 bytes",
           "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
           "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n",
           PP_ANY, PP_BAD),
    ROW_V1(
        "unknown 108 bytes",
        "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
        "ffff 65535 655350\r\n",
        PP_ANY, PP_BAD),
    ROW_V1(
        "no CRLF within 107 bytes",
        "PROXY UNKNOWN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        PP_ANY, PP_BAD),
    ROW_V1("v1 when only v2 accepted", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_V2, PP_BAD),
    ROW_V1("v1 when off", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", PP_OFF, PP_BAD),
    {"tls client hello", BIN("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), PP_ANY, PP_ABSENT, 0,
     false, NULL, NULL},
    {"nul byte", BIN("\x00"), PP_ANY, PP_ABSENT, 0, false, NULL, NULL},
    {"CRLF then http", BIN("\r\nGET / HTTP/1.1\r\n"), PP_ANY, PP_ABSENT, 0, false, NULL, NULL},
    {"v2 signature, last byte wrong", BIN("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0B"),
     PP_ANY, PP_ABSENT, 0, false, NULL, NULL},
    {"v2 version 1",
     BIN(V2_SIG "\x11\x11\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 version 3",
     BIN(V2_SIG "\x31\x11\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 command 2",
     BIN(V2_SIG "\x22\x11\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 family 4",
     BIN(V2_SIG "\x21\x41\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 local undefined family", BIN(V2_SIG "\x20\x13\x00\x00"), PP_ANY, PP_BAD, 0, false, NULL,
     NULL},
    {"v2 proxy udp4",
     BIN(V2_SIG "\x21\x12\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 proxy unspec", BIN(V2_SIG "\x21\x00\x00\x00"), PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 proxy unix", BIN(V2_SIG "\x21\x31\x00\x00"), PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 tcp4 length 11",
     BIN(V2_SIG "\x21\x11\x00\x0B"
                "12345678901"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 tcp6 length 12 (tcp4 size)",
     BIN(V2_SIG "\x21\x21\x00\x0C"
                "123456789012"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 tcp4 TLV header cut",
     BIN(V2_SIG "\x21\x11\x00\x0E"
                "123456789012"
                "\x04\x00"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 tcp4 TLV value past length",
     BIN(V2_SIG "\x21\x11\x00\x10"
                "123456789012"
                "\x04\x00\x02x"),
     PP_ANY, PP_BAD, 0, false, NULL, NULL},
    {"v2 when only v1 accepted", BIN(V2_SIG "\x20\x00\x00\x00"), PP_V1, PP_BAD, 0, false, NULL,
     NULL},
};

/* Bytes of a case and their length. */
static size_t case_len(const struct pp_case *c)
{
    return c->len != 0 ? c->len : strlen(c->bytes);
}

/* Formats "ip port" of a parsed address for comparison. */
static void fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s %u", ip, ntohs(sin->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s %u", ip, ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, len, "family %d", ss->ss_family);
    }
}

/* Asserts a PP_OK parse matches the row's expectations. */
static void check_info(const struct pp_case *c, const struct pp_info *info, size_t hdr_len)
{
    char got[INET6_ADDRSTRLEN + 8];

    assert_int_equal(info->version, c->version);
    assert_int_equal(info->local, c->local);
    assert_int_equal(info->consumed, hdr_len);
    if (c->local)
        return;
    fmt_addr(&info->src, got, sizeof(got));
    assert_string_equal(got, c->src);
    fmt_addr(&info->dst, got, sizeof(got));
    assert_string_equal(got, c->dst);
}

/* Valid headers: whole, and with a request following that must stay unread. */
static void test_valid_table(void **state)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct pp_case *c = &valid_cases[i];
        size_t n = case_len(c);
        uint8_t buf[PP_V1_MAX + 256];
        struct pp_info info;

        print_message("  %s\n", c->name);
        memcpy(buf, c->bytes, n);
        assert_int_equal(pp_parse(buf, n, c->accept, &info), PP_OK);
        check_info(c, &info, n);

        memcpy(buf + n, "GET / HTTP/1.1\r\n\r\n", 18);
        assert_int_equal(pp_parse(buf, n + 18, c->accept, &info), PP_OK);
        check_info(c, &info, n);
    }
}

/* Every proper prefix of a valid header asks for more, never anything else. */
static void test_valid_every_prefix_needs_more(void **state)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct pp_case *c = &valid_cases[i];
        size_t n = case_len(c);
        struct pp_info info;

        for (size_t k = 0; k < n; k++) {
            enum pp_result r = pp_parse((const uint8_t *)c->bytes, k, c->accept, &info);
            if (r != PP_NEED_MORE)
                fail_msg("%s: prefix %zu of %zu gave %d", c->name, k, n, r);
        }
    }
}

/*
 * Invalid headers fed byte by byte: prefixes answer NEED_MORE until the
 * verdict, the verdict never changes once given, and the whole is the row's.
 */
static void test_invalid_table_byte_by_byte(void **state)
{
    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
        const struct pp_case *c = &invalid_cases[i];
        size_t n = case_len(c);
        enum pp_result verdict = PP_NEED_MORE;
        struct pp_info info;

        print_message("  %s\n", c->name);
        for (size_t k = 1; k <= n; k++) {
            enum pp_result r = pp_parse((const uint8_t *)c->bytes, k, c->accept, &info);
            if (r == PP_OK)
                fail_msg("%s: prefix %zu parsed OK", c->name, k);
            if (verdict != PP_NEED_MORE && r != verdict)
                fail_msg("%s: verdict changed at %zu: %d -> %d", c->name, k, verdict, r);
            verdict = r;
        }
        if (verdict != c->want)
            fail_msg("%s: got %d, want %d", c->name, verdict, c->want);
    }
}

/* Bad input is refused as early as the bytes prove it, not at the CRLF. */
static void test_bad_decided_early(void **state)
{
    static const char *v1[] = {
        "PROXY TCP5",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01",
        "PROXY TCP4 1.2.3.4  ",
        "PROXY TCP4 1.2.3.4x",
        "PROXY TCP4 1111111111111111",
        "PROXY UNKNOWN \n",
    };
    static const uint8_t v2_version[] = V2_SIG "\x10";
    static const uint8_t v2_family[] = V2_SIG "\x21\x51";
    static const uint8_t v2_short[] = V2_SIG "\x21\x21\x00\x0C";
    struct pp_info info;

    for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
        if (pp_parse((const uint8_t *)v1[i], strlen(v1[i]), PP_ANY, &info) != PP_BAD)
            fail_msg("'%s' not refused early", v1[i]);
    }
    assert_int_equal(pp_parse(v2_version, sizeof(v2_version) - 1, PP_ANY, &info), PP_BAD);
    assert_int_equal(pp_parse(v2_family, sizeof(v2_family) - 1, PP_ANY, &info), PP_BAD);
    assert_int_equal(pp_parse(v2_short, sizeof(v2_short) - 1, PP_ANY, &info), PP_BAD);
}

/* The signature decisions the listener relies on. */
static void test_absent_and_empty(void **state)
{
    static const uint8_t hello = 0x16;
    struct pp_info info;

    assert_int_equal(pp_parse((const uint8_t *)"", 0, PP_ANY, &info), PP_NEED_MORE);
    assert_int_equal(pp_parse((const uint8_t *)"GET /", 5, PP_ANY, &info), PP_ABSENT);
    assert_int_equal(pp_parse((const uint8_t *)"G", 1, PP_V1, &info), PP_ABSENT);
    assert_int_equal(pp_parse(&hello, 1, PP_ANY, &info), PP_ABSENT);
    assert_int_equal(pp_parse(&hello, 1, PP_V2, &info), PP_ABSENT);
    assert_int_equal(pp_parse((const uint8_t *)"P", 1, PP_ANY, &info), PP_NEED_MORE);
    assert_int_equal(pp_parse((const uint8_t *)"\r", 1, PP_ANY, &info), PP_NEED_MORE);
    assert_int_equal(pp_parse((const uint8_t *)"PR0", 3, PP_ANY, &info), PP_ABSENT);
    assert_int_equal(pp_parse((const uint8_t *)"\r\n\r\n\x00\r\n", 7, PP_ANY, &info), PP_NEED_MORE);
}

/* Fills a sockaddr_storage from "ip" and a port. */
static void make_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    }
}

/* Builds src->dst in version v, parses it back, checks what came out. */
static void round_trip(enum pp_version v, const char *sip, uint16_t sport, const char *dip,
                       uint16_t dport, const char *want_src, const char *want_dst)
{
    struct sockaddr_storage s, d;
    uint8_t out[PP_HDR_MAX + 16];
    struct pp_info info;
    char got[INET6_ADDRSTRLEN + 8];
    int n;

    make_addr(&s, sip, sport);
    make_addr(&d, dip, dport);
    n = pp_build(v, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    assert_true(n > 0 && n <= PP_HDR_MAX);
    if (v == PP_V1)
        assert_true(n <= PP_V1_MAX);
    memcpy(out + n, "payload", 7);
    assert_int_equal(pp_parse(out, (size_t)n + 7, v, &info), PP_OK);
    assert_int_equal(pp_parse(out, (size_t)n + 7, PP_ANY, &info), PP_OK);
    assert_int_equal(info.version, v == PP_V1 ? 1 : 2);
    assert_false(info.local);
    assert_int_equal(info.consumed, (size_t)n);
    fmt_addr(&info.src, got, sizeof(got));
    assert_string_equal(got, want_src);
    fmt_addr(&info.dst, got, sizeof(got));
    assert_string_equal(got, want_dst);
    for (int k = 0; k < n; k++)
        assert_int_equal(pp_parse(out, (size_t)k, v, &info), PP_NEED_MORE);
}

static void test_round_trip_v1(void **state)
{
    round_trip(PP_V1, "192.0.2.10", 51000, "198.51.100.1", 443, "192.0.2.10 51000",
               "198.51.100.1 443");
    round_trip(PP_V1, "2001:db8::10", 0, "2001:db8::1", 65535, "2001:db8::10 0",
               "2001:db8::1 65535");
    round_trip(PP_V1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535,
               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535",
               "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535");
}

static void test_round_trip_v2(void **state)
{
    round_trip(PP_V2, "192.0.2.10", 51000, "198.51.100.1", 443, "192.0.2.10 51000",
               "198.51.100.1 443");
    round_trip(PP_V2, "2001:db8::10", 0, "2001:db8::1", 65535, "2001:db8::10 0",
               "2001:db8::1 65535");
}

/* Mixed families keep the addresses: unmapped to IPv4 or mapped to IPv6. */
static void test_build_mixed_families(void **state)
{
    for (int v = PP_V1; v <= PP_V2; v++) {
        round_trip((enum pp_version)v, "192.0.2.10", 1, "2001:db8::1", 2, "::ffff:192.0.2.10 1",
                   "2001:db8::1 2");
        round_trip((enum pp_version)v, "2001:db8::1", 1, "192.0.2.10", 2, "2001:db8::1 1",
                   "::ffff:192.0.2.10 2");
        round_trip((enum pp_version)v, "::ffff:192.0.2.10", 1, "198.51.100.1", 2, "192.0.2.10 1",
                   "198.51.100.1 2");
    }
}

/* No usable addresses: v1 UNKNOWN, v2 LOCAL/UNSPEC, both parse as local. */
static void test_build_unknown(void **state)
{
    struct sockaddr_storage s, d;
    struct sockaddr un = {.sa_family = AF_UNIX};
    uint8_t out[PP_HDR_MAX];
    struct pp_info info;
    int n;

    make_addr(&s, "192.0.2.1", 1);
    make_addr(&d, "192.0.2.2", 2);
    n = pp_build(PP_V1, NULL, (struct sockaddr *)&d, out, sizeof(out));
    assert_int_equal(n, 15);
    assert_memory_equal(out, "PROXY UNKNOWN\r\n", 15);
    n = pp_build(PP_V1, (struct sockaddr *)&s, &un, out, sizeof(out));
    assert_int_equal(n, 15);
    assert_int_equal(pp_parse(out, (size_t)n, PP_V1, &info), PP_OK);
    assert_true(info.local);

    n = pp_build(PP_V2, &un, (struct sockaddr *)&d, out, sizeof(out));
    assert_int_equal(n, 16);
    assert_memory_equal(out, V2_SIG "\x20\x00\x00\x00", 16);
    assert_int_equal(pp_parse(out, (size_t)n, PP_V2, &info), PP_OK);
    assert_true(info.local);
    assert_int_equal(info.consumed, 16);
}

/* Exact bytes of a built header, and refusal of bad arguments. */
static void test_build_bytes_and_limits(void **state)
{
    struct sockaddr_storage s, d;
    uint8_t out[PP_HDR_MAX];
    static const char v1[] = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    static const uint8_t v2[] = V2_SIG "\x21\x11\x00\x0C"
                                       "\xC0\xA8\x00\x01\xC0\xA8\x00\x0B\xDC\x04\x01\xBB";

    make_addr(&s, "192.168.0.1", 56324);
    make_addr(&d, "192.168.0.11", 443);
    assert_int_equal(
        pp_build(PP_V1, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out)),
        (int)strlen(v1));
    assert_memory_equal(out, v1, strlen(v1));
    assert_int_equal(
        pp_build(PP_V2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out)),
        (int)sizeof(v2) - 1);
    assert_memory_equal(out, v2, sizeof(v2) - 1);

    assert_int_equal(
        pp_build(PP_V1, (struct sockaddr *)&s, (struct sockaddr *)&d, out, strlen(v1) - 1), -1);
    assert_int_equal(pp_build(PP_V2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, 27), -1);
    assert_int_equal(
        pp_build(PP_OFF, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out)), -1);
    assert_int_equal(
        pp_build(PP_ANY, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_valid_every_prefix_needs_more),
        cmocka_unit_test(test_invalid_table_byte_by_byte),
        cmocka_unit_test(test_bad_decided_early),
        cmocka_unit_test(test_absent_and_empty),
        cmocka_unit_test(test_round_trip_v1),
        cmocka_unit_test(test_round_trip_v2),
        cmocka_unit_test(test_build_mixed_families),
        cmocka_unit_test(test_build_unknown),
        cmocka_unit_test(test_build_bytes_and_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
