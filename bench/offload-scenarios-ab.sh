#!/usr/bin/env bash
# Interleaved A/B rounds of the bench/peers offload scenarios (never part of
# CI): several tlsgate binaries (offload with cookie stickiness, as in
# bench/peers) and HAProxy in turn, each pinned to CPU 0 with one thread; the
# origin and wrk on CPU 1; every port from the kernel (no fixed ports). Per
# run: "NAME SCENARIO REQ/S CPU-US-PER-REQ"; then medians, and per-round
# CPU ratios against HAProxy (pairs share the machine's noise of the moment).
#
#   bash bench/offload-scenarios-ab.sh SCENARIO ROUNDS SECONDS NAME=TLSGATE...
#   SCENARIO: ka (wrk -c32 GET /healthz), 1mib (wrk -c8 GET /bytes/1048576),
#             new (wrk -c32, Connection: close)
#   AB_HAPROXY=0 leaves HAProxy out.
#
# Example: bash bench/offload-scenarios-ab.sh 1mib 7 3 old=/tmp/old/tlsgate new=build-perf/tlsgate
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scen=$1 rounds=$2 secs=$3
shift 3
. "$here/lib.sh"
C=$tmp/certs
bash "$here/../certs/mkcerts.sh" "$C" >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

origin_port=$(free_port)
taskset -c 1 "${1#*=}" origin --name web1 --http 127.0.0.1:"$origin_port" --quiet 2>/dev/null &
pids+=($!)
declare -A PORT PID
names=()
for nv in "$@"; do
    n=${nv%%=*} bin=${nv#*=} p=$(free_port)
    names+=("$n")
    PORT[$n]=$p
    tlsgate_cfg off "$p" "$origin_port" "$C" >"$tmp/$n.yaml"
    taskset -c 0 "$bin" -c "$tmp/$n.yaml" 2>"$tmp/$n.log" &
    PID[$n]=$!
    pids+=($!)
done
if [ "${AB_HAPROXY:-1}" = 1 ]; then
    p=$(free_port)
    names+=(haproxy)
    PORT[haproxy]=$p
    cat "$C/gateway.crt" "$C/gateway.key" >"$tmp/gateway.pem"
    haproxy_cfg off "$p" "$origin_port" "$tmp/gateway.pem" >"$tmp/haproxy.cfg"
    taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
    PID[haproxy]=$!
    pids+=($!)
fi
wait_port "$origin_port"
for n in "${names[@]}"; do wait_port "${PORT[$n]}"; done

case $scen in
ka) path=/healthz conns=32 extra=() ;;
new) path=/healthz conns=32 extra=(-H "Connection: close") ;;
1mib) path=/bytes/1048576 conns=8 extra=() ;;
*) echo "unknown scenario $scen" >&2; exit 2 ;;
esac
for r in $(seq 1 "$rounds"); do
    for n in "${names[@]}"; do
        t0=$(ticks "${PID[$n]}")
        out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${extra[@]}" "https://127.0.0.1:${PORT[$n]}$path" 2>&1)
        t1=$(ticks "${PID[$n]}")
        req=$(awk '/requests in/ {print $1}' <<<"$out")
        awk -v n="$n" -v s="$scen" -v r="$req" -v d=$((t1 - t0)) -v secs="$secs" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { printf "%s %s %.0f %.2f\n", n, s, r / secs, d * 1e6 / hz / r }'
    done
done | tee "$tmp/rows"
python3 - "$tmp/rows" <<'PY'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) >= 4]
by = collections.defaultdict(list)
for n, _, rps, us in rows:
    by[n].append((float(rps), float(us)))
for n, v in by.items():
    print(f"median {n}: {statistics.median(x[0] for x in v):.0f} req/s, "
          f"{statistics.median(x[1] for x in v):.2f} us/req")
names = list(by)
if "haproxy" in names:
    k = len(names)
    for n in names:
        if n == "haproxy":
            continue
        rounds = [dict((x[0], float(x[3])) for x in rows[i:i + k]) for i in range(0, len(rows), k)]
        ratios = [r[n] / r["haproxy"] for r in rounds if n in r and "haproxy" in r]
        print(f"{n}/haproxy CPU per request, median of paired rounds: {statistics.median(ratios):.2f}")
PY
