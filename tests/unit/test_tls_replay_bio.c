/*
 * The replay BIO: the bytes given at creation come first, in pieces of any
 * size, then the socket; writes go to the socket; BIO_get_fd answers the
 * socket (libevent relies on it); an empty socket is a retry, a closed one
 * the end of the stream. Over a real socketpair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls_replay_bio.h"

/* A non-blocking socketpair: sv[0] for the BIO, sv[1] for the test. */
static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

/* The prefix is read first, across reads of any size, then the socket. */
static void test_prefix_then_socket(void **state)
{
    static const char prefix[] = "\x16\x03\x01hello";
    int sv[2], fd = -1;
    char buf[64];
    BIO *b;

    pair(sv);
    b = tls_replay_bio_new(sv[0], prefix, sizeof(prefix) - 1);
    assert_non_null(b);
    assert_int_equal(BIO_get_fd(b, &fd), sv[0]);
    assert_int_equal(fd, sv[0]);
    assert_int_equal(BIO_pending(b), 8);
    assert_int_equal(write(sv[1], "SOCK", 4), 4);
    assert_int_equal(BIO_read(b, buf, 3), 3); /* a piece of the prefix */
    assert_memory_equal(buf, "\x16\x03\x01", 3);
    assert_int_equal(BIO_pending(b), 5);
    assert_int_equal(BIO_read(b, buf, sizeof(buf)), 5); /* the rest of it, never mixed */
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(BIO_pending(b), 0);
    assert_int_equal(BIO_read(b, buf, sizeof(buf)), 4); /* then the socket */
    assert_memory_equal(buf, "SOCK", 4);
    BIO_free(b);
    close(sv[0]);
    close(sv[1]);
}

/* Nothing to read is a retry; a closed peer is the end; writes reach the peer. */
static void test_retry_eof_write(void **state)
{
    int sv[2];
    char buf[16];
    BIO *b;

    pair(sv);
    b = tls_replay_bio_new(sv[0], NULL, 0);
    assert_non_null(b);
    assert_true(BIO_read(b, buf, sizeof(buf)) < 0);
    assert_true(BIO_should_retry(b));
    assert_true(BIO_should_read(b));
    assert_false(BIO_eof(b));
    assert_int_equal(BIO_write(b, "pong", 4), 4);
    assert_int_equal(read(sv[1], buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "pong", 4);
    close(sv[1]);
    assert_int_equal(BIO_read(b, buf, sizeof(buf)), 0);
    assert_false(BIO_should_retry(b));
    assert_true(BIO_eof(b));
    BIO_free(b);
    close(sv[0]);
}

/* Freed, the BIO leaves the socket open (BIO_NOCLOSE) unless told to close it. */
static void test_close_flag(void **state)
{
    int sv[2];
    BIO *b;

    pair(sv);
    b = tls_replay_bio_new(sv[0], "x", 1);
    assert_non_null(b);
    assert_int_equal(BIO_get_close(b), BIO_NOCLOSE);
    BIO_free(b); /* unread prefix freed with it (LeakSanitizer) */
    assert_true(fcntl(sv[0], F_GETFD) >= 0);
    b = tls_replay_bio_new(sv[0], NULL, 0);
    assert_non_null(b);
    assert_int_equal(BIO_set_close(b, BIO_CLOSE), 1);
    BIO_free(b);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_then_socket),
        cmocka_unit_test(test_retry_eof_write),
        cmocka_unit_test(test_close_flag),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
