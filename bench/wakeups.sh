#!/usr/bin/env bash
# Why requests/s through a gateway follows how often it and the origin sleep
# (never part of CI). The bench/peers passthrough setup (offload with
# WAKEUPS_ROLE=off), tlsgate and HAProxy only: the gateway pinned to CPU 0,
# the origin and wrk on CPU 1, interleaved rounds. Per run, beside
# requests/s and the gateway's CPU µs per request, it prints:
#   sleeps/req   the gateway's voluntary context switches (all its threads)
#                per request: how often it emptied its work and blocked in
#                epoll_wait, so that the next byte had to wake it up
#   origin µs    the origin's CPU µs per request. In passthrough CPU 1 is
#                saturated, so this (with wrk's share) is what sets
#                requests/s; it includes the kernel's cost of waking the
#                gateway on the other CPU
#   origin zz    the origin's sleeps per request: how often the gateway's
#                deliveries found it with nothing left to do (each one woken
#                by the gateway's CPU with an interrupt)
# then medians over the rounds.
#
#   bash bench/wakeups.sh [SCENARIO [ROUNDS [SECONDS [TLSGATE]]]]
#   SCENARIO: ka (32 connections, GET /healthz, default) | 1mib (8, /bytes/1048576)
#             | new (32, a new TLS connection per request)
#   defaults: ka 7 4 build/tlsgate (use a Release build)
#   NAME=VAR=VALUE@PATH as extra arguments adds more tlsgate runs, e.g.
#   copy=TLSGATE_RELAY=copy@build-rel/tlsgate
# WAKEUPS_ROLE=off runs both gateways in offload (bench/peers' offload
# configurations, plain HTTP to the origin) instead of passthrough.
# WAKEUPS_CONNS and WAKEUPS_PATH override the scenario's connections and path
# (e.g. WAKEUPS_CONNS=1 WAKEUPS_PATH=/bytes/16777216 for one bulk stream).
# WAKEUPS_AWAKE=1 also runs a SCHED_IDLE busy loop on CPU 0: CPU 0 then never
# halts, so waking the gateway no longer means waking an idle (virtual) CPU.
# The loop takes only time nothing else wants; the gateway's own CPU figures
# grow a little (it is preempted back and forth), the other columns show
# what an idle CPU's wake-up cost.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scen=${1:-ka} rounds=${2:-7} secs=${3:-4}
tlsgate=$(realpath "${4:-$here/../build/tlsgate}")
shift $(($# < 4 ? $# : 4))
. "$here/lib.sh"
command -v haproxy >/dev/null && command -v wrk >/dev/null ||
    { echo "wakeups.sh: needs haproxy and wrk (apt-get install haproxy wrk)" >&2; exit 1; }
close=()
case $scen in
ka) path=/healthz conns=32 ;;
new) path=/healthz conns=32 close=(-H "Connection: close") ;;
1mib) path=/bytes/1048576 conns=8 ;;
*) echo "wakeups.sh: scenario is ka, new or 1mib" >&2; exit 1 ;;
esac
conns=${WAKEUPS_CONNS:-$conns} path=${WAKEUPS_PATH:-$path}
role=${WAKEUPS_ROLE:-pt}
case $role in pt | off) ;; *) echo "wakeups.sh: WAKEUPS_ROLE is pt or off" >&2; exit 1 ;; esac
C=$tmp/certs
bash "$here/../certs/mkcerts.sh" "$C" >/dev/null
cat "$C/gateway.crt" "$C/gateway.key" >"$tmp/gateway.pem"

# CPU ticks (user + system) and voluntary context switches of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sleeps() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'; }
hz=$(getconf CLK_TCK)

if [ "${WAKEUPS_AWAKE:-0}" = 1 ]; then
    chrt -i 0 taskset -c 0 sh -c 'while :; do :; done' &
    pids+=($!)
fi

