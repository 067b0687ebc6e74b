#!/usr/bin/env bash
# Memory check (not part of CI): the gateway under valgrind --leak-check=full
# relays N TLS connections (default 1000), then gets SIGTERM. Passes when
# valgrind reports no error and no definite/indirect leak and the exit is 0.
#
#   bash bench/valgrind-passthrough.sh [path/to/tlsgate] [N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
n=${2:-1000}
tmp=$(mktemp -d /tmp/tlsgate-vg.XXXXXX)
trap 'kill $origin 2>/dev/null || true; rm -rf "$tmp"' EXIT
bash "$here/../certs/mkcerts.sh" "$tmp/c" >/dev/null
printf 'workers: 2\nadmin: { listen: "" }\nlog: { access: "off" }\nbackends:\n  - name: web\n    servers: [ { name: o, address: 127.0.0.1:29443 } ]\nlisteners:\n  - { name: pt, bind: 127.0.0.1:28443, mode: passthrough, default_backend: web }\n' >"$tmp/g.yaml"
"$tlsgate" origin --name o --https 127.0.0.1:29443 --cert "$tmp/c/web.crt" --key "$tmp/c/web.key" --quiet 2>/dev/null &
origin=$!
valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
    "$tlsgate" -c "$tmp/g.yaml" 2>"$tmp/vg.log" &
vg=$!
for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/28443) 2>/dev/null && break; sleep 0.1; done
python3 - "$n" <<'PY'
import socket, ssl, sys
ctx = ssl._create_unverified_context()
ok = 0
for _ in range(int(sys.argv[1])):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 28443)), server_hostname="web.lab.test")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    d = b""
    while (x := s.recv(4096)):
        d += x
    ok += d.startswith(b"HTTP/1.1 200")
    s.close()
print(f"relayed connections answered 200: {ok}/{sys.argv[1]}")
PY
kill -TERM "$vg"
rc=0
wait "$vg" || rc=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$tmp/vg.log" || true
echo "gateway under valgrind exited $rc"
[ "$rc" -eq 0 ]
