/*
 * OpenSSL contexts of a snapshot: configurations load (or are refused with
 * the key path and position of the problem), then real handshakes run in
 * memory between a client SSL and one from tls_server_ssl_new() or
 * tls_client_ssl_new(), over a BIO pair (and once over libevent, the way the
 * HTTP engine runs them).
 *
 * Certificates come from certs/mkcerts.sh, run once into a temporary
 * directory: a lab CA, ECDSA server certificates (web: web.lab.test and
 * *.lab.test; shop: shop.lab.test; bank: bank.lab.test), shop-rsa (RSA twin
 * of shop), wrong (wrong.example, 192.0.2.1) and client (clientAuth).
 *
 * Each YAML text is written one line per string literal, so the line numbers
 * asserted below can be counted in the source. "@DIR@" stands for that
 * directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "tls_ctx.h"

static char tmpdir[] = "/tmp/tg_tls_test.XXXXXX";
static char yaml_path[300];

/* Ticket key files made by group_setup: k1, k2, k2 then k1 (rotation), 79 bytes. */
static unsigned char key1[80], key2[80];

/* Writes len bytes of data to tmpdir/name. */
static int write_file(const char *name, const void *data, size_t len)
{
    char path[400];
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if ((f = fopen(path, "wb")) == NULL)
        return -1;
    n = fwrite(data, 1, len, f);
    fclose(f);
    return n == len ? 0 : -1;
}

/* Makes the certificates and key files. */
static int group_setup(void **state)
{
    char cmd[1024];
    unsigned char both[160];

    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash %s/../../../certs/mkcerts.sh %s >/dev/null && cd %s && "
             "openssl ec -in web.key -aes256 -passout pass:secret -out enc.key 2>/dev/null",
             TEST_DATA_DIR, tmpdir, tmpdir);
    if (system(cmd) != 0)
        return -1;
    if (RAND_bytes(key1, sizeof(key1)) != 1 || RAND_bytes(key2, sizeof(key2)) != 1)
        return -1;
    memcpy(both, key2, 80);
    memcpy(both + 80, key1, 80);
    if (write_file("k1.key", key1, 80) < 0 || write_file("k2.key", key2, 80) < 0 ||
        write_file("k21.key", both, 160) < 0 || write_file("short.key", key1, 79) < 0 ||
        write_file("junk.pem", "this is not PEM\n", 16) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/fifo.pem", tmpdir);
    if (mkfifo(cmd, 0600) < 0)
        return -1;
    snprintf(yaml_path, sizeof(yaml_path), "%s/test.yaml", tmpdir);
    return 0;
}

/* Removes the temporary directory. */
static int group_teardown(void **state)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text (with @DIR@ replaced) to yaml_path and loads it. */
static struct config *load(const char *text, struct config_errors *errs)
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
    return config_load(yaml_path, errs);
}

