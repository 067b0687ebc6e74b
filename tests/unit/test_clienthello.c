/*
 * ClientHello parser tests. Three sources of hellos:
 *  - real ones captured from openssl s_client and curl (data/hellos/NAME.hex);
 *  - hand-built ones (struct bb below) for sizes and shapes clients rarely send;
 *  - broken ones: each built from a valid one by one change.
 * Every valid hello also goes through check_valid_everywhere(): all prefixes,
 * byte-by-byte arrival, every two-record split and one-byte records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clienthello.h"

#define REC_VERSION 0x0301 /* what real clients put in the first record header */

/* ---------- buffers ---------- */

/* Owned bytes. */
struct blob {
    uint8_t *p; /* malloc'd, NULL when empty */
    size_t n;   /* bytes in p */
};

static void blob_free(struct blob *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

/*
 * Parses a heap copy of exactly n bytes so AddressSanitizer catches any read
 * past what was "received".
 */
static enum ch_result parse_exact(const uint8_t *p, size_t n, struct clienthello *ch)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    enum ch_result r;

    assert_non_null(copy);
    if (n > 0)
        memcpy(copy, p, n);
    r = clienthello_parse(copy, n, ch);
    free(copy);
    return r;
}

/* ---------- builder: bytes with length fields filled in when closed ---------- */

#define BB_DEPTH  8
#define BB_FIELDS 256

/* A growing byte string that remembers where its length fields are. */
struct bb {
    uint8_t *p;               /* bytes built so far (malloc'd) */
    size_t len, cap;          /* used and allocated */
    size_t open[BB_DEPTH];    /* offset of each open length field */
    int openw[BB_DEPTH];      /* its width in bytes */
    int depth;                /* open length fields */
    size_t fields[BB_FIELDS]; /* offset of every closed length field */
    int fieldw[BB_FIELDS];    /* its width */
    size_t nfields;           /* closed length fields recorded */
};

/* Makes room for n more bytes. */
static void bb_need(struct bb *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    while (b->len + n > b->cap)
        b->cap = b->cap ? b->cap * 2 : 256;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
}

static void bb_u8(struct bb *b, unsigned v)
{
    bb_need(b, 1);
    b->p[b->len++] = (uint8_t)v;
}

static void bb_u16(struct bb *b, unsigned v)
{
    bb_u8(b, v >> 8);
    bb_u8(b, v & 0xff);
}

