/*
 * Bulk I/O for the HTTP engine's bufferevents, where libevent 2.1's own
 * paths cost too many system calls: reads from a server socket capped at
 * 4 KiB (each after a FIONREAD ioctl), and TLS writes sent only on the next
 * writable event, one small record per buffer chain.
 */
#ifndef TLSGATE_HTTP_IO_H
#define TLSGATE_HTTP_IO_H

#include <stddef.h>

struct bufferevent;
struct evbuffer;

/*
 * Makes a plain socket bufferevent read up to about 64 KiB per readable
 * event, with one readv() and no ioctl. Callbacks, watermarks, enable and
 * disable work as before. Does nothing for TLS bufferevents, and nothing
 * twice. Call it once the socket is connected (connecting replaces it).
 * The first call also tells glibc's allocator to keep freed memory (see
 * http_io.c): bulk bodies allocate and free large buffers at a high rate.
 */
void http_io_fast_reads(struct bufferevent *bev);

/*
 * Client TLS bufferevents: OpenSSL reads ahead (one read() per readable
 * socket instead of a 5-byte record header and then its body), and bev
 * reads again whenever OpenSSL still holds bytes libevent cannot see: after
 * its input changed (see http_io.c). Call once, on a TLS bufferevent made
 * on a socket; does nothing for others.
 */
void http_io_tls_read_ahead(struct bufferevent *bev);

/*
 * Reading on bev was just enabled (or its handshake finished): if OpenSSL
 * holds bytes read ahead, read them now; the socket may never signal them.
 */
void http_io_tls_kick(struct bufferevent *bev);

/*
 * Writes bev's pending output in this loop turn rather than on the next
 * writable event, but after the callbacks of everything that became ready
 * with it: the writes of one epoll batch go out one after another, so a
 * server that sleeps between requests is woken once per batch, not once per
 * request (each wake-up of a process on another CPU costs the waker an
 * interrupt: docs/performance.md, "Writes at the end of the turn"). The
 * write is the bufferevent's own: a plain socket with one writev() of up to
 * 16 KiB (libevent's default per write), TLS as full 16 KiB records, each
 * one SSL_write (one record, one write()). When everything went out the
 * write event is dropped before the loop applies it, so no epoll_ctl is
 * spent; what is left goes on the next writable event.
 */
void http_io_flush(struct bufferevent *bev);

/*
 * Moves n bytes from in to out, so that out leaves in full TLS records:
 * while out holds less than a record, the first bytes are copied behind
 * what waits there (one chain, hence one SSL_write); the rest is moved
 * without copying, as whole chains where it can.
 */
void http_io_move(struct evbuffer *in, struct evbuffer *out, size_t n);

#endif
