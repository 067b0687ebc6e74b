#!/usr/bin/env bash
# Starts the lab origins that every example in configs/ expects, on the ports
# those files use, with the lab certificates of certs/out (made by
# certs/mkcerts.sh when missing). Prints each origin's pid, then waits;
# Ctrl-C (or SIGTERM) stops them all.
#
#   bash configs/lab-origins.sh            # from the top of the source tree
#   TLSGATE=path/to/tlsgate bash configs/lab-origins.sh
#
#   origin  https (its own certificate)       plain http   used by
#   web1    127.0.0.1:9443  web.crt  *.lab.test   127.0.0.1:9080  passthrough bridge offload lab mixed
#   web2    127.0.0.1:9444  web2.crt *.lab.test   127.0.0.1:9081  passthrough bridge offload lab mixed
#   bank1   127.0.0.1:9445  bank.crt bank.lab.test     -          passthrough bridge lab mixed
#   bank2   127.0.0.1:9446  bank.crt bank.lab.test     -          lab mixed
#   api1          -                               127.0.0.1:9082  offload
#   wrong   127.0.0.1:9447  wrong.crt (CA-signed, for wrong.example)  lab (bridge refusals)
#
# Each origin answers every request with JSON describing what it received
# (see `tlsgate origin -h`) and logs one line per request to
# $LAB_LOGS/origin-NAME.log (default /tmp/tlsgate-lab).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tlsgate=${TLSGATE:-$top/build/tlsgate}
certs=$top/certs/out
logs=${LAB_LOGS:-/tmp/tlsgate-lab}

if [ ! -x "$tlsgate" ]; then
    echo "lab-origins: no tlsgate binary at $tlsgate (build it, or set TLSGATE=...)" >&2
    exit 1
fi
bash "$top/certs/mkcerts.sh" "$certs" >/dev/null
mkdir -p "$logs"

# name https-port cert http-port ("-" = none)
origins=(
    "web1  9443 web   9080"
    "web2  9444 web2  9081"
    "bank1 9445 bank  -"
    "bank2 9446 bank  -"
    "api1  -    -     9082"
    "wrong 9447 wrong -"
)

busy() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

for o in "${origins[@]}"; do
    read -r name https cert http <<<"$o"
    for p in $https $http; do
        [ "$p" = - ] && continue
        if busy "$p"; then
            echo "lab-origins: port $p (for $name) is already in use; are the origins already running?" >&2
            exit 1
        fi
    done
done

pids=()
stop() {
    trap - EXIT INT TERM
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo "lab-origins: stopped"
}
trap stop EXIT
trap 'exit 0' INT TERM

wait_port() {
    local i
    for i in $(seq 1 200); do
        busy "$1" && return 0
        sleep 0.05
    done
    echo "lab-origins: nothing listening on $1 (see $logs/origin-$2.log)" >&2
    return 1
}

for o in "${origins[@]}"; do
    read -r name https cert http <<<"$o"
    args=(origin --name "$name")
    [ "$https" != - ] && args+=(--https "127.0.0.1:$https" --cert "$certs/$cert.crt" --key "$certs/$cert.key")
    [ "$http" != - ] && args+=(--http "127.0.0.1:$http")
    "$tlsgate" "${args[@]}" >"$logs/origin-$name.log" 2>&1 &
    pids+=($!)
    desc=""
    [ "$https" != - ] && desc+=" https 127.0.0.1:$https ($cert.crt)"
    [ "$http" != - ] && desc+=" http 127.0.0.1:$http"
    printf 'lab-origins: %-5s pid %-7s%s\n' "$name" "$!" "$desc"
done
for o in "${origins[@]}"; do
    read -r name https cert http <<<"$o"
    for p in $https $http; do
        [ "$p" = - ] || wait_port "$p" "$name"
    done
done
echo "lab-origins: all listening; logs in $logs/origin-NAME.log; Ctrl-C stops them"
wait
