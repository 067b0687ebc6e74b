/*
 * Passthrough ClientHello parser. Two passes over the bytes received so far:
 *
 *  1. ch_scan() walks the record headers only. It answers NOT_TLS from the
 *     first two bytes, rejects impossible headers as soon as they are seen,
 *     and otherwise says NEED_MORE until every record carrying the handshake
 *     message has arrived. This is all a caller feeding one byte at a time
 *     pays for on each call.
 *  2. Once the message is complete it is reassembled if it spans records and
 *     the body is parsed with a bounds-checked reader (struct rd).
 *
 * Every decision depends only on bytes already present, so a prefix of a
 * valid hello can only ever answer NEED_MORE.
 *
 * The session keeps only a little of the hello (struct clienthello); the
 * full lists JA4 hashes are collected on the stack (struct ch_full) and the
 * fingerprint is computed before the parse returns.
 */
#include <stdio.h>
#include <string.h>

#include "clienthello.h"
#include "ja4.h"

#define TLS_RECORD_HEADER  5
#define TLS_RECORD_MAX     (16384 + 2048) /* TLSCiphertext limit, RFC 8446 5.2 */
#define TLS_CT_HANDSHAKE   22
#define TLS_HS_HEADER      4
#define TLS_HS_CLIENTHELLO 1
#define TLS_RANDOM_LEN     32
#define TLS_SESSION_ID_MAX 32

#define EXT_SERVER_NAME        0x0000
#define EXT_SUPPORTED_GROUPS   0x000a
#define EXT_SIGNATURE_ALGS     0x000d
#define EXT_ALPN               0x0010
#define EXT_SUPPORTED_VERSIONS 0x002b
#define EXT_ECH                0xfe0d
#define SNI_HOST_NAME          0

/* What the record walk learnt about the handshake message. */
struct ch_scan {
    uint16_t record_version; /* version of the first record header */
    size_t msg_len;          /* handshake body length (from its header) */
    size_t wire_len;         /* end of the record holding the last hello byte */
    size_t nrecords;         /* records the message spans */
};

/* Every 16-bit list entry takes two bytes of the message: they all fit. */
#define CH_POOL (CLIENTHELLO_MAX_MSG / 2)

/* The whole lists of one hello, for JA4; lives on the parser's stack. */
struct ch_full {
    uint16_t pool[CH_POOL]; /* the lists below point in here */
    size_t used;            /* entries of pool handed out */
    struct ja4_hello ja4;   /* what JA4 reads: lists in pool, ALPN in the message */
};

/* A bounds-checked cursor: p[0..len) is what is left to read. */
struct rd {
    const uint8_t *p; /* next unread byte */
    size_t len;       /* bytes left */
};

/* Reads one byte into *v. Returns false, consuming nothing, on overrun. */
static bool rd_u8(struct rd *r, uint8_t *v)
{
    if (r->len < 1)
        return false;
    *v = r->p[0];
    r->p++;
    r->len--;
    return true;
}

/* Reads a big-endian 16-bit value into *v. False on overrun. */
static bool rd_u16(struct rd *r, uint16_t *v)
{
    if (r->len < 2)
        return false;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->len -= 2;
    return true;
}

/* Splits the next n bytes off into *sub (may be NULL to skip). False on overrun. */
static bool rd_take(struct rd *r, size_t n, struct rd *sub)
{
    if (r->len < n)
        return false;
    if (sub != NULL) {
        sub->p = r->p;
        sub->len = n;
    }
    r->p += n;
    r->len -= n;
    return true;
}

/* Reads a vector with a 1-byte length prefix into *sub. False on overrun. */
static bool rd_vec8(struct rd *r, struct rd *sub)
{
    uint8_t n;

    return rd_u8(r, &n) && rd_take(r, n, sub);
}

/* Reads a vector with a 2-byte length prefix into *sub. False on overrun. */
static bool rd_vec16(struct rd *r, struct rd *sub)
{
    uint16_t n;

    return rd_u16(r, &n) && rd_take(r, n, sub);
}

bool clienthello_is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/*
 * Checks the record header at p (avail bytes of it present; first says it
 * opens the connection). Returns CH_DONE with *rlen set when the header is
 * whole and acceptable, CH_NEED_MORE when it is cut short, else the verdict.
 * The first record decides TLS or not; later ones are already TLS, so a bad
 * one is INVALID.
 */
static enum ch_result ch_record_header(const uint8_t *p, size_t avail, bool first, size_t *rlen)
{
    enum ch_result bad = first ? CH_NOT_TLS : CH_INVALID;

