/*
 * Error lines of a configuration load. Every line is self-contained
 * ("FILE:LINE:COL: key.path: message") so --check can print them as they are
 * and a reload can log them one by one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config/conf.h"

/*
 * Copy of s with control characters made visible ("\n", "\t", else '?'):
 * values from the file are echoed in messages, and each message must stay
 * one line in a log. Returns NULL when out of memory.
 */
static char *one_line(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\t') {
            *o++ = '\\';
            *o++ = c == '\n' ? 'n' : 't';
        } else {
            *o++ = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    *o = '\0';
    return out;
}

/*
 * Appends the formatted line to errs; errs owns the copy. Returns 0, or -1
 * when out of memory (errs is then unchanged).
 */
int config_errors_vadd(struct config_errors *errs, const char *fmt, va_list ap)
{
    char *raw, *line, **lines;

    if (vasprintf(&raw, fmt, ap) < 0)
        return -1;
    line = one_line(raw);
    free(raw);
    if (line == NULL)
        return -1;
    lines = realloc(errs->lines, (errs->n + 1) * sizeof(*lines));
    if (lines == NULL) {
        free(line);
        return -1;
    }
    lines[errs->n++] = line;
    errs->lines = lines;
    return 0;
}

/* See config.h. */
int config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = config_errors_vadd(errs, fmt, ap);
    va_end(ap);
    return rc;
}

/*
 * Appends "file:line:col: path: message". path may be NULL or "" for
 * file-level problems ("file:line:col: message"). Returns 0 or -1 (memory).
 */
int config_errors_at(struct config_errors *errs, const char *file, unsigned line, unsigned col,
                     const char *path, const char *fmt, ...)
{
    char *msg;
    va_list ap;
    int rc, n;

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (path != NULL && *path != '\0')
        rc = config_errors_add(errs, "%s:%u:%u: %s: %s", file, line, col, path, msg);
    else
        rc = config_errors_add(errs, "%s:%u:%u: %s", file, line, col, msg);
    free(msg);
    return rc;
}

/* See config.h. */
void config_errors_free(struct config_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}