static void dump(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        print_message("  %s\n", errs->lines[i]);
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

/* True when an error line is "yaml_path:" + want... (a prefix) with want2 (if not NULL) in it. */
static bool has_error(const struct config_errors *errs, const char *want, const char *want2)
{
    size_t plen = strlen(yaml_path);

    for (size_t i = 0; i < errs->n; i++)
        if (strncmp(errs->lines[i], yaml_path, plen) == 0 && errs->lines[i][plen] == ':' &&
            strncmp(errs->lines[i] + plen + 1, want, strlen(want)) == 0 &&
            (want2 == NULL || strstr(errs->lines[i], want2) != NULL))
            return true;
    return false;
}

/* Loads text, which must be refused; returns its errors (caller frees). */
static struct config_errors load_fail(const char *text, int line)
{
    struct config_errors errs = {0};
    struct config *c = load(text, &errs);

    if (c != NULL) {
        config_unref(c);
        fail_msg("the configuration was accepted (test line %d)", line);
    }
    return errs;
}

/*
 * Loads text, which must fail with an error line "LINE:COL: key.path:
 * message start" (want), with want2 somewhere in it when not NULL.
 */
static void expect_error_at(const char *text, const char *want, const char *want2, int line)
{
    struct config_errors errs = load_fail(text, line);
    bool found = has_error(&errs, want, want2);

    if (!found) {
        print_message("missing error '%s' ... '%s' (test line %d); got:\n", want,
                      want2 ? want2 : "", line);
        dump(&errs);
    }
    config_errors_free(&errs);
    assert_true(found);
}
#define expect_error(text, want, want2) expect_error_at(text, want, want2, __LINE__)

/* An offload listener "off" (lines 1-11), then its certificates and more tls: keys. */
#define OFFLOAD_HEAD                                                                               \
    "backends:\n"                                     /* 1 */                                      \
    "  - name: web\n"                                 /* 2 */                                      \
    "    servers:\n"                                  /* 3 */                                      \
    "      - { name: w1, address: 127.0.0.1:9080 }\n" /* 4 */                                      \
    "listeners:\n"                                    /* 5 */                                      \
    "  - name: off\n"                                 /* 6 */                                      \
    "    bind: 127.0.0.1:18443\n"                     /* 7 */                                      \
    "    mode: offload\n"                             /* 8 */                                      \
    "    http: { default_backend: web }\n"            /* 9 */                                      \
    "    tls:\n"                                      /* 10 */                                     \
    "      certificates:\n"                           /* 11 */
/* One certificates entry: two lines, cert then key (column 11). */
#define CERT(crt, key)                                                                             \
    "        - cert: @DIR@/" crt "\n"                                                              \
    "          key: @DIR@/" key "\n"

/* ---- building and refusing ---- */

/* A valid offload listener gets its server contexts; a plain backend no client context. */
static void test_build_offload(void **state)
{
    struct config *c = load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key"));
    SSL *ssl;

    assert_non_null(c->listeners[0].tls_server);
    assert_null(c->backends[0].tls_client);
    ssl = tls_server_ssl_new(&c->listeners[0]);
    assert_non_null(ssl);
    assert_true(SSL_is_server(ssl));
    assert_string_equal(tls_sni(ssl), "");
    SSL_free(ssl);
    assert_string_equal(tls_version_name(NULL), "");
    assert_string_equal(tls_cipher_name(NULL), "");
    assert_string_equal(tls_sni(NULL), "");
    config_unref(c);
}

/* A key file that is not there is named with its position. */
static void test_missing_key(void **state)
{
    expect_error(OFFLOAD_HEAD CERT("web.crt", "nope.key"),
                 "13:11: listeners[0].tls.certificates[0].key: cannot read '",
                 "No such file or directory");
}

/* A key of another certificate, of the same type or not, is refused. */
static void test_mismatched_key(void **state)
{
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") CERT("shop.crt", "bank.key"),
                 "15:11: listeners[0].tls.certificates[1].key: '",
                 "does not match the certificate");
    expect_error(OFFLOAD_HEAD CERT("shop.crt", "shop-rsa.key"),
                 "13:11: listeners[0].tls.certificates[0].key: '",
                 "does not match the certificate");
}

/* Files that are there but are not what they should be. */
static void test_unusable_files(void **state)
{
    expect_error(OFFLOAD_HEAD CERT("junk.pem", "web.key"),
                 "12:11: listeners[0].tls.certificates[0].cert: cannot load certificate", NULL);
    expect_error(OFFLOAD_HEAD CERT("web.crt", "junk.pem"),
                 "13:11: listeners[0].tls.certificates[0].key: cannot load private key", NULL);
    /* An encrypted key is refused, not asked for on the terminal. */
    expect_error(OFFLOAD_HEAD CERT("web.crt", "enc.key"),
                 "13:11: listeners[0].tls.certificates[0].key: cannot load private key",
                 "unencrypted");
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") "      client_ca: @DIR@/junk.pem\n",
                 "14:7: listeners[0].tls.client_ca: ", "junk.pem");
    /* A FIFO (whose open would wait for a writer forever) or a directory: refused at once. */
    expect_error(OFFLOAD_HEAD CERT("web.crt", "fifo.pem"),
                 "13:11: listeners[0].tls.certificates[0].key: cannot read '",
                 "fifo.pem': not a regular file");
    expect_error(OFFLOAD_HEAD CERT(".", "web.key"),
                 "12:11: listeners[0].tls.certificates[0].cert: cannot read '",
                 "not a regular file");
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") "      ticket_key_file: @DIR@/fifo.pem\n",
                 "14:7: listeners[0].tls.ticket_key_file: cannot read '", "not a regular file");
}

/* Cipher lists OpenSSL does not know are refused at their key. */
static void test_bad_ciphers(void **state)
{
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") "      ciphers: \"NOPE-NOPE\"\n",
                 "14:7: listeners[0].tls.ciphers: ", "NOPE-NOPE");
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") "      ciphersuites: \"TLS_NOPE\"\n",
                 "14:7: listeners[0].tls.ciphersuites: ", "TLS_NOPE");
}

/* A ticket key file must be whole 80-byte keys. */
static void test_ticket_key_file_size(void **state)
{
    expect_error(OFFLOAD_HEAD CERT("web.crt", "web.key") "      ticket_key_file: @DIR@/short.key\n",
                 "14:7: listeners[0].tls.ticket_key_file: '", "holds 79 bytes");
}

