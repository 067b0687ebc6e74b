#!/usr/bin/env bash
# Plain-HTTP listeners (mode http): the usual job is redirecting to https
# ("https://{host}{uri}"), keeping one path (ACME challenges) served; a
# listener that forwards marks the request X-Forwarded-Proto http, adds no
# HSTS (and a config asking for it is refused), and its sticky cookie has
# no Secure attribute (it would never come back over http).
. "$(dirname "$0")/lib.sh"

P_WEB=$(free_port) GW=$(free_port) GW_FWD=$(free_port)
start_http_origin web1 "$P_WEB"
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: to-https
    bind: 127.0.0.1:$GW
    mode: http
    http:
      rules:
        - match: { path_prefix: /.well-known/acme-challenge/ }
          action: forward
          backend: web
        - action: redirect
          location: "https://{host}{uri}"
          status: 308
  - name: plain
    bind: 127.0.0.1:$GW_FWD
    mode: http
    http:
      sticky: { cookie: PLAIN }
      default_backend: web
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW_FWD"

# hcurl HOST PORT PATH [options]: plain HTTP; headers in $T/h, body in $T/b; prints the status.
hcurl() {
    local host=$1 port=$2 path=$3
    shift 3
    : >"$T/h"
    : >"$T/b"
    curl -sS --max-time 10 --resolve "$host:$port:127.0.0.1" -D "$T/h" -o "$T/b" -w '%{http_code}' \
        "$@" "http://$host:$port$path" || true
}
hdr() { { grep -i "^$1:" "$T/h" || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }

# Forwarding over plain http.
assert_eq "plain listener forwards" 200 "$(hcurl www.lab.test "$GW_FWD" /page)"
body=$(cat "$T/b")
assert_eq "X-Forwarded-Proto is http" http "$(origin_header "$body" x-forwarded-proto)"
assert_eq "X-Forwarded-For is the client" 127.0.0.1 "$(origin_header "$body" x-forwarded-for)"
check "Forwarded says proto=http" grep -q 'proto=http' <<<"$(origin_header "$body" forwarded)"
assert_eq "no HSTS on http" "" "$(hdr Strict-Transport-Security)"
sc=$(hdr Set-Cookie)
check "sticky cookie over http: no Secure attribute ($sc)" \
    grep -qE '^PLAIN=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Lax$' <<<"$sc"

# Config check: hsts on an http listener is refused, naming the key.
sed 's|      sticky: { cookie: PLAIN }|      hsts: "max-age=60"|' "$T/gw.yaml" >"$T/bad.yaml"
rc=0
msg=$("$TLSGATE" -c "$T/bad.yaml" --check 2>&1) || rc=$?
assert_eq "hsts on an http listener: --check exits 1" 1 "$rc"
assert_contains "...naming the key" "$msg" "listeners[1].http.hsts"

# The redirecting listener still forwards its one path.
assert_eq "ACME challenge path is served over http" 200 \
    "$(hcurl www.lab.test "$GW" /.well-known/acme-challenge/token123)"
assert_eq "...by the origin" web1 "$(json_get "$(cat "$T/b")" origin)"
wait_access '"path":"/.well-known/acme-challenge/token123"'
line=$(access_line '"path":"/.well-known/acme-challenge/token123"')
assert_contains "access log: mode http, no TLS" "$line" '"mode":"http","client":"127.0.0.1:'
assert_contains "access log: no SNI or TLS version" "$line" '"sni":null,"tls_version":null'
assert_contains "access log: the forward rule" "$line" '"rule":0,"rule_action":"forward"'

# Redirects to https.
assert_eq "http listener redirects to https" 308 "$(hcurl www.lab.test "$GW" '/shop/cart?item=3&q=a%20b')"
assert_eq "...to the same host (without the port) and URI" "https://www.lab.test/shop/cart?item=3&q=a%20b" \
    "$(hdr Location)"
assert_eq "...without HSTS (meaningless over http)" "" "$(hdr Strict-Transport-Security)"
assert_eq "...and never reaches a server" 0 "$(origin_served web1 /shop/cart)"
hcurl shop.lab.test "$GW" / >/dev/null
assert_eq "root redirect" "https://shop.lab.test/" "$(hdr Location)"
wait_access '"host":"shop.lab.test"'
line=$(access_line '"host":"shop.lab.test"')
assert_contains "access log: the redirect rule" "$line" '"status":308,"rule":1,"rule_action":"redirect"'
# HTTP/1.0 without Host: {host} is the address the client reached, not empty.
out=$($HTTPCLIENT send --port "$GW" --expect 1 --data 'GET /old HTTP/1.0\r\n\r\n')
assert_eq "HTTP/1.0 without Host: Location uses the address reached" "https://127.0.0.1/old" \
    "$(json_path "$out" 'next(v for n, v in d["responses"][0]["headers"] if n.lower() == "location")')"
# A header line with CR/LF in the URI must not inject headers into the redirect.
out=$($HTTPCLIENT send --port "$GW" --expect 1 \
    --data 'GET /a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: www.lab.test\r\n\r\n')
assert_eq "encoded CRLF in the URI stays encoded in Location" \
    "https://www.lab.test/a%0d%0aSet-Cookie:%20x=1" \
    "$(json_path "$out" 'next(v for n, v in d["responses"][0]["headers"] if n.lower() == "location")')"
assert_eq "...and adds no header" "" \
    "$(json_path "$out" 'next((v for n, v in d["responses"][0]["headers"] if n.lower() == "set-cookie"), None)')"

end_gateway
finish
