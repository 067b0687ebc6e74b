/*
 * JA4 tests (include/ja4.h). Three kinds of expected values:
 *  - published ones: the worked example of FoxIO's JA4 specification
 *    (technical_details/JA4.md), the lists FoxIO's test data prints for a
 *    Chrome hello with ECH (python/test/testdata/sigalg-grease.pcapng.json),
 *    and two raw ClientHellos (Firefox with ECH; an OpenSSL 3 client with
 *    padding) with the fingerprints published beside them in another JA4
 *    implementation's tests, run through our parser;
 *  - hashes the test computes itself from a string written out by hand;
 *  - one test per rule: GREASE, sorting, empty lists, counts, version, SNI,
 *    ALPN edge cases (the spec's own hex examples).
 * curl's and openssl s_client's fingerprints are checked in test_clienthello
 * (captured hellos) and tests/integration/test_passthrough_hello.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "clienthello.h"
#include "ja4.h"

#define N(a)      (sizeof(a) / sizeof((a)[0]))
#define MAX_ITEMS 512 /* longest list a test passes */

/* A hello's JA4 inputs, with const lists: fingerprint() copies them. */
struct hello_in {
    uint16_t legacy;          /* legacy_version */
    const uint16_t *versions; /* supported_versions, NULL = absent */
    size_t nversions;         /* entries */
    const uint16_t *ciphers;  /* offered order */
    size_t nciphers;          /* entries */
    const uint16_t *exts;     /* extension types, offered order */
    size_t nexts;             /* entries */
    const uint16_t *sigalgs;  /* NULL = absent */
    size_t nsigalgs;          /* entries */
    const uint8_t *alpn;      /* first ALPN protocol, NULL = no ALPN */
    size_t alpn_len;          /* its length */
};

/* The fingerprint of in, computed on copies (ja4_fingerprint sorts in place). */
static const char *fingerprint(const struct hello_in *in, char *out)
{
    uint16_t c[MAX_ITEMS], e[MAX_ITEMS];
    struct ja4_hello h = {
        .legacy_version = in->legacy,
        .versions = in->versions,
        .nversions = in->nversions,
        .ciphers = c,
        .nciphers = in->nciphers,
        .extensions = e,
        .nextensions = in->nexts,
        .sigalgs = in->sigalgs,
        .nsigalgs = in->nsigalgs,
        .alpn_first = in->alpn,
        .alpn_first_len = in->alpn_len,
    };

    assert_true(in->nciphers <= MAX_ITEMS && in->nexts <= MAX_ITEMS);
    if (in->nciphers > 0)
        memcpy(c, in->ciphers, in->nciphers * sizeof(c[0]));
    if (in->nexts > 0)
        memcpy(e, in->exts, in->nexts * sizeof(e[0]));
    assert_int_equal(ja4_fingerprint(&h, out), 0);
    assert_int_equal(strlen(out), JA4_LEN);
    return out;
}

/* First 12 hex digits of sha256(s): the test's own hash of a hand-written list. */
static const char *sha12(const char *s, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;

    assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 6; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return out;
}

/* Part b or c of a fingerprint (12 characters) as a string. */
static const char *part(const char *fp, int which, char *out)
{
    memcpy(out, fp + (which == 'b' ? 11 : 24), 12);
    out[12] = '\0';
    return out;
}

/* ---------- the specification's example ---------- */

