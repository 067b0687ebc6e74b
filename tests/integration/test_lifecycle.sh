#!/usr/bin/env bash
# The process: --check accepts the passthrough example and names file, line and
# key of a bad one; a port in use fails the start with exit 2; max_connections
# refuses the excess and keeps serving the rest; SIGTERM lets an open
# connection finish within timeouts.drain, then exits 0.
. "$(dirname "$0")/lib.sh"

# The examples that need lab certificates are checked (and run) with them in
# test_offload_bridge_examples.sh and test_example_configs.sh.
out=$("$TLSGATE" -c "$TG_SRC/configs/passthrough.yaml" --check 2>&1) && rc=0 || rc=$?
assert_eq "--check accepts passthrough.yaml" 0 "$rc"

cat >"$T/bad.yaml" <<'YAML'
backends:
  - name: web
    servers: [ { name: w1, address: 127.0.0.1:9 } ]
listeners:
  - name: secure
    bind: 127.0.0.1:notaport
    mode: passthrough
    default_backend: missing
YAML
out=$("$TLSGATE" -c "$T/bad.yaml" --check 2>&1) && rc=0 || rc=$?
assert_eq "--check exits 1 on errors" 1 "$rc"
assert_contains "a bad address names file, line and key" "$out" "$T/bad.yaml:6:"
assert_contains "... and the key path" "$out" "listeners[0].bind"
assert_contains "a missing backend is reported too" "$out" "listeners[0].default_backend"

make_certs
P_WEB=$(free_port) GW=$(free_port)
start_https_origin web1 "$P_WEB" web
cat >"$T/gw.yaml" <<YAML
workers: 2
max_connections: 3
admin: { listen: "" }
timeouts: { drain: 3000 }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: secure
    bind: 127.0.0.1:$GW
    mode: passthrough
    default_backend: web
YAML
rc=0
python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$GW)); s.listen(); time.sleep(5)" &
blocker=$!
wait_port "$GW"
"$TLSGATE" -c "$T/gw.yaml" 2>"$T/busy.log" || rc=$?
kill $blocker; wait $blocker 2>/dev/null || true
assert_eq "a port in use: exit 2" 2 "$rc"
check "... naming the address" grep -q "cannot bind 127.0.0.1:$GW" "$T/busy.log"

start_gateway "$T/gw.yaml" "$GW"
rc=0
timeout 10 "$TLSGATE" -c "$T/gw.yaml" 2>"$T/second.log" || rc=$?
assert_eq "a second gateway on the same ports exits 2 (SO_REUSEPORT would let it share them)" \
    2 "$rc"
check "... naming the address" grep -q "cannot bind 127.0.0.1:$GW: Address already in use" \
    "$T/second.log"
out=$("$TLSGATE" --check 2>&1) && rc=0 || rc=$?
assert_eq "--check without -c exits 1" 1 "$rc"
assert_contains "... saying what is missing" "$out" "-c FILE is required"
out=$("$TLSGATE" -c "$T/gw.yaml" stray 2>&1) && rc=0 || rc=$?
assert_contains "an extra argument is named" "$out" "unexpected argument 'stray'"
coproc HOLD { $TLSCLIENT hold --port "$GW" --count 3 --seconds 20; }
read -r held <&"${HOLD[0]}"
assert_eq "three connections held (the limit)" "held 3" "$held"
out=$($TLSCLIENT raw --port "$GW" --hex --data 16 --timeout 5)
assert_eq "a fourth connection is refused" true "$(json_field "$out" closed)"
check "the refusal is logged" wait_for_log "$T/gateway.log" "connection limit reached" 5
echo >&"${HOLD[1]}"
read -r _ <&"${HOLD[0]}"
ok=0
for i in $(seq 1 100); do # the held sockets are closed: slots free up as the gateway sees it
    body=$(https_get web.lab.test "$GW" / 2>/dev/null) && ok=1 && break
    sleep 0.05
done
assert_eq "after they close, new connections are served" 1 "$ok"

# SIGTERM during a slow download: it completes, then the gateway exits 0.
curl -sS --max-time 20 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
    --limit-rate 2M -o "$T/slow.bin" -w '%{http_code} %{size_download}\n' \
    "https://web.lab.test:$GW/bytes/4000000" >"$T/slow.out" 2>&1 &
dl=$!
for i in $(seq 1 100); do [ -s "$T/slow.bin" ] && break; sleep 0.05; done
kill -TERM "$GATEWAY_PID"
wait_for_log "$T/gateway.log" "stopping; draining" 5
for i in $(seq 1 100); do # the workers close their sockets as they get the word
    out=$($TLSCLIENT raw --port "$GW" --hex --data 16 --timeout 2 2>&1 || true)
    [[ $out == *refused* ]] && break
    sleep 0.05
done
assert_contains "no new connection is accepted while draining" "$out" "refused"
wait "$dl" || true
assert_eq "the in-flight download completed during the drain" "200 4000000" "$(cat "$T/slow.out")"
rc=0
wait "$GATEWAY_PID" || rc=$?
assert_eq "then the gateway exits 0" 0 "$rc"
check "no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '$T/gateway.log'"
finish
