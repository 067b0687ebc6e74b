/*
 * PROXY protocol v1 and v2, after haproxy's doc/proxy-protocol.txt.
 *
 * The parser is incremental over a growing prefix and strict: anything the
 * specification does not allow is PP_BAD, as early as the bytes prove it.
 * ABSENT means "not a PROXY signature", decided on the first byte that
 * differs from both signatures; the version check against `accept` happens
 * once a whole signature has been seen, so a header of the wrong version is
 * reported as PP_BAD (a PROXY header, but not one we take).
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define PP_V1_SIG     "PROXY" /* the spec: these 5 characters mean version 1 */
#define PP_V1_SIG_LEN 5
#define PP_V2_SIG_LEN 12
#define PP_V2_HDR_LEN 16 /* signature, ver/cmd, fam, length */

#define PP_V2_VERSION   0x2
#define PP_V2_CMD_LOCAL 0x0
#define PP_V2_CMD_PROXY 0x1

#define PP_V2_FAM_UNSPEC 0x00
#define PP_V2_TCP4       0x11
#define PP_V2_TCP6       0x21
#define PP_V2_TCP4_LEN   12 /* 2 x 4-byte address, 2 x port */
#define PP_V2_TCP6_LEN   36 /* 2 x 16-byte address, 2 x port */

#define PP_V2_TLV_HDR_LEN 3 /* type, length (big endian) */

#define PP_V1_PORT_MAXLEN 5

static const uint8_t pp_v2_sig[PP_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* How far a piece of a v1 line got: complete, cut short, or impossible. */
enum v1_tok {
    V1_OK,
    V1_MORE,
    V1_BAD,
};

/* Reading position in a v1 line; len is capped at PP_V1_MAX. */
struct v1_cursor {
    const uint8_t *buf; /* start of the header */
    size_t len;         /* bytes available to the line parser */
    size_t pos;         /* next byte to read */
};

/*
 * An IP endpoint as plain bytes. Addresses go in and out of sockaddrs only
 * through memcpy: a sockaddr_storage written as sockaddr_in and read back as
 * sockaddr_in6 breaks strict aliasing, and GCC -O2 does miscompile it.
 */
struct pp_ep {
    int af;         /* AF_INET or AF_INET6 */
    uint8_t ip[16]; /* network order; 4 bytes used for AF_INET */
    uint16_t port;  /* host order */
};

/* True when accept (PP_V1, PP_V2 or PP_ANY) takes a header of version v. */
static bool pp_accepts(enum pp_version accept, enum pp_version v)
{
    return accept == PP_ANY || accept == v;
}

/*
 * Compares the available bytes with a signature: PP_OK when all of it is
 * there, PP_NEED_MORE on a matching prefix, PP_ABSENT on the first mismatch.
 */
static enum pp_result pp_match_sig(const uint8_t *buf, size_t len, const uint8_t *sig,
                                   size_t siglen)
{
    size_t n = len < siglen ? len : siglen;

    if (memcmp(buf, sig, n) != 0)
        return PP_ABSENT;
    return n == siglen ? PP_OK : PP_NEED_MORE;
}

/* Big-endian 16-bit read; the caller checked the bounds. */
static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Big-endian 16-bit write. */
static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Writes ep into ss as a sockaddr_in or sockaddr_in6, the rest zeroed. */
static void pp_ep_store(const struct pp_ep *ep, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (ep->af == AF_INET) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(ep->port)};
        memcpy(&sin.sin_addr, ep->ip, 4);
        memcpy(ss, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(ep->port)};
        memcpy(&sin6.sin6_addr, ep->ip, 16);
        memcpy(ss, &sin6, sizeof(sin6));
    }
}

/* Reads an IPv4/IPv6 sockaddr into ep; false for NULL or another family. */
static bool pp_ep_load(const struct sockaddr *sa, struct pp_ep *ep)
{
    memset(ep, 0, sizeof(*ep));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        ep->af = AF_INET;
        memcpy(ep->ip, &sin.sin_addr, 4);
        ep->port = ntohs(sin.sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        ep->af = AF_INET6;
        memcpy(ep->ip, &sin6.sin6_addr, 16);
        ep->port = ntohs(sin6.sin6_port);
        return true;
    }
    return false;
}

/* ---- v1 ---------------------------------------------------------------- */

/* Bytes left to read at the cursor. */
static size_t v1_avail(const struct v1_cursor *c)
{
    return c->len - c->pos;
}

/*
 * Consumes the literal lit if the line continues with it. V1_MORE when the
 * available bytes are a proper prefix of it; nothing is consumed unless V1_OK.
 */
