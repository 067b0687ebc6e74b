/*
 * JSON string bodies for the access log. What goes in comes from clients
 * (SNI, target, Host), so anything may arrive: the output must stay one
 * valid JSON string of valid UTF-8 whatever the input.
 */
#include <string.h>

#include "accesslog.h"

/*
 * Length of the well-formed UTF-8 sequence of two to four bytes at s (RFC
 * 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or 0. s
 * is NUL-terminated, and NUL is never a continuation byte, so this never
 * reads past the end.
 */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (s[0] == 0xe0)
        lo = 0xa0; /* overlong below U+0800 */
    else if (s[0] == 0xed)
        hi = 0x9f; /* surrogates */
    else if (s[0] == 0xf0)
        lo = 0x90; /* overlong below U+10000 */
    else if (s[0] == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

size_t json_escape(char *buf, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    if (len == 0)
        return 0;
    while (*p != '\0') {
        char esc[6];
        const char *out = esc;
        size_t olen;

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            olen = 2;
        } else if (*p >= 0x20 && *p < 0x7f) {
            esc[0] = (char)*p;
            olen = 1;
        } else if ((olen = utf8_len(p)) > 0) {
            out = (const char *)p; /* a whole character: as it is */
        } else {
            /* Control bytes, DEL, and bytes that are not UTF-8: as the code point of the byte. */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            olen = 6;
        }
        if (n + olen >= len)
            break;
        memcpy(buf + n, out, olen);
        n += olen;
        p += out == esc ? 1 : olen;
    }
    buf[n] = '\0';
    return n;
}
