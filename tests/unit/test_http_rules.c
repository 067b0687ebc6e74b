/*
 * L7 decisions: how a request head becomes the view rules look at, which
 * rule a request matches (each key alone, keys together, rule order), how
 * redirect templates expand (and that a client cannot inject header lines
 * through them), and the X-Forwarded-For and Forwarded values.
 *
 * Most heads are built by hand so a test can hold bytes the parser would
 * refuse; a few go through http_parse_request to check the two agree.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "http_rules.h"

/* Where views put a normalised path (see http_request_view_init). */
static char pathbuf[HTTP_RULES_PATH_MAX];

static struct http_str hs(const char *s)
{
    struct http_str r = {s, strlen(s)};

    return r;
}

static void assert_str(struct http_str s, const char *want)
{
    size_t n = strlen(want);

    if (s.len != n || (n > 0 && memcmp(s.p, want, n) != 0))
        fail_msg("got \"%.*s\", want \"%s\"", (int)s.len, s.p != NULL ? s.p : "", want);
}

/* A request head as the parser would leave it; host NULL = no Host. */
static void head_init(struct http_head *h, const char *method, const char *target, const char *host)
{
    memset(h, 0, sizeof(*h));
    h->method = hs(method);
    h->target = hs(target);
    h->version_minor = 1;
    if (host != NULL) {
        h->host = hs(host);
        h->headers[h->nheaders].name = hs("Host");
        h->headers[h->nheaders++].value = hs(host);
    }
}

static void head_add(struct http_head *h, const char *name, const char *value)
{
    h->headers[h->nheaders].name = hs(name);
    h->headers[h->nheaders++].value = hs(value);
}

/* A client address from text: IPv4, IPv6, or anything else as AF_UNIX. */
static const struct sockaddr *client(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons(40000);
    } else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(40000);
    } else {
        ss->ss_family = AF_UNIX;
        snprintf(((struct sockaddr_un *)ss)->sun_path, sizeof(((struct sockaddr_un *)ss)->sun_path),
                 "%s", ip);
    }
    return (const struct sockaddr *)ss;
}

