# Shared scenario helpers for integration tests. A test sources this file,
# declares origins and a gateway config, drives real clients (curl, openssl
# s_client, tests/integration/tlsclient.py) and asserts on what each side saw.
#
# Environment (set by ctest): TLSGATE (the binary), TG_SRC (source tree).
# Everything a test starts is stopped on exit; its files live in $T.

set -euo pipefail

TLSGATE=${TLSGATE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/tlsgate}
TG_SRC=${TG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TLSCLIENT="python3 $TG_SRC/tests/integration/tlsclient.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/tlsgate-test.XXXXXX")
CERTS=$T/certs
TG_PIDS=()
TG_FAILS=0
TG_PASSES=0
TG_NAME=$(basename "$0" .sh)

# ASan: leaks and errors make a process exit non-zero; keep reports in files.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=98}

tg_cleanup() {
    local pid
    for pid in "${TG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${TG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_TMP:-0}" = 1 ] || [ "$TG_FAILS" -gt 0 ]; then
        echo "# files kept in $T"
    else
        rm -rf "$T"
    fi
}
trap tg_cleanup EXIT

fail() {
    echo "not ok - $*"
    TG_FAILS=$((TG_FAILS + 1))
}

pass() {
    echo "ok - $*"
    TG_PASSES=$((TG_PASSES + 1))
}

# check DESCRIPTION COMMAND...: passes when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

assert_eq() { # assert_eq WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi
}

assert_contains() { # assert_contains WHAT HAYSTACK NEEDLE
    if [[ $2 == *"$3"* ]]; then pass "$1"; else fail "$1: '$3' not in: ${2:0:400}"; fi
}

assert_not_contains() {
    if [[ $2 != *"$3"* ]]; then pass "$1"; else fail "$1: unexpected '$3' in: ${2:0:400}"; fi
}

# Ends the test: prints the plain summary line ctest logs show.
finish() {
    echo "$TG_NAME: $TG_PASSES passed, $TG_FAILS failed"
    [ "$TG_FAILS" -eq 0 ]
}

# A free TCP port on 127.0.0.1 (kernel-chosen, then released).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until something accepts on 127.0.0.1:PORT (up to 20 s). Polls; never a blind sleep.
wait_port() {
    local port=$1 i
    for i in $(seq 1 400); do
        if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "# nothing listening on port $port" >&2
    return 1
}

# Waits until FILE contains TEXT (up to SECONDS, default 20).
wait_for_log() {
    local file=$1 text=$2 secs=${3:-20} i
    for i in $(seq 1 $((secs * 20))); do
        grep -qF -- "$text" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "# '$text' never appeared in $file" >&2
    return 1
}

make_certs() {
    [ -d "$CERTS" ] || bash "$TG_SRC/certs/mkcerts.sh" "$CERTS" >/dev/null
}

# start_origin NAME [origin options...]: runs "tlsgate origin --name NAME ...",
# waits for every --http/--https port. Log in $T/origin-NAME.log.
start_origin() {
    local name=$1 arg port
    shift
    "$TLSGATE" origin --name "$name" "$@" >"$T/origin-$name.log" 2>&1 &
    TG_PIDS+=($!)
    eval "ORIGIN_PID_${name//[^a-zA-Z0-9_]/_}=$!"
    for arg in "$@"; do
        if [[ $arg =~ ^127\.0\.0\.1:([0-9]+)$ ]]; then
            wait_port "${BASH_REMATCH[1]}"
        fi
    done
}

# start_https_origin NAME PORT CERTNAME: an HTTPS origin with a lab certificate.
start_https_origin() {
    make_certs
    start_origin "$1" --https "127.0.0.1:$2" --cert "$CERTS/$3.crt" --key "$CERTS/$3.key" --quiet
}

# start_gateway CONFIG PORT...: runs the gateway on CONFIG, waits for each PORT.
# Its stderr (logs and access log) goes to $T/gateway.log.
start_gateway() {
    local conf=$1 port
    shift
    "$TLSGATE" -c "$conf" >"$T/gateway.out" 2>"$T/gateway.log" &
    GATEWAY_PID=$!
    TG_PIDS+=("$GATEWAY_PID")
    for port in "$@"; do
        wait_port "$port" || { cat "$T/gateway.log" >&2; return 1; }
    done
}

# stop_gateway: SIGTERM, then checks it exited 0 with no sanitizer report.
stop_gateway() {
    local rc=0
    kill -TERM "$GATEWAY_PID"
    wait "$GATEWAY_PID" || rc=$?
    assert_eq "gateway exits 0 on SIGTERM" 0 "$rc"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/gateway.log"; then
        fail "sanitizer report in gateway log"
        grep -E -A30 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/gateway.log" | head -60
    fi
}

# https_get SNI PORT PATH: curl through the gateway, trusting the lab CA,
# with SNI (and Host) SNI resolved to 127.0.0.1. Prints the body.
https_get() {
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$1:$2:127.0.0.1" "https://$1:$2$3"
}

# json_field JSON KEY: top-level field of a JSON object (strings and numbers).
json_field() {
    python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else (json.dumps(v) if isinstance(v,(dict,list,bool)) else v))' "$1" "$2"
}

# Access-log lines of the gateway (JSON objects, one per line).
access_lines() {
    grep -E '^\{"ts"' "$T/gateway.log" || true
}

# ---------------------------------------------------------------------------
# HTTP modes (offload, bridge, http): helpers used by test_offload_*,
# test_bridge_*, test_http_* and test_mtls.

