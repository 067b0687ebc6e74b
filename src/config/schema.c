/*
 * The libcyaml schema of the configuration file: one table per section, a
 * row per key, like Redis's static_configs[]. Required keys carry no
 * CYAML_FLAG_OPTIONAL; optional scalars are pointers (NULL = absent) so that
 * config.c can tell "absent" (take the default) from an explicit 0.
 *
 * yaml_lines.c walks these same tables to report unknown keys, missing keys
 * and bad values with their line, so the tables are the only list of keys.
 */
#include <stddef.h>

#include "config/conf.h"

#define OPT CYAML_FLAG_OPTIONAL
#define STR_ANY(key, flags, type, member)                                                          \
    CYAML_FIELD_STRING_PTR(key, flags, type, member, 0, CYAML_UNLIMITED)
#define STR_NONEMPTY(key, flags, type, member)                                                     \
    CYAML_FIELD_STRING_PTR(key, flags, type, member, 1, CYAML_UNLIMITED)
#define ENUM_OPT(key, type, member, table)                                                         \
    CYAML_FIELD_ENUM_PTR(key, OPT | CYAML_FLAG_STRICT, type, member, table, CYAML_ARRAY_LEN(table))

static const cyaml_strval_t mode_strings[] = {
    {"passthrough", MODE_PASSTHROUGH},
    {"offload", MODE_OFFLOAD},
    {"bridge", MODE_BRIDGE},
    {"http", MODE_HTTP},
};

static const cyaml_strval_t balance_strings[] = {
    {"roundrobin", BALANCE_ROUNDROBIN},
    {"leastconn", BALANCE_LEASTCONN},
    {"source", BALANCE_SOURCE},
    {"random", BALANCE_RANDOM},
};

/* Sent to servers: "any" would not say which header to write. */
static const cyaml_strval_t backend_pp_strings[] = {
    {"off", PP_OFF},
    {"v1", PP_V1},
    {"v2", PP_V2},
};

/* Accepted from a balancer in front. YAML 1.1 would read a plain off as a
 * boolean; libcyaml hands us the scalar text, so "off" is matched here. */
static const cyaml_strval_t listener_pp_strings[] = {
    {"off", PP_OFF},
    {"v1", PP_V1},
    {"v2", PP_V2},
    {"any", PP_ANY},
};

static const cyaml_strval_t check_strings[] = {
    {"none", HEALTH_NONE},
    {"tcp", HEALTH_TCP},
    {"tls", HEALTH_TLS},
    {"http", HEALTH_HTTP},
};

static const cyaml_strval_t level_strings[] = {
    {"error", LOG_LEVEL_ERROR},
    {"warn", LOG_LEVEL_WARN},
    {"info", LOG_LEVEL_INFO},
    {"debug", LOG_LEVEL_DEBUG},
};

static const cyaml_strval_t format_strings[] = {
    {"json", ACCESS_JSON},
    {"text", ACCESS_TEXT},
};

static const cyaml_strval_t action_strings[] = {
    {"deny", RULE_DENY},
    {"redirect", RULE_REDIRECT},
    {"forward", RULE_FORWARD},
};

/* timeouts: */
static const cyaml_schema_field_t timeouts_fields[] = {
    CYAML_FIELD_UINT_PTR("client_hello", OPT, struct raw_timeouts_conf, client_hello),
    CYAML_FIELD_UINT_PTR("handshake", OPT, struct raw_timeouts_conf, handshake),
    CYAML_FIELD_UINT_PTR("connect", OPT, struct raw_timeouts_conf, connect),
    CYAML_FIELD_UINT_PTR("idle", OPT, struct raw_timeouts_conf, idle),
    CYAML_FIELD_UINT_PTR("http_request", OPT, struct raw_timeouts_conf, http_request),
    CYAML_FIELD_UINT_PTR("http_keepalive", OPT, struct raw_timeouts_conf, http_keepalive),
    CYAML_FIELD_UINT_PTR("drain", OPT, struct raw_timeouts_conf, drain),
    CYAML_FIELD_END,
};

/* admin: */
static const cyaml_schema_field_t admin_fields[] = {
    STR_ANY("listen", OPT, struct raw_admin_conf, listen),
    CYAML_FIELD_END,
};

/* log: */
static const cyaml_schema_field_t log_fields[] = {
    ENUM_OPT("level", struct raw_log_conf, level, level_strings),
    STR_ANY("access", OPT, struct raw_log_conf, access),
    ENUM_OPT("format", struct raw_log_conf, format, format_strings),
    CYAML_FIELD_END,
};

