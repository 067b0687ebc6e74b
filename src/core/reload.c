/*
 * Hot reload: a new configuration snapshot is loaded, given its sockets and
 * handed to every worker; the old one lives on, read only, for the
 * connections that started on it (see reload.h for the sequence).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "admin.h"
#include "bindtab.h"
#include "carryover.h"
#include "config.h"
#include "gateway.h"
#include "health.h"
#include "log.h"
#include "reload.h"
#include "worker.h"

#define CARRY_FOLD_MS 1000 /* how often retired snapshots' counts are folded in */

/* Equal strings, NULL equal only to NULL. */
static bool same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * Settings applied once at start: next keeps the running worker count (the
 * workers and their sockets exist already); the admin endpoint and the
 * access log stay as opened at start, whatever next says.
 */
static void reload_keep_restart_only(const struct config *cur, struct config *next)
{
    if (next->workers != cur->workers) {
        log_warnx("reload: workers %u -> %u needs a restart; keeping %u", cur->workers,
                  next->workers, cur->workers);
        next->workers = cur->workers;
    }
    if (!same_str(cur->admin.text, next->admin.text))
        log_warnx("reload: admin.listen '%s' -> '%s' needs a restart; the admin endpoint stays "
                  "on '%s'",
                  cur->admin.text ? cur->admin.text : "", next->admin.text ? next->admin.text : "",
                  cur->admin.text ? cur->admin.text : "");
    if (!same_str(cur->log.access, next->log.access))
        log_warnx("reload: log.access '%s' -> '%s' needs a restart; access lines still go to '%s'",
                  cur->log.access ? cur->log.access : "stderr",
                  next->log.access ? next->log.access : "stderr",
                  cur->log.access ? cur->log.access : "stderr");
    if (cur->log.format != next->log.format)
        log_warnx("reload: log.format needs a restart; the access log keeps its format");
}

/* True when c has a listener named name. */
static bool has_listener(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return true;
    return false;
}

/* Names the listeners a reload adds and removes. */
static void reload_log_listeners(const struct config *cur, const struct config *next)
{
    static const char *const modes[] = {"passthrough", "offload", "bridge", "http"};

    for (size_t i = 0; i < next->nlisteners; i++)
        if (!has_listener(cur, next->listeners[i].name))
            log_info("reload: new listener %s: %s on %s", next->listeners[i].name,
                     modes[next->listeners[i].mode], next->listeners[i].bind.text);
    for (size_t i = 0; i < cur->nlisteners; i++)
        if (!has_listener(next, cur->listeners[i].name))
            log_info("reload: listener %s removed: it stops accepting; its connections get "
                     "%u ms to finish",
                     cur->listeners[i].name, next->timeouts.drain);
}

/* Loads the file again. Returns the snapshot, or NULL with every error logged. */
static struct config *reload_load(const char *path)
{
    struct config_errors errs = {0};
    struct config *conf = config_load(path, &errs);

    if (conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            log_errorx("reload: %s", errs.lines[i]);
        log_errorx("reload failed, keeping the running configuration (%zu error(s) in %s)", errs.n,
                   path);
    }
    config_errors_free(&errs);
    return conf;
}

/* One malloc'd fd array per worker for conf, or NULL (out of memory, logged). */
static int **reload_worker_fds(struct gateway *gw, const struct bind_table *t,
                               const struct config *conf)
{
    int **fds = calloc(gw->nworkers, sizeof(*fds));

    for (unsigned w = 0; fds != NULL && w < gw->nworkers; w++) {
        if ((fds[w] = malloc(sizeof(int) * (conf->nlisteners ? conf->nlisteners : 1))) == NULL)
            goto oom;
        bindtab_worker_fds(t, conf, w, fds[w]);
    }
    if (fds != NULL)
        return fds;
oom:
    for (unsigned w = 0; fds != NULL && w < gw->nworkers; w++)
        free(fds[w]);
    free(fds);
    log_errorx("reload failed, keeping the running configuration: out of memory");
    return NULL;
}