static void bb_put(struct bb *b, const void *p, size_t n)
{
    bb_need(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bb_fill(struct bb *b, size_t n, uint8_t v)
{
    bb_need(b, n);
    memset(b->p + b->len, v, n);
    b->len += n;
}

/* Opens a length field of w bytes; bb_close() fills it with what follows. */
static void bb_open(struct bb *b, int w)
{
    assert_true(b->depth < BB_DEPTH);
    b->open[b->depth] = b->len;
    b->openw[b->depth++] = w;
    bb_fill(b, (size_t)w, 0);
}

/* Closes the innermost length field and records where it is. */
static void bb_close(struct bb *b)
{
    size_t at, n;
    int w;

    assert_true(b->depth > 0);
    at = b->open[--b->depth];
    w = b->openw[b->depth];
    n = b->len - at - (size_t)w;
    for (int i = w - 1; i >= 0; i--, n >>= 8)
        b->p[at + (size_t)i] = (uint8_t)(n & 0xff);
    assert_int_equal(n, 0);
    assert_true(b->nfields < BB_FIELDS);
    b->fields[b->nfields] = at;
    b->fieldw[b->nfields++] = w;
}

/* Hands the bytes over as a blob; b is left empty. */
static struct blob bb_take(struct bb *b)
{
    struct blob r = {.p = b->p, .n = b->len};

    assert_int_equal(b->depth, 0);
    memset(b, 0, sizeof(*b));
    return r;
}

/* ---------- hello pieces ---------- */

static const uint16_t std_ciphers[] = {0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f};
static const uint16_t std_versions[] = {0x0304, 0x0303};
static const uint16_t std_groups[] = {0x001d, 0x0017, 0x0018};
static const uint16_t std_sigalgs[] = {0x0403, 0x0804, 0x0401};

/* Handshake header and body up to the open extensions block. */
static void hello_begin_ciphers(struct bb *b, const uint16_t *ciphers, size_t n)
{
    bb_u8(b, 1);   /* client_hello */
    bb_open(b, 3); /* handshake length */
    bb_u16(b, 0x0303);
    bb_fill(b, 32, 0xa5); /* random */
    bb_open(b, 1);
    bb_fill(b, 32, 0x5a); /* legacy_session_id */
    bb_close(b);
    bb_open(b, 2);
    for (size_t i = 0; i < n; i++)
        bb_u16(b, ciphers[i]);
    bb_close(b);
    bb_open(b, 1);
    bb_u8(b, 0); /* null compression */
    bb_close(b);
    bb_open(b, 2); /* extensions */
}

static void hello_begin(struct bb *b)
{
    hello_begin_ciphers(b, std_ciphers, sizeof(std_ciphers) / 2);
}

/* Closes the extensions block and the handshake message. */
static void hello_end(struct bb *b)
{
    bb_close(b);
    bb_close(b);
}

static void ext_begin(struct bb *b, unsigned type)
{
    bb_u16(b, type);
    bb_open(b, 2);
}

/* One server_name list entry. */
static void sni_entry(struct bb *b, unsigned type, const void *name, size_t n)
{
    bb_u8(b, type);
    bb_open(b, 2);
    bb_put(b, name, n);
    bb_close(b);
}

/* server_name with one host_name of n bytes. */
static void ext_sni_n(struct bb *b, const void *name, size_t n)
{
    ext_begin(b, 0);
    bb_open(b, 2);
    sni_entry(b, 0, name, n);
    bb_close(b);
    bb_close(b);
}

static void ext_sni(struct bb *b, const char *name)
{
    ext_sni_n(b, name, strlen(name));
}

/* ALPN from a comma-separated list ("h2,http/1.1"). */
static void ext_alpn(struct bb *b, const char *csv)
{
    ext_begin(b, 16);
    bb_open(b, 2);
    while (*csv) {
        size_t n = strcspn(csv, ",");

        bb_open(b, 1);
        bb_put(b, csv, n);
        bb_close(b);
        csv += n + (csv[n] == ',');
    }
    bb_close(b);
    bb_close(b);
}

/* A 16-bit list extension; w is the list length width (1 for supported_versions). */
static void ext_u16s(struct bb *b, unsigned type, int w, const uint16_t *v, size_t n)
{
    ext_begin(b, type);
    bb_open(b, w);
    for (size_t i = 0; i < n; i++)
        bb_u16(b, v[i]);
    bb_close(b);
    bb_close(b);
}

/* An extension of n bytes we do not look into. */
static void ext_opaque(struct bb *b, unsigned type, size_t n)
{
    ext_begin(b, type);
    bb_fill(b, n, 0);
    bb_close(b);
}

/*
 * key_share with X25519 and, when pq, the X25519MLKEM768 (0x11ec) and Kyber
 * draft (0x6399) shares of 1216 bytes each, as a hybrid client offering both
 * sends. Its inner lengths are written by hand: the parser does not look
 * inside key_share, so they are not "length fields" for the mutation tests.
 */
static void ext_key_share(struct bb *b, bool pq)
{
    size_t pq_len = 1216, shares = 4 + 32 + (pq ? 2 * (4 + pq_len) : 0);

    ext_begin(b, 0x33);
    bb_u16(b, (unsigned)shares);
    if (pq) {
        bb_u16(b, 0x11ec);
        bb_u16(b, (unsigned)pq_len);
        bb_fill(b, pq_len, 0x42);
        bb_u16(b, 0x6399);
        bb_u16(b, (unsigned)pq_len);
        bb_fill(b, pq_len, 0x43);
    }
    bb_u16(b, 0x001d);
    bb_u16(b, 32);
    bb_fill(b, 32, 0x44);
    bb_close(b);
}

/* The extensions of a typical TLS 1.3 hello, SNI first when given. */
static void std_extensions(struct bb *b, const char *sni, bool pq)
{
    if (sni != NULL)
        ext_sni(b, sni);
    ext_alpn(b, "h2,http/1.1");
    ext_u16s(b, 0x2b, 1, std_versions, 2);
    ext_u16s(b, 0x0a, 2, std_groups, 3);
    ext_u16s(b, 0x0d, 2, std_sigalgs, 3);
    ext_key_share(b, pq);
}

/* A complete typical handshake message (no record header). */
static struct blob std_msg(struct bb *b, const char *sni, bool pq)
{
    hello_begin(b);
    std_extensions(b, sni, pq);
    hello_end(b);
    return bb_take(b);
}

/* ---------- records ---------- */

/*
 * Puts msg into records: cut[] are the payload sizes of the records, the last
 * one repeating until msg is used up.
 */
static struct blob records(const uint8_t *msg, size_t n, const size_t *cut, size_t ncut)
{
    struct bb b = {0};
    size_t off = 0;

    for (size_t i = 0; off < n; i++) {
        size_t len = cut[i < ncut ? i : ncut - 1];

        if (len > n - off)
            len = n - off;
        bb_u8(&b, 22);
        bb_u16(&b, REC_VERSION);
        bb_u16(&b, (unsigned)len);
        bb_put(&b, msg + off, len);
        off += len;
    }
    return bb_take(&b);
}

/* msg in one record (or 16 KiB records if larger). */
static struct blob one_record(const struct blob *msg)
{
    size_t cut = 16384;

    return records(msg->p, msg->n, &cut, 1);
}

/* The handshake message carried by the records of wire (test's own walk). */
static struct blob msg_of(const uint8_t *wire, size_t n)
{
    struct bb b = {0};
    size_t off = 0;

    while (off + 5 <= n &&
           (b.len < 4 || b.len < 4 + ((size_t)b.p[1] << 16 | b.p[2] << 8 | b.p[3]))) {
        size_t len = (size_t)wire[off + 3] << 8 | wire[off + 4];

        assert_true(off + 5 + len <= n);
        bb_put(&b, wire + off + 5, len);
        off += 5 + len;
    }
    return bb_take(&b);
}

/* ---------- comparisons ---------- */

/*
 * A kept list (its first cap entries stored, count of all) holds want[0..n)
 * minus GREASE.
 */
static void assert_kept(const uint16_t *kept, size_t count, size_t cap, const uint16_t *want,
                        size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (clienthello_is_grease(want[i]))
            continue;
        if (k < cap && k < count)
            assert_int_equal(kept[k], want[i]);
        k++;
    }
    assert_int_equal(count, k);
}

/*
 * Every parsed field equal, except where on the wire the hello was. The
 * parser zeroes the struct first, so memcmp covers every byte, padding and
 * string tails included.
 */
static void assert_same_hello(const struct clienthello *a, const struct clienthello *b)
{
    struct clienthello x = *a, y = *b;

    assert_string_equal(a->sni, b->sni);
    assert_string_equal(a->ja4, b->ja4);
    x.wire_len = y.wire_len = 0;
    x.nrecords = y.nrecords = 0;
    assert_memory_equal(&x, &y, sizeof(x));
}

/* ---------- the properties every valid hello must have ---------- */

/* Every prefix is NEED_MORE; the full buffer (bytes arriving one by one) is DONE. */
static void check_prefixes(const uint8_t *wire, size_t n, const struct clienthello *ref)
{
    struct clienthello ch;

    for (size_t k = 0; k < n; k++) {
        enum ch_result r = parse_exact(wire, k, &ch);

        if (r != CH_NEED_MORE)
            fail_msg("prefix %zu of %zu: %s", k, n, clienthello_result_str(r));
    }
    assert_int_equal(parse_exact(wire, n, &ch), CH_DONE);
    assert_same_hello(&ch, ref);
}

/* Re-recorded as two records at every offset of the message: same fields. */
static void check_two_records(const struct blob *msg, const struct clienthello *ref)
{
    struct clienthello ch;

    for (size_t at = 1; at < msg->n; at++) {
        size_t cut[2] = {at, msg->n - at};
        struct blob w = records(msg->p, msg->n, cut, 2);
        enum ch_result r = parse_exact(w.p, w.n, &ch);

        if (r != CH_DONE)
            fail_msg("split at %zu of %zu: %s", at, msg->n, clienthello_result_str(r));
        assert_same_hello(&ch, ref);
        assert_int_equal(ch.nrecords, 2);
        assert_int_equal(ch.wire_len, msg->n + 10);
        blob_free(&w);
    }
}

/* One-byte records, also arriving byte by byte. */
static void check_one_byte_records(const struct blob *msg, const struct clienthello *ref)
{
    size_t one = 1;
    struct blob w = records(msg->p, msg->n, &one, 1);
    struct clienthello ch;

    assert_true(w.n <= CLIENTHELLO_MAX_WIRE);
    check_prefixes(w.p, w.n, ref);
    assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
    assert_int_equal(ch.nrecords, msg->n);
    assert_int_equal(ch.wire_len, w.n);
    blob_free(&w);
}

/* Records of assorted sizes (small primes, to land on every kind of boundary). */
static void check_assorted_records(const struct blob *msg, const struct clienthello *ref)
{
    static const size_t sizes[][4] = {{2, 3}, {3, 1, 4}, {7}, {13, 2}, {38, 1, 100}, {4, 5000}};
    struct clienthello ch;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = 0;

        while (n < 4 && sizes[i][n] != 0)
            n++;
        struct blob w = records(msg->p, msg->n, sizes[i], n);

        assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
        assert_same_hello(&ch, ref);
        blob_free(&w);
    }
}

/* Bytes after the hello (the next record, or anything) are not looked at. */
static void check_followed_by(const uint8_t *wire, size_t n, const struct clienthello *ref)
{
    static const uint8_t next[] = {0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 'G', 'E', 'T'};
    struct clienthello ch;
    uint8_t *w = malloc(n + sizeof(next));

    assert_non_null(w);
    memcpy(w, wire, n);
    for (size_t k = 1; k <= sizeof(next); k++) {
        memcpy(w + n, next, k);
        assert_int_equal(parse_exact(w, n + k, &ch), CH_DONE);
        assert_same_hello(&ch, ref);
        assert_int_equal(ch.wire_len, ref->wire_len);
    }
    free(w);
}

/*
 * Runs all the properties over a valid hello as received (wire, any records).
 * Returns its parse in *out.
 */
static void check_valid_everywhere(const uint8_t *wire, size_t n, struct clienthello *out)
{
    struct blob msg = msg_of(wire, n);

    assert_int_equal(parse_exact(wire, n, out), CH_DONE);
    assert_int_equal(out->wire_len, n);
    assert_int_equal(out->msg_len + 4, msg.n);
    check_prefixes(wire, n, out);
    check_two_records(&msg, out);
    check_one_byte_records(&msg, out);
    check_assorted_records(&msg, out);
    check_followed_by(wire, n, out);
    blob_free(&msg);
}

