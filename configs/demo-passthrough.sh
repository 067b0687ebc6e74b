#!/usr/bin/env bash
# A first look at passthrough until `tlsgate demo` exists: makes lab
# certificates in a temporary directory, starts three HTTPS origins and the
# gateway on configs/passthrough.yaml, and shows that the client talks TLS to
# the origins themselves (the gateway holds no key). Ctrl-C stops everything.
#
#   bash configs/demo-passthrough.sh [path/to/tlsgate]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
tmp=$(mktemp -d /tmp/tlsgate-demo.XXXXXX)
pids=()

cleanup() {
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
    echo "demo stopped, $tmp removed"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listening on $1" >&2
    return 1
}

bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
for o in web1:9443:web web2:9444:web2 bank:9445:bank; do
    IFS=: read -r name port cert <<<"$o"
    "$tlsgate" origin --name "$name" --https "127.0.0.1:$port" --cert "$tmp/certs/$cert.crt" \
        --key "$tmp/certs/$cert.key" --quiet 2>>"$tmp/origins.log" &
    pids+=($!)
    wait_port "$port"
done
"$tlsgate" -c "$here/passthrough.yaml" 2>"$tmp/gateway.log" &
pids+=($!)
wait_port 8443

ca=$tmp/certs/ca.crt
try() {
    echo "\$ $*"
    "$@" 2>&1 | sed 's/^/    /'
    echo
}
echo "== tlsgate passthrough demo: gateway on 127.0.0.1:8443, origins on 9443 9444 9445 =="
echo
try curl -s --cacert "$ca" --resolve www.lab.test:8443:127.0.0.1 https://www.lab.test:8443/hello
try curl -s --cacert "$ca" --resolve bank.lab.test:8443:127.0.0.1 https://bank.lab.test:8443/account
echo "The certificate the client sees is the origin's own (the gateway has no key):"
try sh -c "openssl s_client -connect 127.0.0.1:8443 -servername bank.lab.test -CAfile $ca </dev/null 2>/dev/null | grep -E '^(subject|issuer)='"
echo "What the gateway logged (SNI, ALPN and versions offered, byte counts; never a path):"
grep '^{' "$tmp/gateway.log" | tail -3 | sed 's/^/    /'
echo
echo "Try it yourself (the CA is $ca); Ctrl-C stops the demo."
wait
