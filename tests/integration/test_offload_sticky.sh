#!/usr/bin/env bash
# Cookie stickiness on an offload listener: the first answer sets a cookie
# naming a server (an HMAC, not the name), and every request carrying it goes
# to that server while cookieless requests spread over all three. When that
# server dies, the next request goes elsewhere and gets a fresh cookie
# (sticky "reset" in the access log); a forged cookie is a reset too.
. "$(dirname "$0")/lib.sh"

make_certs
P1=$(free_port) P2=$(free_port) P3=$(free_port) GW=$(free_port)
start_http_origin s1 "$P1"
start_http_origin s2 "$P2"
start_http_origin s3 "$P3"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
timeouts: { connect: 1000 }
backends:
  - name: web
    balance: roundrobin
    servers:
      - { name: s1, address: 127.0.0.1:$P1 }
      - { name: s2, address: 127.0.0.1:$P2 }
      - { name: s3, address: 127.0.0.1:$P3 }
listeners:
  - name: shop
    bind: 127.0.0.1:$GW
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http:
      sticky: { cookie: SHOPSRV }
      default_backend: web
YAML
start_gateway "$T/gw.yaml" "$GW"

JAR=$T/jar
# get PATH [curl options]: one request on its own connection; headers in $T/h.
get() {
    local path=$1
    shift
    : >"$T/h"
    gw_curl shop.lab.test "$GW" "$path" -D "$T/h" "$@" || true
}
# origin_of BODY: the "origin" field of an origin's JSON echo (no python: used in loops).
origin_of() { if [[ $1 =~ \"origin\":\"([^\"]*)\" ]]; then echo "${BASH_REMATCH[1]}"; fi; }
set_cookie() { { grep -i '^set-cookie:' "$T/h" || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }

body=$(get /first -c "$JAR")
first=$(json_get "$body" origin)
[ -n "$first" ] || bail "no answer through the gateway: $body"
sc=$(set_cookie)
check "first answer sets the sticky cookie: NAME=<32 hex>; Path=/; Secure; HttpOnly; SameSite=Lax" \
    grep -qE '^SHOPSRV=[0-9a-f]{32}; Path=/; Secure; HttpOnly; SameSite=Lax$' <<<"$sc"
value=$(sed -E 's/^SHOPSRV=([0-9a-f]{32}).*/\1/' <<<"$sc")
assert_not_contains "the cookie does not name the server" "$sc" "$first"
wait_access '"path":"/first"'
assert_contains "first request logged as a sticky miss" "$(access_line '"path":"/first"')" \
    '"sticky":"miss"'

seen=""
for i in $(seq 1 20); do
    body=$(get "/again/$i" -b "$JAR" -c "$JAR")
    seen+="$(origin_of "$body") "
done
assert_eq "20 requests with the cookie all reach the same server" \
    "$(printf "$first %.0s" $(seq 1 20))" "$seen"
assert_eq "a hit sets no new cookie" "" "$(set_cookie)"
wait_access '"path":"/again/20"'
assert_eq "each of them is logged as a hit" 20 \
    "$(access_lines | grep -F '"path":"/again/' | grep -cF '"sticky":"hit"')"

spread=""
for i in $(seq 1 6); do
    spread+="$(origin_of "$(get "/nocookie/$i")")"$'\n'
done
assert_eq "without the cookie, requests spread over the 3 servers" 3 \
    "$(sort -u <<<"$spread" | grep -c .)"

# Kill the server the cookie names.
pid_var="ORIGIN_PID_$first"
kill -TERM "${!pid_var}"
wait "${!pid_var}" 2>/dev/null || true
body=$(get /after-kill -b "$JAR" -c "$JAR")
second=$(json_get "$body" origin)
check "after its server died, the request is answered by another server ($second)" \
    test -n "$second" -a "$second" != "$first"
sc2=$(set_cookie)
check "...with a new Set-Cookie" grep -qE '^SHOPSRV=[0-9a-f]{32};' <<<"$sc2"
value2=$(sed -E 's/^SHOPSRV=([0-9a-f]{32}).*/\1/' <<<"$sc2")
check "...naming another server" test -n "$value2" -a "$value2" != "$value"
wait_access '"path":"/after-kill"'
assert_contains "...logged as sticky reset" "$(access_line '"path":"/after-kill"')" '"sticky":"reset"'
body=$(get /after-kill-2 -b "$JAR" -c "$JAR")
assert_eq "the new cookie sticks to the new server" "$second" "$(json_get "$body" origin)"

# A forged cookie (right shape, wrong MAC) and garbage: both a reset.
body=$(get /forged -H 'Cookie: SHOPSRV=0123456789abcdef0123456789abcdef')
check "forged cookie: still answered" test -n "$(json_get "$body" origin)"
check "forged cookie: replaced by a valid one" grep -qE '^SHOPSRV=[0-9a-f]{32};' <<<"$(set_cookie)"
wait_access '"path":"/forged"'
assert_contains "forged cookie logged as sticky reset" "$(access_line '"path":"/forged"')" \
    '"sticky":"reset"'
get /garbage -H 'Cookie: other=1; SHOPSRV=../../etc; x=2' >/dev/null
wait_access '"path":"/garbage"'
assert_contains "garbage cookie logged as sticky reset" "$(access_line '"path":"/garbage"')" \
    '"sticky":"reset"'
body=$(get /other-cookies -H 'Cookie: a=1; b=2')
wait_access '"path":"/other-cookies"'
assert_contains "other cookies only: a miss" "$(access_line '"path":"/other-cookies"')" \
    '"sticky":"miss"'
assert_eq "the client's cookies reach the server unchanged" "a=1; b=2" "$(origin_header "$body" cookie)"

end_gateway
finish
