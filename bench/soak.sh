#!/usr/bin/env bash
# Soak (never part of CI): mixed passthrough and offload load for
# SOAK_SECONDS (default 600) while the configuration is reloaded every
# SOAK_RELOAD_MS and one backend server flaps every SOAK_FLAP_MS. Ends with
# no failed request and flat memory, or says what went wrong.
#
#   bash bench/soak.sh [path/to/tlsgate]               the soak (Release build)
#   SOAK_VALGRIND=1 SOAK_SECONDS=60 bash bench/soak.sh build/tlsgate
#                                                      shorter, gateway under valgrind
#
# Setup: two origins (web1, web2; `tlsgate origin`, HTTP and HTTPS). The
# gateway (2 workers) has a passthrough listener in front of their HTTPS ports
# (health: tls) and an offload listener with cookie stickiness in front of
# their HTTP ports (health: http). Two config files alternate at each reload:
# they differ in the offload rules (/api/ goes to web1 only, or to both) and in
# the passthrough SNI route, so every reload changes the route table.
#
# Load (wrk, each for the whole run): offload keep-alive (16 connections),
# offload new connection per request (8), passthrough keep-alive (16),
# passthrough new connection per request (8).
#
# Flapping: SIGUSR1 puts web2 in maintenance (its listening sockets close: new
# connections are refused, open ones go on) and back. The gateway must retry
# refused connects on web1, mark web2 down after `fall` checks, and up again
# after `rise`, without a failed request.
#
# Pass criteria: zero wrk errors (socket errors and non-2xx/3xx) in every
# load; gateway RSS growth between the first sample after warm-up (60 s, or a
# fifth of the run) and the end under 5%; with SOAK_VALGRIND=1: no error and
# no definitely/indirectly lost block in valgrind's report.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=$(realpath "${1:-$here/../build/tlsgate}")
secs=${SOAK_SECONDS:-600}
reload_ms=${SOAK_RELOAD_MS:-5000}
flap_ms=${SOAK_FLAP_MS:-7000}
vg=${SOAK_VALGRIND:-0}
check_ms=300 # health check interval and timeout; valgrind makes the gateway ~20x slower
[ "$vg" = 1 ] && check_ms=1500
for p in wrk curl python3; do
    command -v $p >/dev/null || { apt-get install -y -qq wrk curl python3 >/dev/null; break; }
done
[ "$vg" = 1 ] && ! command -v valgrind >/dev/null && apt-get install -y -qq valgrind >/dev/null

