/*
 * TLS ClientHello parser for passthrough: reads what a client offers without
 * terminating TLS. Works on the bytes received so far (records may arrive
 * split anywhere, a ClientHello may span several records) and answers one of
 * need-more / not-TLS / invalid / done. It never routes on a partial hello.
 */
#ifndef TLSGATE_CLIENTHELLO_H
#define TLSGATE_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello handshake message we accept (post-quantum key shares
 * make hellos of 1.5-2 KiB common; real ones stay far below this). */
#define CLIENTHELLO_MAX_MSG (32 * 1024)
/* Most bytes (records with their headers) we read before giving up. */
#define CLIENTHELLO_MAX_WIRE (CLIENTHELLO_MAX_MSG + 64 * 5 + 4096)

#define CH_MAX_SNI  255
#define CH_MAX_LIST 64 /* entries kept per list (ciphers, extensions, ...) */

enum ch_result {
    CH_NEED_MORE, /* valid so far, wait for more bytes */
    CH_NOT_TLS,   /* not a TLS handshake record (HTTP, SSLv2, garbage) */
    CH_INVALID,   /* TLS, but malformed, oversize or ambiguous (e.g. two SNI extensions) */
    CH_DONE,      /* whole ClientHello parsed into the struct */
};

struct clienthello {
    uint16_t record_version;          /* version field of the first record header */
    uint16_t legacy_version;          /* client_version in the hello body */
    size_t wire_len;                  /* bytes of records consumed up to the end of the hello */
    size_t msg_len;                   /* handshake message body length */
    bool has_sni;                     /* a host_name entry was present */
    char sni[CH_MAX_SNI + 1];         /* normalised: lower-case, no trailing dot */
    uint16_t ciphers[CH_MAX_LIST];    /* offered cipher suites, in order (GREASE kept) */
    size_t nciphers;                  /* number offered (may exceed CH_MAX_LIST; array truncated) */
    uint16_t extensions[CH_MAX_LIST]; /* extension types in order */
    size_t nextensions;
    uint16_t versions[CH_MAX_LIST]; /* supported_versions list, in order */
    size_t nversions;
    uint16_t groups[CH_MAX_LIST]; /* supported_groups */
    size_t ngroups;
    uint16_t sigalgs[CH_MAX_LIST]; /* signature_algorithms */
    size_t nsigalgs;
    char alpn[256];      /* offered ALPN protocols joined with ',' (truncated at a whole entry) */
    size_t nalpn;        /* number of ALPN protocols offered */
    char alpn_first[33]; /* first ALPN protocol, possibly truncated; "" if none */
    bool has_ech;        /* encrypted_client_hello extension present: sni is the outer one */
};

/*
 * Parses the ClientHello at the start of buf (len bytes received so far).
 * On CH_DONE fills *out. On other results *out is unspecified. Pure function:
 * call again with the longer buffer when more bytes arrive. Cost is bounded
 * by len; bytes after the hello are ignored.
 */
enum ch_result clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out);

/* Short name of a result for logs ("need-more", "not-tls", ...). */
const char *clienthello_result_str(enum ch_result r);

/*
 * Writes the TLS versions offered as a JSON-friendly comma list, e.g.
 * "TLSv1.3,TLSv1.2" (from supported_versions, else legacy_version), GREASE
 * skipped. Returns buf.
 */
char *clienthello_versions_str(const struct clienthello *ch, char *buf, size_t len);

#endif
