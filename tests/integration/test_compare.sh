#!/usr/bin/env bash
# tlsgate compare drives the same load at two listeners of one gateway
# (passthrough and offload, in front of the same lab origin) and prints one
# table. The figures are non-zero and agree with each other: req/s is
# requests over the measured time, p50 <= p90 <= p99, no errors; with
# --new-connections every request costs one full TLS handshake (handshakes/s
# ~ req/s). What the origin saw differs by mode (TLS and no X-Forwarded-For
# through passthrough, plain HTTP and X-Forwarded-For through offload), and
# so does what the mode allowed. --report writes an HTML page with SVG
# charts. A listener nothing answers on gives errors and exit 2; an unknown
# listener name exit 1. Under ASan, compare itself exits without a leak.
. "$(dirname "$0")/lib.sh"

make_certs
P_TLS=$(free_port) P_HTTP=$(free_port) GW_PT=$(free_port) GW_OFF=$(free_port) ADMIN=$(free_port)
P_GHOST=$(free_port)
start_origin web1 --https "127.0.0.1:$P_TLS" --cert "$CERTS/web.crt" --key "$CERTS/web.key" \
    --http "127.0.0.1:$P_HTTP" --quiet

gw_yaml() { # gw_yaml [EXTRA_LISTENER_YAML]
    cat <<YAML
workers: 1
admin: { listen: 127.0.0.1:$ADMIN }
log: { level: warn, access: "off" }
backends:
  - name: web_tls
    servers: [ { name: web1, address: 127.0.0.1:$P_TLS } ]
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_HTTP } ]
listeners:
  - name: pt
    bind: 127.0.0.1:$GW_PT
    mode: passthrough
    sni_routes:
      - { sni: "*.lab.test", backend: web_tls }
  - name: off
    bind: 127.0.0.1:$GW_OFF
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http:
      sticky: { cookie: TLSGW }
      rules:
        - match: { path_prefix: /admin }
          action: deny
      default_backend: web
${1:-}
YAML
}
gw_yaml >"$T/gw.yaml"
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF"

# field ROW COLUMN: a column of a listener's table row (columns as printed:
# 1 listener, 2 mode, 3 requests, 4 req/s, 5-7 p50/p90/p99 ms, 8 hs/s,
# 9 errors, 10 gateway us/req, then the text columns).
field() {
    awk -v l="$1" -v c="$2" '$1 == l && NF >= 10 { print $c; exit }' "$OUT"
}

# check_row LISTENER SECONDS: the figures of one row are present and consistent.
check_row() {
    local l=$1 secs=$2 reqs rps p50 p90 p99
    reqs=$(field "$l" 3) rps=$(field "$l" 4)
    p50=$(field "$l" 5) p90=$(field "$l" 6) p99=$(field "$l" 7)
    check "$l: requests > 0 ($reqs)" test "${reqs:-0}" -gt 0
    check "$l: req/s ($rps) = requests ($reqs) / ${secs}s within 2%" \
        python3 -c "import sys; r,q,s=float('$rps'),float('$reqs'),float('$secs'); sys.exit(abs(r-q/s) > 0.02*r+0.1)"
    check "$l: p50 <= p90 <= p99 ($p50 $p90 $p99)" \
        python3 -c "import sys; a,b,c=float('$p50'),float('$p90'),float('$p99'); sys.exit(not (0 < a <= b <= c))"
    assert_eq "$l: no errors" 0 "$(field "$l" 9)"
}

# --- keep-alive, both listeners, with a report -----------------------------
OUT=$T/keepalive.txt
rc=0
"$TLSGATE" compare -c "$T/gw.yaml" --listener pt --listener off --connections 8 \
    --duration 1500 --report "$T/report.html" >"$OUT" 2>"$T/compare.err" || rc=$?