static enum v1_tok v1_literal(struct v1_cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    size_t avail = v1_avail(c);
    size_t cmp = avail < n ? avail : n;

    if (memcmp(c->buf + c->pos, lit, cmp) != 0)
        return V1_BAD;
    if (avail < n)
        return V1_MORE;
    c->pos += n;
    return V1_OK;
}

/* Characters an IPv4 address field may hold. */
static int v1_addr4_char(int ch)
{
    return (ch >= '0' && ch <= '9') || ch == '.';
}

/* Characters an IPv6 address field may hold (an IPv4 tail included). */
static int v1_addr6_char(int ch)
{
    return isxdigit(ch) || ch == '.' || ch == ':';
}

/* Characters a port field may hold. */
static int v1_port_char(int ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * Reads a non-empty field of at most maxlen characters of class ok_char that
 * ends at term. V1_OK leaves the cursor on term; V1_MORE when the bytes ran
 * out first (the partial field is still returned in *start and *n so the caller
 * can vet it); V1_BAD on a foreign character, an empty or overlong field.
 */
static enum v1_tok v1_field(struct v1_cursor *c, uint8_t term, size_t maxlen, int (*ok_char)(int),
                            const uint8_t **start, size_t *n)
{
    size_t i = c->pos;

    *start = c->buf + c->pos;
    while (i < c->len && c->buf[i] != term) {
        if (!ok_char(c->buf[i]) || i - c->pos >= maxlen)
            return V1_BAD;
        i++;
    }
    *n = i - c->pos;
    if (i == c->len)
        return V1_MORE;
    if (*n == 0)
        return V1_BAD;
    c->pos = i;
    return V1_OK;
}

/*
 * Checks a port field, whole or partial: digits without a heading zero (the
 * spec forbids them, octal confusion) and a value up to 65535. Stores the
 * value when the field is complete.
 */
static enum v1_tok v1_port_check(const uint8_t *p, size_t n, bool complete, uint16_t *port)
{
    unsigned long v = 0;

    if (n > 1 && p[0] == '0')
        return V1_BAD;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (unsigned long)(p[i] - '0');
        if (v > 65535)
            return V1_BAD;
    }
    if (!complete)
        return V1_MORE;
    *port = (uint16_t)v;
    return V1_OK;
}

/* Reads a port field ending at term into *port (host order). */
static enum v1_tok v1_port(struct v1_cursor *c, uint8_t term, uint16_t *port)
{
    const uint8_t *p;
    size_t n;
    enum v1_tok t = v1_field(c, term, PP_V1_PORT_MAXLEN, v1_port_char, &p, &n);

    if (t == V1_BAD)
        return V1_BAD;
    return v1_port_check(p, n, t == V1_OK, port);
}

/*
 * Reads an address field of family af (AF_INET or AF_INET6) ending with a
 * space into ep. A partial field is only checked for its characters and
 * length; inet_pton decides once it is complete (it rejects heading zeroes
 * in IPv4, scope ids and anything but the family's syntax).
 */
static enum v1_tok v1_addr(struct v1_cursor *c, int af, struct pp_ep *ep)
{
    size_t maxlen = af == AF_INET ? INET_ADDRSTRLEN - 1 : INET6_ADDRSTRLEN - 1;
    char text[INET6_ADDRSTRLEN];
    const uint8_t *p;
    size_t n;
    enum v1_tok t = v1_field(c, ' ', maxlen, af == AF_INET ? v1_addr4_char : v1_addr6_char, &p, &n);

    if (t != V1_OK)
        return t;
    memcpy(text, p, n);
    text[n] = '\0';
    ep->af = af;
    return inet_pton(af, text, ep->ip) == 1 ? V1_OK : V1_BAD;
}

/*
 * Reads the protocol word: "TCP4 ", "TCP6 " or "UNKNOWN". Sets *af to
 * AF_INET, AF_INET6 or AF_UNSPEC.
 */
static enum v1_tok v1_proto(struct v1_cursor *c, int *af)
{
    static const struct {
        const char *word;
        int af;
    } protos[] = {{"TCP4 ", AF_INET}, {"TCP6 ", AF_INET6}, {"UNKNOWN", AF_UNSPEC}};
    bool more = false;

    for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
        enum v1_tok t = v1_literal(c, protos[i].word);
        if (t == V1_OK) {
            *af = protos[i].af;
            return V1_OK;
        }
        more |= t == V1_MORE;
    }
    return more ? V1_MORE : V1_BAD;
}

/*
 * After "UNKNOWN": either CRLF at once or a space and anything up to CRLF
 * (the receiver must ignore it). A lone CR or LF is never a line end.
 */
