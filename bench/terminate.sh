#!/usr/bin/env bash
# In-process hand-off cost (never part of CI): one offload listener "shop",
# reached (A) on its own port and (B) through a passthrough listener's
# "terminate: shop" route on another port, in the same gateway process.
# Interleaved rounds A B A B ..., each load in turn; prints req/s and gateway
# CPU µs/request per round, then the medians and the ratio B/A.
#
#   bash bench/terminate.sh [path/to/tlsgate]     (default build/tlsgate; use a Release build)
#   BENCH_ROUNDS=5 BENCH_SECONDS=6 bash bench/terminate.sh build-rel/tlsgate
#
# Gateway pinned to CPU 0 with one worker; origin and load generators on
# CPU 1. Gateway CPU per request = (utime+stime of the gateway over the run)
# / requests, from /proc/PID/stat.
#
# Loads:
#   keep-alive   wrk, 32 connections, GET /healthz (one hand-off per connection)
#   conn/request wrk, 128 connections, "Connection: close": a new TCP connection
#                and a resumed TLS handshake per request (wrk reuses sessions),
#                so the hand-off (ClientHello read, route, replay) is per request
#   full hs      openssl s_time -new, 4 clients: a full handshake per request
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
for p in wrk openssl taskset; do
    command -v $p >/dev/null || { echo "terminate.sh: needs $p" >&2; exit 1; }
done
. "$here/lib.sh"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
C=$tmp/certs
O=$(free_port) OWN=$(free_port) PT=$(free_port)
taskset -c 1 "$tlsgate" origin --name web1 --http 127.0.0.1:$O --quiet 2>"$tmp/origin.log" &
pids+=($!)
cat >"$tmp/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { level: warn, access: "off" }
backends:
  - name: plain
    servers: [ { name: web1, address: 127.0.0.1:$O } ]
listeners:
  - name: front
    bind: 127.0.0.1:$PT
    mode: passthrough
    sni_routes: [ { sni: "*.lab.test", terminate: shop } ]
    default_terminate: shop
  - name: shop
    bind: 127.0.0.1:$OWN
    mode: offload
    tls: { certificates: [ { cert: $C/gateway.crt, key: $C/gateway.key } ] }
    http: { default_backend: plain }
YAML
taskset -c 0 "$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
gw=$!
pids+=($gw)
for p in $O $OWN $PT; do
    wait_port $p || { tail -n 5 "$tmp"/*.log; exit 1; }
done

# The URL host: www.lab.test when it resolves (the passthrough port then
# routes on a real SNI through sni_routes), else 127.0.0.1 (default_terminate).
host=127.0.0.1
getent hosts www.lab.test >/dev/null && host=www.lab.test

# wrk_run PORT [wrk options]: "req/s cpu_us_per_req".
wrk_run() {
    local port=$1 t0 t1 out reqs
    shift
    t0=$(ticks $gw)
    out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" "$@" "https://$host:$port/healthz" 2>&1)
    t1=$(ticks $gw)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="${reqs:-0}" -v s="$secs" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { if (r == 0) { print "0 0"; exit } printf "%.0f %.1f\n", r / s, (d / hz) * 1e6 / r }'
}

# stime_run PORT: "req/s cpu_us_per_req", a full handshake per request, 4 clients.
stime_run() {
    local t0 t1 total=0 n i
    t0=$(ticks $gw)
    for i in 1 2 3 4; do
        taskset -c 1 openssl s_time -connect 127.0.0.1:"$1" -new -www /healthz -time "$secs" \
            >"$tmp/stime.$i" 2>&1 &
    done
    wait $(jobs -p | tail -n 4) 2>/dev/null || true
    t1=$(ticks $gw)
    for i in 1 2 3 4; do
        n=$(awk '/connections in/ && /real seconds/ {print $1; exit}' "$tmp/stime.$i")
        total=$((total + ${n:-0}))
    done
    awk -v r="$total" -v s="$secs" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { if (r == 0) { print "0 0"; exit } printf "%.0f %.0f\n", r / s, (d / hz) * 1e6 / r }'
}

echo "# tlsgate terminate hand-off benchmark — $(date -u +%Y-%m-%d) — $(nproc) CPUs," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $(openssl version); $rounds interleaved rounds of ${secs}s; A = own port, B = via passthrough"
echo "# wrk URL host $host (SNI); s_time sends no SNI (default_terminate)"
echo
printf '%-14s %-5s %-2s %10s %12s\n' load round AB "req/s" "CPU µs/req"
declare -A R
for load in keepalive close fullhs; do
    for i in $(seq 1 "$rounds"); do
        for side in A B; do
            port=$OWN
            [ $side = B ] && port=$PT
            case $load in
            keepalive) read -r r c < <(wrk_run $port) ;;
            close) read -r r c < <(wrk_run $port -c128 -H "Connection: close") ;;
            fullhs) read -r r c < <(stime_run $port) ;;
            esac
            printf '%-14s %-5s %-2s %10s %12s\n' $load $i $side "$r" "$c"
            R[$load.$side.r]+="$r "
            R[$load.$side.c]+="$c "
        done
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| load | A own port req/s | B via passthrough req/s | B/A | A CPU µs/req | B CPU µs/req | B/A |"
echo "|---|---|---|---|---|---|---|"
for load in keepalive close fullhs; do
    ar=$(median <<<"${R[$load.A.r]}") br=$(median <<<"${R[$load.B.r]}")
    ac=$(median <<<"${R[$load.A.c]}") bc=$(median <<<"${R[$load.B.c]}")
    awk -v l=$load -v ar="$ar" -v br="$br" -v ac="$ac" -v bc="$bc" 'BEGIN {
        printf "| %s | %.0f | %.0f | %.3f | %.1f | %.1f | %.3f |\n", l, ar, br,
            (ar > 0 ? br / ar : 0), ac, bc, (ac > 0 ? bc / ac : 0) }'
done