/* backends[].health: */
static const cyaml_schema_field_t health_fields[] = {
    ENUM_OPT("check", struct raw_health_conf, check, check_strings),
    CYAML_FIELD_UINT_PTR("interval", OPT, struct raw_health_conf, interval),
    CYAML_FIELD_UINT_PTR("timeout", OPT, struct raw_health_conf, timeout),
    CYAML_FIELD_UINT_PTR("rise", OPT, struct raw_health_conf, rise),
    CYAML_FIELD_UINT_PTR("fall", OPT, struct raw_health_conf, fall),
    STR_ANY("path", OPT, struct raw_health_conf, path),
    CYAML_FIELD_UINT_PTR("expect_status", OPT, struct raw_health_conf, expect_status),
    STR_ANY("sni", OPT, struct raw_health_conf, sni),
    CYAML_FIELD_END,
};

/* backends[].tls: */
static const cyaml_schema_field_t backend_tls_fields[] = {
    CYAML_FIELD_BOOL_PTR("verify", OPT, struct raw_backend_tls_conf, verify),
    STR_ANY("ca", OPT, struct raw_backend_tls_conf, ca),
    STR_ANY("sni", OPT, struct raw_backend_tls_conf, sni),
    CYAML_FIELD_END,
};

/* backends[].servers[]: */
static const cyaml_schema_field_t server_fields[] = {
    STR_NONEMPTY("name", 0, struct raw_server_conf, name),
    STR_NONEMPTY("address", 0, struct raw_server_conf, address),
    CYAML_FIELD_UINT_PTR("weight", OPT, struct raw_server_conf, weight),
    CYAML_FIELD_UINT_PTR("max_connections", OPT, struct raw_server_conf, max_connections),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t server_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_server_conf, server_fields),
};

/* backends[]: */
static const cyaml_schema_field_t backend_fields[] = {
    STR_NONEMPTY("name", 0, struct raw_backend_conf, name),
    ENUM_OPT("balance", struct raw_backend_conf, balance, balance_strings),
    ENUM_OPT("proxy_protocol", struct raw_backend_conf, proxy_protocol, backend_pp_strings),
    CYAML_FIELD_MAPPING_PTR("tls", OPT, struct raw_backend_conf, tls, backend_tls_fields),
    CYAML_FIELD_MAPPING_PTR("health", OPT, struct raw_backend_conf, health, health_fields),
    CYAML_FIELD_SEQUENCE_COUNT("servers", CYAML_FLAG_POINTER, struct raw_backend_conf, servers,
                               nservers, &server_schema, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t backend_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_backend_conf, backend_fields),
};

/* listeners[].sni_routes[]: */
static const cyaml_schema_field_t sni_route_fields[] = {
    STR_ANY("sni", 0, struct raw_sni_route_conf, sni),
    STR_NONEMPTY("backend", OPT, struct raw_sni_route_conf, backend),
    STR_NONEMPTY("terminate", OPT, struct raw_sni_route_conf, terminate),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t sni_route_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_sni_route_conf, sni_route_fields),
};

/* listeners[].tls.certificates[]: */
static const cyaml_schema_field_t cert_fields[] = {
    STR_NONEMPTY("cert", 0, struct raw_cert_conf, cert),
    STR_NONEMPTY("key", 0, struct raw_cert_conf, key),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cert_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_cert_conf, cert_fields),
};

static const cyaml_schema_value_t alpn_schema = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 1, 255),
};

/* listeners[].tls: */
static const cyaml_schema_field_t listener_tls_fields[] = {
    CYAML_FIELD_SEQUENCE_COUNT("certificates", CYAML_FLAG_POINTER | OPT,
                               struct raw_listener_tls_conf, certificates, ncertificates,
                               &cert_schema, 0, CYAML_UNLIMITED),
    STR_ANY("min_version", OPT, struct raw_listener_tls_conf, min_version),
    STR_ANY("ciphers", OPT, struct raw_listener_tls_conf, ciphers),
    STR_ANY("ciphersuites", OPT, struct raw_listener_tls_conf, ciphersuites),
    CYAML_FIELD_SEQUENCE_COUNT("alpn", CYAML_FLAG_POINTER | OPT, struct raw_listener_tls_conf, alpn,
                               nalpn, &alpn_schema, 1, CYAML_UNLIMITED),
    CYAML_FIELD_BOOL_PTR("session_tickets", OPT, struct raw_listener_tls_conf, session_tickets),
    STR_ANY("ticket_key_file", OPT, struct raw_listener_tls_conf, ticket_key_file),
    STR_ANY("client_ca", OPT, struct raw_listener_tls_conf, client_ca),
    CYAML_FIELD_END,
};

/* listeners[].http.rules[].match.header: */
static const cyaml_schema_field_t header_match_fields[] = {
    STR_NONEMPTY("name", 0, struct raw_header_match_conf, name),
    STR_ANY("value", 0, struct raw_header_match_conf, value),
    CYAML_FIELD_END,
};

