#!/usr/bin/env bash
# Every committed example configs/*.yaml is valid as shipped: from a tree
# whose certs/out holds the lab certificates (what `certs/mkcerts.sh
# certs/out` makes), `tlsgate --check` accepts it. Then passthrough.yaml,
# lab.yaml, mixed.yaml and mixed-loopback.yaml are served for real (ports rewritten to free ones,
# nothing else changed) in front of lab origins laid out as
# configs/lab-origins.sh does, and each listener answers with the view its
# mode gives: through passthrough the client sees the origin's own
# certificate and the origin sees the client's TLS session; through offload
# the client sees the gateway's certificate and the origin plain HTTP with
# X-Forwarded-For; bridge re-encrypts and refuses servers it cannot verify;
# http listeners redirect to https. (offload.yaml and bridge.yaml are served
# by test_offload_bridge_examples.)
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/tree/certs"
ln -s "$CERTS" "$T/tree/certs/out"

n=0
for f in "$TG_SRC"/configs/*.yaml; do
    rc=0
    msg=$(cd "$T/tree" && "$TLSGATE" -c "$f" --check 2>&1) || rc=$?
    assert_eq "configs/$(basename "$f") passes --check" 0 "$rc"
    [ "$rc" -eq 0 ] || echo "$msg" | head -20 | sed 's/^/# /'
    n=$((n + 1))
done
check "at least the five documented examples are there ($n)" test "$n" -ge 5
for f in passthrough offload bridge mixed lab; do
    check "configs/$f.yaml exists" test -f "$TG_SRC/configs/$f.yaml"
done
check "configs/lab-origins.sh parses" bash -n "$TG_SRC/configs/lab-origins.sh"

# Free ports for every fixed port the examples use.
declare -A port
for p in 8443 8444 8445 8080 8543 8544 8580 9900 9901 9902 9903 \
    9080 9081 9082 9443 9444 9445 9446 9447; do
    port[$p]=$(free_port)
done
rewrite() { # rewrite FILE: the config with free ports, workers 1, loopback binds
    local s=() p
    for p in "${!port[@]}"; do s+=(-e "s/:$p\\b/:${port[$p]}/g"); done
    sed "${s[@]}" -e 's/^workers: [0-9]*/workers: 1/' -e 's/0\.0\.0\.0:/127.0.0.1:/' "$1"
}

# The lab origins of configs/lab-origins.sh, on the rewritten ports.
start_origin web1 --https "127.0.0.1:${port[9443]}" --cert "$CERTS/web.crt" --key "$CERTS/web.key" \
    --http "127.0.0.1:${port[9080]}"
start_origin web2 --https "127.0.0.1:${port[9444]}" --cert "$CERTS/web2.crt" --key "$CERTS/web2.key" \
    --http "127.0.0.1:${port[9081]}"
start_https_origin bank1 "${port[9445]}" bank
start_https_origin bank2 "${port[9446]}" bank
start_https_origin wrong "${port[9447]}" wrong

# serve NAME PORT...: runs the rewritten configs/NAME.yaml from the tree.
serve() {
    local name=$1 p
    shift
    rewrite "$TG_SRC/configs/$name.yaml" >"$T/tree/$name.yaml"
    (cd "$T/tree" && exec "$TLSGATE" -c "$name.yaml" >"$T/gateway.out" 2>"$T/gateway.log") &
    GATEWAY_PID=$!
    TG_PIDS+=("$GATEWAY_PID")
    for p in "$@"; do
        wait_port "${port[$p]}" || bail "$name.yaml does not start (port $p)"
    done
}

# subject SNI PORT: the subject of the certificate the client is shown.
subject() {
    openssl s_client -connect "127.0.0.1:$2" -servername "$1" -CAfile "$CERTS/ca.crt" \
        </dev/null 2>/dev/null | sed -n 's/^subject=.*CN *= *//p' || true
}