/* Every problem of a listener is reported, not only the first. */
static void test_every_problem_reported(void **state)
{
    struct config_errors errs =
        load_fail(OFFLOAD_HEAD CERT("web.crt", "shop.key") CERT("junk.pem", "web.key") /* 14 */
                  "      ticket_key_file: @DIR@/short.key\n"                           /* 16 */
                  "      client_ca: @DIR@/junk.pem\n",                                 /* 17 */
                  __LINE__);

    if (errs.n != 4)
        dump(&errs);
    assert_int_equal(errs.n, 4);
    assert_true(has_error(&errs, "13:11: listeners[0].tls.certificates[0].key: '", "not match"));
    assert_true(
        has_error(&errs, "14:11: listeners[0].tls.certificates[1].cert: cannot load", NULL));
    assert_true(has_error(&errs, "16:7: listeners[0].tls.ticket_key_file: '", "79 bytes"));
    assert_true(has_error(&errs, "17:7: listeners[0].tls.client_ca: cannot load", NULL));
    config_errors_free(&errs);
}

/* A bridge backend's CA must exist and hold certificates. */
static void test_backend_ca(void **state)
{
    static const char head[] = "backends:\n"                                     /* 1 */
                               "  - name: up\n"                                  /* 2 */
                               "    tls:\n"                                      /* 3 */
                               "      verify: true\n";                           /* 4 */
    static const char tail[] = "    servers:\n"                                  /* 6 */
                               "      - { name: s1, address: 127.0.0.1:9080 }\n" /* 7 */
                               "listeners:\n"                                    /* 8 */
                               "  - name: br\n"                                  /* 9 */
                               "    bind: 127.0.0.1:18444\n"                     /* 10 */
                               "    mode: bridge\n"                              /* 11 */
                               "    http: { default_backend: up }\n"             /* 12 */
                               "    tls:\n"                                      /* 13 */
                               "      certificates:\n"                           /* 14 */
        CERT("web.crt", "web.key");
    char text[2048];

    snprintf(text, sizeof(text), "%s%s%s", head, "      ca: @DIR@/nope.crt\n", tail);
    expect_error(text, "5:7: backends[0].tls.ca: cannot read '", "No such file or directory");
    snprintf(text, sizeof(text), "%s%s%s", head, "      ca: @DIR@/junk.pem\n", tail);
    expect_error(text, "5:7: backends[0].tls.ca: cannot load CA certificates '", NULL);
    snprintf(text, sizeof(text), "%s%s%s", head, "      ca: @DIR@/ca.crt\n", tail);
    struct config *c = load_ok(text);
    assert_non_null(c->backends[0].tls_client);
    assert_non_null(c->listeners[0].tls_server);
    config_unref(c);
}

/* ---- handshakes in memory ---- */

/* What a handshake left: each side's error line when it failed. */
struct hs {
    char cerr[256]; /* client */
    char serr[256]; /* server */
};

/* One step of ssl's handshake: 1 done, 0 wants more, -1 failed (err filled). */
static int hs_step(SSL *ssl, char *err, size_t len)
{
    int r = SSL_do_handshake(ssl), e;

    if (r == 1)
        return 1;
    e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    tls_handshake_error(ssl, err, len);
    if (err[0] == '\0')
        snprintf(err, len, "SSL error %d", e);
    return -1;
}

/* Connects c and s through a BIO pair and runs both handshakes. Returns 0 or -1. */
static int handshake(SSL *c, SSL *s, struct hs *hs)
{
    BIO *bc, *bs;
    int cdone = 0, sdone = 0;

    memset(hs, 0, sizeof(*hs));
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 50 && !(cdone == 1 && sdone == 1); i++) {
        if (cdone != 1 && (cdone = hs_step(c, hs->cerr, sizeof(hs->cerr))) < 0)
            return -1;
        if (sdone != 1 && (sdone = hs_step(s, hs->serr, sizeof(hs->serr))) < 0)
            return -1;
    }
    return cdone == 1 && sdone == 1 ? 0 : -1;
}

/* Reads into buf until n bytes or no progress. Returns the bytes read. */
static int read_some(SSL *ssl, char *buf, int n)
{
    int got = 0, r;

    while (got < n && (r = SSL_read(ssl, buf + got, n - got)) > 0)
        got += r;
    return got;
}

