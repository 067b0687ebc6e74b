#!/usr/bin/env bash
# The relay moves bytes unchanged and in order: 64 MiB down and 64 MiB up
# through a TLS connection, byte-exact; a client's FIN is passed on while the
# server still answers (half-close), both ways; a slow reader does not make
# the transfer fail.
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
start_gateway "$T/gw.yaml" "$GW"

N=$((64 * 1024 * 1024))
want=$({ yes tlsgate-origin || true; } | head -c $N | sha256sum | cut -d' ' -f1)
got=$(curl -sS --max-time 120 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
    "https://web.lab.test:$GW/bytes/$N" | sha256sum | cut -d' ' -f1)
assert_eq "64 MiB download is byte-exact" "$want" "$got"

head -c $N /dev/urandom >"$T/up.bin"
want=$(sha256sum "$T/up.bin" | cut -d' ' -f1)
body=$(curl -sS --max-time 120 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
    -H 'Content-Type: application/octet-stream' --data-binary @"$T/up.bin" "https://web.lab.test:$GW/upload")
assert_eq "64 MiB upload arrives byte-exact" "$want" "$(json_field "$body" body_sha256)"
assert_eq "... all of it" "$N" "$(json_field "$body" body_bytes)"

out=$($TLSCLIENT halfclose --port "$GW" --bytes 3000000)
assert_eq "client FIN passed on; the server's answer still comes back, then its FIN" \
    "$(json_field "$out" sent)" "$(json_field "$out" reply)"

want=$({ yes tlsgate-origin || true; } | head -c 8000000 | sha256sum | cut -d' ' -f1)
got=$(curl -sS --max-time 60 --limit-rate 4M --cacert "$CERTS/ca.crt" \
    --resolve web.lab.test:$GW:127.0.0.1 "https://web.lab.test:$GW/bytes/8000000" | sha256sum | cut -d' ' -f1)
assert_eq "a slow reader gets every byte (backpressure, no loss)" "$want" "$got"

line=$(access_lines | grep '"backend":"sink"' | head -1)
assert_contains "half-closed session ends as done" "$line" '"result":"done"'
assert_contains "bytes_in counts what the client sent" "$line" "\"bytes_in\":$(json_field "$out" sent | cut -d' ' -f1)"
stop_gateway
finish