/* Parses msg put in one record and returns the verdict. */
static enum ch_result parse_msg(const struct blob *msg, struct clienthello *ch)
{
    struct blob w = one_record(msg);
    enum ch_result r = parse_exact(w.p, w.n, ch);

    blob_free(&w);
    return r;
}

/* ---------- captured hellos ---------- */

/* Reads a data/hellos/NAME.hex file: '#' lines are comments, the rest hex. */
static struct blob load_hex(const char *name)
{
    char path[512], line[512];
    struct bb b = {0};
    FILE *f;

    snprintf(path, sizeof(path), "%s/hellos/%s.hex", TEST_DATA_DIR, name);
    f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned v;

        if (line[0] == '#')
            continue;
        for (char *p = line; sscanf(p, "%2x", &v) == 1; p += 2)
            bb_u8(&b, v);
    }
    fclose(f);
    return bb_take(&b);
}

/* What a captured hello must parse to. */
struct captured {
    const char *file;      /* data/hellos/FILE.hex */
    const char *sni;       /* NULL = none sent */
    const char *alpn;      /* joined list */
    size_t nalpn;          /* ALPN protocols offered */
    size_t nciphers;       /* cipher suites offered */
    uint16_t first_cipher; /* ciphers[0] */
    const char *versions;  /* clienthello_versions_str() */
    const char *groups;    /* clienthello_groups_str() */
    size_t wire_len;       /* the file's size */
    const char *ja4;       /* JA4, as computed by hand and as published for these clients */
};

#define ALL_VERSIONS   "TLSv1.3,TLSv1.2,TLSv1.1,TLSv1"
#define OPENSSL_GROUPS "x25519,secp256r1,x448,secp521r1,secp384r1"
#define FFDHE_GROUPS   "ffdhe2048,ffdhe3072,ffdhe4096,ffdhe6144,ffdhe8192"

/* One row per capture reads better than one value per line. */
/* clang-format off */
static const struct captured captured[] = {
    {.file = "openssl30_tls13_sni", .sni = "a.lab.test", .alpn = "", .nalpn = 0,
     .nciphers = 31, .first_cipher = 0x1302, .versions = ALL_VERSIONS,
     .groups = OPENSSL_GROUPS "," FFDHE_GROUPS, .wire_len = 316,
     .ja4 = "t13d311000_e8f1e7e78f70_1f22a2ca17c4"},
    {.file = "openssl30_tls12_sni", .sni = "a.lab.test", .alpn = "", .nalpn = 0,
     .nciphers = 28, .first_cipher = 0xc02c, .versions = "TLSv1.2",
     .groups = OPENSSL_GROUPS, .wire_len = 207,
     .ja4 = "t12d280700_d943125447b4_e7e480e5a997"},
    {.file = "openssl30_alpn_h2_http11", .sni = "a.lab.test", .alpn = "h2,http/1.1", .nalpn = 2,
     .nciphers = 31, .first_cipher = 0x1302, .versions = ALL_VERSIONS,
     .groups = OPENSSL_GROUPS "," FFDHE_GROUPS, .wire_len = 334,
     .ja4 = "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4"},
    {.file = "openssl30_nosni", .sni = NULL, .alpn = "", .nalpn = 0,
     .nciphers = 31, .first_cipher = 0x1302, .versions = ALL_VERSIONS,
     .groups = OPENSSL_GROUPS "," FFDHE_GROUPS, .wire_len = 297,
     .ja4 = "t13i310900_e8f1e7e78f70_1f22a2ca17c4"},
    /* curl adds post_handshake_auth (0x31) and pads (0x15) the handshake to 512 bytes */
    {.file = "curl7_88_alpn", .sni = "b.lab.test", .alpn = "h2,http/1.1", .nalpn = 2,
     .nciphers = 31, .first_cipher = 0x1302, .versions = ALL_VERSIONS,
     .groups = OPENSSL_GROUPS "," FFDHE_GROUPS, .wire_len = 517,
     .ja4 = "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6"},
};
/* clang-format on */

#define NCAPTURED (sizeof(captured) / sizeof(captured[0]))

static void assert_captured(const struct captured *c, const struct clienthello *ch)
{
    char versions[64], groups[256];

    assert_int_equal(ch->record_version, 0x0301);
    assert_int_equal(ch->legacy_version, 0x0303);
    assert_int_equal(ch->nrecords, 1);
    assert_int_equal(ch->wire_len, c->wire_len);
    assert_int_equal(ch->msg_len, c->wire_len - 9);
    assert_int_equal(ch->has_sni, c->sni != NULL);
    assert_string_equal(ch->sni, c->sni ? c->sni : "");
    assert_string_equal(ch->alpn, c->alpn);
    assert_int_equal(ch->nalpn, c->nalpn);
    assert_int_equal(ch->nciphers, c->nciphers);
    assert_int_equal(ch->ciphers[0], c->first_cipher);
    assert_string_equal(clienthello_versions_str(ch, versions, sizeof(versions)), c->versions);
    assert_string_equal(clienthello_groups_str(ch, groups, sizeof(groups)), c->groups);
    assert_false(ch->has_ech);
    assert_string_equal(ch->ja4, c->ja4);
}

/* Real clients' hellos: every field, then every way of arriving. */
static void test_captured(void **state)
{
    for (size_t i = 0; i < NCAPTURED; i++) {
        struct blob w = load_hex(captured[i].file);
        struct clienthello ch;

        assert_int_equal(w.n, captured[i].wire_len);
        check_valid_everywhere(w.p, w.n, &ch);
        assert_captured(&captured[i], &ch);
        blob_free(&w);
    }
}

/* ---------- hand-built valid hellos ---------- */

/* A typical built hello: fields as built, and every way of arriving. */
static void test_built_typical(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "www.lab.test", false);
    struct blob w = one_record(&msg);
    struct clienthello ch;
    char versions[64];

    check_valid_everywhere(w.p, w.n, &ch);
    assert_string_equal(ch.sni, "www.lab.test");
    assert_string_equal(ch.alpn, "h2,http/1.1");
    assert_kept(ch.ciphers, ch.nciphers, CH_KEEP_CIPHERS, std_ciphers, 6);
    assert_kept(ch.versions, ch.nversions, CH_KEEP_VERSIONS, std_versions, 2);
    assert_kept(ch.groups, ch.ngroups, CH_KEEP_GROUPS, std_groups, 3);
    assert_string_equal(clienthello_versions_str(&ch, versions, sizeof(versions)),
                        "TLSv1.3,TLSv1.2");
    /* by hand: sha256("009f,1301,1302,1303,c02c,c030") and
     * sha256("000a,000d,002b,0033_0403,0804,0401") */
    assert_string_equal(ch.ja4, "t13d0606h2_50064deaa0fd_5d4d534e3685");
    blob_free(&w);
    blob_free(&msg);
}

/* Post-quantum key shares: a ~2.6 KiB hello, across TCP segments and records. */
static void test_large_pq_hello(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "pq.lab.test", true);
    struct blob w = one_record(&msg);
    struct clienthello ch;

    assert_true(msg.n > 2048);
    check_valid_everywhere(w.p, w.n, &ch);
    assert_string_equal(ch.sni, "pq.lab.test");
    assert_int_equal(ch.msg_len, msg.n - 4);
    blob_free(&w);
    blob_free(&msg);
}

