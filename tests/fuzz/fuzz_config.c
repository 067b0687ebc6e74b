/*
 * Fuzz target for the configuration loader (include/config.h): YAML
 * scanning, schema loading, validation and building the snapshot, TLS
 * contexts included.
 *
 * config_load reads a file, so each input is written to one in a private
 * temporary directory, which is also the working directory: relative paths
 * in the YAML resolve there. The initializer puts a self-signed certificate
 * and its key under every name the example configurations use
 * (certs/out/NAME.crt|key), plus ticket and cookie key files, so valid seeds
 * get as far as building TLS contexts. Missing files are ordinary errors.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "fuzz_util.h"

/* Names the example and test configurations refer to under certs/out/. */
static const char *const cert_names[] = {"ca",  "client-ca", "gateway", "shop", "shop-rsa",
                                         "web", "web2",      "bank",    "api",  "wrong"};

static char workdir[] = "/tmp/tlsgate-fuzz-config.XXXXXX";

/*
 * Host names in a config are resolved while validating. Lookups other than
 * numeric ones and "localhost" are refused here, so the fuzzer never waits
 * on DNS (slow, and a different answer on every machine). This definition in
 * the executable takes precedence over the C library's.
 */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    static gai_fn real;
    struct addrinfo numeric = {0};

    if (real == NULL && (real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo")) == NULL)
        abort();
    if (node != NULL && strcmp(node, "localhost") != 0) {
        if (hints != NULL)
            numeric = *hints;
        numeric.ai_flags |= AI_NUMERICHOST;
        hints = &numeric;
    }
    return real(node, service, hints, res);
}

/* Writes len bytes to path, replacing it. Aborts on failure: the target cannot run without. */
static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0) {
        perror(path);
        abort();
    }
}

/* Writes a PEM object through a memory BIO (so no FILE* juggling). */
static void write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long n;

    if (bio == NULL)
        abort();
    if (cert != NULL ? PEM_write_bio_X509(bio, cert) != 1
                     : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        abort();
    n = BIO_get_mem_data(bio, &pem);
    write_file(path, pem, (size_t)n);
    BIO_free(bio);
}

/* A P-256 key and a self-signed certificate for it, valid for a year from now. */
static X509 *make_cert(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509_NAME *name;

    if (cert == NULL || X509_set_version(cert, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600) == NULL ||
        X509_set_pubkey(cert, key) != 1 || (name = X509_get_subject_name(cert)) == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"lab.test", -1,
                                   -1, 0) != 1 ||
        X509_set_issuer_name(cert, name) != 1 || X509_sign(cert, key, EVP_sha256()) == 0)
        abort();
    return cert;
}

/* Removes what the initializer and the runs made, deepest first. */
static void remove_workdir(void)
{
    static const char *const others[] = {"certs/out/tickets.key", "certs/out/sticky.key",
                                         "fuzz.yaml"};
    static const char *const dirs[] = {"certs/out", "certs", ""};
    char path[512];

    for (size_t i = 0; i < sizeof(cert_names) / sizeof(cert_names[0]); i++) {
        snprintf(path, sizeof(path), "%s/certs/out/%s.crt", workdir, cert_names[i]);
        unlink(path);
        snprintf(path, sizeof(path), "%s/certs/out/%s.key", workdir, cert_names[i]);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", workdir, others[i]);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", workdir, dirs[i]);
        rmdir(path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const uint8_t ticket_key[80] = {1, 2, 3};
    static const char cookie_key[] = "fuzz cookie key, 32 bytes long.";
    EVP_PKEY *key;
    X509 *cert;
    char path[512];

    if (mkdtemp(workdir) == NULL || chdir(workdir) != 0 || mkdir("certs", 0700) != 0 ||
        mkdir("certs/out", 0700) != 0) {
        perror(workdir);
        abort();
    }
    atexit(remove_workdir);
    if ((key = EVP_EC_gen("P-256")) == NULL)
        abort();
    cert = make_cert(key);
    for (size_t i = 0; i < sizeof(cert_names) / sizeof(cert_names[0]); i++) {
        snprintf(path, sizeof(path), "certs/out/%s.crt", cert_names[i]);
        write_pem(path, NULL, cert);
        snprintf(path, sizeof(path), "certs/out/%s.key", cert_names[i]);
        write_pem(path, key, NULL);
    }
    write_file("certs/out/tickets.key", ticket_key, sizeof(ticket_key));
    write_file("certs/out/sticky.key", cookie_key, sizeof(cookie_key) - 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs = {0};
    struct config *c;

    write_file("fuzz.yaml", data, size);
    c = config_load("fuzz.yaml", &errs);
    /* The contract: a snapshot, or no snapshot and at least one reason. */
    FUZZ_CHECK((c != NULL) != (errs.n > 0));
    /* For writing seeds: shows how far each one gets. */
    if (getenv("FUZZ_CONFIG_VERBOSE") != NULL) {
        fprintf(stderr, "  %s\n", c != NULL ? "loaded" : "refused:");
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "    %s\n", errs.lines[i]);
    }
    for (size_t i = 0; i < errs.n; i++)
        FUZZ_CHECK(errs.lines[i] != NULL && strchr(errs.lines[i], '\n') == NULL);
    config_unref(c);
    config_errors_free(&errs);
    return 0;
}
