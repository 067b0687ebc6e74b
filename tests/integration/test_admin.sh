#!/usr/bin/env bash
# The admin endpoint. A gateway with a passthrough listener in front of an
# HTTPS origin and an offload listener in front of the same origin's plain
# HTTP; a few requests through each. Then:
#   /healthz answers 200;
#   /metrics is Prometheus text that a strict parser (promparse.py: HELP and
#     TYPE first, name and label syntax, counters *_total, histograms
#     cumulative up to le="+Inf" = _count) accepts, and its counters agree
#     with what the clients did; mode-specific families only where they
#     apply (no handshakes or requests for passthrough);
#   gateway CPU is attributed to both listeners and adds up;
#   /stats is JSON listing every listener with its recent access-log lines:
#     offload shows the request path, passthrough only the SNI and bytes;
#   / is the dashboard, self-contained (CSP, nothing fetched from elsewhere);
#   other paths 404, other methods 405, HEAD has no body (and the next answer
#   on the connection starts right after its head);
#   a second gateway on a busy admin port fails to start with exit 2;
#   SIGTERM: exit 0 and no sanitizer report (admin_stop frees everything).
. "$(dirname "$0")/lib.sh"

PROMPARSE="python3 $TG_SRC/tests/integration/promparse.py"
check "promparse.py rejects broken exposition text" $PROMPARSE --self-test

make_certs
P_TLS=$(free_port) P_HTTP=$(free_port) GW_PT=$(free_port) GW_OFF=$(free_port) ADMIN=$(free_port)
start_origin web1 --https "127.0.0.1:$P_TLS" --cert "$CERTS/web.crt" --key "$CERTS/web.key" \
    --http "127.0.0.1:$P_HTTP"

gw_yaml() { # gw_yaml PT_PORT OFF_PORT
    cat <<YAML
workers: 2
admin: { listen: 127.0.0.1:$ADMIN }
backends:
  - name: web_tls
    servers: [ { name: web1, address: 127.0.0.1:$P_TLS } ]
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_HTTP } ]
listeners:
  - name: pt
    bind: 127.0.0.1:$1
    mode: passthrough
    sni_routes:
      - { sni: "*.lab.test", backend: web_tls }
  - name: off
    bind: 127.0.0.1:$2
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http:
      default_backend: web
YAML
}
gw_yaml "$GW_PT" "$GW_OFF" >"$T/gw.yaml"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF" "$ADMIN" || bail "the gateway does not start"
A=http://127.0.0.1:$ADMIN

code=$(curl -sS --max-time 10 -o "$T/healthz" -w '%{http_code}' "$A/healthz" || true)
assert_eq "/healthz answers 200" 200 "$code"
assert_eq "/healthz says ok" ok "$(cat "$T/healthz")"

# --- traffic: 3 passthrough connections, 3 offload requests on 2 connections
for i in 1 2 3; do
    body=$(https_get www.lab.test "$GW_PT" "/account?id=$i" || true)
    assert_eq "passthrough request $i reaches the origin" web1 "$(json_get "$body" origin)"
done
body=$(gw_curl www.lab.test "$GW_OFF" "/account?id=42")
assert_eq "offload request reaches the origin" web1 "$(json_get "$body" origin)"
gw_curl www.lab.test "$GW_OFF" /a -o /dev/null "https://www.lab.test:$GW_OFF/b" -o /dev/null
# Markup in a request path reaches the dashboard as text, never as markup.
python3 - "$GW_OFF" "$CERTS/ca.crt" <<'PY' || true
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="www.lab.test") as s:
        s.sendall(b"GET /x</script><b>y HTTP/1.1\r\nHost: www.lab.test\r\nConnection: close\r\n\r\n")
        while s.recv(65536):
            pass
PY
wait_access '"path":"/account?id=42"' || true
wait_access '"path":"/b"' || true
wait_access '/x' || true

# m NAME [LABEL=VALUE...]: the sum of NAME's samples with these labels in the
# last /metrics read ("" when there is none).
m() {
    python3 - "$T/metrics.json" "$@" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = dict(a.split("=", 1) for a in sys.argv[3:])
vals = [s["value"] for s in d.get(sys.argv[2], [])
        if all(s["labels"].get(k) == v for k, v in want.items())]
print(sum(vals) if vals else "")
PY
}
# ge A B: A and B are numbers and A >= B.
ge() { python3 -c 'import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]))' "$1" "$2" 2>/dev/null; }
# read_metrics: GET /metrics into $T/metrics.txt and, parsed, $T/metrics.json.
read_metrics() {
    curl -sS --max-time 10 -D "$T/metrics.hdr" -o "$T/metrics.txt" "$A/metrics" || true
    $PROMPARSE "$T/metrics.txt" >"$T/metrics.json" 2>"$T/promparse.err"
}