/* Builds a hello whose body is exactly body_len bytes, using a padding extension. */
static struct blob padded_msg(size_t body_len)
{
    struct bb b = {0};
    struct blob probe = std_msg(&b, "big.lab.test", false);
    size_t base = probe.n - 4 + 4; /* body plus the padding extension header */

    assert_true(body_len >= base);
    blob_free(&probe);
    hello_begin(&b);
    std_extensions(&b, "big.lab.test", false);
    ext_opaque(&b, 0x15, body_len - base);
    hello_end(&b);
    return bb_take(&b);
}

/* A 20 KiB hello needs two records; a 32 KiB one is the most accepted. */
static void test_hello_larger_than_a_record(void **state)
{
    struct blob msg = padded_msg(20000);
    struct blob w = one_record(&msg);
    struct clienthello ch;

    assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
    assert_int_equal(ch.nrecords, 2);
    assert_int_equal(ch.msg_len, 20000);
    assert_string_equal(ch.sni, "big.lab.test");
    check_prefixes(w.p, w.n, &ch);
    blob_free(&w);
    blob_free(&msg);

    msg = padded_msg(CLIENTHELLO_MAX_MSG);
    w = one_record(&msg);
    assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
    assert_int_equal(ch.msg_len, CLIENTHELLO_MAX_MSG);
    assert_int_equal(ch.nrecords, 3);
    blob_free(&w);
    blob_free(&msg);
}

/* Split in two at the worst places: inside the handshake header, at its end. */
static void test_split_two_records(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "a.lab.test", false);
    struct clienthello ref, ch;

    assert_int_equal(parse_msg(&msg, &ref), CH_DONE);
    for (size_t at = 1; at <= 5; at++) {
        size_t cut[2] = {at, msg.n};
        struct blob w = records(msg.p, msg.n, cut, 2);

        assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
        assert_same_hello(&ch, &ref);
        assert_int_equal(ch.nrecords, 2);
        blob_free(&w);
    }
    blob_free(&msg);
}

/* One-byte records: every record header walked, still DONE only at the end. */
static void test_split_one_byte_records(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "a.lab.test", true);
    struct clienthello ref;

    assert_int_equal(parse_msg(&msg, &ref), CH_DONE);
    check_one_byte_records(&msg, &ref);
    blob_free(&msg);
}

/* A hello needing more than CLIENTHELLO_MAX_WIRE bytes of records is refused. */
static void test_too_many_record_bytes(void **state)
{
    struct blob msg = padded_msg(8000);
    size_t one = 1;
    struct blob w = records(msg.p, msg.n, &one, 1);
    struct clienthello ch;

    assert_true(w.n > CLIENTHELLO_MAX_WIRE);
    assert_int_equal(parse_exact(w.p, CLIENTHELLO_MAX_WIRE, &ch), CH_NEED_MORE);
    /* decided from the header of the record that would end past the limit */
    assert_int_equal(parse_exact(w.p, CLIENTHELLO_MAX_WIRE + 5, &ch), CH_TOO_LARGE);
    blob_free(&w);
    blob_free(&msg);
}

/* No server_name: DONE, has_sni false, everything else still read. */
static void test_missing_sni(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, NULL, false);
    struct blob w = one_record(&msg);
    struct clienthello ch;

    check_valid_everywhere(w.p, w.n, &ch);
    assert_false(ch.has_sni);
    assert_string_equal(ch.sni, "");
    assert_int_equal(ch.nalpn, 2);
    blob_free(&w);
    blob_free(&msg);
}

/* Parses a hello whose only server_name host_name is name[0..n). */
static enum ch_result parse_sni(const void *name, size_t n, struct clienthello *ch)
{
    struct bb b = {0};
    struct blob msg;
    enum ch_result r;

    hello_begin(&b);
    ext_sni_n(&b, name, n);
    hello_end(&b);
    msg = bb_take(&b);
    r = parse_msg(&msg, ch);
    blob_free(&msg);
    return r;
}

static enum ch_result parse_sni_str(const char *name, struct clienthello *ch)
{
    return parse_sni(name, strlen(name), ch);
}

/* Upper case is lowered and one trailing dot dropped. */
static void test_sni_normalised(void **state)
{
    struct clienthello ch;

    assert_int_equal(parse_sni_str("WWW.Lab.TEST.", &ch), CH_DONE);
    assert_true(ch.has_sni);
    assert_string_equal(ch.sni, "www.lab.test");
    assert_int_equal(parse_sni_str("_acme-1.x9.lab.test", &ch), CH_DONE);
    assert_string_equal(ch.sni, "_acme-1.x9.lab.test");
    assert_int_equal(parse_sni_str("localhost", &ch), CH_DONE);
    assert_string_equal(ch.sni, "localhost");
    assert_int_equal(parse_sni_str("127.0.0.1", &ch), CH_DONE); /* not allowed, but harmless */
}

/* Names that are not hostnames are refused, not routed on. */
static void test_sni_bad_names(void **state)
{
    static const char *const bad[] = {
        "",
        ".",
        "..",
        "a..",
        ".a",
        "a..b",
        "a b",
        "a/b",
        "a:443",
        "a\\b",
        "*.lab.test",
        "a.lab.test\r\n",
        "caf\xc3\xa9.test",
        "a%2e",
    };
    struct clienthello ch;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_sni_str(bad[i], &ch) != CH_INVALID)
            fail_msg("SNI \"%s\" accepted", bad[i]);
    assert_int_equal(parse_sni("a\0b", 3, &ch), CH_INVALID);
}

/* 255 characters is the limit, with or without a trailing dot. */
static void test_sni_length_limit(void **state)
{
    char name[300];
    struct clienthello ch;

    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < sizeof(name); i += 64)
        name[i] = '.';
    name[254] = 'z';
    assert_int_equal(parse_sni(name, 255, &ch), CH_DONE);
    assert_int_equal(strlen(ch.sni), 255);
    name[255] = '.';
    assert_int_equal(parse_sni(name, 256, &ch), CH_DONE);
    assert_int_equal(strlen(ch.sni), 255);
    name[255] = 'a';
    assert_int_equal(parse_sni(name, 256, &ch), CH_INVALID);
    assert_int_equal(parse_sni(name, 290, &ch), CH_INVALID);
}

/* Builds a hello with one server_name extension made of the given entries. */
static enum ch_result parse_sni_entries(const uint8_t *types, const char *const *names, size_t n,
                                        struct clienthello *ch)
{
    struct bb b = {0};
    struct blob msg;
    enum ch_result r;

    hello_begin(&b);
    ext_begin(&b, 0);
    bb_open(&b, 2);
    for (size_t i = 0; i < n; i++)
        sni_entry(&b, types[i], names[i], strlen(names[i]));
    bb_close(&b);
    bb_close(&b);
    ext_alpn(&b, "http/1.1");
    hello_end(&b);
    msg = bb_take(&b);
    r = parse_msg(&msg, ch);
    blob_free(&msg);
    return r;
}

/* Only host_name entries count; other types are skipped. */
static void test_sni_other_name_type(void **state)
{
    static const uint8_t other[] = {1}, mixed[] = {7, 0, 1};
    static const char *const n1[] = {"a.lab.test"}, *const n3[] = {"x", "b.lab.test", "y y"};
    struct clienthello ch;

    assert_int_equal(parse_sni_entries(other, n1, 1, &ch), CH_DONE);
    assert_false(ch.has_sni);
    assert_string_equal(ch.alpn, "http/1.1");
    assert_int_equal(parse_sni_entries(mixed, n3, 3, &ch), CH_DONE);
    assert_true(ch.has_sni);
    assert_string_equal(ch.sni, "b.lab.test");
}

