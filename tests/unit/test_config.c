/*
 * Configuration loading: a full file builds exactly what it says, absent keys
 * take SPEC.md's defaults, and every class of mistake is reported with the
 * file, line, column and key path an operator needs, all at once.
 *
 * Each YAML text is written one line per string literal, so the line numbers
 * asserted below can be counted in the source. "@DIR@" in a text stands for
 * a temporary directory holding readable cert/key/CA files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"

static char tmpdir[] = "/tmp/tg_config_test.XXXXXX";
static char yaml_path[256];

/*
 * Creates the temporary directory with the files texts refer to: the lab
 * certificates of certs/mkcerts.sh (ca.crt, shop.crt, shop.key, web.*, ...),
 * since loading builds the TLS contexts, which read them.
 */
static int group_setup(void **state)
{
    static const unsigned char ticket_key[80] = {1, 2, 3};
    char cmd[1024], path[512];
    size_t n;
    FILE *f;

    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash %s/../../../certs/mkcerts.sh %s >/dev/null && cp %s/ca.crt %s/client-ca.crt",
             TEST_DATA_DIR, tmpdir, tmpdir, tmpdir);
    if (system(cmd) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/tickets.key", tmpdir);
    if ((f = fopen(path, "wb")) == NULL)
        return -1;
    n = fwrite(ticket_key, 1, sizeof(ticket_key), f);
    if (fclose(f) != 0 || n != sizeof(ticket_key))
        return -1;
    snprintf(path, sizeof(path), "%s/sticky.key", tmpdir);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fputs("not read by the config loader\n", f);
    fclose(f);
    snprintf(yaml_path, sizeof(yaml_path), "%s/test.yaml", tmpdir);
    return 0;
}

/* Removes what group_setup and the tests created. */
static int group_teardown(void **state)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text (with @DIR@ replaced) to yaml_path. */
static void write_yaml(const char *text)
{
    FILE *f = fopen(yaml_path, "w");
    const char *p = text, *at;

    assert_non_null(f);
    while ((at = strstr(p, "@DIR@")) != NULL) {
        fwrite(p, 1, (size_t)(at - p), f);
        fputs(tmpdir, f);
        p = at + 5;
    }
    fputs(p, f);
    fclose(f);
}

/* Loads text as a configuration file. */
static struct config *load(const char *text, struct config_errors *errs)
{
    write_yaml(text);
    return config_load(yaml_path, errs);
}

/* Prints every error line (shown by cmocka when an assertion fails). */
static void dump(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_message("  %s\n", errs->lines[i]);
}

/* True when some error line is "yaml_path:" followed by want (a prefix). */
static bool has_line(const struct config_errors *errs, const char *want)
{
    size_t plen = strlen(yaml_path);

    for (size_t i = 0; i < errs->n; i++)
        if (strncmp(errs->lines[i], yaml_path, plen) == 0 && errs->lines[i][plen] == ':' &&
            strncmp(errs->lines[i] + plen + 1, want, strlen(want)) == 0)
            return true;
    return false;
}

/* Asserts that want ("LINE:COL: path: message...") is among the errors. */
static void expect_error_at(const struct config_errors *errs, const char *want, int line)
{
    if (!has_line(errs, want)) {
        print_message("missing error '%s' (test line %d); got:\n", want, line);
        dump(errs);
        fail();
    }
}
#define expect_error(errs, want) expect_error_at(errs, want, __LINE__)

/* Loads text, which must fail, and returns its errors. */
static struct config_errors load_fail(const char *text)
{
    struct config_errors errs = {0};
    struct config *c = load(text, &errs);

    if (c != NULL) {
        config_unref(c);
        fail_msg("the configuration was accepted");
    }
    assert_true(errs.n > 0);
    return errs;
}

/* Loads text, which must succeed. */
static struct config *load_ok(const char *text)
{
    struct config_errors errs = {0};
    struct config *c = load(text, &errs);

    if (c == NULL) {
        dump(&errs);
        config_errors_free(&errs);
        fail_msg("the configuration was refused");
    }
    assert_int_equal(errs.n, 0);
    return c;
}

/* Loads tests/unit/data/config/name (with @DIR@ replaced), which must succeed. */
static struct config *load_fixture(const char *name)
{
    char path[512], *text;
    struct config *c;
    FILE *f;
    long len;

    snprintf(path, sizeof(path), "%s/config/%s", TEST_DATA_DIR, name);
    f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    c = load_ok(text);
    free(text);
    return c;
}

/* A passthrough listener and backend, appended to tests' own lines. */
#define MIN_BACKEND                                                                                \
    "backends:\n"                                                                                  \
    "  - name: web\n"                                                                              \
    "    servers:\n"                                                                               \
    "      - { name: w1, address: 127.0.0.1:9080 }\n"

