#!/usr/bin/env bash
# Every client-side timeout of SPEC.md, with short values: a ClientHello that
# never completes (passthrough: partial, or trickled a byte at a time), a TLS
# handshake that never completes (offload), a request head trickled a byte
# every 100 ms (offload and http: 408 at http_request, the whole head bound,
# not per byte), a keep-alive connection idle between requests, and an idle
# passthrough relay. Each connection is closed not before its timeout and
# within a generous margin after it, and the gateway says why in its log.
. "$(dirname "$0")/lib.sh"

make_certs
P_ORIG=$(free_port) P_TLS=$(free_port) GW_PT=$(free_port) GW_OFF=$(free_port) GW_HTTP=$(free_port)
start_http_origin o "$P_ORIG"
start_https_origin otls "$P_TLS" web
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { level: debug }
timeouts: { client_hello: 600, handshake: 600, http_request: 800, http_keepalive: 600,
            idle: 800 }
YAML
three_modes_yaml "$P_ORIG" "$P_TLS" "$GW_PT" "$GW_OFF" "$GW_HTTP" >>"$T/gw.yaml"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF" "$GW_HTTP"

SLOW="python3 $TG_SRC/tests/integration/slowclient.py"
MARGIN=2.5 # seconds allowed past a timeout on a loaded machine (ASan, ctest -j)

# closed_in WHAT JSON TIMEOUT_MS: closed by the gateway, not before the
# timeout (50 ms of clock slack) and within MARGIN after it.
closed_in() {
    local what=$1 out=$2 ms=$3 e
    e=$(json_get "$out" elapsed)
    if [ "$(json_get "$out" closed)" != true ]; then
        fail "$what: not closed within $MARGIN s after $ms ms ($out)"
    elif python3 -c "import sys; sys.exit(not ($ms / 1000 - 0.05 <= $e <= $ms / 1000 + $MARGIN))"; then
        pass "$what: closed after $e s (timeout $ms ms)"
    else
        fail "$what: closed after $e s, timeout $ms ms"
    fi
}

# Passthrough: ClientHello incomplete.
out=$($SLOW hello-partial --port "$GW_PT" --max-wait 6)
closed_in "passthrough: partial ClientHello" "$out" 600
out=$($SLOW hello-trickle --port "$GW_PT" --interval-ms 100 --max-wait 6)
closed_in "passthrough: ClientHello trickled a byte every 100 ms (whole-hello bound)" "$out" 600
check "... it had sent only part of it" test "$(json_get "$out" sent)" -lt 20
wait_for_log "$T/gateway.log" '"result":"timeout-hello"' 5 || true
assert_eq "passthrough: two access-log lines say timeout-hello" 2 \
    "$(access_lines | grep -c '"result":"timeout-hello"')"
check "passthrough: the log says why" grep -q "ClientHello not complete in time" "$T/gateway.log"

# Offload: TLS handshake never completes.
out=$($SLOW silent --port "$GW_OFF" --max-wait 6)
closed_in "offload: no ClientHello at all" "$out" 600
out=$($SLOW hello-partial --port "$GW_OFF" --max-wait 6)
closed_in "offload: partial ClientHello" "$out" 600
wait_for_log "$T/gateway.log" '"result":"timeout-handshake"' 5 || true
assert_eq "offload: access-log lines say timeout-handshake" 2 \
    "$(access_lines | grep -c '"result":"timeout-handshake"')"
check "offload: the log says why" grep -q "TLS handshake not complete in time" "$T/gateway.log"
assert_eq "offload: the partial hello's line counts the bytes it sent (the silent one's: 0)" 1 \
    "$(access_lines | grep '"result":"timeout-handshake"' | grep -vc '"bytes_in":0,')"

# Request head trickled: 408 at http_request from its first byte, whatever the pace.
for l in off plain; do
    if [ "$l" = off ]; then
        out=$($SLOW head-trickle --port "$GW_OFF" --sni www.lab.test --cafile "$CERTS/ca.crt" --max-wait 6)
    else
        out=$($SLOW head-trickle --port "$GW_HTTP" --max-wait 6)
    fi
    closed_in "$l: request head trickled a byte every 100 ms" "$out" 800
    assert_eq "$l: answered 408" 408 "$(json_get "$out" status)"
    check "$l: bytes kept coming (>= 5) and it was still cut at the bound (< 30)" \
        test "$(json_get "$out" sent)" -ge 5 -a "$(json_get "$out" sent)" -lt 30
done
wait_for_log "$T/gateway.log" '"result":"timeout-request"' 5 || true
assert_eq "408s logged as timeout-request with what the request line got to" 2 \
    "$(access_lines | grep '"method":"GET","host":null,"path":"/slo' |
        grep -c '"result":"timeout-request"')"
check "the log says why" grep -q "request head not complete in time: answering 408" \
    "$T/gateway.log"

# Keep-alive: closed http_keepalive after the last response.
out=$($SLOW keepalive --port "$GW_HTTP" --max-wait 6)
closed_in "http: idle keep-alive connection" "$out" 600
out=$($SLOW keepalive --port "$GW_OFF" --sni www.lab.test --cafile "$CERTS/ca.crt" --max-wait 6)
closed_in "offload: idle keep-alive connection" "$out" 600
assert_eq "both requests were served" 2 "$(access_lines | grep '"path":"/ka"' | grep -c '"status":200')"
check "the log says why" grep -q "no request in 600 ms: closing" "$T/gateway.log"

# Passthrough relay idle: closed after timeouts.idle without a byte either way.
out=$($SLOW tls-idle --port "$GW_PT" --sni web.lab.test --cafile "$CERTS/ca.crt" --max-wait 6)
closed_in "passthrough: idle relay" "$out" 800
wait_for_log "$T/gateway.log" '"result":"timeout-idle"' 5 || true
check "passthrough: logged as timeout-idle" grep -q '"result":"timeout-idle"' "$T/gateway.log"

end_gateway
finish
