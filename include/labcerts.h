/*
 * The lab PKI made in C (what certs/mkcerts.sh makes with the openssl tool):
 * a lab CA and ECDSA P-256 server certificates signed by it.
 */
#ifndef TLSGATE_LABCERTS_H
#define TLSGATE_LABCERTS_H

#include <stddef.h>

/* One server certificate to make: DIR/NAME.crt and DIR/NAME.key. */
struct labcert_spec {
    const char *name; /* file name stem, and CN "NAME.lab.test" */
    const char *sans; /* subjectAltName in OpenSSL syntax, e.g. "DNS:a.test,IP:127.0.0.1" */
};

/* The lab's usual certificates (web, web2, bank, shop, api, gateway), nlabcerts_default entries. */
extern const struct labcert_spec labcerts_default[];
extern const size_t nlabcerts_default;

/*
 * Makes DIR/ca.crt + DIR/ca.key (the lab CA, "CN=tlsgate lab CA") and one
 * certificate per spec, valid from an hour ago for 825 days. Keys are
 * written mode 0600, certificates 0644. Returns 0, or -1 with a message
 * naming the file or step that failed in err.
 */
int labcerts_make(const char *dir, const struct labcert_spec *specs, size_t n, char *err,
                  size_t err_len);

#endif
