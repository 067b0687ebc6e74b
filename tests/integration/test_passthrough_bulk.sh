#!/usr/bin/env bash
# The relay moves bytes unchanged and in order: 64 MiB down and 64 MiB up
# through a TLS connection, byte-exact; a client's FIN is passed on while the
# server still answers (half-close), both ways; a slow reader does not make
# the transfer fail, and a client that stops reading a 256 MiB download does
# not make the gateway buffer it (its RSS stays bounded). Each runs in every
# relay path (TLSGATE_RELAY=auto, copy, splice). A relayed connection quiet
# for timeouts.idle is closed; one that keeps moving, however slowly, is not.
# The relay's naps neither stall a stream nor delay an answer to a request.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) P_SINK=$(free_port) GW=$(free_port)
start_https_origin web1 "$P_WEB" web
$TLSCLIENT sink --port "$P_SINK" >"$T/sink.log" 2>&1 &
TG_PIDS+=($!)
wait_port "$P_SINK"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
  - name: sink
    servers: [ { name: sink1, address: 127.0.0.1:$P_SINK } ]
listeners:
  - name: secure
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes: [ { sni: sink.lab.test, backend: sink } ]
    default_backend: web
YAML

N=$((64 * 1024 * 1024))
want_down=$({ yes tlsgate-origin || true; } | head -c $N | sha256sum | cut -d' ' -f1)
head -c $N /dev/urandom >"$T/up.bin"
want_up=$(sha256sum "$T/up.bin" | cut -d' ' -f1)
want_slow=$({ yes tlsgate-origin || true; } | head -c 8000000 | sha256sum | cut -d' ' -f1)

gw_rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$GATEWAY_PID/status"; }

# slow_reader_rss PATH: a client reads the first bytes of a 256 MiB download,
# then stops reading; the gateway's RSS must not grow with what the server
# still has to send. Once the client reads again every byte arrives.
slow_reader_rss() {
    local path=$1 n=$((256 * 1024 * 1024)) before peak rss i got want
    cat >"$T/stall.py" <<'PY'
import hashlib, socket, ssl, sys
port, n, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="web.lab.test")
s.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: web.lab.test\r\nConnection: close\r\n\r\n" % n)
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
body = buf.split(b"\r\n\r\n", 1)[1]
print("stalled", flush=True)
sys.stdin.readline()
h = hashlib.sha256(body)
got = len(body)
while (d := s.recv(1 << 20)):
    h.update(d)
    got += len(d)
print(got, h.hexdigest(), flush=True)
PY
    before=$(gw_rss_kib)
    coproc STALL { python3 "$T/stall.py" "$GW" "$n" "$CERTS/ca.crt"; }
    read -r _ <&"${STALL[0]}"
    peak=$before
    for i in $(seq 1 30); do # 3 s: the socket buffers fill, then the relay must stop reading
        rss=$(gw_rss_kib)
        [ "$rss" -gt "$peak" ] && peak=$rss
        sleep 0.1
    done
    if [ $((peak - before)) -lt 32768 ]; then
        pass "[$path] a client that stops reading: gateway RSS grows $((peak - before)) KiB (< 32 MiB)"
    else
        fail "[$path] a client that stops reading: gateway RSS grew $((peak - before)) KiB"
    fi
    echo >&"${STALL[1]}"
    read -r got <&"${STALL[0]}"
    want=$({ yes tlsgate-origin || true; } | head -c $n | sha256sum | cut -d' ' -f1)
    assert_eq "[$path] ... then reads all 256 MiB, byte-exact" "$n $want" "$got"
}

