/*
 * The listening sockets of the process (src/core/bindtab.c), owned by the
 * main thread: one slot per bound address, holding one SO_REUSEPORT socket
 * per worker. Workers only accept on these fds; they never close them.
 *
 * A reload builds the table of the new configuration from the running one:
 * an address both use keeps its sockets (same fds: no connection waiting in
 * an accept queue is lost, none is refused), a new address is bound before
 * anything switches, and an address the new configuration drops is closed
 * only once every worker has stopped accepting on it.
 */
#ifndef TLSGATE_BINDTAB_H
#define TLSGATE_BINDTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config-t.h"

/* One bound address and its socket per worker. */
struct bind_slot {
    struct sockaddr_storage ss; /* the resolved address: what slots are compared by */
    socklen_t len;
    char *text; /* as written in the listener that bound it, for logs (owned) */
    int *fds;   /* nworkers listening sockets, -1 once closed (owned array and fds) */
    bool fresh; /* bound by the build in progress (closed if the reload is rejected) */
};

struct bind_table {
    struct bind_slot *slots; /* owned */
    size_t n;
    unsigned nworkers; /* sockets per slot */
};

/*
 * Fills next (empty on entry) with a slot for every listener of conf that
 * binds (bind: none listeners get none): cur's sockets where cur has the same
 * address (cur may be NULL or empty), else nworkers new ones. Returns 0, or
 * -1 (logged, naming the address) after closing what it bound and emptying
 * next.
 */
int bindtab_build(struct bind_table *next, const struct bind_table *cur, const struct config *conf,
                  unsigned nworkers);

/*
 * The listening fd of worker for each listener of conf, into fds[0..
 * conf->nlisteners): -1 for listeners without a socket. conf must be the
 * configuration t was built for.
 */
void bindtab_worker_fds(const struct bind_table *t, const struct config *conf, unsigned worker,
                        int *fds);

/*
 * After next replaced cur: moves the slots of cur that next does not hold
 * into gone (appended; their sockets stay open until bindtab_close(gone)),
 * then frees cur's storage without closing the sockets next kept, clears
 * next's fresh marks, and leaves cur empty. Returns how many slots moved.
 */
size_t bindtab_commit(struct bind_table *cur, struct bind_table *next, struct bind_table *gone);

/*
 * Frees t, a table built for a reload that was rejected: closes only the
 * sockets its build bound, not those it shares with the running table.
 */
void bindtab_discard(struct bind_table *t);

/* Closes every socket of worker in t (its slots stay, with -1). */
void bindtab_close_worker(struct bind_table *t, unsigned worker);

/* Closes every socket in t and frees it; t is left empty. */
void bindtab_close(struct bind_table *t);

#endif