    if (avail >= 1 && p[0] != TLS_CT_HANDSHAKE)
        return bad;
    if (avail >= 2 && p[1] != 3)
        return bad;
    if (avail < TLS_RECORD_HEADER)
        return CH_NEED_MORE;
    *rlen = (size_t)p[3] << 8 | p[4];
    if (*rlen == 0 || *rlen > TLS_RECORD_MAX)
        return CH_INVALID;
    return CH_DONE;
}

/*
 * Walks record headers from buf[0] until the records holding the whole
 * handshake message have arrived (CH_DONE, *sc filled) or a verdict is
 * reached. Reads only headers and the 4-byte handshake header, so it costs
 * O(records) per call whatever the hello's size.
 */
static enum ch_result ch_scan(const uint8_t *buf, size_t len, struct ch_scan *sc)
{
    uint8_t hs[TLS_HS_HEADER]; /* handshake header, gathered across records */
    size_t nhs = 0, got = 0, need = 0, off = 0, rlen = 0;
    enum ch_result r;

    if (len == 0)
        return CH_NEED_MORE;
    for (sc->nrecords = 0;; sc->nrecords++) {
        const uint8_t *payload = buf + off + TLS_RECORD_HEADER;
        size_t avail;

        if (off >= len)
            return CH_NEED_MORE;
        r = ch_record_header(buf + off, len - off, off == 0, &rlen);
        if (r != CH_DONE)
            return r;
        if (off == 0)
            sc->record_version = (uint16_t)(buf[1] << 8 | buf[2]);
        if (off + TLS_RECORD_HEADER + rlen > CLIENTHELLO_MAX_WIRE)
            return CH_TOO_LARGE;
        avail = len - off - TLS_RECORD_HEADER;
        if (avail > rlen)
            avail = rlen;
        for (size_t i = 0; nhs < TLS_HS_HEADER && i < avail; i++)
            hs[nhs++] = payload[i];
        if (nhs >= 1 && hs[0] != TLS_HS_CLIENTHELLO)
            return CH_INVALID;
        if (nhs == TLS_HS_HEADER && need == 0) {
            sc->msg_len = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
            if (sc->msg_len > CLIENTHELLO_MAX_MSG)
                return CH_TOO_LARGE;
            need = TLS_HS_HEADER + sc->msg_len;
        }
        /* Nothing may follow the hello in its record: the server would
         * reject it, and we would be relaying bytes we did not look at. */
        if (need != 0 && got + rlen > need)
            return CH_INVALID;
        if (avail < rlen)
            return CH_NEED_MORE;
        got += rlen;
        off += TLS_RECORD_HEADER + rlen;
        if (need != 0 && got == need) {
            sc->wire_len = off;
            sc->nrecords++;
            return CH_DONE;
        }
    }
}

/*
 * Copies the handshake message body, spread over the records scanned, into
 * msg (room for sc->msg_len bytes). The records are known to be whole.
 */
static void ch_reassemble(const uint8_t *buf, const struct ch_scan *sc, uint8_t *msg)
{
    size_t off = 0, skip = TLS_HS_HEADER, n = 0;

    while (n < sc->msg_len) {
        size_t rlen = (size_t)buf[off + 3] << 8 | buf[off + 4];
        const uint8_t *payload = buf + off + TLS_RECORD_HEADER;
        size_t s = skip < rlen ? skip : rlen;

        skip -= s;
        memcpy(msg + n, payload + s, rlen - s);
        n += rlen - s;
        off += TLS_RECORD_HEADER + rlen;
    }
}

/*
 * Moves a list of 16-bit values (the whole of *list) into the pool and
 * points *arr at it. False when the list is empty or odd.
 */
static bool ch_full_list(struct ch_full *f, struct rd *list, uint16_t **arr, size_t *n)
{
    uint16_t *dst = f->pool + f->used;

    if (list->len == 0 || list->len % 2 != 0 || list->len / 2 > CH_POOL - f->used)
        return false;
    for (*n = 0; rd_u16(list, &dst[*n]); (*n)++)
        ;
    f->used += *n;
    *arr = dst;
    return true;
}

/* Keeps the non-GREASE values of v: the first cap of them in keep, all counted. */
static void ch_keep(const uint16_t *v, size_t n, uint16_t *keep, size_t cap, uint16_t *count)
{
    for (size_t i = 0; i < n; i++) {
        if (clienthello_is_grease(v[i]))
            continue;
        if (*count < cap)
            keep[*count] = v[i];
        (*count)++;
    }
}

