#!/usr/bin/env bash
# Health: active checks (http, tcp, tls) and passive ejection.
#
#   1. An offload listener sends a steady load (one TLS connection per
#      request) to two origins checked with `check: http, interval 200,
#      timeout 200, rise 2, fall 2`. One origin is killed: it is logged DOWN
#      after 2 failed checks, and from then on no request fails (connect retry
#      covers the moments before, so we count those too). Restarted on the same
#      port it is logged UP after 2 checks and takes requests again. /metrics
#      and /stats show each state.
#   2. check: tcp on servers nobody listens on: both DOWN, the backend answers 503.
#   3. check: tls on passthrough backends: the server sees the check's own SNI
#      (health.sni); verification holds when the backend asks for it; a
#      plain-TCP server fails tls checks where tcp checks pass; a passthrough
#      backend with every server down closes the connection. http checks run
#      over verified TLS (and PROXY) when the backend has them.
#   4. Passive ejection with check: none: a server answering 500 is ejected
#      after `fall` (3) answers, the others serve, and it is given another try
#      after `interval`. The only server of a backend is never ejected.
. "$(dirname "$0")/lib.sh"

make_certs
PROMPARSE="python3 $TG_SRC/tests/integration/promparse.py"
P1=$(free_port) P2=$(free_port) P3=$(free_port) BAD=$(free_port) SNI=$(free_port)
DEAD1=$(free_port) DEAD2=$(free_port) GW=$(free_port) PT=$(free_port) AD=$(free_port)
PTLS=$(free_port) REC=$(free_port)
start_http_origin web1 "$P1"
start_http_origin web2 "$P2"
start_http_origin good "$P3"
start_origin tlsweb --https "127.0.0.1:$PTLS" --cert "$CERTS/web.crt" --key "$CERTS/web.key"

# A server that records what each connection sends (tcp checks with PROXY v1).
$HTTPCLIENT badserver --port "$REC" --record "$T/rec.log" \
    --reply 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' >/dev/null 2>&1 &
TG_PIDS+=($!)

# A server answering 500 to everything.
$HTTPCLIENT badserver --port "$BAD" \
    --reply 'HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
    >"$T/bad.log" 2>&1 &
TG_PIDS+=($!)

# A TLS server (certificate "bank") that writes the SNI of each handshake to a file.
cat >"$T/sniserver.py" <<'PY'
import socket, ssl, sys, threading
port, cert, key, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
def record(sslobj, name, c):
    with open(log, "a") as f:
        f.write(f"{name}\n")
ctx.sni_callback = record
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
def serve(c):
    try:
        c.settimeout(5)
        s = ctx.wrap_socket(c, server_side=True)
        s.recv(1)
    except (OSError, ssl.SSLError):
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
python3 "$T/sniserver.py" "$SNI" "$CERTS/bank.crt" "$CERTS/bank.key" "$T/sni.log" \
    >"$T/sniserver.out" 2>&1 &
TG_PIDS+=($!)
wait_port "$BAD"
wait_port "$SNI"

FAST="interval: 200, timeout: 500, rise: 1, fall: 1"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: 127.0.0.1:$AD }
timeouts: { connect: 1000 }
backends:
  - name: web
    health: { check: http, interval: 200, timeout: 200, rise: 2, fall: 2 }
    servers:
      - { name: web1, address: 127.0.0.1:$P1 }
      - { name: web2, address: 127.0.0.1:$P2 }
  - name: dead
    health: { check: tcp, $FAST }
    servers:
      - { name: d1, address: 127.0.0.1:$DEAD1 }
      - { name: d2, address: 127.0.0.1:$DEAD2 }
  - name: passive
    servers:
      - { name: bad, address: 127.0.0.1:$BAD }
      - { name: good, address: 127.0.0.1:$P3 }
  - name: lonely
    servers:
      - { name: bad, address: 127.0.0.1:$BAD }
  - name: sni
    health: { check: tls, sni: check.lab.test, $FAST }
    servers:
      - { name: s1, address: 127.0.0.1:$SNI }
  - name: verified
    tls: { verify: true, ca: $CERTS/ca.crt }
    health: { check: tls, sni: bank.lab.test, $FAST }
    servers:
      - { name: v1, address: 127.0.0.1:$SNI }
  - name: mismatch
    tls: { verify: true, ca: $CERTS/ca.crt }
    health: { check: tls, sni: other.lab.test, $FAST }
    servers:
      - { name: m1, address: 127.0.0.1:$SNI }
  - name: plaintls
    health: { check: tls, $FAST }
    servers:
      - { name: p1, address: 127.0.0.1:$P3 }
  - name: tlsweb
    proxy_protocol: v2
    tls: { verify: true, ca: $CERTS/ca.crt, sni: web.lab.test }
    health: { check: http, $FAST }
    servers:
      - { name: t1, address: 127.0.0.1:$PTLS }
  - name: wrongstatus
    health: { check: http, path: /status/503, $FAST }
    servers:
      - { name: w1, address: 127.0.0.1:$P3 }
  - name: plaintcp
    health: { check: tcp, $FAST }
    servers:
      - { name: p1, address: 127.0.0.1:$P3 }
  - name: pptcp
    proxy_protocol: v1
    health: { check: tcp, $FAST }
    servers:
      - { name: r1, address: 127.0.0.1:$REC }
