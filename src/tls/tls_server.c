/*
 * The server side of TLS: a listener's SSL_CTXs, one per certificate (the
 * first is the default), the choice among them by the client's SNI, ALPN,
 * tickets and client certificates; plus the build entry points of
 * tls_ctx.h and the small helpers that describe a finished or failed
 * handshake.
 *
 * Every SSL_CTX of a listener has the same settings, session id context and
 * ticket keys, so a session made under one certificate resumes under any.
 * Certificates with the same names but another key type (an RSA twin of an
 * ECDSA certificate) share one SSL_CTX, where OpenSSL picks the one the
 * client can verify.
 *
 * Resumption: session_tickets true gives stateless tickets (keys from
 * ticket_key_file, else random per snapshot) plus a per-listener session
 * cache for clients without ticket support; false turns tickets off but keeps
 * the cache, so clients still resume against this process (session ids in
 * TLS 1.2, stateful tickets in TLS 1.3). Both are lost on reload unless
 * ticket_key_file is set.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tls_ctx.h"
#include "config/conf.h"
#include "config/yaml_lines.h"
#include "tls/tls_int.h"

/* TLS 1.2 ciphers when ciphers is "": forward secrecy and AEAD only. */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* Sessions kept per listener for clients that resume by session id. */
#define TLS_SESSION_CACHE_SIZE 10000
#define TLS_MAX_KEY_TYPES      4
#define KEYPATH_LEN            256

/* One SSL_CTX and the names its certificates answer to. */
struct tls_cert_ctx {
    SSL_CTX *ctx;
    char **names; /* lower-case SAN DNS names, else the CN; "*.x.test" kept as is */
    size_t nnames;
    int key_types[TLS_MAX_KEY_TYPES]; /* EVP_PKEY_EC, EVP_PKEY_RSA... loaded in ctx */
    size_t ntypes;
};

struct tls_server {
    struct tls_cert_ctx *certs; /* [0] is the default */
    size_t ncerts;
    unsigned char *alpn; /* wire format, server preference order; NULL = no ALPN */
    size_t alpn_len;
    struct tls_ticket_keys *tickets;           /* NULL when session_tickets is false */
    X509_STORE *client_ca;                     /* client certificate roots; NULL = no mTLS */
    unsigned char sid[SSL_MAX_SID_CTX_LENGTH]; /* session id context: sid_context() */
};

/* See tls_int.h. */
void tls_report(struct tls_report *r, const char *keypath, const char *fmt, ...)
{
    unsigned line, col;
    char *msg;
    va_list ap;
    int n;

    r->nerr++;
    yaml_lines_locate(r->yl, keypath, &line, &col);
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    config_errors_at(r->errs, r->file, line, col, keypath, "%s", msg);
    free(msg);
}

/* Text of one OpenSSL error code: its reason, or strerror for system errors. */
static char *error_text(unsigned long e, char *buf, size_t len)
{
    const char *reason;
    char tmp[128];

    if (ERR_SYSTEM_ERROR(e)) {
        snprintf(buf, len, "%s", strerror_r((int)ERR_GET_REASON(e), tmp, sizeof(tmp)));
    } else if ((reason = ERR_reason_error_string(e)) != NULL) {
        snprintf(buf, len, "%s", reason);
    } else {
        ERR_error_string_n(e, buf, len);
    }
    return buf;
}

/* See tls_int.h. */
char *tls_ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();

    if (e == 0)
        snprintf(buf, len, "unknown error");
    else
        error_text(e, buf, len);
    ERR_clear_error();
    return buf;
}

/* See tls_int.h. */
const char *tls_pem_file_problem(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return strerror(errno);
    if (!S_ISREG(st.st_mode))
        return "not a regular file";
    if (st.st_size > TLS_PEM_MAX)
        return "larger than 1 MiB";
    return NULL;
}