# Wait for the idle connections to be closed and the CPU sampler (100 ms) to run.
for i in $(seq 1 100); do
    read_metrics || true
    if [ "$(m tlsgate_connections_active)" = 0.0 ] && ge "$(m tlsgate_listener_cpu_seconds_total listener=off)" 1e-9 &&
        ge "$(m tlsgate_listener_cpu_seconds_total listener=pt)" 1e-9; then
        break
    fi
    sleep 0.1
done

# --- /metrics ---------------------------------------------------------------
check "/metrics answers 200" grep -q '^HTTP/1.1 200' "$T/metrics.hdr"
check "/metrics is Prometheus text 0.0.4" grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/metrics.hdr"
rc=0
read_metrics || rc=$?
assert_eq "/metrics passes the strict parser" 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/# /' "$T/promparse.err"
check "every metric is named tlsgate_*" \
    test "$(grep -v '^#' "$T/metrics.txt" | grep -cv '^tlsgate_')" -eq 0
check "pt: connections_total >= the 3 connections made" ge "$(m tlsgate_connections_total listener=pt)" 3
check "off: connections_total >= the 2 connections made" ge "$(m tlsgate_connections_total listener=off)" 2
check "connections are labelled with the mode" \
    ge "$(m tlsgate_connections_total listener=pt mode=passthrough)" 3
assert_eq "no connection open once the clients are gone" 0.0 "$(m tlsgate_connections_active)"
check "pt: bytes in counted" ge "$(m tlsgate_bytes_in_total listener=pt)" 1000
check "pt: bytes out counted" ge "$(m tlsgate_bytes_out_total listener=pt)" 1000
check "off: bytes out counted" ge "$(m tlsgate_bytes_out_total listener=off)" 100
check "off: 2xx requests >= the 3 made" ge "$(m tlsgate_http_requests_total listener=off class=2xx)" 3
assert_eq "pt: no request counts (the gateway cannot see them)" "" \
    "$(m tlsgate_http_requests_total listener=pt)"
hs_ok=$(m tlsgate_tls_handshakes_total listener=off result=ok)
check "off: a TLS handshake per connection ($hs_ok)" ge "$hs_ok" 2
assert_eq "pt: no gateway handshakes (TLS ends at the origin)" "" \
    "$(m tlsgate_tls_handshakes_total listener=pt)"
assert_eq "off: handshake histogram counts every handshake" \
    "$(m tlsgate_tls_handshakes_total listener=off)" \
    "$(m tlsgate_tls_handshake_duration_seconds_count listener=off)"
check "off: handshake histogram has the +Inf bucket" \
    grep -q '^tlsgate_tls_handshake_duration_seconds_bucket{listener="off",mode="offload",le="+Inf"} ' \
    "$T/metrics.txt"
check "web_tls/web1 picked for each passthrough connection" \
    ge "$(m tlsgate_server_picks_total backend=web_tls server=web1)" 3
check "web/web1 picked for each offload request" \
    ge "$(m tlsgate_server_picks_total backend=web server=web1)" 3
assert_eq "server up" 1.0 "$(m tlsgate_server_up backend=web server=web1)"
assert_eq "backend up" 1.0 "$(m tlsgate_backend_up backend=web_tls)"
version=$("$TLSGATE" --version | awk '{print $2}')
assert_eq "build_info names the version" 1.0 "$(m tlsgate_build_info version="$version")"
check "process CPU counted" ge "$(m tlsgate_process_cpu_seconds_total)" 1e-6

# --- CPU attribution --------------------------------------------------------
cpu_pt=$(m tlsgate_listener_cpu_seconds_total listener=pt)
cpu_off=$(m tlsgate_listener_cpu_seconds_total listener=off)
check "pt: gateway CPU attributed ($cpu_pt s)" ge "$cpu_pt" 1e-9
check "off: gateway CPU attributed ($cpu_off s)" ge "$cpu_off" 1e-9
sum=$(python3 -c "print($cpu_pt + $cpu_off + $(m tlsgate_unattributed_cpu_seconds_total))")
workers=$(m tlsgate_worker_cpu_seconds_total)
check "listeners + unattributed ($sum) = worker CPU ($workers)" \
    python3 -c "import sys; sys.exit(not abs($sum - $workers) < 1e-3)"
check "worker CPU <= process CPU" ge "$(m tlsgate_process_cpu_seconds_total)" "$(python3 -c "print($workers - 1e-3)")"

