/*
 * tlsgate demo: the whole lab from one command.
 *
 * In a temporary directory it makes the lab PKI (labcerts.c) and a gateway
 * configuration with one listener per mode in front of the same origins,
 * starts the origins and the gateway as child processes of this very binary
 * (/proc/self/exe origin ..., /proc/self/exe -c lab.yaml), waits for their
 * ports, prints the URLs, runs a short comparison (compare.c) and prints its
 * table and the curl lines that show what each mode does, then serves until
 * SIGINT/SIGTERM. On the way out it stops the children (SIGTERM, then
 * SIGKILL after a grace period) and removes the directory.
 *
 * Ports, from --base-port B (default 8443): listeners passthrough B,
 * offload B+1, bridge B+2, http B+3; admin B+1457 (9900); origins' HTTPS
 * B+1000..B+1002 (9443-9445) and HTTP B+1100..B+1101 (9543-9544). They are
 * all checked before anything starts: a busy one is named and the demo
 * exits 2.
 *
 * Children run in their own process group (a Ctrl-C reaches only the demo,
 * which stops them in order) and get SIGTERM if the demo dies
 * (PR_SET_PDEATHSIG), so none outlives it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "compare.h"
#include "demo.h"
#include "labcerts.h"

#define BASE_DEFAULT    8443
#define ADMIN_OFFSET    1457 /* 8443 -> 9900 */
#define ORIGIN_TLS_OFF  1000 /* 8443 -> 9443 */
#define ORIGIN_HTTP_OFF 1100 /* 8443 -> 9543 */
#define PORT_WAIT_MS    20000
#define STOP_GRACE_MS   5000
#define MAX_KIDS        4
#define SNI             "www.lab.test"

/* Set by SIGINT/SIGTERM; polled by the serve loop and the comparison. */
static volatile sig_atomic_t demo_stop;

/* A child process of the demo. */
struct demo_kid {
    const char *what;   /* "origin web1", "gateway" */
    pid_t pid;          /* 0 once reaped */
    char log[PATH_MAX]; /* its stdout+stderr */
};

/* Everything the demo made, to print and to undo. */
struct demo {
    unsigned base;                  /* --base-port */
    unsigned connections;           /* --connections for the comparison */
    unsigned compare_ms;            /* --compare-ms per listener */
    unsigned duration_ms;           /* --duration: serve this long, 0 = until a signal */
    bool no_serve;                  /* --no-serve */
    const char *report;             /* --report FILE for the comparison */
    char dir[PATH_MAX];             /* temporary directory, "" until made */
    char self[PATH_MAX];            /* this binary, for the printed commands */
    struct demo_kid kids[MAX_KIDS]; /* started children */
    size_t nkids;
};

/* Port numbers derived from the base. */
enum {
    P_PASSTHROUGH,
    P_OFFLOAD,
    P_BRIDGE,
    P_HTTP,
    P_ADMIN,
    P_WEB1_TLS,
    P_WEB2_TLS,
    P_BANK_TLS,
    P_WEB1_HTTP,
    P_WEB2_HTTP,
    NPORTS
};

static const char *const port_names[NPORTS] = {
    "passthrough listener", "offload listener",  "bridge listener",   "http listener",
    "admin endpoint",       "origin web1 https", "origin web2 https", "origin bank https",
    "origin web1 http",     "origin web2 http"};

static unsigned port_of(const struct demo *d, int which)
{
    static const unsigned off[NPORTS] = {0,
                                         1,
                                         2,
                                         3,
                                         ADMIN_OFFSET,
                                         ORIGIN_TLS_OFF,
                                         ORIGIN_TLS_OFF + 1,
                                         ORIGIN_TLS_OFF + 2,
                                         ORIGIN_HTTP_OFF,
                                         ORIGIN_HTTP_OFF + 1};

    return d->base + off[which];
}