/* Two host_names in one extension: which would the server use? Refused. */
static void test_sni_two_host_names(void **state)
{
    static const uint8_t types[] = {0, 0};
    static const char *const names[] = {"a.lab.test", "b.lab.test"};
    static const char *const same[] = {"a.lab.test", "a.lab.test"};
    struct clienthello ch;

    assert_int_equal(parse_sni_entries(types, names, 2, &ch), CH_INVALID);
    assert_int_equal(parse_sni_entries(types, same, 2, &ch), CH_INVALID);
}

/* An empty server_name list is malformed. */
static void test_sni_empty_list(void **state)
{
    struct clienthello ch;

    assert_int_equal(parse_sni_entries(NULL, NULL, 0, &ch), CH_INVALID);
}

/* Two server_name extensions, or two of any type, are refused (RFC 8446 4.2). */
static void test_duplicate_extensions(void **state)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;

    hello_begin(&b);
    ext_sni(&b, "a.lab.test");
    ext_alpn(&b, "h2");
    ext_sni(&b, "b.lab.test");
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_INVALID);
    blob_free(&msg);

    hello_begin(&b);
    ext_sni(&b, "a.lab.test");
    ext_sni(&b, "a.lab.test");
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_INVALID);
    blob_free(&msg);

    hello_begin(&b);
    ext_opaque(&b, 0x4a4a, 0);
    ext_sni(&b, "a.lab.test");
    ext_opaque(&b, 0x4a4a, 1);
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_INVALID);
    blob_free(&msg);
}

/* encrypted_client_hello present: flagged, outer SNI still read. */
static void test_ech_present(void **state)
{
    struct bb b = {0};
    struct blob msg, w;
    struct clienthello ch;

    hello_begin(&b);
    ext_sni(&b, "public.lab.test");
    ext_opaque(&b, 0xfe0d, 200);
    ext_alpn(&b, "h2");
    hello_end(&b);
    msg = bb_take(&b);
    w = one_record(&msg);
    check_valid_everywhere(w.p, w.n, &ch);
    assert_true(ch.has_ech);
    assert_string_equal(ch.sni, "public.lab.test");
    /* fe0d counts in JA4 like any extension; no supported_versions: "12" */
    assert_string_equal(ch.ja4, "t12d0603h2_50064deaa0fd_57e012f5680b");
    blob_free(&w);
    blob_free(&msg);
}

/* GREASE values are left out of the kept lists, their counts and JA4. */
static void test_grease_dropped(void **state)
{
    static const uint16_t ciphers[] = {0x7a7a, 0x1301, 0x1302};
    static const uint16_t versions[] = {0xdada, 0x0304, 0x0303};
    static const uint16_t groups[] = {0x2a2a, 0x11ec, 0x001d};
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;
    char v[64];

    hello_begin_ciphers(&b, ciphers, 3);
    ext_opaque(&b, 0x0a0a, 0);
    ext_sni(&b, "g.lab.test");
    ext_u16s(&b, 0x2b, 1, versions, 3);
    ext_u16s(&b, 0x0a, 2, groups, 3);
    ext_opaque(&b, 0x1a1a, 1);
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_DONE);
    assert_int_equal(ch.nciphers, 2);
    assert_kept(ch.ciphers, ch.nciphers, CH_KEEP_CIPHERS, ciphers, 3);
    assert_kept(ch.versions, ch.nversions, CH_KEEP_VERSIONS, versions, 3);
    assert_kept(ch.groups, ch.ngroups, CH_KEEP_GROUPS, groups, 3);
    assert_string_equal(clienthello_versions_str(&ch, v, sizeof(v)), "TLSv1.3,TLSv1.2");
    assert_string_equal(clienthello_groups_str(&ch, v, sizeof(v)), "X25519MLKEM768,x25519");
    assert_string_equal(clienthello_ciphers_str(&ch, v, sizeof(v)), "1301,1302");
    assert_memory_equal(ch.ja4, "t13d0203", 8); /* 2 ciphers, 3 extensions: no GREASE */
    assert_true(clienthello_is_grease(0x0a0a));
    assert_true(clienthello_is_grease(0xfafa));
    assert_false(clienthello_is_grease(0x0a1a));
    assert_false(clienthello_is_grease(0x1301));
    blob_free(&msg);
}

/* Parses a hello whose only extension is ALPN built from csv. */
static enum ch_result parse_alpn(const char *csv, struct clienthello *ch)
{
    struct bb b = {0};
    struct blob msg;
    enum ch_result r;

    hello_begin(&b);
    ext_alpn(&b, csv);
    hello_end(&b);
    msg = bb_take(&b);
    r = parse_msg(&msg, ch);
    blob_free(&msg);
    return r;
}

/* ALPN: joined string truncated at a whole entry, count of all, first entry. */
static void test_alpn_fields(void **state)
{
    char csv[1200], want[256];
    struct clienthello ch;

    assert_int_equal(parse_alpn("http/1.1", &ch), CH_DONE);
    assert_string_equal(ch.alpn, "http/1.1");
    assert_int_equal(ch.nalpn, 1);
    assert_memory_equal(ch.ja4 + 8, "h1", 2);

    /* 40 protocols of 9 bytes: 4 fit in CH_KEEP_ALPN - 1 characters with their commas */
    csv[0] = want[0] = '\0';
    for (int i = 0; i < 40; i++) {
        char p[16];

        snprintf(p, sizeof(p), "%sproto-%03d", i ? "," : "", i);
        strcat(csv, p);
        if (i < (int)(CH_KEEP_ALPN / 10))
            strcat(want, p);
    }
    strcat(csv, ",x"); /* would fit, but a prefix is kept */
    assert_int_equal(parse_alpn(csv, &ch), CH_DONE);
    assert_int_equal(ch.nalpn, 41);
    assert_string_equal(ch.alpn, want);

    /* a first protocol too long to keep: JA4 still reads its real last byte */
    assert_int_equal(parse_alpn("0123456789abcdef0123456789ABCDEF0123456789abcdef-tail-Z,h2", &ch),
                     CH_DONE);
    assert_string_equal(ch.alpn, "");
    assert_memory_equal(ch.ja4 + 8, "0Z", 2);
    assert_int_equal(ch.nalpn, 2);
}

/* Bytes that could break a log line or the comma list are shown as '?'. */
static void test_alpn_unprintable(void **state)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;
    static const uint8_t odd[] = {0x00, 'a', ',', 'b', '"', 0xff};

    hello_begin(&b);
    ext_begin(&b, 16);
    bb_open(&b, 2);
    bb_open(&b, 1);
    bb_put(&b, odd, sizeof(odd));
    bb_close(&b);
    bb_open(&b, 1);
    bb_put(&b, "h2 x", 4);
    bb_close(&b);
    bb_close(&b);
    bb_close(&b);
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_DONE);
    assert_string_equal(ch.alpn, "?a?b\"?,h2?x");
    /* JA4 on raw bytes: 0x00 ... 0xff is not alphanumeric, so hex "0" + "f" */
    assert_memory_equal(ch.ja4 + 8, "0f", 2);
    blob_free(&msg);
}