/* FoxIO JA4.md: the lists of its example hello, in the order sent. */
static const uint16_t spec_ciphers[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
                                        0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                                        0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
static const uint16_t spec_exts[] = {0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017,
                                     0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b,
                                     0xff01, 0x000b, 0x000a, 0x0015};
static const uint16_t spec_sigalgs[] = {0x0403, 0x0804, 0x0401, 0x0503,
                                        0x0805, 0x0501, 0x0806, 0x0601};
static const uint16_t tls13_12[] = {0x0304, 0x0303};
static const uint8_t h2[] = {'h', '2'};

static struct hello_in spec_hello(void)
{
    struct hello_in in = {
        .legacy = 0x0303,
        .versions = tls13_12,
        .nversions = N(tls13_12),
        .ciphers = spec_ciphers,
        .nciphers = N(spec_ciphers),
        .exts = spec_exts,
        .nexts = N(spec_exts),
        .sigalgs = spec_sigalgs,
        .nsigalgs = N(spec_sigalgs),
        .alpn = h2,
        .alpn_len = sizeof(h2),
    };

    return in;
}

static void test_spec_example(void **state)
{
    struct hello_in in = spec_hello();
    char fp[JA4_LEN + 1], h[13];

    assert_string_equal(fingerprint(&in, fp), "t13d1516h2_8daaf6152771_e5627efa2ab1");
    /* the spec's strings, hashed here */
    assert_string_equal(sha12("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,"
                              "c030,cca8,cca9",
                              h),
                        "8daaf6152771");
    assert_string_equal(sha12("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,"
                              "4469,ff01_0403,0804,0401,0503,0805,0501,0806,0601",
                              h),
                        "e5627efa2ab1");
}

/* Without signature algorithms the list ends with no '_' (spec: 6d807ffa2a79). */
static void test_spec_no_sigalgs(void **state)
{
    struct hello_in in = spec_hello();
    char fp[JA4_LEN + 1], p[13];

    in.sigalgs = NULL;
    in.nsigalgs = 0;
    assert_string_equal(part(fingerprint(&in, fp), 'c', p), "6d807ffa2a79");
}

/*
 * FoxIO's test data for a Chrome hello offering ECH (JA4_ro: lists in the
 * order sent, GREASE already removed): ja4 t13d1517h2_8daaf6152771_cb7bf5808d99.
 * GREASE put back in every list must not change it.
 */
static void test_published_chrome_ech(void **state)
{
    static const uint16_t exts[] = {0x3a3a, 0xfe0d, 0x0010, 0x0017, 0x0033, 0x44cd, 0xff01,
                                    0x000a, 0x000d, 0x0023, 0x002b, 0x000b, 0xca34, 0x002d,
                                    0x0000, 0x0005, 0x001b, 0x0012, 0x8a8a};
    static const uint16_t sigalgs[] = {0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401,
                                       0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
    static const uint16_t sigalgs_grease[] = {0x0904, 0x0905, 0x0906, 0x0403, 0x0804, 0x0401,
                                              0x0503, 0x0805, 0x0501, 0x5a5a, 0x0806, 0x0601};
    static const uint16_t ciphers[] = {0xdada, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
                                       0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
                                       0x009c, 0x009d, 0x002f, 0x0035};
    static const uint16_t versions[] = {0x4a4a, 0x0304, 0x0303};
    struct hello_in in = spec_hello();
    char fp[JA4_LEN + 1];

    in.ciphers = ciphers;
    in.nciphers = N(ciphers);
    in.exts = exts;
    in.nexts = N(exts);
    in.sigalgs = sigalgs;
    in.nsigalgs = N(sigalgs);
    in.versions = versions;
    in.nversions = N(versions);
    assert_string_equal(fingerprint(&in, fp), "t13d1517h2_8daaf6152771_cb7bf5808d99");
    in.sigalgs = sigalgs_grease;
    in.nsigalgs = N(sigalgs_grease);
    assert_string_equal(fingerprint(&in, fp), "t13d1517h2_8daaf6152771_cb7bf5808d99");
}

/* ---------- raw hellos through the parser ---------- */

/* Firefox, SNI ja4db.com, ECH offered: handshake message of 652 bytes. */
static const char firefox_ech_hex[] =
    "010002880303b1454f846bd902745d988d870726ef0c313ce90f17984d51557964c3e606fa91200b509f238e"
    "6769dd3ad25fe6ed13020e3f7b64738a226fc0158ef2b59ba19b2c0022130113031302c02bc02fcca9cca8c0"
    "2cc030c00ac009c013c014009c009d002f00350100021d0000000e000c0000096a613464622e636f6d001700"
    "00ff01000100000a000e000c001d00170018001901000101000b00020100002300000010000e000c02683208"
    "687474702f312e310005000501000000000022000a000804030503060302030033006b0069001d0020cb5494"
    "b8b6fffd904f2c18eecc978ae6ef7c9c89d347498dae1b66799176554900170041040bbdc463c55494edca30"
    "649e6c48e51261c4d61843e7cf607fffddca1d7cf7d8ae69ced9796f6403565655906bbcd7dffc103db95889"
    "d5d6774114b6793c4132002b00050403040303000d0018001604030503060308040805080604010501060102"
    "030201002d00020101001c00024001fe0d01190000010003d10020b8cdfd2a9b9924e45471c4ebb24514d71a"
    "231a49d8d314fbcb75af0214a2e67c00efd356cf2704ea9bb5e85579856bf473cb9b5ae1657b33929c86f5ee"
    "4b57cafcac74ecb8fe201f5d9e883efdd391395639d9e42eafa8eae467601838c23c3e239907da1a6983f4e9"
    "66e4990ff13f74e0159fe37d60535b76d308caea1e114170ce3e3fd67c14a2f5e3e8fe540895e3d6a66fec86"
    "e88d2e403f9ff299681748c664572a7e889fe274ec142b2f5eb9445142c16dd98034f92d47be96ead6b03053"
    "6ca37506cc44c94fd7d1f1b2178b71d5fc5e5339b1c91cf9db67c82099a0f0168ce228947c600a1cd48ee9d9"
    "b481c87f052999431bd4b91d2aac4a7dab3090578a64087a3d7cd9c603c6e75c7d878f9d";

/* An OpenSSL 3 client: 31 ciphers, no ALPN, padded to 512 bytes. */
static const char openssl_padded_hex[] =
    "010001fc0303e4422635180a6d52305577414519930d2eb4b714ecbaffc7aa4ef762421df37920a89626d756"
    "7923c523a5255cfc150232e8491a92f4d85e848d5f8432baf6d273003e130213031301c02cc030009fcca9cc"
    "a8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c003500"
    "2f00ff010001750000001c001a00001772656d6f74652e7069786965647573742e6f6e6c696e65000b000403"
    "000102000a000c000a001d0017001e0019001800230000001600000017000000310000000d002a0028040305"
    "030603080708080809080a080b080408050806040105010601030303010302040205020602002b0005040304"
    "0303002d00020101003300260024001d0020d8a1f885af25dd99f2c6a123fae44fadc43bc5d9c123e0ec0fbb"
    "dc0a90a6b24e001500c200000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000";

/* Parses a handshake message given as hex, in one TLS record; JA4 when ja4. */
static enum ch_result parse_hex_msg_ja4(const char *hex, struct clienthello *ch, bool ja4)
{
    size_t n = strlen(hex) / 2;
    uint8_t *rec = malloc(n + 5);
    enum ch_result r;

    assert_non_null(rec);
    rec[0] = 22, rec[1] = 3, rec[2] = 1, rec[3] = (uint8_t)(n >> 8), rec[4] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        unsigned b;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
        rec[5 + i] = (uint8_t)b;
    }
    r = clienthello_parse_ja4(rec, n + 5, ch, ja4);
    free(rec);
    return r;
}

static enum ch_result parse_hex_msg(const char *hex, struct clienthello *ch)
{
    return parse_hex_msg_ja4(hex, ch, true);
}

static void test_published_raw_hellos(void **state)
{
    struct clienthello ch;

    assert_int_equal(parse_hex_msg(firefox_ech_hex, &ch), CH_DONE);
    assert_string_equal(ch.ja4, "t13d1715h2_5b57614c22b0_5c2c66f702b0");
    assert_string_equal(ch.sni, "ja4db.com");
    assert_true(ch.has_ech);

    assert_int_equal(parse_hex_msg(openssl_padded_hex, &ch), CH_DONE);
    assert_string_equal(ch.ja4, "t13d311200_e8f1e7e78f70_d339722ba4af");
    assert_false(ch.has_ech);
}

/* Without JA4 (no access log to show it) the rest of the parse is the same. */
static void test_parse_without_ja4(void **state)
{
    struct clienthello with, without;

    assert_int_equal(parse_hex_msg_ja4(firefox_ech_hex, &with, true), CH_DONE);
    assert_int_equal(parse_hex_msg_ja4(firefox_ech_hex, &without, false), CH_DONE);
    assert_string_equal(without.ja4, "");
    memcpy(without.ja4, with.ja4, sizeof(with.ja4));
    assert_memory_equal(&with, &without, sizeof(with));
}

/* ---------- one rule at a time ---------- */

/* GREASE is dropped from counts and hashes; a GREASE-only version list falls back. */
static void test_grease_ignored(void **state)
{
    static const uint16_t ciphers[] = {0x0a0a, 0x1301, 0xfafa, 0x1302};
    static const uint16_t exts[] = {0x2a2a, 0x0000, 0x000d, 0xeaea};
    static const uint16_t sigalgs[] = {0x1a1a, 0x0403};
    static const uint16_t only_grease[] = {0x7a7a};
    struct hello_in in = {.legacy = 0x0303,
                          .ciphers = ciphers,
                          .nciphers = N(ciphers),
                          .exts = exts,
                          .nexts = N(exts),
                          .sigalgs = sigalgs,
                          .nsigalgs = N(sigalgs),
                          .versions = only_grease,
                          .nversions = 1};
    char fp[JA4_LEN + 1], b[13], c[13], want[JA4_LEN + 1];

    snprintf(want, sizeof(want), "t12d020200_%s_%s", sha12("1301,1302", b), sha12("000d_0403", c));
    assert_string_equal(fingerprint(&in, fp), want);
}

/* Order sent does not matter for ciphers and extensions; it does for sigalgs. */
static void test_sorting(void **state)
{
    static const uint16_t c1[] = {0xc030, 0x002f, 0x1301}, c2[] = {0x1301, 0xc030, 0x002f};
    static const uint16_t e1[] = {0x002b, 0x000a, 0x000d}, e2[] = {0x000d, 0x002b, 0x000a};
    static const uint16_t s1[] = {0x0804, 0x0403}, s2[] = {0x0403, 0x0804};
    struct hello_in in = {.legacy = 0x0303,
                          .ciphers = c1,
                          .nciphers = 3,
                          .exts = e1,
                          .nexts = 3,
                          .sigalgs = s1,
                          .nsigalgs = 2};
    char fp1[JA4_LEN + 1], fp2[JA4_LEN + 1], b[13], c[13];

    fingerprint(&in, fp1);
    assert_string_equal(part(fp1, 'b', b), sha12("002f,1301,c030", c));
    assert_string_equal(part(fp1, 'c', b), sha12("000a,000d,002b_0804,0403", c));
    in.ciphers = c2;
    in.exts = e2;
    assert_string_equal(fingerprint(&in, fp2), fp1);
    in.sigalgs = s2;
    assert_string_not_equal(fingerprint(&in, fp2), fp1);
    assert_string_equal(part(fp2, 'c', b), sha12("000a,000d,002b_0403,0804", c));
}

/* ja4_fingerprint sorts the caller's arrays, as its contract says. */
static void test_sorts_in_place(void **state)
{
    uint16_t c[] = {0x1302, 0x002f, 0x1301}, e[] = {0x0033, 0x0000, 0x000a};
    struct ja4_hello h = {
        .legacy_version = 0x0303, .ciphers = c, .nciphers = 3, .extensions = e, .nextensions = 3};
    char fp[JA4_LEN + 1];

    assert_int_equal(ja4_fingerprint(&h, fp), 0);
    assert_int_equal(c[0], 0x002f);
    assert_int_equal(c[2], 0x1302);
    assert_int_equal(e[0], 0x0000);
    assert_int_equal(e[2], 0x0033);
}

/* Nothing to hash gives twelve zeros, not the hash of "". */
static void test_empty_lists(void **state)
{
    static const uint16_t sni_alpn[] = {0x0010, 0x0000};
    static const uint16_t sigalgs[] = {0x0403};
    static const uint16_t grease[] = {0x0a0a, 0x1a1a};
    struct hello_in in = {.legacy = 0x0303};
    char fp[JA4_LEN + 1];

    assert_string_equal(fingerprint(&in, fp), "t12i000000_000000000000_000000000000");
    in.ciphers = grease;
    in.nciphers = 2;
    assert_string_equal(fingerprint(&in, fp), "t12i000000_000000000000_000000000000");
    /* only SNI and ALPN: counted in part a, nothing left for part c */
    in.exts = sni_alpn;
    in.nexts = 2;
    in.sigalgs = sigalgs;
    in.nsigalgs = 1;
    in.alpn = h2;
    in.alpn_len = 2;
    assert_string_equal(fingerprint(&in, fp), "t12d0002h2_000000000000_000000000000");
}

/* Signature algorithms that are all GREASE: no '_' part, as with none. */
static void test_sigalgs_all_grease(void **state)
{
    static const uint16_t exts[] = {0x000d, 0x002b};
    static const uint16_t grease[] = {0x0a0a};
    struct hello_in in = {
        .legacy = 0x0303, .exts = exts, .nexts = 2, .sigalgs = grease, .nsigalgs = 1};
    char fp[JA4_LEN + 1], c[13], h[13];

    assert_string_equal(part(fingerprint(&in, fp), 'c', c), sha12("000d,002b", h));
}

/* Counts are two digits: 99 at most, yet the hash covers every entry. */
static void test_counts_capped(void **state)
{
    static uint16_t many[300];
    static char joined[300 * 5];
    struct hello_in in = {
        .legacy = 0x0303, .ciphers = many, .nciphers = N(many), .exts = many, .nexts = 100};
    char fp[JA4_LEN + 1], b[13], h[13];

    joined[0] = '\0';
    for (size_t i = 0; i < N(many); i++) {
        many[i] = (uint16_t)(0x0100 + i);
        snprintf(joined + strlen(joined), 6, "%s%04zx", i ? "," : "", 0x0100 + i);
    }
    fingerprint(&in, fp);
    assert_memory_equal(fp, "t12i9999", 8);
    assert_string_equal(part(fp, 'b', b), sha12(joined, h));
    in.nciphers = 99;
    in.nexts = 9;
    assert_memory_equal(fingerprint(&in, fp), "t12i9909", 8);
}

/* Highest non-GREASE supported_versions entry, else legacy_version; names per spec. */
static void test_versions(void **state)
{
    static const struct {
        uint16_t v;
        const char *name;
    } names[] = {{0x0304, "13"}, {0x0303, "12"}, {0x0302, "11"}, {0x0301, "10"},
                 {0x0300, "s3"}, {0x0002, "s2"}, {0xfeff, "d1"}, {0xfefd, "d2"},
                 {0xfefc, "d3"}, {0x0305, "00"}, {0x7f1c, "00"}};
    static const uint16_t unordered[] = {0x0303, 0x2a2a, 0x0304, 0x0302};
    struct hello_in in = {.legacy = 0x0303};
    char fp[JA4_LEN + 1];

    for (size_t i = 0; i < N(names); i++) {
        in.legacy = names[i].v;
        assert_memory_equal(fingerprint(&in, fp) + 1, names[i].name, 2);
    }
    in.legacy = 0x0303;
    in.versions = unordered;
    in.nversions = N(unordered);
    assert_memory_equal(fingerprint(&in, fp), "t13", 3);
    /* the record header's version is not an input at all; legacy is only a fallback */
    in.legacy = 0x0301;
    assert_memory_equal(fingerprint(&in, fp), "t13", 3);
}

/* d/i follows the server_name extension's presence, not its content. */
static void test_sni_flag(void **state)
{
    static const uint16_t with[] = {0x000a, 0x0000}, without[] = {0x000a, 0x0001};
    struct hello_in in = {.legacy = 0x0303, .exts = with, .nexts = 2};
    char fp[JA4_LEN + 1];

    assert_int_equal(fingerprint(&in, fp)[3], 'd');
    in.exts = without;
    assert_int_equal(fingerprint(&in, fp)[3], 'i');
}

/* The ALPN characters of one first protocol. */
static const char *alpn_chars(const void *p, size_t n, char *out)
{
    struct hello_in in = {.legacy = 0x0303, .alpn = p, .alpn_len = n};
    char fp[JA4_LEN + 1];

    fingerprint(&in, fp);
    memcpy(out, fp + 8, 2);
    out[2] = '\0';
    return out;
}

/* ALPN: first and last character, the hex rule (spec's examples), "00". */
static void test_alpn(void **state)
{
    static const uint8_t ab[] = {0xab}, abcd[] = {0xab, 0xcd}, x30ab[] = {0x30, 0xab};
    static const uint8_t x3031abcd[] = {0x30, 0x31, 0xab, 0xcd};
    static const uint8_t x30abcd31[] = {0x30, 0xab, 0xcd, 0x31};
    char a[3];

    assert_string_equal(alpn_chars(NULL, 0, a), "00");
    assert_string_equal(alpn_chars("", 0, a), "00");
    assert_string_equal(alpn_chars("h2", 2, a), "h2");
    assert_string_equal(alpn_chars("http/1.1", 8, a), "h1");
    assert_string_equal(alpn_chars("h3", 2, a), "h3");
    assert_string_equal(alpn_chars("x", 1, a), "xx");
    assert_string_equal(alpn_chars("Zz", 2, a), "Zz");
    /* non-alphanumeric end: first and last hex digit of the protocol */
    assert_string_equal(alpn_chars(ab, 1, a), "ab");
    assert_string_equal(alpn_chars(abcd, 2, a), "ad");
    assert_string_equal(alpn_chars(x30ab, 2, a), "3b");
    assert_string_equal(alpn_chars(x3031abcd, 4, a), "3d");
    assert_string_equal(alpn_chars(x30abcd31, 4, a), "01");
    assert_string_equal(alpn_chars("/h2", 3, a), "22"); /* '/' = 0x2f, '2' = 0x32 */
    assert_string_equal(alpn_chars("h2/", 3, a), "6f"); /* 'h' = 0x68, '/' = 0x2f */
    assert_string_equal(alpn_chars("h-2", 3, a), "h2"); /* only the ends matter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_spec_no_sigalgs),
        cmocka_unit_test(test_published_chrome_ech),
        cmocka_unit_test(test_published_raw_hellos),
        cmocka_unit_test(test_parse_without_ja4),
        cmocka_unit_test(test_grease_ignored),
        cmocka_unit_test(test_sorting),
        cmocka_unit_test(test_sorts_in_place),
        cmocka_unit_test(test_empty_lists),
        cmocka_unit_test(test_sigalgs_all_grease),
        cmocka_unit_test(test_counts_capped),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_sni_flag),
        cmocka_unit_test(test_alpn),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