/* Copy of a DNS name: lower-case, without a trailing dot. NULL if it holds a NUL or is empty. */
static char *name_dup(const unsigned char *s, size_t len)
{
    char *d;

    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || memchr(s, '\0', len) != NULL || (d = malloc(len + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        d[i] = (char)tolower(s[i]);
    d[len] = '\0';
    return d;
}

/* Appends a copy of s (len bytes) to *names. Returns 0 or -1. */
static int names_add(char ***names, size_t *n, const unsigned char *s, size_t len)
{
    char **grown, *d = name_dup(s, len);

    if (d == NULL)
        return 0; /* unusable name: never matches */
    if ((grown = realloc(*names, (*n + 1) * sizeof(*grown))) == NULL) {
        free(d);
        return -1;
    }
    grown[(*n)++] = d;
    *names = grown;
    return 0;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/*
 * The names x answers to, as clients check them: the SAN DNS names, or the
 * subject CN when there are none. Returns 0 or -1 (out of memory).
 */
static int cert_names(X509 *x, char ***names, size_t *n)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    X509_NAME *subj = X509_get_subject_name(x);
    unsigned char *cn = NULL;
    int rc = 0, i, len;

    *names = NULL;
    *n = 0;
    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS)
            rc = names_add(names, n, ASN1_STRING_get0_data(g->d.dNSName),
                           (size_t)ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(gens);
    if (rc == 0 && *n == 0 && subj != NULL &&
        (i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) >= 0 &&
        (len = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)))) >
            0)
        rc = names_add(names, n, cn, (size_t)len);
    OPENSSL_free(cn);
    return rc;
}

/* True when the two name lists hold the same names. */
static bool names_equal(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb || na == 0)
        return false;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        while (j < nb && strcmp(a[i], b[j]) != 0)
            j++;
        if (j == nb)
            return false;
    }
    return true;
}

/* True when pattern (a certificate name, maybe "*.x.test") matches host (lower-case). */
static bool name_match(const char *pattern, const char *host, bool wildcard)
{
    const char *dot;

    if (!wildcard)
        return strcmp(pattern, host) == 0;
    if (strncmp(pattern, "*.", 2) != 0 || (dot = strchr(host, '.')) == NULL || dot == host)
        return false;
    return strcmp(dot, pattern + 1) == 0;
}

/*
 * The SSL_CTX for SNI name: the first certificate naming it exactly, else
 * the first whose wildcard covers it (one label), else the default.
 */
static SSL_CTX *pick_ctx(const struct tls_server *ts, const char *name)
{
    char host[256];
    size_t len = strlen(name);

    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(host))
        return ts->certs[0].ctx;
    for (size_t i = 0; i < len; i++)
        host[i] = (char)tolower((unsigned char)name[i]);
    host[len] = '\0';
    for (int wildcard = 0; wildcard < 2; wildcard++)
        for (size_t i = 0; i < ts->ncerts; i++)
            for (size_t j = 0; j < ts->certs[i].nnames; j++)
                if (name_match(ts->certs[i].names[j], host, wildcard))
                    return ts->certs[i].ctx;
    return ts->certs[0].ctx;
}