/* A byte shown in the alpn strings: printable and not the ',' separator. */
static char ch_alpn_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f && c != ',' ? (char)c : '?';
}

/*
 * Normalises a host_name into out (CH_MAX_SNI + 1 bytes): lower-case, one
 * trailing dot dropped. False for an empty name or label, a name longer than
 * CH_MAX_SNI, or a byte other than letters, digits, '-', '_' and '.'.
 */
static bool ch_sni_normalise(const uint8_t *name, size_t n, char *out)
{
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0 || n > CH_MAX_SNI)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = name[i];

        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        else if (c == '.' && (i == 0 || name[i - 1] == '.' || i == n - 1))
            return false; /* empty label: ".a", "a..b", "a.." */
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   c == '.'))
            return false;
        out[i] = (char)c;
    }
    out[n] = '\0';
    return true;
}

/*
 * server_name (RFC 6066 3): a non-empty list filling the extension. Only
 * host_name entries count and there may be one at most; other name types are
 * skipped. False when malformed or ambiguous.
 */
static bool ch_ext_sni(struct rd *ext, struct clienthello *ch)
{
    struct rd list, name;
    uint8_t type;

    if (!rd_vec16(ext, &list) || ext->len != 0 || list.len == 0)
        return false;
    while (list.len > 0) {
        if (!rd_u8(&list, &type) || !rd_vec16(&list, &name))
            return false;
        if (type != SNI_HOST_NAME)
            continue;
        if (ch->has_sni || !ch_sni_normalise(name.p, name.len, ch->sni))
            return false;
        ch->has_sni = true;
    }
    return true;
}

/*
 * Appends one ALPN protocol to ch->alpn if it fits whole with its comma.
 * Returns false, leaving ch->alpn as it was, when it does not.
 */
static bool ch_alpn_join(struct clienthello *ch, const struct rd *proto)
{
    size_t at = strlen(ch->alpn), sep = at > 0;

    if (at + sep + proto->len >= sizeof(ch->alpn))
        return false;
    if (sep)
        ch->alpn[at++] = ',';
    for (size_t i = 0; i < proto->len; i++)
        ch->alpn[at++] = ch_alpn_char(proto->p[i]);
    ch->alpn[at] = '\0';
    return true;
}

/*
 * application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty list of
 * non-empty names filling the extension. JA4 reads the first name's raw
 * bytes. False when malformed.
 */
static bool ch_ext_alpn(struct rd *ext, struct clienthello *ch, struct ch_full *f)
{
    struct rd list, proto;
    bool joining = true; /* false once an entry did not fit: keep a prefix */

    if (!rd_vec16(ext, &list) || ext->len != 0 || list.len == 0)
        return false;
    while (list.len > 0) {
        if (!rd_vec8(&list, &proto) || proto.len == 0)
            return false;
        if (ch->nalpn == 0) {
            f->ja4.alpn_first = proto.p;
            f->ja4.alpn_first_len = proto.len;
        }
        joining = joining && ch_alpn_join(ch, &proto);
        ch->nalpn++;
    }
    return true;
}

/* supported_versions in a ClientHello: 1-byte length, 2-byte entries. */
static bool ch_ext_versions(struct rd *ext, struct clienthello *ch, struct ch_full *f)
{
    struct rd list;
    uint16_t *v;
    size_t n;

    if (!rd_vec8(ext, &list) || ext->len != 0 || !ch_full_list(f, &list, &v, &n))
        return false;
    f->ja4.versions = v;
    f->ja4.nversions = n;
    ch_keep(v, n, ch->versions, CH_KEEP_VERSIONS, &ch->nversions);
    return true;
}

/* supported_groups: 2-byte length, 2-byte entries; only the kept ones stay. */
static bool ch_ext_groups(struct rd *ext, struct clienthello *ch)
{
    struct rd list;
    uint16_t g;

    if (!rd_vec16(ext, &list) || ext->len != 0 || list.len == 0 || list.len % 2 != 0)
        return false;
    while (rd_u16(&list, &g))
        ch_keep(&g, 1, ch->groups, CH_KEEP_GROUPS, &ch->ngroups);
    return true;
}

/* signature_algorithms: 2-byte length, 2-byte entries; JA4 hashes them all. */
static bool ch_ext_sigalgs(struct rd *ext, struct ch_full *f)
{
    struct rd list;
    uint16_t *v;

    if (!rd_vec16(ext, &list) || ext->len != 0 || !ch_full_list(f, &list, &v, &f->ja4.nsigalgs))
        return false;
    f->ja4.sigalgs = v;
    return true;
}

