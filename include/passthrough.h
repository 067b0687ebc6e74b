/* Passthrough mode: peek the ClientHello, route by SNI, relay raw bytes. */
#ifndef TLSGATE_PASSTHROUGH_H
#define TLSGATE_PASSTHROUGH_H

#include "session-t.h"

extern const struct session_ops passthrough_ops;

#endif
