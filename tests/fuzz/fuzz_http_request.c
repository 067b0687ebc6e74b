/*
 * Fuzz target for the strict HTTP/1.1 request head parser and the chunked
 * body scanner (include/http_parse.h). The head is parsed whole and resumed
 * from a prefix; a chunked body after an accepted head (or, when no head is
 * accepted, the whole input) is scanned at once and in pieces. Both parsers
 * must answer the same however the bytes are split. An accepted head's
 * path is normalised as rules see it (http_rules.h: match_path), which
 * must come out in normal form, never longer, and stable when run again.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_http.h"
#include "http_rules.h"

/* s contains the C string pat. */
static bool has(struct http_str s, const char *pat)
{
    size_t n = strlen(pat);

    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.p + i, pat, n) == 0)
            return true;
    return false;
}

static bool ends_with(struct http_str s, const char *pat)
{
    size_t n = strlen(pat);

    return s.len >= n && memcmp(s.p + s.len - n, pat, n) == 0;
}

/* The normalised path of an accepted head. */
static void check_match_path(const struct http_head *h)
{
    static char buf[HTTP_RULES_PATH_MAX], again_buf[HTTP_RULES_PATH_MAX];
    static struct http_head again;
    struct http_request_view v, w;

    if (http_request_view_init(&v, h, NULL, buf, sizeof(buf)) < 0) {
        FUZZ_CHECK(v.path.len > sizeof(buf));
        return;
    }
    FUZZ_CHECK(v.match_path.len <= v.path.len);
    if (v.path.len == 0 || v.path.p[0] != '/') {
        FUZZ_CHECK(v.match_path.p == v.path.p && v.match_path.len == v.path.len);
        return;
    }
    FUZZ_CHECK(v.match_path.len > 0 && v.match_path.p[0] == '/');
    FUZZ_CHECK(!has(v.match_path, "//") && !has(v.match_path, "/./") &&
               !has(v.match_path, "/../") && !ends_with(v.match_path, "/.") &&
               !ends_with(v.match_path, "/.."));
    /* Once more: nothing changes (unless decoding made new escapes or a query). */
    if (memchr(v.match_path.p, '%', v.match_path.len) != NULL ||
        memchr(v.match_path.p, '?', v.match_path.len) != NULL)
        return;
    again = *h;
    again.target = v.match_path;
    FUZZ_CHECK(http_request_view_init(&w, &again, NULL, again_buf, sizeof(again_buf)) == 0);
    FUZZ_CHECK(w.match_path.len == v.match_path.len &&
               memcmp(w.match_path.p, v.match_path.p, v.match_path.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_head h; /* ~3 KiB: keep it off the stack */
    enum http_result r = fuzz_head_both_ways(http_parse_request, data, size, 431, &h);

    if (r == HTTP_OK) {
        FUZZ_CHECK(h.method.len > 0 && h.target.len > 0);
        FUZZ_CHECK(h.body != HTTP_BODY_UNTIL_CLOSE);
        check_match_path(&h);
        if (h.body == HTTP_BODY_CHUNKED)
            fuzz_chunked_both_ways(data + h.head_len, size - h.head_len);
    } else {
        fuzz_chunked_both_ways(data, size);
    }
    return 0;
}
