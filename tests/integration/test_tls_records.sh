#!/usr/bin/env bash
# TLS records that reach an offload listener together. The gateway lets
# OpenSSL read ahead (one read() per readable socket), so a record beyond
# the one being decrypted can sit inside OpenSSL where the socket no longer
# signals it: each scenario of tlsrecords.py sends several records in one
# write and must be answered in full without the client sending more.
. "$(dirname "$0")/lib.sh"

make_certs
O=$(free_port) GW=$(free_port)
start_http_origin web "$O"
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: w1, address: 127.0.0.1:$O } ]
listeners:
  - name: off
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW"

records() { # records SCENARIO: the client's output, or its error
    timeout 20 python3 "$TG_SRC/tests/integration/tlsrecords.py" "$GW" www.lab.test \
        "$CERTS/ca.crt" "$1" 2>&1 || true
}

statuses() { # statuses OUTPUT: the status codes of the responses printed, in order
    echo "$1" | awk '/^[0-9][0-9][0-9] /{print $1}' | paste -sd' '
}

out=$(records finished+request)
assert_eq "handshake Finished and the first request in one write: answered" "200" \
    "$(statuses "$out")"
out=$(records pipelined)
assert_eq "three pipelined requests, one record each, one write: three answers" "200 200 200" \
    "$(statuses "$out")"
out=$(records split-head)
assert_eq "a head cut across three records in one write: answered" "200" \
    "$(statuses "$out")"
out=$(records head+body)
assert_eq "a POST head and body in two records in one write: answered" "200" \
    "$(statuses "$out")"
assert_contains "... and the origin got the 5000 body bytes" "$out" '"body_bytes":5000,'

out=$(records websocket)
assert_eq "upgrade request and a WebSocket frame in one write: the frame is echoed" \
    "echo read ahead" "$out"

stop_gateway
finish
