#!/usr/bin/env bash
# Large bodies through an offload listener, byte-exact and streamed: a
# 256 MiB upload (Content-Length), a 256 MiB download, and a 64 MiB chunked
# upload, each checked by SHA-256 on the other side. The access log counts
# the bytes. A client that abandons a download ends its session at once.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port)
start_origin web1 --http "127.0.0.1:$P_WEB" --quiet
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: front
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW"
N=268435456
CURL=(curl -sS --max-time 50 --cacert "$CERTS/ca.crt" --resolve "www.lab.test:$GW:127.0.0.1")

head -c "$N" /dev/urandom >"$T/up.bin"
want=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)
t0=$(date +%s%N)
body=$("${CURL[@]}" -H 'Content-Type: application/octet-stream' --data-binary @"$T/up.bin" \
    "https://www.lab.test:$GW/upload" || true)
echo "# 256 MiB upload: $((($(date +%s%N) - t0) / 1000000)) ms"
assert_eq "256 MiB upload: origin got every byte" "$N" "$(json_get "$body" body_bytes)"
assert_eq "256 MiB upload: SHA-256 matches" "$want" "$(json_get "$body" body_sha256)"
wait_access '"path":"/upload"'
bytes_in=$(json_get "$(access_line '"path":"/upload"')" bytes_in)
check "access log counts the upload ($bytes_in bytes in)" test "${bytes_in:-0}" -gt "$N"

t0=$(date +%s%N)
got=$({ "${CURL[@]}" "https://www.lab.test:$GW/bytes/$N" || true; } | sha256sum | cut -d' ' -f1)
echo "# 256 MiB download: $((($(date +%s%N) - t0) / 1000000)) ms"
want=$({ yes tlsgate-origin || true; } | head -c "$N" | sha256sum | cut -d' ' -f1)
assert_eq "256 MiB download is byte-exact" "$want" "$got"
wait_access "\"path\":\"/bytes/$N\""
bytes_out=$(json_get "$(access_line "\"path\":\"/bytes/$N\"")" bytes_out)
check "access log counts the download ($bytes_out bytes out)" test "${bytes_out:-0}" -gt "$N"

head -c 67108864 "$T/up.bin" >"$T/chunked.bin"
rm -f "$T/up.bin"
t0=$(date +%s%N)
body=$("${CURL[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T/chunked.bin" \
    "https://www.lab.test:$GW/chunked" || true)
echo "# 64 MiB chunked upload: $((($(date +%s%N) - t0) / 1000000)) ms"
assert_eq "64 MiB chunked upload: SHA-256 matches" "$(sha256sum <"$T/chunked.bin" | cut -d' ' -f1)" \
    "$(json_get "$body" body_sha256)"
assert_eq "64 MiB chunked upload: every byte" 67108864 "$(json_get "$body" body_bytes)"

# A client that closes in the middle of a download (its unread bytes make its
# kernel reset the connection): the session ends at once, as the client's
# doing, not at timeouts.idle (60 s here) as the server's.
t0=$(date +%s%N)
python3 - "$GW" <<'PY'
import socket, ssl, sys
ctx = ssl._create_unverified_context()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="www.lab.test")
s.sendall(b"GET /bytes/50000000?abandoned HTTP/1.1\r\nHost: www.lab.test\r\n\r\n")
got = 0
while got < 1000:
    got += len(s.recv(1000))
s.close()
PY
wait_access '?abandoned"'
ms=$((($(date +%s%N) - t0) / 1000000))
line=$(access_line '?abandoned"')
check "a download the client abandoned ends with it (${ms} ms)" test "$ms" -lt 10000
check "... logged as the client's end" grep -qE '"result":"client-(closed|error)"' <<<"$line"

end_gateway
finish
