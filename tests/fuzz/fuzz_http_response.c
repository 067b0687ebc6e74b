/*
 * Fuzz target for the strict HTTP/1.1 response head parser and the chunked
 * body scanner (include/http_parse.h), as for requests. The method of the
 * request being answered (it changes the body rules) is picked by the input.
 */
#include <stdint.h>

#include "fuzz_http.h"

static struct http_str req_method;

/* http_parse_response with the method this input picked, shaped like the request parser. */
static enum http_result parse_response(const char *buf, size_t len, size_t max_head,
                                       struct http_head *h)
{
    return http_parse_response(buf, len, max_head, req_method, h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "CONNECT"};
    static struct http_head h; /* ~3 KiB: keep it off the stack */
    const char *m = methods[fuzz_cut(data, size, 4) % 4];
    enum http_result r;

    req_method.p = m;
    req_method.len = strlen(m);
    r = fuzz_head_both_ways(parse_response, data, size, 502, &h);
    if (r == HTTP_OK) {
        FUZZ_CHECK(h.status >= 100 && h.status <= 999);
        FUZZ_CHECK(h.body == HTTP_BODY_NONE ||
                   (h.status >= 200 && h.status != 204 && h.status != 304 && m[0] != 'H'));
        if (h.body == HTTP_BODY_CHUNKED)
            fuzz_chunked_both_ways(data + h.head_len, size - h.head_len);
    } else {
        fuzz_chunked_both_ways(data, size);
    }
    return 0;
}