# tls_field JSON KEY: a field of the origin's "tls" object ("" when tls is null).
tls_field() { json_path "$1" "(d.get('tls') or {}).get('$2')"; }

# Binding 127.0.0.7 as the client address (all of 127/8 is loopback on Linux)
# shows whose address the origin and the rules see.
ALT=127.0.0.7
if curl -s --max-time 2 --interface "$ALT" -o /dev/null "http://127.0.0.1:${port[9080]}/healthz"; then
    HAVE_ALT=1
else
    HAVE_ALT=0
    echo "# cannot bind $ALT: client-address checks use 127.0.0.1"
    ALT=127.0.0.1
fi

# ---------------------------------------------------------------- passthrough.yaml
serve passthrough 8443
PT=${port[8443]}
body=$(gw_curl bank.lab.test "$PT" /account)
assert_eq "passthrough.yaml: bank.lab.test reaches bank1" bank1 "$(json_get "$body" origin)"
assert_eq "passthrough.yaml: bank1 terminated the client's TLS (SNI bank.lab.test)" bank.lab.test \
    "$(tls_field "$body" sni)"
body=$(gw_curl shop.lab.test "$PT" /)
check "passthrough.yaml: *.lab.test reaches web ($(json_get "$body" origin))" \
    grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
assert_eq "passthrough.yaml: the client sees bank's own certificate" bank.lab.test \
    "$(subject bank.lab.test "$PT")"
end_gateway

# ---------------------------------------------------------------- lab.yaml
serve lab 8443 8444 8445 8080 9900
PT=${port[8443]} OFF=${port[8444]} BR=${port[8445]} HT=${port[8080]}

# passthrough: the origin's certificate, the client's own TLS session at the origin.
cn=$(subject www.lab.test "$PT")
check "lab passthrough: the client sees an origin's certificate ($cn)" \
    grep -qE '^web2?\.lab\.test$' <<<"$cn"
body=$(gw_curl www.lab.test "$PT" /hello)
check "lab passthrough: served by web1 or web2 ($(json_get "$body" origin))" \
    grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
assert_eq "lab passthrough: the origin holds the client's TLS session" www.lab.test \
    "$(tls_field "$body" sni)"
assert_eq "lab passthrough: no X-Forwarded-For (the gateway can't add one)" "" \
    "$(origin_header "$body" X-Forwarded-For)"
wait_access '"listener":"passthrough"'
line=$(access_line '"listener":"passthrough"' '"sni":"www.lab.test"')
assert_contains "lab passthrough: the access log shows the offered ALPN" "$line" '"alpn":['
assert_contains "lab passthrough: ...and TLS versions" "$line" '"tls_versions":["TLSv1.3"'
assert_not_contains "lab passthrough: ...and never a path" "$line" '"path"'

# passthrough to the bank: source stickiness, PROXY v2 tells the client address.
body=$(gw_curl bank.lab.test "$PT" / --interface "$ALT")
first=$(json_get "$body" origin)
check "lab passthrough: bank.lab.test reaches bank1 or bank2 ($first)" grep -qE '^bank[12]$' <<<"$first"
assert_eq "lab passthrough: PROXY v2 gives the bank the client's address" "$ALT" \
    "$(json_path "$body" "d['proxy']['src'].rsplit(':',1)[0]")"
same=1
for i in 1 2 3 4; do
    o=$(json_get "$(gw_curl bank.lab.test "$PT" / --interface "$ALT")" origin)
    [ "$o" = "$first" ] || same=0
done
assert_eq "lab passthrough: balance source keeps one client on one bank server" 1 "$same"

# offload: the gateway's certificate, plain HTTP with X-Forwarded-For at the origin.
assert_eq "lab offload: the client sees the gateway's certificate" gateway.lab.test \
    "$(subject www.lab.test "$OFF")"
