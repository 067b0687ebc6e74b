/*
 * A session resumes only under the server name it was made for (RFC 6066,
 * section 3: the server must not resume when the SNI differs; RFC 8446,
 * 4.6.1). Without this, a session made for shop.example on a listener that
 * also serves bank.example resumed under bank.example, still holding the
 * shop certificate's authentication.
 *
 * OpenSSL resumes a session only when the session id context stored in it is
 * the connection's, whichever way the session came back: a TLS 1.2 ticket,
 * a TLS 1.3 ticket (stateless, or stateful with session_tickets off) or the
 * TLS 1.2 session-id cache. Any other session counts as a cache miss. So
 * each handshake gets a context of its own name: the ClientHello callback,
 * which OpenSSL calls before it looks for a session, sets it to SHA-256 of
 * the listener's context and the SNI, lower-cased. A session made for
 * another name then misses: a full handshake follows, with the certificate
 * for the new name.
 */
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <string.h>

#include "tls/tls_int.h"

/* The longest host_name OpenSSL accepts (TLSEXT_MAXLEN_host_name). */
#define SNI_MAX 255

/*
 * The host_name in the ClientHello being processed: *name and *len, or
 * *len 0 when it sent none or a malformed extension (OpenSSL refuses that
 * after this callback).
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
        return;
    *name = p + 5;
    *len = nlen;
}

/* ClientHello callback: the connection's session id context, for its SNI. */
static int resume_sni_hello(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *listener_sid = arg;
    unsigned char in[SSL_MAX_SID_CTX_LENGTH + SNI_MAX], sid[EVP_MAX_MD_SIZE];
    const unsigned char *name;
    unsigned int sid_len = 0;
    size_t len;

    hello_sni(ssl, &name, &len);
    if (len > SNI_MAX) {
        *alert = SSL_AD_UNRECOGNIZED_NAME; /* what OpenSSL answers a full handshake */
        return SSL_CLIENT_HELLO_ERROR;
    }
    memcpy(in, listener_sid, SSL_MAX_SID_CTX_LENGTH);
    for (size_t i = 0; i < len; i++) /* DNS names compare case-insensitively */
        in[SSL_MAX_SID_CTX_LENGTH + i] =
            name[i] >= 'A' && name[i] <= 'Z' ? (unsigned char)(name[i] - 'A' + 'a') : name[i];
    if (EVP_Digest(in, SSL_MAX_SID_CTX_LENGTH + len, sid, &sid_len, EVP_sha256(), NULL) != 1 ||
        sid_len < SSL_MAX_SID_CTX_LENGTH ||
        SSL_set_session_id_context(ssl, sid, SSL_MAX_SID_CTX_LENGTH) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* See tls_int.h. */
void tls_resume_sni_install(SSL_CTX *ctx, const unsigned char *listener_sid)
{
    SSL_CTX_set_client_hello_cb(ctx, resume_sni_hello, (void *)listener_sid);
}
