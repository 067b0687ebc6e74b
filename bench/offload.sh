#!/usr/bin/env bash
# Offload and bridge measurements (never part of CI): requests/s and gateway
# CPU per request through tlsgate offload, bridge and passthrough listeners in
# front of the same origin, beside HAProxy terminating TLS (`ssl crt` +
# `mode http`) in front of the same origin.
#
#   bash bench/offload.sh [path/to/tlsgate]      (default build/tlsgate)
#
# Gateway pinned to CPU 0 with one worker / one thread; origin and load
# generators on CPU 1. Gateway CPU per request = (utime+stime of the gateway
# over the run) / requests.
#
# Two loads:
#   keep-alive  wrk, 32 connections, small response (GET /healthz)
#   full handshake per request: `openssl s_time -new` (never resumes a
#               session, unlike wrk, which resumes on reconnect), 4 clients
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
secs=${BENCH_SECONDS:-8}
for p in wrk haproxy curl openssl; do
    command -v $p >/dev/null || { apt-get install -y -qq wrk haproxy curl openssl >/dev/null; break; }
done
. "$here/lib.sh"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
C=$tmp/certs
O_HTTP=21080 O_HTTPS=21443 PT=21444 OFF=21445 BR=21446 HAP=21447
taskset -c 1 "$tlsgate" origin --name web1 --http 127.0.0.1:$O_HTTP --https 127.0.0.1:$O_HTTPS \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>"$tmp/origin.log" &
pids+=($!)
cat >"$tmp/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { level: warn, access: "off" }
backends:
  - name: plain
    servers: [ { name: web1, address: 127.0.0.1:$O_HTTP } ]
  - name: tls
    tls: { ca: $C/ca.crt, sni: web.lab.test }
    servers: [ { name: web1, address: 127.0.0.1:$O_HTTPS } ]
listeners:
  - { name: pt, bind: 127.0.0.1:$PT, mode: passthrough, default_backend: tls }
  - name: off
    bind: 127.0.0.1:$OFF
    mode: offload
    tls: { certificates: [ { cert: $C/gateway.crt, key: $C/gateway.key } ] }
    http: { default_backend: plain }
  - name: br
    bind: 127.0.0.1:$BR
    mode: bridge
    tls: { certificates: [ { cert: $C/gateway.crt, key: $C/gateway.key } ] }
    http: { default_backend: tls }
YAML
taskset -c 0 "$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
gw_pid=$!
pids+=($gw_pid)
cat "$C/gateway.crt" "$C/gateway.key" >"$tmp/gateway.pem"
cat >"$tmp/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    timeout connect 3s
    timeout client 60s
    timeout server 60s
frontend off
    bind 127.0.0.1:$HAP ssl crt $tmp/gateway.pem alpn http/1.1
    default_backend plain
backend plain
    http-reuse always
    server web1 127.0.0.1:$O_HTTP
CFG
taskset -c 0 haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
hap_pid=$!
pids+=($hap_pid)
for p in $O_HTTP $O_HTTPS $PT $OFF $BR $HAP; do
    wait_port $p || { for f in "$tmp"/*.log; do echo "== $f"; tail -n 5 "$f"; done; exit 1; }
done

# keepalive PORT PID: "req/s cpu_us_per_req" with wrk
keepalive() {
    local t0 t1 out reqs
    t0=$(ticks "$2")
    out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" "https://127.0.0.1:$1/healthz" 2>&1)
    t1=$(ticks "$2")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$reqs" -v s="$secs" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%.0f %.1f\n", r / s, (d / hz) * 1e6 / r }'
}

# handshakes PORT PID: "req/s cpu_us_per_req", a full TLS handshake per request
handshakes() {
    local t0 t1 total=0 n i
    t0=$(ticks "$2")
    for i in 1 2 3 4; do
        taskset -c 1 openssl s_time -connect 127.0.0.1:"$1" -new -www /healthz -time "$secs" \
            >"$tmp/stime.$i" 2>&1 &
    done
    wait $(jobs -p | tail -n 4) 2>/dev/null || true
    t1=$(ticks "$2")
    for i in 1 2 3 4; do
        n=$(awk '/connections in/ && /real seconds/ {print $1; exit}' "$tmp/stime.$i")
        total=$((total + ${n:-0}))
    done
    awk -v r="$total" -v s="$secs" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { if (r == 0) { print "0 -"; exit } printf "%.0f %.0f\n", r / s, (d / hz) * 1e6 / r }'
}

echo "# tlsgate offload/bridge benchmark — $(date -u +%Y-%m-%d) — $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# haproxy $(haproxy -v | head -1 | awk '{print $3}'), $(openssl version)"
echo
echo "| load | tlsgate passthrough | tlsgate offload | tlsgate bridge | haproxy offload |"
echo "|---|---|---|---|---|"
read -r a_r a_c < <(keepalive $PT $gw_pid)
read -r b_r b_c < <(keepalive $OFF $gw_pid)
read -r c_r c_c < <(keepalive $BR $gw_pid)
read -r d_r d_c < <(keepalive $HAP $hap_pid)
echo "| keep-alive req/s (wrk, 32 conns) | $a_r | $b_r | $c_r | $d_r |"
echo "| keep-alive gateway CPU µs/request | $a_c | $b_c | $c_c | $d_c |"
read -r a_r a_c < <(handshakes $PT $gw_pid)
read -r b_r b_c < <(handshakes $OFF $gw_pid)
read -r c_r c_c < <(handshakes $BR $gw_pid)
read -r d_r d_c < <(handshakes $HAP $hap_pid)
echo "| full handshake per request, req/s (s_time -new ×4) | $a_r | $b_r | $c_r | $d_r |"
echo "| full handshake gateway CPU µs/request | $a_c | $b_c | $c_c | $d_c |"
echo
echo "Passthrough's handshake is done by the origin (CPU 1), so its gateway CPU is only the relay."
