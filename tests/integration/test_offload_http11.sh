#!/usr/bin/env bash
# HTTP/1.1 mechanics through an offload listener: keep-alive toward the
# backend (one server connection serves many requests, also across client
# connections), pipelined requests answered in order, HEAD/204 answers
# without a body, Expect: 100-continue, a small chunked upload, a server
# that closes after its answer, HTTP/1.0 clients, and a WebSocket upgrade
# tunnelled after the 101.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port)
start_http_origin web1 "$P_WEB"
cat >"$T/gw.yaml" <<YAML
workers: 1
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
U="https://www.lab.test:$GW"
CURL=(curl -sS --max-time 20 --cacert "$CERTS/ca.crt" --resolve "www.lab.test:$GW:127.0.0.1")

# Five requests on one client connection (curl reuses it): one server connection.
out=$("${CURL[@]}" -w '\n' "$U/k1" "$U/k2" "$U/k3" "$U/k4" "$U/k5" || true)
ids=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["connection_id"]) for l in sys.stdin if l.strip()))' <<<"$out" || true)
nos=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["request_no"]) for l in sys.stdin if l.strip()))' <<<"$out" || true)
id1=${ids%% *}
assert_eq "5 requests on one client connection: one server connection" "$id1 $id1 $id1 $id1 $id1" "$ids"
n1=${nos%% *}
n1=${n1:-0}
assert_eq "...serving them one after another" "$n1 $((n1 + 1)) $((n1 + 2)) $((n1 + 3)) $((n1 + 4))" "$nos"
wait_access '"path":"/k5"'
assert_eq "the 5 requests came on one client connection" 1 \
    "$(access_lines | grep -F '"path":"/k' | python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in sys.stdin}))')"
assert_contains "request numbers per client connection in the log" "$(access_line '"path":"/k5"')" \
    '"request":5'
# A new client connection takes the idle server connection from the pool.
body=$(gw_curl www.lab.test "$GW" /k6)
assert_eq "the next client connection reuses the pooled server connection" "$id1" \
    "$(json_get "$body" connection_id)"

# Pipelining: four requests in one write; answers in order; HEAD and 204 have no body.
PIPE='GET /p1 HTTP/1.1\r\nHost: www.lab.test\r\n\r\n'
PIPE+='HEAD /bytes/1000 HTTP/1.1\r\nHost: www.lab.test\r\n\r\n'
PIPE+='GET /status/204 HTTP/1.1\r\nHost: www.lab.test\r\n\r\n'
PIPE+='POST /p4 HTTP/1.1\r\nHost: www.lab.test\r\nContent-Length: 5\r\n\r\nhello'
PIPE+='GET /p5 HTTP/1.1\r\nHost: www.lab.test\r\nConnection: close\r\n\r\n'
out=$($HTTPCLIENT send --tls --port "$GW" --sni www.lab.test --data "$PIPE")
assert_eq "pipelined: five answers" 5 "$(json_path "$out" 'len(d["responses"])')"
assert_eq "pipelined: statuses in order" "200 200 204 200 200" \
    "$(json_path "$out" '" ".join(str(r["status"]) for r in d["responses"])')"
assert_eq "pipelined: bodies in order" "/p1 /p4 /p5" \
    "$(json_path "$out" '" ".join(json.loads(r["body"])["path"] for r in d["responses"] if r["body"].startswith("{"))')"
assert_eq "HEAD: Content-Length of the GET" 1000 \
    "$(json_path "$out" 'next(v for n, v in d["responses"][1]["headers"] if n.lower() == "content-length")')"
assert_eq "HEAD and 204: no body bytes (the next answers parse)" "0 0" \
    "$(json_path "$out" '"%d %d" % (d["responses"][1]["body_len"], d["responses"][2]["body_len"])')"
assert_eq "the pipelined POST body arrived" 5 \
    "$(json_path "$out" 'json.loads(d["responses"][3]["body"])["body_bytes"]')"
assert_eq "Connection: close honoured: closed after the last answer" true "$(json_path "$out" 'd["closed"]')"
assert_eq "nothing after the last answer" 0 "$(json_path "$out" 'd["leftover"]')"
hdrs=$("${CURL[@]}" -I "$U/bytes/4242" || true)
assert_contains "curl -I: HEAD answered" "$hdrs" "HTTP/1.1 200"
assert_contains "curl -I: with the length a GET would have" "${hdrs,,}" "content-length: 4242"

# Expect: 100-continue: the body is sent only after the interim 100.
out=$($HTTPCLIENT send --tls --port "$GW" --sni www.lab.test --after-interim --expect 1 \
    --data 'PUT /cont HTTP/1.1\r\nHost: www.lab.test\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n' \
    --data2 'hello world')
assert_eq "100-continue: interim 100 then 200" "100 200" \
    "$(json_path "$out" '" ".join(str(r["status"]) for r in d["responses"])')"
assert_eq "100-continue: the body reached the origin" \
    "$(printf 'hello world' | sha256sum | cut -d' ' -f1)" \
    "$(json_path "$out" 'json.loads(d["responses"][-1]["body"])["body_sha256"]')"

# Small chunked upload (curl sends Transfer-Encoding: chunked).
head -c 300000 /dev/urandom >"$T/small.bin"
body=$("${CURL[@]}" -H 'Transfer-Encoding: chunked' --data-binary @"$T/small.bin" "$U/chunked" || true)
assert_eq "chunked upload: origin's body_sha256 matches" "$(sha256sum <"$T/small.bin" | cut -d' ' -f1)" \
    "$(json_get "$body" body_sha256)"
assert_eq "chunked upload: all bytes" 300000 "$(json_get "$body" body_bytes)"
# Chunked request with extensions and a trailer, sent raw.
out=$($HTTPCLIENT send --tls --port "$GW" --sni www.lab.test --expect 1 \
    --data 'POST /chunk-ext HTTP/1.1\r\nHost: www.lab.test\r\nTransfer-Encoding: chunked\r\n\r\n5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n')
assert_eq "chunked with extension and trailer: body intact" \
    "$(printf 'hello world' | sha256sum | cut -d' ' -f1)" \
    "$(json_path "$out" 'json.loads(d["responses"][0]["body"])["body_sha256"]')"

# The server closes after answering: the client connection goes on.
out=$("${CURL[@]}" -w '\n' "$U/close" "$U/after-close" || true)
assert_eq "server closing after its answer: next request still served" "/close /after-close" \
    "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["path"] for l in sys.stdin if l.strip()))' <<<"$out" || true)"

# HTTP/1.0 client.
body=$("${CURL[@]}" --http1.0 "$U/old" || true)
assert_eq "HTTP/1.0 request served" /old "$(json_get "$body" path)"

# WebSocket: 101, then frames both ways through the tunnel.
out=$($HTTPCLIENT ws --tls --port "$GW" --sni www.lab.test --host www.lab.test --path /ws \
    --message "hello through tlsgate" --big 100000)
assert_eq "WebSocket: 101 Switching Protocols" 101 "$(json_get "$out" status)"
assert_eq "WebSocket: Sec-WebSocket-Accept passed on" true "$(json_get "$out" accept_ok)"
assert_eq "WebSocket: text frame echoed" "hello through tlsgate" "$(json_get "$out" echo)"
assert_eq "WebSocket: 100 kB binary frame echoed" true "$(json_get "$out" big_echo_ok)"
assert_eq "WebSocket: close frame answered" 8 "$(json_get "$out" close_opcode)"
wait_access '"path":"/ws"'
assert_contains "WebSocket logged with its 101" "$(access_line '"path":"/ws"')" '"status":101'

end_gateway
finish