cat "$OUT"
assert_eq "compare exits 0" 0 "$rc"
check_row pt 1.5
check_row off 1.5
pt_line=$(grep -E '^pt ' "$OUT" || true)
off_line=$(grep -E '^off ' "$OUT" || true)
assert_contains "pt: the origin saw TLS (it terminates it)" "$pt_line" "web1: TLSv1."
assert_not_contains "pt: no X-Forwarded-For reached the origin" "$pt_line" "X-Forwarded-For"
assert_contains "off: the origin saw plain HTTP" "$off_line" "web1: plain HTTP"
assert_contains "off: with X-Forwarded-For from the gateway" "$off_line" "X-Forwarded-For 127.0.0.1"
assert_contains "pt: features say no inspection" "$pt_line" "no inspection"
assert_contains "off: features list inspection, rules, sticky" "$off_line" "inspection, rules:1, deny"
assert_contains "off: ... and cookie stickiness" "$off_line" "cookie sticky"
# keep-alive: one handshake per connection, not per request
check "pt: keep-alive handshakes/s is far below req/s" \
    python3 -c "import sys; sys.exit(not float('$(field pt 8)') * 10 < float('$(field pt 4)'))"
# Gateway CPU per request, when the admin endpoint has the per-listener counter.
if curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics" | grep -q '^tlsgate_listener_cpu_seconds_total{'; then
    for l in pt off; do
        cpu=$(field "$l" 10)
        check "$l: gateway CPU us/request is a per-listener figure ($cpu)" \
            python3 -c "import sys; sys.exit(not float('$cpu') > 0)"
    done
else
    echo "# skipped: no tlsgate_listener_cpu_seconds_total in /metrics"
fi
check "report is written" test -s "$T/report.html"
html=$(cat "$T/report.html" 2>/dev/null || true)
assert_contains "report has SVG charts" "$html" "<svg"
assert_contains "report names both listeners" "$html" ">off<"
assert_not_contains "report is self-contained (nothing fetched)" "$html" "src=\"http"

# --- a full handshake per request ------------------------------------------
OUT=$T/newconn.txt
rc=0
"$TLSGATE" compare -c "$T/gw.yaml" --listener off --listener pt --connections 4 --duration 1500 \
    --new-connections --quiet >"$OUT" 2>"$T/compare2.err" || rc=$?
cat "$OUT"
assert_eq "compare --new-connections exits 0" 0 "$rc"
for l in pt off; do
    check_row "$l" 1.5
    hs=$(field "$l" 8) rps=$(field "$l" 4)
    check "$l: handshakes/s ($hs) ~ req/s ($rps)" \
        python3 -c "import sys; h,r=float('$hs'),float('$rps'); sys.exit(abs(h-r) > 0.05*r + 8/1.5)"
done
assert_contains "the header names the mode of the run" "$(head -1 "$OUT")" "new connection"

# --- nothing listening, unknown listener ------------------------------------
gw_yaml "  - { name: ghost, bind: 127.0.0.1:$P_GHOST, mode: passthrough, default_backend: web_tls }" \
    >"$T/ghost.yaml"
OUT=$T/ghost.txt
rc=0
"$TLSGATE" compare -c "$T/ghost.yaml" --listener ghost --connections 2 --duration 500 --quiet \
    >"$OUT" 2>"$T/ghost.err" || rc=$?
assert_eq "a listener nobody answers on: exit 2" 2 "$rc"
check "... with its connect errors counted" test "$(field ghost 9)" -gt 0
assert_contains "... and named on stderr" "$(cat "$T/ghost.err")" "'ghost'"

rc=0
err=$("$TLSGATE" compare -c "$T/gw.yaml" --listener nope --duration 500 2>&1 >/dev/null) || rc=$?
assert_eq "unknown listener: exit 1" 1 "$rc"
assert_contains "... naming it and the listeners there are" "$err" "no listener named 'nope' (listeners: pt off)"
rc=0
"$TLSGATE" compare --listener pt >/dev/null 2>&1 || rc=$?
assert_eq "no -c: usage error, exit 1" 1 "$rc"
rc=0
err=$(timeout 10 "$TLSGATE" compare -c "$T/gw.yaml" --listener pt --duration 5000 \
    --report "$T/no-such-dir/r.html" 2>&1 >/dev/null) || rc=$?
assert_eq "a report path that cannot be written: exit 1 before the run" 1 "$rc"
assert_contains "... saying why" "$err" "cannot write report '$T/no-such-dir/r.html'"

for f in "$T/compare.err" "$T/compare2.err" "$T/ghost.err"; do
    if grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:' "$f"; then
        fail "sanitizer report from compare in $(basename "$f")"
        cat "$f"
    fi
done

stop_gateway
finish
