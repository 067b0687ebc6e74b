#!/usr/bin/env bash
# testssl.sh against an offload listener with tlsgate's default TLS settings
# (never part of CI: it takes a minute or two). Prints testssl's protocol,
# cipher, forward-secrecy and vulnerability sections.
#
#   bash bench/testssl.sh [path/to/tlsgate]      (default build/tlsgate)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tlsgate=${1:-$here/../build/tlsgate}
command -v testssl >/dev/null || apt-get install -y -qq testssl.sh >/dev/null
. "$here/lib.sh"
bash "$here/../certs/mkcerts.sh" "$tmp/certs" >/dev/null
ORIGIN=22080 GW=22443
"$tlsgate" origin --name web1 --http 127.0.0.1:$ORIGIN --quiet 2>"$tmp/origin.log" &
pids+=($!)
cat >"$tmp/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
log: { level: warn, access: "off" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$ORIGIN } ]
listeners:
  - name: off
    bind: 127.0.0.1:$GW
    mode: offload
    tls: { certificates: [ { cert: $tmp/certs/shop.crt, key: $tmp/certs/shop.key } ] }
    http: { default_backend: web }
YAML
"$tlsgate" -c "$tmp/gw.yaml" 2>"$tmp/gw.log" &
pids+=($!)
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$GW) 2>/dev/null && break; sleep 0.05; done
testssl --quiet --color 0 --warnings off -p -s -f -U --ip 127.0.0.1 "https://shop.lab.test:$GW"
