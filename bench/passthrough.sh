#!/usr/bin/env bash
# Passthrough measurements (never part of CI): throughput, connections/s and
# gateway CPU per relayed request through tlsgate, beside a direct connection
# to the origin and beside HAProxy `mode tcp` doing the same job.
#
#   bash bench/passthrough.sh [path/to/tlsgate]      (default build/tlsgate)
#
# Gateway pinned to CPU 0 with one worker; origin and load generator on CPU 1.
# Gateway CPU per request = (utime+stime of the gateway over the run) / requests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
secs=${BENCH_SECONDS:-10}
idle_n=${BENCH_IDLE:-2000}
for p in wrk haproxy curl python3; do
    command -v $p >/dev/null || { apt-get install -y -qq wrk haproxy curl python3 >/dev/null; break; }
done
. "$here/lib.sh"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
ORIGIN=${BENCH_ORIGIN:-19443} GW=${BENCH_GW:-18443} HAP=${BENCH_HAP:-18444}
taskset -c 1 "$tlsgate" origin --name web1 --https 127.0.0.1:$ORIGIN --cert "$tmp/certs/web.crt" \
    --key "$tmp/certs/web.key" --quiet 2>"$tmp/origin.log" &
pids+=($!)
cat >"$tmp/gw.yaml" <<YAML
workers: 1
max_connections: 8000
admin: { listen: "" }
log: { level: warn, access: "off" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$ORIGIN } ]
listeners:
  - { name: pt, bind: 127.0.0.1:$GW, mode: passthrough, default_backend: web }
YAML
taskset -c 0 "$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
gw_pid=$!
pids+=($gw_pid)
haproxy_cfg pt "$HAP" "$ORIGIN" >"$tmp/haproxy.cfg"
taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
hap_pid=$!
pids+=($hap_pid)
wait_port $ORIGIN && wait_port $GW && wait_port $HAP || { for f in "$tmp"/*.log; do echo "== $f"; tail -n 5 "$f"; done; exit 1; }

# run_wrk NAME PORT PID EXTRA...: prints "req/s cpu_us_per_req"
run_wrk() {
    local port=$1 pid=$2 t0 t1 out reqs
    shift 2
    t0=$([ "$pid" = - ] && echo 0 || ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" "$@" "https://127.0.0.1:$port/healthz" 2>&1)
    t1=$([ "$pid" = - ] && echo 0 || ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%.0f %.1f\n", r / s, (d / hz) * 1e6 / r }'
}

# transfer PORT: MB/s for a 1 GiB download
transfer() {
    curl -sk -o /dev/null -w '%{speed_download}' "https://127.0.0.1:$1/bytes/1073741824" |
        awk '{printf "%.0f", $1 / 1048576}'
}

# idle_mem PORT PID: KiB of RSS per idle relayed connection (handshake done)
idle_mem() {
    local before after
    before=$(rss_kib "$2")
    coproc IDLE { python3 "$here/idle_conns.py" "$1" "$idle_n"; }
    read -r _ <&"${IDLE[0]}"
    after=$(rss_kib "$2")
    echo >&"${IDLE[1]}"
    wait "$IDLE_PID" 2>/dev/null || true
    awk -v a="$after" -v b="$before" -v n="$idle_n" 'BEGIN { printf "%.1f", (a - b) / n }'
}

echo "# tlsgate passthrough benchmark — $(date -u +%Y-%m-%d) — $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
echo "| measurement | direct to origin | tlsgate passthrough | haproxy mode tcp |"
echo "|---|---|---|---|"
read -r d_rps _ < <(run_wrk $ORIGIN -)
read -r t_rps t_cpu < <(run_wrk $GW $gw_pid)
read -r h_rps h_cpu < <(run_wrk $HAP $hap_pid)
echo "| keep-alive GET /healthz, req/s (32 conns) | $d_rps | $t_rps | $h_rps |"
echo "| gateway CPU µs per request | — | $t_cpu | $h_cpu |"
read -r d_cps _ < <(run_wrk $ORIGIN - -H 'Connection: close')
read -r t_cps t_ccpu < <(run_wrk $GW $gw_pid -H 'Connection: close')
read -r h_cps h_ccpu < <(run_wrk $HAP $hap_pid -H 'Connection: close')
echo "| new TLS connection per request, conn/s | $d_cps | $t_cps | $h_cps |"
echo "| gateway CPU µs per connection | — | $t_ccpu | $h_ccpu |"
d_mb=$(transfer $ORIGIN); t_mb=$(transfer $GW); h_mb=$(transfer $HAP)
echo "| 1 GiB download, MiB/s | $d_mb | $t_mb ($(awk -v a="$t_mb" -v b="$d_mb" 'BEGIN{printf "%.0f", 100*a/b}')% of direct) | $h_mb |"
echo "| RSS per idle relayed connection, KiB ($idle_n conns) | — | $(idle_mem $GW $gw_pid) | $(idle_mem $HAP $hap_pid) |"