/* Every key given: the snapshot holds exactly those values. */
static void test_full_file(void **state)
{
    struct config *c = load_fixture("full.yaml");
    char buf[ADDR_STRLEN];

    assert_string_equal(c->path, yaml_path);
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->max_connections, 1000);
    assert_int_equal(c->timeouts.client_hello, 5001);
    assert_int_equal(c->timeouts.handshake, 10001);
    assert_int_equal(c->timeouts.connect, 3001);
    assert_int_equal(c->timeouts.idle, 60001);
    assert_int_equal(c->timeouts.http_request, 10002);
    assert_int_equal(c->timeouts.http_keepalive, 15002);
    assert_int_equal(c->timeouts.drain, 0);
    assert_string_equal(c->admin.text, "127.0.0.1:9901");
    assert_string_equal(addr_format((struct sockaddr *)&c->admin.ss, buf, sizeof(buf)),
                        "127.0.0.1:9901");
    assert_int_equal(c->log.level, LOG_LEVEL_DEBUG);
    assert_string_equal(c->log.access, "stdout");
    assert_int_equal(c->log.format, ACCESS_TEXT);
    assert_int_equal(atomic_load(&c->refs), 1);

    assert_int_equal(c->nbackends, 2);
    struct backend *web = &c->backends[0], *bank = &c->backends[1];
    assert_string_equal(web->name, "web");
    assert_int_equal(web->balance, BALANCE_LEASTCONN);
    assert_int_equal(web->proxy_protocol, PP_V2);
    assert_true(web->tls.enabled);
    assert_false(web->tls.verify);
    assert_non_null(strstr(web->tls.ca, "/ca.crt"));
    assert_string_equal(web->tls.sni, "web.lab.test");
    assert_int_equal(web->health.check, HEALTH_HTTP);
    assert_int_equal(web->health.interval, 500);
    assert_int_equal(web->health.timeout, 250);
    assert_int_equal(web->health.rise, 1);
    assert_int_equal(web->health.fall, 5);
    assert_string_equal(web->health.path, "/up");
    assert_int_equal(web->health.expect_status, 204);
    assert_int_equal(web->nservers, 2);
    assert_string_equal(web->servers[0].name, "web1");
    assert_string_equal(web->servers[0].addr.text, "127.0.0.1:9080");
    assert_int_equal(addr_port((struct sockaddr *)&web->servers[0].addr.ss), 9080);
    assert_int_equal(web->servers[0].weight, 3);
    assert_int_equal(web->servers[0].max_connections, 10);
    assert_int_equal(web->servers[0].index, 0);
    assert_ptr_equal(web->servers[0].backend, web);
    assert_string_equal(web->servers[1].name, "web2");
    assert_int_equal(web->servers[1].addr.ss.ss_family, AF_INET6);
    assert_int_equal(web->servers[1].weight, 1);
    assert_int_equal(web->servers[1].index, 1);
    assert_null(web->ring);
    assert_string_equal(bank->name, "bank");
    assert_int_equal(bank->balance, BALANCE_SOURCE);
    assert_int_equal(bank->proxy_protocol, PP_OFF);
    assert_false(bank->tls.enabled);
    assert_int_equal(bank->health.check, HEALTH_NONE);
    assert_ptr_equal(config_find_backend(c, "bank"), bank);
    assert_null(config_find_backend(c, "nope"));

    assert_int_equal(c->nlisteners, 2);
    struct listener *pt = &c->listeners[0], *shop = &c->listeners[1];
    assert_string_equal(pt->name, "secure");
    assert_string_equal(pt->bind.text, "0.0.0.0:8443");
    assert_int_equal(pt->mode, MODE_PASSTHROUGH);
    assert_int_equal(pt->proxy_protocol, PP_ANY);
    assert_int_equal(pt->max_connections, 50);
    assert_int_equal(pt->index, 0);
    assert_int_equal(pt->nsni_routes, 2);
    assert_string_equal(pt->sni_routes[0].pattern, "bank.lab.test");
    assert_false(pt->sni_routes[0].wildcard);
    assert_ptr_equal(pt->sni_routes[0].backend, bank);
    assert_string_equal(pt->sni_routes[1].pattern, "*.lab.test");
    assert_true(pt->sni_routes[1].wildcard);
    assert_ptr_equal(pt->sni_routes[1].backend, web);
    assert_ptr_equal(pt->default_backend, bank);
    assert_false(pt->has_tls);

    assert_string_equal(shop->name, "shop");
    assert_int_equal(shop->bind.ss.ss_family, AF_INET6);
    assert_int_equal(shop->mode, MODE_BRIDGE);
    assert_int_equal(shop->proxy_protocol, PP_V1);
    assert_int_equal(shop->index, 1);
    assert_true(shop->has_tls);
    assert_int_equal(shop->tls.ncertificates, 2);
    assert_non_null(strstr(shop->tls.certificates[0].cert, "/shop.crt"));
    assert_non_null(strstr(shop->tls.certificates[0].key, "/shop.key"));
    assert_string_equal(shop->tls.min_version, "1.3");
    assert_string_equal(shop->tls.ciphers, "ECDHE+AESGCM");
    assert_string_equal(shop->tls.ciphersuites, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
    assert_int_equal(shop->tls.nalpn, 2);
    assert_string_equal(shop->tls.alpn[0], "http/1.1");
    assert_string_equal(shop->tls.alpn[1], "http/1.0");
    assert_true(shop->tls.session_tickets);
    assert_non_null(strstr(shop->tls.ticket_key_file, "/tickets.key"));
    assert_non_null(strstr(shop->tls.client_ca, "/client-ca.crt"));

    struct http_conf *h = &shop->http;
    assert_int_equal(h->max_header_bytes, 8192);
    assert_false(h->forwarded_headers);
    assert_string_equal(h->hsts, "max-age=31536000");
    assert_true(h->sticky.enabled);
    assert_string_equal(h->sticky.cookie, "SRV");
    assert_int_equal(h->sticky.max_age, 3600);
    assert_non_null(strstr(h->sticky.secret_file, "/sticky.key"));
    assert_ptr_equal(h->default_backend, web);
    assert_int_equal(h->nrules, 5);

    struct rule *r = &h->rules[0];
    char ip[ADDR_STRLEN];
    assert_true(r->match.has_src);
    assert_string_equal(r->match.src_text, "10.1.2.3/8");
    assert_int_equal(r->match.src_prefix, 8);
    assert_string_equal(addr_format_ip((struct sockaddr *)&r->match.src_net, ip, sizeof(ip)),
                        "10.0.0.0");
    assert_string_equal(r->match.path_prefix, "/admin");
    assert_null(r->match.host);
    assert_int_equal(r->action, RULE_DENY);
    assert_int_equal(r->status, 404);
    r = &h->rules[1];
    assert_string_equal(r->match.host, "old.lab.test");
    assert_int_equal(r->action, RULE_REDIRECT);
    assert_string_equal(r->location, "https://new.lab.test{uri}");
    assert_int_equal(r->status, 301);
    r = &h->rules[2];
    assert_string_equal(r->match.method, "GET");
    assert_string_equal(r->match.header.name, "X-Env");
    assert_string_equal(r->match.header.value, "beta");
    assert_int_equal(r->action, RULE_FORWARD);
    assert_ptr_equal(r->backend, web);
    r = &h->rules[3];
    assert_int_equal(r->match.src_prefix, 32);
    assert_string_equal(r->match.host, "192.0.2.1");
    assert_string_equal(addr_format_ip((struct sockaddr *)&r->match.src_net, ip, sizeof(ip)),
                        "2001:db8::");
    assert_int_equal(r->status, 403);
    r = &h->rules[4];
    assert_null(r->match.path_prefix);
    assert_int_equal(r->status, 302);
    config_unref(c);
}

