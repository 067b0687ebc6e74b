#!/usr/bin/env bash
# Interleaved keep-alive A/B rounds (never part of CI): tlsgate offload and
# HAProxy offload (ssl crt + mode http) in turn in front of the same origin,
# each pinned to CPU 0 with one thread; wrk and the origin on CPU 1. Prints
# req/s and gateway CPU µs per request for each round.
#
#   bash bench/offload-ab.sh [path/to/tlsgate]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); tg=${1:-$here/../build/tlsgate}; tmp=$(mktemp -d); C=$tmp/certs; bash "$here/../certs/mkcerts.sh" "$C" >/dev/null
pids=(); trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null||true; done; rm -rf $tmp' EXIT
taskset -c 1 $tg origin --name o --http 127.0.0.1:23080 --quiet 2>/dev/null & pids+=($!)
cat > $tmp/g.yaml <<Y
workers: 1
admin: { listen: "" }
log: { level: warn, access: "off" }
backends: [ { name: p, servers: [ { name: o, address: 127.0.0.1:23080 } ] } ]
listeners:
  - { name: off, bind: 127.0.0.1:23443, mode: offload, tls: { certificates: [ { cert: $C/gateway.crt, key: $C/gateway.key } ] }, http: { default_backend: p } }
Y
taskset -c 0 $tg -c $tmp/g.yaml 2>/dev/null & g=$!; pids+=($g)
cat $C/gateway.crt $C/gateway.key > $tmp/g.pem
printf 'global\n nbthread 1\ndefaults\n mode http\n timeout connect 3s\n timeout client 60s\n timeout server 60s\nfrontend f\n bind 127.0.0.1:23444 ssl crt %s alpn http/1.1\n default_backend b\nbackend b\n http-reuse always\n server o 127.0.0.1:23080\n' $tmp/g.pem > $tmp/h.cfg
taskset -c 0 haproxy -f $tmp/h.cfg -db 2>/dev/null & h=$!; pids+=($h)
sleep 1
run() { local t0 t1 r; t0=$(awk '{print $14+$15}' /proc/$2/stat); r=$(taskset -c 1 wrk -t1 -c32 -d5s https://127.0.0.1:$1/healthz | awk '/requests in/{print $1}'); t1=$(awk '{print $14+$15}' /proc/$2/stat); awk -v r=$r -v d=$((t1-t0)) 'BEGIN{printf "%d req/s %.1f us/req\n", r/5, d*10000/r}'; }
for i in $(seq 1 "${BENCH_ROUNDS:-5}"); do echo "round $i tlsgate: $(run 23443 $g)"; echo "round $i haproxy: $(run 23444 $h)"; done