/* Application data both ways; the client reads TLS 1.3 tickets on the way. */
static void exchange(SSL *c, SSL *s)
{
    char buf[8];

    assert_int_equal(SSL_write(s, "ping", 4), 4);
    assert_int_equal(read_some(c, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(SSL_write(c, "pong", 4), 4);
    assert_int_equal(read_some(s, buf, 4), 4);
    assert_memory_equal(buf, "pong", 4);
}

/* A test client context trusting the lab CA; max_version 0 = any. */
static SSL_CTX *client_ctx(bool verify, int max_version)
{
    char path[400];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    assert_non_null(ctx);
    snprintf(path, sizeof(path), "%s/ca.crt", tmpdir);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (max_version != 0)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
    return ctx;
}

/* A client SSL of ctx sending sni (NULL = none). */
static SSL *client_ssl(SSL_CTX *ctx, const char *sni)
{
    SSL *ssl = SSL_new(ctx);

    assert_non_null(ssl);
    if (sni != NULL)
        assert_int_equal(SSL_set_tlsext_host_name(ssl, sni), 1);
    return ssl;
}

/* The CN of the certificate the server presented to c. */
static const char *peer_cn(SSL *c, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(c);

    assert_non_null(x);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len) >
                0);
    return buf;
}

/* When set, run() frees the server SSL without tls_ssl_closing(), as after a crash. */
static bool unclean_close;

/*
 * Handshakes c against a new server SSL of l, exchanges data and ends the
 * server side (c is the caller's). Returns 0 or -1.
 */
static int run(SSL *c, const struct listener *l, struct hs *hs)
{
    SSL *s = tls_server_ssl_new(l);
    int rc;

    assert_non_null(s);
    rc = handshake(c, s, hs);
    if (rc == 0)
        exchange(c, s);
    if (!unclean_close)
        tls_ssl_closing(s);
    SSL_free(s);
    return rc;
}

/* run() and free the client SSL too. */
static int run_free(SSL *cl, const struct listener *l, struct hs *hs)
{
    int rc = run(cl, l, hs);

    SSL_free(cl);
    return rc;
}

/* SNI picks the certificate naming it exactly, then by wildcard, else the default. */
static void test_sni_picks_certificate(void **state)
{
    struct config *c = load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") CERT("shop.crt", "shop.key")
                                   CERT("bank.crt", "bank.key"));
    static const struct {
        const char *sni, *cn;
    } cases[] = {
        {"shop.lab.test", "shop.lab.test"}, /* exact beats web's *.lab.test */
        {"BANK.Lab.Test", "bank.lab.test"}, /* case does not matter */
        {"www.lab.test", "shop.lab.test"},  /* second SAN */
        {"other.lab.test", "web.lab.test"}, /* wildcard */
        {"a.b.lab.test", "web.lab.test"},   /* no wildcard match: default */
        {"nothing.example", "web.lab.test"}, {NULL, "web.lab.test"},
    };
    SSL_CTX *cctx = client_ctx(true, 0);
    char cn[128];
    struct hs hs;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        SSL *cl = client_ssl(cctx, cases[i].sni);
        SSL *s = tls_server_ssl_new(&c->listeners[0]);
        if (handshake(cl, s, &hs) < 0)
            fail_msg("SNI %s: client '%s' server '%s'", cases[i].sni, hs.cerr, hs.serr);
        assert_string_equal(peer_cn(cl, cn, sizeof(cn)), cases[i].cn);
        assert_string_equal(tls_sni(s), cases[i].sni ? cases[i].sni : "");
        assert_string_equal(tls_version_name(s), "TLSv1.3");
        assert_true(strncmp(tls_cipher_name(s), "TLS_", 4) == 0);
        SSL_free(cl);
        SSL_free(s);
    }
    SSL_CTX_free(cctx);
    config_unref(c);
}

/* min_version "1.3" refuses a client that stops at TLS 1.2. */
static void test_min_version(void **state)
{
    struct config *c =
        load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") "      min_version: \"1.3\"\n");
    SSL_CTX *old = client_ctx(true, TLS1_2_VERSION), *any = client_ctx(true, 0);
    struct hs hs;

    assert_int_equal(run_free(client_ssl(old, NULL), &c->listeners[0], &hs), -1);
    assert_true(hs.serr[0] != '\0');
    SSL *cl = client_ssl(any, NULL);
    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    assert_string_equal(tls_version_name(cl), "TLSv1.3");
    SSL_free(cl);
    SSL_CTX_free(old);
    SSL_CTX_free(any);
    config_unref(c);
}

/* TLS 1.2 gets a forward-secret AEAD cipher, and nothing else is on offer. */
static void test_tls12_ciphers(void **state)
{
    struct config *c = load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key"));
    SSL_CTX *cctx = client_ctx(true, TLS1_2_VERSION);
    SSL *cl = client_ssl(cctx, "web.lab.test");
    const char *name;
    struct hs hs;

    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    name = tls_cipher_name(cl);
    assert_string_equal(tls_version_name(cl), "TLSv1.2");
    assert_true(strncmp(name, "ECDHE-ECDSA-", 12) == 0);
    assert_true(strstr(name, "GCM") != NULL || strstr(name, "CHACHA20") != NULL);
    SSL_free(cl);

    static const char *const weak[] = {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
                                       "AES128-GCM-SHA256"};
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
        cl = client_ssl(cctx, NULL);
        assert_int_equal(SSL_set_cipher_list(cl, weak[i]), 1);
        assert_int_equal(run_free(cl, &c->listeners[0], &hs), -1);
    }
    SSL_CTX_free(cctx);
    config_unref(c);
}