/* Sets a rule's src as config.c does: network address masked, prefix kept. */
static void rule_src(struct rule *r, const char *net, unsigned prefix)
{
    struct sockaddr_storage ss;
    unsigned char *bytes;
    unsigned max;

    client(&ss, net);
    if (ss.ss_family == AF_INET) {
        bytes = (unsigned char *)&((struct sockaddr_in *)&ss)->sin_addr;
        max = 32;
    } else {
        assert_int_equal(ss.ss_family, AF_INET6);
        bytes = (unsigned char *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        max = 128;
    }
    for (unsigned i = prefix; i < max; i++)
        bytes[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
    r->match.has_src = true;
    r->match.src_net = ss;
    r->match.src_prefix = prefix;
}

/* Matches one rule r against a request; true when it holds. */
static bool holds(const struct rule *r, const struct http_head *h, const char *ip)
{
    struct http_conf c = {.rules = (struct rule *)r, .nrules = 1};
    struct http_request_view v;
    struct sockaddr_storage ss;
    size_t index = 99;
    const struct rule *got;

    http_request_view_init(&v, h, ip != NULL ? client(&ss, ip) : NULL, pathbuf, sizeof(pathbuf));
    got = http_rules_match(&c, &v, &index);
    if (got != NULL)
        assert_int_equal(index, 0);
    return got == r;
}

/* Matches a GET of target on host a.test from 192.0.2.1 against one rule. */
static bool holds_target(const struct rule *r, const char *method, const char *target)
{
    struct http_head h;

    head_init(&h, method, target, "a.test");
    return holds(r, &h, "192.0.2.1");
}

/* Origin-form: path up to '?', query after it, uri whole, Host without port. */
static void test_view_origin_form(void **state)
{
    struct http_head h;
    struct http_request_view v;
    struct sockaddr_storage ss;
    const struct sockaddr *cl = client(&ss, "192.0.2.1");

    head_init(&h, "GET", "/a/b?x=1&y=?", "A.Test:8443");
    http_request_view_init(&v, &h, cl, pathbuf, sizeof(pathbuf));
    assert_str(v.method, "GET");
    assert_str(v.host, "A.Test");
    assert_str(v.path, "/a/b");
    assert_str(v.query, "x=1&y=?");
    assert_str(v.uri, "/a/b?x=1&y=?");
    assert_ptr_equal(v.head, &h);
    assert_ptr_equal(v.client, cl);

    head_init(&h, "GET", "/plain", "a.test");
    http_request_view_init(&v, &h, cl, pathbuf, sizeof(pathbuf));
    assert_str(v.path, "/plain");
    assert_str(v.query, "");
    assert_non_null(v.query.p);
    assert_str(v.uri, "/plain");

    head_init(&h, "GET", "/p?", "a.test");
    http_request_view_init(&v, &h, cl, pathbuf, sizeof(pathbuf));
    assert_str(v.path, "/p");
    assert_str(v.query, "");
    assert_str(v.uri, "/p?");

    head_init(&h, "OPTIONS", "*", "a.test");
    http_request_view_init(&v, &h, cl, pathbuf, sizeof(pathbuf));
    assert_str(v.path, "*");
    assert_str(v.uri, "*");
}

/* Host: port stripped, IPv6 literal keeps its brackets, absent stays empty. */
static void test_view_host(void **state)
{
    struct http_head h;
    struct http_request_view v;

    head_init(&h, "GET", "/", "[::1]:8443");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "[::1]");

    head_init(&h, "GET", "/", "[2001:db8::1]");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "[2001:db8::1]");

    head_init(&h, "GET", "/", "192.0.2.7:80");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "192.0.2.7");

    head_init(&h, "GET", "/", NULL);
    h.version_minor = 0;
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_int_equal(v.host.len, 0);
    assert_non_null(v.host.p);
}

/* Absolute-form is reduced to origin-form; no path means "/". */
static void test_view_absolute_form(void **state)
{
    struct http_head h;
    struct http_request_view v;
    char out[128];

    head_init(&h, "GET", "http://a.test:8080/p/q?x=1", "a.test:8080");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "a.test");
    assert_str(v.path, "/p/q");
    assert_str(v.query, "x=1");
    assert_str(v.uri, "/p/q?x=1");

    head_init(&h, "GET", "HTTPS://a.test", "a.test");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.path, "/");
    assert_str(v.uri, "/");
    assert_str(v.query, "");

    /* The query survives into {uri} though uri itself cannot hold "/?x=1". */
    head_init(&h, "GET", "http://a.test?x=1", "a.test");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.path, "/");
    assert_str(v.query, "x=1");
    assert_int_equal(http_redirect_expand("https://b.test{uri}", &v, out, sizeof(out)), 19);
    assert_string_equal(out, "https://b.test/?x=1");
}

/* The real parser's head gives the same view (Host taken from the target). */
static void test_view_from_parser(void **state)
{
    static const char req[] = "GET http://Old.Lab.Test:8443/x?y=2 HTTP/1.1\r\n"
                              "Host: old.lab.test:8443\r\n"
                              "X-Env: beta\r\n\r\n";
    static const char req10[] = "GET http://[::1]:8443/ HTTP/1.0\r\n\r\n";
    struct http_head h;
    struct http_request_view v;

    assert_int_equal(http_parse_request(req, sizeof(req) - 1, 16384, &h), HTTP_OK);
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "old.lab.test");
    assert_str(v.path, "/x");
    assert_str(v.query, "y=2");
    assert_str(v.uri, "/x?y=2");

    assert_int_equal(http_parse_request(req10, sizeof(req10) - 1, 16384, &h), HTTP_OK);
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_str(v.host, "[::1]");
    assert_str(v.path, "/");
}

