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
    size_t wire_len;                  /* bytes of records up to the end of the hello */
    size_t nrecords;                  /* records the hello spanned (1 for almost all clients) */
    size_t msg_len;                   /* handshake message body length */
    bool has_sni;                     /* a host_name entry was present */
    char sni[CH_MAX_SNI + 1];         /* normalised: lower-case, no trailing dot */
    uint16_t ciphers[CH_MAX_LIST];    /* offered cipher suites, in order (GREASE kept) */
    size_t nciphers;                  /* number offered (may exceed CH_MAX_LIST: array truncated) */
    uint16_t extensions[CH_MAX_LIST]; /* extension types in order (GREASE kept) */
    size_t nextensions;               /* number sent (may exceed CH_MAX_LIST) */
    uint16_t versions[CH_MAX_LIST];   /* supported_versions list, in order */
    size_t nversions;                 /* number listed; 0 = no supported_versions */
    uint16_t groups[CH_MAX_LIST];     /* supported_groups, in order */
    size_t ngroups;                   /* number listed (may exceed CH_MAX_LIST) */
    uint16_t sigalgs[CH_MAX_LIST];    /* signature_algorithms, in order */
    size_t nsigalgs;                  /* number listed (may exceed CH_MAX_LIST) */
    char alpn[256];      /* offered ALPN protocols joined with ',' (truncated at a whole entry);
                            bytes outside '!'..'~' and ',' itself are shown as '?' */
    size_t nalpn;        /* number of ALPN protocols offered */
    char alpn_first[33]; /* first ALPN protocol, possibly truncated, same '?' rule; "" if none */
    uint8_t alpn_first_head; /* first raw byte of the first ALPN protocol (JA4), 0 if none */
    uint8_t alpn_first_tail; /* last raw byte of the first ALPN protocol (JA4), 0 if none */
    bool has_ech;            /* encrypted_client_hello extension present: sni is the outer one */
};

/*
 * Parses the ClientHello at the start of buf (len bytes received so far).
 * On CH_DONE fills *out. On other results *out is unspecified. Pure function:
 * call again with the longer buffer when more bytes arrive. Cost is bounded
 * by len; bytes after the hello are ignored. Until the whole handshake message
 * has arrived only record headers are walked (CH_NEED_MORE is cheap). A hello
 * spread over several records is reassembled in up to CLIENTHELLO_MAX_MSG
 * bytes of stack. A prefix of a valid hello is always CH_NEED_MORE; CH_NOT_TLS
 * is answered from the first two bytes.
 */
enum ch_result clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out);

/* True for the reserved GREASE values (RFC 8701: 0x0a0a, 0x1a1a, ... 0xfafa). */
bool clienthello_is_grease(uint16_t v);

/* Short name of a result for logs ("need-more", "not-tls", ...). */
const char *clienthello_result_str(enum ch_result r);

/*
 * Writes the TLS versions offered as a JSON-friendly comma list, e.g.
 * "TLSv1.3,TLSv1.2" (from supported_versions, else legacy_version), GREASE
 * skipped. Names are OpenSSL's (SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3),
 * others as hex ("0x7f1c"). Truncated at a whole entry to fit len (NUL
 * included); "" when len allows nothing. Returns buf.
 */
char *clienthello_versions_str(const struct clienthello *ch, char *buf, size_t len);

#endif