tmp=$(mktemp -d /tmp/tlsgate-soak.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${SOAK_KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
wait_port() {
    for _ in $(seq 1 600); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
C=$tmp/certs
W1H=23080 W1S=23443 W2H=23081 W2S=23444 PT=23501 OFF=23502 ADMIN=23900
"$tlsgate" origin --name web1 --http 127.0.0.1:$W1H --https 127.0.0.1:$W1S \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>"$tmp/web1.log" &
pids+=($!)
"$tlsgate" origin --name web2 --http 127.0.0.1:$W2H --https 127.0.0.1:$W2S \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>"$tmp/web2.log" &
web2=$!
pids+=($web2)

# config VARIANT: the gateway configuration; a and b differ in their route tables.
config() {
    local api_backend=plain_one pt_route=tls_all
    [ "$1" = b ] && api_backend=plain_all pt_route=tls_one
    cat <<YAML
workers: 2
admin: { listen: 127.0.0.1:$ADMIN }
log: { level: info, access: "off" }
backends:
  - name: plain_all
    health: { check: http, interval: $check_ms, timeout: $check_ms, rise: 2, fall: 2 }
    servers:
      - { name: web1, address: 127.0.0.1:$W1H }
      - { name: web2, address: 127.0.0.1:$W2H }
  - name: plain_one
    health: { check: http, interval: $check_ms, timeout: $check_ms, rise: 2, fall: 2 }
    servers: [ { name: web1, address: 127.0.0.1:$W1H } ]
  - name: tls_all
    health: { check: tls, sni: web.lab.test, interval: $check_ms, timeout: $check_ms, rise: 2, fall: 2 }
    servers:
      - { name: web1, address: 127.0.0.1:$W1S }
      - { name: web2, address: 127.0.0.1:$W2S }
  - name: tls_one
    health: { check: tls, sni: web.lab.test, interval: $check_ms, timeout: $check_ms, rise: 2, fall: 2 }
    servers: [ { name: web1, address: 127.0.0.1:$W1S } ]
listeners:
  - name: pt
    bind: 127.0.0.1:$PT
    mode: passthrough
    sni_routes: [ { sni: web.lab.test, backend: $pt_route } ]
    default_backend: tls_all
  - name: off
    bind: 127.0.0.1:$OFF
    mode: offload
    tls: { certificates: [ { cert: $C/gateway.crt, key: $C/gateway.key } ] }
    http:
      sticky: { cookie: SRV }
      rules:
        - { match: { path_prefix: /api/ }, action: forward, backend: $api_backend }
      default_backend: plain_all
YAML
}
config a >"$tmp/gw.yaml"
"$tlsgate" -c "$tmp/gw.yaml" --check >/dev/null
if [ "$vg" = 1 ]; then
    valgrind --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 --log-file="$tmp/valgrind.log" "$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
else
    "$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
fi
gw=$!
pids+=($gw)
for p in $W1H $W1S $W2H $W2S $PT $OFF; do wait_port $p; done

conns=16
[ "$vg" = 1 ] && conns=4
loads=(off-ka off-new pt-ka pt-new)
start_load() {
    local name=$1 port=$2 c=$3 path=$4 extra=()
    [[ $name == *-new ]] && extra=(-H "Connection: close")
    wrk -t1 -c"$c" -d"${secs}s" --timeout 10s "${extra[@]}" "https://127.0.0.1:$port$path" \
        >"$tmp/$name.wrk" 2>&1 &
    pids+=($!)
    wrk_pids+=($!)
}
wrk_pids=()
start_load off-ka $OFF "$conns" /api/x
start_load off-new $OFF $((conns / 2)) /
start_load pt-ka $PT "$conns" /healthz
start_load pt-new $PT $((conns / 2)) /

t0=$(date +%s%N)
now_ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
warm=$((secs / 5 < 60 ? secs / 5 : 60))
next_reload=$reload_ms next_flap=$flap_ms next_sample=0 variant=a
reloads=0 flaps=0 rss_first="" rss_max=0
echo "t_s,rss_kib" >"$tmp/rss.csv"
while [ "$(now_ms)" -lt $((secs * 1000)) ]; do
    t=$(now_ms)
    if [ "$t" -ge "$next_reload" ]; then
        variant=$([ $variant = a ] && echo b || echo a)
        config $variant >"$tmp/gw.yaml.new" && mv "$tmp/gw.yaml.new" "$tmp/gw.yaml"
        kill -HUP $gw
        reloads=$((reloads + 1))
        next_reload=$((next_reload + reload_ms))
    fi
    if [ "$t" -ge "$next_flap" ]; then
        kill -USR1 $web2
        flaps=$((flaps + 1))
        next_flap=$((next_flap + flap_ms))
    fi
    if [ "$t" -ge "$next_sample" ]; then
        r=$(rss_kib $gw)
        echo "$((t / 1000)),$r" >>"$tmp/rss.csv"
        [ "$r" -gt "$rss_max" ] && rss_max=$r
        [ -z "$rss_first" ] && [ "$t" -ge $((warm * 1000)) ] && rss_first=$r
        next_sample=$((next_sample + 10000))
    fi
    sleep 0.1 # pacing of the reload/flap schedule, not a wait for a condition
done
wait "${wrk_pids[@]}" || true
rss_last=$(rss_kib $gw)
# web2 back in service if the last flap left it in maintenance
[ $((flaps % 2)) = 1 ] && kill -USR1 $web2

fail=0
printf '\n# tlsgate soak — %s — %s s, reload every %s ms, web2 flapping every %s ms%s\n\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$secs" "$reload_ms" "$flap_ms" "$([ "$vg" = 1 ] && echo ', under valgrind')"
echo "| load | requests | req/s | errors |"
echo "|---|---|---|---|"
for l in "${loads[@]}"; do
    f=$tmp/$l.wrk
    reqs=$(awk '/requests in/ {print $1}' "$f")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    errs=$(awk '/Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} /Non-2xx/ {s += $5} END {print s + 0}' "$f")
    echo "| $l | ${reqs:-?} | ${rps:-?} | $errs |"
    [ -n "$reqs" ] && [ "$errs" = 0 ] || fail=1
done
downs=$(grep -c "is DOWN" "$tmp/gw.log" || true)
ups=$(grep -c "is UP" "$tmp/gw.log" || true)
applied=$(grep -ci "reload.*applied\|configuration.*reloaded" "$tmp/gw.log" || true)
rejected=$(grep -ci "reload.*fail\|keeping the running" "$tmp/gw.log" || true)
echo
echo "reloads sent $reloads, logged applied $applied, rejected $rejected; web2 flaps $flaps; health: $downs DOWN, $ups UP transitions logged"
growth=$(awk -v a="$rss_first" -v b="$rss_last" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "gateway RSS: ${rss_first} KiB after warm-up (${warm} s), ${rss_last} KiB at the end, max ${rss_max} KiB: growth ${growth}% (samples in rss.csv)"
awk -v g="$growth" 'BEGIN { exit !(g < 5) }' || { echo "RSS grew 5% or more"; fail=1; }
[ "$rejected" = 0 ] || { echo "a reload was rejected"; fail=1; }
if [ "$vg" = 1 ]; then
    kill -TERM $gw
    rc=0
    wait $gw || rc=$?
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks" "$tmp/valgrind.log" || true
    [ "$rc" = 0 ] || { echo "valgrind exit code $rc (99 = errors or leaks)"; fail=1; }
fi
if [ "$fail" = 0 ]; then echo "soak: PASS"; else
    echo "soak: FAIL"
    tail -n 30 "$tmp/gw.log"
    exit 1
fi