/* An empty ALPN list or an empty protocol name is malformed. */
static void test_alpn_malformed(void **state)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;

    assert_int_equal(parse_alpn("h2,,http/1.1", &ch), CH_INVALID);
    assert_int_equal(parse_alpn("", &ch), CH_INVALID);

    hello_begin(&b);
    ext_opaque(&b, 16, 0); /* no list at all */
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_INVALID);
    blob_free(&msg);
}

/* Lists longer than what is kept: counted in full, first entries kept, JA4 on all. */
static void test_long_lists(void **state)
{
    uint16_t many[100];
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;

    for (size_t i = 0; i < 100; i++)
        many[i] = (uint16_t)(0x0100 + i);
    hello_begin_ciphers(&b, many, 100);
    ext_u16s(&b, 0x0a, 2, many, 100);
    ext_u16s(&b, 0x0d, 2, many, 70);
    for (unsigned t = 0x5000; t < 0x5050; t++)
        ext_opaque(&b, t, 0);
    hello_end(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_DONE);
    assert_kept(ch.ciphers, ch.nciphers, CH_KEEP_CIPHERS, many, 100);
    assert_kept(ch.groups, ch.ngroups, CH_KEEP_GROUPS, many, 100);
    /* counts capped at 99; the hashes cover every entry (test_ja4 checks them) */
    assert_memory_equal(ch.ja4, "t12i998200_", 11);
    blob_free(&msg);
}

/* An old-style hello without extensions is valid; its version is the legacy one. */
static void test_no_extensions(void **state)
{
    struct bb b = {0};
    struct blob msg, w;
    struct clienthello ch;
    char v[32];

    hello_begin(&b);
    b.len -= 2; /* drop the empty extensions block again */
    b.depth--;
    bb_close(&b);
    msg = bb_take(&b);
    msg.p[4] = 3, msg.p[5] = 1; /* legacy_version TLS 1.0 */
    w = one_record(&msg);
    check_valid_everywhere(w.p, w.n, &ch);
    assert_false(ch.has_sni);
    /* no extensions: version from legacy_version, ja4_c all zeros */
    assert_string_equal(ch.ja4, "t10i060000_50064deaa0fd_000000000000");
    assert_string_equal(clienthello_versions_str(&ch, v, sizeof(v)), "TLSv1");
    blob_free(&w);
    blob_free(&msg);
}

/* ---------- not TLS ---------- */

/* Verdict for the first k bytes of s, for every k >= from. */
static void assert_not_tls_from(const void *s, size_t n, size_t from)
{
    struct clienthello ch;

    for (size_t k = 0; k < from; k++)
        assert_int_equal(parse_exact(s, k, &ch), CH_NEED_MORE);
    for (size_t k = from; k <= n; k++)
        assert_int_equal(parse_exact(s, k, &ch), CH_NOT_TLS);
}

/* Plain HTTP, a PROXY header, SSLv2 hellos: NOT_TLS from the first byte. */
static void test_not_tls(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: a.lab.test\r\n\r\n";
    static const char proxy[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    /* SSLv2-compatible CLIENT-HELLO (2-byte header with the high bit set) */
    static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00,
                                    0x00, 0x10, 0x01, 0x00, 0x80, 0x03, 0x00, 0x80};
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    static const uint8_t appdata[] = {0x17, 0x03, 0x03, 0x00, 0x01, 0x00};

    assert_not_tls_from(http, sizeof(http) - 1, 1);
    assert_not_tls_from(proxy, sizeof(proxy) - 1, 1);
    assert_not_tls_from(sslv2, sizeof(sslv2), 1);
    assert_not_tls_from(alert, sizeof(alert), 1);
    assert_not_tls_from(appdata, sizeof(appdata), 1);
}

/* 0x16 then a record version major other than 3: NOT_TLS at the second byte. */
static void test_not_tls_version(void **state)
{
    static const uint8_t v2[] = {0x16, 0x02, 0x00, 0x00, 0x10};
    static const uint8_t v0[] = {0x16, 0x00};
    static const uint8_t dtls[] = {0x16, 0xfe, 0xfd, 0x00, 0x00};

    assert_not_tls_from(v2, sizeof(v2), 2);
    assert_not_tls_from(v0, sizeof(v0), 2);
    assert_not_tls_from(dtls, sizeof(dtls), 2);
}

/* Tiny deterministic PRNG (xorshift32) for the garbage and mutation tests. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random bytes: no crash, never DONE; NOT_TLS unless they start like a record. */
static void test_random_garbage(void **state)
{
    uint32_t seed = 0x1234567;
    uint8_t buf[600];
    struct clienthello ch;

    for (int i = 0; i < 20000; i++) {
        size_t n = rnd(&seed) % sizeof(buf);
        enum ch_result r;

        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd(&seed);
        if (i % 2 && n >= 6) { /* half of them look like a hello record at first */
            buf[0] = 0x16, buf[1] = 0x03, buf[5] = 0x01;
        }
        r = parse_exact(buf, n, &ch);
        assert_int_not_equal(r, CH_DONE);
        if (n > 0 && buf[0] != 0x16)
            assert_int_equal(r, CH_NOT_TLS);
    }
}

/* ---------- invalid ---------- */

/* Record length 0 and above 16384+2048 are refused from the header alone. */
static void test_record_length_limits(void **state)
{
    uint8_t hdr[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    struct clienthello ch;

    assert_int_equal(parse_exact(hdr, 5, &ch), CH_INVALID);
    hdr[3] = 0x48, hdr[4] = 0x01; /* 18433 */
    assert_int_equal(parse_exact(hdr, 5, &ch), CH_INVALID);
    hdr[3] = 0xff, hdr[4] = 0xff;
    assert_int_equal(parse_exact(hdr, 5, &ch), CH_INVALID);
    hdr[3] = 0x48, hdr[4] = 0x00; /* 18432: allowed, wait for it */
    assert_int_equal(parse_exact(hdr, 5, &ch), CH_NEED_MORE);
    for (size_t k = 0; k < 5; k++)
        assert_int_equal(parse_exact(hdr, k, &ch), CH_NEED_MORE);
}

/* Zero-length or oversized records later in the hello are refused too. */
static void test_record_length_limits_later(void **state)
{
    static const uint8_t zero[] = {0x16, 0x03, 0x01, 0x00, 0x02, 0x01,
                                   0x00, 0x16, 0x03, 0x01, 0x00, 0x00};
    static const uint8_t big[] = {0x16, 0x03, 0x01, 0x00, 0x02, 0x01,
                                  0x00, 0x16, 0x03, 0x01, 0x48, 0x01};
    struct clienthello ch;

    assert_int_equal(parse_exact(zero, sizeof(zero) - 1, &ch), CH_NEED_MORE);
    assert_int_equal(parse_exact(zero, sizeof(zero), &ch), CH_INVALID);
    assert_int_equal(parse_exact(big, sizeof(big), &ch), CH_INVALID);
}

/* A handshake other than ClientHello is refused from its first byte. */
static void test_not_client_hello(void **state)
{
    static const uint8_t server_hello[] = {0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00, 0x00, 0x3c};
    static const uint8_t split[] = {0x16, 0x03, 0x03, 0x00, 0x01, 0x00, 0x16, 0x03, 0x03};
    struct clienthello ch;

    assert_int_equal(parse_exact(server_hello, 5, &ch), CH_NEED_MORE);
    assert_int_equal(parse_exact(server_hello, 6, &ch), CH_INVALID);
    assert_int_equal(parse_exact(split, 6, &ch), CH_INVALID); /* hello_request in a 1-byte record */
}

/* A handshake length beyond CLIENTHELLO_MAX_MSG is refused from its header,
 * as too large (not as malformed: the log tells the operator which). */
static void test_handshake_length_limit(void **state)
{
    uint8_t hdr[] = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x80, 0x01};
    /* the same header spread over 1-byte records */
    uint8_t split[] = {0x16, 0x03, 0x01, 0x00, 0x01, 0x01, 0x16, 0x03, 0x01, 0x00, 0x01, 0x00,
                       0x16, 0x03, 0x01, 0x00, 0x01, 0x80, 0x16, 0x03, 0x01, 0x00, 0x01, 0x01};
    struct clienthello ch;

    assert_int_equal(parse_exact(hdr, 8, &ch), CH_NEED_MORE);
    assert_int_equal(parse_exact(hdr, 9, &ch), CH_TOO_LARGE);
    hdr[7] = 0x80, hdr[8] = 0x00; /* exactly the limit: wait */
    assert_int_equal(parse_exact(hdr, 9, &ch), CH_NEED_MORE);
    hdr[6] = 0xff;
    assert_int_equal(parse_exact(hdr, 9, &ch), CH_TOO_LARGE);
    assert_int_equal(parse_exact(split, sizeof(split) - 1, &ch), CH_NEED_MORE);
    assert_int_equal(parse_exact(split, sizeof(split), &ch), CH_TOO_LARGE);
}

