#!/usr/bin/env bash
# Offload rules: TLS ends at the gateway, which routes on what it decrypted.
# Each rule action is exercised: deny by path prefix and by source CIDR,
# redirect with {host} {uri} {path} {query}, forward by host and by method +
# header; unmatched requests go to default_backend, or get 404 on a listener
# without one. A backend whose servers are all down answers 503, a server
# that answers garbage 502. Every decision shows in the access log.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) P_API=$(free_port) P_BETA=$(free_port) P_BAD=$(free_port) P_DEAD=$(free_port)
GW=$(free_port) GW2=$(free_port) GW_PP=$(free_port)
start_http_origin web1 "$P_WEB"
start_http_origin api1 "$P_API"
start_http_origin beta1 "$P_BETA"
$HTTPCLIENT badserver --port "$P_BAD" --reply 'HTTP/1.1 2x0 Nonsense\r\nContent-Length: 1\r\n\r\nx' \
    >"$T/badserver.log" 2>&1 &
TG_PIDS+=($!)
wait_port "$P_BAD"

TLS=$(tls_certs_yaml gateway)
# The same rules on a direct listener and on one behind a PROXY-protocol balancer.
RULES=$(cat <<'YAML'
      hsts: "max-age=31536000"
      rules:
        - match: { path_prefix: /admin }                 # 0
          action: deny
        - match: { src: 127.0.0.0/8, path_prefix: /internal }   # 1
          action: deny
          status: 451
        - match: { src: 10.0.0.0/8, path_prefix: /private }     # 2
          action: deny
        - match: { host: old.lab.test }                  # 3
          action: redirect
          location: "https://new.lab.test{uri}"
          status: 301
        - match: { path_prefix: /moved/ }                # 4
          action: redirect
          location: "https://{host}/new{path}?from=gw&{query}"
        - match: { host: api.lab.test }                  # 5
          action: forward
          backend: api
        - match: { path_prefix: /beta/, method: GET, header: { name: X-Env, value: beta } }   # 6
          action: forward
          backend: beta
        - match: { host: dead.lab.test }                 # 7
          action: forward
          backend: dead
        - match: { host: broken.lab.test }               # 8
          action: forward
          backend: broken
      default_backend: web
YAML
)
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
timeouts: { connect: 1000 }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
  - name: api
    servers: [ { name: api1, address: 127.0.0.1:$P_API } ]
  - name: beta
    servers: [ { name: beta1, address: 127.0.0.1:$P_BETA } ]
  - name: dead
    servers: [ { name: dead1, address: 127.0.0.1:$P_DEAD } ]
  - name: broken
    servers: [ { name: broken1, address: 127.0.0.1:$P_BAD } ]
listeners:
  - name: front
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $TLS
    http:
$RULES
  - name: behind-lb
    bind: 127.0.0.1:$GW_PP
    mode: offload
    proxy_protocol: v1
    tls: $TLS
    http:
$RULES
  - name: nodefault
    bind: 127.0.0.1:$GW2
    mode: offload
    tls: $TLS
    http:
      rules:
        - match: { host: api.lab.test }
          action: forward
          backend: api
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW2" "$GW_PP"

