/*
 * The replay BIO (see tls_replay_bio.h): bytes already read first, then the
 * socket. Reads and writes follow OpenSSL's socket BIO: a non-blocking
 * socket's EAGAIN becomes a retry, a zero read is the end of the stream.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_replay_bio.h"

/* The BIO's state. */
struct replay {
    int fd;       /* the socket */
    uint8_t *buf; /* bytes to serve before the socket (owned); NULL once served */
    size_t len;   /* bytes in buf */
    size_t off;   /* of which already served */
    bool eof;     /* the socket read returned 0 */
};

static BIO_METHOD *replay_method;
static pthread_once_t replay_once = PTHREAD_ONCE_INIT;

/* True for an errno that means "try again later" on a non-blocking socket. */
static bool replay_should_retry(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static int replay_read(BIO *b, char *out, int outl)
{
    struct replay *r = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (out == NULL || outl <= 0)
        return 0;
    if (r->buf != NULL) {
        size_t take = r->len - r->off < (size_t)outl ? r->len - r->off : (size_t)outl;

        memcpy(out, r->buf + r->off, take);
        r->off += take;
        if (r->off == r->len) {
            /* Served: from here on the BIO is a plain socket BIO. */
            free(r->buf);
            r->buf = NULL;
        }
        return (int)take;
    }
    n = recv(r->fd, out, (size_t)outl, 0);
    if (n < 0 && replay_should_retry(errno))
        BIO_set_retry_read(b);
    if (n == 0)
        r->eof = true;
    return (int)n;
}

static int replay_write(BIO *b, const char *in, int inl)
{
    struct replay *r = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (in == NULL || inl <= 0)
        return 0;
    /* MSG_NOSIGNAL: a peer that reset the connection is an error, not a SIGPIPE. */
    n = send(r->fd, in, (size_t)inl, MSG_NOSIGNAL);
    if (n < 0 && replay_should_retry(errno))
        BIO_set_retry_write(b);
    return (int)n;
}

static int replay_puts(BIO *b, const char *str)
{
    return replay_write(b, str, (int)strlen(str));
}

static long replay_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct replay *r = BIO_get_data(b);

    switch (cmd) {
    case BIO_C_GET_FD:
        if (r == NULL)
            return -1;
        if (ptr != NULL)
            *(int *)ptr = r->fd;
        return r->fd;
    case BIO_CTRL_GET_CLOSE:
        return BIO_get_shutdown(b);
    case BIO_CTRL_SET_CLOSE:
        BIO_set_shutdown(b, (int)num);
        return 1;
    case BIO_CTRL_PENDING:
        return r != NULL && r->buf != NULL ? (long)(r->len - r->off) : 0;
    case BIO_CTRL_EOF:
        return r != NULL && r->buf == NULL && r->eof;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static int replay_create(BIO *b)
{
    BIO_set_init(b, 0);
    BIO_set_data(b, NULL);
    return 1;
}

static int replay_destroy(BIO *b)
{
    struct replay *r = BIO_get_data(b);

    if (r == NULL)
        return 1;
    if (BIO_get_shutdown(b) && BIO_get_init(b))
        close(r->fd);
    free(r->buf);
    free(r);
    BIO_set_data(b, NULL);
    return 1;
}

/* Made once per process and kept: every replay BIO points at it. */
static void replay_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "tlsgate replay socket");

    if (m == NULL)
        return;
    if (!BIO_meth_set_read(m, replay_read) || !BIO_meth_set_write(m, replay_write) ||
        !BIO_meth_set_puts(m, replay_puts) || !BIO_meth_set_ctrl(m, replay_ctrl) ||
        !BIO_meth_set_create(m, replay_create) || !BIO_meth_set_destroy(m, replay_destroy)) {
        BIO_meth_free(m);
        return;
    }
    replay_method = m;
}

/* See tls_replay_bio.h. */
BIO *tls_replay_bio_new(int fd, const void *prefix, size_t len)
{
    struct replay *r;
    BIO *b;

    if (pthread_once(&replay_once, replay_method_init) != 0 || replay_method == NULL)
        return NULL;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->fd = fd;
    if (len > 0) {
        if ((r->buf = malloc(len)) == NULL)
            goto err_r;
        memcpy(r->buf, prefix, len);
        r->len = len;
    }
    if ((b = BIO_new(replay_method)) == NULL)
        goto err_buf;
    BIO_set_data(b, r);
    BIO_set_shutdown(b, BIO_NOCLOSE);
    BIO_set_init(b, 1);
    return b;

err_buf:
    free(r->buf);
err_r:
    free(r);
    return NULL;
}
