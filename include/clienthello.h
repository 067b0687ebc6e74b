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

#include "ja4.h"

/* Largest ClientHello handshake message we accept (post-quantum key shares
 * make hellos of 1.5-2 KiB common; real ones stay far below this). */
#define CLIENTHELLO_MAX_MSG (32 * 1024)
/* Most bytes (records with their headers) we read before giving up. */
#define CLIENTHELLO_MAX_WIRE (CLIENTHELLO_MAX_MSG + 64 * 5 + 4096)

#define CH_MAX_SNI 255
/* What a passthrough session keeps of the lists, for its access-log line.
 * Real clients stay within these (curl and openssl offer 31 cipher suites,
 * 10 groups, 4 versions); longer lists are cut, the counts stay whole. */
#define CH_KEEP_CIPHERS  32
#define CH_KEEP_GROUPS   12
#define CH_KEEP_VERSIONS 6
#define CH_KEEP_ALPN     48 /* bytes of the joined ALPN list, NUL included */

enum ch_result {
    CH_NEED_MORE, /* valid so far, wait for more bytes */
    CH_NOT_TLS,   /* not a TLS handshake record (HTTP, SSLv2, garbage) */
    CH_INVALID,   /* TLS, but malformed or ambiguous (e.g. two SNI extensions) */
    CH_TOO_LARGE, /* a ClientHello message over CLIENTHELLO_MAX_MSG (or its records' wire limit) */
    CH_DONE,      /* whole ClientHello parsed into the struct */
};

/*
 * What a passthrough session keeps of the ClientHello: what routing and the
 * access log need, no more (one per connection: it counts in the memory of
 * an idle connection). The full lists are read at parse time for the JA4
 * fingerprint and then dropped. GREASE values (RFC 8701) are left out of the
 * kept lists and their counts: they are random filler with no meaning.
 */
struct clienthello {
    uint32_t wire_len;                   /* bytes of records up to the end of the hello */
    uint32_t msg_len;                    /* handshake message body length */
    uint16_t record_version;             /* version field of the first record header */
    uint16_t legacy_version;             /* client_version in the hello body */
    uint16_t nrecords;                   /* records the hello spanned (1 for almost all) */
    uint16_t nciphers;                   /* cipher suites offered (beyond KEEP: cut) */
    uint16_t ngroups;                    /* supported_groups offered (beyond KEEP: cut) */
    uint16_t nversions;                  /* supported_versions listed; 0 = no extension */
    uint16_t nalpn;                      /* ALPN protocols offered */
    bool has_sni;                        /* a host_name entry was present */
    bool has_ech;                        /* encrypted_client_hello present: sni is the outer one */
    uint16_t ciphers[CH_KEEP_CIPHERS];   /* the first cipher suites, in offered order */
    uint16_t groups[CH_KEEP_GROUPS];     /* the first supported_groups, in offered order */
    uint16_t versions[CH_KEEP_VERSIONS]; /* the first supported_versions, in offered order */
    char sni[CH_MAX_SNI + 1];            /* normalised: lower-case, no trailing dot */
    char ja4[JA4_LEN + 1];               /* JA4 fingerprint; "" if it could not be hashed */
    char alpn[CH_KEEP_ALPN]; /* offered ALPN protocols joined with ',' (cut at a whole entry);
                                bytes outside '!'..'~' and ',' itself are shown as '?' */
};

/*
 * Parses the ClientHello at the start of buf (len bytes received so far).
 * On CH_DONE fills *out, zeroed first: two parses of the same hello compare
 * equal with memcmp(). On other results *out is unspecified. Pure function:
 * call again with the longer buffer when more bytes arrive. Cost is bounded
 * by len; bytes after the hello are ignored. Until the whole handshake message
 * has arrived only record headers are walked (CH_NEED_MORE is cheap). A hello
 * spread over several records is reassembled in up to CLIENTHELLO_MAX_MSG
 * bytes of stack, and the full lists JA4 hashes take up to as much again.
 * A prefix of a valid hello is always CH_NEED_MORE; CH_NOT_TLS is answered
 * from the first two bytes.
 */
enum ch_result clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out);

/*
 * The same, with the JA4 fingerprint only when ja4 is true (out->ja4 is ""
 * otherwise). The fingerprint costs about as much as the rest of the parse
 * (two SHA-256s): the gateway skips it when no access log would show it.
 */
enum ch_result clienthello_parse_ja4(const uint8_t *buf, size_t len, struct clienthello *out,
                                     bool ja4);

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

/*
 * Writes the kept cipher suites as a comma list of 4-digit hex (IANA code
 * points, as JA4 writes them: "1302,1303,1301,c02c"), truncated at a whole
 * entry to fit len. Returns buf.
 */
char *clienthello_ciphers_str(const struct clienthello *ch, char *buf, size_t len);

/*
 * Writes the kept supported_groups as a comma list of names where the group
 * is well known ("x25519,secp256r1,X25519MLKEM768"), else 4-digit hex,
 * truncated at a whole entry to fit len. Returns buf.
 */
char *clienthello_groups_str(const struct clienthello *ch, char *buf, size_t len);

/* IANA name of a TLS supported group (OpenSSL's spelling), NULL if unknown. */
const char *clienthello_group_name(uint16_t group);

#endif