# bulk PATH: the byte-exact, half-close and slow-reader scenarios on one relay path.
bulk() {
    local path=$1 got body out line
    TLSGATE_RELAY=$path start_gateway "$T/gw.yaml" "$GW"

    got=$(curl -sS --max-time 120 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
        "https://web.lab.test:$GW/bytes/$N" | sha256sum | cut -d' ' -f1)
    assert_eq "[$path] 64 MiB download is byte-exact" "$want_down" "$got"

    body=$(curl -sS --max-time 120 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
        -H 'Content-Type: application/octet-stream' --data-binary @"$T/up.bin" \
        "https://web.lab.test:$GW/upload")
    assert_eq "[$path] 64 MiB upload arrives byte-exact" "$want_up" "$(json_field "$body" body_sha256)"
    assert_eq "[$path] ... all of it" "$N" "$(json_field "$body" body_bytes)"

    out=$($TLSCLIENT halfclose --port "$GW" --bytes 3000000)
    assert_eq "[$path] client FIN passed on; the server's answer still comes back, then its FIN" \
        "$(json_field "$out" sent)" "$(json_field "$out" reply)"

    got=$(curl -sS --max-time 60 --limit-rate 4M --cacert "$CERTS/ca.crt" \
        --resolve web.lab.test:$GW:127.0.0.1 "https://web.lab.test:$GW/bytes/8000000" |
        sha256sum | cut -d' ' -f1)
    assert_eq "[$path] a slow reader gets every byte (backpressure, no loss)" "$want_slow" "$got"

    slow_reader_rss "$path"

    line=$(access_lines | grep '"backend":"sink"' | head -1)
    assert_contains "[$path] half-closed session ends as done" "$line" '"result":"done"'
    assert_contains "[$path] bytes_in counts what the client sent" "$line" \
        "\"bytes_in\":$(json_field "$out" sent | cut -d' ' -f1)"
    stop_gateway
}

for path in auto copy splice; do
    bulk "$path"
done

# idle_timeout: timeouts.idle closes a relayed connection nobody writes on,
# and leaves alone one that keeps moving, even slowly.
idle_timeout() {
    local out got
    sed 's/^admin:.*/&\ntimeouts: { idle: 1000 }/' "$T/gw.yaml" >"$T/gw-idle.yaml"
    start_gateway "$T/gw-idle.yaml" "$GW"
    out=$(python3 - "$GW" "$CERTS/ca.crt" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="web.lab.test")
t0 = time.time()
s.settimeout(10)
try:
    s.recv(1)
except (OSError, ssl.SSLError):
    pass
print("%.1f" % (time.time() - t0))
PY
    )
    if awk -v t="$out" 'BEGIN { exit !(t >= 0.5 && t < 4) }'; then
        pass "an idle relayed connection is closed after timeouts.idle (${out}s)"
    else
        fail "an idle relayed connection is closed after timeouts.idle: took '${out}'s"
    fi
    wait_access '"result":"timeout-idle"' 5 || true
    assert_contains "... logged as timeout-idle" "$(access_lines)" '"result":"timeout-idle"'
    got=$(curl -sS --max-time 30 --limit-rate 1M --cacert "$CERTS/ca.crt" \
        --resolve web.lab.test:$GW:127.0.0.1 "https://web.lab.test:$GW/bytes/3000000" | wc -c)
    assert_eq "a slow transfer longer than timeouts.idle is not cut" 3000000 "$got"
    stop_gateway
}
idle_timeout

# naps: a side whose large read emptied its socket stops watching it for a
# nap (TLSGATE_RELAY_NAP µs; 200 ms here, to make it visible). A stream still
# flows, nap after nap, and a request after a large answer is answered at
# once: the client's bytes end the server side's nap.
naps() {
    local got i t0 ms urls=()
    TLSGATE_RELAY_NAP=200000 start_gateway "$T/gw.yaml" "$GW"
    got=$(curl -sS --max-time 30 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
        "https://web.lab.test:$GW/bytes/1000000" | sha256sum | cut -d' ' -f1)
    assert_eq "[nap 200 ms] a 1 MB download arrives whole" \
        "$({ yes tlsgate-origin || true; } | head -c 1000000 | sha256sum | cut -d' ' -f1)" "$got"
    for i in $(seq 1 20); do urls+=("https://web.lab.test:$GW/bytes/12000"); done
    t0=$(date +%s%N)
    got=$(curl -sS --max-time 30 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
        "${urls[@]}" | wc -c)
    ms=$((($(date +%s%N) - t0) / 1000000))
    assert_eq "[nap 200 ms] 20 answers of 12,000 bytes on one connection" 240000 "$got"
    if [ "$ms" -lt 2000 ]; then
        pass "[nap 200 ms] ... each answered at once, not after a nap (${ms} ms for 20)"
    else
        fail "[nap 200 ms] 20 requests after large answers took ${ms} ms (a nap each?)"
    fi
    stop_gateway
}
naps
finish