listeners:
  - name: front
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http:
      rules:
        - { match: { host: dead.lab.test }, action: forward, backend: dead }
        - { match: { host: passive.lab.test }, action: forward, backend: passive }
        - { match: { host: lonely.lab.test }, action: forward, backend: lonely }
      default_backend: web
  - name: pt
    bind: 127.0.0.1:$PT
    mode: passthrough
    sni_routes:
      - { sni: plain.lab.test, backend: plaintls }
    default_backend: sni
YAML
start_gateway "$T/gw.yaml" "$GW" "$PT" "$AD"

# metric NAME LABELS: the value of the sample of NAME whose labels include LABELS
# (a Python dict literal), from a strict parse of /metrics; "" when absent.
metric() {
    curl -s --max-time 10 "http://127.0.0.1:$AD/metrics" >"$T/metrics.txt"
    $PROMPARSE "$T/metrics.txt" >"$T/metrics.json" || { echo "unparsable"; return; }
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); want = eval(sys.argv[3])
v = [s["value"] for s in d.get(sys.argv[2], []) if all(s["labels"].get(k) == x for k, x in want.items())]
print("%g" % v[0] if v else "")' "$T/metrics.json" "$1" "$2"
}
# server_stat BACKEND SERVER EXPR: EXPR on the server's /stats object "s".
server_stat() {
    json_path "$(curl -s --max-time 10 "http://127.0.0.1:$AD/stats")" \
        "[s for b in d['backends'] if b['name']=='$1' for s in b['servers'] if s['name']=='$2'][0]$3"
}
code() { # code HOST PATH: status of one request through the offload listener
    curl -s --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$1:$GW:127.0.0.1" -o /dev/null \
        -w '%{http_code}' "https://$1:$GW$2" || true
}