/* An RSA twin of an ECDSA certificate serves the clients that only take RSA. */
static void test_rsa_and_ecdsa(void **state)
{
    struct config *c = load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") CERT("shop.crt", "shop.key")
                                   CERT("shop-rsa.crt", "shop-rsa.key"));
    SSL_CTX *c12 = client_ctx(true, TLS1_2_VERSION), *c13 = client_ctx(true, 0);
    struct hs hs;
    SSL *cl;

    cl = client_ssl(c12, "shop.lab.test");
    assert_int_equal(SSL_set_cipher_list(cl, "ECDHE-RSA-AES128-GCM-SHA256"), 1);
    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(SSL_get0_peer_certificate(cl))),
                     EVP_PKEY_RSA);
    SSL_free(cl);

    cl = client_ssl(c13, "shop.lab.test");
    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(SSL_get0_peer_certificate(cl))),
                     EVP_PKEY_EC);
    SSL_free(cl);
    SSL_CTX_free(c12);
    SSL_CTX_free(c13);
    config_unref(c);
}

/* ALPN: ours when offered, none (not a failure) when nothing overlaps. */
static void test_alpn(void **state)
{
    struct config *c = load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key"));
    SSL_CTX *cctx = client_ctx(true, 0);
    const unsigned char *sel;
    unsigned int len;
    struct hs hs;
    SSL *cl;

    cl = client_ssl(cctx, NULL);
    assert_int_equal(SSL_set_alpn_protos(cl, (const unsigned char *)"\x02h2\x08http/1.1", 12), 0);
    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    SSL_get0_alpn_selected(cl, &sel, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(sel, "http/1.1", 8);
    SSL_free(cl);

    cl = client_ssl(cctx, NULL);
    assert_int_equal(SSL_set_alpn_protos(cl, (const unsigned char *)"\x02h2", 3), 0);
    assert_int_equal(run(cl, &c->listeners[0], &hs), 0);
    SSL_get0_alpn_selected(cl, &sel, &len);
    assert_int_equal(len, 0);
    SSL_free(cl);
    SSL_CTX_free(cctx);
    config_unref(c);
}

/* A full handshake with l; returns the session the client got (caller frees). */
static SSL_SESSION *first_session(SSL_CTX *cctx, const struct listener *l, const char *sni)
{
    SSL *cl = client_ssl(cctx, sni);
    SSL_SESSION *sess;
    struct hs hs;

    assert_int_equal(run(cl, l, &hs), 0);
    assert_false(SSL_session_reused(cl));
    sess = SSL_get1_session(cl);
    assert_non_null(sess);
    assert_true(SSL_SESSION_is_resumable(sess));
    tls_ssl_closing(cl);
    SSL_free(cl);
    return sess;
}

/* Offers sess to l. Returns whether it was resumed; *next gets the session after (may be NULL). */
static bool resumes(SSL_CTX *cctx, const struct listener *l, const char *sni, SSL_SESSION *sess,
                    SSL_SESSION **next)
{
    SSL *cl = client_ssl(cctx, sni);
    struct hs hs;
    bool reused;

    assert_int_equal(SSL_set_session(cl, sess), 1);
    if (run(cl, l, &hs) < 0)
        fail_msg("client '%s' server '%s'", hs.cerr, hs.serr);
    reused = SSL_session_reused(cl);
    if (next != NULL)
        *next = SSL_get1_session(cl);
    tls_ssl_closing(cl);
    SSL_free(cl);
    return reused;
}

/* Loads the offload listener with this ticket key file ("" = none). */
static struct config *with_tickets(const char *file)
{
    char text[2048];

    snprintf(text, sizeof(text), "%s%s", OFFLOAD_HEAD CERT("web.crt", "web.key"),
             CERT("shop.crt", "shop.key"));
    if (*file != '\0')
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "      ticket_key_file: @DIR@/%s\n", file);
    return load_ok(text);
}

