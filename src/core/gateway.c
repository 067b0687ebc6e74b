/*
 * The gateway process: binds every listener once per worker (SO_REUSEPORT, so
 * the kernel spreads new connections over the workers), starts the workers,
 * and waits in the main thread for signals.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "admin.h"
#include "config.h"
#include "gateway.h"
#include "health.h"
#include "log.h"
#include "worker.h"

#define LISTEN_BACKLOG 1024

/* Opens a non-blocking listening socket on addr with SO_REUSEPORT. Returns the fd or -1 (logged).
 */
static int gateway_bind(const struct listener *l)
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
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        log_error("listener %s: setsockopt", l->name);
        goto fail;
    }
    if (sa->sa_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, l->bind.len) < 0) {
        log_error("listener %s: cannot bind %s", l->name, l->bind.text);
        goto fail;
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        log_error("listener %s: cannot listen on %s", l->name, l->bind.text);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/*
 * Each relayed connection needs two descriptors; raise the soft limit toward
 * what max_connections implies (as far as the hard limit allows).
 */
static void gateway_raise_fd_limit(const struct config *conf)
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

/* Closes the fds of fds[0..n-1] that are >= 0. */
static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* SIGTERM/SIGINT: ask every worker to drain; the main loop ends when they have. */
static void gateway_on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct gateway *gw = arg;

    log_info("signal %d: stopping; draining open connections for up to %u ms", (int)sig,
             gw->conf->timeouts.drain);
    for (unsigned i = 0; i < gw->nworkers; i++)
        worker_request_stop(&gw->workers[i]);
    event_base_loopbreak(gw->base);
}

/* SIGHUP: reload is not built yet; say so rather than ignore it silently. */
static void gateway_on_hup(evutil_socket_t sig, short what, void *arg)
{
    log_warnx("SIGHUP: configuration reload is not supported in this version; keeping %s",
              ((struct gateway *)arg)->conf->path);
}

int gateway_run(struct config *conf)
{
    struct gateway gw = {.conf = conf};
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    size_t nl = conf->nlisteners;
    unsigned started = 0;
    int *fds = NULL;
    int rc = 2;

    signal(SIGPIPE, SIG_IGN);
    gateway_raise_fd_limit(conf);
    if (accesslog_open(&conf->log) < 0)
        goto out;
    gw.nworkers = conf->workers;
    gw.workers = calloc(gw.nworkers, sizeof(*gw.workers));
    fds = malloc(sizeof(int) * (nl ? nl : 1) * gw.nworkers);
    if (gw.workers == NULL || fds == NULL) {
        log_errorx("out of memory");
        goto out;
    }
    for (size_t i = 0; i < nl * gw.nworkers; i++)
        fds[i] = -1;
    /* Bind everything before starting any thread: a port in use fails the start. */
    for (unsigned w = 0; w < gw.nworkers; w++)
        for (size_t i = 0; i < nl; i++)
            if (!conf->listeners[i].no_bind &&
                (fds[w * nl + i] = gateway_bind(&conf->listeners[i])) < 0)
                goto out_fds;

    gw.base = event_base_new();
    if (gw.base == NULL || admin_start(gw.base, conf) < 0)
        goto out_fds;
    gw.health = health_start(gw.base, conf, NULL);
    if (gw.health == NULL)
        goto out_fds;
    for (unsigned w = 0; w < gw.nworkers; w++) {
        /* The worker owns its fds from here, even when init fails. */
        int rc_init = worker_init(&gw.workers[w], &gw, w, conf, &fds[w * nl]);
        for (size_t i = 0; i < nl; i++)
            fds[w * nl + i] = -1;
        if (rc_init < 0)
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
        for (unsigned i = 0; i < started; i++)
            worker_request_stop(&gw.workers[i]);
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
out_fds:
    close_fds(fds, nl * gw.nworkers);
out:
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (sighup)
        event_free(sighup);
    health_stop(gw.health);
    admin_stop(); /* workers are joined: no access-log line comes any more */
    if (gw.base)
        event_base_free(gw.base);
    free(fds);
    free(gw.workers);
    accesslog_close();
    config_unref(conf);
    return rc;
}
