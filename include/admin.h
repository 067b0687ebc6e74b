/*
 * The admin endpoint (src/admin/admin.c): a small HTTP server on
 * config->admin, run by the main thread's event loop, answering
 *   GET /metrics   Prometheus text exposition (names tlsgate_*)
 *   GET /stats     the same figures and more as JSON (what the dashboard polls)
 *   GET /healthz   200 "ok" while the process serves
 *   GET /          the dashboard (src/admin/dashboard.c), no external assets
 * It only reads: counters are relaxed atomics the workers add to.
 */
#ifndef TLSGATE_ADMIN_H
#define TLSGATE_ADMIN_H

#include "config-t.h"

struct event_base;

/*
 * Binds config->admin and serves it on base (the main thread's loop). Does
 * nothing when the admin listener is disabled (admin.text NULL). Takes a
 * reference on conf. Returns 0, or -1 when it cannot listen (logged).
 * Release with admin_stop(), also after a failure.
 */
int admin_start(struct event_base *base, struct config *conf);

/*
 * After a reload: shows the counters of conf from now on (takes a reference
 * on it, drops the old one). The admin address stays what it was at start.
 * Main thread; does nothing when the endpoint is not running.
 */
void admin_set_config(struct config *conf);

/*
 * Closes the admin listener and its connections and frees what admin_start
 * took, plus the dashboard's store of recent access-log lines: call it once
 * no worker runs any more, before base is freed. Safe when never started.
 */
void admin_stop(void);

/*
 * The dashboard page (src/admin/dashboard.c): HTML with inline CSS and JS.
 * admin.c replaces DASHBOARD_STATS_MARK, which occurs once, with the /stats
 * JSON so the first paint needs no request.
 */
#define DASHBOARD_STATS_MARK "/*@STATS@*/null"
extern const char dashboard_page[];

#endif
