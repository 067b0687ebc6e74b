/*
 * Hot reload on SIGHUP (src/core/reload.c), main thread only.
 *
 * 1. The file is loaded and validated off the data path (config_load); when
 *    it is invalid every error is logged and nothing changes.
 * 2. Settings that need a restart (workers, admin.listen, log.access,
 *    log.format) keep their running values, with a warning each.
 * 3. Listening sockets: an address the running configuration binds keeps
 *    its sockets; new addresses are bound now, and a failure rejects the
 *    reload. Random ticket keys carry over; health checks restart with the
 *    servers' known state.
 * 4. Each worker gets the snapshot and its fds in its mailbox, switches new
 *    connections to it, and acknowledges. Open connections finish on the
 *    snapshot they started with.
 * 5. Once every worker has acknowledged: sockets of removed addresses are
 *    closed, counters fold into the new snapshot, the admin endpoint shows
 *    it, and "reload: configuration N applied" is logged.
 */
#ifndef TLSGATE_RELOAD_H
#define TLSGATE_RELOAD_H

struct gateway;

/* Sets up what reloads need on gw->base (gw->carry, gw->carry_ev). Returns 0 or -1. */
int reload_init(struct gateway *gw);

/* Frees what reload_init took (safe when it failed or never ran). */
void reload_free(struct gateway *gw);

/* SIGHUP: steps 1-4 (a reload in progress makes this one wait for it). */
void reload_start(struct gateway *gw);

/* A worker acknowledged: step 5 once all have. */
void reload_progress(struct gateway *gw);

/* At exit, once the workers are joined: drops a reload that never finished. */
void reload_abandon(struct gateway *gw);

#endif