/* Tickets resume across two builds (two instances) sharing a key file, not across others. */
static void test_ticket_resumption(void **state)
{
    const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};

    for (size_t v = 0; v < 2; v++) {
        struct config *a = with_tickets("k1.key"), *b = with_tickets("k1.key");
        struct config *other = with_tickets("k2.key"), *rotated = with_tickets("k21.key");
        struct config *rnd1 = with_tickets(""), *rnd2 = with_tickets("");
        SSL_CTX *cctx = client_ctx(true, versions[v]);
        SSL_SESSION *sess = first_session(cctx, &a->listeners[0], "web.lab.test"), *next = NULL;
        const unsigned char *tick;
        size_t tlen;

        print_message("TLS %s\n", v == 0 ? "1.3" : "1.2");
        assert_true(SSL_SESSION_has_ticket(sess));
        assert_true(resumes(cctx, &a->listeners[0], "web.lab.test", sess, NULL));
        assert_true(resumes(cctx, &b->listeners[0], "web.lab.test", sess, NULL));
        assert_false(resumes(cctx, &other->listeners[0], "web.lab.test", sess, NULL));
        /* k2 prepended: k1's tickets still resume, and the new ticket is under k2. */
        assert_true(resumes(cctx, &rotated->listeners[0], "web.lab.test", sess, &next));
        if (versions[v] == TLS1_2_VERSION) {
            assert_non_null(next);
            SSL_SESSION_get0_ticket(next, &tick, &tlen);
            assert_true(tlen > 16);
            assert_memory_equal(tick, key2, 16);
        }
        SSL_SESSION_free(next);
        SSL_SESSION_free(sess);

        /* Without a file: random keys, shared by the listener's contexts of one build only. */
        sess = first_session(cctx, &rnd1->listeners[0], "shop.lab.test");
        assert_true(resumes(cctx, &rnd1->listeners[0], "shop.lab.test", sess, NULL));
        assert_false(resumes(cctx, &rnd2->listeners[0], "shop.lab.test", sess, NULL));
        SSL_SESSION_free(sess);

        SSL_CTX_free(cctx);
        config_unref(a);
        config_unref(b);
        config_unref(other);
        config_unref(rotated);
        config_unref(rnd1);
        config_unref(rnd2);
    }
}

/*
 * session_tickets: false: no tickets, but the session cache still resumes
 * in-process, as long as connections end with tls_ssl_closing().
 */
static void test_no_tickets(void **state)
{
    const int versions[] = {TLS1_3_VERSION, TLS1_2_VERSION};
    struct config *c =
        load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") "      session_tickets: false\n");

    for (size_t v = 0; v < 2; v++) {
        SSL_CTX *cctx = client_ctx(true, versions[v]);
        SSL_SESSION *sess = first_session(cctx, &c->listeners[0], NULL);
        if (versions[v] == TLS1_2_VERSION)
            assert_false(SSL_SESSION_has_ticket(sess));
        assert_true(resumes(cctx, &c->listeners[0], NULL, sess, NULL));
        SSL_SESSION_free(sess);
        if (versions[v] == TLS1_3_VERSION) {
            SSL_CTX_free(cctx);
            continue;
        }
        /* Ended without tls_ssl_closing(): OpenSSL drops the session id from its cache. */
        sess = first_session(cctx, &c->listeners[0], NULL);
        unclean_close = true;
        assert_true(resumes(cctx, &c->listeners[0], NULL, sess, NULL));
        unclean_close = false;
        assert_false(resumes(cctx, &c->listeners[0], NULL, sess, NULL));
        SSL_SESSION_free(sess);
        SSL_CTX_free(cctx);
    }
    config_unref(c);
}

