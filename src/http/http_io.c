/*
 * Bulk I/O for the HTTP engine (see http_io.h). Measured on a 1 MiB
 * response through offload, libevent 2.1 alone spent per MiB: 256 reads of
 * 4 KiB from the server (EVBUFFER_MAX_READ, each after an ioctl(FIONREAD)),
 * 256 TLS records of 4 KiB (bufferevent_openssl calls SSL_write once per
 * buffer chain, and the chains were the 4 KiB reads), and an epoll_ctl pair
 * per burst to wait for a writable socket that was writable all along.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "http/http_io.h"

/*
 * Bytes asked for per read, in a fresh chain of exactly 64 KiB with
 * libevent's chain header (chains are allocated in powers of two, header
 * included) once a connection has shown it sends more than IO_READ_SMALL at
 * a time; before that, or after, a 4 KiB chain backed by a per-thread
 * overflow area: a small response then costs no 64 KiB allocation, and a
 * large burst is still taken in one readv() (the overflow is copied).
 */
#define IO_READ_MAX   (60 * 1024)
#define IO_READ_SMALL (4096 - 128)
#define IO_OVERFLOW   (64 * 1024)

/* Per thread, by descriptor (hashed; a collision only costs a copy or a big chain). */
#define IO_HINT_BITS 4096
static __thread uint64_t io_bulk_hint[IO_HINT_BITS / 64];
static __thread char io_overflow[IO_OVERFLOW];

/* Largest TLS record payload: a response starts with one full record. */
#define IO_TLS_RECORD 16384

/* libevent's own read callback of socket bufferevents, for what we leave to it. */
static _Atomic(event_callback_fn) io_libevent_readcb;

/*
 * The server socket is readable: one readv() into the input (see
 * IO_READ_MAX), then what libevent's callback would do (read callback, or
 * event callback on EOF/error, reading stopped). A timeout or a read high
 * watermark already reached is left to libevent's callback, which handles
 * them (suspending the read).
 */
static void io_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct bufferevent *bev = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec vec[2];
    struct iovec iov[3];
    unsigned hint = (unsigned)fd % IO_HINT_BITS;
    uint64_t hint_bit = (uint64_t)1 << (hint % 64);
    bool bulk = (io_bulk_hint[hint / 64] & hint_bit) != 0;
    size_t want = bulk ? IO_READ_MAX : IO_READ_SMALL, high = 0, len = evbuffer_get_length(in);
    size_t reserved = 0, overflow = 0;
    ssize_t n;
    int nvec, niov, err;

    bufferevent_getwatermark(bev, EV_READ, NULL, &high);
    if ((what & EV_TIMEOUT) || (high != 0 && len >= high)) {
        event_callback_fn libevent_cb = atomic_load(&io_libevent_readcb);

        libevent_cb(fd, what, arg);
        return;
    }
    if (high != 0 && high - len < want)
        want = high - len;
    /* A socket bufferevent freezes the end of its input: only it appends there. */
    evbuffer_unfreeze(in, 0);
    nvec = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
    for (niov = 0; niov < nvec; niov++) {
        iov[niov].iov_base = vec[niov].iov_base;
        iov[niov].iov_len = vec[niov].iov_len;
        reserved += vec[niov].iov_len;
    }
    if (!bulk && nvec > 0 && (high == 0 || high - len > reserved)) {
        overflow =
            high == 0 || high - len - reserved > IO_OVERFLOW ? IO_OVERFLOW : high - len - reserved;
        iov[niov].iov_base = io_overflow;
        iov[niov++].iov_len = overflow;
    }
    n = nvec > 0 ? readv(fd, iov, niov) : -1;
    err = errno;
    if (n > 0) {
        size_t left = (size_t)n;
        int used = 0;

        while (left > 0 && used < nvec) {
            if (vec[used].iov_len > left)
                vec[used].iov_len = left;
            left -= vec[used++].iov_len;
        }
        evbuffer_commit_space(in, vec, used);
        if (left > 0)
            evbuffer_add(in, io_overflow, left);
        /* Next time: a big chain while this connection sends in bursts. */
        if ((size_t)n > IO_READ_SMALL)
            io_bulk_hint[hint / 64] |= hint_bit;
        else
            io_bulk_hint[hint / 64] &= ~hint_bit;
    }
    evbuffer_freeze(in, 0);
    if (n > 0) {
        bufferevent_trigger(bev, EV_READ, 0); /* may free bev */
        return;
    }
    if (n < 0 && nvec > 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
        return;
    bufferevent_disable(bev, EV_READ);
    errno = err; /* the event callback may describe it (EVUTIL_SOCKET_ERROR) */
    bufferevent_trigger_event(bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR),
                              0);
}

