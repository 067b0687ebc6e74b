#!/usr/bin/env bash
# PROXY protocol both ways: a backend that asks for v1 or v2 receives a
# header naming the real client; a listener that accepts PROXY from a
# balancer in front takes the client address from it (and passes it on),
# and refuses a connection without one.
. "$(dirname "$0")/lib.sh"

make_certs
P_V1=$(free_port) P_V2=$(free_port) GW=$(free_port) GW_PP=$(free_port)
start_https_origin ppv1 "$P_V1" web
start_https_origin ppv2 "$P_V2" bank
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
backends:
  - name: v1
    proxy_protocol: v1
    servers: [ { name: o1, address: 127.0.0.1:$P_V1 } ]
  - name: v2
    proxy_protocol: v2
    servers: [ { name: o2, address: 127.0.0.1:$P_V2 } ]
listeners:
  - name: direct
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes: [ { sni: bank.lab.test, backend: v2 } ]
    default_backend: v1
  - name: behind-lb
    bind: 127.0.0.1:$GW_PP
    mode: passthrough
    proxy_protocol: any
    default_backend: v2
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW_PP"

body=$(curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
    --local-port 40000-40999 "https://web.lab.test:$GW/" -w '\n%{local_port}')
port=$(tail -1 <<<"$body")
proxy=$(json_field "$(head -1 <<<"$body")" proxy)
assert_contains "v1 backend: header arrives" "$proxy" '"version": 1'
assert_contains "v1 backend: with the real client address and port" "$proxy" "\"src\": \"127.0.0.1:$port\""
assert_contains "v1 backend: and the address the client connected to" "$proxy" "\"dst\": \"127.0.0.1:$GW\""

body=$(https_get bank.lab.test "$GW" /)
proxy=$(json_field "$body" proxy)
assert_contains "v2 backend: header arrives" "$proxy" '"version": 2'
assert_contains "v2 backend: with the client address" "$proxy" '"src": "127.0.0.1:'

# A balancer in front sends PROXY v1 / v2 for client 203.0.113.7:4242.
for v in v1 v2; do
    out=$($TLSCLIENT get --port "$GW_PP" --sni bank.lab.test --cafile "$CERTS/ca.crt" --proxy $v \
        --src 203.0.113.7:4242)
    proxy=$(json_field "$(json_field "$out" body)" proxy)
    assert_contains "listener accepts PROXY $v: origin sees the original client" "$proxy" \
        '"src": "203.0.113.7:4242"'
done
check "access log shows the original client" grep -q '"client":"203.0.113.7:4242"' "$T/gateway.log"

rc=0
curl -s --max-time 5 --cacert "$CERTS/ca.crt" --resolve bank.lab.test:$GW_PP:127.0.0.1 \
    "https://bank.lab.test:$GW_PP/" >/dev/null 2>&1 || rc=$?
check "a listener that requires PROXY refuses a connection without it" test "$rc" -ne 0
out=$($TLSCLIENT raw --port "$GW_PP" --data 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n' --timeout 5)
assert_eq "a malformed PROXY header is closed" true "$(json_field "$out" closed)"
check "and logged" grep -q 'malformed PROXY header' "$T/gateway.log"
stop_gateway
finish