/* Only the required keys: everything else is SPEC.md's default. */
static void test_defaults(void **state)
{
    struct config *c = load_fixture("defaults.yaml");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    assert_int_equal(c->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(c->max_connections, 20000);
    assert_int_equal(c->timeouts.client_hello, 5000);
    assert_int_equal(c->timeouts.handshake, 10000);
    assert_int_equal(c->timeouts.connect, 3000);
    assert_int_equal(c->timeouts.idle, 60000);
    assert_int_equal(c->timeouts.http_request, 10000);
    assert_int_equal(c->timeouts.http_keepalive, 15000);
    assert_int_equal(c->timeouts.drain, 15000);
    assert_string_equal(c->admin.text, "127.0.0.1:9900");
    assert_int_equal(addr_port((struct sockaddr *)&c->admin.ss), 9900);
    assert_int_equal(c->log.level, LOG_LEVEL_INFO);
    assert_string_equal(c->log.access, "stderr");
    assert_int_equal(c->log.format, ACCESS_JSON);

    struct backend *web = &c->backends[0], *api = &c->backends[1];
    assert_int_equal(web->balance, BALANCE_ROUNDROBIN);
    assert_int_equal(web->proxy_protocol, PP_OFF);
    assert_false(web->tls.enabled);
    assert_int_equal(web->health.check, HEALTH_NONE);
    assert_int_equal(web->servers[0].weight, 1);
    assert_int_equal(web->servers[0].max_connections, 0);
    assert_true(api->tls.enabled);
    assert_true(api->tls.verify);
    assert_null(api->tls.ca);
    assert_null(api->tls.sni);
    assert_int_equal(api->health.check, HEALTH_TCP);
    assert_int_equal(api->health.interval, 2000);
    assert_int_equal(api->health.timeout, 1000);
    assert_int_equal(api->health.rise, 2);
    assert_int_equal(api->health.fall, 3);
    assert_string_equal(api->health.path, "/healthz");
    assert_int_equal(api->health.expect_status, 200);

    struct listener *pt = &c->listeners[0], *off = &c->listeners[1];
    assert_int_equal(pt->proxy_protocol, PP_OFF);
    assert_int_equal(pt->max_connections, 0);
    assert_int_equal(pt->nsni_routes, 0);
    assert_ptr_equal(pt->default_backend, web);
    assert_true(off->has_tls);
    assert_string_equal(off->tls.min_version, "1.2");
    assert_string_equal(off->tls.ciphers, "");
    assert_string_equal(off->tls.ciphersuites, "");
    assert_int_equal(off->tls.nalpn, 1);
    assert_string_equal(off->tls.alpn[0], "http/1.1");
    assert_true(off->tls.session_tickets);
    assert_string_equal(off->tls.ticket_key_file, "");
    assert_string_equal(off->tls.client_ca, "");
    assert_int_equal(off->http.max_header_bytes, 16384);
    assert_true(off->http.forwarded_headers);
    assert_string_equal(off->http.hsts, "");
    assert_true(off->http.sticky.enabled);
    assert_string_equal(off->http.sticky.cookie, "TLSGW");
    assert_int_equal(off->http.sticky.max_age, 0);
    assert_string_equal(off->http.sticky.secret_file, "");
    assert_int_equal(off->http.rules[0].status, 403);
    assert_null(off->http.default_backend);
    config_unref(c);
}

/* admin: { listen: "" } and listen: off disable the admin listener. */
static void test_admin_disabled(void **state)
{
    static const char *const forms[] = {"admin: { listen: \"\" }\n", "admin:\n  listen: off\n"};

    for (size_t i = 0; i < 2; i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "%s" MIN_BACKEND "listeners:\n"
                 "  - { name: pt, bind: \"127.0.0.1:9900\", mode: passthrough, "
                 "default_backend: web }\n",
                 forms[i]);
        struct config *c = load_ok(text);
        assert_null(c->admin.text);
        config_unref(c);
    }
}

/* One reference from load; the snapshot lives until the last unref. */
static void test_refcount(void **state)
{
    struct config *c = load_ok(MIN_BACKEND "listeners:\n"
                                           "  - { name: pt, bind: \":8443\", mode: passthrough, "
                                           "default_backend: web }\n");

    assert_ptr_equal(config_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 2);
    config_unref(c);
    assert_string_equal(c->listeners[0].name, "pt");
    config_unref(c);
    config_unref(NULL);
}

/* The shipped passthrough example is valid and says what its comments say. */
static void test_example_passthrough(void **state)
{
    struct config_errors errs = {0};
    struct config *c = config_load(TEST_DATA_DIR "/../../../configs/passthrough.yaml", &errs);

    dump(&errs);
    assert_non_null(c);
    assert_string_equal(c->admin.text, "127.0.0.1:9900");
    assert_int_equal(c->nlisteners, 1);
    assert_int_equal(c->listeners[0].mode, MODE_PASSTHROUGH);
    assert_int_equal(addr_port((struct sockaddr *)&c->listeners[0].bind.ss), 8443);
    assert_string_equal(c->listeners[0].sni_routes[0].pattern, "bank.lab.test");
    assert_string_equal(c->listeners[0].sni_routes[0].backend->name, "bank");
    assert_string_equal(c->listeners[0].sni_routes[1].pattern, "*.lab.test");
    assert_string_equal(c->listeners[0].sni_routes[1].backend->name, "web");
    assert_string_equal(c->listeners[0].default_backend->name, "web");
    assert_int_equal(config_find_backend(c, "web")->nservers, 2);
    assert_int_equal(config_find_backend(c, "bank")->nservers, 1);
    config_unref(c);
}

/* A typo in a key names it, its line and a suggestion. */
static void test_unknown_key(void **state)
{
    struct config_errors errs = load_fail(MIN_BACKEND    /* lines 1-4 */
                                          "listeners:\n" /* 5 */
                                          "  - name: pt\n"
                                          "    tsl: {}\n" /* 7 */
                                          "    bind: 127.0.0.1:8443\n"
                                          "    mode: passthrough\n"
                                          "loggin: {}\n"); /* 10 */

    expect_error(&errs, "7:5: listeners[0].tsl: unknown key 'tsl' (did you mean 'tls'?)");
    expect_error(&errs, "10:1: loggin: unknown key 'loggin'");
    assert_int_equal(errs.n, 2);
    config_errors_free(&errs);
}

/* Every required key that is missing is named, at the entry that lacks it. */
static void test_missing_required(void **state)
{
    struct config_errors errs = load_fail("backends:\n"
                                          "  - balance: random\n" /* 2 */
                                          "    servers:\n"
                                          "      - weight: 2\n" /* 4 */
                                          "  - name: empty\n"   /* 5 */
                                          "    servers: []\n"   /* 6 */
                                          "  - name: none\n"    /* 7 */
                                          "listeners:\n"
                                          "  - max_connections: 5\n"); /* 9 */

    expect_error(&errs, "2:5: backends[0].name: missing required key");
    expect_error(&errs, "4:9: backends[0].servers[0].name: missing required key");
    expect_error(&errs, "4:9: backends[0].servers[0].address: missing required key");
    expect_error(&errs, "6:5: backends[1].servers: needs at least 1 entry");
    expect_error(&errs, "7:5: backends[2].servers: missing required key");
    expect_error(&errs, "9:5: listeners[0].name: missing required key");
    expect_error(&errs, "9:5: listeners[0].bind: missing required key");
    expect_error(&errs, "9:5: listeners[0].mode: missing required key");
    assert_int_equal(errs.n, 8);
    config_errors_free(&errs);

    errs = load_fail(MIN_BACKEND);
    expect_error(&errs, "1:1: listeners: missing required key");
    config_errors_free(&errs);
}

