/*
 * The client side of TLS, toward the servers of a backend with tls: one
 * SSL_CTX per backend (its CA and verification), the name each server is
 * reached and verified by, and per server the last session it gave us, so
 * the next connection resumes instead of doing a full handshake.
 *
 * Sessions arrive two ways: tls_client_save_session() after a handshake
 * (TLS 1.2 sessions are complete then), and the new-session callback, which
 * is how TLS 1.3 tickets arrive, after the handshake, while the connection
 * reads. The callback finds the server in the SSL's ex_data, set by
 * tls_client_ssl_new(). Workers share the cache under the backend's mutex.
 *
 * The cache holds private copies and each connection gets its own copy:
 * OpenSSL marks the session of a connection freed without close_notify as
 * not resumable, and backend connections often end that way (idle pool
 * connections closed by either side); a shared object would be spoiled for
 * every later connection to the server.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_ctx.h"
#include "tls/tls_int.h"

/* What a server is reached by. */
struct tls_peer {
    char *name; /* SNI and verified name: backend tls.sni, else the host of the address */
    bool ip;    /* name is an IP literal: verified as an address and never sent as SNI */
};

struct tls_client {
    SSL_CTX *ctx;
    struct tls_peer *peers; /* by server index */
    size_t npeers;
    pthread_mutex_t lock;   /* guards sessions */
    SSL_SESSION **sessions; /* by server index: the session to offer next; owned */
};

/* SSL ex_data slot: the struct server a client SSL connects to (not owned). */
static int server_idx = -1;
static pthread_once_t server_once = PTHREAD_ONCE_INIT;

static void server_idx_init(void)
{
    server_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Keeps a copy of sess as server i's next session. */
static void cache_store(struct tls_client *tc, unsigned i, const SSL_SESSION *sess)
{
    SSL_SESSION *copy = SSL_SESSION_dup(sess), *old;

    if (copy == NULL)
        return;
    pthread_mutex_lock(&tc->lock);
    old = tc->sessions[i];
    tc->sessions[i] = copy;
    pthread_mutex_unlock(&tc->lock);
    SSL_SESSION_free(old);
}

/* New-session callback: a TLS 1.3 ticket (or a TLS 1.2 session) to resume with. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    const struct server *srv = SSL_get_ex_data(ssl, server_idx);
    struct tls_client *tc;

    if (srv == NULL || (tc = srv->backend->tls_client) == NULL || srv->index >= tc->npeers ||
        !SSL_SESSION_is_resumable(sess))
        return 0;
    cache_store(tc, srv->index, sess);
    return 0; /* OpenSSL keeps its reference: the cache has a copy */
}

