#!/usr/bin/env bash
# Instructions per request, tlsgate beside HAProxy, counted by valgrind's
# callgrind (never part of CI). The counts cover user space only: the
# kernel's share of the gateway's CPU (about 60% in offload keep-alive, see
# docs/performance.md) is not in them. But they do not drift with the
# machine's speed as timings do here, so a change to the code shows as a
# change in the count, run after run; and the listing says where they go.
#
#   bash bench/callgrind.sh [TLSGATE [SCENARIO...]]
#   TLSGATE: default build/tlsgate (a Release build; RelWithDebInfo names
#            lines too)
#   SCENARIO: pt-ka   passthrough, keep-alive, GET /healthz
#             pt-new  passthrough, a new TLS connection per request
#             off-ka  offload with cookie stickiness, keep-alive, GET /healthz
#             off-new offload, a new TLS connection per request (resumed)
#             default: all three
# Environment: CALLGRIND_SECONDS (5) of `wrk -t1 -c8` per run, after a
# warm-up that is not counted; CALLGRIND_TOP (10) functions listed per run;
# CALLGRIND_KEEP=DIR keeps the profiles (open them with callgrind_annotate
# or kcachegrind).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=$(realpath "${1:-$here/../build/tlsgate}")
shift || true
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(pt-ka pt-new off-ka off-new)
secs=${CALLGRIND_SECONDS:-5} top=${CALLGRIND_TOP:-10}
. "$here/lib.sh"
for tool in valgrind callgrind_control callgrind_annotate haproxy wrk; do
    command -v "$tool" >/dev/null ||
        { echo "callgrind.sh: needs $tool (apt-get install valgrind haproxy wrk)" >&2; exit 1; }
done
C=$tmp/certs
bash "$here/../certs/mkcerts.sh" "$C" >/dev/null
cat "$C/gateway.crt" "$C/gateway.key" >"$tmp/gateway.pem"

o_http=$(free_port) o_https=$(free_port)
"$tlsgate" origin --name web1 --http 127.0.0.1:"$o_http" --https 127.0.0.1:"$o_https" \
    --cert "$C/web.crt" --key "$C/web.key" --quiet 2>/dev/null &
pids+=($!)
wait_port "$o_http"
wait_port "$o_https"

# config GATEWAY SCENARIO PORT: writes the gateway's configuration file.
config() {
    local gw=$1 sc=$2 port=$3
    if [ "$gw" = tlsgate ]; then
        case $sc in
        pt-*) tlsgate_cfg pt "$port" "$o_https" ;;
        *) tlsgate_cfg off "$port" "$o_http" "$C" ;;
        esac
        return
    fi
    case $sc in
    pt-*) haproxy_cfg pt "$port" "$o_https" ;;
    *) haproxy_cfg off "$port" "$o_http" "$tmp/gateway.pem" ;;
    esac
}

# load PORT SCENARIO SECONDS: wrk's output.
load() {
    local extra=()
    case $2 in *-new) extra=(-H "Connection: close") ;; esac
    wrk -t1 -c8 -d"$3s" "${extra[@]}" "https://127.0.0.1:$1/healthz" 2>&1 || true
}

printf '%-8s %-8s %9s %14s\n' scenario gateway requests instr/request >"$tmp/table"
for sc in "${scenarios[@]}"; do
    case $sc in pt-ka | pt-new | off-ka | off-new) ;; *)
        echo "callgrind.sh: unknown scenario $sc" >&2
        exit 1
        ;;
    esac
    for gw in tlsgate haproxy; do
        port=$(free_port)
        out=$tmp/$sc-$gw.callgrind
        if [ "$gw" = tlsgate ]; then
            config tlsgate "$sc" "$port" >"$tmp/$sc.yaml"
            cmd=("$tlsgate" -c "$tmp/$sc.yaml")
        else
            config haproxy "$sc" "$port" >"$tmp/$sc.cfg"
            cmd=(haproxy -f "$tmp/$sc.cfg" -db)
        fi
        valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "${cmd[@]}" \
            2>"$tmp/$sc-$gw.log" &
        pid=$!
        pids+=("$pid")
        wait_port "$port" || { echo "callgrind.sh: $gw did not start ($sc)" >&2; exit 1; }
        load "$port" "$sc" 2 >/dev/null # warm-up: handshake caches, pools, first allocations
        callgrind_control --instr=on "$pid" >/dev/null 2>&1 # count from here
        load "$port" "$sc" "$secs" >"$tmp/wrk.out"
        callgrind_control --dump "$pid" >/dev/null 2>&1
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        req=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
        dump=$(ls "$out".* 2>/dev/null | head -1)
        [ -n "$dump" ] && [ -n "$req" ] || { echo "callgrind.sh: no profile for $gw ($sc)" >&2; exit 1; }
        ir=$(awk '/^summary:/ {print $2}' "$dump")
        awk -v s="$sc" -v g="$gw" -v r="$req" -v i="$ir" \
            'BEGIN { printf "%-8s %-8s %9d %14.0f\n", s, g, r, i / r }' >>"$tmp/table"
        echo "== $sc, $gw: $req requests, $ir instructions; where they go (self):"
        callgrind_annotate --inclusive=no "$dump" 2>/dev/null |
            awk -v top="$top" 'f && NF && !/^-+$/ && n++ < top {print} /file:function/ {f = 1}'
        echo
        if [ -n "${CALLGRIND_KEEP:-}" ]; then
            mkdir -p "$CALLGRIND_KEEP"
            cp "$dump" "$CALLGRIND_KEEP/$sc-$gw.callgrind"
        fi
    done
done
cat "$tmp/table"