/* Every second while retired snapshots may still count: fold their growth in. */
static void reload_on_carry_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;

    if (carry_fold(gw->carry, gw->conf) == 0)
        evtimer_del(gw->carry_ev);
}

void reload_start(struct gateway *gw)
{
    struct bind_table binds;
    struct config *next;
    struct health *health;
    int **fds;

    if (gw->stopping) {
        log_warnx("SIGHUP while stopping: no reload");
        return;
    }
    if (gw->next != NULL) {
        log_info("SIGHUP during a reload: reloading again once it is applied");
        gw->reload_again = true;
        return;
    }
    log_info("SIGHUP: reloading %s", gw->conf->path);
    if ((next = reload_load(gw->conf->path)) == NULL)
        return;
    reload_keep_restart_only(gw->conf, next);
    if (bindtab_build(&binds, &gw->binds, next, gw->nworkers) < 0) {
        log_errorx("reload failed, keeping the running configuration: cannot bind every listener");
        goto fail_conf;
    }
    if ((fds = reload_worker_fds(gw, &binds, next)) == NULL)
        goto fail_binds;
    carryover_tickets(next, gw->conf);
    if ((health = health_start(gw->base, next, gw->conf)) == NULL) {
        log_errorx("reload failed, keeping the running configuration: health checks cannot start");
        goto fail_fds;
    }

    /* Nothing can fail from here: switch. */
    health_stop(gw->health);
    gw->health = health;
    bindtab_commit(&gw->binds, &binds, &gw->gone);
    gw->binds = binds;
    log_set_level(next->log.level);
    if (next->max_connections != gw->conf->max_connections)
        gateway_raise_fd_limit(next);
    reload_log_listeners(gw->conf, next);
    gw->next = next; /* the load's reference */
    for (unsigned w = 0; w < gw->nworkers; w++)
        worker_post_config(&gw->workers[w], next, fds[w], gw->generation + 1);
    free(fds);
    return;

fail_fds:
    for (unsigned w = 0; w < gw->nworkers; w++)
        free(fds[w]);
    free(fds);
fail_binds:
    bindtab_discard(&binds);
fail_conf:
    config_unref(next);
}

void reload_progress(struct gateway *gw)
{
    uint64_t gen = gw->generation + 1;
    struct config *old;

    if (gw->next == NULL)
        return;
    for (unsigned w = 0; w < gw->nworkers; w++)
        if (atomic_load(&gw->workers[w].gen_applied) < gen)
            return;
    /* No worker accepts on the dropped addresses any more. */
    bindtab_close(&gw->gone);
    old = gw->conf;
    gw->conf = gw->next;
    gw->next = NULL;
    gw->generation = gen;
    if (carry_retire(gw->carry, old, gw->conf) == 0 && !evtimer_pending(gw->carry_ev, NULL)) {
        struct timeval tv = {.tv_sec = CARRY_FOLD_MS / 1000,
                             .tv_usec = (CARRY_FOLD_MS % 1000) * 1000};
        evtimer_add(gw->carry_ev, &tv);
    }
    admin_set_config(gw->conf);
    config_unref(old);
    log_info("reload: configuration %llu applied (%zu listener(s), %zu backend(s))",
             (unsigned long long)gen, gw->conf->nlisteners, gw->conf->nbackends);
    if (gw->reload_again) {
        gw->reload_again = false;
        reload_start(gw);
    }
}

void reload_abandon(struct gateway *gw)
{
    bindtab_close(&gw->gone);
    config_unref(gw->next);
    gw->next = NULL;
}

/* Sets up what reloads need on gw->base. Returns 0 or -1 (out of memory). */
int reload_init(struct gateway *gw)
{
    gw->carry = carry_new();
    gw->carry_ev = event_new(gw->base, -1, EV_PERSIST, reload_on_carry_timer, gw);
    return gw->carry != NULL && gw->carry_ev != NULL ? 0 : -1;
}

/* Frees what reload_init took. */
void reload_free(struct gateway *gw)
{
    if (gw->carry_ev != NULL)
        event_free(gw->carry_ev);
    carry_free(gw->carry);
    gw->carry_ev = NULL;
    gw->carry = NULL;
}
