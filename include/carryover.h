/*
 * What a reload carries from the running configuration snapshot to the new
 * one (src/core/carryover.c), main thread only:
 *
 *  - random TLS session ticket keys (listeners without ticket_key_file), so
 *    tickets issued before a reload still resume after it;
 *  - counters: the live counters belong to the snapshot (listener and server
 *    stats), so a retired snapshot's counts are added to the same-named
 *    listener / backend+server of the snapshot in force, and /metrics never
 *    goes backwards. Connections still open on a retired snapshot keep
 *    counting on it: its growth is folded again every second until nothing
 *    but the carry holds it.
 *
 * The sticky cookie key needs nothing here: without secret_file it is one
 * random key per process (sticky.h), the same in every snapshot.
 */
#ifndef TLSGATE_CARRYOVER_H
#define TLSGATE_CARRYOVER_H

#include "config-t.h"

struct carry;

/* Before next is published: next's listeners with random ticket keys take cur's (by name). */
void carryover_tickets(struct config *next, const struct config *cur);

/* An empty list of retired snapshots. NULL when out of memory. */
struct carry *carry_new(void);

/*
 * old was replaced by cur: adds everything old counted to cur, then keeps a
 * reference on old to fold what it counts later. Returns 0, or -1 (out of
 * memory: old's later counts are lost, nothing goes backwards).
 */
int carry_retire(struct carry *c, struct config *old, struct config *cur);

/*
 * Adds to cur what each retired snapshot counted since the last fold, and
 * lets go of those nobody else holds any more. Returns how many are still
 * kept (0: no need to call again until the next retire).
 */
size_t carry_fold(struct carry *c, struct config *cur);

/* Drops every retired snapshot (at exit) and frees c. NULL is ignored. */
void carry_free(struct carry *c);

#endif
