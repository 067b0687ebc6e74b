/*
 * PROXY protocol v1 (text) and v2 (binary): building the header we send to
 * servers and parsing the one a balancer in front sends us.
 */
#ifndef TLSGATE_PROXY_PROTO_H
#define TLSGATE_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config-t.h"

#define PP_V1_MAX  107 /* longest v1 line including CRLF, per the spec */
#define PP_V2_MAX  (16 + 65535)
#define PP_HDR_MAX 232 /* longest header pp_build writes */

enum pp_result {
    PP_NEED_MORE, /* prefix of a valid header so far */
    PP_ABSENT,    /* bytes do not start with a PROXY header signature */
    PP_BAD,       /* signature present, header malformed */
    PP_OK,        /* header parsed; consumed bytes set */
};

struct pp_info {
    int version;                 /* 1 or 2 */
    bool local;                  /* v2 LOCAL command or v1 UNKNOWN: no addresses */
    struct sockaddr_storage src; /* original client (valid unless local) */
    struct sockaddr_storage dst; /* original destination */
    size_t consumed;             /* header length in bytes */
};

/*
 * Parses a PROXY header at the start of buf. accept is PP_V1, PP_V2 or
 * PP_ANY: a header of a version not accepted is PP_BAD. Pure function; call
 * again with more bytes on PP_NEED_MORE (an empty buffer is PP_NEED_MORE).
 * PP_ABSENT as soon as a byte differs from both signatures ("PROXY" and the
 * 12-byte v2 one); PP_BAD as early as the bytes after a signature show they
 * cannot become a valid header (an IP address is judged once its field is
 * complete). Strict: v1 needs single spaces, IPs of the stated
 * family, ports 0-65535 without heading zeroes and CRLF within PP_V1_MAX;
 * v2 needs version 2, LOCAL (any defined family, address block ignored) or
 * PROXY with TCP over IPv4/IPv6, a length covering the addresses and
 * well-framed TLVs (skipped). v1 UNKNOWN and v2 LOCAL set local. Bytes after
 * the header are not looked at: the payload starts at consumed. *out is
 * written only on PP_OK.
 */
enum pp_result pp_parse(const uint8_t *buf, size_t len, enum pp_version accept,
                        struct pp_info *out);

/*
 * Writes a header of version (PP_V1 or PP_V2) for a connection from src to
 * dst into out (PP_HDR_MAX bytes always suffice; outlen need only fit the
 * header written). Returns its length, or -1. No NUL is appended.
 * A mixed IPv4/IPv6 pair keeps its addresses: an IPv4-mapped IPv6 side is
 * unmapped (TCP4), otherwise the IPv4 side is mapped into IPv6 (TCP6).
 * A missing (NULL) or non-IP address is written as "PROXY UNKNOWN\r\n" (v1)
 * or LOCAL with family UNSPEC and no address block (v2): the server then
 * uses the real connection endpoints.
 */
int pp_build(enum pp_version version, const struct sockaddr *src, const struct sockaddr *dst,
             uint8_t *out, size_t outlen);

#endif
