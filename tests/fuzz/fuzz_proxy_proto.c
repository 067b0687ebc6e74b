/*
 * Fuzz target for the PROXY protocol v1/v2 parser (include/proxy_proto.h).
 *
 * Each input is parsed whole and as a prefix cut where the input chooses,
 * for each accepted version setting; answers must fit the resumable
 * contract. A header that parses with addresses is rebuilt with pp_build and
 * parsed again: the addresses must survive the round trip.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "proxy_proto.h"

/* True when a and b are the same IP address and port. */
static bool same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

static bool same_info(const struct pp_info *a, const struct pp_info *b)
{
    return a->version == b->version && a->local == b->local && a->consumed == b->consumed &&
           (a->local || (same_endpoint(&a->src, &b->src) && same_endpoint(&a->dst, &b->dst)));
}

/* Rebuilds the header info describes and checks it parses back to the same addresses. */
static void check_round_trip(const struct pp_info *info)
{
    uint8_t hdr[PP_HDR_MAX];
    struct pp_info again;
    int n = pp_build(info->version == 1 ? PP_V1 : PP_V2, (const struct sockaddr *)&info->src,
                     (const struct sockaddr *)&info->dst, hdr, sizeof(hdr));

    FUZZ_CHECK(n > 0 && (size_t)n <= sizeof(hdr));
    FUZZ_CHECK(pp_parse(hdr, (size_t)n, PP_ANY, &again) == PP_OK);
    FUZZ_CHECK(again.version == info->version && !again.local && again.consumed == (size_t)n);
    FUZZ_CHECK(same_endpoint(&info->src, &again.src) && same_endpoint(&info->dst, &again.dst));
}

/* Parses data whole and its first cut bytes accepting versions accept. */
static enum pp_result check_resumable(const uint8_t *data, size_t size, size_t cut,
                                      enum pp_version accept, struct pp_info *whole)
{
    uint8_t *prefix = fuzz_copy(data, cut);
    struct pp_info part;
    enum pp_result rw = pp_parse(data, size, accept, whole);
    enum pp_result rp = pp_parse(prefix, cut, accept, &part);

    if (rw == PP_OK) {
        FUZZ_CHECK(whole->consumed > 0 && whole->consumed <= size);
        FUZZ_CHECK(whole->version == 1 || whole->version == 2);
        FUZZ_CHECK(whole->version == 1 ? whole->consumed <= PP_V1_MAX
                                       : whole->consumed <= PP_V2_MAX);
        FUZZ_CHECK(rp == (cut < whole->consumed ? PP_NEED_MORE : PP_OK));
    }
    /* A verdict on fewer bytes stands when more arrive. */
    if (rp != PP_NEED_MORE)
        FUZZ_CHECK(rp == rw);
    if (rp == PP_OK)
        FUZZ_CHECK(same_info(whole, &part));
    free(prefix);
    return rw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut = fuzz_cut(data, size, 0);
    struct pp_info any, v1, v2;
    enum pp_result r = check_resumable(data, size, cut, PP_ANY, &any);
    enum pp_result r1 = check_resumable(data, size, cut, PP_V1, &v1);
    enum pp_result r2 = check_resumable(data, size, cut, PP_V2, &v2);

    /* Accepting one version only narrows what PP_ANY accepts. */
    if (r == PP_OK) {
        FUZZ_CHECK((any.version == 1 ? r1 : r2) == PP_OK);
        FUZZ_CHECK((any.version == 1 ? r2 : r1) == PP_BAD);
        FUZZ_CHECK(same_info(&any, any.version == 1 ? &v1 : &v2));
        if (!any.local)
            check_round_trip(&any);
    }
    if (r == PP_ABSENT)
        FUZZ_CHECK(r1 == PP_ABSENT && r2 == PP_ABSENT);
    return 0;
}
