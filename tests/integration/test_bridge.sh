#!/usr/bin/env bash
# Bridge: TLS ends at the gateway and starts again toward the servers, which
# the gateway verifies against backends[].tls.ca with the name .sni. The
# origin sees TLS from the gateway (with that SNI); a server presenting a
# certificate for another name, or from an unknown CA, is refused (client gets
# 502, the log says why) unless verify is false; server connections are kept
# alive and reused; HTTP features (rules, forwarded headers) work as in offload.
. "$(dirname "$0")/lib.sh"

make_certs
P_OK=$(free_port) P_WRONG=$(free_port) P_SELF=$(free_port) GW=$(free_port)
# A certificate for web.lab.test from a CA the gateway does not know.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=web.lab.test -addext subjectAltName=DNS:web.lab.test \
    -keyout "$T/self.key" -out "$T/self.crt" 2>/dev/null
start_https_origin secure1 "$P_OK" web
# (not --quiet: its log shows whether a request reached it)
start_origin impostor --https "127.0.0.1:$P_WRONG" --cert "$CERTS/wrong.crt" --key "$CERTS/wrong.key"
start_origin selfsigned --https "127.0.0.1:$P_SELF" --cert "$T/self.crt" --key "$T/self.key" --quiet
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
timeouts: { connect: 2000 }
backends:
  - name: secure
    tls: { ca: $CERTS/ca.crt, sni: web.lab.test }
    servers: [ { name: secure1, address: 127.0.0.1:$P_OK } ]
  - name: wrongname
    tls: { ca: $CERTS/ca.crt, sni: web.lab.test }
    servers: [ { name: impostor1, address: 127.0.0.1:$P_WRONG } ]
  - name: unknownca
    tls: { ca: $CERTS/ca.crt, sni: web.lab.test }
    servers: [ { name: self1, address: 127.0.0.1:$P_SELF } ]
  - name: trusting
    tls: { verify: false, sni: web.lab.test }
    servers: [ { name: impostor2, address: 127.0.0.1:$P_WRONG } ]
  - name: withproxy
    proxy_protocol: v2
    tls: { ca: $CERTS/ca.crt, sni: web.lab.test }
    servers: [ { name: secure2, address: 127.0.0.1:$P_OK } ]
listeners:
  - name: bridge
    bind: 127.0.0.1:$GW
    mode: bridge
    tls: $(tls_certs_yaml gateway)
    http:
      hsts: "max-age=60"
      rules:
        - match: { host: wrong.lab.test }
          action: forward
          backend: wrongname
        - match: { host: unknown.lab.test }
          action: forward
          backend: unknownca
        - match: { host: trusting.lab.test }
          action: forward
          backend: trusting
        - match: { host: proxy.lab.test }
          action: forward
          backend: withproxy
        - match: { path_prefix: /admin }
          action: deny
      default_backend: secure
YAML
start_gateway "$T/gw.yaml" "$GW"

body=$(gw_curl www.lab.test "$GW" /hello)
assert_eq "bridge reaches the HTTPS origin" secure1 "$(json_get "$body" origin)"
tls=$(json_get "$body" tls)
check "the origin saw TLS from the gateway ($tls)" test -n "$tls"
assert_eq "...TLS 1.3" TLSv1.3 "$(json_path "$tls" 'd["version"]')"
assert_eq "...with the backend's SNI" web.lab.test "$(json_path "$tls" 'd["sni"]')"
assert_eq "...and ALPN http/1.1 (or none)" ok \
    "$(json_path "$tls" '"ok" if d.get("alpn") in (None, "", "http/1.1") else d.get("alpn")')"
assert_eq "X-Forwarded-For is the client" 127.0.0.1 "$(origin_header "$body" x-forwarded-for)"
assert_eq "X-Forwarded-Proto https" https "$(origin_header "$body" x-forwarded-proto)"
wait_access '"path":"/hello"'
line=$(access_line '"path":"/hello"')
assert_contains "access log: mode bridge" "$line" '"mode":"bridge"'
assert_contains "access log: backend and server" "$line" '"backend":"secure","server":"secure1"'
hdrs=$(gw_curl www.lab.test "$GW" /admin -o /dev/null -D - -w '')
assert_contains "rules work in bridge mode (deny)" "$hdrs" "HTTP/1.1 403"
assert_contains "HSTS in bridge mode" "$hdrs" "Strict-Transport-Security: max-age=60"

# Keep-alive toward the TLS server: five requests, one server connection.
U="https://www.lab.test:$GW"
out=$(curl -sS --max-time 20 --cacert "$CERTS/ca.crt" --resolve "www.lab.test:$GW:127.0.0.1" -w '\n' \
    "$U/k1" "$U/k2" "$U/k3" "$U/k4" "$U/k5" || true)
ids=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["connection_id"]) for l in sys.stdin if l.strip()))' <<<"$out" || true)
id1=${ids%% *}
assert_eq "5 requests: one TLS connection to the server" "$id1 $id1 $id1 $id1 $id1" "$ids"

# Verification.
hdrs=$(gw_curl wrong.lab.test "$GW" /w -o /dev/null -D -)
assert_contains "server certificate for another name: 502" "$hdrs" "HTTP/1.1 502"
wait_access '"host":"wrong.lab.test"'
line=$(access_line '"host":"wrong.lab.test"')
assert_contains "...logged as a TLS failure toward the server" "$line" '"result":"server-tls-failed"'
check "...and the log says why (certificate verify failed / hostname mismatch)" \
    grep -qiE 'impostor1.*(verify|hostname|mismatch)' "$T/gateway.log"
assert_eq "...and the request never reached that server" 0 "$(origin_served impostor /w)"

hdrs=$(gw_curl unknown.lab.test "$GW" /u -o /dev/null -D -)
assert_contains "server certificate from an unknown CA: 502" "$hdrs" "HTTP/1.1 502"
check "...and the log says why" grep -qiE 'self1.*(verify|issuer|self[- ]signed)' "$T/gateway.log"

body=$(gw_curl trusting.lab.test "$GW" /t)
assert_eq "verify: false accepts the same server" impostor "$(json_get "$body" origin)"
check "...still over TLS" test -n "$(json_get "$body" tls)"

# PROXY protocol toward a TLS server: the header on the raw connection, then TLS.
body=$(gw_curl proxy.lab.test "$GW" /pp)
assert_eq "PROXY v2 then TLS: the origin answers" secure1 "$(json_get "$body" origin)"
proxy=$(json_get "$body" proxy)
assert_eq "...and got the PROXY header with the client's address" "2 127.0.0.1" \
    "$(json_path "$proxy" 'str(d["version"]) + " " + d["src"].rsplit(":", 1)[0]')"
check "...before a verified TLS session" test -n "$(json_get "$body" tls)"

end_gateway
finish
