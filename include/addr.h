/* Socket address parsing and printing. */
#ifndef TLSGATE_ADDR_H
#define TLSGATE_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Long enough for "[v6addr%scope]:65535". */
#define ADDR_STRLEN 80

/*
 * Parses "host:port" or "[v6]:port" (host may be a name, resolved with
 * getaddrinfo; the first result wins). "*:port" and ":port" mean
 * 0.0.0.0:port. Port 0..65535 required. Returns 0, or
 * -1 with a short reason copied into why (NUL-terminated, why_len bytes).
 */
int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *why,
               size_t why_len);

/* Writes "ip:port" or "[ip6]:port" of sa into buf; returns buf. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* Writes only the IP of sa into buf; returns buf. */
char *addr_format_ip(const struct sockaddr *sa, char *buf, size_t len);

/* Port of sa in host order, 0 for unknown families. */
unsigned addr_port(const struct sockaddr *sa);

#endif
