/*
 * The gateway process: binds every listener once per worker (SO_REUSEPORT, so
 * the kernel spreads new connections over the workers), starts the workers,
 * and waits in the main thread for signals: SIGHUP reloads (reload.c),
 * SIGTERM/SIGINT drain and stop. The main thread owns every listening socket
 * (bindtab.h) and closes one only after the workers acknowledged they no
 * longer accept on it.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "admin.h"
#include "bindtab.h"
#include "config.h"
#include "gateway.h"
#include "health.h"
#include "log.h"
#include "reload.h"
#include "worker.h"

/*
 * Each relayed connection needs two descriptors; raise the soft limit toward
 * what max_connections implies (as far as the hard limit allows).
 */
void gateway_raise_fd_limit(const struct config *conf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conf->max_connections * 2 + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_warn("cannot raise the open-files limit to %llu", (unsigned long long)rl.rlim_cur);
    if (rl.rlim_cur < want)
        log_warnx("open-files limit %llu is below the %llu that max_connections %u needs",
                  (unsigned long long)rl.rlim_cur, (unsigned long long)want, conf->max_connections);
}

/* SIGTERM/SIGINT: ask every worker to drain; the loop ends when all have stopped accepting. */
static void gateway_on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *gw = arg;

    if (gw->stopping) {
        log_info("signal %d: already stopping", (int)sig);
        return;
    }
    gw->stopping = true;
    log_info("signal %d: stopping; draining open connections for up to %u ms", (int)sig,
             gw->conf->timeouts.drain);
    for (unsigned i = 0; i < gw->nworkers; i++)
        worker_request_stop(&gw->workers[i]);
}

/* SIGHUP: reload the configuration file. */
static void gateway_on_hup(evutil_socket_t sig, short what, void *arg)
{
    reload_start(arg);
}

/*
 * A worker acknowledged a reload or a stop. A stopped worker's sockets close
 * at once, so the kernel stops queueing connections nobody will accept (they
 * are refused); once every worker has stopped accepting, the main loop ends
 * and gateway_run waits for the drains.
 */
static void gateway_on_ack(evutil_socket_t fd, short what, void *arg)
{
    struct gateway *gw = arg;
    unsigned stopped = 0;
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("ack read");
    reload_progress(gw);
    if (!gw->stopping)
        return;
    for (unsigned i = 0; i < gw->nworkers; i++) {
        if (!atomic_load(&gw->workers[i].stopped_accepting))
            continue;
        bindtab_close_worker(&gw->binds, i);
        bindtab_close_worker(&gw->gone, i);
        stopped++;
    }
    if (stopped == gw->nworkers)
        event_base_loopbreak(gw->base);
}

/* The main loop's eventfd for worker acknowledgements. Returns 0 or -1 (logged). */
static int gateway_ack_init(struct gateway *gw)
{
    gw->ack_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (gw->ack_fd < 0) {
        log_error("eventfd");
        return -1;
    }
    gw->ack_ev = event_new(gw->base, gw->ack_fd, EV_READ | EV_PERSIST, gateway_on_ack, gw);
    if (gw->ack_ev == NULL || event_add(gw->ack_ev, NULL) < 0) {
        log_errorx("cannot watch the workers' eventfd");
        return -1;
    }
    return 0;
}

/*
 * glibc's allocator, by default, gives memory back to the kernel whenever
 * the free top of a heap passes 128 KiB, and maps anything from 128 KiB up
 * anew each time. Relaying bulk bodies allocates and frees 64 KiB chains
 * (and OpenSSL 17 KiB record buffers) at a high rate: measured on 1 MiB
 * responses, about 90 page faults per response and a tenth of the CPU went
 * to handing the same pages back and forth. Keep up to 4 MiB per heap.
 */
static void gateway_tune_malloc(void)
{
    (void)mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    (void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
}

int gateway_run(struct config *conf)
{
    struct gateway gw = {.conf = conf, .generation = 1, .ack_fd = -1};
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    size_t nl = conf->nlisteners;
    unsigned started = 0;
    int *fds = NULL;
    int rc = 2;

    signal(SIGPIPE, SIG_IGN);
    gateway_raise_fd_limit(conf);
    gateway_tune_malloc(); /* before any thread: mallopt is process-wide */
    if (accesslog_open(&conf->log) < 0)
        goto out;
    gw.nworkers = conf->workers;
    gw.workers = calloc(gw.nworkers, sizeof(*gw.workers));
    fds = malloc(sizeof(int) * (nl ? nl : 1));
    if (gw.workers == NULL || fds == NULL) {
        log_errorx("out of memory");
        goto out;
    }
    /* Bind everything before starting any thread: a port in use fails the start. */
    if (bindtab_build(&gw.binds, NULL, conf, gw.nworkers) < 0)
        goto out;

    gw.base = event_base_new();
    if (gw.base == NULL || admin_start(gw.base, conf) < 0 || gateway_ack_init(&gw) < 0 ||
        reload_init(&gw) < 0)
        goto out;
    gw.health = health_start(gw.base, conf, NULL);
    if (gw.health == NULL)
        goto out;
    for (unsigned w = 0; w < gw.nworkers; w++) {
        bindtab_worker_fds(&gw.binds, conf, w, fds);
        if (worker_init(&gw.workers[w], &gw, w, conf, fds) < 0)
            goto out_workers;
        started++; /* initialised: worker_join_and_free() below, started or not */
        if (worker_start(&gw.workers[w]) < 0)
            goto out_workers;
    }
    for (size_t i = 0; i < nl; i++) {
        static const char *const modes[] = {"passthrough", "offload", "bridge", "http"};

        log_info("listener %s: %s on %s", conf->listeners[i].name, modes[conf->listeners[i].mode],
                 conf->listeners[i].bind.text);
    }
    log_info("tlsgate %s running with %u worker(s)", TLSGATE_VERSION, gw.nworkers);

    sigterm = evsignal_new(gw.base, SIGTERM, gateway_on_stop_signal, &gw);
    sigint = evsignal_new(gw.base, SIGINT, gateway_on_stop_signal, &gw);
    sighup = evsignal_new(gw.base, SIGHUP, gateway_on_hup, &gw);
    if (!sigterm || !sigint || !sighup || evsignal_add(sigterm, NULL) < 0 ||
        evsignal_add(sigint, NULL) < 0 || evsignal_add(sighup, NULL) < 0) {
        log_errorx("cannot install signal handlers");
        goto out_workers;
    }
    event_base_dispatch(gw.base);
    rc = 0;

out_workers:
    if (rc != 0)
        for (unsigned i = 0; i < started; i++)
            worker_request_stop(&gw.workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_join_and_free(&gw.workers[i]);
    if (rc == 0)
        log_info("stopped");
out:
    /* No worker runs any more: every socket can close. */
    bindtab_close(&gw.binds);
    reload_abandon(&gw);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (sighup)
        event_free(sighup);
    health_stop(gw.health);
    admin_stop();     /* workers are joined: no access-log line comes any more */
    reload_free(&gw); /* after admin_stop: the last fold is lost, nobody reads it */
    if (gw.ack_ev)
        event_free(gw.ack_ev);
    if (gw.ack_fd >= 0)
        close(gw.ack_fd);
    if (gw.base)
        event_base_free(gw.base);
    free(fds);
    free(gw.workers);
    accesslog_close();
    config_unref(gw.conf);
    return rc;
}
