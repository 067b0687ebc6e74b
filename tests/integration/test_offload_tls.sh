#!/usr/bin/env bash
# TLS at an offload listener, with the defaults: TLS 1.2 and 1.3 only,
# forward-secret ciphers only (checked with an RSA certificate, with which a
# non-forward-secret RSA key exchange would otherwise be possible), ALPN http/1.1, session tickets that resume;
# the certificate is chosen by SNI (first one is the default); min_version
# "1.3" refuses TLS 1.2; a client that never finishes its handshake is cut
# at timeouts.handshake.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port) GW13=$(free_port) GWSF=$(free_port)
start_http_origin web1 "$P_WEB"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
timeouts: { handshake: 1000 }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: front
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $(tls_certs_yaml shop-rsa bank)
    http: { default_backend: web }
  - name: modern
    bind: 127.0.0.1:$GW13
    mode: offload
    tls:
      certificates: [ { cert: $CERTS/gateway.crt, key: $CERTS/gateway.key } ]
      min_version: "1.3"
    http: { default_backend: web }
  - name: stateful
    bind: 127.0.0.1:$GWSF
    mode: offload
    tls:
      certificates: [ { cert: $CERTS/shop-rsa.crt, key: $CERTS/shop-rsa.key },
                      { cert: $CERTS/bank.crt, key: $CERTS/bank.key } ]
      session_tickets: false
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW" "$GW13" "$GWSF"

# sclient PORT [openssl s_client options]: the handshake transcript (never fails).
sclient() {
    local port=$1
    shift
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.crt" "$@" \
        </dev/null 2>&1 || true
}
# established TRANSCRIPT: a session was set up (a cipher was agreed).
# ("New, (NONE), Cipher is (NONE)" when it failed; the version shown is the cipher's.)
established() { grep -qE '^(New|Reused), [A-Za-z0-9.]+, Cipher is [A-Z0-9]' <<<"$1"; }
refused() { ! established "$1"; }