HTTPCLIENT="python3 $TG_SRC/tests/integration/httpclient.py"

# start_http_origin NAME PORT: a plain-HTTP origin that logs one line per
# request it answers ("cN #M client METHOD target status bytes") in
# $T/origin-NAME.log, so a test can tell what reached it.
start_http_origin() {
    start_origin "$1" --http "127.0.0.1:$2"
}

# tls_certs_yaml NAME...: a listener's "tls:" value with the lab certificates
# NAME.crt/NAME.key (the first is the default).
tls_certs_yaml() {
    local out="{ certificates: [" sep="" n
    make_certs
    for n in "$@"; do
        out+="$sep { cert: $CERTS/$n.crt, key: $CERTS/$n.key }"
        sep=","
    done
    echo "$out ] }"
}

# three_modes_yaml ORIGIN TLS_ORIGIN PT OFF HTTP: the backends and listeners
# shared by tests that exercise each client-facing mode: passthrough on port
# PT to the TLS origin, offload on OFF and http on HTTP to the plain origin
# (all ports on 127.0.0.1). The caller writes the lines above it.
three_modes_yaml() {
    cat <<YAML
backends:
  - name: web
    servers: [ { name: o, address: 127.0.0.1:$1 } ]
  - name: webtls
    servers: [ { name: t, address: 127.0.0.1:$2 } ]
listeners:
  - { name: pt, bind: 127.0.0.1:$3, mode: passthrough, default_backend: webtls }
  - { name: off, bind: 127.0.0.1:$4, mode: offload, tls: $(tls_certs_yaml gateway),
      http: { default_backend: web } }
  - { name: plain, bind: 127.0.0.1:$5, mode: http, http: { default_backend: web } }
YAML
}

# gw_curl HOST PORT PATH [curl options...]: HTTPS through the gateway with the
# lab CA, HOST resolved to 127.0.0.1; prints the body. Never fails (so a test
# goes on to report what it got); curl's error goes to stderr.
gw_curl() {
    local host=$1 port=$2 path=$3
    shift 3
    curl -sS --max-time 20 --cacert "$CERTS/ca.crt" --resolve "$host:$port:127.0.0.1" "$@" \
        "https://$host:$port$path" || true
}

# origin_header JSON NAME: the values of request header NAME (any case) in an
# origin's JSON echo, one per line, in the order the origin received them.
origin_header() {
    python3 -c '
import json, sys
try:
    headers = json.loads(sys.argv[1]).get("headers", [])
except Exception:
    headers = []
for n, v in headers:
    if n.lower() == sys.argv[2].lower():
        print(v)' "$1" "$2"
}

# resp_header RESPONSE_JSON NAME: a header of one response object printed by
# httpclient.py (first value, "" when absent).
resp_header() {
    python3 -c '
import json, sys
try:
    headers = json.loads(sys.argv[1]).get("headers", [])
except Exception:
    headers = []
print(next((v for n, v in headers if n.lower() == sys.argv[2].lower()), ""))' "$1" "$2"
}

# json_path JSON EXPR: evaluates a Python expression on the parsed JSON "d",
# e.g. json_path "$out" 'd["responses"][0]["status"]'. Prints "" on error.
json_path() {
    python3 -c '
import json, sys
try:
    d = json.loads(sys.argv[1])
    v = eval(sys.argv[2])
except Exception:
    v = None
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))' "$1" "$2"
}

# access_line TEXT...: the last access-log line containing every TEXT.
access_line() {
    local lines
    lines=$(access_lines)
    while [ $# -gt 0 ]; do
        lines=$(grep -F -- "$1" <<<"$lines" || true)
        shift
    done
    tail -1 <<<"$lines"
}

# wait_access TEXT [SECONDS]: waits until an access-log line contains TEXT
# (default 10 s). Returns 0 either way: the assertions on the line report
# what is missing.
wait_access() {
    local text=$1 secs=${2:-10} i
    for i in $(seq 1 $((secs * 20))); do
        access_lines | grep -qF -- "$text" && return 0
        sleep 0.05
    done
    echo "# no access-log line with '$text'" >&2
    return 0
}

# origin_served NAME TEXT: how many requests origin NAME answered whose log
# line contains TEXT (e.g. a path).
origin_served() {
    grep -E ' c[0-9]+ #[0-9]+ ' "$T/origin-$1.log" 2>/dev/null | grep -cF -- "$2" || true
}

# bail WHAT: a failure the rest of the test cannot go on after: reports it
# with the end of the gateway log, and ends the test (failed).
bail() {
    fail "$*"
    tail -20 "$T/gateway.log" 2>/dev/null | sed 's/^/# /'
    finish || true
    exit 1
}

# json_get JSON KEY: json_field that prints "" instead of failing when JSON
# is not JSON (e.g. an error page), so assignments don't end the test.
json_get() {
    json_field "$@" 2>/dev/null || true
}

# end_gateway: stop_gateway, or when the gateway is already gone (crashed),
# a failure with its sanitizer report or last log lines.
end_gateway() {
    if kill -0 "$GATEWAY_PID" 2>/dev/null; then
        stop_gateway
        return
    fi
    local rc=0
    wait "$GATEWAY_PID" 2>/dev/null || rc=$?
    fail "the gateway died during the test (exit $rc)"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/gateway.log"; then
        grep -E -A30 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/gateway.log" | head -40
    else
        tail -20 "$T/gateway.log"
    fi
}
