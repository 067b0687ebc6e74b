/*
 * Logging to stderr: one line per event, "ts level [wN] message". The level
 * is checked before formatting. log_warn/log_error append strerror(errno);
 * the x variants do not. log_ssl_* drain the OpenSSL error queue into the line.
 */
#ifndef TLSGATE_LOG_H
#define TLSGATE_LOG_H

#include "config-t.h"

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_enabled(enum log_level level);

/* Name of this thread in log lines, e.g. "main", "w0". */
void log_set_thread_name(const char *name);

void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_ssl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define LOG_ON(lvl) log_enabled(lvl)

#endif