body=$(gw_curl www.lab.test "$OFF" /hello --interface "$ALT")
check "lab offload: served by web1 or web2" grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
assert_eq "lab offload: the origin got plain HTTP" "" "$(json_get "$body" tls)"
assert_eq "lab offload: X-Forwarded-For is the client" "$ALT" "$(origin_header "$body" X-Forwarded-For)"
code=$(gw_curl www.lab.test "$OFF" /admin -o /dev/null -w '%{http_code}')
assert_eq "lab offload: /admin denied by the gateway" 403 "$code"
loc=$(gw_curl old.lab.test "$OFF" /x?q=1 -o /dev/null -w '%{http_code} %{redirect_url}')
assert_eq "lab offload: old.lab.test redirected" "301 https://www.lab.test:$OFF/x?q=1" "$loc"
jar=$T/jar
hdrs=$(gw_curl www.lab.test "$OFF" / -c "$jar" -D - -o /dev/null)
assert_contains "lab offload: sets the sticky cookie" "$hdrs" "TLSGW="
assert_contains "lab offload: adds HSTS" "$hdrs" "Strict-Transport-Security: max-age=31536000"
first=$(json_get "$(gw_curl www.lab.test "$OFF" / -b "$jar")" origin)
same=1
for i in 1 2 3; do
    o=$(json_get "$(gw_curl www.lab.test "$OFF" / -b "$jar")" origin)
    [ "$o" = "$first" ] || same=0
done
assert_eq "lab offload: the cookie keeps the client on $first" 1 "$same"
wait_access '"sticky":"hit"'
assert_contains "lab offload: the access log says sticky hit" \
    "$(access_line '"listener":"offload"' '"sticky":"hit"')" '"server":"'"$first"'"'

# bridge: the gateway's certificate, TLS again (verified) to the origin.
assert_eq "lab bridge: the client sees the gateway's certificate" gateway.lab.test \
    "$(subject www.lab.test "$BR")"
body=$(gw_curl www.lab.test "$BR" /hello)
check "lab bridge: served by web1 or web2" grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
assert_eq "lab bridge: the origin got TLS from the gateway (SNI web.lab.test)" web.lab.test \
    "$(tls_field "$body" sni)"
assert_eq "lab bridge: ...and X-Forwarded-For" 127.0.0.1 "$(origin_header "$body" X-Forwarded-For)"
code=$(gw_curl wrong.lab.test "$BR" / -o /dev/null -w '%{http_code}')
assert_eq "lab bridge: a server certificate for another name is refused (502)" 502 "$code"
# (the lab origin waits silently for a request line on its plain port, so the
# handshake runs into timeouts.connect: 503; a server that answers gives 502)
code=$(gw_curl plain.lab.test "$BR" / -o /dev/null -w '%{http_code}')
check "lab bridge: a server that does not speak TLS is refused ($code)" grep -qE '^50[23]$' <<<"$code"
body=$(gw_curl unverified.lab.test "$BR" /)
assert_eq "lab bridge: verify: false accepts the same server" wrong "$(json_get "$body" origin)"

# http: redirect to the offload listener.
loc=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' \
    --resolve "www.lab.test:$HT:127.0.0.1" "http://www.lab.test:$HT/x?q=1" || true)
assert_eq "lab http: redirects to https" "301 https://www.lab.test:$OFF/x?q=1" "$loc"

# admin: per-listener counters.
metrics=$(curl -sS --max-time 10 "http://127.0.0.1:${port[9900]}/metrics" || true)
for l in passthrough offload bridge http; do
    assert_contains "lab admin: /metrics counts listener $l" "$metrics" "listener=\"$l\""
done
end_gateway

# ---------------------------------------------------------------- mixed.yaml
# mixed.yaml: one port, bank.lab.test relayed, the other names terminated
# in-process by a bind: none listener. mixed-loopback.yaml: the same site
# through a loopback hop with PROXY v2 (the comparison in the workbook).
for variant in mixed mixed-loopback; do
if [ "$variant" = mixed ]; then
    serve mixed 8543 8580 9903
else
    end_gateway
    serve mixed-loopback 8543 8544 8580 9903