/* host: any case, one trailing dot ignored, nothing else. */
static void test_match_host(void **state)
{
    struct rule r = {.match.host = "old.lab.test"};
    struct http_head h;

    head_init(&h, "GET", "/", "old.lab.test");
    assert_true(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "OLD.Lab.TEST:443");
    assert_true(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "old.lab.test.");
    assert_true(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "old.lab.test..");
    assert_false(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "old.lab.tes");
    assert_false(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "xold.lab.test");
    assert_false(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", "old.lab.test.evil");
    assert_false(holds(&r, &h, NULL));
    head_init(&h, "GET", "/", NULL);
    assert_false(holds(&r, &h, NULL));
}

/* path_prefix: a byte prefix of the path, case-sensitive, never the query. */
static void test_match_path_prefix(void **state)
{
    struct rule r = {.match.path_prefix = "/admin"};
    struct rule api = {.match.path_prefix = "/api/"};

    assert_true(holds_target(&r, "GET", "/admin"));
    assert_true(holds_target(&r, "GET", "/admin/users?x=1"));
    assert_true(holds_target(&r, "GET", "/administrator"));
    assert_true(holds_target(&r, "GET", "http://a.test/admin/x"));
    assert_false(holds_target(&r, "GET", "/Admin"));
    assert_false(holds_target(&r, "GET", "/adm"));
    assert_false(holds_target(&r, "GET", "/x?/admin"));
    assert_false(holds_target(&r, "GET", "/"));
    assert_false(holds_target(&r, "GET", "http://a.test"));
    assert_true(holds_target(&api, "GET", "/api/v1"));
    assert_false(holds_target(&api, "GET", "/api"));
}

/* The path rules compare, for one target (as a C string). */
static const char *match_path_of(const char *target)
{
    static char out[HTTP_RULES_PATH_MAX + 1];
    struct http_head h;
    struct http_request_view v;

    head_init(&h, "GET", target, "a.test");
    assert_int_equal(http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf)), 0);
    memcpy(out, v.match_path.p, v.match_path.len);
    out[v.match_path.len] = '\0';
    return out;
}

/*
 * path_prefix compares the path an origin would serve: percent-decoded, "//"
 * merged, dot-segments removed. Otherwise a deny rule on /admin lets
 * /%61dmin, //admin or /x/../admin through to an origin that serves /admin.
 */
static void test_match_path_normalised(void **state)
{
    struct rule r = {.match.path_prefix = "/admin"};
    static const char *const bypasses[] = {
        "/%61dmin",
        "/%61%64%6D%69%6E/x",
        "//admin",
        "///admin/",
        "/./admin",
        "/x/../admin",
        "/x/%2e%2e/admin",
        "/%2fadmin",
        "/a/b/../../admin",
        "/../admin",
        "http://a.test//admin",
        "/admin/./../admin",
    };

    for (size_t i = 0; i < sizeof(bypasses) / sizeof(bypasses[0]); i++) {
        print_message("target %s\n", bypasses[i]);
        assert_true(holds_target(&r, "GET", bypasses[i]));
    }
    assert_false(holds_target(&r, "GET", "/x/admin"));
    assert_false(holds_target(&r, "GET", "/admin/.."));
    assert_false(holds_target(&r, "GET", "/%41dmin")); /* decoding keeps case */
    assert_false(holds_target(&r, "GET", "/x?/%61dmin"));

    assert_string_equal(match_path_of("/a/b/c"), "/a/b/c"); /* unchanged: no copy */
    assert_string_equal(match_path_of("/a//b/./c/"), "/a/b/c/");
    assert_string_equal(match_path_of("/a/b/.."), "/a/");
    assert_string_equal(match_path_of("/a/b/."), "/a/b/");
    assert_string_equal(match_path_of("/.."), "/");
    assert_string_equal(match_path_of("/../../"), "/");
    assert_string_equal(match_path_of("/%zz/%4"), "/%zz/%4"); /* malformed escapes kept */
    assert_string_equal(match_path_of("/a%20b?q=%2e%2e"), "/a b");
    assert_string_equal(match_path_of("/.hidden/..x"), "/.hidden/..x");
    assert_string_equal(match_path_of("*"), "*");
}

