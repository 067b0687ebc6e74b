#!/usr/bin/env bash
# A server that refuses connections is skipped for the next one (connect
# retry); balancing spreads connections (roundrobin) or keeps a client on one
# server (source); with every server dead the connection is closed.
. "$(dirname "$0")/lib.sh"

make_certs
P_A=$(free_port) P_B=$(free_port) P_DEAD=$(free_port) P_DEAD2=$(free_port) GW=$(free_port)
start_https_origin a "$P_A" web
start_https_origin b "$P_B" web2
cat >"$T/gw.yaml" <<YAML
workers: 1
admin: { listen: "" }
timeouts: { connect: 1000 }
backends:
  - name: rr
    balance: roundrobin
    servers:
      - { name: dead, address: 127.0.0.1:$P_DEAD }
      - { name: a, address: 127.0.0.1:$P_A }
      - { name: b, address: 127.0.0.1:$P_B }
  - name: src
    balance: source
    servers:
      - { name: a, address: 127.0.0.1:$P_A }
      - { name: b, address: 127.0.0.1:$P_B }
  - name: alldead
    servers:
      - { name: d1, address: 127.0.0.1:$P_DEAD }
      - { name: d2, address: 127.0.0.1:$P_DEAD2 }
listeners:
  - name: lb
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes:
      - { sni: src.lab.test, backend: src }
      - { sni: dead.lab.test, backend: alldead }
    default_backend: rr
YAML
start_gateway "$T/gw.yaml" "$GW"

seen=""
for i in $(seq 1 9); do
    body=$(https_get rr.lab.test "$GW" / || true)
    seen+="$(json_field "$body" origin) "
done
assert_eq "every connection served although one server is dead" 9 "$(wc -w <<<"$seen")"
check "roundrobin used both live servers" bash -c "[[ '$seen' == *a* && '$seen' == *b* ]]"
check "the dead server was tried and skipped" grep -q "server rr/dead (127.0.0.1:$P_DEAD) " "$T/gateway.log"

first=$(json_field "$(https_get src.lab.test "$GW" /)" origin)
same=1
for i in $(seq 1 6); do
    [ "$(json_field "$(https_get src.lab.test "$GW" /)" origin)" = "$first" ] || same=0
done
assert_eq "source balancing keeps one client on one server" 1 "$same"

rc=0
https_get dead.lab.test "$GW" / >/dev/null 2>&1 || rc=$?
check "all servers dead: the connection is closed" test "$rc" -ne 0
wait_for_log "$T/gateway.log" "backend alldead: every server failed" 5
check "and the log says so" grep -q '"result":"no-server"' "$T/gateway.log"
stop_gateway
finish