/* client_ca: a client certificate from the CA is required and verified. */
static void test_mtls(void **state)
{
    struct config *c =
        load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") "      client_ca: @DIR@/ca.crt\n");
    SSL_CTX *none = client_ctx(true, 0), *good = client_ctx(true, 0), *bad = client_ctx(true, 0);
    SSL_CTX *none12 = client_ctx(true, TLS1_2_VERSION);
    char path[400], path2[400];
    struct hs hs;
    SSL *cl, *s;

    assert_int_equal(run_free(client_ssl(none, NULL), &c->listeners[0], &hs), -1);
    assert_string_equal(hs.serr, "client certificate: none sent, and one is required");
    assert_int_equal(run_free(client_ssl(none12, NULL), &c->listeners[0], &hs), -1);
    assert_string_equal(hs.serr, "client certificate: none sent, and one is required");

    snprintf(path, sizeof(path), "%s/client.crt", tmpdir);
    snprintf(path2, sizeof(path2), "%s/client.key", tmpdir);
    assert_int_equal(SSL_CTX_use_certificate_file(good, path, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(good, path2, SSL_FILETYPE_PEM), 1);
    cl = client_ssl(good, NULL);
    s = tls_server_ssl_new(&c->listeners[0]);
    assert_int_equal(handshake(cl, s, &hs), 0);
    exchange(cl, s);
    assert_non_null(SSL_get0_peer_certificate(s));
    assert_int_equal(SSL_get_verify_result(s), X509_V_OK);
    SSL_free(cl);
    SSL_free(s);

    /* A server certificate is not for client authentication. */
    snprintf(path, sizeof(path), "%s/bank.crt", tmpdir);
    snprintf(path2, sizeof(path2), "%s/bank.key", tmpdir);
    assert_int_equal(SSL_CTX_use_certificate_file(bad, path, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(bad, path2, SSL_FILETYPE_PEM), 1);
    assert_int_equal(run_free(client_ssl(bad, NULL), &c->listeners[0], &hs), -1);
    assert_string_equal(hs.serr, "client certificate: unsuitable certificate purpose");
    SSL_CTX_free(none);
    SSL_CTX_free(none12);
    SSL_CTX_free(good);
    SSL_CTX_free(bad);
    config_unref(c);
}

/* A bridge backend "up" with tls: settings, two servers, and a listener serving crt/key. */
static struct config *bridge(const char *tls, const char *crt_key)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "backends:\n"
             "  - name: up\n"
             "    tls: %s\n"
             "    servers:\n"
             "      - { name: s1, address: 127.0.0.1:9080 }\n"
             "      - { name: s2, address: \"localhost:9081\" }\n"
             "listeners:\n"
             "  - name: br\n"
             "    bind: 127.0.0.1:18444\n"
             "    mode: bridge\n"
             "    http: { default_backend: up }\n"
             "    tls:\n"
             "      certificates:\n"
             "%s",
             tls, crt_key);
    return load_ok(text);
}

/*
 * Handshakes tls_client_ssl_new(b, srv) with a server SSL of l, saving the
 * session as the HTTP engine does. Both SSLs end without tls_ssl_closing():
 * the client cache must not care. Returns 0 or -1.
 */
static int connect_backend(const struct backend *b, const struct server *srv,
                           const struct listener *l, struct hs *hs, bool *reused, char *sni,
                           size_t snilen)
{
    SSL *cl = tls_client_ssl_new(b, srv), *s = tls_server_ssl_new(l);
    int rc;

    assert_non_null(cl);
    assert_non_null(s);
    rc = handshake(cl, s, hs);
    if (rc == 0) {
        tls_client_save_session(b, srv, cl);
        exchange(cl, s);
        *reused = SSL_session_reused(cl);
        if (sni != NULL)
            snprintf(sni, snilen, "%s", tls_sni(s));
    }
    SSL_free(cl);
    SSL_free(s);
    return rc;
}

/* verify: true checks the chain and the name (SNI, or the address); false does not. */
static void test_client_verify(void **state)
{
    struct config *wrong = bridge("{ verify: false }", CERT("wrong.crt", "wrong.key"));
    struct config *web = bridge("{ verify: false }", CERT("web.crt", "web.key"));
    struct config *bysni =
        bridge("{ ca: @DIR@/ca.crt, sni: web.lab.test }", CERT("web.crt", "web.key"));
    struct config *byaddr = bridge("{ ca: @DIR@/ca.crt }", CERT("web.crt", "web.key"));
    struct config *noverify =
        bridge("{ verify: false, sni: web.lab.test }", CERT("web.crt", "web.key"));
    const struct listener *lw = &wrong->listeners[0], *lok = &web->listeners[0];
    struct backend *b;
    char sni[256];
    bool reused;
    struct hs hs;

    b = &bysni->backends[0];
    assert_int_equal(connect_backend(b, &b->servers[0], lok, &hs, &reused, sni, sizeof(sni)), 0);
    assert_string_equal(sni, "web.lab.test");
    assert_int_equal(connect_backend(b, &b->servers[0], lw, &hs, &reused, NULL, 0), -1);
    assert_string_equal(hs.cerr, "server certificate: hostname mismatch");

    b = &byaddr->backends[0];
    /* 127.0.0.1: checked against the certificate's IP, and no SNI sent. */
    assert_int_equal(connect_backend(b, &b->servers[0], lok, &hs, &reused, sni, sizeof(sni)), 0);
    assert_string_equal(sni, "");
    assert_int_equal(connect_backend(b, &b->servers[0], lw, &hs, &reused, NULL, 0), -1);
    assert_string_equal(hs.cerr, "server certificate: IP address mismatch");
    /* localhost: a name, sent as SNI and checked. */
    assert_int_equal(connect_backend(b, &b->servers[1], lok, &hs, &reused, sni, sizeof(sni)), 0);
    assert_string_equal(sni, "localhost");

    b = &noverify->backends[0];
    assert_int_equal(connect_backend(b, &b->servers[0], lw, &hs, &reused, sni, sizeof(sni)), 0);
    assert_string_equal(sni, "web.lab.test");

    config_unref(wrong);
    config_unref(web);
    config_unref(bysni);
    config_unref(byaddr);
    config_unref(noverify);
}

