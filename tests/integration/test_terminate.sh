#!/usr/bin/env bash
# One port, two kinds of site: a passthrough listener relays bank.lab.test
# end to end to its TLS origin (the client sees the bank's own certificate),
# while *.lab.test is handed in-process to a bind: none offload listener (the
# client sees the gateway's certificate; stickiness, rules, HSTS, forwarded
# headers, access log and metrics are those of the offload listener; the
# passthrough listener logs the hand-off with what the ClientHello showed). The
# ClientHello, split into 1-byte segments or spread over several TLS records,
# still reaches the right side. Unknown SNI follows default_backend on one
# listener and default_terminate on another, which also reads a PROXY v2
# header and hands the client address from it to the terminated side.
. "$(dirname "$0")/lib.sh"

make_certs
PB=$(free_port) PW1=$(free_port) PW2=$(free_port)
GW=$(free_port) GWP=$(free_port) ADMIN=$(free_port)
start_https_origin bank1 "$PB" bank
start_http_origin web1 "$PW1"
start_http_origin web2 "$PW2"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "127.0.0.1:$ADMIN" }
log: { level: debug }
timeouts: { client_hello: 8000, handshake: 1500 }
backends:
  - name: bank
    servers: [ { name: bank1, address: 127.0.0.1:$PB } ]
  - name: web
    balance: roundrobin
    servers:
      - { name: web1, address: 127.0.0.1:$PW1 }
      - { name: web2, address: 127.0.0.1:$PW2 }
listeners:
  - name: public
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes:
      - { sni: bank.lab.test, backend: bank }
      - { sni: "*.lab.test", terminate: shop }
    default_backend: bank
  - name: behind_lb
    bind: 127.0.0.1:$GWP
    mode: passthrough
    proxy_protocol: v2
    sni_routes:
      - { sni: bank.lab.test, backend: bank }
    default_terminate: shop
  - name: shop
    bind: none
    mode: offload
    tls: $(tls_certs_yaml shop gateway)
    http:
      hsts: "max-age=600"
      sticky: { cookie: SHOPSRV }
      rules:
        - match: { path_prefix: /admin }
          action: deny
        - match: { host: old.lab.test }
          action: redirect
          location: "https://www.lab.test{uri}"
          status: 301
      default_backend: web
YAML
start_gateway "$T/gw.yaml" "$GW" "$GWP" || bail "gateway did not start"

