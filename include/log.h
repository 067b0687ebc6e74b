/*
 * Logging to stderr: one line per event, "ts level [wN] message". The level
 * is checked before formatting. log_warn/log_error append strerror(errno);
 * the x variants do not. log_ssl_* drain the OpenSSL error queue into the line.
 */
#ifndef TLSGATE_LOG_H
#define TLSGATE_LOG_H

#include <stddef.h>

#include "config-t.h"

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_enabled(enum log_level level);

/* Name of this thread in log lines, e.g. "main", "w0". */
void log_set_thread_name(const char *name);

/*
 * Appends src to dst (of size bytes, *n used; not NUL-terminated) with
 * control bytes, DEL, the backslash and every byte of also (may be NULL)
 * written as \xNN, stopping before a byte or escape that would not fit.
 * Bytes a client chose (an SNI, a path) go into text logs through it, so
 * that they can neither start a line of their own nor shift the fields.
 */
void log_escape(char *dst, size_t size, size_t *n, const char *src, const char *also);

void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_ssl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG_ON(lvl) log_enabled(lvl)

#endif
