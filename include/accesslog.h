/* Access log: one line per connection (passthrough) or request (HTTP modes). */
#ifndef TLSGATE_ACCESSLOG_H
#define TLSGATE_ACCESSLOG_H

#include "config-t.h"
#include "session-t.h"

/* Opens the destination named in conf (stderr, stdout, off, or a path to append to). Returns 0 or
 * -1 (logged). */
int accesslog_open(const struct log_conf *conf);

/* Closes a file destination. */
void accesslog_close(void);

/* Writes the line for a passthrough session that ends (one write(2), JSON or text). */
void accesslog_passthrough(const struct session *s);

/* Appends s to buf as a JSON string body (without quotes), escaping as needed. Returns bytes
 * written, never more than len-1; buf stays NUL-terminated. */
size_t json_escape(char *buf, size_t len, const char *s);

#endif
