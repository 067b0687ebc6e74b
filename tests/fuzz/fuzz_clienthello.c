/*
 * Fuzz target for the passthrough ClientHello parser (include/clienthello.h).
 *
 * The parser is resumable: the gateway calls it again with a longer buffer as
 * bytes arrive. So each input is parsed whole and as a prefix cut at a point
 * the input chooses, and the two answers must agree with the contract: a
 * prefix of a hello that parses is NEED_MORE until the hello is complete and
 * then the same hello; NOT_TLS and INVALID never turn into something else
 * when more bytes come.
 */
#include <stdint.h>
#include <string.h>

#include "clienthello.h"
#include "fuzz_util.h"

/* clienthello_parse zeroes *out before filling it, so equal hellos compare equal bytewise. */
static bool same_hello(const struct clienthello *a, const struct clienthello *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* What a parsed hello promises to its users (logs, routing, fingerprints). */
static void check_done(const struct clienthello *ch, size_t len)
{
    char versions[64], list[512];

    FUZZ_CHECK(ch->wire_len > 0 && ch->wire_len <= len && ch->wire_len <= CLIENTHELLO_MAX_WIRE);
    FUZZ_CHECK(ch->nrecords >= 1);
    FUZZ_CHECK(ch->msg_len <= CLIENTHELLO_MAX_MSG);
    FUZZ_CHECK(memchr(ch->sni, '\0', sizeof(ch->sni)) != NULL);
    FUZZ_CHECK(!ch->has_sni || ch->sni[0] != '\0');
    FUZZ_CHECK(memchr(ch->alpn, '\0', sizeof(ch->alpn)) != NULL);
    FUZZ_CHECK(memchr(ch->ja4, '\0', sizeof(ch->ja4)) != NULL);
    for (const char *s = ch->sni; *s != '\0'; s++)
        FUZZ_CHECK(*s > ' ' && *s < 0x7f && !(*s >= 'A' && *s <= 'Z'));
    clienthello_versions_str(ch, versions, sizeof(versions));
    FUZZ_CHECK(strlen(versions) < sizeof(versions));
    clienthello_versions_str(ch, versions, 1);
    FUZZ_CHECK(versions[0] == '\0');
    FUZZ_CHECK(strlen(clienthello_ciphers_str(ch, list, sizeof(list))) < sizeof(list));
    FUZZ_CHECK(strlen(clienthello_groups_str(ch, list, sizeof(list))) < sizeof(list));
    FUZZ_CHECK(strlen(clienthello_groups_str(ch, list, 6)) < 6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clienthello whole, part;
    size_t cut = fuzz_cut(data, size, 0);
    uint8_t *prefix = fuzz_copy(data, cut);
    enum ch_result rw = clienthello_parse(data, size, &whole);
    enum ch_result rp = clienthello_parse(prefix, cut, &part);

    FUZZ_CHECK(clienthello_result_str(rw)[0] != '\0');
    if (rw == CH_DONE) {
        check_done(&whole, size);
        if (cut < whole.wire_len)
            FUZZ_CHECK(rp == CH_NEED_MORE);
        else
            FUZZ_CHECK(rp == CH_DONE && same_hello(&whole, &part));
    }
    /* A verdict on fewer bytes stands when more arrive. */
    if (rp != CH_NEED_MORE)
        FUZZ_CHECK(rp == rw);
    if (rp == CH_DONE)
        FUZZ_CHECK(same_hello(&whole, &part));
    free(prefix);
    return 0;
}