/* The host of "host:port" or "[v6]:port", lower-case, without a trailing dot. */
static char *addr_host(const char *text)
{
    const char *start = text, *end = strrchr(text, ':');
    char *host;
    size_t len;

    if (text[0] == '[' && (end = strchr(text, ']')) != NULL)
        start = text + 1;
    else if (end == NULL || strchr(text, ':') != end)
        end = text + strlen(text); /* no port, or a bare IPv6 address */
    len = (size_t)(end - start);
    if (len > 0 && start[len - 1] == '.')
        len--;
    if ((host = strndup(start, len)) == NULL)
        return NULL;
    for (char *p = host; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    return host;
}

/* True when name is an IPv4 or IPv6 literal. */
static bool is_ip(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* See tls_int.h. */
void tls_client_build(struct backend *b, size_t i, struct tls_report *r)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    struct tls_client *tc = calloc(1, sizeof(*tc));
    const char *problem;
    char base[64], key[80], why[256];

    snprintf(base, sizeof(base), "backends[%zu].tls", i);
    pthread_once(&server_once, server_idx_init);
    if (tc == NULL || server_idx < 0) {
        free(tc);
        tls_report(r, base, "out of memory");
        return;
    }
    pthread_mutex_init(&tc->lock, NULL);
    if ((tc->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        SSL_CTX_set_min_proto_version(tc->ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_alpn_protos(tc->ctx, alpn, sizeof(alpn) - 1) != 0) {
        tls_report(r, base, "cannot create a TLS context: %s", tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_options(tc->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (b->tls.ca != NULL && (problem = tls_pem_file_problem(b->tls.ca)) != NULL) {
        snprintf(key, sizeof(key), "%s.ca", base);
        tls_report(r, key, "cannot load CA certificates '%s': %s", b->tls.ca, problem);
        goto fail;
    }
    if (b->tls.ca != NULL && SSL_CTX_load_verify_locations(tc->ctx, b->tls.ca, NULL) != 1) {
        snprintf(key, sizeof(key), "%s.ca", base);
        tls_report(r, key, "cannot load CA certificates '%s': %s", b->tls.ca,
                   tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (b->tls.ca == NULL && b->tls.verify && SSL_CTX_set_default_verify_paths(tc->ctx) != 1) {
        tls_report(r, base, "cannot load the system CA certificates: %s",
                   tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_verify(tc->ctx, b->tls.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tc->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tc->ctx, new_session_cb);
    tc->peers = calloc(b->nservers, sizeof(*tc->peers));
    tc->sessions = calloc(b->nservers, sizeof(*tc->sessions));
    if (b->nservers > 0 && (tc->peers == NULL || tc->sessions == NULL))
        goto oom;
    tc->npeers = b->nservers;
    for (size_t j = 0; j < b->nservers; j++) {
        struct tls_peer *p = &tc->peers[j];
        p->name = b->tls.sni != NULL ? strdup(b->tls.sni) : addr_host(b->servers[j].addr.text);
        if (p->name == NULL)
            goto oom;
        p->ip = is_ip(p->name);
    }
    b->tls_client = tc;
    return;
oom:
    tls_report(r, base, "out of memory");
fail:
    tls_client_free(tc);
}

/* See tls_int.h. */
void tls_client_free(struct tls_client *tc)
{
    if (tc == NULL)
        return;
    for (size_t j = 0; j < tc->npeers; j++) {
        free(tc->peers[j].name);
        SSL_SESSION_free(tc->sessions[j]);
    }
    free(tc->peers);
    free(tc->sessions);
    SSL_CTX_free(tc->ctx);
    pthread_mutex_destroy(&tc->lock);
    free(tc);
}

/* See tls_ctx.h. */
SSL *tls_client_ssl_new(const struct backend *b, const struct server *srv)
{
    struct tls_client *tc = b->tls_client;
    SSL_SESSION *cached, *copy;
    const struct tls_peer *p;
    SSL *ssl;

    if (tc == NULL || srv->index >= tc->npeers || (ssl = SSL_new(tc->ctx)) == NULL)
        return NULL;
    p = &tc->peers[srv->index];
    if (SSL_set_ex_data(ssl, server_idx, (void *)srv) != 1)
        goto fail;
    if (!p->ip && SSL_set_tlsext_host_name(ssl, p->name) != 1)
        goto fail;
    if (b->tls.verify) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (p->ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->name) != 1
                  : SSL_set1_host(ssl, p->name) != 1)
            goto fail;
    }
    pthread_mutex_lock(&tc->lock);
    if ((cached = tc->sessions[srv->index]) != NULL)
        SSL_SESSION_up_ref(cached);
    pthread_mutex_unlock(&tc->lock);
    if (cached != NULL && (copy = SSL_SESSION_dup(cached)) != NULL) {
        SSL_set_session(ssl, copy);
        SSL_SESSION_free(copy);
    }
    SSL_SESSION_free(cached);
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

/* See tls_ctx.h. */
void tls_client_save_session(const struct backend *b, const struct server *srv, SSL *ssl)
{
    struct tls_client *tc = b->tls_client;
    SSL_SESSION *sess;

    if (tc == NULL || ssl == NULL || srv->index >= tc->npeers || !SSL_is_init_finished(ssl))
        return;
    if ((sess = SSL_get1_session(ssl)) == NULL)
        return;
    if (SSL_SESSION_is_resumable(sess)) /* TLS 1.3: not yet; tickets come by new_session_cb */
        cache_store(tc, srv->index, sess);
    SSL_SESSION_free(sess);
}