/* Values of the wrong kind: enum, number, boolean, list, mapping. */
static void test_bad_values(void **state)
{
    struct config_errors errs = load_fail("workers: many\n"
                                          "max_connections: 1.5\n"
                                          "timeouts: 5\n"
                                          "log: { level: verbose, format: xml }\n"
                                          "backends:\n"
                                          "  - name: web\n"
                                          "    proxy_protocol: any\n" /* 7 */
                                          "    tls: { verify: maybe }\n"
                                          "    servers: { name: x }\n" /* 9 */
                                          "listeners:\n"
                                          "  - name: a\n"
                                          "    bind: \":1\"\n"
                                          "    mode: Passthrough\n" /* 13 */
                                          "    max_connections: 99999999999\n"
                                          "    tls:\n" /* 15 */
                                          "    sni_routes: []\n");

    expect_error(&errs, "1:10: workers: expected a whole number, got 'many'");
    expect_error(&errs, "2:18: max_connections: expected a whole number, got '1.5'");
    expect_error(&errs, "3:11: timeouts: expected a mapping, got '5'");
    expect_error(&errs, "4:15: log.level: invalid value 'verbose' (expected error | warn | info "
                        "| debug)");
    expect_error(&errs, "4:32: log.format: invalid value 'xml' (expected json | text)");
    expect_error(&errs, "7:21: backends[0].proxy_protocol: invalid value 'any' (expected off | "
                        "v1 | v2)");
    expect_error(&errs, "8:20: backends[0].tls.verify: expected true or false, got 'maybe'");
    expect_error(&errs, "9:14: backends[0].servers: expected a list, got a mapping");
    expect_error(&errs, "13:11: listeners[0].mode: invalid value 'Passthrough'");
    expect_error(&errs, "14:22: listeners[0].max_connections: 99999999999 is too large");
    expect_error(&errs, "15:9: listeners[0].tls: empty value; expected a mapping");
    assert_int_equal(errs.n, 11);
    config_errors_free(&errs);

    /* Echoed values stay on one line. */
    errs = load_fail("workers: |\n  4\n" MIN_BACKEND);
    expect_error(&errs, "1:10: workers: expected a whole number, got '4\\n'");
    assert_null(strchr(errs.lines[0], '\n'));
    config_errors_free(&errs);

    /* libcyaml would read 010 as octal 8: refuse the ambiguity. */
    errs = load_fail("workers: 010\n" MIN_BACKEND);
    expect_error(&errs, "1:10: workers: '010': write numbers without leading zeros");
    config_errors_free(&errs);
}

/* A key given twice in one mapping. */
static void test_duplicate_key(void **state)
{
    struct config_errors errs = load_fail("workers: 1\n"
                                          "log: { level: info }\n"
                                          "workers: 2\n" MIN_BACKEND);

    expect_error(&errs, "3:1: workers: duplicate key (first given at line 1)");
    config_errors_free(&errs);
}

/* Names that must be unique: backends, listeners, servers in a backend. */
static void test_duplicate_names(void **state)
{
    struct config_errors errs = load_fail("backends:\n"
                                          "  - name: web\n" /* 2 */
                                          "    servers:\n"
                                          "      - { name: w1, address: 127.0.0.1:1 }\n" /* 4 */
                                          "      - { name: w1, address: 127.0.0.1:2 }\n" /* 5 */
                                          "  - name: web\n"                              /* 6 */
                                          "    servers:\n"
                                          "      - { name: w1, address: 127.0.0.1:3 }\n"
                                          "listeners:\n"
                                          "  - { name: a, bind: \":1001\", mode: passthrough, "
                                          "default_backend: web }\n" /* 10 */
                                          "  - { name: a, bind: \":1002\", mode: passthrough, "
                                          "default_backend: web }\n"); /* 11 */

    expect_error(&errs, "5:11: backends[0].servers[1].name: duplicate server name 'w1' in this "
                        "backend (first at line 4)");
    expect_error(&errs, "6:5: backends[1].name: duplicate backend name 'web' (first at line 2)");
    expect_error(&errs, "11:7: listeners[1].name: duplicate listener name 'a' (first at line 10)");
    assert_int_equal(errs.n, 3);
    config_errors_free(&errs);
}

/* Two listeners (or a listener and the admin) on the same address and port. */
static void test_duplicate_binds(void **state)
{
    struct config_errors errs = load_fail(MIN_BACKEND "listeners:\n"
                                                      "  - name: a\n" /* 6 */
                                                      "    bind: 127.0.0.1:8443\n"
                                                      "    mode: passthrough\n"
                                                      "    default_backend: web\n"
                                                      "  - name: b\n"
                                                      "    bind: 127.0.0.1:8443\n" /* 11 */
                                                      "    mode: passthrough\n"
                                                      "    default_backend: web\n"
                                                      "  - name: c\n"
                                                      "    bind: 0.0.0.0:9900\n" /* 15 */
                                                      "    mode: passthrough\n"
                                                      "    default_backend: web\n"
                                                      "  - name: d\n"
                                                      "    bind: \"*:8443\"\n" /* 19 */
                                                      "    mode: passthrough\n"
                                                      "    default_backend: web\n");

    expect_error(&errs, "11:5: listeners[1].bind: 127.0.0.1:8443 conflicts with listener 'a' "
                        "bound to 127.0.0.1:8443 (line 7)");
    expect_error(&errs, "15:5: listeners[2].bind: 0.0.0.0:9900 conflicts with the admin listener");
    expect_error(&errs, "19:5: listeners[3].bind: *:8443 conflicts with listener 'a'");
    assert_int_equal(errs.n, 3);
    config_errors_free(&errs);
}

/* References to backends that do not exist, wherever they are. */
static void test_missing_backend(void **state)
{
    struct config_errors errs = load_fail(MIN_BACKEND "listeners:\n"
                                                      "  - name: pt\n"
                                                      "    bind: 127.0.0.1:8443\n"
                                                      "    mode: passthrough\n"
                                                      "    sni_routes:\n"
                                                      "      - { sni: a.test, backend: web }\n"
                                                      "      - { sni: b.test, backend: wbe }\n"
                                                      "    default_backend: bank\n" /* 12 */
                                                      "  - name: off\n"
                                                      "    bind: 127.0.0.1:8080\n"
                                                      "    mode: http\n"
                                                      "    http:\n"
                                                      "      rules:\n"
                                                      "        - match: { host: a.test }\n"
                                                      "          action: forward\n"
                                                      "          backend: api\n"       /* 20 */
                                                      "      default_backend: www\n"); /* 21 */

    expect_error(&errs, "11:24: listeners[0].sni_routes[1].backend: no backend named 'wbe'");
    expect_error(&errs, "12:5: listeners[0].default_backend: no backend named 'bank'");
    expect_error(&errs, "20:11: listeners[1].http.rules[0].backend: no backend named 'api'");
    expect_error(&errs, "21:7: listeners[1].http.default_backend: no backend named 'www'");
    assert_int_equal(errs.n, 4);
    config_errors_free(&errs);
}

/* Addresses that cannot be parsed or resolved. */
static void test_bad_addresses(void **state)
{
    struct config_errors errs = load_fail("admin: { listen: \"127.0.0.1\" }\n"
                                          "backends:\n"
                                          "  - name: web\n"
                                          "    servers:\n"
                                          "      - { name: a, address: \"127.0.0.1:65536\" }\n"
                                          "      - { name: b, address: \"no-such-host.invalid:80\" "
                                          "}\n"
                                          "      - { name: c, address: \"::1:80\" }\n"
                                          "      - { name: d, address: \"127.0.0.1:http\" }\n"
                                          "      - { name: e, address: \"10.0.0.1:0\" }\n"
                                          "listeners:\n"
                                          "  - name: a\n"
                                          "    bind: \"[::1:8443\"\n" /* 12 */
                                          "    mode: passthrough\n"
                                          "    default_backend: web\n");

    expect_error(&errs, "1:10: admin.listen: bad address '127.0.0.1': missing ':port'");
    expect_error(&errs, "5:20: backends[0].servers[0].address: bad address '127.0.0.1:65536': "
                        "port 65536 out of range (0-65535)");
    expect_error(&errs, "6:20: backends[0].servers[1].address: bad address "
                        "'no-such-host.invalid:80': cannot resolve 'no-such-host.invalid'");
    expect_error(&errs, "7:20: backends[0].servers[2].address: bad address '::1:80': IPv6 "
                        "addresses need brackets");
    expect_error(&errs, "8:20: backends[0].servers[3].address: bad address '127.0.0.1:http': "
                        "port 'http' is not a number");
    expect_error(&errs, "9:20: backends[0].servers[4].address: bad address '10.0.0.1:0': port 0");
    expect_error(&errs, "12:5: listeners[0].bind: bad address '[::1:8443': missing ']'");
    assert_int_equal(errs.n, 7);
    config_errors_free(&errs);
}