static enum v1_tok v1_unknown_tail(struct v1_cursor *c)
{
    size_t i = c->pos;

    if (i < c->len && c->buf[i] != '\r' && c->buf[i] != ' ')
        return V1_BAD;
    for (; i < c->len; i++) {
        if (c->buf[i] == '\n')
            return V1_BAD;
        if (c->buf[i] != '\r')
            continue;
        if (i + 1 == c->len)
            return V1_MORE;
        if (c->buf[i + 1] != '\n')
            return V1_BAD;
        c->pos = i + 2;
        return V1_OK;
    }
    return V1_MORE;
}

/* Runs a step unless an earlier one stopped the line. */
#define V1_STEP(expr)                                                                              \
    do {                                                                                           \
        enum v1_tok t_ = (expr);                                                                   \
        if (t_ != V1_OK)                                                                           \
            return t_;                                                                             \
    } while (0)

/* "src dst sport dport\r\n" of a TCP4/TCP6 line, into info. */
static enum v1_tok v1_tcp(struct v1_cursor *c, int af, struct pp_info *info)
{
    struct pp_ep src = {0}, dst = {0};

    V1_STEP(v1_addr(c, af, &src));
    V1_STEP(v1_literal(c, " "));
    V1_STEP(v1_addr(c, af, &dst));
    V1_STEP(v1_literal(c, " "));
    V1_STEP(v1_port(c, ' ', &src.port));
    V1_STEP(v1_literal(c, " "));
    V1_STEP(v1_port(c, '\r', &dst.port));
    V1_STEP(v1_literal(c, "\r\n"));
    pp_ep_store(&src, &info->src);
    pp_ep_store(&dst, &info->dst);
    return V1_OK;
}

/*
 * Parses a v1 line whose "PROXY" signature has been matched. The line must
 * end with CRLF within PP_V1_MAX bytes; a valid-looking line longer than that
 * (possible with long IPv6 forms) is PP_BAD too.
 */
static enum pp_result pp_parse_v1(const uint8_t *buf, size_t len, struct pp_info *out)
{
    struct v1_cursor c = {buf, len < PP_V1_MAX ? len : PP_V1_MAX, PP_V1_SIG_LEN};
    struct pp_info info;
    enum v1_tok t;
    int af = AF_UNSPEC;

    memset(&info, 0, sizeof(info));
    t = v1_literal(&c, " ");
    if (t == V1_OK)
        t = v1_proto(&c, &af);
    if (t == V1_OK)
        t = af == AF_UNSPEC ? v1_unknown_tail(&c) : v1_tcp(&c, af, &info);
    if (t == V1_BAD)
        return PP_BAD;
    if (t == V1_MORE)
        return len >= PP_V1_MAX ? PP_BAD : PP_NEED_MORE;
    info.version = 1;
    info.local = af == AF_UNSPEC;
    info.consumed = c.pos;
    *out = info;
    return PP_OK;
}

/* ---- v2 ---------------------------------------------------------------- */

/* True for the family/protocol bytes the specification defines. */
static bool v2_fam_defined(uint8_t fam)
{
    switch (fam) {
    case 0x00: /* UNSPEC */
    case 0x11: /* TCP4 */
    case 0x12: /* UDP4 */
    case 0x21: /* TCP6 */
    case 0x22: /* UDP6 */
    case 0x31: /* UNIX stream */
    case 0x32: /* UNIX dgram */
        return true;
    default:
        return false;
    }
}

/* Version must be 2 and the command LOCAL or PROXY. */
static bool v2_ver_cmd_ok(uint8_t ver_cmd)
{
    uint8_t cmd = ver_cmd & 0x0F;

    return (ver_cmd >> 4) == PP_V2_VERSION && (cmd == PP_V2_CMD_LOCAL || cmd == PP_V2_CMD_PROXY);
}

/*
 * Whether the family byte is acceptable for the command. LOCAL ignores the
 * address block, so any defined family goes (the spec says the receiver
 * must accept it); PROXY must carry TCP over IPv4 or IPv6, the only
 * connections a TCP gateway can stand in for.
 */
static bool v2_fam_ok(uint8_t ver_cmd, uint8_t fam)
{
    if ((ver_cmd & 0x0F) == PP_V2_CMD_LOCAL)
        return v2_fam_defined(fam);
    return fam == PP_V2_TCP4 || fam == PP_V2_TCP6;
}

/* Size of the address block the command and family require. */
static size_t v2_addr_len(uint8_t ver_cmd, uint8_t fam)
{
    if ((ver_cmd & 0x0F) == PP_V2_CMD_LOCAL)
        return 0;
    return fam == PP_V2_TCP4 ? PP_V2_TCP4_LEN : PP_V2_TCP6_LEN;
}

