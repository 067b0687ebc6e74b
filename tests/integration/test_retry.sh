#!/usr/bin/env bash
# Retry rules of the HTTP engine. Nothing reached a server: retried on another
# one (a refused connect; a failed TLS handshake toward a bridge server). A
# reused keep-alive server connection that the server closes without answering:
# an idempotent request without a body is sent again on a new connection; a
# POST is not (502, and the server saw it once). A request a server received on
# a new connection, or one that got an interim (1xx) answer, is never retried.
. "$(dirname "$0")/lib.sh"

make_certs
P_KA=$(free_port) P_DROP=$(free_port) P_DEAD=$(free_port) P_LIVE=$(free_port)
P_OK=$(free_port) P_WRONG=$(free_port) GW=$(free_port) GW_BR=$(free_port) P_HINT=$(free_port)

# A backend that logs "cN METHOD PATH" for each request head it reads.
# keepalive-then-drop: answers the first request of a connection (keep-alive)
# and closes silently after reading the second. drop: closes after each head.
cat >"$T/backend.py" <<'PY'
import socket, sys, threading

port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock, conns = threading.Lock(), [0]

def note(line):
    with lock, open(log, "a") as f:
        f.write(line + "\n")

def serve(c, n):
    buf, served = b"", 0
    with c:
        while True:
            while b"\r\n\r\n" not in buf:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf[length:]
            method, path = head.split(b" ")[:2]
            note(f"c{n} {method.decode()} {path.decode()}")
            if mode == "hint-then-drop" and served == 1:
                c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
                return  # an interim answer, then a close: the server did act on it
            if mode == "drop" or served == 1:
                return  # closes without a byte of answer
            body = f"c{n} {path.decode()}".encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            served += 1

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    conns[0] += 1
    threading.Thread(target=serve, args=(c, conns[0]), daemon=True).start()
PY
python3 "$T/backend.py" "$P_KA" keepalive-then-drop "$T/ka.log" &
TG_PIDS+=($!)
python3 "$T/backend.py" "$P_DROP" drop "$T/drop.log" &
TG_PIDS+=($!)
python3 "$T/backend.py" "$P_HINT" hint-then-drop "$T/hint.log" &
TG_PIDS+=($!)
wait_port "$P_HINT"
wait_port "$P_KA"
wait_port "$P_DROP"
start_http_origin live "$P_LIVE"
start_https_origin secure "$P_OK" web
# (not --quiet: its log would show a request that reached it)
start_origin impostor --https "127.0.0.1:$P_WRONG" --cert "$CERTS/wrong.crt" --key "$CERTS/wrong.key"

cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
timeouts: { connect: 2000 }
backends:
  - name: ka
    servers: [ { name: ka1, address: 127.0.0.1:$P_KA } ]
  - name: drop
    servers: [ { name: drop1, address: 127.0.0.1:$P_DROP } ]
  - name: hint
    servers: [ { name: hint1, address: 127.0.0.1:$P_HINT } ]
  - name: failover
    servers:
      - { name: dead, address: 127.0.0.1:$P_DEAD }
      - { name: live, address: 127.0.0.1:$P_LIVE }
  - name: tlsfail
    tls: { ca: $CERTS/ca.crt, sni: web.lab.test }
    servers:
      - { name: impostor, address: 127.0.0.1:$P_WRONG }
      - { name: secure, address: 127.0.0.1:$P_OK }
listeners:
  - name: h
    bind: 127.0.0.1:$GW
    mode: http
    http:
      rules:
        - { match: { path_prefix: /drop }, action: forward, backend: drop }
        - { match: { path_prefix: /hint }, action: forward, backend: hint }
        - { match: { path_prefix: /failover }, action: forward, backend: failover }
      default_backend: ka
  - name: br
    bind: 127.0.0.1:$GW_BR
    mode: bridge
    tls: $(tls_certs_yaml gateway)
    http: { default_backend: tlsfail }
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW_BR"

code() { # code ARGS...: the status curl got through the http listener
    curl -s -o "$T/body" -w '%{http_code}' --max-time 10 "$@" || true
}

# --- a stale pooled connection -----------------------------------------------------
assert_eq "first GET served (the connection is pooled)" 200 "$(code "http://127.0.0.1:$GW/one")"
assert_eq "second GET: the reused connection closed; retried and served" 200 \
    "$(code "http://127.0.0.1:$GW/two")"
c_one=$(grep -F ' /one' "$T/ka.log" | cut -d' ' -f1)
c_two=$(grep -F ' /two' "$T/ka.log" | cut -d' ' -f1 | paste -sd' ')
assert_eq "the server saw /two on the stale connection, then on a new one" \
    "$c_one ${c_two#* }" "$c_two"
check "... which answered" test "$(cat "$T/body")" = "${c_two#* } /two"
assert_eq "POST on the reused connection: 502, no retry" 502 \
    "$(code -X POST --data-binary abc "http://127.0.0.1:$GW/three")"
assert_eq "the server saw the POST once" 1 "$(grep -c 'POST /three' "$T/ka.log")"
wait_access '"path":"/three"'
assert_contains "the POST's log line says the server closed" \
    "$(access_line '"path":"/three"')" '"result":"server-closed"'
assert_eq "an idempotent DELETE is retried the same way" 200 \
    "$(code -X DELETE "http://127.0.0.1:$GW/four")"
assert_eq "a pooled connection again; POST without a body is not retried either" 502 \
    "$(code -X POST -H 'Content-Length: 0' "http://127.0.0.1:$GW/five")"
assert_eq "... seen once" 1 "$(grep -c 'POST /five' "$T/ka.log")"

# A 103 came back before the close: the server acted on the request, no retry.
assert_eq "first GET on the hinting server" 200 "$(code "http://127.0.0.1:$GW/hint/1")"
code "http://127.0.0.1:$GW/hint/2" >/dev/null
assert_eq "after an interim 103 and a close, the GET is not sent again" 1 \
    "$(grep -c 'GET /hint/2' "$T/hint.log")"

# --- a request that reached a server on a new connection is never retried --------
assert_eq "GET dropped by the server on a new connection: 502" 502 \
    "$(code "http://127.0.0.1:$GW/drop")"
assert_eq "... sent once" 1 "$(grep -c 'GET /drop' "$T/drop.log")"

# --- connect failure: retried on another server --------------------------------------
ok=0
for i in 1 2 3 4; do
    [ "$(code "http://127.0.0.1:$GW/failover/$i")" = 200 ] && ok=$((ok + 1))
done
assert_eq "refused connects are retried on the live server" 4 "$ok"
check "the refused server is logged" grep -q "server failover/dead (127.0.0.1:$P_DEAD) " \
    "$T/gateway.log"

# --- bridge: a TLS handshake failure is not a request: retried on another server -----
ok=0
for i in 1 2 3 4; do
    c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CERTS/ca.crt" \
        --resolve "www.lab.test:$GW_BR:127.0.0.1" "https://www.lab.test:$GW_BR/tls/$i" || true)
    [ "$c" = 200 ] && ok=$((ok + 1))
done
assert_eq "a server failing verification is skipped for the next one" 4 "$ok"
check "the failed handshake is logged" grep -q "server tlsfail/impostor" "$T/gateway.log"
assert_eq "the impostor never received a request" 0 "$(origin_served impostor /tls/)"

end_gateway
finish