/* Keys that make no sense in a listener's mode, and bridge backends without TLS. */
static void test_mode_conflicts(void **state)
{
    struct config_errors errs = load_fail(
        MIN_BACKEND "listeners:\n"
                    "  - name: pt\n" /* 6 */
                    "    bind: 127.0.0.1:1001\n"
                    "    mode: passthrough\n"
                    "    default_backend: web\n"
                    "    tls: { min_version: \"1.3\" }\n" /* 10 */
                    "    http: { hsts: \"max-age=1\" }\n" /* 11 */
                    "  - name: off\n"                     /* 12 */
                    "    bind: 127.0.0.1:1002\n"
                    "    mode: offload\n"
                    "    sni_routes: [ { sni: a.test, backend: web } ]\n" /* 15 */
                    "    default_backend: web\n"                          /* 16 */
                    "    http: { default_backend: web }\n"
                    "  - name: plain\n"
                    "    bind: 127.0.0.1:1003\n"
                    "    mode: http\n"
                    "    tls: { certificates: [] }\n" /* 21 */
                    "    http: { default_backend: web, hsts: \"max-age=5\" }\n"
                    "  - name: br\n"
                    "    bind: 127.0.0.1:1004\n"
                    "    mode: bridge\n"
                    "    tls: { certificates: [ { cert: @DIR@/shop.crt, key: @DIR@/shop.key } ] }\n"
                    "    http:\n"
                    "      rules: [ { action: forward, backend: web } ]\n" /* 28 */
                    "      default_backend: web\n"                         /* 29 */
                    "  - name: empty\n"                                    /* 30 */
                    "    bind: 127.0.0.1:1005\n"
                    "    mode: passthrough\n");

    expect_error(&errs, "10:5: listeners[0].tls: a passthrough listener does not terminate TLS");
    expect_error(&errs, "11:5: listeners[0].http: a passthrough listener never sees HTTP");
    expect_error(&errs, "15:5: listeners[1].sni_routes: only for passthrough listeners");
    expect_error(&errs, "16:5: listeners[1].default_backend: only for passthrough listeners; use "
                        "http.default_backend");
    expect_error(&errs, "12:5: listeners[1].tls: an offload listener terminates TLS and needs "
                        "tls.certificates");
    expect_error(&errs, "21:5: listeners[2].tls: an http listener has no TLS");
    expect_error(&errs, "22:35: listeners[2].http.hsts: browsers ignore HSTS over plain HTTP");
    expect_error(&errs, "28:35: listeners[3].http.rules[0].backend: backend 'web' has no tls: "
                        "section, but a bridge listener speaks TLS");
    expect_error(&errs, "29:7: listeners[3].http.default_backend: backend 'web' has no tls:");
    expect_error(&errs, "30:5: listeners[4].sni_routes: a passthrough listener needs sni_routes, "
                        "default_backend or default_terminate");
    assert_int_equal(errs.n, 10);
    config_errors_free(&errs);
}

/* SNI patterns: bad ones refused, good ones normalised. */
static void test_sni_patterns(void **state)
{
    struct config_errors errs =
        load_fail(MIN_BACKEND "listeners:\n"
                              "  - name: pt\n"
                              "    bind: 127.0.0.1:8443\n"
                              "    mode: passthrough\n"
                              "    sni_routes:\n"
                              "      - { sni: \"\", backend: web }\n" /* 10 */
                              "      - { sni: \"*\", backend: web }\n"
                              "      - { sni: \"a.*.test\", backend: web }\n"
                              "      - { sni: \"*x.test\", backend: web }\n"
                              "      - { sni: \"a b.test\", backend: web }\n"
                              "      - { sni: \"a..test\", backend: web }\n"
                              "      - { sni: \"10.0.0.1\", backend: web }\n"
                              "      - { sni: \"ok.test\", backend: web }\n"
                              "      - { sni: \"OK.test.\", backend: web }\n"
                              "      - { sni: \"-a.test\", backend: web }\n");

    expect_error(&errs, "10:11: listeners[0].sni_routes[0].sni: bad pattern '': empty name");
    expect_error(&errs, "11:11: listeners[0].sni_routes[1].sni: bad pattern '*': '*' alone");
    expect_error(&errs, "12:11: listeners[0].sni_routes[2].sni: bad pattern 'a.*.test': '*' "
                        "must be the whole first label");
    expect_error(&errs, "13:11: listeners[0].sni_routes[3].sni: bad pattern '*x.test': '*' must "
                        "be the whole first label");
    expect_error(&errs, "14:11: listeners[0].sni_routes[4].sni: bad pattern 'a b.test': "
                        "character not valid in a DNS name");
    expect_error(&errs, "15:11: listeners[0].sni_routes[5].sni: bad pattern 'a..test': empty "
                        "label");
    expect_error(&errs, "16:11: listeners[0].sni_routes[6].sni: bad pattern '10.0.0.1': an IP "
                        "address");
    expect_error(&errs, "18:11: listeners[0].sni_routes[8].sni: 'OK.test.' never matches: same "
                        "pattern as line 17");
    expect_error(&errs, "19:11: listeners[0].sni_routes[9].sni: bad pattern '-a.test'");
    assert_int_equal(errs.n, 9);
    config_errors_free(&errs);
}