/*
 * Validates the framing of the TLVs in tlv[0..len): each one a type, a
 * 16-bit length and exactly that many bytes, the last ending at len. Their
 * contents are skipped.
 */
static bool v2_tlvs_ok(const uint8_t *tlv, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        if (len - pos < PP_V2_TLV_HDR_LEN)
            return false;
        size_t vlen = get_be16(tlv + pos + 1);
        pos += PP_V2_TLV_HDR_LEN;
        if (vlen > len - pos)
            return false;
        pos += vlen;
    }
    return true;
}

/*
 * Fills info->src/dst from a TCP4 or TCP6 address block at p: source and
 * destination addresses, then source and destination ports.
 */
static void v2_addrs(const uint8_t *p, uint8_t fam, struct pp_info *info)
{
    size_t ilen = fam == PP_V2_TCP4 ? 4 : 16;
    struct pp_ep src = {.af = fam == PP_V2_TCP4 ? AF_INET : AF_INET6};
    struct pp_ep dst = src;

    memcpy(src.ip, p, ilen);
    memcpy(dst.ip, p + ilen, ilen);
    src.port = get_be16(p + 2 * ilen);
    dst.port = get_be16(p + 2 * ilen + 2);
    pp_ep_store(&src, &info->src);
    pp_ep_store(&dst, &info->dst);
}

/*
 * Parses a v2 header whose 12-byte signature has been matched. The
 * version/command and family bytes are judged as soon as they arrive, the
 * length as soon as the fixed part is complete; then the whole header must
 * be there before addresses are read.
 */
static enum pp_result pp_parse_v2(const uint8_t *buf, size_t len, struct pp_info *out)
{
    struct pp_info info;

    if (len > PP_V2_SIG_LEN && !v2_ver_cmd_ok(buf[12]))
        return PP_BAD;
    if (len > PP_V2_SIG_LEN + 1 && !v2_fam_ok(buf[12], buf[13]))
        return PP_BAD;
    if (len < PP_V2_HDR_LEN)
        return PP_NEED_MORE;

    uint8_t ver_cmd = buf[12], fam = buf[13];
    size_t body = get_be16(buf + 14);
    size_t alen = v2_addr_len(ver_cmd, fam);

    if (body < alen)
        return PP_BAD;
    if (len < PP_V2_HDR_LEN + body)
        return PP_NEED_MORE;
    memset(&info, 0, sizeof(info));
    info.version = 2;
    info.consumed = PP_V2_HDR_LEN + body;
    info.local = (ver_cmd & 0x0F) == PP_V2_CMD_LOCAL;
    if (!info.local) {
        if (!v2_tlvs_ok(buf + PP_V2_HDR_LEN + alen, body - alen))
            return PP_BAD;
        v2_addrs(buf + PP_V2_HDR_LEN, fam, &info);
    }
    *out = info;
    return PP_OK;
}

/*
 * Parses a PROXY header at the start of buf. The two signatures begin with
 * different bytes ('P' and CR), so the first byte picks the candidate.
 * *out is written only on PP_OK.
 */
enum pp_result pp_parse(const uint8_t *buf, size_t len, enum pp_version accept, struct pp_info *out)
{
    enum pp_result r;

    if (len == 0)
        return PP_NEED_MORE;
    if (buf[0] == PP_V1_SIG[0]) {
        r = pp_match_sig(buf, len, (const uint8_t *)PP_V1_SIG, PP_V1_SIG_LEN);
        if (r != PP_OK)
            return r;
        return pp_accepts(accept, PP_V1) ? pp_parse_v1(buf, len, out) : PP_BAD;
    }
    if (buf[0] == pp_v2_sig[0]) {
        r = pp_match_sig(buf, len, pp_v2_sig, PP_V2_SIG_LEN);
        if (r != PP_OK)
            return r;
        return pp_accepts(accept, PP_V2) ? pp_parse_v2(buf, len, out) : PP_BAD;
    }
    return PP_ABSENT;
}

/* ---- building ---------------------------------------------------------- */

/* True for an IPv4-mapped IPv6 address (::ffff:a.b.c.d). */
static bool pp_ep_mapped(const struct pp_ep *ep)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return ep->af == AF_INET6 && memcmp(ep->ip, prefix, sizeof(prefix)) == 0;
}