static void on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* a signal cuts it short: callers re-check demo_stop */
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 127.0.0.1:port */
static void loopback(struct sockaddr_in *sin, unsigned port)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Checks that every port can be bound on 127.0.0.1; names the first busy one. Returns 0 or -1. */
static int ports_free(const struct demo *d)
{
    for (int i = 0; i < NPORTS; i++) {
        struct sockaddr_in sin;
        int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc, err;

        if (fd < 0) {
            perror("tlsgate demo: socket");
            return -1;
        }
        loopback(&sin, port_of(d, i));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        rc = bind(fd, (struct sockaddr *)&sin, sizeof(sin));
        err = errno;
        close(fd);
        if (rc < 0) {
            fprintf(stderr,
                    "tlsgate demo: port %u (%s) is busy: %s\n"
                    "  stop what uses it (another demo?) or move the demo: tlsgate demo "
                    "--base-port N\n",
                    port_of(d, i), port_names[i], strerror(err));
            return -1;
        }
    }
    return 0;
}

/* True if something accepts connections on 127.0.0.1:port. */
static bool port_open(unsigned port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

    if (fd < 0)
        return false;
    loopback(&sin, port);
    rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    close(fd);
    return rc == 0;
}

/* Prints the last lines of a child's log to stderr. */
static void show_log(const struct demo_kid *k)
{
    char line[1024];
    long pos;
    FILE *f = fopen(k->log, "r");

    if (f == NULL)
        return;
    fprintf(stderr, "--- last lines of %s (%s) ---\n", k->what, k->log);
    if (fseek(f, 0, SEEK_END) == 0 && (pos = ftell(f)) > 4096)
        fseek(f, pos - 4096, SEEK_SET);
    else
        fseek(f, 0, SEEK_SET);
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---\n");
    fclose(f);
}

/* Reaps k if it exited; returns true (and prints how) if it is gone. */
static bool kid_gone(struct demo_kid *k, bool report)
{
    int st;

    if (k->pid == 0)
        return true;
    if (waitpid(k->pid, &st, WNOHANG) != k->pid)
        return false;
    k->pid = 0;
    if (report) {
        if (WIFEXITED(st))
            fprintf(stderr, "tlsgate demo: %s exited with status %d\n", k->what, WEXITSTATUS(st));
        else
            fprintf(stderr, "tlsgate demo: %s was killed by signal %d\n", k->what, WTERMSIG(st));
        show_log(k);
    }
    return true;
}

/*
 * Starts this binary with args (NULL-terminated, args[0] is the subcommand
 * or an option) as a child logging to DIR/logname. Returns 0 or -1.
 */