# --- /stats -----------------------------------------------------------------
stats=$(curl -sS --max-time 10 "$A/stats" || true)
check "/stats is JSON" python3 -c 'import json, sys; json.loads(sys.argv[1])' "$stats"
assert_eq "/stats lists every listener" "pt:passthrough off:offload" \
    "$(json_path "$stats" '" ".join(l["name"] + ":" + l["mode"] for l in d["listeners"])')"
assert_eq "/stats agrees with /metrics on connections" "$(m tlsgate_connections_total listener=pt)" \
    "$(json_path "$stats" 'float([l for l in d["listeners"] if l["name"] == "pt"][0]["connections_total"])')"
assert_eq "/stats: servers and their state" "web_tls/web1:True web/web1:True" \
    "$(json_path "$stats" '" ".join(b["name"] + "/" + s["name"] + ":" + str(s["up"]) for b in d["backends"] for s in b["servers"])')"
recent() { json_path "$stats" '"\n".join([l for l in d["listeners"] if l["name"] == "'"$1"'"][0]["recent"])'; }
pt_recent=$(recent pt)
off_recent=$(recent off)
# (start_gateway's port probe is a connection too: it has a line without SNI)
assert_eq "pt: a recent access-log line per client connection" 3 \
    "$(grep -c '"sni":"www.lab.test"' <<<"$pt_recent" || true)"
assert_contains "pt: the gateway saw the SNI" "$pt_recent" '"sni":"www.lab.test"'
assert_contains "pt: ... and byte counts" "$pt_recent" '"bytes_out":'
assert_not_contains "pt: ... but no path" "$pt_recent" '"path"'
assert_contains "off: the gateway saw the request path" "$off_recent" '"method":"GET","host":"www.lab.test","path":"/account?id=42"'
assert_contains "off: ... and the status" "$off_recent" '"status":200'

# --- the dashboard ----------------------------------------------------------
html=$(curl -sS --max-time 10 -D "$T/dash.hdr" "$A/" || true)
assert_contains "/ is the dashboard" "$html" "<title>tlsgate dashboard</title>"
check "... served as HTML" grep -qi '^Content-Type: text/html' "$T/dash.hdr"
check "... with a CSP that forbids other origins" grep -qi "^Content-Security-Policy: default-src 'none'" "$T/dash.hdr"
assert_contains "... with the current stats inline" "$html" '"name":"pt"'
assert_contains "... and the per-mode can/cannot text" "$html" "SNI routing"
check "... fetching nothing from elsewhere" \
    test "$(grep -ciE "(src|href|url)[=(][\"']?(https?:)?//" <<<"$html" || true)" -eq 0
assert_eq "... where logged markup cannot close the script" 1 "$(grep -o '</script' <<<"$html" | wc -l)"
if grep -qF '"path":"/x</script><b>y"' "$T/gateway.log"; then
    assert_contains "... and shows up escaped" "$html" '/x\u003c/script\u003e\u003cb\u003ey'
fi

# --- everything else ----------------------------------------------------------
assert_eq "unknown path: 404" 404 "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$A/nope")"
assert_eq "POST: 405" 405 "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST "$A/metrics")"
assert_eq "HEAD /metrics: 200 without a body" "200 0" \
    "$(curl -s --max-time 10 -I -o /dev/null -w '%{http_code} %{size_download}' "$A/metrics")"
# HEAD then GET on one connection: the HEAD answer must end at its head, or
# the client reads its body as the start of the next answer.
two=$(python3 - "$ADMIN" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, _, rest = data.partition(b"\r\n\r\n")
length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
print(head.split(b"\r\n")[0].decode(), "|", length[0].decode() if length else "no length", "|",
      rest[:15].decode(errors="replace"))
PY
)
assert_eq "HEAD then GET on one connection: the HEAD answer has a length and no body" \
    "HTTP/1.1 200 OK | Content-Length: 3 | HTTP/1.1 200 OK" "$two"
assert_eq "a query string is ignored" 200 "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$A/stats?x=1")"

# A second gateway whose admin port is taken: refuses to start, exit 2.
gw_yaml "$(free_port)" "$(free_port)" >"$T/gw2.yaml"
rc=0
timeout 30 "$TLSGATE" -c "$T/gw2.yaml" >/dev/null 2>"$T/gw2.log" || rc=$?
assert_eq "admin port in use: exit 2" 2 "$rc"
check "... naming the admin address" grep -q "admin: cannot listen on 127.0.0.1:$ADMIN" "$T/gw2.log"
check "... without a sanitizer report" bash -c "! grep -qE 'Sanitizer|runtime error:' '$T/gw2.log'"

stop_gateway
finish
