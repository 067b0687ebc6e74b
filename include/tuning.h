/*
 * Tuning knobs read from the environment (TLSGATE_RELAY_NAP,
 * TLSGATE_BUSY_NAP): measurement aids kept out of the YAML contract.
 */
#ifndef TLSGATE_TUNING_H
#define TLSGATE_TUNING_H

/*
 * The environment variable name as a duration in µs, 0 to 999,999; dflt when
 * it is unset or empty, and (with a warning naming it) when it is not such a
 * number.
 */
long tuning_env_us(const char *name, long dflt);

#endif