# ---- 1. kill a server under a steady load ----
# One request per TLS connection, back to back; each line: "status origin".
cat >"$T/load.py" <<'PY'
import http.client, json, os, ssl, sys
port, ca, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
with open(out, "a", buffering=1) as f:
    while not os.path.exists(stop):
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
            c.request("GET", "/load", headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read()
            origin = json.loads(body).get("origin", "-") if r.status == 200 else "-"
            f.write(f"{r.status} {origin}\n")
            c.close()
        except Exception as e:
            f.write(f"0 {type(e).__name__}\n")
PY
python3 "$T/load.py" "$GW" "$CERTS/ca.crt" "$T/load.log" "$T/load.stop" &
LOAD_PID=$!
TG_PIDS+=("$LOAD_PID")

# wait_lines N: until the load has made N requests more than now (20 s at most).
wait_lines() {
    local want=$(($(wc -l <"$T/load.log") + $1)) i
    for i in $(seq 1 400); do
        [ "$(wc -l <"$T/load.log")" -ge "$want" ] && return 0
        sleep 0.05
    done
    echo "# the load stalled at $(wc -l <"$T/load.log") requests" >&2
    return 1
}
touch "$T/load.log"
wait_lines 20
check "before: both servers take the load" bash -c \
    "grep -q ' web1$' '$T/load.log' && grep -q ' web2$' '$T/load.log'"

# Counted before the kill: the request web1 is answering fails at once, and
# its line must fall after killed_at (counting after the kill raced with it).
killed_at=$(wc -l <"$T/load.log")
{ kill -KILL "$ORIGIN_PID_web1" && wait "$ORIGIN_PID_web1"; } 2>/dev/null || true
wait_for_log "$T/gateway.log" "server web1 (127.0.0.1:$P1) is DOWN" 10
down_at=$(wc -l <"$T/load.log")
wait_lines 40
# Whichever sees it first: the checks, or the load's own connects (passive ejection).
line=$(grep "server web1 (127.0.0.1:$P1) is DOWN" "$T/gateway.log" | head -1)
echo "# ${line#* * }"
check "web1 is DOWN after fall (2) failed checks or failed connects" \
    grep -qE "is DOWN: (connect: Connection refused \(2 failed checks\)|connect failed \(2 in a row in traffic)" <<<"$line"
after_down=$(tail -n +"$((down_at + 1))" "$T/load.log")
assert_eq "once DOWN is logged, no request fails" "" "$(grep -v '^200 ' <<<"$after_down" || true)"
assert_eq "...and none goes to web1" "" "$(grep ' web1$' <<<"$after_down" || true)"
failed=$(tail -n +"$((killed_at + 1))" "$T/load.log" | head -n "$((down_at - killed_at))" |
    grep -vc '^200 ' || true)
echo "# between the kill and DOWN: $((down_at - killed_at)) requests, $failed failed"
# A refused connect is retried on the next server, so those never fail; a
# request web1 was answering when it was killed can (a 502, counted here).
check "at most the request in flight at the kill failed before DOWN ($failed)" test "$failed" -le 1
assert_eq "/metrics: tlsgate_server_up of web1 is 0" 0 \
    "$(metric tlsgate_server_up "{'backend':'web','server':'web1'}")"
assert_eq "/stats: web1 is down" false "$(server_stat web web1 "['up']")"
assert_eq "/stats: web1's last check failed" failed "$(server_stat web web1 "['health']['last']")"
assert_contains "/stats: with the reason" "$(server_stat web web1 "['health']['reason']")" \
    "Connection refused"
assert_eq "/stats: the check kind" http "$(server_stat web web1 "['health']['check']")"

start_http_origin web1 "$P1"
wait_for_log "$T/gateway.log" "server web1 (127.0.0.1:$P1) is UP" 10
up_at=$(wc -l <"$T/load.log")
assert_contains "web1 is UP after rise (2) checks" \
    "$(grep "server web1 (127.0.0.1:$P1) is UP" "$T/gateway.log" | head -1)" \
    "is UP (2 successful checks)"
for i in $(seq 1 200); do
    tail -n +"$((up_at + 1))" "$T/load.log" | grep -q ' web1$' && break
    sleep 0.05
done
check "web1 takes requests again" bash -c "tail -n +$((up_at + 1)) '$T/load.log' | grep -q ' web1$'"
touch "$T/load.stop"
wait "$LOAD_PID" || true
total=$(wc -l <"$T/load.log")
bad=$(grep -vc '^200 ' "$T/load.log" || true)
echo "# steady load: $total requests, $bad failed"
grep -vn '^200 ' "$T/load.log" | sed 's/^/#   failed: line /' || true
echo "#   kill at line $killed_at, DOWN at $down_at, UP at $up_at"
assert_eq "no request of the whole load failed but those before DOWN" "$failed" "$bad"
assert_eq "/metrics: web1 up again" 1 "$(metric tlsgate_server_up "{'backend':'web','server':'web1'}")"
assert_eq "/metrics: one transition to down" 1 \
    "$(metric tlsgate_server_state_changes_total "{'server':'web1','to':'down'}")"
assert_eq "/metrics: one transition to up" 1 \
    "$(metric tlsgate_server_state_changes_total "{'server':'web1','to':'up'}")"
check "/metrics: failed checks counted" test "$(metric tlsgate_server_check_failures_total \
    "{'backend':'web','server':'web1'}")" -ge 2
assert_eq "/metrics: web2 never failed a check" 0 \
    "$(metric tlsgate_server_check_failures_total "{'backend':'web','server':'web2'}")"
assert_eq "/stats: web1's last check passed" ok "$(server_stat web web1 "['health']['last']")"
assert_eq "/stats: the origin's answer" "status 200" "$(server_stat web web1 "['health']['reason']")"
assert_eq "each state change logged once" 2 "$(grep -c "server web1 (127.0.0.1:$P1) is" \
    "$T/gateway.log")"

# ---- 2. tcp checks; every server down: 503 ----
wait_for_log "$T/gateway.log" "server d1 (127.0.0.1:$DEAD1) is DOWN: connect: Connection refused" 10
wait_for_log "$T/gateway.log" "server d2 (127.0.0.1:$DEAD2) is DOWN" 10
assert_eq "tcp checks: backend with every server down is down" 0 \
    "$(metric tlsgate_backend_up "{'backend':'dead'}")"
assert_eq "HTTP: every server down answers 503" 503 "$(code dead.lab.test /x)"
check "...without trying a connect" bash -c "! grep -q 'server dead/d1' '$T/gateway.log'"

# ---- 3. tls checks ----
wait_for_log "$T/sni.log" "check.lab.test" 10
check "tls check: the server sees health.sni" grep -qx "check.lab.test" "$T/sni.log"
check "verified tls check with the right name sends it too" grep -qx "bank.lab.test" "$T/sni.log"
wait_for_log "$T/gateway.log" "server m1 (127.0.0.1:$SNI) is DOWN" 10
assert_contains "tls check verifies the name when the backend verifies" \
    "$(grep "server m1 (127.0.0.1:$SNI) is DOWN" "$T/gateway.log")" "certificate: "
wait_for_log "$T/gateway.log" "backend plaintls: server p1 (127.0.0.1:$P3) is DOWN" 10
assert_contains "a plain-TCP server fails tls checks" \
    "$(grep "backend plaintls: server p1 (127.0.0.1:$P3) is DOWN" "$T/gateway.log")" "TLS handshake"
for i in $(seq 1 40); do # a few more rounds of checks (200 ms each)
    [ "$(metric tlsgate_server_check_failures_total "{'backend':'sni','server':'s1'}")" = 0 ] &&
        [ "$(server_stat verified v1 "['health']['last']")" = ok ] &&
        [ "$(server_stat plaintcp p1 "['health']['last']")" = ok ] && break
    sleep 0.1
done
assert_eq "tls check of a TLS server passes" 1 "$(metric tlsgate_server_up "{'backend':'sni'}")"
assert_eq "...never failed" 0 "$(metric tlsgate_server_check_failures_total "{'backend':'sni'}")"
assert_eq "verified tls check with the right name passes" ok \
    "$(server_stat verified v1 "['health']['last']")"
assert_eq "a plain-TCP server passes tcp checks" ok "$(server_stat plaintcp p1 "['health']['last']")"
check "...and is never DOWN there" bash -c "! grep -q 'backend plaintcp: .* is DOWN' '$T/gateway.log'"
wait_for_log "$T/rec.log" "PROXY UNKNOWN" 5 || true
check "a tcp check of a proxy_protocol backend sends the PROXY header" \
    grep -qx 'PROXY UNKNOWN\\r\\n' "$T/rec.log"
rc=0
$TLSCLIENT get --port "$PT" --sni plain.lab.test --timeout 5 >/dev/null 2>&1 || rc=$?
check "passthrough: every server down closes the connection" test "$rc" -ne 0
wait_for_log "$T/gateway.log" "backend plaintls: no server available" 5
check "...and says why" grep -q "backend plaintls: no server available" "$T/gateway.log"

# http checks: over verified TLS (and a PROXY header) when the backend has
# them; a status other than expect_status fails.
wait_for_log "$T/origin-tlsweb.log" "GET /healthz 200" 10
assert_eq "http check over TLS with a PROXY header passes" ok \
    "$(server_stat tlsweb t1 "['health']['last']")"
wait_for_log "$T/gateway.log" "backend wrongstatus: server w1 (127.0.0.1:$P3) is DOWN" 10
assert_contains "http check: another status fails" \
    "$(grep "backend wrongstatus: server w1" "$T/gateway.log")" "status 503, expected 200"

# ---- 4. passive ejection, check: none ----
for i in $(seq 1 20); do
    code passive.lab.test /p >>"$T/passive.codes"
    echo >>"$T/passive.codes"
    grep -q "backend passive: server bad (127.0.0.1:$BAD) is DOWN" "$T/gateway.log" && break
done
line=$(grep "backend passive: server bad (127.0.0.1:$BAD) is DOWN" "$T/gateway.log" || true)
assert_contains "three 500s in a row eject the server" "$line" "is DOWN: status 500 (3 in a row"
assert_eq "exactly fall (3) answers were 500" 3 "$(grep -c '^500$' "$T/passive.codes" || true)"
codes="" # (well within the 2000 ms it stays out)
for i in $(seq 1 4); do codes+="$(code passive.lab.test /p) "; done
assert_eq "the others serve while it is out" "200 200 200 200 " "$codes"
wait_for_log "$T/gateway.log" "backend passive: server bad (127.0.0.1:$BAD) is UP" 10
assert_contains "after interval it gets another try" \
    "$(grep "backend passive: server bad (127.0.0.1:$BAD) is UP" "$T/gateway.log")" \
    "another try 2000 ms after a passive ejection"
assert_eq "/metrics: the ejection counted" 1 \
    "$(metric tlsgate_server_state_changes_total "{'backend':'passive','server':'bad','to':'down'}")"
codes=""
for i in $(seq 1 6); do codes+="$(code lonely.lab.test /p) "; done
assert_eq "the only server of a backend keeps its traffic" "500 500 500 500 500 500 " "$codes"
check "...and is never ejected" bash -c "! grep -q 'backend lonely: .* is DOWN' '$T/gateway.log'"

end_gateway
finish
