/*
 * Socket address parsing and printing. "host:port" and "[v6]:port" as an
 * operator writes them; host may be a name (resolved once, first answer wins),
 * "*" or empty for every IPv4 address.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

/* Longest host we accept between the start (or brackets) and the port. */
#define ADDR_HOSTMAX 256

/* Writes the reason into why (when given) and returns -1. */
static int __attribute__((format(printf, 3, 4)))
addr_fail(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && why_len > 0) {
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * Splits text into host (copied into host[ADDR_HOSTMAX]) and the port text.
 * Sets *bracketed for "[v6]:port". Returns 0 or -1 with why filled.
 */
static int addr_split(const char *text, char *host, const char **port, int *bracketed, char *why,
                      size_t why_len)
{
    const char *start = text, *end, *colon;

    *bracketed = text[0] == '[';
    if (*bracketed) {
        start = text + 1;
        end = strchr(start, ']');
        if (end == NULL)
            return addr_fail(why, why_len, "missing ']' after IPv6 address");
        if (end[1] != ':')
            return addr_fail(why, why_len, "missing ':port' after ']'");
        colon = end + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return addr_fail(why, why_len, "missing ':port'");
        if (memchr(text, ':', (size_t)(colon - text)) != NULL)
            return addr_fail(why, why_len, "IPv6 addresses need brackets, e.g. [::1]:443");
        end = colon;
    }
    if ((size_t)(end - start) >= ADDR_HOSTMAX)
        return addr_fail(why, why_len, "host name too long");
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    *port = colon + 1;
    return 0;
}

/* Parses a decimal port 0..65535 into *port. Returns 0 or -1 with why. */
static int addr_parse_port(const char *text, unsigned *port, char *why, size_t why_len)
{
    unsigned long v = 0;
    size_t i;

    if (*text == '\0')
        return addr_fail(why, why_len, "missing port after ':'");
    for (i = 0; text[i] != '\0'; i++) {
        if (!isdigit((unsigned char)text[i]))
            return addr_fail(why, why_len, "port '%s' is not a number", text);
        if (i >= 6)
            break;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v > 65535 || text[i] != '\0')
        return addr_fail(why, why_len, "port %s out of range (0-65535)", text);
    *port = (unsigned)v;
    return 0;
}

/* Sets the port of a resolved IPv4/IPv6 address. */
static void addr_set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/*
 * Resolves host (numeric first, then by name unless bracketed) into ss.
 * Returns 0 or -1 with why.
 */
static int addr_resolve(const char *host, int bracketed, struct sockaddr_storage *ss,
                        socklen_t *len, char *why, size_t why_len)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = bracketed ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 && rc != EAI_SYSTEM && rc != EAI_MEMORY && bracketed)
        return addr_fail(why, why_len, "'%s' is not an IPv6 address", host);
    if (rc == EAI_NONAME) {
        hints.ai_flags = 0;
        rc = getaddrinfo(host, NULL, &hints, &res);
    }
    if (rc != 0)
        return addr_fail(why, why_len, "cannot resolve '%s': %s", host, gai_strerror(rc));
    if (res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        return addr_fail(why, why_len, "cannot resolve '%s': address too long", host);
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* See addr.h. Also accepts "*:port" and ":port" for 0.0.0.0:port. */
int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *why,
               size_t why_len)
{
    char host[ADDR_HOSTMAX];
    const char *port_text = NULL;
    unsigned port;
    int bracketed;

    if (text == NULL || *text == '\0')
        return addr_fail(why, why_len, "empty address");
    if (addr_split(text, host, &port_text, &bracketed, why, why_len) < 0)
        return -1;
    if (addr_parse_port(port_text, &port, why, why_len) < 0)
        return -1;
    if (!bracketed && (host[0] == '\0' || strcmp(host, "*") == 0))
        strcpy(host, "0.0.0.0");
    if (bracketed && host[0] == '\0')
        return addr_fail(why, why_len, "empty IPv6 address between brackets");
    if (addr_resolve(host, bracketed, ss, len, why, why_len) < 0)
        return -1;
    addr_set_port(ss, port);
    return 0;
}

/* Appends "%scope" to an IPv6 text address when the address has a scope. */
static void addr_append_scope(const struct sockaddr_in6 *sin6, char *buf, size_t len)
{
    char ifname[IF_NAMESIZE];
    size_t used = strlen(buf);

    if (sin6->sin6_scope_id == 0 || used >= len)
        return;
    if (if_indextoname(sin6->sin6_scope_id, ifname) != NULL)
        snprintf(buf + used, len - used, "%%%s", ifname);
    else
        snprintf(buf + used, len - used, "%%%u", (unsigned)sin6->sin6_scope_id);
}

/* See addr.h. Unknown families print as "?". */
char *addr_format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
    const struct sockaddr_in6 *sin6;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    switch (sa->sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
        break;
    case AF_INET6:
        sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)len);
        addr_append_scope(sin6, buf, len);
        break;
    case AF_UNIX:
        snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)sa)->sun_path);
        break;
    default:
        snprintf(buf, len, "?");
        break;
    }
    return buf;
}

/* See addr.h. */
char *addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[ADDR_STRLEN];

    addr_format_ip(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        snprintf(buf, len, "%s:%u", ip, addr_port(sa));
    else if (sa->sa_family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", ip, addr_port(sa));
    else
        snprintf(buf, len, "%s", ip);
    return buf;
}

/* See addr.h. */
unsigned addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}
