#!/usr/bin/env bash
# Forwarded headers, exactly as the origin receives them: X-Forwarded-For is
# the client (the client's own X-Forwarded-For / Forwarded are replaced, not
# trusted), -Proto https, -Host the Host asked for, and an RFC 7239
# Forwarded. On a listener that takes a PROXY header from a balancer, the
# balancer's client is appended to what the balancer already sent.
# forwarded_headers: false passes the request on untouched. Hop-by-hop
# headers stay on their hop.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port) GW_PP=$(free_port) GW_RAW=$(free_port)
start_http_origin web1 "$P_WEB"
TLS=$(tls_certs_yaml gateway)
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: direct
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $TLS
    http: { hsts: "max-age=600", default_backend: web }
  - name: behind-lb
    bind: 127.0.0.1:$GW_PP
    mode: offload
    proxy_protocol: any
    tls: $TLS
    http: { default_backend: web }
  - name: untouched
    bind: 127.0.0.1:$GW_RAW
    mode: offload
    tls: $TLS
    http: { forwarded_headers: false, default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW_PP" "$GW_RAW"

body=$(gw_curl www.lab.test "$GW" /plain)
assert_eq "X-Forwarded-For is the client" 127.0.0.1 "$(origin_header "$body" x-forwarded-for)"
assert_eq "X-Forwarded-Proto is https" https "$(origin_header "$body" x-forwarded-proto)"
assert_eq "X-Forwarded-Host is the Host asked for" "www.lab.test:$GW" \
    "$(origin_header "$body" x-forwarded-host)"
fwd=$(origin_header "$body" forwarded)
assert_contains "Forwarded names the client" "$fwd" "for=127.0.0.1"
assert_contains "Forwarded names the protocol" "$fwd" "proto=https"
assert_contains "Forwarded names the host" "$fwd" "host="
assert_contains "Forwarded host value" "$fwd" "www.lab.test"
assert_eq "the Host header is passed unchanged" "www.lab.test:$GW" "$(origin_header "$body" host)"
assert_eq "the origin got plain HTTP (offload)" "" "$(json_get "$body" tls)"

body=$(gw_curl www.lab.test "$GW" /spoofed -H 'X-Forwarded-For: 6.6.6.6' \
    -H 'Forwarded: for=6.6.6.6;proto=http' -H 'X-Forwarded-Proto: http' -H 'X-Forwarded-Host: evil.test')
assert_eq "client's X-Forwarded-For replaced (exactly one, ours)" 127.0.0.1 \
    "$(origin_header "$body" x-forwarded-for)"
assert_eq "client's X-Forwarded-Proto replaced" https "$(origin_header "$body" x-forwarded-proto)"
assert_eq "client's X-Forwarded-Host replaced" "www.lab.test:$GW" "$(origin_header "$body" x-forwarded-host)"
assert_not_contains "client's Forwarded replaced" "$(origin_header "$body" forwarded)" "6.6.6.6"
assert_eq "exactly one Forwarded header" 1 "$(origin_header "$body" forwarded | grep -c .)"

# Hop-by-hop headers (and those Connection names) stay on the client's hop.
body=$(gw_curl www.lab.test "$GW" /hop -H 'Connection: keep-alive, X-Secret-Hop' \
    -H 'X-Secret-Hop: 1' -H 'Keep-Alive: timeout=5' -H 'Proxy-Authorization: Basic eDp5' -H 'X-End: 2')
assert_eq "a header named by Connection is not forwarded" "" "$(origin_header "$body" x-secret-hop)"
assert_eq "Keep-Alive is not forwarded" "" "$(origin_header "$body" keep-alive)"
assert_eq "Proxy-Authorization is not forwarded" "" "$(origin_header "$body" proxy-authorization)"
assert_eq "end-to-end headers are" 2 "$(origin_header "$body" x-end)"

# HSTS on the TLS listener that sets it, and nowhere else.
hdrs=$(gw_curl www.lab.test "$GW" / -o /dev/null -D -)
assert_contains "HSTS on the offload listener" "$hdrs" "Strict-Transport-Security: max-age=600"
hdrs=$(gw_curl www.lab.test "$GW_RAW" / -o /dev/null -D -)
assert_not_contains "no HSTS where it is not configured" "${hdrs,,}" "strict-transport-security"

# A balancer in front: PROXY v1 / v2 name client 203.0.113.7, and the balancer already set XFF.
for v in v1 v2; do
    out=$($HTTPCLIENT send --tls --port "$GW_PP" --sni www.lab.test --proxy $v --src 203.0.113.7:4242 \
        --data 'GET /pp HTTP/1.1\r\nHost: www.lab.test\r\nX-Forwarded-For: 198.51.100.1\r\nForwarded: for=198.51.100.1\r\nConnection: close\r\n\r\n')
    body=$(json_path "$out" 'd["responses"][0]["body"]')
    assert_eq "PROXY $v listener: client appended to X-Forwarded-For" "198.51.100.1, 203.0.113.7" \
        "$(origin_header "$body" x-forwarded-for)"
    fwd=$(origin_header "$body" forwarded)
    assert_contains "PROXY $v listener: Forwarded keeps the balancer's element" "$fwd" "for=198.51.100.1"
    assert_contains "PROXY $v listener: and appends ours" "$fwd" "for=203.0.113.7"
done
out=$($HTTPCLIENT send --tls --port "$GW_PP" --sni www.lab.test --proxy v1 --src 203.0.113.8:4242 \
    --data 'GET /pp-noxff HTTP/1.1\r\nHost: www.lab.test\r\nConnection: close\r\n\r\n')
body=$(json_path "$out" 'd["responses"][0]["body"]')
assert_eq "PROXY listener without a prior XFF: just the client" 203.0.113.8 \
    "$(origin_header "$body" x-forwarded-for)"
wait_access '"path":"/pp-noxff"'
assert_contains "access log shows the PROXY client" "$(access_line '"path":"/pp-noxff"')" \
    '"client":"203.0.113.8:4242"'

# forwarded_headers: false
body=$(gw_curl www.lab.test "$GW_RAW" /raw -H 'X-Forwarded-For: 6.6.6.6')
assert_eq "forwarded_headers false: the client's XFF passes untouched" 6.6.6.6 \
    "$(origin_header "$body" x-forwarded-for)"
assert_eq "forwarded_headers false: no Forwarded added" "" "$(origin_header "$body" forwarded)"

end_gateway
finish
