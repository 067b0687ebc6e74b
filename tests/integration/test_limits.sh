#!/usr/bin/env bash
# Connection limits. The process max_connections and a listener's
# max_connections refuse the excess (closed at accept, never served, logged)
# while the connections already open keep being served, and a slot given back
# serves a new one. A server's max_connections makes further requests wait in
# a queue (served when the slot frees, in HTTP and passthrough modes) up to
# timeouts.connect, then 503 (HTTP) or close (passthrough), result
# "queue-timeout"; a client that gives up while queued leaves the queue.
. "$(dirname "$0")/lib.sh"

make_certs
P_ORIG=$(free_port) P_TLS=$(free_port) GW_A=$(free_port) GW_B=$(free_port)
GW_Q=$(free_port) GW_PT=$(free_port) ADMIN=$(free_port)
start_http_origin o "$P_ORIG"
start_https_origin otls "$P_TLS" web
cat >"$T/gw.yaml" <<YAML
workers: 1
max_connections: 3
timeouts: { connect: 1500, http_keepalive: 60000, http_request: 60000 }
admin: { listen: 127.0.0.1:$ADMIN }
backends:
  - name: web
    servers: [ { name: o, address: 127.0.0.1:$P_ORIG } ]
  - name: one
    servers: [ { name: o1, address: 127.0.0.1:$P_ORIG, max_connections: 1 } ]
  - name: tls1
    servers: [ { name: t1, address: 127.0.0.1:$P_TLS, max_connections: 1 } ]
listeners:
  - { name: a, bind: 127.0.0.1:$GW_A, mode: http, http: { default_backend: web } }
  - { name: b, bind: 127.0.0.1:$GW_B, mode: http, max_connections: 1,
      http: { default_backend: web } }
  - { name: q, bind: 127.0.0.1:$GW_Q, mode: http, http: { default_backend: one } }
  - { name: pt, bind: 127.0.0.1:$GW_PT, mode: passthrough, default_backend: tls1 }
YAML

# --- process and listener limits ------------------------------------------------
# A script of steps on held keep-alive connections: "open NAME PORT" connects
# and is served one request (so the gateway surely holds it), "refused PORT"
# expects a connection closed without an answer, "again NAME" is served once
# more, "close NAME" closes, "eventually PORT" retries until served (the
# gateway notices a close asynchronously).
cat >"$T/hold.py" <<'PY'
import socket, sys, time

held = {}

def request(sock):
    sock.settimeout(5)
    sock.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head.split(b" ")[1].decode()

for step in sys.argv[1:]:
    op, *args = step.split(":")
    if op == "open":
        s = socket.create_connection(("127.0.0.1", int(args[1])))
        print(step, request(s))
        held[args[0]] = s
    elif op == "again":
        print(step, request(held[args[0]]))
    elif op == "close":
        held.pop(args[0]).close()
        print(step, "closed")
    elif op == "refused":
        s = socket.create_connection(("127.0.0.1", int(args[0])))
        print(step, "refused" if request(s) is None else "served")
        s.close()
    elif op == "eventually":
        deadline, got = time.time() + 10, None
        while got is None and time.time() < deadline:
            s = socket.create_connection(("127.0.0.1", int(args[0])))
            got = request(s)
            s.close()
            if got is None:
                time.sleep(0.05)
        print(step, got)
    sys.stdout.flush()
PY

start_gateway "$T/gw.yaml" "$GW_A" "$GW_B" "$GW_Q" "$GW_PT"

out=$(python3 "$T/hold.py" "open:b1:$GW_B" "refused:$GW_B" "open:a1:$GW_A" "again:b1" \
    "open:a2:$GW_A" "refused:$GW_A" "refused:$GW_B" "again:a1" "again:a2" "again:b1" \
    "close:a1" "eventually:$GW_A" "close:b1" "eventually:$GW_B")
echo "$out" | sed 's/^/# /'
assert_contains "listener b (max 1): first connection served" "$out" "open:b1:$GW_B 200"
assert_contains "listener b: the second is refused" "$out" "refused:$GW_B refused"
assert_contains "listener a is not limited by b's limit" "$out" "open:a1:$GW_A 200"
assert_contains "the held connection on b still works" "$out" "again:b1 200"
assert_contains "third connection in the process served" "$out" "open:a2:$GW_A 200"
assert_contains "process max 3: a fourth is refused on a" "$out" "refused:$GW_A refused"
assert_eq "... and on b (then b's second refusal)" 2 "$(grep -c "^refused:$GW_B refused" <<<"$out")"
assert_contains "held connections still served after refusals" "$out" "again:a2 200"
assert_contains "a closed connection frees a slot for a new one (process)" "$out" \
    "eventually:$GW_A 200"
assert_contains "... and for listener b" "$out" "eventually:$GW_B 200"
check "the refusal is logged with the limits" \
    grep -q "connection limit reached (process 3, listener" "$T/gateway.log"