/* Listener TLS: unreadable files (exact message), versions, ciphers. */
static void test_tls_checks(void **state)
{
    struct config_errors errs =
        load_fail(MIN_BACKEND "listeners:\n"
                              "  - name: off\n"
                              "    bind: 127.0.0.1:8443\n"
                              "    mode: offload\n"
                              "    tls:\n"
                              "      certificates:\n"
                              "        - { cert: @DIR@/shop.crt, key: @DIR@/shop.key }\n"
                              "        - cert: @DIR@/missing.crt\n" /* 12 */
                              "          key: x.key\n"              /* 13 */
                              "      min_version: 1.1\n"            /* 14 */
                              "      ciphers: \"NOPE\"\n"
                              "      ciphersuites: \"TLS_AES_128_GCM_SHA256:TLS_NOPE\"\n"
                              "      session_tickets: false\n"
                              "      ticket_key_file: @DIR@/tickets.key\n" /* 18 */
                              "      client_ca: @DIR@/no-ca.crt\n"
                              "      alpn: [http/1.1, h2]\n" /* 20 */
                              "    http: { default_backend: web }\n");
    char want[512];

    snprintf(want, sizeof(want),
             "12:11: listeners[0].tls.certificates[1].cert: cannot read '%s/missing.crt': No such "
             "file or directory",
             tmpdir);
    expect_error(&errs, want);
    expect_error(&errs, "13:11: listeners[0].tls.certificates[1].key: cannot read 'x.key': No "
                        "such file or directory");
    expect_error(&errs, "14:7: listeners[0].tls.min_version: '1.1' is not \"1.2\" or \"1.3\"");
    expect_error(&errs, "15:7: listeners[0].tls.ciphers: no cipher OpenSSL knows in 'NOPE'");
    expect_error(&errs, "16:7: listeners[0].tls.ciphersuites: unknown TLS 1.3 cipher suite "
                        "'TLS_NOPE'");
    expect_error(&errs, "18:7: listeners[0].tls.ticket_key_file: has no effect with "
                        "session_tickets: false");
    expect_error(&errs, "19:7: listeners[0].tls.client_ca: cannot read");
    expect_error(&errs, "20:7: listeners[0].tls.alpn: 'h2': the gateway speaks HTTP/1.x only");
    assert_int_equal(errs.n, 8);
    config_errors_free(&errs);
}

/* Where one host name is wanted, a wildcard is refused as such (not as a bad label). */
static void test_no_wildcard_hosts(void **state)
{
    struct config_errors errs =
        load_fail("backends:\n"
                  "  - name: web\n"
                  "    tls: { sni: \"*.lab.test\" }\n" /* 3 */
                  "    servers: [ { name: w1, address: 127.0.0.1:9000 } ]\n"
                  "listeners:\n"
                  "  - name: h\n"
                  "    bind: 127.0.0.1:8080\n"
                  "    mode: http\n"
                  "    http:\n"
                  "      rules:\n"
                  "        - { match: { host: \"*.lab.test\" }, action: deny }\n"
                  "      default_backend: web\n");

    expect_error(&errs, "3:12: backends[0].tls.sni: '*.lab.test': a wildcard is not allowed here: "
                        "give one host name");
    expect_error(&errs, "11:22: listeners[0].http.rules[0].match.host: '*.lab.test': a wildcard "
                        "is not allowed here: give one host name");
    assert_int_equal(errs.n, 2);
    config_errors_free(&errs);
}

/* HTTP rules: keys that fit the action, statuses, CIDRs, placeholders. */
static void test_rules(void **state)
{
    struct config_errors errs = load_fail(
        MIN_BACKEND
        "listeners:\n"
        "  - name: web\n"
        "    bind: 127.0.0.1:8080\n"
        "    mode: http\n"
        "    http:\n"
        "      max_header_bytes: 0\n" /* 10 */
        "      sticky: { cookie: \"a b\", secret_file: @DIR@/nope }\n"
        "      rules:\n"
        "        - { match: { path_prefix: /a }, action: redirect }\n" /* 13 */
        "        - { match: { path_prefix: /b }, action: forward }\n"  /* 14 */
        "        - { match: { path_prefix: /c }, action: deny, status: 302 }\n"
        "        - match: { path_prefix: /d }\n" /* 16 */
        "          action: redirect\n"
        "          location: \"https://x{nope}\"\n" /* 18 */
        "          status: 200\n"                   /* 19 */
        "        - match: { src: 10.0.0.0/33 }\n"   /* 20 */
        "          action: deny\n"
        "          backend: web\n" /* 22 */
        "        - match: { src: 300.1.1.1, path_prefix: x, method: \"G T\" }\n"
        "          action: forward\n"
        "          backend: web\n"
        "          status: 200\n" /* 26 */
        "        - match: { header: { name: \"X:Y\", value: \"1\" }, path_prefix: /a/../b }\n"
        "          action: deny\n"
        "        - action: deny\n"   /* 29 */
        "        - action: deny\n"); /* 30 */

    expect_error(&errs, "10:7: listeners[0].http.max_header_bytes: 0 is not in 1..1048576");
    expect_error(&errs, "11:17: listeners[0].http.sticky.cookie: 'a b' is not a cookie name");
    expect_error(&errs, "11:32: listeners[0].http.sticky.secret_file: cannot read");
    expect_error(&errs, "13:11: listeners[0].http.rules[0].location: action redirect needs a "
                        "location");
    expect_error(&errs, "14:11: listeners[0].http.rules[1].backend: action forward needs a "
                        "backend");
    expect_error(&errs, "15:55: listeners[0].http.rules[2].status: 302: deny answers with a 4xx "
                        "or 5xx status");
    expect_error(&errs, "18:11: listeners[0].http.rules[3].location: unknown placeholder");
    expect_error(&errs, "19:11: listeners[0].http.rules[3].status: 200: redirect status is 301, "
                        "302, 303, 307 or 308");
    expect_error(&errs, "20:20: listeners[0].http.rules[4].match.src: bad prefix length '/33'");
    expect_error(&errs, "22:11: listeners[0].http.rules[4].backend: only used with action: "
                        "forward");
    expect_error(&errs, "23:20: listeners[0].http.rules[5].match.src: '300.1.1.1' is not an IP "
                        "address or network");
    expect_error(&errs, "23:36: listeners[0].http.rules[5].match.path_prefix: 'x' must begin "
                        "with '/'");
    expect_error(&errs, "23:52: listeners[0].http.rules[5].match.method: 'G T' is not an HTTP "
                        "method");
    expect_error(&errs, "26:11: listeners[0].http.rules[5].status: only used with action: deny "
                        "or redirect");
    expect_error(&errs, "27:30: listeners[0].http.rules[6].match.header.name: 'X:Y' is not a "
                        "header name");
    expect_error(&errs, "30:11: listeners[0].http.rules[8]: never reached (nor the rules after "
                        "it): rules[7] before it matches every request");
    expect_error(&errs, "27:57: listeners[0].http.rules[6].match.path_prefix: '/a/../b': write "
                        "it as rules compare paths: decoded (no %XX), without '//', '.' or '..' "
                        "segments");
    assert_int_equal(errs.n, 17);
    config_errors_free(&errs);
}