origin_port=$(free_port)
origin_listen=(--https 127.0.0.1:"$origin_port" --cert "$C/web.crt" --key "$C/web.key")
[ "$role" = off ] && origin_listen=(--http 127.0.0.1:"$origin_port")
taskset -c 1 "$tlsgate" origin --name web1 "${origin_listen[@]}" --quiet 2>/dev/null &
origin_pid=$!
pids+=($!)

declare -A PORT PID
names=()
start_tlsgate() { # NAME ENV PATH
    local p
    p=$(free_port)
    names+=("$1")
    PORT[$1]=$p
    tlsgate_cfg "$role" "$p" "$origin_port" "$C" >"$tmp/$1.yaml"
    # shellcheck disable=SC2086 # $2 is zero or one VAR=VALUE word
    taskset -c 0 env $2 "$3" -c "$tmp/$1.yaml" 2>"$tmp/$1.log" &
    PID[$1]=$!
    pids+=($!)
}
start_tlsgate tlsgate "" "$tlsgate"
for extra in "$@"; do
    spec=${extra#*=}
    start_tlsgate "${extra%%=*}" "${spec%@*}" "$(realpath "${spec#*@}")"
done
p=$(free_port)
names+=(haproxy)
PORT[haproxy]=$p
haproxy_cfg "$role" "$p" "$origin_port" "$tmp/gateway.pem" >"$tmp/haproxy.cfg"
taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
PID[haproxy]=$!
pids+=($!)
wait_port "$origin_port"
for n in "${names[@]}"; do wait_port "${PORT[$n]}"; done

echo "# wakeups.sh $scen ($role): $rounds rounds x ${secs}s, wrk -t1 -c$conns https://…$path${WAKEUPS_AWAKE:+, WAKEUPS_AWAKE=$WAKEUPS_AWAKE}"
printf '%-10s %5s %9s %9s %10s %10s %10s\n' gateway round req/s "gw µs" sleeps/req "origin µs" "origin zz"
for round in $(seq 1 "$rounds"); do
    order=("${names[@]}")
    if [ $((round % 2)) -eq 0 ]; then # even rounds in reverse: no gateway always goes first
        order=()
        for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("${names[$i]}"); done
    fi
    for n in "${order[@]}"; do
        g0=$(ticks "${PID[$n]}") s0=$(sleeps "${PID[$n]}") o0=$(ticks "$origin_pid") z0=$(sleeps "$origin_pid")
        taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${close[@]}" "https://127.0.0.1:${PORT[$n]}$path" \
            >"$tmp/wrk.out" 2>&1 || true
        g1=$(ticks "${PID[$n]}") s1=$(sleeps "${PID[$n]}") o1=$(ticks "$origin_pid") z1=$(sleeps "$origin_pid")
        req=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
        awk -v n="$n" -v r="$round" -v q="${req:-0}" -v s="$secs" -v hz="$hz" \
            -v g=$((g1 - g0)) -v z=$((s1 - s0)) -v o=$((o1 - o0)) -v oz=$((z1 - z0)) 'BEGIN {
                if (q == 0) { printf "%-10s %5d  no requests\n", n, r; exit }
                printf "%-10s %5d %9.0f %9.1f %10.2f %10.1f %10.2f\n", n, r, q / s,
                    g * 1e6 / hz / q, z / q, o * 1e6 / hz / q, oz / q }'
    done
done | tee "$tmp/rows"
echo
echo "medians:"
awk 'NF == 7 && $2 ~ /^[0-9]+$/ { print }' "$tmp/rows" | sort -k1,1 -s | awk '
    function median(a, k,   i, j, t) {
        for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    function flush() {
        if (k) printf "%-10s %5s %9.0f %9.1f %10.2f %10.1f %10.2f\n", name, "", median(q, k), median(g, k), median(z, k), median(o, k), median(y, k)
        k = 0; delete q; delete g; delete z; delete o; delete y
    }
    $1 != name { flush(); name = $1 }
    { k++; q[k] = $3; g[k] = $4; z[k] = $5; o[k] = $6; y[k] = $7 }
    END { flush() }'