/* listeners[].http.rules[].match: */
static const cyaml_schema_field_t rule_match_fields[] = {
    STR_ANY("src", OPT, struct raw_rule_match_conf, src),
    STR_ANY("host", OPT, struct raw_rule_match_conf, host),
    STR_ANY("path_prefix", OPT, struct raw_rule_match_conf, path_prefix),
    STR_ANY("method", OPT, struct raw_rule_match_conf, method),
    CYAML_FIELD_MAPPING_PTR("header", OPT, struct raw_rule_match_conf, header, header_match_fields),
    CYAML_FIELD_END,
};

/* listeners[].http.rules[]: */
static const cyaml_schema_field_t rule_fields[] = {
    CYAML_FIELD_MAPPING_PTR("match", OPT, struct raw_rule_conf, match, rule_match_fields),
    CYAML_FIELD_ENUM("action", CYAML_FLAG_STRICT, struct raw_rule_conf, action, action_strings,
                     CYAML_ARRAY_LEN(action_strings)),
    CYAML_FIELD_UINT_PTR("status", OPT, struct raw_rule_conf, status),
    STR_ANY("location", OPT, struct raw_rule_conf, location),
    STR_ANY("backend", OPT, struct raw_rule_conf, backend),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t rule_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_rule_conf, rule_fields),
};

/* listeners[].http.sticky: */
static const cyaml_schema_field_t sticky_fields[] = {
    STR_ANY("cookie", OPT, struct raw_sticky_conf, cookie),
    CYAML_FIELD_UINT_PTR("max_age", OPT, struct raw_sticky_conf, max_age),
    STR_ANY("secret_file", OPT, struct raw_sticky_conf, secret_file),
    CYAML_FIELD_END,
};

/* listeners[].http: */
static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_UINT_PTR("max_header_bytes", OPT, struct raw_http_conf, max_header_bytes),
    CYAML_FIELD_BOOL_PTR("forwarded_headers", OPT, struct raw_http_conf, forwarded_headers),
    STR_ANY("hsts", OPT, struct raw_http_conf, hsts),
    CYAML_FIELD_MAPPING_PTR("sticky", OPT, struct raw_http_conf, sticky, sticky_fields),
    CYAML_FIELD_SEQUENCE_COUNT("rules", CYAML_FLAG_POINTER | OPT, struct raw_http_conf, rules,
                               nrules, &rule_schema, 0, CYAML_UNLIMITED),
    STR_ANY("default_backend", OPT, struct raw_http_conf, default_backend),
    CYAML_FIELD_END,
};

/* listeners[]: */
static const cyaml_schema_field_t listener_fields[] = {
    STR_NONEMPTY("name", 0, struct raw_listener_conf, name),
    STR_NONEMPTY("bind", 0, struct raw_listener_conf, bind),
    CYAML_FIELD_ENUM("mode", CYAML_FLAG_STRICT, struct raw_listener_conf, mode, mode_strings,
                     CYAML_ARRAY_LEN(mode_strings)),
    ENUM_OPT("proxy_protocol", struct raw_listener_conf, proxy_protocol, listener_pp_strings),
    CYAML_FIELD_UINT_PTR("max_connections", OPT, struct raw_listener_conf, max_connections),
    CYAML_FIELD_SEQUENCE_COUNT("sni_routes", CYAML_FLAG_POINTER | OPT, struct raw_listener_conf,
                               sni_routes, nsni_routes, &sni_route_schema, 0, CYAML_UNLIMITED),
    STR_ANY("default_backend", OPT, struct raw_listener_conf, default_backend),
    STR_ANY("default_terminate", OPT, struct raw_listener_conf, default_terminate),
    CYAML_FIELD_MAPPING_PTR("tls", OPT, struct raw_listener_conf, tls, listener_tls_fields),
    CYAML_FIELD_MAPPING_PTR("http", OPT, struct raw_listener_conf, http, http_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t listener_schema = {
    CYAML_VALUE_MAPPING(0, struct raw_listener_conf, listener_fields),
};

/* The whole file. */
static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_UINT_PTR("workers", OPT, struct raw_config_conf, workers),
    CYAML_FIELD_UINT_PTR("max_connections", OPT, struct raw_config_conf, max_connections),
    CYAML_FIELD_MAPPING_PTR("timeouts", OPT, struct raw_config_conf, timeouts, timeouts_fields),
    CYAML_FIELD_MAPPING_PTR("admin", OPT, struct raw_config_conf, admin, admin_fields),
    CYAML_FIELD_MAPPING_PTR("log", OPT, struct raw_config_conf, log, log_fields),
    CYAML_FIELD_SEQUENCE_COUNT("backends", CYAML_FLAG_POINTER | OPT, struct raw_config_conf,
                               backends, nbackends, &backend_schema, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE_COUNT("listeners", CYAML_FLAG_POINTER, struct raw_config_conf, listeners,
                               nlisteners, &listener_schema, 1, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t schema_config = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config_conf, config_fields),
};