/* Servername callback: moves the connection to the SSL_CTX of the certificate the SNI names. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server *ts = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *ctx;

    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    ctx = pick_ctx(ts, name);
    if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/*
 * ALPN callback: the first of our protocols the client offers. None in
 * common: go on without ALPN (as nginx does) rather than fail the handshake;
 * the HTTP engine speaks HTTP/1.1 either way.
 */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct tls_server *ts = arg;

    for (size_t i = 0; i < ts->alpn_len; i += 1u + ts->alpn[i]) {
        const unsigned char *ours = &ts->alpn[i];
        for (unsigned j = 0; j < inlen && j + 1u + in[j] <= inlen; j += 1u + in[j]) {
            if (in[j] == ours[0] && memcmp(&in[j + 1], ours + 1, ours[0]) == 0) {
                *out = ours + 1;
                *outlen = ours[0];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/*
 * The session id context of a listener: the same in every instance of a
 * fleet (tickets resume across them) and different when the client CAs
 * differ, so a session made without client verification is never resumed
 * where it is required.
 */
static int sid_context(const struct listener *l, STACK_OF(X509_NAME) * ca,
                       unsigned char sid[SSL_MAX_SID_CTX_LENGTH])
{
    static const char tag[] = "tlsgate listener";
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    int ok;

    ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, tag, sizeof(tag)) == 1 &&
         EVP_DigestUpdate(md, l->name, strlen(l->name) + 1) == 1;
    for (int i = 0; ok && ca != NULL && i < sk_X509_NAME_num(ca); i++) {
        const unsigned char *der;
        size_t derlen;
        ok = X509_NAME_get0_der(sk_X509_NAME_value(ca, i), &der, &derlen) == 1 &&
             EVP_DigestUpdate(md, der, derlen) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(md, digest, &len) == 1 && len >= SSL_MAX_SID_CTX_LENGTH;
    EVP_MD_CTX_free(md);
    if (ok)
        memcpy(sid, digest, SSL_MAX_SID_CTX_LENGTH);
    return ok ? 0 : -1;
}

/* What one listener's build needs besides the listener. */
struct server_build {
    struct tls_report *r;
    char base[KEYPATH_LEN];         /* "listeners[i].tls" */
    STACK_OF(X509_NAME) * ca_names; /* client CA subjects, sent in CertificateRequest */
    bool ctx_failed; /* the settings themselves were refused: no certificate can load */
};

/* Reports at base.key. */
static void __attribute__((format(printf, 3, 4)))
berr(struct server_build *sb, const char *key, const char *fmt, ...)
{
    char path[KEYPATH_LEN], *msg;
    va_list ap;
    int n;

    snprintf(path, sizeof(path), "%s%s%s", sb->base, key[0] != '\0' ? "." : "", key);
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->r->nerr++;
        return;
    }
    tls_report(sb->r, path, "%s", msg);
    free(msg);
}

/* A new SSL_CTX with the listener's settings and no certificate. NULL after reporting. */
static SSL_CTX *ctx_new(struct tls_server *ts, const struct listener *l, struct server_build *sb)
{
    const struct listener_tls_conf *t = &l->tls;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char why[256];

    if (ctx == NULL) {
        berr(sb, "", "cannot create a TLS context: %s", tls_ssl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_COMPRESSION |
                                 (t->session_tickets ? 0 : SSL_OP_NO_TICKET));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_min_proto_version(
            ctx, strcmp(t->min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1) {
        berr(sb, "min_version", "'%s': %s", t->min_version, tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_set_cipher_list(ctx, *t->ciphers ? t->ciphers : TLS_DEFAULT_CIPHERS) != 1) {
        berr(sb, "ciphers", "no usable cipher in '%s': %s", t->ciphers,
             tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (*t->ciphersuites && SSL_CTX_set_ciphersuites(ctx, t->ciphersuites) != 1) {
        berr(sb, "ciphersuites", "no usable TLS 1.3 cipher suite in '%s': %s", t->ciphersuites,
             tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 ||
        SSL_CTX_set_session_id_context(ctx, ts->sid, sizeof(ts->sid)) != 1 ||
        (ts->tickets != NULL && tls_tickets_install(ctx, ts->tickets) < 0)) {
        berr(sb, "", "cannot set up the TLS context: %s", tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    tls_resume_sni_install(ctx, ts->sid);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    /* One ticket per handshake (OpenSSL sends two): a resumption brings its own new one. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, ts);
    if (ts->alpn != NULL)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, ts);
    if (ts->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_dup_CA_list(sb->ca_names);
        if (names == NULL) {
            berr(sb, "client_ca", "out of memory");
            goto fail;
        }
        SSL_CTX_set1_cert_store(ctx, ts->client_ca);
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    sb->ctx_failed = true;
    SSL_CTX_free(ctx);
    return NULL;
}

/* Passphrase callback: keys must be unencrypted; never prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* The first certificate of a PEM file, or NULL (error queue set). */
static X509 *read_leaf(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, no_passphrase, NULL) : NULL;

    BIO_free(bio);
    return x;
}

/* The private key of a PEM file, or NULL (error queue set). Its bytes go nowhere else. */
static EVP_PKEY *read_key(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;

    BIO_free(bio);
    return pk;
}

/* The SSL_CTX certificate j goes into: a twin's of another key type, else a new one. */
static struct tls_cert_ctx *cert_slot(struct tls_server *ts, const struct listener *l,
                                      struct server_build *sb, char **names, size_t nnames,
                                      int type)
{
    struct tls_cert_ctx *cc, *grown;

    for (size_t i = 0; i < ts->ncerts; i++) {
        cc = &ts->certs[i];
        bool has_type = false;
        for (size_t k = 0; k < cc->ntypes; k++)
            has_type |= cc->key_types[k] == type;
        if (!has_type && cc->ntypes < TLS_MAX_KEY_TYPES &&
            names_equal(cc->names, cc->nnames, names, nnames)) {
            names_free(names, nnames);
            return cc;
        }
    }
    if ((grown = realloc(ts->certs, (ts->ncerts + 1) * sizeof(*grown))) == NULL) {
        berr(sb, "certificates", "out of memory");
        names_free(names, nnames);
        return NULL;
    }
    ts->certs = grown;
    cc = &ts->certs[ts->ncerts];
    memset(cc, 0, sizeof(*cc));
    cc->names = names;
    cc->nnames = nnames;
    if ((cc->ctx = ctx_new(ts, l, sb)) == NULL) {
        names_free(names, nnames);
        return NULL;
    }
    ts->ncerts++;
    return cc;
}

/* Loads certificates[j] (chain and key) into its SSL_CTX. Returns 0 or -1 after reporting. */
static int load_cert(struct tls_server *ts, const struct listener *l, struct server_build *sb,
                     size_t j)
{
    const struct cert_conf *cf = &l->tls.certificates[j];
    const char *problem;
    char ckey[64], kkey[64], why[256], **names;
    struct tls_cert_ctx *cc;
    EVP_PKEY *pk = NULL;
    X509 *leaf;
    size_t nnames;
    int type, rc = -1;

    snprintf(ckey, sizeof(ckey), "certificates[%zu].cert", j);
    snprintf(kkey, sizeof(kkey), "certificates[%zu].key", j);
    if ((problem = tls_pem_file_problem(cf->cert)) != NULL) {
        berr(sb, ckey, "cannot load certificate '%s': %s", cf->cert, problem);
        return -1;
    }
    if ((problem = tls_pem_file_problem(cf->key)) != NULL) {
        berr(sb, kkey, "cannot load private key '%s': %s", cf->key, problem);
        return -1;
    }
    if ((leaf = read_leaf(cf->cert)) == NULL) {
        berr(sb, ckey, "cannot load certificate '%s': %s", cf->cert,
             tls_ssl_reason(why, sizeof(why)));
        return -1;
    }
    type = EVP_PKEY_get_base_id(X509_get0_pubkey(leaf));
    if (cert_names(leaf, &names, &nnames) < 0) {
        berr(sb, ckey, "out of memory");
        goto done;
    }
    if ((cc = cert_slot(ts, l, sb, names, nnames, type)) == NULL)
        goto done;
    if (SSL_CTX_use_certificate_chain_file(cc->ctx, cf->cert) != 1) {
        berr(sb, ckey, "cannot load certificate chain '%s': %s", cf->cert,
             tls_ssl_reason(why, sizeof(why)));
        goto done;
    }
    if ((pk = read_key(cf->key)) == NULL) {
        berr(sb, kkey, "cannot load private key '%s': %s (an unencrypted PEM key is needed)",
             cf->key, tls_ssl_reason(why, sizeof(why)));
        goto done;
    }
    if (X509_check_private_key(SSL_CTX_get0_certificate(cc->ctx), pk) != 1) {
        ERR_clear_error();
        berr(sb, kkey, "'%s' does not match the certificate '%s'", cf->key, cf->cert);
        goto done;
    }
    if (SSL_CTX_use_PrivateKey(cc->ctx, pk) != 1 || SSL_CTX_check_private_key(cc->ctx) != 1) {
        berr(sb, kkey, "cannot use private key '%s': %s", cf->key,
             tls_ssl_reason(why, sizeof(why)));
        goto done;
    }
    cc->key_types[cc->ntypes++] = type;
    rc = 0;
done:
    EVP_PKEY_free(pk);
    X509_free(leaf);
    return rc;
}

/* ts->alpn from the listener's list. Returns 0, or -1 after reporting. */
static int build_alpn(struct tls_server *ts, const struct listener *l, struct server_build *sb)
{
    size_t len = 0;
    char key[32];

    for (size_t j = 0; j < l->tls.nalpn; j++) {
        size_t n = strlen(l->tls.alpn[j]);
        if (n == 0 || n > 255) {
            snprintf(key, sizeof(key), "alpn[%zu]", j);
            berr(sb, key, "a protocol name is 1 to 255 bytes");
            return -1;
        }
        len += 1 + n;
    }
    if (len == 0)
        return 0;
    if ((ts->alpn = malloc(len)) == NULL) {
        berr(sb, "alpn", "out of memory");
        return -1;
    }
    for (size_t j = 0; j < l->tls.nalpn; j++) {
        size_t n = strlen(l->tls.alpn[j]);
        ts->alpn[ts->alpn_len] = (unsigned char)n;
        memcpy(&ts->alpn[ts->alpn_len + 1], l->tls.alpn[j], n);
        ts->alpn_len += 1 + n;
    }
    return 0;
}

/* ts->tickets. Returns 0 or -1 after reporting. */
static int build_tickets(struct tls_server *ts, const struct listener *l, struct server_build *sb)
{
    char why[512];

    if (!l->tls.session_tickets)
        return 0;
    if (*l->tls.ticket_key_file == '\0') {
        if ((ts->tickets = tls_tickets_random()) == NULL)
            berr(sb, "session_tickets", "cannot make a ticket key: %s",
                 tls_ssl_reason(why, sizeof(why)));
    } else if ((ts->tickets = tls_tickets_load(l->tls.ticket_key_file, why, sizeof(why))) == NULL) {
        berr(sb, "ticket_key_file", "%s", why);
    }
    return ts->tickets != NULL ? 0 : -1;
}

/* ts->client_ca and sb->ca_names. Returns 0 or -1 after reporting. */
static int build_client_ca(struct tls_server *ts, const struct listener *l, struct server_build *sb)
{
    const char *path = l->tls.client_ca, *problem;
    char why[256];

    if (*path == '\0')
        return 0;
    if ((problem = tls_pem_file_problem(path)) != NULL) {
        berr(sb, "client_ca", "cannot load CA certificates '%s': %s", path, problem);
        return -1;
    }
    if ((ts->client_ca = X509_STORE_new()) == NULL ||
        X509_STORE_load_file(ts->client_ca, path) != 1) {
        berr(sb, "client_ca", "cannot load CA certificates '%s': %s", path,
             tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    if ((sb->ca_names = SSL_load_client_CA_file(path)) == NULL) {
        berr(sb, "client_ca", "no CA certificate in '%s': %s", path,
             tls_ssl_reason(why, sizeof(why)));
        goto fail;
    }
    return 0;
fail:
    X509_STORE_free(ts->client_ca);
    ts->client_ca = NULL; /* the certificates are still checked, without mTLS */
    return -1;
}

/* See tls_int.h. */
void tls_server_build(struct listener *l, struct tls_report *r)
{
    struct server_build sb = {.r = r};
    struct tls_server *ts = calloc(1, sizeof(*ts));
    unsigned before = r->nerr;

    snprintf(sb.base, sizeof(sb.base), "listeners[%u].tls", l->index);
    if (ts == NULL) {
        berr(&sb, "", "out of memory");
        return;
    }
    /* Each part reports its own problems; the certificates are still tried after one. */
    build_alpn(ts, l, &sb);
    build_tickets(ts, l, &sb);
    build_client_ca(ts, l, &sb);
    if (sid_context(l, sb.ca_names, ts->sid) < 0) {
        berr(&sb, "", "cannot compute the session id context");
        goto fail;
    }
    for (size_t j = 0; j < l->tls.ncertificates && !sb.ctx_failed; j++)
        load_cert(ts, l, &sb, j);
    if (ts->ncerts == 0 && r->nerr == before)
        berr(&sb, "certificates", "at least one { cert, key } is needed to terminate TLS");
    if (r->nerr != before)
        goto fail;
    sk_X509_NAME_pop_free(sb.ca_names, X509_NAME_free);
    l->tls_server = ts;
    return;
fail:
    sk_X509_NAME_pop_free(sb.ca_names, X509_NAME_free);
    tls_server_free(ts);
}

/* See tls_int.h. */
void tls_server_free(struct tls_server *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->ncerts; i++) {
        SSL_CTX_free(ts->certs[i].ctx);
        names_free(ts->certs[i].names, ts->certs[i].nnames);
    }
    free(ts->certs);
    free(ts->alpn);
    X509_STORE_free(ts->client_ca);
    tls_tickets_free(ts->tickets);
    free(ts);
}

/* See tls_ctx.h. */
unsigned tls_config_build(struct config *c, const struct yaml_lines *yl, struct config_errors *errs)
{
    struct tls_report r = {.file = c->path, .yl = yl, .errs = errs, .nerr = 0};

    for (size_t i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].has_tls)
            tls_server_build(&c->listeners[i], &r);
    for (size_t i = 0; i < c->nbackends; i++)
        if (c->backends[i].tls.enabled)
            tls_client_build(&c->backends[i], i, &r);
    ERR_clear_error(); /* expected misses while reading PEM files must not show up later */
    return r.nerr;
}

/* See tls_ctx.h. */
void tls_config_free(struct config *c)
{
    for (size_t i = 0; i < c->nlisteners; i++) {
        tls_server_free(c->listeners[i].tls_server);
        c->listeners[i].tls_server = NULL;
    }
    for (size_t i = 0; i < c->nbackends; i++) {
        tls_client_free(c->backends[i].tls_client);
        c->backends[i].tls_client = NULL;
    }
}

/* See tls_ctx.h. */
SSL *tls_server_ssl_new(const struct listener *l)
{
    SSL *ssl;

    if (l->tls_server == NULL || (ssl = SSL_new(l->tls_server->certs[0].ctx)) == NULL)
        return NULL;
    SSL_set_accept_state(ssl);
    return ssl;
}

/* See tls_ctx.h. */
void tls_ssl_closing(SSL *ssl)
{
    if (ssl != NULL)
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

/* See tls_ctx.h. */
void tls_send_close_notify(SSL *ssl)
{
    if (ssl == NULL || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) || !SSL_is_init_finished(ssl))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(ssl); /* one alert record; a full socket only loses the courtesy */
    ERR_clear_error();
}

/* See tls_ctx.h. */
const char *tls_version_name(const SSL *ssl)
{
    return ssl != NULL ? SSL_get_version(ssl) : "";
}

/* See tls_ctx.h. */
const char *tls_cipher_name(const SSL *ssl)
{
    const SSL_CIPHER *c = ssl != NULL ? SSL_get_current_cipher(ssl) : NULL;

    return c != NULL ? SSL_CIPHER_get_name(c) : "";
}

/* See tls_ctx.h. */
const char *tls_sni(const SSL *ssl)
{
    const char *name = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;

    return name != NULL ? name : "";
}

uint64_t tls_bytes_read(const SSL *ssl)
{
    BIO *rbio = ssl != NULL ? SSL_get_rbio(ssl) : NULL;

    return rbio != NULL ? BIO_number_read(rbio) : 0;
}

uint64_t tls_bytes_written(const SSL *ssl)
{
    BIO *wbio = ssl != NULL ? SSL_get_wbio(ssl) : NULL;

    return wbio != NULL ? BIO_number_written(wbio) : 0;
}

/*
 * The line for a failed handshake on ssl whose oldest error is e (0 = none):
 * a failed certificate verification says which, else the error's reason.
 */
static char *describe_failure(SSL *ssl, unsigned long e, char *buf, size_t len)
{
    const char *peer = ssl != NULL && SSL_is_server(ssl) ? "client" : "server";
    long vr;

    buf[0] = '\0';
    if (ssl != NULL && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
        (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
        snprintf(buf, len, "%s certificate: %s", peer, X509_verify_cert_error_string(vr));
    else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
             ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        snprintf(buf, len, "client certificate: none sent, and one is required");
    else if (e != 0)
        error_text(e, buf, len);
    return buf;
}

/* See tls_ctx.h. */
char *tls_handshake_error(SSL *ssl, char *buf, size_t len)
{
    describe_failure(ssl, ERR_peek_error(), buf, len);
    ERR_clear_error();
    return buf;
}

/* See tls_ctx.h. */
char *tls_bev_handshake_error(struct bufferevent *bev, char *buf, size_t len)
{
    unsigned long e, oldest = 0;

    /* libevent keeps them newest last; its own SSL_get_error() codes have no library. */
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (ERR_GET_LIB(e) != 0)
            oldest = e;
    if (oldest == 0)
        oldest = ERR_peek_error();
    describe_failure(bufferevent_openssl_get_ssl(bev), oldest, buf, len);
    ERR_clear_error();
    return buf;
}