# curl -i through the gateway: status code on the first line of $T/h, body in $T/b.
req() { # req HOST PORT PATH [curl options]
    local host=$1 port=$2 path=$3
    shift 3
    : >"$T/h"
    : >"$T/b"
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$host:$port:127.0.0.1" \
        -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" "https://$host:$port$path" || true
}
hdr() { { grep -i "^$1:" "$T/h" || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }

# deny by path prefix (default status 403)
assert_eq "deny by path_prefix: 403" 403 "$(req www.lab.test "$GW" /admin/users)"
assert_eq "deny carries HSTS too" "max-age=31536000" "$(hdr Strict-Transport-Security)"
wait_access '"path":"/admin/users"'
line=$(access_line '"path":"/admin/users"')
assert_contains "deny logged with its rule" "$line" '"status":403,"rule":0,"rule_action":"deny"'
assert_contains "deny logged without a backend" "$line" '"backend":null'
assert_eq "a denied request never reaches a server" 0 "$(origin_served web1 /admin)"
# ... nor one that spells the path another way an origin would serve as /admin
for path in /%61dmin/users //admin /x/../admin /static/%2e%2e/admin; do
    assert_eq "deny by path_prefix holds for $path" 403 \
        "$(req www.lab.test "$GW" "$path" --path-as-is)"
done
assert_eq "none of them reached a server" 0 "$(grep -ciE 'admin|%2e' "$T/origin-web1.log" || true)"
assert_eq "a path that only looks alike is forwarded" 200 "$(req www.lab.test "$GW" /x/admin)"

# deny by source CIDR: 127.0.0.1 is in 127.0.0.0/8, not in 10.0.0.0/8
assert_eq "deny by src CIDR: configured status 451" 451 "$(req www.lab.test "$GW" /internal/x)"
assert_eq "src CIDR that does not hold: forwarded" 200 "$(req www.lab.test "$GW" /private/x)"
assert_eq "...to the default backend" web1 "$(json_get "$(cat "$T/b")" origin)"
# Behind a balancer, src is the client the PROXY header names.
out=$($HTTPCLIENT send --tls --port "$GW_PP" --sni www.lab.test --proxy v1 --src 10.1.2.3:5555 \
    --data 'GET /private/x HTTP/1.1\r\nHost: www.lab.test\r\nConnection: close\r\n\r\n')
assert_eq "src CIDR uses the client from the PROXY header (10.1.2.3 denied)" 403 \
    "$(json_path "$out" 'd["responses"][0]["status"]')"
out=$($HTTPCLIENT send --tls --port "$GW_PP" --sni www.lab.test --proxy v1 --src 192.0.2.9:5555 \
    --data 'GET /internal/x HTTP/1.1\r\nHost: www.lab.test\r\nConnection: close\r\n\r\n')
assert_eq "...and 192.0.2.9 is not in 127.0.0.0/8: forwarded" 200 \
    "$(json_path "$out" 'd["responses"][0]["status"]')"

# forward by host
req api.lab.test "$GW" /v1/items >/dev/null
assert_eq "forward by host reaches api" api1 "$(json_get "$(cat "$T/b")" origin)"
line=$(access_line '"path":"/v1/items"')
assert_contains "forward logged with rule, backend and server" "$line" \
    '"rule":5,"rule_action":"forward","sticky":null,"backend":"api","server":"api1"'
assert_contains "access log has the request fields" "$line" '"method":"GET","host":"api.lab.test"'
assert_contains "access log has the TLS the client used" "$line" '"tls_version":"TLSv1.3"'
assert_contains "access log has the SNI" "$line" '"sni":"api.lab.test"'
assert_contains "access log says ok" "$line" '"result":"ok"'

# forward by method + header
req www.lab.test "$GW" /beta/x -H 'X-Env: beta' >/dev/null
assert_eq "GET + X-Env: beta reaches beta" beta1 "$(json_get "$(cat "$T/b")" origin)"
req www.lab.test "$GW" /beta/x -H 'x-env: beta' >/dev/null
assert_eq "header name matched in any case" beta1 "$(json_get "$(cat "$T/b")" origin)"
req www.lab.test "$GW" /beta/x -H 'X-Env: prod' >/dev/null
assert_eq "other header value: default backend" web1 "$(json_get "$(cat "$T/b")" origin)"
req www.lab.test "$GW" /beta/x -X POST -H 'X-Env: beta' -d 'a=1' >/dev/null
assert_eq "other method: default backend" web1 "$(json_get "$(cat "$T/b")" origin)"
req www.lab.test "$GW" /beta/x >/dev/null
assert_eq "header absent: default backend" web1 "$(json_get "$(cat "$T/b")" origin)"

# default backend, and 404 without one
assert_eq "no rule matches: default_backend answers" 200 "$(req www.lab.test "$GW" /anything)"
assert_eq "HSTS added to a forwarded response" "max-age=31536000" "$(hdr Strict-Transport-Security)"
line=$(access_line '"path":"/anything"')
assert_contains "default backend logged without a rule" "$line" '"rule":null,"rule_action":null'
assert_eq "listener without default_backend: 404" 404 "$(req www.lab.test "$GW2" /anything2)"
assert_eq "nothing reached a server for it" 0 "$(origin_served web1 /anything2)"
wait_access '"path":"/anything2"'
assert_contains "404 logged as no-route" "$(access_line '"path":"/anything2"')" '"result":"no-route"'
req api.lab.test "$GW2" /x >/dev/null
assert_eq "its rule still forwards" api1 "$(json_get "$(cat "$T/b")" origin)"

# every server down: 503; a server answering garbage: 502
assert_eq "backend with every server down: 503" 503 "$(req dead.lab.test "$GW" /d)"
wait_access '"host":"dead.lab.test"'
assert_contains "503 logged" "$(access_line '"host":"dead.lab.test"')" '"status":503'
assert_eq "server answering a malformed response: 502" 502 "$(req broken.lab.test "$GW" /b)"
wait_access '"host":"broken.lab.test"'
assert_contains "502 logged" "$(access_line '"host":"broken.lab.test"')" '"status":502'
check "the bad response is explained in the log" grep -qi 'bad response' "$T/gateway.log"
assert_eq "the gateway still serves afterwards" 200 "$(req www.lab.test "$GW" /after)"

# redirect by host, {uri} keeps the query
assert_eq "redirect by host: configured 301" 301 "$(req old.lab.test "$GW" '/a/b?x=1&y=2')"
assert_eq "redirect location with {uri}" "https://new.lab.test/a/b?x=1&y=2" "$(hdr Location)"
line=$(access_line '"host":"old.lab.test"')
assert_contains "redirect logged with its rule" "$line" '"status":301,"rule":3,"rule_action":"redirect"'
# {host} (without the port) {path} {query}; default status 302
assert_eq "redirect with {host}{path}{query}: default 302" 302 \
    "$(req www.lab.test "$GW" '/moved/page?q=1&r=two')"
assert_eq "redirect location expanded" "https://www.lab.test/new/moved/page?from=gw&q=1&r=two" \
    "$(hdr Location)"
assert_eq "redirect without a query: {query} is empty" 302 "$(req www.lab.test "$GW" /moved/p2)"
assert_eq "redirect location with empty {query}" "https://www.lab.test/new/moved/p2?from=gw&" \
    "$(hdr Location)"
# A target of 6,000 bytes: the Location (over the 2 KiB kept on the stack) still fits.
long=/long-$(head -c 6000 /dev/zero | tr '\0' x)
assert_eq "redirect of a 6,000-byte target: 301" 301 "$(req old.lab.test "$GW" "$long?q=1")"
assert_eq "... with the whole target in its Location" "https://new.lab.test$long?q=1" "$(hdr Location)"
assert_eq "redirects never reach a server" 0 "$(origin_served web1 /moved)"

check "access log lines are valid JSON" bash -c "grep -E '^\{\"ts\"' '$T/gateway.log' | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'"
end_gateway
finish