/* Zeros that make no sense, limits, health and log values. */
static void test_limits(void **state)
{
    struct config_errors errs = load_fail("workers: 257\n"
                                          "max_connections: 0\n"
                                          "timeouts: { connect: 0, idle: 0, client_hello: 0 }\n"
                                          "log: { access: \"\" }\n"
                                          "backends:\n"
                                          "  - name: web\n"
                                          "    health:\n"
                                          "      check: tcp\n"
                                          "      rise: 0\n" /* 9 */
                                          "      fall: 0\n"
                                          "      interval: 0\n"
                                          "      path: /x\n" /* 12 */
                                          "    servers:\n"
                                          "      - { name: w, address: 127.0.0.1:1, weight: 0 }\n"
                                          "      - { name: v, address: 127.0.0.1:2, weight: 300 }\n"
                                          "listeners:\n"
                                          "  - { name: pt, bind: \":8443\", mode: passthrough, "
                                          "default_backend: web }\n");

    expect_error(&errs, "1:1: workers: 257 is more than 256");
    expect_error(&errs, "2:1: max_connections: must be at least 1");
    expect_error(&errs, "3:13: timeouts.connect: must be at least 1");
    expect_error(&errs, "3:25: timeouts.idle: must be at least 1");
    expect_error(&errs, "3:34: timeouts.client_hello: must be at least 1");
    expect_error(&errs, "4:8: log.access: empty; write off, stderr, stdout or a file path");
    expect_error(&errs, "9:7: backends[0].health.rise: must be at least 1");
    expect_error(&errs, "10:7: backends[0].health.fall: must be at least 1");
    expect_error(&errs, "11:7: backends[0].health.interval: must be at least 1");
    expect_error(&errs, "12:7: backends[0].health.path: only used with check: http");
    expect_error(&errs, "15:42: backends[0].servers[1].weight: 300 is more than 256");
    assert_int_equal(errs.n, 11);
    config_errors_free(&errs);

    errs =
        load_fail("log: { access: /nonexistent-dir/access.log }\n" MIN_BACKEND "listeners:\n"
                  "  - { name: pt, bind: \":8443\", mode: passthrough, default_backend: web }\n");
    expect_error(&errs, "1:8: log.access: cannot create '/nonexistent-dir/access.log': No such "
                        "file or directory");
    config_errors_free(&errs);
}

/* Structural and semantic problems are each reported all at once. */
static void test_all_errors_reported(void **state)
{
    struct config_errors errs = load_fail("backends:\n"
                                          "  - name: web\n"
                                          "    balanse: source\n"
                                          "    servers:\n"
                                          "      - { name: w, adress: 127.0.0.1:1 }\n"
                                          "listeners:\n"
                                          "  - { name: a, bind: \":1\", mode: passthru }\n");

    expect_error(&errs, "3:5: backends[0].balanse: unknown key 'balanse' (did you mean "
                        "'balance'?)");
    expect_error(&errs, "5:20: backends[0].servers[0].adress: unknown key 'adress' (did you mean "
                        "'address'?)");
    expect_error(&errs, "5:9: backends[0].servers[0].address: missing required key");
    expect_error(&errs, "7:34: listeners[0].mode: invalid value 'passthru'");
    assert_int_equal(errs.n, 4);
    config_errors_free(&errs);

    errs = load_fail(MIN_BACKEND "listeners:\n"
                                 "  - { name: a, bind: \":1\", mode: passthrough, "
                                 "default_backend: x }\n"
                                 "  - { name: a, bind: \":1\", mode: offload }\n");
    expect_error(&errs, "6:47: listeners[0].default_backend: no backend named 'x'");
    expect_error(&errs, "7:7: listeners[1].name: duplicate listener name 'a'");
    expect_error(&errs, "7:16: listeners[1].bind: :1 conflicts with listener 'a'");
    expect_error(&errs, "7:5: listeners[1].tls: an offload listener terminates TLS");
    expect_error(&errs, "7:5: listeners[1].http: needs http.default_backend or http.rules");
    assert_int_equal(errs.n, 5);
    config_errors_free(&errs);
}

/* YAML syntax errors carry libyaml's line and column. */
static void test_syntax_error(void **state)
{
    struct config_errors errs = load_fail("workers: 1\n"
                                          "listeners:\n"
                                          "  - name: a\n"
                                          "   bind: x\n"); /* 4: bad indentation */

    assert_int_equal(errs.n, 1);
    expect_error(&errs,
                 "4:4: yaml: did not find expected '-' indicator (while parsing a block collection "
                 "at line 3)");
    config_errors_free(&errs);

    errs = load_fail("workers: \"1\n");
    expect_error(&errs, "2:1: yaml: found unexpected end of stream (while scanning a quoted "
                        "scalar at line 1)");
    config_errors_free(&errs);

    errs = load_fail("workers:\t1\nlisteners:\n\t- a\n");
    expect_error(&errs, "3:1: yaml: found character that cannot start any token");
    config_errors_free(&errs);
}

/* Files that are empty, only comments, not a mapping, or missing. */
static void test_empty_and_missing(void **state)
{
    struct config_errors errs = load_fail("");
    expect_error(&errs, "1:1: the file is empty");
    config_errors_free(&errs);

    errs = load_fail("# nothing here\n\n");
    expect_error(&errs, "1:1: the file is empty");
    config_errors_free(&errs);

    errs = load_fail("---\n");
    expect_error(&errs, "1:1: the file is empty");
    config_errors_free(&errs);

    errs = load_fail("- a\n- b\n");
    expect_error(&errs, "1:1: expected a mapping, got a list");
    config_errors_free(&errs);

    struct config_errors e2 = {0};
    assert_null(config_load("/nonexistent/tlsgate.yaml", &e2));
    assert_int_equal(e2.n, 1);
    assert_string_equal(e2.lines[0],
                        "/nonexistent/tlsgate.yaml: cannot open: No such file or directory");
    config_errors_free(&e2);

    assert_null(config_load(tmpdir, &e2));
    assert_int_equal(e2.n, 1);
    assert_non_null(strstr(e2.lines[0], "not a regular file"));
    config_errors_free(&e2);
}

/* Aliases and a second document are refused with their line. */
static void test_yaml_features(void **state)
{
    struct config_errors errs = load_fail("backends:\n"
                                          "  - name: web\n"
                                          "    servers: &s\n"
                                          "      - { name: w, address: 127.0.0.1:1 }\n"
                                          "  - name: web2\n"
                                          "    servers: *s\n" /* 6 */
                                          "listeners:\n"
                                          "  - { name: a, bind: \":1\", mode: passthrough, "
                                          "default_backend: web }\n"
                                          "---\n" /* 9 */
                                          "workers: 2\n");

    expect_error(&errs, "6:14: backends[1].servers: YAML aliases (*s) are not supported");
    expect_error(&errs, "9:1: yaml: only one document per file");
    assert_int_equal(errs.n, 2);
    config_errors_free(&errs);
}

/* proxy_protocol: off stays the string "off" (not YAML 1.1's false). */
static void test_proxy_protocol_off(void **state)
{
    struct config *c = load_ok("backends:\n"
                               "  - name: web\n"
                               "    proxy_protocol: v1\n"
                               "    servers: [ { name: w, address: \"127.0.0.1:1\" } ]\n"
                               "listeners:\n"
                               "  - name: a\n"
                               "    bind: \":1\"\n"
                               "    mode: passthrough\n"
                               "    proxy_protocol: off\n"
                               "    default_backend: web\n"
                               "  - name: b\n"
                               "    bind: \":2\"\n"
                               "    mode: passthrough\n"
                               "    proxy_protocol: v2\n"
                               "    default_backend: web\n");

    assert_int_equal(c->backends[0].proxy_protocol, PP_V1);
    assert_int_equal(c->listeners[0].proxy_protocol, PP_OFF);
    assert_int_equal(c->listeners[1].proxy_protocol, PP_V2);
    config_unref(c);
}