/* Rewrites an IPv4 endpoint as its IPv4-mapped IPv6 form. */
static void pp_ep_map_v6(struct pp_ep *ep)
{
    memmove(ep->ip + 12, ep->ip, 4);
    memset(ep->ip, 0, 10);
    ep->ip[10] = ep->ip[11] = 0xff;
    ep->af = AF_INET6;
}

/* Rewrites an IPv4-mapped IPv6 endpoint as plain IPv4. */
static void pp_ep_unmap_v4(struct pp_ep *ep)
{
    memmove(ep->ip, ep->ip + 12, 4);
    memset(ep->ip + 4, 0, 12);
    ep->af = AF_INET;
}

/*
 * Loads src and dst and brings them to one family, returned: AF_INET,
 * AF_INET6, or AF_UNSPEC when either is missing or not IP. A mixed pair
 * (which happens when src came from a PROXY header received on a socket of
 * the other family) keeps its information: an IPv4-mapped IPv6 side is
 * unmapped, otherwise the IPv4 side is mapped into IPv6.
 */
static int pp_pair_family(const struct sockaddr *src, const struct sockaddr *dst, struct pp_ep *s,
                          struct pp_ep *d)
{
    if (!pp_ep_load(src, s) || !pp_ep_load(dst, d))
        return AF_UNSPEC;
    if (s->af == d->af)
        return s->af;
    struct pp_ep *v6 = s->af == AF_INET6 ? s : d;
    struct pp_ep *v4 = s->af == AF_INET ? s : d;
    if (pp_ep_mapped(v6)) {
        pp_ep_unmap_v4(v6);
        return AF_INET;
    }
    pp_ep_map_v6(v4);
    return AF_INET6;
}

/* Writes a v1 line ("PROXY UNKNOWN\r\n" for AF_UNSPEC); length or -1. */
static int pp_build_v1(int af, const struct pp_ep *s, const struct pp_ep *d, uint8_t *out,
                       size_t outlen)
{
    char line[PP_V1_MAX + 1];
    char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
    int n;

    if (af == AF_UNSPEC) {
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    } else {
        if (!inet_ntop(af, s->ip, sip, sizeof(sip)) || !inet_ntop(af, d->ip, dip, sizeof(dip)))
            return -1;
        n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
                     af == AF_INET ? "TCP4" : "TCP6", sip, dip, s->port, d->port);
    }
    if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > outlen)
        return -1;
    memcpy(out, line, (size_t)n);
    return n;
}

/*
 * Writes a v2 header: PROXY with TCP4/TCP6 addresses, or LOCAL with family
 * UNSPEC and no address block for AF_UNSPEC (the spec's advice for a
 * connection whose endpoints cannot be described). Length or -1.
 */
static int pp_build_v2(int af, const struct pp_ep *s, const struct pp_ep *d, uint8_t *out,
                       size_t outlen)
{
    size_t alen = af == AF_INET ? PP_V2_TCP4_LEN : af == AF_INET6 ? PP_V2_TCP6_LEN : 0;
    size_t ilen = af == AF_INET ? 4 : 16;

    if (outlen < PP_V2_HDR_LEN + alen)
        return -1;
    memcpy(out, pp_v2_sig, PP_V2_SIG_LEN);
    out[12] = (uint8_t)(PP_V2_VERSION << 4 | (af == AF_UNSPEC ? PP_V2_CMD_LOCAL : PP_V2_CMD_PROXY));
    out[13] = af == AF_INET ? PP_V2_TCP4 : af == AF_INET6 ? PP_V2_TCP6 : PP_V2_FAM_UNSPEC;
    put_be16(out + 14, (uint16_t)alen);
    if (af == AF_UNSPEC)
        return PP_V2_HDR_LEN;
    uint8_t *p = out + PP_V2_HDR_LEN;
    memcpy(p, s->ip, ilen);
    memcpy(p + ilen, d->ip, ilen);
    put_be16(p + 2 * ilen, s->port);
    put_be16(p + 2 * ilen + 2, d->port);
    return (int)(PP_V2_HDR_LEN + alen);
}

/*
 * Writes a header for a connection from src to dst. See proxy_proto.h for
 * how missing, non-IP and mixed-family addresses are written. No NUL is
 * appended; outlen only has to fit the header actually written.
 */
int pp_build(enum pp_version version, const struct sockaddr *src, const struct sockaddr *dst,
             uint8_t *out, size_t outlen)
{
    struct pp_ep s, d;
    int af;

    if (out == NULL || (version != PP_V1 && version != PP_V2))
        return -1;
    af = pp_pair_family(src, dst, &s, &d);
    if (version == PP_V1)
        return pp_build_v1(af, &s, &d, out, outlen);
    return pp_build_v2(af, &s, &d, out, outlen);
}