served=$(access_lines | grep -c '"path":"/held"' || true)
assert_eq "refused connections were never served (9 requests answered, not 12)" 9 "$served"

# --- per-server max_connections: queue, then 503 --------------------------------
metric() { # metric NAME: its value on /metrics (first sample), "" if absent
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics" | awk -v n="$1" '$1 ~ "^"n {print $2; exit}'
}
wait_metric() { # wait_metric NAME VALUE: polls /metrics up to 10 s
    local i
    for i in $(seq 1 200); do
        [ "$(metric "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
ra=$(metric 'tlsgate_connections_refused_total{listener="a"') rb=$(metric 'tlsgate_connections_refused_total{listener="b"')
check "refusals are counted in /metrics (a: $ra, at least 1; b: $rb, at least 2)" \
    test "${ra:-0}" -ge 1 -a "${rb:-0}" -ge 2

# A holds o1's only slot for 1 s; B arrives meanwhile and must wait for it.
curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$GW_Q/delay/1000" \
    >"$T/a.out" &
A=$!
check "request A holds the server's only slot" \
    wait_metric 'tlsgate_server_active_connections{backend="one"' 1
t0=$(date +%s.%N)
curl -s -o "$T/b.body" -w '%{http_code}' "http://127.0.0.1:$GW_Q/second" >"$T/b.out" &
B=$!
check "request B is queued (gauge 1)" wait_metric tlsgate_queued_sessions 1
wait "$B" || true
t1=$(date +%s.%N)
wait "$A" || true
assert_eq "A served" 200 "$(cut -d' ' -f1 "$T/a.out")"
assert_eq "B served once A ended" 200 "$(cat "$T/b.out")"
check "B waited for A (took > 0.3 s)" python3 -c "import sys; sys.exit(not $t1 - $t0 > 0.3)"
check "B reached the origin" test "$(origin_served o /second)" = 1
check "the queue is empty again" wait_metric tlsgate_queued_sessions 0
check "saturation is logged" grep -q "backend one: every server is at its max_connections" \
    "$T/gateway.log"

# C waits longer than timeouts.connect (1.5 s) behind a 4 s request: 503.
curl -s -o /dev/null "http://127.0.0.1:$GW_Q/delay/4000" &
A=$!
wait_metric 'tlsgate_server_active_connections{backend="one"' 1 || true
c_out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$GW_Q/third")
assert_eq "C: 503 after the queue timeout" 503 "${c_out% *}"
check "C waited about timeouts.connect (1.3 s .. 3.9 s)" \
    python3 -c "import sys; sys.exit(not 1.3 <= ${c_out#* } < 3.9)"
wait_access '"path":"/third"'
assert_contains "C's access-log line says queue-timeout" "$(access_line '"path":"/third"')" \
    '"result":"queue-timeout"'
check "C never reached the origin" test "$(origin_served o /third)" = 0

# D gives up while queued: it leaves the queue, nothing reaches the origin.
curl -s -o /dev/null --max-time 0.5 "http://127.0.0.1:$GW_Q/abandoned" || true
check "an abandoning client leaves the queue" wait_metric tlsgate_queued_sessions 0
wait "$A" || true
sleep_until_origin() { # the slot frees when A's response is done
    wait_metric 'tlsgate_server_active_connections{backend="one"' 0
}
check "the slot is given back after A" sleep_until_origin
check "D never reached the origin" test "$(origin_served o /abandoned)" = 0

# --- passthrough: the same queue in front of an HTTPS server --------------------
pt_get() { # pt_get PATH: status and time through the passthrough listener
    curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 --cacert "$CERTS/ca.crt" \
        --resolve "web.lab.test:$GW_PT:127.0.0.1" "https://web.lab.test:$GW_PT$1" || true
}
pt_get /delay/1000 >"$T/pa.out" &
A=$!
wait_metric 'tlsgate_server_active_connections{backend="tls1"' 1 || true
pb=$(pt_get /pt-second)
wait "$A" || true
assert_eq "passthrough: A served" 200 "$(cut -d' ' -f1 "$T/pa.out")"
assert_eq "passthrough: B queued, then served" 200 "${pb% *}"
pt_get /delay/4000 >/dev/null &
A=$!
wait_metric 'tlsgate_server_active_connections{backend="tls1"' 1 || true
pc=$(pt_get /pt-third)
assert_eq "passthrough: C closed after the queue timeout (no response)" 000 "${pc% *}"
wait_for_log "$T/gateway.log" 'no server slot freed in 1500 ms: closing' 5 || true
check "passthrough: logged as queue-timeout" \
    bash -c "grep '\"mode\":\"passthrough\"' '$T/gateway.log' | grep -q '\"result\":\"queue-timeout\"'"
wait "$A" || true

end_gateway
finish
