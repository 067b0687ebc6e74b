/*
 * Diagnostic log lines to stderr. One write(2) per line so lines from
 * different workers never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"

static _Atomic int log_level = LOG_LEVEL_INFO;
static _Thread_local char log_thread[16] = "main";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    log_level = level;
}

enum log_level log_get_level(void)
{
    return log_level;
}

int log_enabled(enum log_level level)
{
    return (int)level <= log_level;
}

void log_set_thread_name(const char *name)
{
    snprintf(log_thread, sizeof(log_thread), "%s", name);
}

/* See log.h. */
void log_escape(char *dst, size_t size, size_t *n, const char *src, const char *also)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *p = (const unsigned char *)src; *p != '\0'; p++) {
        if (*p >= 0x20 && *p != 0x7f && *p != '\\' && (also == NULL || strchr(also, *p) == NULL)) {
            if (*n + 1 >= size)
                return;
            dst[(*n)++] = (char)*p;
            continue;
        }
        if (*n + 4 >= size)
            return;
        dst[(*n)++] = '\\';
        dst[(*n)++] = 'x';
        dst[(*n)++] = hex[*p >> 4];
        dst[(*n)++] = hex[*p & 15];
    }
}

/* Formats and writes one line; suffix (may be NULL) is appended after ": ". */
static void log_emit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
    char line[2048], msg[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s [%s] ", ts.tv_nsec / 1000000,
                 level_names[level], log_thread);
    if (r > 0)
        n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
    /* Escaped (see log_escape): a message may carry a client's bytes. One byte kept for '\n'. */
    if (vsnprintf(msg, sizeof(msg), fmt, ap) > 0)
        log_escape(line, sizeof(line) - 1, &n, msg, NULL);
    if (suffix != NULL) {
        log_escape(line, sizeof(line) - 1, &n, ": ", NULL);
        log_escape(line, sizeof(line) - 1, &n, suffix, NULL);
    }
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

#define LOG_BODY(level, suffix)                                                                    \
    do {                                                                                           \
        va_list ap;                                                                                \
        if (!log_enabled(level))                                                                   \
            return;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, suffix, fmt, ap);                                                          \
        va_end(ap);                                                                                \
    } while (0)

void log_errorx(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_ERROR, NULL);
}

void log_error(const char *fmt, ...)
{
    const char *why = strerror(errno);
    LOG_BODY(LOG_LEVEL_ERROR, why);
}

void log_warnx(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_WARN, NULL);
}

void log_warn(const char *fmt, ...)
{
    const char *why = strerror(errno);
    LOG_BODY(LOG_LEVEL_WARN, why);
}

void log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_INFO, NULL);
}

void log_debug(const char *fmt, ...)
{
    LOG_BODY(LOG_LEVEL_DEBUG, NULL);
}

/* Logs at error level with every queued OpenSSL error appended, emptying the queue. */
void log_ssl_error(const char *fmt, ...)
{
    char why[1024];
    size_t n = 0;
    unsigned long e;

    why[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        if (n > 0 && n < sizeof(why) - 2) {
            why[n++] = ';';
            why[n++] = ' ';
        }
        if (n < sizeof(why) - 1) {
            ERR_error_string_n(e, why + n, sizeof(why) - n);
            n += strlen(why + n);
        }
    }
    LOG_BODY(LOG_LEVEL_ERROR, n > 0 ? why : "no OpenSSL error queued");
}
