/*
 * JA4 TLS client fingerprint (FoxIO, "JA4" of JA4+, BSD 3-Clause), computed
 * from what a ClientHello offers. docs/ja4.md says which rules we implement
 * and shows what curl and openssl s_client look like.
 *
 *   t13d1516h2_8daaf6152771_e5627efa2ab1
 *   |  | | | |  |            `- sha256(sorted extensions "_" signature algorithms)
 *   |  | | | |  `- sha256(sorted cipher suites)
 *   |  | | | `- first and last character of the first ALPN protocol
 *   |  | | `- extension count     `- cipher suite count (both without GREASE, max 99)
 *   |  | `- d: server_name extension present, i: absent
 *   |  `- highest TLS version offered
 *   `- t: TLS over TCP (the gateway never sees QUIC or DTLS)
 */
#ifndef TLSGATE_JA4_H
#define TLSGATE_JA4_H

#include <stddef.h>
#include <stdint.h>

#define JA4_LEN 36 /* characters of a fingerprint, without the NUL */

/* The ClientHello fields JA4 reads, as offered (GREASE included: JA4 drops it). */
struct ja4_hello {
    uint16_t legacy_version;   /* client_version of the hello body */
    const uint16_t *versions;  /* supported_versions list; NULL when absent */
    size_t nversions;          /* entries in versions */
    uint16_t *ciphers;         /* cipher suites in offered order; sorted in place */
    size_t nciphers;           /* entries in ciphers */
    uint16_t *extensions;      /* extension types in offered order; sorted in place */
    size_t nextensions;        /* entries in extensions */
    const uint16_t *sigalgs;   /* signature_algorithms in offered order; NULL when absent */
    size_t nsigalgs;           /* entries in sigalgs */
    const uint8_t *alpn_first; /* raw bytes of the first ALPN protocol; NULL when no ALPN */
    size_t alpn_first_len;     /* its length */
};

/*
 * Writes the fingerprint of h into out (JA4_LEN + 1 bytes, NUL-terminated).
 * Sorts h->ciphers and h->extensions in place (callers pass their own
 * copies); reads nothing else outside h's arrays. Cost is O(n log n) in the
 * list lengths. Returns 0, or -1 with out = "" when OpenSSL cannot hash.
 */
int ja4_fingerprint(struct ja4_hello *h, char *out);

#endif
