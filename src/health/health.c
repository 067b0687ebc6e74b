/* Placeholder: active checks and passive ejection are being built. */
#include <stdlib.h>

#include "config.h"
#include "health.h"

struct health {
    struct config *conf;
};

struct health *health_start(struct event_base *base, struct config *conf, const struct config *old)
{
    struct health *h = calloc(1, sizeof(*h));

    (void)base;
    (void)old;
    if (h != NULL)
        h->conf = config_ref(conf);
    return h;
}

void health_stop(struct health *h)
{
    if (h == NULL)
        return;
    config_unref(h->conf);
    free(h);
}

void health_report_connect(struct server *srv, bool ok)
{
    (void)srv;
    (void)ok;
}

void health_report_status(struct server *srv, unsigned status)
{
    (void)srv;
    (void)status;
}
