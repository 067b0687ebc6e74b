/*
 * The status line of an http check's answer. The server is not trusted:
 * every byte is checked before it is read, and nothing past the status code
 * matters (the reason phrase may be anything but a line feed).
 */
#include "health_int.h"

enum health_parse health_parse_status(const char *buf, size_t len, unsigned *status)
{
    static const char prefix[] = "HTTP/1.";
    const size_t plen = sizeof(prefix) - 1;
    unsigned code = 0;
    size_t i;

    /* "HTTP/1." then one digit, a space and three digits */
    for (i = 0; i < len && i < plen + 5; i++) {
        char c = buf[i];
        bool ok = i < plen        ? c == prefix[i]
                  : i == plen     ? c >= '0' && c <= '9'
                  : i == plen + 1 ? c == ' '
                                  : c >= '0' && c <= '9';
        if (!ok)
            return HEALTH_PARSE_BAD;
        if (i > plen + 1)
            code = code * 10 + (unsigned)(c - '0');
    }
    if (i < plen + 5)
        return HEALTH_PARSE_MORE;
    if (code < 100)
        return HEALTH_PARSE_BAD;
    /* then the end of the line, directly or after a space and a reason */
    if (i < len && buf[i] != ' ' && buf[i] != '\r' && buf[i] != '\n')
        return HEALTH_PARSE_BAD;
    for (; i < len && i < HEALTH_STATUS_LINE_MAX; i++) {
        if (buf[i] == '\n') {
            *status = code;
            return HEALTH_PARSE_DONE;
        }
    }
    return i >= HEALTH_STATUS_LINE_MAX ? HEALTH_PARSE_BAD : HEALTH_PARSE_MORE;
}