/* A path that needs normalising and does not fit the buffer: -1 (the gateway answers 414). */
static void test_match_path_too_long(void **state)
{
    static char target[HTTP_RULES_PATH_MAX + 16];
    struct http_head h;
    struct http_request_view v;

    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    target[sizeof(target) - 1] = '\0';
    head_init(&h, "GET", target, "a.test");
    assert_int_equal(http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf)), 0);
    target[1] = '/'; /* "//aaa...": now it needs normalising */
    head_init(&h, "GET", target, "a.test");
    assert_int_equal(http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf)), -1);
    assert_int_equal(v.match_path.len, v.path.len);
}

/* method: exact, case-sensitive. */
static void test_match_method(void **state)
{
    struct rule r = {.match.method = "GET"};

    assert_true(holds_target(&r, "GET", "/"));
    assert_false(holds_target(&r, "get", "/"));
    assert_false(holds_target(&r, "GETX", "/"));
    assert_false(holds_target(&r, "POST", "/"));
    assert_false(holds_target(&r, "HEAD", "/"));
}

/* src over IPv4, prefixes on and off byte boundaries. */
static void test_match_src_v4(void **state)
{
    struct rule ten = {0}, priv = {0}, one = {0}, all = {0};
    struct http_head h;

    rule_src(&ten, "10.0.0.0", 8);
    rule_src(&priv, "172.16.0.0", 12);
    rule_src(&one, "192.0.2.1", 32);
    rule_src(&all, "0.0.0.0", 0);
    head_init(&h, "GET", "/", "a.test");

    assert_true(holds(&ten, &h, "10.0.0.1"));
    assert_true(holds(&ten, &h, "10.255.255.255"));
    assert_false(holds(&ten, &h, "11.0.0.1"));
    assert_false(holds(&ten, &h, "9.255.255.255"));
    assert_true(holds(&priv, &h, "172.16.0.1"));
    assert_true(holds(&priv, &h, "172.31.255.255"));
    assert_false(holds(&priv, &h, "172.32.0.0"));
    assert_false(holds(&priv, &h, "172.15.255.255"));
    assert_true(holds(&one, &h, "192.0.2.1"));
    assert_false(holds(&one, &h, "192.0.2.2"));
    assert_true(holds(&all, &h, "203.0.113.5"));
    /* An IPv4 network says nothing of native IPv6 clients. */
    assert_false(holds(&all, &h, "2001:db8::1"));
    assert_false(holds(&ten, &h, "::a00:1"));
    /* No client address, or not an IP one: src cannot hold. */
    assert_false(holds(&all, &h, NULL));
    assert_false(holds(&all, &h, "/run/tlsgate.sock"));
}

