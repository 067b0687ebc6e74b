#!/usr/bin/env bash
# 1,000 slow clients hold connections (half a partial ClientHello on a
# passthrough listener, half a partial request head on an http listener) and
# a normal client is still served within 100 ms, through passthrough and
# through offload; the slow ones are all still held (nothing closed them
# early), and the gateway's memory per held connection stays small.
. "$(dirname "$0")/lib.sh"

N=${SLOW_CLIENTS:-1000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((N + 200)) ]; then
    echo "# ulimit -n $(ulimit -n) is too low for $N connections"
    fail "cannot raise the descriptor limit"
    finish
    exit 1
fi

make_certs
P_ORIG=$(free_port) P_TLS=$(free_port) GW_PT=$(free_port) GW_OFF=$(free_port) GW_HTTP=$(free_port)
start_http_origin o "$P_ORIG"
start_https_origin otls "$P_TLS" web
cat >"$T/gw.yaml" <<YAML
admin: { listen: "" }
log: { level: warn, access: off }
timeouts: { client_hello: 60000, http_request: 60000 }
YAML
three_modes_yaml "$P_ORIG" "$P_TLS" "$GW_PT" "$GW_OFF" "$GW_HTTP" >>"$T/gw.yaml"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF" "$GW_HTTP"

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$GATEWAY_PID/status"
}

# time_get PORT HOST: curl's total time (s) for one HTTPS request, or "fail".
time_get() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 5 --cacert "$CERTS/ca.crt" \
        --resolve "$2:$1:127.0.0.1" "https://$2:$1/" || echo "fail"
}

# Warm up (first handshakes, pools, page faults) and measure the baseline.
for i in 1 2 3; do
    time_get "$GW_PT" web.lab.test >/dev/null
    time_get "$GW_OFF" www.lab.test >/dev/null
done
rss0=$(rss_kib)

# The slow clients: held until their stdin (a fifo we keep open) closes.
mkfifo "$T/hold.in"
python3 "$TG_SRC/tests/integration/slowclient.py" hold "$N" --port "$GW_PT" --port2 "$GW_HTTP" \
    <"$T/hold.in" >"$T/hold.out" 2>&1 &
HOLD=$!
TG_PIDS+=("$HOLD")
exec 7>"$T/hold.in"
wait_for_log "$T/hold.out" "held $N" 60 || bail "the slow clients could not connect: $(cat "$T/hold.out")"
# The gateway accepts asynchronously: wait until it holds them all.
for i in $(seq 1 200); do
    [ "$(ls "/proc/$GATEWAY_PID/fd" | wc -l)" -ge "$N" ] && break
    sleep 0.05
done
rss1=$(rss_kib)

for target in "$GW_PT web.lab.test passthrough" "$GW_OFF www.lab.test offload"; do
    set -- $target
    times=""
    served=0
    for i in 1 2 3 4 5; do
        r=$(time_get "$1" "$2")
        [ "${r% *}" = 200 ] && served=$((served + 1)) && times+="${r#* } "
    done
    echo "# $3 with $N slow clients: curl time_total $times"
    assert_eq "$3: 5 requests served beside $N slow clients" 5 "$served"
    # Each one under 100 ms is the goal; on a shared machine running ASan builds
    # in parallel a request now and then waits for the CPU, so the median is
    # held to 100 ms and every request to a second.
    check "$3: median time within 100 ms, each within 1 s ($times)" python3 -c "
import statistics, sys
t = [float(x) for x in '$times'.split()]
sys.exit(not (len(t) == 5 and statistics.median(t) < 0.1 and max(t) < 1.0))"
done

per_conn=$(((rss1 - rss0) * 1024 / N))
echo "# gateway RSS: ${rss0} KiB before, ${rss1} KiB with $N slow clients: ~$per_conn bytes each"
check "memory per held slow connection stays under 64 KiB" test "$per_conn" -lt 65536

exec 7>&-
wait "$HOLD" || true
assert_eq "none of the slow clients was closed early" "lost 0" "$(grep lost "$T/hold.out")"

# --- memory per connection is bounded whatever the peer sends ----------------------
# Each pusher writes as fast as the gateway takes it, up to 512 MiB or 4 s, and
# never reads; the gateway's RSS must not grow by more than 64 MiB.
P_SINK=$(free_port)
cat >"$T/push.py" <<'PY'
import socket, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
if mode == "pipeline":  # GETs pipelined, answers never read
    data = b"GET /bytes/4000 HTTP/1.1\r\nHost: x\r\n\r\n" * 256
elif mode == "chunked":  # an endless chunked body to a server that never reads
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    data = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
else:  # "download": one huge response, never read
    s.sendall(b"GET /bytes/536870912 HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
s.settimeout(0.2)
sent, t0 = 0, time.time()
while time.time() - t0 < 4 and sent < 512 << 20:
    if not data:
        time.sleep(0.2)
        continue
    try:
        sent += s.send(data)
    except socket.timeout:
        pass
    except OSError:
        break
print(sent)
PY
# A server that accepts and never reads.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
held = []
while True:
    held.append(s.accept()[0])' "$P_SINK" &
TG_PIDS+=($!)
wait_port "$P_SINK"
end_gateway
cat >"$T/gw2.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { level: warn, access: off }
backends:
  - name: web
    servers: [ { name: o, address: 127.0.0.1:$P_ORIG } ]
  - name: sink
    servers: [ { name: s, address: 127.0.0.1:$P_SINK } ]
listeners:
  - name: plain
    bind: 127.0.0.1:$GW_HTTP
    mode: http
    http:
      rules: [ { match: { path_prefix: /sink }, action: forward, backend: sink } ]
      default_backend: web
YAML
start_gateway "$T/gw2.yaml" "$GW_HTTP"
for mode in pipeline chunked download; do
    before=$(rss_kib)
    pushed=$(python3 "$T/push.py" "$mode" "$GW_HTTP")
    after=$(rss_kib)
    echo "# $mode: client pushed $((pushed / 1024)) KiB; gateway RSS $before -> $after KiB"
    check "$mode: gateway RSS grew by less than 64 MiB" test $((after - before)) -lt 65536
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$GW_HTTP/after" || true)
assert_eq "and a normal request is still served" 200 "$code"
end_gateway
finish
