#!/usr/bin/env bash
# Is `tlsgate compare`'s load generator ever the bottleneck? (never part of CI)
# The same listener, the same connections and threads, driven in turn by
# `wrk` and by `tlsgate compare`, interleaved rounds (wrk, compare, wrk, ...);
# prints req/s per round, the medians and the ratio compare/wrk (issue 4 asks
# for >= 1.00 on this 2-core machine). Nothing is pinned: as a student runs it.
#
#   bash bench/compare-vs-wrk.sh [path/to/tlsgate]   (default build/tlsgate; use a Release build)
#   BENCH_ROUNDS=5 BENCH_SECONDS=5 BENCH_CONNS=16 BENCH_THREADS=2 BENCH_MODES="passthrough offload"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=$(realpath "${1:-$here/../build/tlsgate}")
rounds=${BENCH_ROUNDS:-5}
secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-16}
threads=${BENCH_THREADS:-2}
modes=${BENCH_MODES:-passthrough offload}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
. "$here/lib.sh"
C=$tmp/certs
bash "$here/../certs/mkcerts.sh" "$C" >/dev/null
O_HTTP=$(free_port) O_HTTPS=$(free_port) PT=$(free_port) OFF=$(free_port) ADMIN=$(free_port)
"$tlsgate" origin --name web1 --http 127.0.0.1:$O_HTTP --https 127.0.0.1:$O_HTTPS \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>"$tmp/origin.log" &
pids+=($!)
cat >"$tmp/gw.yaml" <<Y
workers: 1
admin: { listen: "127.0.0.1:$ADMIN" }
log: { level: warn, access: "off" }
backends:
  - { name: plain, servers: [ { name: o, address: "127.0.0.1:$O_HTTP" } ] }
  - { name: tls, servers: [ { name: o, address: "127.0.0.1:$O_HTTPS" } ] }
listeners:
  - { name: passthrough, bind: "127.0.0.1:$PT", mode: passthrough, default_backend: tls }
  - name: offload
    bind: "127.0.0.1:$OFF"
    mode: offload
    tls: { certificates: [ { cert: "$C/gateway.crt", key: "$C/gateway.key" } ] }
    http: { default_backend: plain }
Y
"$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
pids+=($!)
for p in $O_HTTPS $PT $OFF $ADMIN; do
    wait_port $p || { echo "compare-vs-wrk: nothing listens on port $p" >&2; tail -n 5 "$tmp"/*.log; exit 1; }
done

port_of() { case $1 in passthrough) echo $PT ;; offload) echo $OFF ;; esac; }
run_wrk() {
    wrk -t"$threads" -c"$conns" -d"${secs}s" "https://127.0.0.1:$1/healthz" |
        awk '/^Requests\/sec/{printf "%d\n", $2}'
}
run_compare() {
    "$tlsgate" compare -c "$tmp/gw.yaml" --listener "$1" --connections "$conns" \
        --threads "$threads" --duration $((secs * 1000)) --path /healthz --quiet |
        awk -v l="$1" '$1 == l && $3 ~ /^[0-9]+$/ {printf "%d\n", $4; exit}'
}
median() { sort -n | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

printf '%-12s %5s %10s %10s %7s\n' mode round wrk compare ratio
for mode in $modes; do
    : >"$tmp/$mode.wrk"; : >"$tmp/$mode.cmp"
    for r in $(seq "$rounds"); do
        w=$(run_wrk "$(port_of $mode)")
        c=$(run_compare "$mode")
        echo "$w" >>"$tmp/$mode.wrk"; echo "$c" >>"$tmp/$mode.cmp"
        printf '%-12s %5d %10s %10s %7.3f\n' "$mode" "$r" "$w" "$c" "$(echo "$c $w" | awk '{print $1/$2}')"
    done
done
echo
echo "| listener | wrk req/s (median) | compare req/s (median) | compare/wrk |"
echo "|---|---|---|---|"
for mode in $modes; do
    w=$(median <"$tmp/$mode.wrk"); c=$(median <"$tmp/$mode.cmp")
    echo "| $mode | $w | $c | $(echo "$c $w" | awk '{printf "%.3f", $1/$2}') |"
done
echo "($rounds rounds of ${secs}s, $conns connections, $threads threads, keep-alive GET /healthz)"
