#!/usr/bin/env bash
# The committed examples configs/offload.yaml and configs/bridge.yaml are
# valid as shipped: run from a tree whose certs/out holds the lab
# certificates (what `certs/mkcerts.sh` makes), `tlsgate --check` accepts
# them. Then each is served for real (ports and addresses rewritten to free
# ones, nothing else changed) and answers through lab origins.
. "$(dirname "$0")/lib.sh"

make_certs
mkdir -p "$T/tree/certs"
ln -s "$CERTS" "$T/tree/certs/out"

for f in offload bridge; do
    rc=0
    msg=$(cd "$T/tree" && "$TLSGATE" -c "$TG_SRC/configs/$f.yaml" --check 2>&1) || rc=$?
    assert_eq "configs/$f.yaml passes --check" 0 "$rc"
    [ "$rc" -eq 0 ] || echo "$msg" | head -20 | sed 's/^/# /'
done
rc=0
msg=$(cd "$T" && "$TLSGATE" -c "$TG_SRC/configs/offload.yaml" --check 2>&1) || rc=$?
assert_eq "without the certificates, --check fails" 1 "$rc"
assert_contains "...naming the certificate key and file" "$msg" "cannot read 'certs/out/gateway.crt'"

# Serve offload.yaml: origins on free ports, every address rewritten.
declare -A port
for p in 9080 9081 9082 9443 9444 9445 8444 8080 8445 9901 9902; do port[$p]=$(free_port); done
rewrite() { # rewrite FILE: the config with free ports, workers 1, loopback binds
    local s=() p
    for p in "${!port[@]}"; do s+=(-e "s/:$p\\b/:${port[$p]}/g"); done
    sed "${s[@]}" -e 's/^workers: 0/workers: 1/' -e 's/0\.0\.0\.0:/127.0.0.1:/' "$1"
}
rewrite "$TG_SRC/configs/offload.yaml" >"$T/tree/offload.yaml"
for o in web1:9080 web2:9081 api1:9082; do
    start_http_origin "${o%%:*}" "${port[${o##*:}]}"
done
(cd "$T/tree" && exec "$TLSGATE" -c offload.yaml >"$T/gateway.out" 2>"$T/gateway.log") &
GATEWAY_PID=$!
TG_PIDS+=("$GATEWAY_PID")
wait_port "${port[8444]}" && wait_port "${port[8080]}" || bail "offload.yaml does not start"
GW=${port[8444]}
body=$(gw_curl www.lab.test "$GW" /)
check "offload.yaml: www.lab.test served by web ($(json_get "$body" origin))" \
    grep -qE '^web[12]$' <<<"$(json_get "$body" origin)"
body=$(gw_curl api.lab.test "$GW" /v1/x)
assert_eq "offload.yaml: api.lab.test served by api" api1 "$(json_get "$body" origin)"
code=$(gw_curl www.lab.test "$GW" /admin/ -o /dev/null -w '%{http_code}')
assert_eq "offload.yaml: /admin denied" 403 "$code"
loc=$(curl -sS --max-time 10 -o /dev/null -w '%{redirect_url}' --resolve "www.lab.test:${port[8080]}:127.0.0.1" \
    "http://www.lab.test:${port[8080]}/x?q=1" || true)
assert_eq "offload.yaml: http redirects to https" "https://www.lab.test:${port[8444]}/x?q=1" \
    "${loc/:8444/:${port[8444]}}"
end_gateway

# Serve bridge.yaml against HTTPS origins.
rewrite "$TG_SRC/configs/bridge.yaml" >"$T/tree/bridge.yaml"
for o in sweb1:9443:web sweb2:9444:web2 sbank1:9445:bank; do
    IFS=: read -r name p cert <<<"$o"
    start_https_origin "$name" "${port[$p]}" "$cert"
done
(cd "$T/tree" && exec "$TLSGATE" -c bridge.yaml >"$T/gateway.out" 2>"$T/gateway.log") &
GATEWAY_PID=$!
TG_PIDS+=("$GATEWAY_PID")
wait_port "${port[8445]}" || bail "bridge.yaml does not start"
body=$(gw_curl bank.lab.test "${port[8445]}" /account)
assert_eq "bridge.yaml: bank.lab.test served by bank over TLS" sbank1 "$(json_get "$body" origin)"
assert_eq "bridge.yaml: the origin saw TLS with SNI bank.lab.test" bank.lab.test \
    "$(json_path "$(json_get "$body" tls)" 'd["sni"]')"
body=$(gw_curl www.lab.test "${port[8445]}" /)
check "bridge.yaml: www.lab.test served by web" grep -qE '^sweb[12]$' <<<"$(json_get "$body" origin)"
end_gateway
finish
