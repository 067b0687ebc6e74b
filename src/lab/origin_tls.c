/*
 * The origin's TLS side: the server SSL_CTX built from --cert/--key, ALPN
 * selection, non-blocking handshake/read/write of SSL objects driven by the
 * connection's plain events (origin.c), and the JSON description of a
 * session ("tls" in the echo).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "origin_http.h"

/*
 * ALPN: choose "http/1.1" when the client offers it; anything else (h2 only)
 * gets no ALPN answer, so the client falls back to HTTP/1.1 or gives up.
 */
static int otls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = "http/1.1";
    unsigned int i = 0;

    while (i < inlen) {
        unsigned int n = in[i];

        if (n == 0 || i + 1 + n > inlen)
            break;
        if (n == sizeof(h11) - 1 && memcmp(in + i + 1, h11, n) == 0) {
            *out = h11;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* OpenSSL's per-connection read buffer with read-ahead: a few records per read(2). */
#define OTLS_READ_BUF (64 * 1024)

/* Largest plaintext handed to one SSL_write: four full records. */
#define OTLS_WRITE_MAX (64 * 1024)

/* Returns 0 if path can be opened for reading, else logs which file and why and returns -1. */
static int otls_check_readable(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        log_error("origin: cannot read %s '%s'", what, path);
        return -1;
    }
    fclose(f);
    return 0;
}

SSL_CTX *otls_ctx_new(const char *cert_file, const char *key_file)
{
    static const unsigned char sid_ctx[] = "tlsgate-origin";
    SSL_CTX *ctx;

    if (otls_check_readable("certificate", cert_file) < 0 ||
        otls_check_readable("key", key_file) < 0)
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        log_ssl_error("origin: SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        log_ssl_error("origin: cannot require TLS 1.2");
        goto fail;
    }
    /* A FIN without close_notify reads as EOF: most HTTP clients close that way. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read whole socket buffers, not 5-byte record headers then bodies: half the reads. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, OTLS_READ_BUF);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        log_ssl_error("origin: cannot load certificate '%s'", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        log_ssl_error("origin: cannot load key '%s'", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_ssl_error("origin: key '%s' does not match certificate '%s'", key_file, cert_file);
        goto fail;
    }
    /* Resumption with the server-side cache needs a session id context. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, otls_alpn_cb, NULL);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

enum otls_pre_result otls_preamble(int fd, struct otls_pre *pre, struct pp_info *info)
{
    enum pp_result r;
    ssize_t n, k;

    if (pre->buf == NULL) {
        pre->cap = 256; /* any v1 header, and v2 with small TLVs */
        if ((pre->buf = malloc(pre->cap)) == NULL)
            return OTLS_PRE_CLOSED;
    }
    n = recv(fd, pre->buf + pre->len, pre->cap - pre->len, MSG_PEEK);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? OTLS_PRE_WAIT : OTLS_PRE_CLOSED;
    if (n == 0)
        return OTLS_PRE_CLOSED;
    r = pp_parse(pre->buf, pre->len + (size_t)n, PP_ANY, info);
    switch (r) {
    case PP_ABSENT:
        /* Bytes already taken were a header prefix: what follows is not TLS either. */
        return pre->len == 0 ? OTLS_PRE_NONE : OTLS_PRE_BAD;
    case PP_OK:
        if (info->consumed < pre->len || info->consumed > pre->len + (size_t)n)
            return OTLS_PRE_BAD;
        k = (ssize_t)(info->consumed - pre->len);
        if (k > 0 && recv(fd, pre->buf + pre->len, (size_t)k, 0) != k)
            return OTLS_PRE_CLOSED;
        return OTLS_PRE_PROXY;
    case PP_NEED_MORE:
        /* Every peeked byte is inside the header: take them all. */
        if (recv(fd, pre->buf + pre->len, (size_t)n, 0) != n)
            return OTLS_PRE_CLOSED;
        pre->len += (size_t)n;
        if (pre->len == pre->cap) {
            uint8_t *p;

            if (pre->cap == PP_V2_MAX || (p = realloc(pre->buf, PP_V2_MAX)) == NULL)
                return OTLS_PRE_BAD;
            pre->buf = p;
            pre->cap = PP_V2_MAX;
        }
        return OTLS_PRE_WAIT;
    default:
        return OTLS_PRE_BAD;
    }
}