/* Parses the body of one extension we look into; others are skipped. */
static bool ch_extension(uint16_t type, struct rd *ext, struct clienthello *ch, struct ch_full *f)
{
    switch (type) {
    case EXT_SERVER_NAME:
        return ch_ext_sni(ext, ch);
    case EXT_ALPN:
        return ch_ext_alpn(ext, ch, f);
    case EXT_SUPPORTED_VERSIONS:
        return ch_ext_versions(ext, ch, f);
    case EXT_SUPPORTED_GROUPS:
        return ch_ext_groups(ext, ch);
    case EXT_SIGNATURE_ALGS:
        return ch_ext_sigalgs(ext, f);
    case EXT_ECH:
        ch->has_ech = true;
        return true;
    default:
        return true;
    }
}

/*
 * The extensions block, which must be the rest of the body exactly. A first
 * walk checks the framing and lists the types (contiguous in the pool for
 * JA4); any type twice is INVALID (RFC 8446 4.2): two server_name extensions
 * would let the gateway and the server disagree on the name. A second walk
 * reads the bodies we look into.
 */
static bool ch_extensions(struct rd *body, struct clienthello *ch, struct ch_full *f)
{
    uint8_t seen[65536 / 8] = {0}; /* bit per extension type */
    struct rd block, walk, ext;
    uint16_t type;

    if (!rd_vec16(body, &block) || body->len != 0)
        return false;
    f->ja4.extensions = f->pool + f->used;
    for (walk = block; walk.len > 0; f->ja4.nextensions++) {
        if (!rd_u16(&walk, &type) || !rd_vec16(&walk, NULL) || f->used == CH_POOL)
            return false;
        if (seen[type / 8] & (1u << (type % 8)))
            return false;
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        f->pool[f->used++] = type;
    }
    while (block.len > 0) {
        if (!rd_u16(&block, &type) || !rd_vec16(&block, &ext) || !ch_extension(type, &ext, ch, f))
            return false;
    }
    return true;
}

/*
 * Parses a whole ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2) into
 * *ch, which the caller zeroed, and the full lists into *f. False when
 * malformed.
 */
static bool ch_body(struct rd *body, struct clienthello *ch, struct ch_full *f)
{
    struct rd sid, suites, comp;

    if (!rd_u16(body, &ch->legacy_version) || ch->legacy_version >> 8 != 3)
        return false;
    f->ja4.legacy_version = ch->legacy_version;
    if (!rd_take(body, TLS_RANDOM_LEN, NULL))
        return false;
    if (!rd_vec8(body, &sid) || sid.len > TLS_SESSION_ID_MAX)
        return false;
    if (!rd_vec16(body, &suites) || !ch_full_list(f, &suites, &f->ja4.ciphers, &f->ja4.nciphers))
        return false;
    ch_keep(f->ja4.ciphers, f->ja4.nciphers, ch->ciphers, CH_KEEP_CIPHERS, &ch->nciphers);
    if (!rd_vec8(body, &comp) || comp.len == 0)
        return false;
    if (body->len == 0)
        return true; /* no extensions: allowed before TLS 1.3 */
    return ch_extensions(body, ch, f);
}

/*
 * Parses the complete message found by ch_scan(), reassembling if needed,
 * and fingerprints it while the full lists are at hand.
 */
static enum ch_result ch_parse_message(const uint8_t *buf, const struct ch_scan *sc,
                                       struct clienthello *out, bool ja4)
{
    uint8_t msg[CLIENTHELLO_MAX_MSG]; /* only used when the hello spans records */
    struct rd body = {.p = buf + TLS_RECORD_HEADER + TLS_HS_HEADER, .len = sc->msg_len};
    struct ch_full full;

    if (sc->nrecords > 1) {
        ch_reassemble(buf, sc, msg);
        body.p = msg;
    }
    memset(out, 0, sizeof(*out));
    full.used = 0;
    memset(&full.ja4, 0, sizeof(full.ja4));
    out->record_version = sc->record_version;
    out->msg_len = (uint32_t)sc->msg_len;
    out->wire_len = (uint32_t)sc->wire_len;
    out->nrecords = (uint16_t)sc->nrecords;
    if (!ch_body(&body, out, &full))
        return CH_INVALID;
    if (ja4)
        (void)ja4_fingerprint(&full.ja4, out->ja4); /* "" on failure: logged as null */
    return CH_DONE;
}

