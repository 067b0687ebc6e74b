#!/usr/bin/env bash
# Graceful stop. SIGTERM during a 64 MiB download through passthrough and
# one through offload: both complete byte-exact, a keep-alive client's
# in-flight response carries Connection: close, new connections are refused
# at once, and the gateway exits 0 once the transfers are done (well within
# timeouts.drain). With a drain shorter than the transfer, the transfer is
# cut when the drain time is over and the gateway still exits 0.
. "$(dirname "$0")/lib.sh"

make_certs
N=$((64 * 1024 * 1024))
P_PT=$(free_port) P_OFF=$(free_port)
start_https_origin pt "$P_PT" web
start_http_origin off "$P_OFF"
want=$({ yes tlsgate-origin || true; } | head -c $N | sha256sum | cut -d' ' -f1)

# write_conf DRAIN_MS GW_PT GW_OFF
write_conf() {
    cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
timeouts: { drain: $1 }
log: { access: "off" }
backends:
  - { name: pt, servers: [ { name: pt1, address: 127.0.0.1:$P_PT } ] }
  - { name: off, servers: [ { name: off1, address: 127.0.0.1:$P_OFF } ] }
listeners:
  - { name: pt, bind: 127.0.0.1:$2, mode: passthrough, default_backend: pt }
  - name: off
    bind: 127.0.0.1:$3
    mode: offload
    tls: $(tls_certs_yaml web)
    http: { default_backend: off }
YAML
}

# download NAME PORT RATE: a 64 MiB download through the gateway in the
# background ($T/NAME.bin, "status size" in $T/NAME.out); its pid in DL_PID.
download() {
    curl -sS --max-time 60 --cacert "$CERTS/ca.crt" --resolve "web.lab.test:$2:127.0.0.1" \
        --limit-rate "$3" -o "$T/$1.bin" -w '%{http_code} %{size_download}\n' \
        "https://web.lab.test:$2/bytes/$N" >"$T/$1.out" 2>"$T/$1.err" &
    DL_PID=$!
}

# started NAME: waits until the download has its first bytes.
started() {
    local i
    for i in $(seq 1 200); do
        [ -s "$T/$1.bin" ] && return 0
        sleep 0.05
    done
    return 1
}

# refused PORT: polls (up to 5 s) until a connection to PORT is refused.
refused() {
    local i
    for i in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null || return 0
        sleep 0.05
    done
    return 1
}

# A keep-alive request in flight at SIGTERM: /delay/2500 on a new connection.
cat >"$T/ka.py" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20),
                    server_hostname="web.lab.test")
s.sendall(b"GET /delay/2500 HTTP/1.1\r\nHost: web.lab.test\r\n\r\n")
print("sent", flush=True)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head = data.split(b"\r\n\r\n")[0].decode("latin1").lower().split("\r\n")
print(head[0].split(" ")[1], "close" if "connection: close" in head else "keep-alive",
      "eof", flush=True)
PY

# 1. Drain long enough: everything in flight completes.
GW_PT=$(free_port) GW_OFF=$(free_port)
write_conf 30000 "$GW_PT" "$GW_OFF"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF"
download pt "$GW_PT" 12M
dl_pt=$DL_PID
download off "$GW_OFF" 12M
dl_off=$DL_PID
python3 -u "$T/ka.py" "$GW_OFF" "$CERTS/ca.crt" >"$T/ka.out" 2>&1 &
ka=$!
started pt || bail "the passthrough download never started"
started off || bail "the offload download never started"
for i in $(seq 1 100); do grep -q sent "$T/ka.out" && break; sleep 0.05; done
t0=$(date +%s%N)
kill -TERM "$GATEWAY_PID"
check "SIGTERM starts the drain" wait_for_log "$T/gateway.log" "stopping; draining" 10
check "new passthrough connections are refused after SIGTERM" refused "$GW_PT"
check "new offload connections are refused after SIGTERM" refused "$GW_OFF"
check "the passthrough download is still in flight then" test ! -s "$T/pt.out"
wait "$ka" || true
assert_eq "the in-flight keep-alive response carries Connection: close, then EOF" \
    "200 close eof" "$(tail -1 "$T/ka.out")"
wait "$dl_pt" || true
wait "$dl_off" || true
assert_eq "the passthrough download completed" "200 $N" "$(cat "$T/pt.out")"
assert_eq "... byte-exact" "$want" "$(sha256sum <"$T/pt.bin" | cut -d' ' -f1)"
assert_eq "the offload download completed" "200 $N" "$(cat "$T/off.out")"
assert_eq "... byte-exact" "$want" "$(sha256sum <"$T/off.bin" | cut -d' ' -f1)"
rc=0
wait "$GATEWAY_PID" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "the gateway exits 0 after the drain" 0 "$rc"
check "... before timeouts.drain (took ${ms} ms of 30000)" test "$ms" -lt 30000
check "... with no connection cut" bash -c "! grep -q 'drain time over' '$T/gateway.log'"
check "no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '$T/gateway.log'"
rm -f "$T"/*.bin

# 2. Drain shorter than the transfer: cut at the drain time, exit 0.
GW_PT=$(free_port) GW_OFF=$(free_port)
write_conf 1500 "$GW_PT" "$GW_OFF"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF"
download pt "$GW_PT" 2M
dl_pt=$DL_PID
download off "$GW_OFF" 2M
dl_off=$DL_PID
started pt || bail "the slow passthrough download never started"
started off || bail "the slow offload download never started"
t0=$(date +%s%N)
kill -TERM "$GATEWAY_PID"
rc=0
wait "$GATEWAY_PID" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "with a short drain the gateway still exits 0" 0 "$rc"
check "... when the drain time is over (${ms} ms, drain 1500)" test "$ms" -ge 1400 -a "$ms" -lt 15000
check "... cutting what was still open" grep -q "drain time over: closing" "$T/gateway.log"
wait "$dl_pt" || true
wait "$dl_off" || true
check "the slow passthrough download was cut short" test "$(cut -d' ' -f2 <"$T/pt.out")" -lt "$N"
check "the slow offload download was cut short" test "$(cut -d' ' -f2 <"$T/off.out")" -lt "$N"
check "no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '$T/gateway.log'"
finish