static int spawn(struct demo *d, const char *what, const char *logname, char *const args[])
{
    struct demo_kid *k = &d->kids[d->nkids];
    char *argv[32];
    pid_t parent = getpid(), pid;
    size_t n = 0;

    argv[n++] = "tlsgate";
    for (size_t i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    k->what = what;
    snprintf(k->log, sizeof(k->log), "%s/%s", d->dir, logname);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("tlsgate demo: fork");
        return -1;
    }
    if (pid == 0) {
        int fd = open(k->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sigset_t none;

        /* Die with the demo; leave Ctrl-C to it. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv("/proc/self/exe", argv);
        dprintf(2, "tlsgate demo: cannot run /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    k->pid = pid;
    d->nkids++;
    return 0;
}

/* Waits until k accepts on port (or dies, or the demo is stopped). Returns 0 or -1. */
static int wait_port(struct demo_kid *k, unsigned port)
{
    uint64_t end = now_ms() + PORT_WAIT_MS;

    while (!demo_stop) {
        if (port_open(port))
            return 0;
        if (kid_gone(k, true))
            return -1;
        if (now_ms() > end) {
            fprintf(stderr, "tlsgate demo: %s does not accept on port %u after %d s\n", k->what,
                    port, PORT_WAIT_MS / 1000);
            show_log(k);
            return -1;
        }
        sleep_ms(25);
    }
    return -1;
}

/* Stops every child: SIGTERM, then SIGKILL after the grace period. */
static void stop_kids(struct demo *d)
{
    uint64_t end;
    bool all;

    /* The gateway first, so its connections to the origins close cleanly. */
    for (size_t i = d->nkids; i-- > 0;)
        if (d->kids[i].pid > 0)
            kill(d->kids[i].pid, SIGTERM);
    end = now_ms() + STOP_GRACE_MS;
    do {
        all = true;
        for (size_t i = 0; i < d->nkids; i++) {
            int st;

            if (d->kids[i].pid <= 0)
                continue;
            if (waitpid(d->kids[i].pid, &st, WNOHANG) == d->kids[i].pid) {
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    fprintf(stderr, "tlsgate demo: %s ended with %s %d\n", d->kids[i].what,
                            WIFEXITED(st) ? "status" : "signal",
                            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                    show_log(&d->kids[i]);
                }
                d->kids[i].pid = 0;
            } else {
                all = false;
            }
        }
        if (!all)
            sleep_ms(20);
    } while (!all && now_ms() < end);
    for (size_t i = 0; i < d->nkids; i++) {
        if (d->kids[i].pid <= 0)
            continue;
        fprintf(stderr, "tlsgate demo: %s did not stop in %d s; killing it\n", d->kids[i].what,
                STOP_GRACE_MS / 1000);
        kill(d->kids[i].pid, SIGKILL);
        waitpid(d->kids[i].pid, NULL, 0);
        d->kids[i].pid = 0;
    }
}

/* Removes the (flat) temporary directory. */
static void remove_dir(struct demo *d)
{
    char path[PATH_MAX + 256];
    struct dirent *e;
    DIR *dir;

    if (d->dir[0] == '\0')
        return;
    dir = opendir(d->dir);
    if (dir != NULL) {
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
            if (unlink(path) < 0)
                fprintf(stderr, "tlsgate demo: cannot remove %s: %s\n", path, strerror(errno));
        }
        closedir(dir);
    }
    if (rmdir(d->dir) < 0)
        fprintf(stderr, "tlsgate demo: cannot remove %s: %s\n", d->dir, strerror(errno));
}

/* Writes DIR/lab.yaml. Returns 0 or -1. */
static int write_config(const struct demo *d)
{
    char path[PATH_MAX + 16];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/lab.yaml", d->dir);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "tlsgate demo: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# tlsgate demo: one listener per mode in front of the same origins.\n"
            "workers: 2\n"
            "timeouts: { drain: 1000 }\n"
            "admin: { listen: 127.0.0.1:%u }\n"
            "log: { level: info, access: stderr, format: json }\n"
            "\n"
            "backends:\n"
            "  # passthrough: the origins terminate TLS with their own certificates\n"
            "  - name: web_tls\n"
            "    servers:\n"
            "      - { name: web1, address: 127.0.0.1:%u }\n"
            "      - { name: web2, address: 127.0.0.1:%u }\n"
            "  - name: bank_tls\n"
            "    servers:\n"
            "      - { name: bank, address: 127.0.0.1:%u }\n"
            "  # offload and http: plain HTTP to the same origins\n"
            "  - name: web\n"
            "    servers:\n"
            "      - { name: web1, address: 127.0.0.1:%u }\n"
            "      - { name: web2, address: 127.0.0.1:%u }\n"
            "  # bridge: TLS again to the origins, verified against the lab CA\n"
            "  - name: web_bridge\n"
            "    tls: { verify: true, ca: %s/ca.crt, sni: web.lab.test }\n"
            "    servers:\n"
            "      - { name: web1, address: 127.0.0.1:%u }\n"
            "      - { name: web2, address: 127.0.0.1:%u }\n"
            "\n"
            "listeners:\n"
            "  - name: passthrough\n"
            "    bind: 127.0.0.1:%u\n"
            "    mode: passthrough\n"
            "    sni_routes:\n"
            "      - { sni: bank.lab.test, backend: bank_tls }\n"
            "      - { sni: \"*.lab.test\", backend: web_tls }\n"
            "    default_backend: web_tls\n"
            "\n"
            "  - name: offload\n"
            "    bind: 127.0.0.1:%u\n"
            "    mode: offload\n"
            "    tls: { certificates: [ { cert: %s/gateway.crt, key: %s/gateway.key } ] }\n"
            "    http:\n"
            "      sticky: { cookie: TLSGW }\n"
            "      rules:\n"
            "        - match: { path_prefix: /admin }\n"
            "          action: deny\n"
            "          status: 403\n"
            "        - match: { host: old.lab.test }\n"
            "          action: redirect\n"
            "          location: \"https://" SNI ":%u{uri}\"\n"
            "          status: 301\n"
            "      default_backend: web\n"
            "\n"
            "  - name: bridge\n"
            "    bind: 127.0.0.1:%u\n"
            "    mode: bridge\n"
            "    tls: { certificates: [ { cert: %s/gateway.crt, key: %s/gateway.key } ] }\n"
            "    http:\n"
            "      sticky: { cookie: TLSGW }\n"
            "      default_backend: web_bridge\n"
            "\n"
            "  - name: http\n"
            "    bind: 127.0.0.1:%u\n"
            "    mode: http\n"
            "    http:\n"
            "      rules:\n"
            "        - action: redirect\n"
            "          location: \"https://" SNI ":%u{uri}\"\n"
            "          status: 301\n",
            port_of(d, P_ADMIN), port_of(d, P_WEB1_TLS), port_of(d, P_WEB2_TLS),
            port_of(d, P_BANK_TLS), port_of(d, P_WEB1_HTTP), port_of(d, P_WEB2_HTTP), d->dir,
            port_of(d, P_WEB1_TLS), port_of(d, P_WEB2_TLS), port_of(d, P_PASSTHROUGH),
            port_of(d, P_OFFLOAD), d->dir, d->dir, port_of(d, P_OFFLOAD), port_of(d, P_BRIDGE),
            d->dir, d->dir, port_of(d, P_HTTP), port_of(d, P_OFFLOAD));
    ok = !ferror(f);
    if (fclose(f) != 0 || !ok) {
        fprintf(stderr, "tlsgate demo: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* Starts the origins and the gateway and waits for all their ports. Returns 0 or -1. */
static int start_all(struct demo *d)
{
    static const struct {
        const char *name; /* origin name */
        int tls;          /* its https port */
        int http;         /* its http port, -1 for none */
        const char *cert; /* certificate stem */
    } origins[] = {
        {"web1", P_WEB1_TLS, P_WEB1_HTTP, "web"},
        {"web2", P_WEB2_TLS, P_WEB2_HTTP, "web2"},
        {"bank", P_BANK_TLS, -1, "bank"},
    };
    static const char *const whats[] = {"origin web1", "origin web2", "origin bank"};
    char https[32], http[32], cert[PATH_MAX + 16], key[PATH_MAX + 16], conf[PATH_MAX + 16], log[64];

    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        snprintf(https, sizeof(https), "127.0.0.1:%u", port_of(d, origins[i].tls));
        snprintf(cert, sizeof(cert), "%s/%s.crt", d->dir, origins[i].cert);
        snprintf(key, sizeof(key), "%s/%s.key", d->dir, origins[i].cert);
        snprintf(log, sizeof(log), "origin-%s.log", origins[i].name);
        if (origins[i].http >= 0) {
            snprintf(http, sizeof(http), "127.0.0.1:%u", port_of(d, origins[i].http));
            char *args[] = {"origin",  "--name", (char *)origins[i].name,
                            "--https", https,    "--cert",
                            cert,      "--key",  key,
                            "--http",  http,     "--quiet",
                            NULL};
            if (spawn(d, whats[i], log, args) < 0)
                return -1;
        } else {
            char *args[] = {"origin",  "--name", (char *)origins[i].name,
                            "--https", https,    "--cert",
                            cert,      "--key",  key,
                            "--quiet", NULL};
            if (spawn(d, whats[i], log, args) < 0)
                return -1;
        }
    }
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        if (wait_port(&d->kids[i], port_of(d, origins[i].tls)) < 0)
            return -1;
        if (origins[i].http >= 0 && wait_port(&d->kids[i], port_of(d, origins[i].http)) < 0)
            return -1;
    }
    snprintf(conf, sizeof(conf), "%s/lab.yaml", d->dir);
    {
        char *args[] = {"-c", conf, NULL};

        if (spawn(d, "gateway", "gateway.log", args) < 0)
            return -1;
    }
    for (int p = P_PASSTHROUGH; p <= P_ADMIN; p++)
        if (wait_port(&d->kids[d->nkids - 1], port_of(d, p)) < 0)
            return -1;
    return 0;
}

/* The URLs of the lab. */
static void print_urls(const struct demo *d)
{
    printf("\n== tlsgate demo: lab directory %s ==\n\n", d->dir);
    printf("origins:  web1 and web2 (HTTPS with their own *.lab.test certificate, and plain "
           "HTTP), bank (HTTPS)\n");
    printf("          https 127.0.0.1:%u-%u, http 127.0.0.1:%u-%u\n", port_of(d, P_WEB1_TLS),
           port_of(d, P_BANK_TLS), port_of(d, P_WEB1_HTTP), port_of(d, P_WEB2_HTTP));
    printf("gateway:  configuration %s/lab.yaml, log and access log %s/gateway.log\n", d->dir,
           d->dir);
    printf("  passthrough  https://" SNI ":%u/  TLS passes through to the origins (SNI routing)\n",
           port_of(d, P_PASSTHROUGH));
    printf("  offload      https://" SNI ":%u/  TLS ends at the gateway; plain HTTP to the "
           "origins\n",
           port_of(d, P_OFFLOAD));
    printf("  bridge       https://" SNI ":%u/  TLS ends at the gateway; TLS again to the "
           "origins\n",
           port_of(d, P_BRIDGE));
    printf("  http         http://" SNI ":%u/   plain HTTP, redirected to the offload "
           "listener\n",
           port_of(d, P_HTTP));
    printf("  admin        http://127.0.0.1:%u/  dashboard, /metrics, /stats\n",
           port_of(d, P_ADMIN));
    printf("CA of the lab: %s/ca.crt (" SNI " and the other *.lab.test names resolve with "
           "curl --resolve)\n\n",
           d->dir);
    fflush(stdout);
}

/* What to try next, per mode. */
static void print_try(const struct demo *d)
{
    char ca[PATH_MAX + 32];
    unsigned pt = port_of(d, P_PASSTHROUGH), of = port_of(d, P_OFFLOAD), br = port_of(d, P_BRIDGE),
             ht = port_of(d, P_HTTP), ad = port_of(d, P_ADMIN);

    snprintf(ca, sizeof(ca), "--cacert %s/ca.crt", d->dir);
    printf("\n== try it ==\n");
    printf("\n# passthrough: the origin terminates TLS. Its JSON shows \"tls\":{...} (the "
           "client's\n# own session) and no X-Forwarded-For; the certificate is the origin's "
           "own\n# (CN web.lab.test or web2.lab.test: the servers take turns).\n");
    printf("curl -s %s --resolve " SNI ":%u:127.0.0.1 https://" SNI ":%u/hello\n", ca, pt, pt);
    printf("curl -s %s --resolve bank.lab.test:%u:127.0.0.1 https://bank.lab.test:%u/   # SNI "
           "route to bank\n",
           ca, pt, pt);
    printf("openssl s_client -connect 127.0.0.1:%u -servername " SNI
           " </dev/null 2>/dev/null | grep -E '^(subject|issuer)='\n",
           pt);
    printf("\n# offload: the gateway terminates TLS (certificate CN gateway.lab.test). The "
           "origin's JSON\n# shows \"tls\":null and X-Forwarded-For; rules, redirects and "
           "cookies work.\n");
    printf("curl -s %s --resolve " SNI ":%u:127.0.0.1 https://" SNI ":%u/hello\n", ca, of, of);
    printf("curl -si %s --resolve " SNI ":%u:127.0.0.1 https://" SNI
           ":%u/admin          # 403 (deny rule)\n",
           ca, of, of);
    printf("curl -si %s --resolve old.lab.test:%u:127.0.0.1 https://old.lab.test:%u/x   # 301 "
           "(redirect rule)\n",
           ca, of, of);
    printf("curl -si %s -c /tmp/tlsgate-jar -b /tmp/tlsgate-jar --resolve " SNI
           ":%u:127.0.0.1 https://" SNI ":%u/   # run twice: the TLSGW cookie pins one origin\n",
           ca, of, of);
    printf("openssl s_client -connect 127.0.0.1:%u -servername " SNI
           " </dev/null 2>/dev/null | grep -E '^(subject|issuer)='\n",
           of);
    printf("\n# bridge: decrypted at the gateway and encrypted again: the origin's JSON shows "
           "both\n# \"tls\":{...} (the gateway's session to it) and X-Forwarded-For.\n");
    printf("curl -s %s --resolve " SNI ":%u:127.0.0.1 https://" SNI ":%u/hello\n", ca, br, br);
    printf("\n# http: plain HTTP, answered by the gateway with a redirect to https.\n");
    printf("curl -si --resolve " SNI ":%u:127.0.0.1 http://" SNI ":%u/hello\n", ht, ht);
    printf("\n# what the gateway saw of each (passthrough: SNI, ALPN, versions; others: method, "
           "host, path):\n");
    printf("tail -f %s/gateway.log\n", d->dir);
    printf("# its counters, with CPU seconds per listener; the dashboard is http://127.0.0.1:%u/\n",
           ad);
    printf("curl -s http://127.0.0.1:%u/metrics | grep -E 'cpu|handshakes_total'\n", ad);
    printf("\n# compare again, with a full TLS handshake per request and an HTML report:\n");
    printf("%s compare -c %s/lab.yaml --sni " SNI
           " --new-connections --duration 3000 --report /tmp/tlsgate-compare.html\n",
           d->self, d->dir);
    fflush(stdout);
}

/* Runs the comparison over the four listeners. Returns compare_run's code. */
static int run_compare(const struct demo *d)
{
    static const char *listeners[] = {"passthrough", "offload", "bridge", "http"};
    char conf[PATH_MAX + 16];
    struct compare_opts o = {0};
    int rc;

    snprintf(conf, sizeof(conf), "%s/lab.yaml", d->dir);
    o.config = conf;
    o.listeners = listeners;
    o.nlisteners = 4;
    o.connections = d->connections;
    o.threads = 2;
    o.duration_ms = d->compare_ms;
    o.timeout_ms = 5000;
    o.path = "/";
    o.sni = SNI;
    o.report = d->report;
    o.stop = &demo_stop;
    printf("== the same load through each listener (tlsgate compare) ==\n\n");
    fflush(stdout);
    rc = compare_run(&o, stdout);
    fflush(stdout);
    return rc;
}

/* Serves until a signal, --duration, or a child dies. Returns 0 or 2. */
static int serve(struct demo *d)
{
    uint64_t end = d->duration_ms ? now_ms() + d->duration_ms : 0;

    if (d->duration_ms)
        printf("\nserving for %u ms (Ctrl-C stops earlier)\n", d->duration_ms);
    else
        printf("\nserving until Ctrl-C\n");
    fflush(stdout);
    while (!demo_stop && (end == 0 || now_ms() < end)) {
        for (size_t i = 0; i < d->nkids; i++) {
            if (kid_gone(&d->kids[i], true)) {
                fprintf(stderr, "tlsgate demo: %s stopped unexpectedly; ending the demo\n",
                        d->kids[i].what);
                return 2;
            }
        }
        sleep_ms(100);
    }
    return 0;
}

static void demo_usage(FILE *f)
{
    fprintf(f,
            "usage: tlsgate demo [--base-port N] [--connections N] [--compare-ms MS]\n"
            "                    [--duration MS | --no-serve] [--report FILE.html]\n"
            "\n"
            "A self-contained lab: makes certificates in a temporary directory, starts\n"
            "three lab origins and a gateway with one listener per mode (passthrough,\n"
            "offload, bridge, http) in front of them, prints the URLs, runs a short\n"
            "comparison and the curl lines to try, then serves until Ctrl-C and\n"
            "removes everything it made.\n"
            "\n"
            "  --base-port N     first listener port (default %d): listeners N..N+3,\n"
            "                    admin N+%d, origins N+%d..N+%d (https), N+%d..N+%d (http)\n"
            "  --connections N   connections of the comparison (default 16)\n"
            "  --compare-ms MS   comparison time per listener (default 2000)\n"
            "  --duration MS     serve this long after the comparison, then stop\n"
            "  --no-serve        stop right after the comparison\n"
            "  --report FILE     also write the comparison's HTML report\n",
            BASE_DEFAULT, ADMIN_OFFSET, ORIGIN_TLS_OFF, ORIGIN_TLS_OFF + 2, ORIGIN_HTTP_OFF,
            ORIGIN_HTTP_OFF + 1);
}

/* Parses an unsigned option in [min, max]; prints why and returns -1 if bad. */
static int demo_uint(const char *opt, const char *text, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        fprintf(stderr, "tlsgate demo: %s '%s': expected %u..%u\n", opt, text, min, max);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Parses argv into d. Returns -1 to go on, or the exit code to return now. */
static int demo_parse_args(struct demo *d, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"base-port", required_argument, NULL, 'b'},
        {"connections", required_argument, NULL, 'n'},
        {"compare-ms", required_argument, NULL, 'm'},
        {"duration", required_argument, NULL, 'd'},
        {"no-serve", no_argument, NULL, 'N'},
        {"report", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    d->base = BASE_DEFAULT;
    d->connections = 16;
    d->compare_ms = 2000;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (demo_uint("--base-port", optarg, 1, 65535 - ADMIN_OFFSET, &d->base) < 0)
                goto usage;
            break;
        case 'n':
            if (demo_uint("--connections", optarg, 1, 1000, &d->connections) < 0)
                goto usage;
            break;
        case 'm':
            if (demo_uint("--compare-ms", optarg, 100, 600000, &d->compare_ms) < 0)
                goto usage;
            break;
        case 'd':
            if (demo_uint("--duration", optarg, 1, 86400000, &d->duration_ms) < 0)
                goto usage;
            break;
        case 'N':
            d->no_serve = true;
            break;
        case 'r':
            d->report = optarg;
            break;
        case 'h':
            demo_usage(stdout);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tlsgate demo: unexpected argument '%s'\n", argv[optind]);
        goto usage;
    }
    if (d->no_serve && d->duration_ms) {
        fprintf(stderr, "tlsgate demo: --no-serve and --duration exclude each other\n");
        goto usage;
    }
    return -1;
usage:
    demo_usage(stderr);
    return 1;
}

/* Makes the temporary directory under $TMPDIR (default /tmp). Returns 0 or -1. */
static int make_dir(struct demo *d)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    snprintf(d->dir, sizeof(d->dir), "%s/tlsgate-demo.XXXXXX", tmp);
    if (mkdtemp(d->dir) == NULL) {
        fprintf(stderr, "tlsgate demo: cannot make a directory in %s: %s\n", tmp, strerror(errno));
        d->dir[0] = '\0';
        return -1;
    }
    return 0;
}

int demo_main(int argc, char **argv)
{
    struct demo d;
    struct sigaction sa;
    char err[512];
    ssize_t n;
    bool served = false;
    int rc, crc;

    memset(&d, 0, sizeof(d));
    rc = demo_parse_args(&d, argc, argv);
    if (rc >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    n = readlink("/proc/self/exe", d.self, sizeof(d.self) - 1);
    if (n <= 0) {
        fprintf(stderr, "tlsgate demo: cannot find this program: /proc/self/exe: %s\n",
                strerror(errno));
        return 2;
    }
    d.self[n] = '\0';
    if (ports_free(&d) < 0)
        return 2;
    rc = 2;
    if (make_dir(&d) < 0)
        return 2;
    printf("tlsgate demo: making lab certificates in %s\n", d.dir);
    if (labcerts_make(d.dir, labcerts_default, nlabcerts_default, err, sizeof(err)) < 0) {
        fprintf(stderr, "tlsgate demo: %s\n", err);
        goto out;
    }
    if (write_config(&d) < 0)
        goto out;
    printf("tlsgate demo: starting 3 origins and the gateway\n");
    if (start_all(&d) < 0)
        goto out;
    print_urls(&d);
    crc = run_compare(&d);
    if (demo_stop) {
        rc = 0;
        goto out;
    }
    print_try(&d);
    rc = crc != 0 ? 2 : 0;
    served = true;
    if (!d.no_serve && serve(&d) != 0)
        rc = 2;
out:
    if (demo_stop) {
        printf("\ntlsgate demo: stopping\n");
        if (!served)
            rc = 0; /* asked to stop while starting or comparing: not a failure */
    }
    stop_kids(&d);
    remove_dir(&d);
    if (d.dir[0] != '\0')
        printf("tlsgate demo: stopped; removed %s\n", d.dir);
    return rc;
}