enum ch_result clienthello_parse_ja4(const uint8_t *buf, size_t len, struct clienthello *out,
                                     bool ja4)
{
    struct ch_scan sc = {0};
    enum ch_result r = ch_scan(buf, len, &sc);

    if (r != CH_DONE)
        return r;
    return ch_parse_message(buf, &sc, out, ja4);
}

enum ch_result clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out)
{
    return clienthello_parse_ja4(buf, len, out, true);
}

const char *clienthello_result_str(enum ch_result r)
{
    switch (r) {
    case CH_NEED_MORE:
        return "need-more";
    case CH_NOT_TLS:
        return "not-tls";
    case CH_INVALID:
        return "invalid";
    case CH_TOO_LARGE:
        return "too-large";
    case CH_DONE:
        return "done";
    }
    return "unknown";
}

/* Writes the name of one protocol version into name. */
static void ch_version_name(uint16_t v, char *name, size_t len)
{
    static const char *const names[] = {"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};

    if (v >= 0x0300 && v <= 0x0304)
        snprintf(name, len, "%s", names[v - 0x0300]);
    else
        snprintf(name, len, "0x%04x", v);
}

/* Writes a cipher suite as JA4 does: 4 lower-case hex digits. */
static void ch_cipher_name(uint16_t v, char *name, size_t len)
{
    snprintf(name, len, "%04x", v);
}

/* Writes a group's name, or its 4 hex digits when it has none we know. */
static void ch_group_name(uint16_t v, char *name, size_t len)
{
    const char *known = clienthello_group_name(v);

    if (known != NULL)
        snprintf(name, len, "%s", known);
    else
        snprintf(name, len, "%04x", v);
}

/*
 * Writes v[0..n) into buf as a comma list of names (GREASE skipped),
 * stopping before the first entry that does not fit whole. Returns buf.
 */
static char *ch_list_str(const uint16_t *v, size_t n, void (*name_of)(uint16_t, char *, size_t),
                         char *buf, size_t len)
{
    size_t at = 0;
    char name[32];

    if (len == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t nl;

        if (clienthello_is_grease(v[i]))
            continue;
        name_of(v[i], name, sizeof(name));
        nl = strlen(name);
        if (at + (at > 0) + nl >= len)
            break;
        if (at > 0)
            buf[at++] = ',';
        memcpy(buf + at, name, nl + 1);
        at += nl;
    }
    return buf;
}

static size_t ch_kept(size_t n, size_t cap)
{
    return n < cap ? n : cap;
}

char *clienthello_versions_str(const struct clienthello *ch, char *buf, size_t len)
{
    if (ch->nversions == 0)
        return ch_list_str(&ch->legacy_version, 1, ch_version_name, buf, len);
    return ch_list_str(ch->versions, ch_kept(ch->nversions, CH_KEEP_VERSIONS), ch_version_name, buf,
                       len);
}

char *clienthello_ciphers_str(const struct clienthello *ch, char *buf, size_t len)
{
    return ch_list_str(ch->ciphers, ch_kept(ch->nciphers, CH_KEEP_CIPHERS), ch_cipher_name, buf,
                       len);
}

char *clienthello_groups_str(const struct clienthello *ch, char *buf, size_t len)
{
    return ch_list_str(ch->groups, ch_kept(ch->ngroups, CH_KEEP_GROUPS), ch_group_name, buf, len);
}

const char *clienthello_group_name(uint16_t group)
{
    /* IANA "TLS Supported Groups"; the spelling OpenSSL's -groups accepts. */
    static const struct {
        uint16_t id;
        const char *name;
    } groups[] = {
        {0x0017, "secp256r1"},
        {0x0018, "secp384r1"},
        {0x0019, "secp521r1"},
        {0x001a, "brainpoolP256r1"},
        {0x001b, "brainpoolP384r1"},
        {0x001c, "brainpoolP512r1"},
        {0x001d, "x25519"},
        {0x001e, "x448"},
        {0x001f, "brainpoolP256r1tls13"},
        {0x0020, "brainpoolP384r1tls13"},
        {0x0021, "brainpoolP512r1tls13"},
        {0x0100, "ffdhe2048"},
        {0x0101, "ffdhe3072"},
        {0x0102, "ffdhe4096"},
        {0x0103, "ffdhe6144"},
        {0x0104, "ffdhe8192"},
        {0x11eb, "SecP256r1MLKEM768"},
        {0x11ec, "X25519MLKEM768"},
        {0x11ed, "SecP384r1MLKEM1024"},
        {0x6399, "X25519Kyber768Draft00"},
    };

    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (groups[i].id == group)
            return groups[i].name;
    return NULL;
}
