/*
 * Responses the gateway makes itself: refusals (400, 403, 404, 408, 431),
 * redirects, and the errors of an exchange that failed (502, 503, 504).
 * Short, plain text, and honest about closing the connection.
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http/http_engine.h"

size_t http_reply(struct session *s, unsigned status, const char *location, bool close)
{
    struct http_sess *h = s->http;
    const struct http_conf *hc = &s->l->http;
    struct evbuffer *out = bufferevent_get_output(s->client.bev);
    size_t before = evbuffer_get_length(out);
    const char *reason = http_reason(status);
    char body[128];
    int blen;

    blen = snprintf(body, sizeof(body), "%u %s\n", status, reason);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = 0;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %u %s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %d\r\n"
                        "Cache-Control: no-store\r\n",
                        status, reason, blen);
    if (location != NULL)
        evbuffer_add_printf(out, "Location: %s\r\n", location);
    if (h->tls && hc->hsts != NULL && hc->hsts[0] != '\0')
        evbuffer_add_printf(out, "Strict-Transport-Security: %s\r\n", hc->hsts);
    if (close)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (h->txn.client_minor == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    if (!h->txn.head_request)
        evbuffer_add(out, body, (size_t)blen);
    return evbuffer_get_length(out) - before;
}
