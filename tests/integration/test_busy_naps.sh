#!/usr/bin/env bash
# Busy naps (src/core/worker.c worker_run): once a loop turn had I/O for two
# sessions or more, a worker whose poll comes up empty naps on its own timer
# instead of blocking. With naps made long (200 ms) to be visible: a lone
# client is never held by them, concurrent clients are all served, and after
# the load the worker blocks again instead of napping on (it sleeps rarely).
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port)
start_https_origin web1 "$P_WEB" web
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
backends: [ { name: web, servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ] } ]
listeners: [ { name: pt, bind: 127.0.0.1:$GW, mode: passthrough, default_backend: web } ]
YAML

# get_n N: N requests for /healthz on one connection; prints the bytes received.
get_n() {
    local urls=() i
    for i in $(seq 1 "$1"); do urls+=("https://web.lab.test:$GW/healthz"); done
    curl -sS --max-time 60 --cacert "$CERTS/ca.crt" --resolve web.lab.test:$GW:127.0.0.1 \
        "${urls[@]}" | wc -c
}

# worker_sleeps: voluntary context switches of the gateway's threads.
worker_sleeps() {
    cat /proc/"$GATEWAY_PID"/task/*/status | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n}'
}

TLSGATE_BUSY_NAP=200000 start_gateway "$T/gw.yaml" "$GW"
one=$(get_n 1)
check "[nap 200 ms] a first request is answered ($one bytes)" test "$one" -gt 0
t0=$(date +%s%N)
got=$(get_n 20)
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "[nap 200 ms] a lone client gets 20 answers on one connection" $((one * 20)) "$got"
if [ "$ms" -lt 2000 ]; then
    pass "[nap 200 ms] ... none held by a nap (${ms} ms for 20)"
else
    fail "[nap 200 ms] a lone client's 20 requests took ${ms} ms (napped?)"
fi
pids=()
for i in $(seq 1 8); do
    get_n 25 >"$T/conc.$i" &
    pids+=($!)
done
wait "${pids[@]}"
total=0
for i in $(seq 1 8); do total=$((total + $(cat "$T/conc.$i"))); done
assert_eq "[nap 200 ms] 8 concurrent clients get all 200 answers" $((one * 200)) "$total"
stop_gateway

# The default nap (20 µs): after concurrent load the worker blocks again.
start_gateway "$T/gw.yaml" "$GW"
pids=()
for i in $(seq 1 8); do
    get_n 200 >/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
s0=$(worker_sleeps)
sleep 1 # not a wait for a condition: the window in which an idle worker is watched
s1=$(worker_sleeps)
if [ $((s1 - s0)) -lt 100 ]; then
    pass "an idle worker blocks again after concurrent load ($((s1 - s0)) wake-ups in 1 s)"
else
    fail "an idle worker woke $((s1 - s0)) times in 1 s after the load: still napping"
fi
stop_gateway
finish