# get SNI PORT [tlsclient options]: one HTTPS GET through the gateway, as JSON.
get() {
    local sni=$1 port=$2
    shift 2
    $TLSCLIENT get --port "$port" --sni "$sni" --cafile "$CERTS/ca.crt" "$@" 2>&1 || true
}
# origin_of BODY: the origin that answered (from its JSON echo; no python: used in loops).
origin_of() { if [[ $1 =~ \"origin\":\"([^\"]*)\" ]]; then echo "${BASH_REMATCH[1]}"; fi; }
# shop_server NAME: true for a server of the shop backend.
shop_server() { [ "$1" = web1 ] || [ "$1" = web2 ]; }
# subject_of SNI PORT: the CN of the certificate presented for SNI (openssl
# s_client: it reports the certificate even when the name does not match).
subject_of() {
    openssl s_client -connect "127.0.0.1:$2" -servername "$1" </dev/null 2>/dev/null |
        sed -nE 's/^subject=.*CN ?= ?([^,/]*).*/\1/p' | head -1
}

# --- SNI A: end to end to the bank's TLS origin --------------------------------
out=$(get bank.lab.test "$GW" --path /balance)
assert_eq "bank.lab.test: the client sees the bank origin's certificate" bank.lab.test \
    "$(json_get "$out" subject_cn)"
body=$(json_get "$out" body)
assert_eq "bank.lab.test: answered by the bank origin" bank1 "$(origin_of "$body")"
assert_eq "bank.lab.test: TLS ended at the origin (it saw the SNI)" bank.lab.test \
    "$(json_path "$body" 'd["tls"]["sni"]')"
assert_eq "bank.lab.test: no forwarded headers (the gateway never saw HTTP)" "" \
    "$(origin_header "$body" X-Forwarded-Proto)"

# --- SNI B: terminated in-process by the offload listener ----------------------
out=$(get shop.lab.test "$GW" --path /cart)
assert_eq "shop.lab.test: the client sees the gateway's certificate" shop.lab.test \
    "$(json_get "$out" subject_cn)"
body=$(json_get "$out" body)
check "shop.lab.test: answered by a shop server over plain HTTP" \
    shop_server "$(origin_of "$body")"
assert_eq "shop.lab.test: TLS ended at the gateway (origin saw none)" "" \
    "$(json_path "$body" 'd["tls"]')"
assert_eq "shop.lab.test: X-Forwarded-Proto https" https "$(origin_header "$body" X-Forwarded-Proto)"
assert_eq "shop.lab.test: X-Forwarded-For is the client" 127.0.0.1 \
    "$(origin_header "$body" X-Forwarded-For)"
out=$(get other.lab.test "$GW")
assert_eq "a *.lab.test name without its own certificate gets the gateway's wildcard one" \
    gateway.lab.test "$(json_get "$out" subject_cn)"

# --- stickiness, rules and HSTS of the offload listener -------------------------
JAR=$T/jar
: >"$T/h"
first=$(origin_of "$(gw_curl www.lab.test "$GW" /first -c "$JAR" -D "$T/h")")
[ -n "$first" ] || bail "no answer from www.lab.test through the shared port"
check "first terminated answer sets the sticky cookie" grep -qi '^set-cookie: SHOPSRV=' "$T/h"
check "terminated answers carry the offload listener's HSTS" \
    grep -qi '^strict-transport-security: max-age=600' "$T/h"
seen=""
for i in $(seq 1 20); do
    seen+="$(origin_of "$(gw_curl www.lab.test "$GW" "/again/$i" -b "$JAR")") "
done
assert_eq "20 requests with the cookie stick to one server" \
    "$(printf "$first %.0s" $(seq 1 20))" "$seen"
spread=""
for i in $(seq 1 6); do
    spread+="$(origin_of "$(gw_curl www.lab.test "$GW" "/nocookie/$i")")"$'\n'
done
assert_eq "without the cookie, requests spread over both servers" 2 \
    "$(sort -u <<<"$spread" | grep -c .)"
code=$(gw_curl shop.lab.test "$GW" /admin/users -o /dev/null -w '%{http_code}')
assert_eq "deny rule: /admin answers 403" 403 "$code"
assert_eq "the denied request reached no server" 0 \
    "$(($(origin_served web1 /admin) + $(origin_served web2 /admin)))"
: >"$T/h"
code=$(gw_curl old.lab.test "$GW" "/p?q=1" -o /dev/null -D "$T/h" -w '%{http_code}')
assert_eq "redirect rule: old.lab.test answers 301" 301 "$code"
check "redirect rule: Location keeps the path and query" \
    grep -qi '^location: https://www.lab.test/p?q=1' "$T/h"

# --- the ClientHello in pieces still reaches each side --------------------------
for how in "--split 1" "--records 4" "--records 3 --split 7"; do
    # shellcheck disable=SC2086
    out=$(get shop.lab.test "$GW" --path /pieces $how)
    assert_eq "ClientHello '$how' for shop.lab.test: terminated here" \
        shop.lab.test/200 "$(json_get "$out" subject_cn)/$(json_get "$out" status)"
    # shellcheck disable=SC2086
    out=$(get bank.lab.test "$GW" --path /pieces $how)
    assert_eq "ClientHello '$how' for bank.lab.test: end to end" \
        bank.lab.test/200 "$(json_get "$out" subject_cn)/$(json_get "$out" status)"
done

# --- unknown SNI: default_backend here, default_terminate there ----------------
assert_eq "unknown SNI on 'public' follows default_backend (the bank, end to end)" \
    bank.lab.test "$(subject_of unknown.example "$GW")"
assert_eq "openssl s_client -servername shop.lab.test sees the gateway's certificate" \
    shop.lab.test "$(subject_of shop.lab.test "$GW")"
out=$($TLSCLIENT get --port "$GW" 2>&1 || true)
assert_eq "no SNI on 'public' follows default_backend too" bank1 \
    "$(origin_of "$(json_get "$out" body)")"
# (No --cafile: unknown.example is in no certificate; the origin's echo tells the side.)
out=$($TLSCLIENT get --port "$GWP" --sni unknown.example --proxy v2 --src 203.0.113.9:5555 \
    --path /xff 2>&1 || true)
body=$(json_get "$out" body)
check "unknown SNI on 'behind_lb' follows default_terminate (a shop server answers)" \
    shop_server "$(origin_of "$body")"
assert_eq "PROXY v2 source reaches the terminated side as X-Forwarded-For" 203.0.113.9 \
    "$(origin_header "$body" X-Forwarded-For)"
out=$(get bank.lab.test "$GWP" --proxy v2 --src 203.0.113.9:5555)
assert_eq "bank.lab.test on 'behind_lb' stays end to end" bank.lab.test \
    "$(json_get "$out" subject_cn)"

# --- access log and metrics: the terminated side is the offload listener's ------
wait_access '"path":"/xff"'
line=$(access_line '"path":"/cart"')
assert_contains "terminated request logged by listener shop" "$line" \
    '"listener":"shop","mode":"offload"'
assert_contains "its line names the SNI and the method" "$line" '"sni":"shop.lab.test"'
line=$(access_line '"path":"/xff"')
assert_contains "handed-off PROXY client logged with its real address" "$line" \
    '"client":"203.0.113.9:5555"'
line=$(access_line '"sni":"bank.lab.test"' '"listener":"public"')
assert_contains "bank connection logged by the passthrough listener (SNI, bytes)" "$line" \
    '"mode":"passthrough"'
line=$(access_line '"sni":"shop.lab.test"' '"listener":"public"')
assert_contains "the hand-off has a passthrough line on 'public' naming its target" "$line" \
    '"mode":"passthrough"'
assert_contains "... with what the ClientHello showed" "$line" '"tls_versions":["TLSv1.3"'
assert_contains "... the target listener" "$line" '"terminate":"shop"'
assert_contains "... and result terminated" "$line" '"result":"terminated"'
check "... and the ClientHello's bytes as bytes_in" grep -qE '"bytes_in":[1-9][0-9]{2,}' <<<"$line"
line=$(access_line '"client":"203.0.113.9:5555"' '"listener":"behind_lb"' '"terminate"')
assert_contains "default_terminate: the hand-off line on 'behind_lb' has the PROXY client" \
    "$line" '"terminate":"shop","backend":null'
check "the hand-off is in the debug log" grep -qF -- "-> terminate shop (*.lab.test)" \
    "$T/gateway.log"
metrics=$(curl -sS --max-time 10 "http://127.0.0.1:$ADMIN/metrics" || true)
shop_conns=$(sed -nE 's/^tlsgate_connections_total\{listener="shop",mode="offload"\} ([0-9]+)$/\1/p' \
    <<<"$metrics")
check "connections counted on the offload listener (got '${shop_conns}')" \
    test "${shop_conns:-0}" -ge 30
ok_hs=$(grep -E '^tlsgate_tls_handshakes_total\{listener="shop".*result="ok"' <<<"$metrics" |
    awk '{print $2}')
check "handshakes counted on the offload listener (got '${ok_hs}')" test "${ok_hs:-0}" -ge 30

# --- the offload listener's handshake deadline applies after the hand-off ------
# A complete ClientHello, then silence: the gateway answers it, waits for the
# client's Finished for timeouts.handshake (1.5 s), far less than client_hello.
held=$(python3 - "$GW" "$TG_SRC/tests/integration" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from tlsclient import client_hello
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(client_hello("shop.lab.test"))
t0 = time.time()
try:
    while s.recv(65536):
        pass
except OSError:
    pass
print(int((time.time() - t0) * 1000))
PY
)
check "silent client after a handed-off ClientHello closed by the handshake deadline (${held} ms)" \
    test "${held:-99999}" -ge 1000 -a "${held:-99999}" -lt 7000
wait_for_log "$T/gateway.log" "listener shop: TLS handshake not complete in time" 10 || true
check "that close is logged by listener shop" grep -qF \
    "listener shop: TLS handshake not complete in time" "$T/gateway.log"

# --- garbage after a routed ClientHello never crashes the terminated side ------
python3 - "$GW" "$TG_SRC/tests/integration" <<'PY' || true
import socket, sys
sys.path.insert(0, sys.argv[2])
from tlsclient import client_hello
for tail in (b"", b"\x17\x03\x03\x00\x05hello", b"\x00" * 3000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    s.sendall(client_hello("www.lab.test") + tail)
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
PY
out=$(get www.lab.test "$GW" --path /still)
assert_eq "the gateway still serves after bad input on the terminated side" 200 \
    "$(json_get "$out" status)"

# /stats shows where terminate routes lead.
stats=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/stats")
assert_eq "/stats: the wildcard route on 'public' terminates at shop" "*.lab.test shop None" \
    "$(json_path "$stats" 'next("%s %s %s" % (r["sni"], r["terminate"], r["backend"]) for l in d["listeners"] if l["name"] == "public" for r in l["sni_routes"] if r["sni"] == "*.lab.test")')"
assert_eq "/stats: default_terminate of 'behind_lb'" shop \
    "$(json_path "$stats" 'next(l["default_terminate"] for l in d["listeners"] if l["name"] == "behind_lb")')"

# The passthrough listener's bytes_in counter matches its access lines, the
# hand-offs' ClientHellos included.
sum=$(access_lines | python3 -c 'import json, sys
print(sum(d["bytes_in"] for d in map(json.loads, sys.stdin) if d["listener"] == "public"))')
m=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics" |
    awk '$1 ~ /^tlsgate_bytes_in_total\{listener="public"/ {print $2}')
assert_eq "public's tlsgate_bytes_in_total is the sum of its lines' bytes_in" "$sum" "$m"

end_gateway
finish