/* The next connection to a server resumes its session; another server's does not. */
static void test_client_session_reuse(void **state)
{
    struct config *c =
        bridge("{ ca: @DIR@/ca.crt, sni: web.lab.test }", CERT("web.crt", "web.key"));
    struct backend *b = &c->backends[0];
    const struct listener *l = &c->listeners[0];
    bool reused = true;
    struct hs hs;

    /* TLS 1.3: the tickets come after the handshake, through the new-session callback. */
    assert_int_equal(connect_backend(b, &b->servers[0], l, &hs, &reused, NULL, 0), 0);
    assert_false(reused);
    assert_int_equal(connect_backend(b, &b->servers[0], l, &hs, &reused, NULL, 0), 0);
    assert_true(reused);
    assert_int_equal(connect_backend(b, &b->servers[1], l, &hs, &reused, NULL, 0), 0);
    assert_false(reused);

    config_unref(c);

    /* TLS 1.2: the session is complete at the end of the handshake. */
    c = bridge("{ ca: @DIR@/ca.crt, sni: web.lab.test }", CERT("web.crt", "web.key"));
    b = &c->backends[0];
    l = &c->listeners[0];
    for (int i = 0; i < 2; i++) {
        SSL *cl = tls_client_ssl_new(b, &b->servers[0]), *s = tls_server_ssl_new(l);
        assert_int_equal(SSL_set_max_proto_version(cl, TLS1_2_VERSION), 1);
        assert_int_equal(handshake(cl, s, &hs), 0);
        assert_string_equal(tls_version_name(cl), "TLSv1.2");
        assert_int_equal(SSL_session_reused(cl), i == 1);
        tls_client_save_session(b, &b->servers[0], cl);
        SSL_free(cl);
        SSL_free(s);
    }
    config_unref(c);
}

/* ---- through libevent, as the HTTP engine runs it ---- */

struct bev_result {
    struct event_base *base;
    char why[256]; /* "connected" or tls_bev_handshake_error() */
};

static void server_event(struct bufferevent *bev, short what, void *arg)
{
    struct bev_result *r = arg;

    if (what & BEV_EVENT_CONNECTED)
        snprintf(r->why, sizeof(r->why), "connected");
    else
        tls_bev_handshake_error(bev, r->why, sizeof(r->why));
    event_base_loopbreak(r->base);
}

/* libevent takes the error queue: tls_bev_handshake_error still says why. */
static void test_bev_handshake_error(void **state)
{
    struct config *c =
        load_ok(OFFLOAD_HEAD CERT("web.crt", "web.key") "      client_ca: @DIR@/ca.crt\n");
    struct bev_result r = {.base = event_base_new()};
    struct timeval limit = {5, 0};
    SSL_CTX *cctx = client_ctx(true, 0);
    struct bufferevent *sb, *cb;
    int fds[2];

    assert_non_null(r.base);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(evutil_make_socket_nonblocking(fds[0]), 0);
    assert_int_equal(evutil_make_socket_nonblocking(fds[1]), 0);
    sb = bufferevent_openssl_socket_new(r.base, fds[0], tls_server_ssl_new(&c->listeners[0]),
                                        BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    cb = bufferevent_openssl_socket_new(r.base, fds[1], client_ssl(cctx, NULL),
                                        BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(sb);
    assert_non_null(cb);
    bufferevent_setcb(sb, NULL, NULL, server_event, &r);
    bufferevent_enable(sb, EV_READ);
    bufferevent_enable(cb, EV_READ);
    event_base_loopexit(r.base, &limit);
    event_base_dispatch(r.base);
    assert_string_equal(r.why, "client certificate: none sent, and one is required");
    bufferevent_free(sb);
    bufferevent_free(cb);
    event_base_free(r.base);
    SSL_CTX_free(cctx);
    config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_offload),
        cmocka_unit_test(test_missing_key),
        cmocka_unit_test(test_mismatched_key),
        cmocka_unit_test(test_unusable_files),
        cmocka_unit_test(test_bad_ciphers),
        cmocka_unit_test(test_ticket_key_file_size),
        cmocka_unit_test(test_every_problem_reported),
        cmocka_unit_test(test_backend_ca),
        cmocka_unit_test(test_sni_picks_certificate),
        cmocka_unit_test(test_min_version),
        cmocka_unit_test(test_tls12_ciphers),
        cmocka_unit_test(test_rsa_and_ecdsa),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_ticket_resumption),
        cmocka_unit_test(test_no_tickets),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_client_verify),
        cmocka_unit_test(test_client_session_reuse),
        cmocka_unit_test(test_bev_handshake_error),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