/* See http_io.h. */
void http_io_fast_reads(struct bufferevent *bev)
{
    struct event *ev = &bev->ev_read;
    event_callback_fn cb = event_get_callback(ev);
    evutil_socket_t fd = event_get_fd(ev);
    bool pending;

    if (cb == io_on_readable || fd < 0 || bufferevent_openssl_get_ssl(bev) != NULL)
        return;
    /*
     * The bufferevent reads through ev_read, which it adds and deletes on
     * enable/disable: giving the event another callback keeps all of that.
     * The event must not be pending while it is reassigned.
     */
    atomic_store(&io_libevent_readcb, cb);
    pending = event_pending(ev, EV_READ, NULL) != 0;
    if (pending)
        event_del(ev);
    event_assign(ev, event_get_base(ev), fd, event_get_events(ev), io_on_readable, bev);
    if (pending)
        event_add(ev, NULL);
}

/*
 * Read-ahead on a client TLS connection. bufferevent_openssl reads until
 * SSL_read has nothing more to give of the record it is in, then waits for
 * the socket; a further record OpenSSL already holds (read ahead) would
 * wait there until the client sent more, maybe forever. So whenever the
 * input changes (libevent read a record, or the engine consumed bytes and
 * maybe lifted the read watermark), bev's read event is run again while
 * OpenSSL has bytes pending: libevent's reader then takes them, or does
 * nothing if reading is off, in which case enabling it kicks again. Each
 * run either consumes buffered bytes or changes nothing, so it ends.
 */
static void io_tls_input_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                                 void *arg)
{
    http_io_tls_kick(arg);
}

/* See http_io.h. */
void http_io_tls_read_ahead(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl == NULL || event_get_fd(&bev->ev_read) < 0)
        return;
    if (evbuffer_add_cb(bufferevent_get_input(bev), io_tls_input_changed, bev) != NULL)
        SSL_set_read_ahead(ssl, 1);
}

/* See http_io.h. */
void http_io_tls_kick(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);

    if (ssl != NULL && SSL_has_pending(ssl))
        event_active(&bev->ev_read, EV_READ, 1);
}

/* See http_io.h. */
void http_io_flush(struct bufferevent *bev)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        return;
    /*
     * Run the bufferevent's own write callback later in this loop turn: after
     * the callbacks of what became ready with it (their writes go out
     * together), not after an epoll round trip. Writing with SSL_write here
     * instead would share OpenSSL's retry state with libevent, whose retry
     * after a blocked write must not be shorter than the write it retries (a
     * fatal "bad length" otherwise).
     */
    event_active(&bev->ev_write, EV_WRITE, 1);
}

/* See http_io.h. */
void http_io_move(struct evbuffer *in, struct evbuffer *out, size_t n)
{
    size_t queued = evbuffer_get_length(out), copy = 0;

    if (queued < IO_TLS_RECORD)
        copy = n < IO_TLS_RECORD - queued ? n : IO_TLS_RECORD - queued;
    if (queued == 0 && n > copy)
        copy = 0; /* nothing to top up, and more than a record: move it all */
    if (copy > 0) {
        struct evbuffer_iovec vec[8];
        size_t left = copy;
        int nvec;

        /* One chain (hence one SSL_write, one record) for what waits and the copy. */
        (void)evbuffer_expand(out, copy);
        nvec = evbuffer_peek(in, (ev_ssize_t)copy, NULL, vec, 8);
        for (int i = 0; i < nvec && i < 8 && left > 0; i++) {
            size_t k = vec[i].iov_len < left ? vec[i].iov_len : left;

            evbuffer_add(out, vec[i].iov_base, k);
            left -= k;
        }
        copy -= left; /* more than 8 chains: the rest is moved below */
        evbuffer_drain(in, copy);
    }
    if (n > copy)
        evbuffer_remove_buffer(in, out, n - copy);
}