/*
 * sni_routes terminate and default_terminate hand connections to offload or
 * bridge listeners, which may go without a socket (bind: none); two
 * passthrough listeners may share one, and one may also have its own bind.
 */
static void test_terminate_build(void **state)
{
    struct config *c = load_ok(MIN_BACKEND "listeners:\n"
                                           "  - name: pt\n"
                                           "    bind: 127.0.0.1:8443\n"
                                           "    mode: passthrough\n"
                                           "    sni_routes:\n"
                                           "      - { sni: bank.test, backend: web }\n"
                                           "      - { sni: \"*.shop.test\", terminate: shop }\n"
                                           "    default_terminate: shop\n"
                                           "  - name: pt2\n"
                                           "    bind: 127.0.0.1:9443\n"
                                           "    mode: passthrough\n"
                                           "    sni_routes: [ { sni: a.test, terminate: both } ]\n"
                                           "    default_backend: web\n"
                                           "  - name: shop\n"
                                           "    bind: none\n"
                                           "    mode: offload\n"
                                           "    tls: { certificates: [ { cert: @DIR@/shop.crt, "
                                           "key: @DIR@/shop.key } ] }\n"
                                           "    http: { default_backend: web }\n"
                                           "  - name: both\n"
                                           "    bind: 127.0.0.1:8444\n"
                                           "    mode: offload\n"
                                           "    tls: { certificates: [ { cert: @DIR@/shop.crt, "
                                           "key: @DIR@/shop.key } ] }\n"
                                           "    http: { default_backend: web }\n");
    struct listener *pt = &c->listeners[0], *pt2 = &c->listeners[1];
    struct listener *shop = &c->listeners[2], *both = &c->listeners[3];

    assert_ptr_equal(pt->sni_routes[0].backend, &c->backends[0]);
    assert_null(pt->sni_routes[0].terminate);
    assert_null(pt->sni_routes[1].backend);
    assert_ptr_equal(pt->sni_routes[1].terminate, shop);
    assert_null(pt->default_backend);
    assert_ptr_equal(pt->default_terminate, shop);
    assert_ptr_equal(pt2->sni_routes[0].terminate, both);
    assert_ptr_equal(pt2->default_backend, &c->backends[0]);
    assert_null(pt2->default_terminate);
    assert_true(shop->no_bind);
    assert_false(both->no_bind);
    assert_false(pt->no_bind);
    assert_int_equal(both->bind.len, sizeof(struct sockaddr_in));
    assert_non_null(shop->tls_server);
    config_unref(c);
}

/* Each mistake with a terminate route, bind: none or a target's keys, at its line. */
static void test_terminate_errors(void **state)
{
    struct config_errors errs = load_fail(
        MIN_BACKEND "listeners:\n"
                    "  - name: pt\n"
                    "    bind: 127.0.0.1:8443\n"
                    "    mode: passthrough\n"
                    "    sni_routes:\n"
                    "      - { sni: a.test, backend: web, terminate: shop }\n" /* 10 */
                    "      - { sni: b.test }\n"                                /* 11 */
                    "      - { sni: c.test, terminate: nosuch }\n"             /* 12 */
                    "      - { sni: d.test, terminate: plain }\n"              /* 13 */
                    "      - { sni: e.test, terminate: pt }\n"                 /* 14 */
                    "    default_backend: web\n"                               /* 15 */
                    "    default_terminate: shop\n"                            /* 16 */
                    "  - name: plain\n"
                    "    bind: none\n" /* 18 */
                    "    mode: http\n"
                    "    http: { default_backend: web }\n"
                    "  - name: shop\n"
                    "    bind: none\n"
                    "    mode: offload\n"
                    "    proxy_protocol: v2\n"      /* 24 */
                    "    default_terminate: shop\n" /* 25 */
                    "    tls: { certificates: [ { cert: @DIR@/shop.crt, key: @DIR@/shop.key } ] }\n"
                    "    http: { default_backend: web }\n"
                    "  - name: lost\n"
                    "    bind: none\n" /* 29 */
                    "    mode: offload\n"
                    "    tls: { certificates: [ { cert: @DIR@/shop.crt, key: @DIR@/shop.key } ] }\n"
                    "    http: { default_backend: web }\n"
                    "  - name: pt3\n"
                    "    bind: none\n" /* 34 */
                    "    mode: passthrough\n"
                    "    default_terminate: shop\n");

    expect_error(&errs, "10:38: listeners[0].sni_routes[0].terminate: give backend (relay to "
                        "servers) or terminate (TLS ends here), not both");
    expect_error(&errs, "11:9: listeners[0].sni_routes[1]: needs backend (relay to servers) or "
                        "terminate");
    expect_error(&errs, "12:24: listeners[0].sni_routes[2].terminate: no listener named 'nosuch'");
    expect_error(&errs, "13:24: listeners[0].sni_routes[3].terminate: listener 'plain' is in mode "
                        "http; terminate names an offload or bridge listener");
    expect_error(&errs, "14:24: listeners[0].sni_routes[4].terminate: listener 'pt' is in mode "
                        "passthrough");
    expect_error(&errs, "16:5: listeners[0].default_terminate: give default_backend or "
                        "default_terminate, not both (line 15)");
    expect_error(&errs, "18:5: listeners[1].bind: none: only an offload or bridge listener can go "
                        "without a socket");
    expect_error(&errs, "24:5: listeners[2].proxy_protocol: listener 'shop' is a terminate target "
                        "of passthrough listener 'pt', which reads the PROXY header");
    expect_error(&errs, "25:5: listeners[2].default_terminate: only for passthrough listeners");
    expect_error(&errs, "29:5: listeners[3].bind: none, but no passthrough listener names 'lost' "
                        "in sni_routes terminate or default_terminate: it is unreachable");
    expect_error(&errs, "34:5: listeners[4].bind: none: only an offload or bridge listener");
    assert_int_equal(errs.n, 11);
    config_errors_free(&errs);
}

/* config_errors_add formats and owns its lines; free empties. */
static void test_errors_api(void **state)
{
    struct config_errors errs = {0};

    assert_int_equal(config_errors_add(&errs, "%s:%d: %s", "f", 3, "x"), 0);
    assert_int_equal(config_errors_add(&errs, "second"), 0);
    assert_int_equal(errs.n, 2);
    assert_string_equal(errs.lines[0], "f:3: x");
    config_errors_free(&errs);
    assert_int_equal(errs.n, 0);
    assert_null(errs.lines);
    config_errors_free(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_admin_disabled),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_example_passthrough),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_duplicate_binds),
        cmocka_unit_test(test_missing_backend),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_mode_conflicts),
        cmocka_unit_test(test_sni_patterns),
        cmocka_unit_test(test_tls_checks),
        cmocka_unit_test(test_no_wildcard_hosts),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_yaml_features),
        cmocka_unit_test(test_proxy_protocol_off),
        cmocka_unit_test(test_terminate_build),
        cmocka_unit_test(test_terminate_errors),
        cmocka_unit_test(test_errors_api),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