/* src over IPv6. */
static void test_match_src_v6(void **state)
{
    struct rule doc = {0}, odd = {0}, host = {0}, all = {0};
    struct http_head h;

    rule_src(&doc, "2001:db8::", 32);
    rule_src(&odd, "2001:db8:8000::", 33);
    rule_src(&host, "2001:db8::1", 128);
    rule_src(&all, "::", 0);
    head_init(&h, "GET", "/", "a.test");

    assert_true(holds(&doc, &h, "2001:db8::1"));
    assert_true(holds(&doc, &h, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    assert_false(holds(&doc, &h, "2001:db9::1"));
    assert_false(holds(&doc, &h, "2001:db7:ffff::1"));
    assert_false(holds(&doc, &h, "10.0.0.1"));
    assert_true(holds(&odd, &h, "2001:db8:8000::1"));
    assert_true(holds(&odd, &h, "2001:db8:ffff::1"));
    assert_false(holds(&odd, &h, "2001:db8:7fff::1"));
    assert_true(holds(&host, &h, "2001:db8::1"));
    assert_false(holds(&host, &h, "2001:db8::2"));
    assert_true(holds(&all, &h, "::1"));
}

/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: IPv4 rules still apply. */
static void test_match_src_mapped(void **state)
{
    struct rule ten = {0}, mapped = {0};
    struct http_head h;

    rule_src(&ten, "10.0.0.0", 8);
    rule_src(&mapped, "::ffff:0:0", 96);
    head_init(&h, "GET", "/", "a.test");

    assert_true(holds(&ten, &h, "::ffff:10.1.2.3"));
    assert_false(holds(&ten, &h, "::ffff:11.1.2.3"));
    assert_false(holds(&ten, &h, "::10.1.2.3"));
    assert_true(holds(&mapped, &h, "10.1.2.3"));
    assert_true(holds(&mapped, &h, "::ffff:192.0.2.1"));
    assert_false(holds(&mapped, &h, "2001:db8::1"));
}

/* header: name in any case, value exact, any of several same-named fields. */
static void test_match_header(void **state)
{
    struct rule r = {.match.header = {.name = "X-Env", .value = "beta"}};
    struct http_head h;

    head_init(&h, "GET", "/", "a.test");
    head_add(&h, "x-env", "beta");
    assert_true(holds(&r, &h, NULL));

    head_init(&h, "GET", "/", "a.test");
    head_add(&h, "X-ENV", "Beta");
    assert_false(holds(&r, &h, NULL));

    head_init(&h, "GET", "/", "a.test");
    head_add(&h, "X-Env", "beta2");
    head_add(&h, "X-Envy", "beta");
    assert_false(holds(&r, &h, NULL));

    head_init(&h, "GET", "/", "a.test");
    head_add(&h, "X-Env", "alpha");
    head_add(&h, "x-Env", "beta");
    assert_true(holds(&r, &h, NULL));

    head_init(&h, "GET", "/", "a.test");
    assert_false(holds(&r, &h, NULL));
}

/* Keys together: every one must hold (the SPEC's examples). */
static void test_match_combined(void **state)
{
    struct rule deny = {.match.path_prefix = "/admin", .action = RULE_DENY, .status = 403};
    struct rule api = {.match = {.path_prefix = "/api/",
                                 .method = "GET",
                                 .header = {.name = "X-Env", .value = "beta"}}};
    struct http_head h;

    rule_src(&deny, "10.0.0.0", 8);
    head_init(&h, "GET", "/admin/x", "a.test");
    assert_true(holds(&deny, &h, "10.9.9.9"));
    assert_false(holds(&deny, &h, "192.0.2.1"));
    head_init(&h, "GET", "/public", "a.test");
    assert_false(holds(&deny, &h, "10.9.9.9"));

    head_init(&h, "GET", "/api/v1", "a.test");
    head_add(&h, "X-Env", "beta");
    assert_true(holds(&api, &h, NULL));
    h.method = hs("POST");
    assert_false(holds(&api, &h, NULL));
    head_init(&h, "GET", "/api/v1", "a.test");
    assert_false(holds(&api, &h, NULL));
    head_init(&h, "GET", "/web", "a.test");
    head_add(&h, "X-Env", "beta");
    assert_false(holds(&api, &h, NULL));
}

/* First match wins; a rule without keys matches everything; no match is NULL. */
static void test_match_order(void **state)
{
    struct rule rules[4] = {
        {.match.path_prefix = "/admin", .action = RULE_DENY},
        {.match.host = "old.lab.test", .action = RULE_REDIRECT},
        {.match.path_prefix = "/admin/open", .action = RULE_FORWARD}, /* shadowed */
        {.action = RULE_FORWARD},
    };
    struct http_conf c = {.rules = rules, .nrules = 4};
    struct http_request_view v;
    struct http_head h;
    size_t index = 99;

    head_init(&h, "GET", "/admin/open", "old.lab.test");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_ptr_equal(http_rules_match(&c, &v, &index), &rules[0]);
    assert_int_equal(index, 0);

    head_init(&h, "GET", "/x", "old.lab.test");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_ptr_equal(http_rules_match(&c, &v, &index), &rules[1]);
    assert_int_equal(index, 1);

    head_init(&h, "GET", "/x", "new.lab.test");
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    assert_ptr_equal(http_rules_match(&c, &v, &index), &rules[3]);
    assert_int_equal(index, 3);
    assert_ptr_equal(http_rules_match(&c, &v, NULL), &rules[3]);

    c.nrules = 3;
    index = 99;
    assert_null(http_rules_match(&c, &v, &index));
    assert_int_equal(index, 99);
    c.nrules = 0;
    assert_null(http_rules_match(&c, &v, &index));
}

/* Expands tmpl for a request of target on host; returns the length. */
static int expand(const char *tmpl, const char *target, const char *host, char *out, size_t outlen)
{
    struct http_head h;
    struct http_request_view v;

    head_init(&h, "GET", target, host);
    http_request_view_init(&v, &h, NULL, pathbuf, sizeof(pathbuf));
    return http_redirect_expand(tmpl, &v, out, outlen);
}

/* Each placeholder, alone and together. */
static void test_redirect_placeholders(void **state)
{
    char out[256];

    assert_int_equal(
        expand("https://new.lab.test{uri}", "/a/b?x=1", "old.lab.test", out, sizeof(out)), 28);
    assert_string_equal(out, "https://new.lab.test/a/b?x=1");
    assert_int_equal(expand("https://{host}{uri}", "/a?b", "old.lab.test:8080", out, sizeof(out)),
                     24);
    assert_string_equal(out, "https://old.lab.test/a?b");
    expand("https://x.test{path}", "/a/b?x=1", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/a/b");
    expand("https://x.test/?from={path}&{query}", "/a/b?x=1&y=2", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/?from=/a/b&x=1&y=2");
    expand("{host}|{path}|{query}|{uri}", "/p?q", "[::1]:8443", out, sizeof(out));
    assert_string_equal(out, "[::1]|/p|q|/p?q");
    expand("https://x.test{uri}", "http://a.test/abs?z", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/abs?z");
    expand("no placeholders", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "no placeholders");
    assert_int_equal(expand("", "/p", "a.test", out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* No query: {query} is empty, {uri} is the path alone. */
static void test_redirect_missing_query(void **state)
{
    char out[256];

    expand("https://x.test{path}?{query}", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/p?");
    expand("https://x.test{uri}", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/p");
    expand("[{query}]", "/p?", "a.test", out, sizeof(out));
    assert_string_equal(out, "[]");
}

/* Unknown or broken placeholders are copied as written. */
static void test_redirect_literal_braces(void **state)
{
    char out[256];

    expand("https://x.test/{x}{uri}{", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/{x}/p{");
    expand("{HOST}{hos}{{host}}", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "{HOST}{hos}{a.test}");
    expand("{path", "/p", "a.test", out, sizeof(out));
    assert_string_equal(out, "{path");
}

/* Request bytes that could end a header line come out percent-encoded. */
static void test_redirect_injection(void **state)
{
    char out[256];

    expand("https://x.test{uri}", "/a\r\nSet-Cookie: x=1", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/a%0D%0ASet-Cookie:%20x=1");
    expand("https://{host}/", "/", "evil\r\nX: y", out, sizeof(out));
    assert_string_equal(out, "https://evil%0D%0AX/");
    expand("{path}|{query}", "/\x7f\t\xc3\xa9?\x01 \x80", "a.test", out, sizeof(out));
    assert_string_equal(out, "/%7F%09%C3%A9|%01%20%80");
    /* Already-encoded text and the template's own bytes are left alone. */
    expand("https://x.test/ {path}", "/a%0d%0a", "a.test", out, sizeof(out));
    assert_string_equal(out, "https://x.test/ /a%0d%0a");
    assert_null(strchr(out, '\r'));
}

/* Too small: -1 and an empty string; exactly big enough: fits. */
static void test_redirect_too_small(void **state)
{
    char out[32];

    memset(out, 'X', sizeof(out));
    assert_int_equal(expand("https://x.test{uri}", "/abc", "a.test", out, 19), 18);
    assert_string_equal(out, "https://x.test/abc");
    memset(out, 'X', sizeof(out));
    assert_int_equal(expand("https://x.test{uri}", "/abc", "a.test", out, 18), -1);
    assert_string_equal(out, "");
    /* An encoded byte takes three, and never half of them. */
    assert_int_equal(expand("{path}", "/a\r", "a.test", out, 4), -1);
    assert_int_equal(expand("{path}", "/a\r", "a.test", out, 5), -1);
    assert_string_equal(out, "");
    assert_int_equal(expand("{path}", "/a\r", "a.test", out, 6), 5);
    assert_string_equal(out, "/a%0D");
    assert_int_equal(expand("x", "/", "a.test", out, 1), -1);
    assert_string_equal(out, "");
    assert_int_equal(expand("", "/", "a.test", out, 1), 0);
    assert_int_equal(expand("", "/", "a.test", out, 0), -1);
}

/* X-Forwarded-For: the client IP, after the prior list when it is kept. */
static void test_xff(void **state)
{
    struct sockaddr_storage ss;
    struct http_str none = {"", 0};
    char out[128];

    assert_int_equal(http_xff_value(client(&ss, "192.0.2.1"), none, false, out, sizeof(out)), 9);
    assert_string_equal(out, "192.0.2.1");
    http_xff_value(client(&ss, "2001:db8::1"), none, false, out, sizeof(out));
    assert_string_equal(out, "2001:db8::1");
    http_xff_value(client(&ss, "::ffff:192.0.2.1"), none, false, out, sizeof(out));
    assert_string_equal(out, "192.0.2.1");
    /* IPv4 is written by hand: one, two and three digits, zero and 255. */
    http_xff_value(client(&ss, "0.10.100.255"), none, false, out, sizeof(out));
    assert_string_equal(out, "0.10.100.255");

    http_xff_value(client(&ss, "192.0.2.1"), hs("203.0.113.9, 198.51.100.2"), true, out,
                   sizeof(out));
    assert_string_equal(out, "203.0.113.9, 198.51.100.2, 192.0.2.1");
    /* Not kept (no trusted balancer in front): the client's claim is dropped. */
    http_xff_value(client(&ss, "192.0.2.1"), hs("203.0.113.9"), false, out, sizeof(out));
    assert_string_equal(out, "192.0.2.1");
    http_xff_value(client(&ss, "192.0.2.1"), none, true, out, sizeof(out));
    assert_string_equal(out, "192.0.2.1");
    /* A prior value that could split the header is never copied. */
    http_xff_value(client(&ss, "192.0.2.1"), hs("1.1.1.1\r\nX: y"), true, out, sizeof(out));
    assert_string_equal(out, "192.0.2.1");
    http_xff_value(NULL, none, false, out, sizeof(out));
    assert_string_equal(out, "unknown");
}

static void test_xff_too_small(void **state)
{
    struct sockaddr_storage ss;
    char out[64];

    assert_int_equal(http_xff_value(client(&ss, "192.0.2.1"), hs("1.2.3.4"), true, out, 19), 18);
    assert_string_equal(out, "1.2.3.4, 192.0.2.1");
    assert_int_equal(http_xff_value(client(&ss, "192.0.2.1"), hs("1.2.3.4"), true, out, 18), -1);
    assert_string_equal(out, "");
    assert_int_equal(http_xff_value(client(&ss, "192.0.2.1"), hs(""), false, out, 0), -1);
}

/* Forwarded (RFC 7239): for, proto, host; IPv6 quoted and bracketed. */
static void test_forwarded(void **state)
{
    struct sockaddr_storage ss;
    struct http_str none = {"", 0};
    char out[256];

    assert_int_equal(http_forwarded_value(client(&ss, "192.0.2.1"), "https", hs("a.test"), none,
                                          false, out, sizeof(out)),
                     37);
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=a.test");
    http_forwarded_value(client(&ss, "2001:db8::1"), "http", hs("a.test"), none, false, out,
                         sizeof(out));
    assert_string_equal(out, "for=\"[2001:db8::1]\";proto=http;host=a.test");
    http_forwarded_value(client(&ss, "::ffff:192.0.2.1"), "https", hs("a.test"), none, false, out,
                         sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=a.test");
    /* No Host: no host parameter. */
    http_forwarded_value(client(&ss, "192.0.2.1"), "http", none, none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=http");
    http_forwarded_value(NULL, "http", none, none, false, out, sizeof(out));
    assert_string_equal(out, "for=unknown;proto=http");
}

/* host is quoted as soon as it holds a byte outside token (':', '[', ...). */
static void test_forwarded_host_quoting(void **state)
{
    struct sockaddr_storage ss;
    struct http_str none = {"", 0};
    const struct sockaddr *cl = client(&ss, "192.0.2.1");
    char out[256];

    http_forwarded_value(cl, "https", hs("a.test:8443"), none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=\"a.test:8443\"");
    http_forwarded_value(cl, "https", hs("[::1]:8443"), none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=\"[::1]:8443\"");
    http_forwarded_value(cl, "https", hs("a\"b\\c d"), none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=\"a\\\"b\\\\c d\"");
    http_forwarded_value(cl, "https", hs("Sub_1.A-B.test"), none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https;host=Sub_1.A-B.test");
    /* Control bytes cannot be quoted either: host left out. */
    http_forwarded_value(cl, "https", hs("a\r\nX: y"), none, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=https");
}

/* A kept prior Forwarded value is extended with ", "; too small is -1. */
static void test_forwarded_prior(void **state)
{
    struct sockaddr_storage ss;
    const struct sockaddr *cl = client(&ss, "192.0.2.1");
    struct http_str prior = hs("for=198.51.100.7;proto=https");
    char out[256];
    int n;

    http_forwarded_value(cl, "http", hs("a.test"), prior, true, out, sizeof(out));
    assert_string_equal(out, "for=198.51.100.7;proto=https, for=192.0.2.1;proto=http;host=a.test");
    http_forwarded_value(cl, "http", hs("a.test"), prior, false, out, sizeof(out));
    assert_string_equal(out, "for=192.0.2.1;proto=http;host=a.test");

    n = http_forwarded_value(cl, "http", hs("a.test"), prior, true, out, sizeof(out));
    assert_int_equal(n, (int)strlen(out));
    assert_int_equal(
        http_forwarded_value(cl, "http", hs("a.test"), prior, true, out, (size_t)n + 1), n);
    assert_int_equal(http_forwarded_value(cl, "http", hs("a.test"), prior, true, out, (size_t)n),
                     -1);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_origin_form),
        cmocka_unit_test(test_view_host),
        cmocka_unit_test(test_view_absolute_form),
        cmocka_unit_test(test_view_from_parser),
        cmocka_unit_test(test_match_host),
        cmocka_unit_test(test_match_path_prefix),
        cmocka_unit_test(test_match_path_normalised),
        cmocka_unit_test(test_match_path_too_long),
        cmocka_unit_test(test_match_method),
        cmocka_unit_test(test_match_src_v4),
        cmocka_unit_test(test_match_src_v6),
        cmocka_unit_test(test_match_src_mapped),
        cmocka_unit_test(test_match_header),
        cmocka_unit_test(test_match_combined),
        cmocka_unit_test(test_match_order),
        cmocka_unit_test(test_redirect_placeholders),
        cmocka_unit_test(test_redirect_missing_query),
        cmocka_unit_test(test_redirect_literal_braces),
        cmocka_unit_test(test_redirect_injection),
        cmocka_unit_test(test_redirect_too_small),
        cmocka_unit_test(test_xff),
        cmocka_unit_test(test_xff_too_small),
        cmocka_unit_test(test_forwarded),
        cmocka_unit_test(test_forwarded_host_quoting),
        cmocka_unit_test(test_forwarded_prior),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
