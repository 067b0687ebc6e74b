/*
 * The table of listening sockets: bound addresses x workers, owned by the
 * main thread, carried from one configuration to the next by address.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bindtab.h"
#include "log.h"

#define LISTEN_BACKLOG 1024

/*
 * A non-blocking socket bound to l's address, with SO_REUSEPORT when asked.
 * Returns the fd or -1 (logged: "cannot bind ADDR: Address already in use").
 */
static int bindtab_bind(const struct listener *l, bool reuseport)
{
    const struct sockaddr *sa = (const struct sockaddr *)&l->bind.ss;
    int one = 1;
    int fd;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("listener %s: socket", l->name);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) {
        log_error("listener %s: setsockopt", l->name);
        goto fail;
    }
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, l->bind.len) < 0) {
        log_error("listener %s: cannot bind %s", l->name, l->bind.text);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/*
 * Each worker gets its own socket on the address (SO_REUSEPORT), and the
 * kernel lets any process of the same user join such a group: a second
 * gateway started on the same ports would silently take half the
 * connections. So a new address is first bound once without SO_REUSEPORT,
 * which fails if anything already listens there. Returns 0 or -1 (logged).
 */
static int bindtab_probe(const struct listener *l)
{
    int fd = bindtab_bind(l, false);

    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Opens a non-blocking listening socket on l's address with SO_REUSEPORT. Returns the fd or -1
 * (logged). */
static int bindtab_listen(const struct listener *l)
{
    int fd = bindtab_bind(l, true);

    if (fd < 0)
        return -1;
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        log_error("listener %s: cannot listen on %s", l->name, l->bind.text);
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Same address and port: what decides that a listener keeps a socket. The
 * resolved address is compared, not the text, so "localhost:80" and
 * "127.0.0.1:80" are one socket.
 */
static bool bindtab_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

/* The slot of t bound to ss, or NULL. */
static struct bind_slot *bindtab_find(const struct bind_table *t, const struct sockaddr_storage *ss)
{
    for (size_t i = 0; t != NULL && i < t->n; i++)
        if (bindtab_same_addr(&t->slots[i].ss, ss))
            return &t->slots[i];
    return NULL;
}

/* Frees slot's storage; closes its sockets when close_fds. */
static void bindtab_slot_free(struct bind_slot *slot, unsigned nworkers, bool close_fds)
{
    for (unsigned w = 0; close_fds && slot->fds != NULL && w < nworkers; w++)
        if (slot->fds[w] >= 0)
            close(slot->fds[w]);
    free(slot->fds);
    free(slot->text);
    memset(slot, 0, sizeof(*slot));
}

/* Fills slot for l: cur's sockets for the same address, else new ones. Returns 0 or -1. */
static int bindtab_slot_fill(struct bind_slot *slot, const struct bind_table *cur,
                             const struct listener *l, unsigned nworkers)
{
    const struct bind_slot *old = bindtab_find(cur, &l->bind.ss);

    slot->ss = l->bind.ss;
    slot->len = l->bind.len;
    slot->text = strdup(l->bind.text);
    slot->fds = malloc(sizeof(*slot->fds) * nworkers);
    if (slot->text == NULL || slot->fds == NULL) {
        log_errorx("listener %s: out of memory", l->name);
        return -1;
    }
    for (unsigned w = 0; w < nworkers; w++)
        slot->fds[w] = old != NULL && old->fds != NULL ? old->fds[w] : -1;
    if (old != NULL)
        return 0;
    slot->fresh = true;
    if (bindtab_probe(l) < 0)
        return -1;
    for (unsigned w = 0; w < nworkers; w++)
        if ((slot->fds[w] = bindtab_listen(l)) < 0)
            return -1;
    return 0;
}

int bindtab_build(struct bind_table *next, const struct bind_table *cur, const struct config *conf,
                  unsigned nworkers)
{
    memset(next, 0, sizeof(*next));
    next->nworkers = nworkers;
    next->slots = calloc(conf->nlisteners ? conf->nlisteners : 1, sizeof(*next->slots));
    if (next->slots == NULL) {
        log_errorx("out of memory");
        return -1;
    }
    for (size_t i = 0; i < conf->nlisteners; i++) {
        const struct listener *l = &conf->listeners[i];

        if (l->no_bind || bindtab_find(next, &l->bind.ss) != NULL)
            continue; /* validation keeps binds apart; never bind one address twice */
        next->n++;
        if (bindtab_slot_fill(&next->slots[next->n - 1], cur, l, nworkers) < 0)
            goto fail;
    }
    return 0;
fail:
    bindtab_discard(next);
    return -1;
}

void bindtab_worker_fds(const struct bind_table *t, const struct config *conf, unsigned worker,
                        int *fds)
{
    for (size_t i = 0; i < conf->nlisteners; i++) {
        const struct bind_slot *slot =
            conf->listeners[i].no_bind ? NULL : bindtab_find(t, &conf->listeners[i].bind.ss);
        fds[i] = slot != NULL ? slot->fds[worker] : -1;
    }
}

size_t bindtab_commit(struct bind_table *cur, struct bind_table *next, struct bind_table *gone)
{
    size_t moved = 0;

    /* Keep in cur only what next dropped: those become gone's. */
    for (size_t i = 0; i < cur->n; i++) {
        if (bindtab_find(next, &cur->slots[i].ss) != NULL)
            bindtab_slot_free(&cur->slots[i], cur->nworkers, false); /* next holds the fds */
        else
            cur->slots[moved++] = cur->slots[i];
    }
    if (gone->n == 0) {
        free(gone->slots);
        *gone = *cur;
        gone->n = moved;
    } else {
        /* A previous reload's sockets still wait: append (reload.c avoids this case). */
        struct bind_slot *grown = realloc(gone->slots, sizeof(*grown) * (gone->n + moved));

        if (grown == NULL) {
            /* Closing them now could pull an fd from under a worker: leave them open. */
            log_errorx("out of memory: %zu listening address(es) stay bound until exit", moved);
            for (size_t i = 0; i < moved; i++)
                bindtab_slot_free(&cur->slots[i], cur->nworkers, false);
        } else {
            memcpy(&grown[gone->n], cur->slots, sizeof(*grown) * moved);
            gone->slots = grown;
            gone->n += moved;
        }
        free(cur->slots);
    }
    memset(cur, 0, sizeof(*cur));
    for (size_t i = 0; i < next->n; i++)
        next->slots[i].fresh = false;
    return moved;
}

void bindtab_discard(struct bind_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        bindtab_slot_free(&t->slots[i], t->nworkers, t->slots[i].fresh);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

void bindtab_close_worker(struct bind_table *t, unsigned worker)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->slots[i].fds != NULL && t->slots[i].fds[worker] >= 0) {
            close(t->slots[i].fds[worker]);
            t->slots[i].fds[worker] = -1;
        }
    }
}

void bindtab_close(struct bind_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        bindtab_slot_free(&t->slots[i], t->nworkers, true);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}