/* Another content type (CCS, alert, data) or a bad version before the hello ends. */
static void test_other_record_mid_hello(void **state)
{
    static const uint8_t types[] = {0x14, 0x15, 0x17, 0x18, 0x00};
    struct bb b = {0};
    struct blob msg = std_msg(&b, "a.lab.test", false);
    size_t cut[2] = {50, msg.n};
    struct blob w = records(msg.p, msg.n, cut, 2);
    size_t second = 5 + 50; /* offset of the second record header */
    struct clienthello ch;

    assert_int_equal(parse_exact(w.p, w.n, &ch), CH_DONE);
    for (size_t i = 0; i < sizeof(types); i++) {
        w.p[second] = types[i];
        assert_int_equal(parse_exact(w.p, second, &ch), CH_NEED_MORE);
        assert_int_equal(parse_exact(w.p, second + 1, &ch), CH_INVALID);
        assert_int_equal(parse_exact(w.p, w.n, &ch), CH_INVALID);
    }
    w.p[second] = 0x16;
    w.p[second + 1] = 0x02;
    assert_int_equal(parse_exact(w.p, second + 2, &ch), CH_INVALID);
    blob_free(&w);
    blob_free(&msg);
}

/* Bytes after the hello inside its own record are refused. */
static void test_trailing_bytes_in_record(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "a.lab.test", false);
    struct blob w;
    struct clienthello ch;

    msg.p = realloc(msg.p, msg.n + 1);
    assert_non_null(msg.p);
    msg.p[msg.n++] = 0x01; /* say, the start of another handshake message */
    w = one_record(&msg);
    assert_int_equal(parse_exact(w.p, w.n, &ch), CH_INVALID);
    /* known from the record header already */
    assert_int_equal(parse_exact(w.p, 9, &ch), CH_INVALID);
    assert_int_equal(parse_exact(w.p, 8, &ch), CH_NEED_MORE);
    blob_free(&w);
    blob_free(&msg);
}

/* Bytes after the extensions block but inside the hello are refused. */
static void test_trailing_garbage_in_hello(void **state)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;

    hello_begin(&b);
    ext_sni(&b, "a.lab.test");
    bb_close(&b); /* extensions block */
    bb_u8(&b, 0);
    bb_close(&b);
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_INVALID);
    blob_free(&msg);
}

/* Builds the standard hello, with ciphers, session id and compression changed. */
static enum ch_result parse_body_variant(const uint16_t *ciphers, size_t nciphers, size_t sid,
                                         size_t ncomp, uint16_t legacy)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;
    enum ch_result r;

    bb_u8(&b, 1);
    bb_open(&b, 3);
    bb_u16(&b, legacy);
    bb_fill(&b, 32, 0);
    bb_open(&b, 1);
    bb_fill(&b, sid, 0x11);
    bb_close(&b);
    bb_open(&b, 2);
    for (size_t i = 0; i < nciphers; i++)
        bb_u16(&b, ciphers[i]);
    bb_close(&b);
    bb_open(&b, 1);
    bb_fill(&b, ncomp, 0);
    bb_close(&b);
    bb_open(&b, 2);
    ext_sni(&b, "a.lab.test");
    hello_end(&b);
    msg = bb_take(&b);
    r = parse_msg(&msg, &ch);
    blob_free(&msg);
    return r;
}

/* Session id over 32, empty cipher list, no compression, version 2.x. */
static void test_body_limits(void **state)
{
    assert_int_equal(parse_body_variant(std_ciphers, 6, 32, 1, 0x0303), CH_DONE);
    assert_int_equal(parse_body_variant(std_ciphers, 6, 0, 2, 0x0301), CH_DONE);
    assert_int_equal(parse_body_variant(std_ciphers, 6, 33, 1, 0x0303), CH_INVALID);
    assert_int_equal(parse_body_variant(std_ciphers, 0, 32, 1, 0x0303), CH_INVALID);
    assert_int_equal(parse_body_variant(std_ciphers, 6, 32, 0, 0x0303), CH_INVALID);
    assert_int_equal(parse_body_variant(std_ciphers, 6, 32, 1, 0x0200), CH_INVALID);
}

/* A hello cut short inside its body, with lengths saying so: INVALID. */
static void test_short_bodies(void **state)
{
    struct bb b = {0};
    struct blob msg = std_msg(&b, "a.lab.test", false);
    struct clienthello ch;

    /* keep the first k body bytes and shrink the handshake length to match;
     * 83 bytes is a whole hello without extensions, which is valid */
    for (size_t k = 0; k < 83 + 2 + 4 + 2; k++) {
        if (k == 83)
            continue;
        struct blob cut = {.p = malloc(4 + k), .n = 4 + k};

        assert_non_null(cut.p);
        memcpy(cut.p, msg.p, 4 + k);
        cut.p[1] = 0, cut.p[2] = (uint8_t)(k >> 8), cut.p[3] = (uint8_t)k;
        if (parse_msg(&cut, &ch) != CH_INVALID)
            fail_msg("body of %zu bytes accepted", k);
        blob_free(&cut);
    }
    blob_free(&msg);
}

/* Malformed lists in the 16-bit list extensions we read: odd or empty. */
static void test_extension_lists_malformed(void **state)
{
    static const unsigned types[] = {0x2b, 0x0a, 0x0d};
    struct clienthello ch;

    for (size_t i = 0; i < 3; i++) {
        for (int odd = 0; odd < 2; odd++) {
            struct bb b = {0};
            struct blob msg;

            hello_begin(&b);
            ext_begin(&b, types[i]);
            bb_open(&b, types[i] == 0x2b ? 1 : 2);
            if (odd)
                bb_u8(&b, 3);
            bb_close(&b);
            bb_close(&b);
            hello_end(&b);
            msg = bb_take(&b);
            if (parse_msg(&msg, &ch) != CH_INVALID)
                fail_msg("extension 0x%x %s list accepted", types[i], odd ? "odd" : "empty");
            blob_free(&msg);
        }
    }
}

