#!/usr/bin/env bash
# Passthrough routes on the SNI without decrypting: the client sees each
# origin's own certificate (the gateway has no key), exact and wildcard
# routes and the default backend reach the right origin, and an unknown SNI
# on a listener without default_backend is closed.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) P_BANK=$(free_port) P_DEF=$(free_port)
GW=$(free_port) GW2=$(free_port)
start_https_origin web1 "$P_WEB" web
start_https_origin bank "$P_BANK" bank
start_https_origin fallback "$P_DEF" shop

cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
  - name: bank
    servers: [ { name: bank1, address: 127.0.0.1:$P_BANK } ]
  - name: fallback
    servers: [ { name: fb1, address: 127.0.0.1:$P_DEF } ]
listeners:
  - name: secure
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes:
      - { sni: bank.lab.test, backend: bank }
      - { sni: "*.lab.test", backend: web }
    default_backend: fallback
  - name: strict
    bind: 127.0.0.1:$GW2
    mode: passthrough
    sni_routes:
      - { sni: BANK.lab.test., backend: bank }
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW2"

# The certificate the client sees is the origin's, verified against the lab CA.
subj=$(openssl s_client -connect "127.0.0.1:$GW" -servername bank.lab.test -CAfile "$CERTS/ca.crt" \
    -verify_return_error </dev/null 2>/dev/null | grep '^subject=' || true)
assert_contains "bank SNI: client sees the bank origin's certificate" "$subj" "CN = bank.lab.test"
subj=$(openssl s_client -connect "127.0.0.1:$GW" -servername www.lab.test -CAfile "$CERTS/ca.crt" \
    </dev/null 2>/dev/null | grep '^subject=' || true)
assert_contains "wildcard SNI: client sees the web origin's certificate" "$subj" "CN = web.lab.test"

body=$(https_get bank.lab.test "$GW" /account)
assert_eq "exact route reaches bank" bank "$(json_field "$body" origin)"
tls=$(json_field "$body" tls)
assert_contains "TLS ended at the origin, not the gateway" "$tls" "TLSv1.3"

body=$(https_get www.lab.test "$GW" /)
assert_eq "wildcard route reaches web" web1 "$(json_field "$body" origin)"
body=$(https_get BANK.LAB.TEST "$GW" /)
assert_eq "SNI is matched case-insensitively" bank "$(json_field "$body" origin)"
out=$(curl -sk --max-time 10 --resolve a.b.lab.test:$GW:127.0.0.1 "https://a.b.lab.test:$GW/" || true)
assert_eq "wildcard matches one label only: two labels go to default" fallback "$(json_field "$out" origin)"
body=$(curl -sk --max-time 10 "https://127.0.0.1:$GW/")
assert_eq "no SNI (IP literal) goes to default_backend" fallback "$(json_field "$body" origin)"
body=$(curl -sk --max-time 10 --resolve other.example:$GW:127.0.0.1 "https://other.example:$GW/")
assert_eq "unknown SNI goes to default_backend" fallback "$(json_field "$body" origin)"

# The strict listener has no default: unknown SNI is closed, the route works.
body=$(https_get bank.lab.test "$GW2" /)
assert_eq "route written with upper case and trailing dot matches" bank "$(json_field "$body" origin)"
rc=0
curl -sk --max-time 10 --resolve www.lab.test:$GW2:127.0.0.1 "https://www.lab.test:$GW2/" \
    >/dev/null 2>&1 || rc=$?
check "unknown SNI without default_backend is closed (curl fails)" test "$rc" -ne 0
wait_for_log "$T/gateway.log" '"result":"no-route"' 5
check "the refusal is logged with its reason" grep -q 'no route for SNI www.lab.test' "$T/gateway.log"

# One JSON access-log line per connection with what the ClientHello offered.
# curl offers h2,http/1.1; openssl s_client (the first connections) offers no ALPN.
line=$(access_lines | grep '"sni":"bank.lab.test"' | grep '"listener":"secure"' |
    grep -F '"alpn":["h2","http/1.1"]' | head -1)
assert_contains "access log names listener, mode" "$line" '"mode":"passthrough"'
assert_contains "access log names backend and server" "$line" '"backend":"bank","server":"bank1"'
assert_contains "access log has the offered TLS versions" "$line" '"tls_versions":["TLSv1.3"'
assert_contains "access log counts bytes" "$line" '"bytes_in":'
assert_not_contains "access log never shows the path (it cannot see it)" "$(access_lines)" '/account'
check "access log lines are valid JSON" bash -c "grep -E '^\{\"ts\"' '$T/gateway.log' | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'"

stop_gateway
finish
