# Shared by the bench/ scripts; source it after `set -euo pipefail`:
#   . "$here/lib.sh"
# It makes $tmp (a directory removed on exit), kills on exit every process
# whose pid was added to pids, and defines free_port and wait_port.
tmp=$(mktemp -d /tmp/tlsgate-bench.XXXXXX)
pids=()
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap bench_cleanup EXIT

# free_port: a TCP port on 127.0.0.1 nothing listens on (now).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most); 1 if never.
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# haproxy_cfg ROLE PORT ORIGIN_PORT [PEM]: a whole HAProxy configuration with
# one thread and one frontend on 127.0.0.1:PORT, as bench/peers sets it up:
#   pt   mode tcp, the connection routed once the ClientHello is in, TLS
#        relayed to the origin's TLS port
#   off  TLS ended with PEM (certificate and key), mode http, cookie
#        stickiness and server connection reuse, plain HTTP to the origin
haproxy_cfg() {
    cat <<CFG
global
    nbthread 1
    maxconn 9960
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    timeout connect 3s
    timeout client 60s
    timeout server 60s
CFG
    case $1 in
    pt) cat <<CFG ;;
frontend pt
    mode tcp
    bind 127.0.0.1:$2
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    default_backend origin
backend origin
    mode tcp
    server web1 127.0.0.1:$3
CFG
    off) cat <<CFG ;;
frontend off
    mode http
    option http-keep-alive
    bind 127.0.0.1:$2 ssl crt $4 alpn http/1.1
    default_backend origin
backend origin
    mode http
    http-reuse always
    cookie SRV insert indirect nocache
    server web1 127.0.0.1:$3 cookie web1
CFG
    esac
}

# tlsgate_cfg ROLE PORT ORIGIN_PORT [CERT_DIR]: the tlsgate configuration
# bench/peers uses, one worker, one listener on 127.0.0.1:PORT:
#   pt   passthrough to the origin's TLS port
#   off  offload with cookie stickiness (CERT_DIR/gateway.crt and .key),
#        plain HTTP to the origin
tlsgate_cfg() {
    cat <<YAML
workers: 1
max_connections: 9990
admin: { listen: "" }
log: { level: warn, access: "off" }
YAML
    case $1 in
    pt) cat <<YAML ;;
backends: [ { name: origin, servers: [ { name: web1, address: 127.0.0.1:$3 } ] } ]
listeners:
  - { name: pt, bind: 127.0.0.1:$2, mode: passthrough, default_backend: origin }
YAML
    off) cat <<YAML ;;
backends: [ { name: origin, servers: [ { name: web1, address: 127.0.0.1:$3 } ] } ]
listeners:
  - name: off
    bind: 127.0.0.1:$2
    mode: offload
    tls: { certificates: [ { cert: $4/gateway.crt, key: $4/gateway.key } ] }
    http: { sticky: { cookie: SRV }, default_backend: origin }
YAML
    esac
}
