/*
 * A session resumes only under the server name it was made for (RFC 6066,
 * section 3: the server must not resume when the SNI differs; RFC 8446,
 * 4.6.1). Without this, a session made for shop.example on a listener that
 * also serves bank.example resumed under bank.example, still holding the
 * shop certificate's authentication.
 *
 * Each ticket carries the SNI of its handshake as ticket "app data" (inside
 * the encrypted ticket). When a ticket comes back, the name in the new
 * ClientHello must be the same (case-insensitively), or the ticket is
 * ignored: a full handshake follows, with a new ticket for the new name.
 */
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <string.h>
#include <strings.h>

#include "tls/tls_int.h"

/*
 * The host_name in the ClientHello being processed: *name and *len, or
 * *len 0 when it sent none. Reads the raw extension: OpenSSL looks a TLS 1.2
 * session up before it parses the SNI, so SSL_get_servername() is not set yet.
 */
static void hello_sni(SSL *ssl, const unsigned char **name, size_t *len)
{
    const unsigned char *p;
    size_t n, list, nlen;

    *name = NULL;
    *len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) != 1 || n < 5)
        return;
    list = (size_t)p[0] << 8 | p[1];
    nlen = (size_t)p[3] << 8 | p[4];
    if (list != n - 2 || p[2] != TLSEXT_NAMETYPE_host_name || nlen > n - 5)
        return; /* malformed: OpenSSL refuses it anyway */
    *name = p + 5;
    *len = nlen;
}

/* A ticket is being made: record the SNI of this handshake in it. */
static int resume_sni_gen(SSL *ssl, void *arg)
{
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_SESSION *sess = SSL_get0_session(ssl);

    (void)arg;
    if (sess == NULL)
        return 1;
    /* "" for no SNI: app data of length 0 reads back as none */
    return SSL_SESSION_set1_ticket_appdata(sess, sni ? sni : "", sni ? strlen(sni) : 0);
}

/* A ticket came back: use it only when the SNI is the one it was made for. */
static SSL_TICKET_RETURN resume_sni_dec(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                        size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    const unsigned char *now;
    void *then = NULL;
    size_t now_len, then_len = 0;

    (void)keyname, (void)keyname_len, (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        break;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
    hello_sni(ssl, &now, &now_len);
    if (SSL_SESSION_get0_ticket_appdata(sess, &then, &then_len) != 1)
        then_len = 0;
    if (now_len != then_len ||
        (now_len > 0 && strncasecmp((const char *)now, (const char *)then, now_len) != 0))
        return SSL_TICKET_RETURN_IGNORE_RENEW; /* another name: full handshake */
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

/* See tls_int.h. */
int tls_resume_sni_install(SSL_CTX *ctx)
{
    return SSL_CTX_set_session_ticket_cb(ctx, resume_sni_gen, resume_sni_dec, NULL) == 1 ? 0 : -1;
}