/* Maps the SSL_get_error() of a failed call to an I/O outcome. */
static enum oio otls_error(SSL *ssl, int ret)
{
    switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return OIO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return OIO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return OIO_EOF;
    case SSL_ERROR_SYSCALL:
        /* A FIN without close_notify: clients often do that; treat as EOF. */
        if (ERR_peek_error() == 0 && (errno == 0 || ret == 0))
            return OIO_EOF;
        return OIO_ERROR;
    default:
        return OIO_ERROR;
    }
}

enum oio otls_handshake(SSL *ssl)
{
    int r;

    errno = 0;
    r = SSL_do_handshake(ssl);
    return r == 1 ? OIO_DONE : otls_error(ssl, r);
}

enum oio otls_read(SSL *ssl, struct evbuffer *in, size_t max, size_t *got)
{
    *got = 0;
    while (*got < max) {
        struct evbuffer_iovec v;
        int r;

        if (evbuffer_reserve_space(in, 16384, &v, 1) != 1)
            return OIO_ERROR;
        errno = 0;
        r = SSL_read(ssl, v.iov_base, (int)(v.iov_len < 16384 ? v.iov_len : 16384));
        if (r <= 0) {
            evbuffer_commit_space(in, &v, 0);
            r = otls_error(ssl, r);
            return r == OIO_WANT_READ ? OIO_DONE : (enum oio)r;
        }
        v.iov_len = (size_t)r;
        evbuffer_commit_space(in, &v, 1);
        *got += (size_t)r;
    }
    return OIO_MORE;
}

enum oio otls_write(SSL *ssl, struct evbuffer *out, size_t *retry)
{
    size_t len;

    while ((len = evbuffer_get_length(out)) > 0) {
        unsigned char *p;
        int r;

        if (*retry != 0)
            len = *retry;
        else if (len > OTLS_WRITE_MAX)
            len = OTLS_WRITE_MAX;
        /* One contiguous span so small responses go out as one record. */
        if ((p = evbuffer_pullup(out, (ev_ssize_t)len)) == NULL)
            return OIO_ERROR;
        errno = 0;
        r = SSL_write(ssl, p, (int)len);
        if (r <= 0) {
            *retry = len;
            r = otls_error(ssl, r);
            return r == OIO_EOF ? OIO_ERROR : (enum oio)r;
        }
        *retry = 0;
        evbuffer_drain(out, (size_t)r);
    }
    return OIO_DONE;
}

size_t otls_errors(char *buf, size_t len)
{
    unsigned long e;
    size_t n = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        if (n > 0 && n + 2 < len) {
            buf[n++] = ';';
            buf[n++] = ' ';
        }
        if (n + 1 < len) {
            ERR_error_string_n(e, buf + n, len - n);
            n += strlen(buf + n);
        }
    }
    return n;
}

/* Appends s as a JSON string, or null when s is NULL. */
static void add_json_or_null(struct sbuf *b, const char *s, size_t n)
{
    if (s == NULL)
        sbuf_add(b, "null", 4);
    else
        sbuf_add_json(b, s, n);
}

void otls_add_json(struct sbuf *b, SSL *ssl)
{
    const unsigned char *alpn = NULL;
    unsigned int alpn_len = 0;
    const char *s;

    if (ssl == NULL) {
        sbuf_add(b, "null", 4);
        return;
    }
    sbuf_adds(b, "{\"version\":");
    s = SSL_get_version(ssl);
    add_json_or_null(b, s, s ? strlen(s) : 0);
    sbuf_adds(b, ",\"cipher\":");
    s = SSL_get_cipher_name(ssl);
    add_json_or_null(b, s, s ? strlen(s) : 0);
    sbuf_adds(b, ",\"sni\":");
    s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    add_json_or_null(b, s, s ? strlen(s) : 0);
    sbuf_adds(b, ",\"alpn\":");
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    add_json_or_null(b, alpn_len ? (const char *)alpn : NULL, alpn_len);
    sbuf_adds(b, SSL_session_reused(ssl) ? ",\"resumed\":true}" : ",\"resumed\":false}");
}
