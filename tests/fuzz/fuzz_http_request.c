/*
 * Fuzz target for the strict HTTP/1.1 request head parser and the chunked
 * body scanner (include/http_parse.h). The head is parsed whole and resumed
 * from a prefix; a chunked body after an accepted head (or, when no head is
 * accepted, the whole input) is scanned at once and in pieces. Both parsers
 * must answer the same however the bytes are split.
 */
#include <stdint.h>

#include "fuzz_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_head h; /* ~3 KiB: keep it off the stack */
    enum http_result r = fuzz_head_both_ways(http_parse_request, data, size, 431, &h);

    if (r == HTTP_OK) {
        FUZZ_CHECK(h.method.len > 0 && h.target.len > 0);
        FUZZ_CHECK(h.body != HTTP_BODY_UNTIL_CLOSE);
        if (h.body == HTTP_BODY_CHUNKED)
            fuzz_chunked_both_ways(data + h.head_len, size - h.head_len);
    } else {
        fuzz_chunked_both_ways(data, size);
    }
    return 0;
}