out=$(sclient "$GW" -servername shop.lab.test -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
check "TLS 1.1 refused" refused "$out"
assert_contains "TLS 1.1: the gateway says which version is wrong" "$out" "alert protocol version"
out=$(sclient "$GW" -servername shop.lab.test -tls1_2 -cipher AES128-SHA)
check "TLS 1.2 with a non-forward-secret cipher (AES128-SHA) refused" refused "$out"
out=$(sclient "$GW" -servername shop.lab.test -tls1_2 -cipher 'AES256-GCM-SHA384:AES128-GCM-SHA256')
check "TLS 1.2 with RSA key exchange only (AES-GCM): refused" refused "$out"
out=$(sclient "$GW" -servername shop.lab.test -tls1_2)
check "TLS 1.2 with default ciphers: accepted" established "$out"
assert_contains "TLS 1.2: an ECDHE cipher is chosen" "$out" "Cipher is ECDHE-"
out=$(sclient "$GW" -servername shop.lab.test -tls1_3)
check "TLS 1.3: accepted" established "$out"
check "the refusals are logged" grep -q 'TLS handshake failed' "$T/gateway.log"

# ALPN: http/1.1 chosen from what the client offers; h2 alone gets no ALPN.
out=$(sclient "$GW" -servername shop.lab.test -alpn h2,http/1.1)
assert_contains "ALPN h2,http/1.1 offered: http/1.1 negotiated" "$out" "ALPN protocol: http/1.1"

# Certificates by SNI; no SNI: the first one.
out=$(sclient "$GW" -servername bank.lab.test)
assert_contains "SNI bank.lab.test: the bank certificate" "$out" "CN = bank.lab.test"
check "...which verifies" grep -q 'Verify return code: 0 (ok)' <<<"$out"
out=$(sclient "$GW" -servername shop.lab.test)
assert_contains "SNI shop.lab.test: the shop certificate" "$out" "CN = shop-rsa.lab.test"
out=$(sclient "$GW" -noservername)
assert_contains "no SNI: the first (default) certificate" "$out" "CN = shop-rsa.lab.test"
out=$(sclient "$GW" -servername unknown.example)
assert_contains "unknown SNI: the default certificate" "$out" "CN = shop-rsa.lab.test"
body=$(gw_curl bank.lab.test "$GW" /by-sni)
assert_eq "HTTPS through the SNI-chosen certificate" /by-sni "$(json_get "$body" path)"

# Session resumption with a ticket: TLS 1.2, then TLS 1.3 (whose tickets come
# after the handshake, so s_client reads an answer before saving).
REQ=$'GET /resume HTTP/1.1\r\nHost: shop.lab.test\r\nConnection: close\r\n\r\n'
# resume VERSION_OPTION [SNI [PORT [OPTION]]]: the second connection's
# transcript; the first is for shop.lab.test, the second for SNI (default the
# same), both to PORT (default $GW), both with OPTION (e.g. -no_ticket).
resume() {
    local port=${3:-$GW} opts=("$1")
    [ -z "${4:-}" ] || opts+=("$4")
    rm -f "$T/sess"
    printf '%s' "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername shop.lab.test \
        -CAfile "$CERTS/ca.crt" "${opts[@]}" -ign_eof -sess_out "$T/sess" >"$T/s1.out" 2>&1 || true
    [ -s "$T/sess" ] || { echo "no session saved"; return 0; }
    printf '%s' "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
        -servername "${2:-shop.lab.test}" -CAfile "$CERTS/ca.crt" "${opts[@]}" -ign_eof \
        -sess_in "$T/sess" 2>&1 || true
}
out=$(resume -tls1_2)
assert_contains "TLS 1.2 session ticket resumes" "$out" "Reused, TLSv1.2"
out=$(resume -tls1_3)
assert_contains "TLS 1.3 session ticket resumes" "$out" "Reused, TLSv1.3"
assert_contains "...and the resumed connection is served" "$out" '"path":"/resume"'
assert_not_contains "...and ends with close_notify, not a bare FIN" "$out" "unexpected eof"

# Without tickets: the TLS 1.2 session-id cache (a client that sends no
# ticket extension), and TLS 1.3 with session_tickets off (stateful tickets,
# which name a session in the same cache).
out=$(resume -tls1_2 shop.lab.test "$GW" -no_ticket)
assert_contains "TLS 1.2 session id (no ticket) resumes" "$out" "Reused, TLSv1.2"
out=$(resume -tls1_3 shop.lab.test "$GWSF")
assert_contains "TLS 1.3 stateful ticket (session_tickets: false) resumes" "$out" "Reused, TLSv1.3"
out=$(resume -tls1_2 shop.lab.test "$GWSF")
assert_contains "TLS 1.2 with session_tickets: false resumes by session id" "$out" "Reused, TLSv1.2"

# A session resumes only under the name it was made for (RFC 6066, 3): a
# session from shop.lab.test offered with SNI BANK.lab.test gets a full
# handshake and the bank's certificate, however it came back. The same name
# in another case does resume.
for way in "TLS 1.2 ticket:-tls1_2:$GW:" "TLS 1.3 ticket:-tls1_3:$GW:" \
    "TLS 1.2 session id:-tls1_2:$GW:-no_ticket" "TLS 1.3 stateful ticket:-tls1_3:$GWSF:" \
    "TLS 1.2 session id, tickets off:-tls1_2:$GWSF:"; do
    IFS=: read -r label v port opt <<<"$way"
    out=$(resume "$v" BANK.lab.test "$port" "$opt")
    assert_contains "$label: a session made for another SNI is not resumed" "$out" "New, TLSv1."
    assert_contains "... and the full handshake shows that name's certificate" "$out" \
        "CN = bank.lab.test"
    out=$(resume "$v" SHOP.LAB.test "$port" "$opt")
    assert_contains "... the same name in capitals resumes" "$out" "Reused, TLSv1."
done

# A TLS 1.3 client uses a ticket once (RFC 8446, C.4): a resumed connection
# must bring a new one, or every other reconnection is a full handshake.
rm -f "$T/sess" "$T/sess2" "$T/sess3"
for step in "-sess_out $T/sess" "-sess_in $T/sess -sess_out $T/sess2" "-sess_in $T/sess2 -sess_out $T/sess3"; do
    # shellcheck disable=SC2086 # $step is a list of options
    printf '%s' "$REQ" | timeout 10 openssl s_client -connect "127.0.0.1:$GW" -servername shop.lab.test \
        -CAfile "$CERTS/ca.crt" -tls1_3 -ign_eof $step >"$T/chain.out" 2>&1 || true
done
assert_contains "TLS 1.3: the ticket a resumed connection got resumes again" "$(cat "$T/chain.out")" \
    "Reused, TLSv1.3"

# min_version "1.3"
out=$(sclient "$GW13" -servername www.lab.test -tls1_2)
check "min_version 1.3: TLS 1.2 refused" refused "$out"
out=$(sclient "$GW13" -servername www.lab.test)
check "min_version 1.3: TLS 1.3 accepted" established "$out"

# The access log says what TLS the client used.
body=$(gw_curl shop.lab.test "$GW" /logged --tlsv1.2 --tls-max 1.2)
wait_access '"path":"/logged"'
line=$(access_line '"path":"/logged"')
assert_contains "access log: SNI" "$line" '"sni":"shop.lab.test"'
assert_contains "access log: TLS version" "$line" '"tls_version":"TLSv1.2"'
assert_contains "access log: cipher" "$line" '"tls_cipher":"ECDHE-'

# A client that connects and never sends a ClientHello is closed at timeouts.handshake.
out=$($TLSCLIENT raw --port "$GW" --data '' --timeout 6 || true)
assert_eq "no ClientHello: closed by the gateway" true "$(json_get "$out" closed)"
ms=$(json_get "$out" ms)
check "...after timeouts.handshake (1000 ms; took ${ms} ms)" test "${ms:-0}" -ge 900 -a "${ms:-0}" -lt 5000
wait_for_log "$T/gateway.log" "TLS handshake not complete in time" 5 || true
check "...and logged" grep -q 'TLS handshake not complete in time' "$T/gateway.log"

end_gateway
finish
