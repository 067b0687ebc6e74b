#!/usr/bin/env bash
# Hostile and odd ClientHellos: garbage and plain HTTP are refused at once,
# a hello that never completes is dropped at timeouts.client_hello, and none
# of it harms a normal client served at the same time. A real hello split
# into 1-byte TCP segments or re-framed over many TLS records still routes.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) P_BANK=$(free_port) GW=$(free_port)
start_https_origin web1 "$P_WEB" web
start_https_origin bank "$P_BANK" bank
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
timeouts: { client_hello: 800 }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
  - name: bank
    servers: [ { name: bank1, address: 127.0.0.1:$P_BANK } ]
listeners:
  - name: secure
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes: [ { sni: bank.lab.test, backend: bank } ]
    default_backend: web
YAML
start_gateway "$T/gw.yaml" "$GW"

out=$($TLSCLIENT raw --port "$GW" --data 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' --timeout 5)
assert_eq "plain HTTP instead of a ClientHello is closed" true "$(json_field "$out" closed)"
check "... at once, not at the timeout" test "$(json_field "$out" ms)" -lt 500
out=$($TLSCLIENT raw --port "$GW" --hex --data 8041010301 --timeout 5)
assert_eq "an SSLv2-style hello is closed" true "$(json_field "$out" closed)"
out=$($TLSCLIENT raw --port "$GW" --hex --data 16030100ff010000fb0303 --timeout 5)
assert_eq "a truncated hello is closed (at the hello timeout)" true "$(json_field "$out" closed)"
check "... no earlier than timeouts.client_hello" test "$(json_field "$out" ms)" -ge 700
out=$($TLSCLIENT raw --port "$GW" --hex --data 160301ffff01 --timeout 5)
assert_eq "an oversized record length is closed" true "$(json_field "$out" closed)"
out=$($TLSCLIENT raw --port "$GW" --hex --data 160301400001009000 --timeout 5)
assert_eq "a ClientHello announcing 36 KiB is closed" true "$(json_field "$out" closed)"
check "... at once, not at the timeout" test "$(json_field "$out" ms)" -lt 500
out=$($TLSCLIENT raw --port "$GW" --hex --data "$(head -c 3000 /dev/urandom | od -An -tx1 | tr -d ' \n')" --timeout 5)
assert_eq "random bytes are closed" true "$(json_field "$out" closed)"

# 50 slow clients that never finish their hello, and a normal client meanwhile.
coproc HOLD { $TLSCLIENT hold --port "$GW" --count 50 --partial-hello --seconds 20; }
read -r held <&"${HOLD[0]}"
assert_eq "50 stalled hellos are held open" "held 50" "$held"
body=$(https_get bank.lab.test "$GW" /)
assert_eq "a normal client is served while others stall" bank "$(json_field "$body" origin)"
wait_for_log "$T/gateway.log" "ClientHello not complete in time" 5
echo >&"${HOLD[1]}"
read -r summary <&"${HOLD[0]}"
assert_eq "stalled clients were closed by the gateway" 50 "$(json_field "$summary" closed_by_peer)"

out=$($TLSCLIENT get --port "$GW" --sni bank.lab.test --cafile "$CERTS/ca.crt" --split 1)
assert_eq "hello in 1-byte TCP segments routes by SNI" bank "$(json_field "$(json_field "$out" body)" origin)"
out=$($TLSCLIENT get --port "$GW" --sni bank.lab.test --cafile "$CERTS/ca.crt" --records 7)
assert_eq "hello spread over 7 TLS records routes by SNI" bank "$(json_field "$(json_field "$out" body)" origin)"
out=$($TLSCLIENT get --port "$GW" --sni bank.lab.test --cafile "$CERTS/ca.crt" --records 40 --split 3)
assert_eq "hello over 40 records in 3-byte segments routes" bank "$(json_field "$(json_field "$out" body)" origin)"

check "refusals are logged with a reason" grep -q '"result":"not-tls"' "$T/gateway.log"
check "timeouts are logged with a reason" grep -q '"result":"timeout-hello"' "$T/gateway.log"
check "a ClientHello over 32 KiB is logged as too large" grep -q '"result":"hello-too-large"' \
    "$T/gateway.log"
line=$(access_line '"result":"not-tls"')
check "a refused connection counts the bytes it sent as bytes_in ($line)" \
    grep -qE '"bytes_in":[1-9]' <<<"$line"
assert_eq "no access-log line has a negative duration" 0 \
    "$(access_lines | grep -c '"duration_ms":-')"
stop_gateway
finish