fi
PUB=${port[8543]} HT=${port[8580]}

# bank.lab.test: end to end, the bank's own certificate, the client's address by PROXY v2.
assert_eq "$variant: bank.lab.test shows the bank's own certificate" bank.lab.test \
    "$(subject bank.lab.test "$PUB")"
body=$(gw_curl bank.lab.test "$PUB" /account --interface "$ALT")
check "$variant: bank.lab.test served by bank1 or bank2 ($(json_get "$body" origin))" \
    grep -qE '^bank[12]$' <<<"$(json_get "$body" origin)"
assert_eq "$variant: the bank terminated the client's TLS" bank.lab.test "$(tls_field "$body" sni)"
assert_eq "$variant: the bank learns the client address from PROXY v2" "$ALT" \
    "$(json_path "$body" "d['proxy']['src'].rsplit(':',1)[0]")"
assert_eq "$variant: no X-Forwarded-For on the end-to-end site" "" \
    "$(origin_header "$body" X-Forwarded-For)"

# www.lab.test: offloaded (in-process, or through the loopback hop).
assert_eq "$variant: www.lab.test shows the gateway-held shop certificate" shop.lab.test \
    "$(subject www.lab.test "$PUB")"
assert_eq "$variant: other names get the gateway's *.lab.test certificate" gateway.lab.test \
    "$(subject old.lab.test "$PUB")"
body=$(gw_curl www.lab.test "$PUB" /cart --interface "$ALT")
check "$variant: www.lab.test served by web1 or web2" \
    grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
assert_eq "$variant: the shop origin got plain HTTP" "" "$(json_get "$body" tls)"
assert_eq "$variant: X-Forwarded-For is the real client" "$ALT" \
    "$(origin_header "$body" X-Forwarded-For)"
if [ "$HAVE_ALT" = 1 ]; then
    code=$(gw_curl www.lab.test "$PUB" /admin/ --interface "$ALT" -o /dev/null -w '%{http_code}')
    assert_eq "$variant: /admin from another address is denied" 403 "$code"
fi
body=$(gw_curl www.lab.test "$PUB" /admin/)
assert_eq "$variant: /admin from 127.0.0.1 is forwarded" /admin/ "$(json_get "$body" path)"
loc=$(gw_curl old.lab.test "$PUB" /a?b=1 -o /dev/null -w '%{http_code} %{redirect_url}')
assert_eq "$variant: old.lab.test redirected" "301 https://www.lab.test:$PUB/a?b=1" "$loc"
hdrs=$(gw_curl www.lab.test "$PUB" / -c "$T/jar2" -D - -o /dev/null)
assert_contains "$variant: sticky cookie set" "$hdrs" "TLSGW="
assert_contains "$variant: ...for an hour" "$hdrs" "Max-Age=3600"
gw_curl www.lab.test "$PUB" /sticky-$variant -b "$T/jar2" >/dev/null
wait_access "\"path\":\"/sticky-$variant\""
assert_contains "$variant: the cookie is honoured" \
    "$(access_line '"listener":"shop"' "\"path\":\"/sticky-$variant\"")" '"sticky":"hit"'
line=$(access_line '"listener":"public"' '"sni":"www.lab.test"')
if [ "$variant" = mixed ]; then
    assert_contains "$variant: the public listener logged a hand-off, not a relay" "$line" \
        '"terminate":"shop","backend":null,"server":null'
    assert_contains "$variant: ... with result terminated" "$line" '"result":"terminated"'
else
    assert_contains "$variant: the public listener logged the hop to the offload listener" \
        "$line" '"backend":"shop_offload"'
fi

# http listener: 308 to https on the public port.
loc=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' \
    --resolve "www.lab.test:$HT:127.0.0.1" "http://www.lab.test:$HT/cart?id=1" || true)
assert_eq "$variant: http redirects to https" "308 https://www.lab.test:$PUB/cart?id=1" "$loc"
done
end_gateway
finish
