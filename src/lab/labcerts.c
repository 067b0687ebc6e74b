/*
 * The lab PKI in C, for "tlsgate demo": the same CA and server certificates
 * as certs/mkcerts.sh (ECDSA P-256, SHA-256, subjectAltName, serverAuth),
 * without needing the openssl command line tool.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "labcerts.h"

#define LEAF_DAYS 825
#define CA_DAYS   3650

const struct labcert_spec labcerts_default[] = {
    {"web", "DNS:web.lab.test,DNS:*.lab.test,DNS:localhost,IP:127.0.0.1"},
    {"web2", "DNS:web.lab.test,DNS:*.lab.test,DNS:localhost,IP:127.0.0.1"},
    {"bank", "DNS:bank.lab.test,DNS:localhost,IP:127.0.0.1"},
    {"shop", "DNS:shop.lab.test,DNS:www.lab.test,DNS:localhost,IP:127.0.0.1"},
    {"api", "DNS:api.lab.test,DNS:localhost,IP:127.0.0.1"},
    {"gateway", "DNS:*.lab.test,DNS:lab.test,DNS:localhost,IP:127.0.0.1"},
};
const size_t nlabcerts_default = sizeof(labcerts_default) / sizeof(labcerts_default[0]);

/* Formats a message into err, adding OpenSSL's first queued error; returns -1. */
static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t len, const char *fmt, ...)
{
    unsigned long e = ERR_get_error();
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    n = strlen(err);
    if (e != 0 && n < len)
        snprintf(err + n, len - n, ": %s", ERR_reason_error_string(e));
    ERR_clear_error();
    return -1;
}

/* Adds extension nid with OpenSSL config syntax value (issuer/subject from ctx). */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return -1;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

/* Writes x (and key unless NULL) as PEM: DIR/stem.crt 0644, DIR/stem.key 0600. */
static int write_pair(const char *dir, const char *stem, X509 *x, EVP_PKEY *key, char *err,
                      size_t len)
{
    char path[4096];
    FILE *f;
    int fd, ok;

    snprintf(path, sizeof(path), "%s/%s.key", dir, stem);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        return fail(err, len, "%s: %s", path, strerror(errno));
    }
    ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    if (fclose(f) != 0 || ok != 1)
        return fail(err, len, "%s: cannot write the key", path);
    snprintf(path, sizeof(path), "%s/%s.crt", dir, stem);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        return fail(err, len, "%s: %s", path, strerror(errno));
    }
    ok = PEM_write_X509(f, x);
    if (fclose(f) != 0 || ok != 1)
        return fail(err, len, "%s: cannot write the certificate", path);
    return 0;
}

/*
 * A new certificate for key with subject "CN=cn", signed by ca_key (issuer
 * ca, or itself when ca is NULL). Returns it or NULL.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *sans, X509 *ca, EVP_PKEY *ca_key,
                       long days)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = BN_new();
    X509V3_CTX ctx;
    int ok = x != NULL && name != NULL && bn != NULL;

    ok = ok && BN_rand(bn, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
         (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && X509_set_serialNumber(x, serial) == 1;
    ok = ok && X509_set_version(x, 2) == 1 &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) == 1 &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) != NULL &&
         X509_set_pubkey(x, key) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, ca ? ca : x, x, NULL, NULL, 0);
        if (ca == NULL)
            ok = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
                 add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
                 add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0;
        else
            ok = add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE") == 0 &&
                 add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") == 0 &&
                 add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") == 0 &&
                 add_ext(x, &ctx, NID_subject_key_identifier, "hash") == 0 &&
                 add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") == 0 &&
                 add_ext(x, &ctx, NID_subject_alt_name, sans) == 0;
    }
    ok = ok && X509_sign(x, ca_key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int labcerts_make(const char *dir, const struct labcert_spec *specs, size_t n, char *err,
                  size_t err_len)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = NULL;
    X509 *ca = NULL, *x = NULL;
    char cn[256];
    int rc = -1;

    if (ca_key == NULL) {
        fail(err, err_len, "cannot generate the CA key");
        goto out;
    }
    ca = make_cert(ca_key, "tlsgate lab CA", NULL, NULL, ca_key, CA_DAYS);
    if (ca == NULL) {
        fail(err, err_len, "cannot make the CA certificate");
        goto out;
    }
    if (write_pair(dir, "ca", ca, ca_key, err, err_len) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        key = EVP_EC_gen("P-256");
        snprintf(cn, sizeof(cn), "%s.lab.test", specs[i].name);
        if (key == NULL || (x = make_cert(key, cn, specs[i].sans, ca, ca_key, LEAF_DAYS)) == NULL) {
            fail(err, err_len, "cannot make the certificate '%s' (%s)", specs[i].name,
                 specs[i].sans);
            goto out;
        }
        if (write_pair(dir, specs[i].name, x, key, err, err_len) < 0)
            goto out;
        X509_free(x);
        EVP_PKEY_free(key);
        x = NULL;
        key = NULL;
    }
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}
