/*
 * tlsgate command line: the gateway itself (-c FILE), its checker (--check)
 * and the lab tools built on the same core (origin, demo, compare).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "compare.h"
#include "config.h"
#include "demo.h"
#include "gateway.h"
#include "log.h"
#include "origin.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage:\n"
            "  tlsgate -c FILE            run the gateway in the foreground (logs to stderr)\n"
            "  tlsgate -c FILE --check    validate FILE and exit 0 (valid) or 1 (errors printed)\n"
            "  tlsgate origin [options]   lab origin server (tlsgate origin -h)\n"
            "  tlsgate demo [options]     self-contained lab: certs, origins, gateway, comparison\n"
            "  tlsgate compare [options]  drive the same load through several listeners\n"
            "  tlsgate --version | -h\n");
}

/* Prints every collected configuration error to stderr. */
static void print_errors(const struct config_errors *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->lines[i]);
}

/* tlsgate -c FILE [--check] */
static int run_gateway(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    struct config_errors errs = {0};
    const char *file = NULL;
    struct config *conf;
    int check = 0, opt;

    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("tlsgate %s\n", TLSGATE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (file == NULL || optind != argc) {
        if (file == NULL)
            fprintf(stderr, "tlsgate: -c FILE is required%s\n", check ? " with --check" : "");
        else
            fprintf(stderr, "tlsgate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    conf = config_load(file, &errs);
    if (conf == NULL) {
        print_errors(&errs);
        fprintf(stderr, "%s: %zu error(s)\n", file, errs.n);
        config_errors_free(&errs);
        return 1;
    }
    config_errors_free(&errs);
    if (check) {
        printf("%s: configuration OK (%zu listener(s), %zu backend(s))\n", file, conf->nlisteners,
               conf->nbackends);
        config_unref(conf);
        return 0;
    }
    log_set_level(conf->log.level);
    return gateway_run(conf);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "origin") == 0)
        return origin_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "demo") == 0)
        return demo_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "compare") == 0)
        return compare_main(argc - 1, argv + 1);
    return run_gateway(argc, argv);
}
