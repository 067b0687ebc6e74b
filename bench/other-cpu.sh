#!/usr/bin/env bash
# What a passthrough hop costs the *other* CPU (never part of CI). In the
# bench/peers setup the gateway has CPU 0 to itself while the TLS origin and
# wrk share CPU 1, and CPU 1 is the one that is saturated: so requests/s
# through a gateway is set by what each request costs on CPU 1, and the
# direct run (wrk straight to the origin) is the limit. This script samples
# CPU 1 with `perf record -C 1` while wrk runs the 1 MiB scenario direct,
# through tlsgate and through HAProxy, and prints CPU 1's time per request,
# split by function, for each: the rows that grow from "direct" to a gateway
# are what the hop adds to the saturated CPU.
#
#   bash bench/other-cpu.sh [TLSGATE [ROUNDS [SECONDS [ROWS]]]]
#   defaults: build/tlsgate (use a Release build), 5 rounds, 5 s per run,
#   15 rows. Rounds interleave direct, tlsgate and HAProxy (even rounds in
#   reverse); each row is the median over the rounds, because one run is
#   worth little on a machine whose speed drifts by 20%: the AES-GCM work,
#   which is the same whatever the path, is a fair yardstick of that drift.
# Environment: OTHER_CPU_PATH (/bytes/1048576) and OTHER_CPU_CONNS (8)
# change the scenario; OTHER_CPU_KEEP=DIR keeps perf.data files there
# (`perf report -i DIR/tlsgate.data -G` shows the call chains).
#
# perf samples the CPU's clock (cpu-clock, the event a virtual machine
# offers), so a row is time on CPU 1 per request in µs, kernel functions
# marked [k]. Sampling slows every run a little, alike.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=$(realpath "${1:-$here/../build/tlsgate}")
rounds=${2:-5} secs=${3:-5} nrows=${4:-15}
path=${OTHER_CPU_PATH:-/bytes/1048576} conns=${OTHER_CPU_CONNS:-8}
. "$here/lib.sh"
for tool in perf haproxy wrk; do
    command -v "$tool" >/dev/null ||
        { echo "other-cpu.sh: needs $tool (apt-get install linux-perf haproxy wrk)" >&2; exit 1; }
done
keep=${OTHER_CPU_KEEP:-$tmp}
mkdir -p "$keep"
C=$tmp/certs
bash "$here/../certs/mkcerts.sh" "$C" >/dev/null

origin_port=$(free_port)
taskset -c 1 "$tlsgate" origin --name web1 --https 127.0.0.1:"$origin_port" \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>/dev/null &
pids+=($!)
tg_port=$(free_port)
tlsgate_cfg pt "$tg_port" "$origin_port" >"$tmp/tlsgate.yaml"
taskset -c 0 "$tlsgate" -c "$tmp/tlsgate.yaml" 2>"$tmp/tlsgate.log" &
pids+=($!)
hp_port=$(free_port)
haproxy_cfg pt "$hp_port" "$origin_port" >"$tmp/haproxy.cfg"
taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
pids+=($!)
for p in "$origin_port" "$tg_port" "$hp_port"; do wait_port "$p"; done

runs=(direct:"$origin_port" tlsgate:"$tg_port" haproxy:"$hp_port")
echo "# other-cpu.sh: CPU 1 (origin + wrk), $rounds rounds, wrk -t1 -c$conns ${secs}s https://…$path"
for round in $(seq 1 "$rounds"); do
    order=("${runs[@]}")
    [ $((round % 2)) -eq 1 ] || order=("${runs[2]}" "${runs[1]}" "${runs[0]}")
    for run in "${order[@]}"; do
        name=${run%%:*} port=${run#*:}
        url=https://127.0.0.1:$port$path
        taskset -c 1 wrk -t1 -c"$conns" -d1s "$url" >/dev/null 2>&1 || true # warm-up
        perf record -q -g -C 1 -e cpu-clock -F 999 -o "$keep/$name.data" -- \
            taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$url" >"$tmp/$name.wrk" 2>/dev/null
        rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$name.wrk")
        echo "round $round $name: $rps req/s"
        # one line per function: run, round, µs of CPU 1 per request, [k] or [.], name
        perf report -i "$keep/$name.data" --no-children --sort sym --stdio 2>/dev/null |
            awk -v run="$name" -v round="$round" -v rps="$rps" '$1 ~ /%$/ {
                pct = $1; sub(/%/, "", pct); kind = $2; $1 = ""; $2 = ""; sub(/^ +/, "")
                if ($0 ~ /^0x/) $0 = "(unresolved: libcrypto, mostly AES-GCM)"
                print run "\t" round "\t" pct * 1e4 / rps "\t" kind "\t" $0 }' >>"$tmp/rows"
    done
done

echo
echo "CPU 1 µs per request, medians over $rounds rounds; the functions that grow most from direct to tlsgate:"
python3 - "$tmp/rows" "$rounds" "$nrows" <<'PY'
import collections, statistics, sys
rows, rounds, nrows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
us = collections.defaultdict(float)  # (function, run, round) -> µs
kind, total = {}, collections.defaultdict(float)
for line in open(rows):
    run, rnd, v, k, fn = line.rstrip("\n").split("\t")
    us[fn, run, rnd] += float(v)
    total[run, rnd] += float(v)
    kind[fn] = k
runs = ("direct", "tlsgate", "haproxy")
med = lambda f: {r: statistics.median(f(r, str(i)) for i in range(1, rounds + 1)) for r in runs}
print("%9s %9s %9s  %s" % (*runs, "function"))
t = med(lambda r, i: total[r, i])
print("%9.0f %9.0f %9.0f  (all)" % tuple(t[r] for r in runs))
table = [(fn, med(lambda r, i: us.get((fn, r, i), 0.0))) for fn in kind]
table.sort(key=lambda e: e[1]["tlsgate"] - e[1]["direct"], reverse=True)
for fn, m in table[:nrows]:
    print("%9.1f %9.1f %9.1f  %s %s" % (*(m[r] for r in runs), kind[fn], fn))
PY
