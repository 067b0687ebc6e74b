#!/usr/bin/env bash
# Client certificates (mTLS): a listener with tls.client_ca requires a client
# certificate signed by that CA. The lab client certificate is accepted (TLS
# 1.3 and 1.2); no certificate, a self-signed one, or one without the
# clientAuth purpose is refused at the handshake, and the refusal is logged
# with its reason. Nothing refused reaches the origin.
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
  - name: partners
    bind: 127.0.0.1:$GW
    mode: offload
    tls:
      certificates: [ { cert: $CERTS/gateway.crt, key: $CERTS/gateway.key } ]
      client_ca: $CERTS/ca.crt
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW"

# A self-signed client certificate (right purpose, unknown issuer).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=stranger.lab.test -addext extendedKeyUsage=clientAuth \
    -keyout "$T/stranger.key" -out "$T/stranger.crt" 2>/dev/null

# mcurl PATH [curl options]: prints "<curl exit code> <http code>" and the body in $T/b.
mcurl() {
    local path=$1 rc=0 code
    shift
    code=$(curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "api.lab.test:$GW:127.0.0.1" \
        -o "$T/b" -w '%{http_code}' "$@" "https://api.lab.test:$GW$path" 2>>"$T/curl.err") || rc=$?
    echo "$rc $code"
}

assert_eq "lab client certificate: accepted" "0 200" \
    "$(mcurl /with-cert --cert "$CERTS/client.crt" --key "$CERTS/client.key")"
assert_eq "...and served by the origin" /with-cert "$(json_get "$(cat "$T/b")" path)"
assert_eq "lab client certificate over TLS 1.2: accepted" "0 200" \
    "$(mcurl /with-cert-12 --cert "$CERTS/client.crt" --key "$CERTS/client.key" --tls-max 1.2)"

res=$(mcurl /no-cert)
check "no client certificate: refused (curl: $res)" test "${res%% *}" -ne 0
res=$(mcurl /no-cert-12 --tls-max 1.2)
check "no client certificate, TLS 1.2: refused at the handshake (curl: $res)" test "${res%% *}" -ne 0
out=$($HTTPCLIENT tlsinfo --port "$GW" --sni api.lab.test --cafile "$CERTS/ca.crt" --probe-ms 1000 || true)
assert_eq "no client certificate: the TLS session fails (python)" false "$(json_get "$out" ok)"
res=$(mcurl /self-signed --cert "$T/stranger.crt" --key "$T/stranger.key")
check "self-signed client certificate: refused (curl: $res)" test "${res%% *}" -ne 0
res=$(mcurl /server-cert --cert "$CERTS/web.crt" --key "$CERTS/web.key")
check "certificate without the clientAuth purpose: refused (curl: $res)" test "${res%% *}" -ne 0

wait_for_log "$T/gateway.log" "TLS handshake failed" 5 || true
log=$(grep 'TLS handshake failed' "$T/gateway.log" || true)
assert_contains "refusals logged by listener" "$log" "listener partners: TLS handshake failed"
check "a refusal for a missing certificate says so" \
    grep -qiE 'TLS handshake failed: .*(did not return a certificate|certificate required|no certificate|none sent|is required)' <<<"$log"
check "the self-signed one is logged as unverifiable" grep -qiE 'TLS handshake failed: .*(unable to get local issuer|self[- ]signed|verify)' "$T/gateway.log"
check "... each refusal names the SNI the client sent" \
    grep -qF 'self-signed certificate (SNI api.lab.test)' "$T/gateway.log"
line=$(access_line '"result":"tls-handshake-failed"')
assert_contains "... in the access log too" "$line" '"sni":"api.lab.test"'
n=$(json_field "$line" bytes_in)
check "... with bytes_in = the handshake records the client sent ($n)" test "$n" -gt 200

for p in /no-cert /no-cert-12 /self-signed /server-cert; do
    assert_eq "$p never reached the origin" 0 "$(origin_served web1 "GET $p ")"
done
assert_eq "the accepted ones did" 1 "$(origin_served web1 'GET /with-cert ')"

end_gateway
finish
