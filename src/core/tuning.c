/* Tuning knobs from the environment (see tuning.h). */
#include <stdlib.h>

#include "log.h"
#include "tuning.h"

long tuning_env_us(const char *name, long dflt)
{
    const char *v = getenv(name);
    char *end;
    long us;

    if (v == NULL || *v == '\0')
        return dflt;
    us = strtol(v, &end, 10);
    if (*end != '\0' || us < 0 || us >= 1000000) {
        log_warnx("%s=%s: not a number of µs below 1000000; using %ld", name, v, dflt);
        return dflt;
    }
    return us;
}
