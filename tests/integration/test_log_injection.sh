#!/usr/bin/env bash
# A client cannot write lines into the gateway's logs. Its bytes reach them
# through the SNI of a ClientHello (the error log's "TLS handshake failed ...
# (SNI x)" and the access log) and through the request target. Here a real
# ClientHello has its SNI overwritten in place with a newline, a forged log
# line, quotes and spaces; the offload listener's logs (text format) must
# keep it on one line, escaped; passthrough refuses such a hello as
# malformed; every line of the gateway's stderr must be one of its own.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) P_TLS=$(free_port) PT=$(free_port) OFF=$(free_port)
start_http_origin web1 "$P_WEB"
start_https_origin tls1 "$P_TLS" web
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { format: text, level: info }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
  - name: tls
    servers: [ { name: tls1, address: 127.0.0.1:$P_TLS } ]
listeners:
  - name: pt
    bind: 127.0.0.1:$PT
    mode: passthrough
    default_backend: tls
  - name: off
    bind: 127.0.0.1:$OFF
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$PT" "$OFF" || bail "the gateway does not start"

# forged_hello: the hex of a real ClientHello whose SNI is replaced, byte for
# byte (so every length stays right), by a newline, a forged log line and a
# quote and a space.
forged_hello() {
    python3 - "$(dirname "$0")" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from tlsclient import client_hello
name = "x" * 60
hello = client_hello(name + ".lab.test")
evil = b'a\n2026-01-01T00:00:00.000Z error [main] FORGED "q" s'
evil = evil + b"x" * (60 - len(evil))
assert len(evil) == 60 and hello.count(name.encode()) == 1
print(hello.replace(name.encode(), evil).hex())
PY
}
HEX=$(forged_hello)
for port in "$PT" "$OFF"; do
    python3 "$(dirname "$0")/tlsclient.py" raw --port "$port" --hex --data "$HEX" --timeout 2 \
        >/dev/null || true
done
wait_for_log "$T/gateway.log" 'FORGED\x20\x22q' 10 || true # the offload access line
wait_for_log "$T/gateway.log" "result=hello-invalid" 10 || true

# A request target with a quote and a space-like byte, through offload.
curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "web.lab.test:$OFF:127.0.0.1" \
    --path-as-is 'https://web.lab.test:'"$OFF"'/a"b%20c' >/dev/null || true
wait_for_log "$T/gateway.log" " off offload " 10 || true

check "no forged line in the gateway's stderr" bash -c "! grep -q '^2026-01-01T00:00:00' '$T/gateway.log'"
check "every line of stderr is one of the gateway's (starts with a timestamp)" \
    bash -c "! grep -vqE '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T' '$T/gateway.log'"
# (the first lines of each listener are start_gateway's probes of its port)
line=$(grep 'TLS handshake failed.*FORGED' "$T/gateway.log" | head -n 1 || true)
assert_contains "the error log shows the SNI escaped" "$line" 'a\x0a2026-01-01T00:00:00.000Z error [main] FORGED'
line=$(grep ' pt passthrough .*result=hello-invalid' "$T/gateway.log" | head -n 1 || true)
assert_contains "passthrough refuses such a name as a malformed hello" "$line" 'sni=- '
line=$(grep ' off offload .*FORGED.*tls-handshake-failed' "$T/gateway.log" | head -n 1 || true)
assert_contains "the text access line of a failed handshake escapes it too" "$line" \
    'sni=a\x0a2026-01-01T00:00:00.000Z\x20error'
line=$(grep ' off offload .*"GET ' "$T/gateway.log" | head -n 1 || true)
assert_contains "a quote in the target is escaped in the text line" "$line" '"GET /a\x22b%20c"'

end_gateway
finish