/* A valid list followed by one stray byte inside its extension, for each one we read. */
static void test_extension_trailing_byte(void **state)
{
    static const uint16_t two[] = {0x0304, 0x0303};
    struct clienthello ch;

    for (int which = 0; which < 5; which++) {
        struct bb b = {0};
        struct blob msg;

        hello_begin(&b);
        if (which == 0)
            ext_sni(&b, "a.lab.test");
        else if (which == 1)
            ext_alpn(&b, "h2");
        else
            ext_u16s(&b, which == 2 ? 0x2b : which == 3 ? 0x0a : 0x0d, which == 2 ? 1 : 2, two, 2);
        /* one more byte, counted in the extension's length (the last field closed) */
        bb_u8(&b, 0);
        b.p[b.fields[b.nfields - 1] + 1]++;
        hello_end(&b);
        msg = bb_take(&b);
        if (parse_msg(&msg, &ch) != CH_INVALID)
            fail_msg("extension %d with a stray byte accepted", which);
        blob_free(&msg);
    }
}

/*
 * Every length field inside the hello (session id, ciphers, compression,
 * extensions block, each extension and the lists inside the ones we read)
 * one too big, then one too small, outer lengths unchanged: INVALID.
 */
static void test_inner_lengths_off_by_one(void **state)
{
    struct bb b = {0};
    struct blob msg;
    struct clienthello ch;
    size_t nfields;
    size_t fields[BB_FIELDS];
    int fieldw[BB_FIELDS];

    hello_begin(&b);
    std_extensions(&b, "a.lab.test", true);
    ext_opaque(&b, 0xfe0d, 8);
    hello_end(&b);
    nfields = b.nfields;
    memcpy(fields, b.fields, sizeof(fields));
    memcpy(fieldw, b.fieldw, sizeof(fieldw));
    msg = bb_take(&b);
    assert_int_equal(parse_msg(&msg, &ch), CH_DONE);
    assert_true(nfields > 15);
    for (size_t f = 0; f < nfields; f++) {
        size_t at = fields[f] + (size_t)fieldw[f] - 1; /* low byte */

        if (fields[f] == 1)
            continue; /* the handshake length: too big is NEED_MORE, tested elsewhere */
        for (int delta = -1; delta <= 1; delta += 2) {
            uint8_t was = msg.p[at];

            if ((delta > 0 && was == 0xff) || (delta < 0 && was == 0))
                continue; /* would carry into the next byte; no field here does */
            msg.p[at] = (uint8_t)(was + delta);
            if (parse_msg(&msg, &ch) != CH_INVALID)
                fail_msg("length field at %zu (%d bytes) %+d accepted", fields[f], fieldw[f],
                         delta);
            msg.p[at] = was;
        }
    }
    blob_free(&msg);
}

/* Random single-byte changes to real hellos: never a crash, DONE only if sane. */
static void test_mutations(void **state)
{
    uint32_t seed = 42;

    for (size_t i = 0; i < NCAPTURED; i++) {
        struct blob w = load_hex(captured[i].file);
        struct clienthello ch;

        for (size_t at = 0; at < w.n; at++) {
            uint8_t was = w.p[at];
            uint8_t vals[] = {(uint8_t)(was ^ 1), (uint8_t)(was ^ 0x80), 0, 0xff,
                              (uint8_t)rnd(&seed)};

            for (size_t v = 0; v < sizeof(vals); v++) {
                enum ch_result r;

                w.p[at] = vals[v];
                r = parse_exact(w.p, w.n, &ch);
                assert_in_range(r, CH_NEED_MORE, CH_DONE);
                if (r == CH_DONE && ch.has_sni)
                    for (const char *c = ch.sni; *c; c++)
                        assert_false(*c >= 'A' && *c <= 'Z');
            }
            w.p[at] = was;
        }
        blob_free(&w);
    }
}

/* ---------- strings ---------- */

static void test_result_str(void **state)
{
    assert_string_equal(clienthello_result_str(CH_NEED_MORE), "need-more");
    assert_string_equal(clienthello_result_str(CH_NOT_TLS), "not-tls");
    assert_string_equal(clienthello_result_str(CH_INVALID), "invalid");
    assert_string_equal(clienthello_result_str(CH_DONE), "done");
    assert_string_equal(clienthello_result_str((enum ch_result)42), "unknown");
}

/* Names, legacy fallback, unknown values, truncation at a whole entry. */
static void test_versions_str(void **state)
{
    struct clienthello ch = {0};
    char buf[64];

    ch.legacy_version = 0x0303;
    assert_string_equal(clienthello_versions_str(&ch, buf, sizeof(buf)), "TLSv1.2");
    ch.legacy_version = 0x0300;
    assert_string_equal(clienthello_versions_str(&ch, buf, sizeof(buf)), "SSLv3");
    ch.versions[0] = 0x3a3a;
    ch.versions[1] = 0x0304;
    ch.versions[2] = 0x7f1c;
    ch.versions[3] = 0x0302;
    ch.nversions = 4;
    assert_string_equal(clienthello_versions_str(&ch, buf, sizeof(buf)), "TLSv1.3,0x7f1c,TLSv1.1");
    assert_string_equal(clienthello_versions_str(&ch, buf, 15), "TLSv1.3,0x7f1c");
    assert_string_equal(clienthello_versions_str(&ch, buf, 14), "TLSv1.3");
    assert_string_equal(clienthello_versions_str(&ch, buf, 8), "TLSv1.3");
    assert_string_equal(clienthello_versions_str(&ch, buf, 7), "");
    assert_string_equal(clienthello_versions_str(&ch, buf, 1), "");
    buf[0] = 'x';
    assert_ptr_equal(clienthello_versions_str(&ch, buf, 0), buf);
    assert_int_equal(buf[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captured),
        cmocka_unit_test(test_built_typical),
        cmocka_unit_test(test_large_pq_hello),
        cmocka_unit_test(test_hello_larger_than_a_record),
        cmocka_unit_test(test_split_two_records),
        cmocka_unit_test(test_split_one_byte_records),
        cmocka_unit_test(test_too_many_record_bytes),
        cmocka_unit_test(test_missing_sni),
        cmocka_unit_test(test_sni_normalised),
        cmocka_unit_test(test_sni_bad_names),
        cmocka_unit_test(test_sni_length_limit),
        cmocka_unit_test(test_sni_other_name_type),
        cmocka_unit_test(test_sni_two_host_names),
        cmocka_unit_test(test_sni_empty_list),
        cmocka_unit_test(test_duplicate_extensions),
        cmocka_unit_test(test_ech_present),
        cmocka_unit_test(test_grease_dropped),
        cmocka_unit_test(test_alpn_fields),
        cmocka_unit_test(test_alpn_unprintable),
        cmocka_unit_test(test_alpn_malformed),
        cmocka_unit_test(test_long_lists),
        cmocka_unit_test(test_no_extensions),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_not_tls_version),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_record_length_limits),
        cmocka_unit_test(test_record_length_limits_later),
        cmocka_unit_test(test_not_client_hello),
        cmocka_unit_test(test_handshake_length_limit),
        cmocka_unit_test(test_other_record_mid_hello),
        cmocka_unit_test(test_trailing_bytes_in_record),
        cmocka_unit_test(test_trailing_garbage_in_hello),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_short_bodies),
        cmocka_unit_test(test_extension_lists_malformed),
        cmocka_unit_test(test_extension_trailing_byte),
        cmocka_unit_test(test_inner_lengths_off_by_one),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_result_str),
        cmocka_unit_test(test_versions_str),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
