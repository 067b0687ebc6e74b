#!/usr/bin/env bash
# tlsgate demo on its own: it makes its certificates, origins, gateway and
# configuration, prints a comparison table with one row per mode (each with
# requests and no errors), serves a request per mode while it runs (each mode
# showing what it is about: the origin's TLS through passthrough, the
# gateway's certificate and X-Forwarded-For through offload, both through
# bridge, a redirect on http), and on SIGINT stops every process it started
# and removes its temporary directory. --no-serve exits 0 after the table;
# a busy port is named and gives exit 2.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/tmp"
export TMPDIR=$T/tmp # the demo's temporary directory lands here, to check it is removed

# A base port whose whole range (base..base+3, +1000..+1002, +1100..+1101, +1457) is free.
pick_base() {
    python3 - <<'PY'
import random, socket
offs = [0, 1, 2, 3, 1000, 1001, 1002, 1100, 1101, 1457]
for _ in range(200):
    base = random.randrange(20000, 38000)
    ok = True
    for o in offs:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", base + o))
        except OSError:
            ok = False
        s.close()
        if not ok:
            break
    if ok:
        print(base)
        break
PY
}

# table_row OUT MODE: the comparison row of the listener named MODE.
table_row() {
    awk -v m="$2" '$1 == m && $2 == m && NF >= 10 { print; exit }' "$1"
}

# check_table OUT: one row per mode, each with requests/s > 0 and no errors.
check_table() {
    local out=$1 m row
    for m in passthrough offload bridge http; do
        row=$(table_row "$out" "$m")
        check "table has a $m row" test -n "$row"
        check "$m: requests/s > 0" python3 -c "import sys; sys.exit(not float('$(awk '{print $4}' <<<"$row")') > 0)"
        assert_eq "$m: no errors" 0 "$(awk '{print $9}' <<<"$row")"
    done
}

# no_leftovers DIR WHAT: no process mentions DIR and DIR is gone.
no_leftovers() {
    local dir=$1 what=$2 left
    left=$(pgrep -af -- "$dir" || true)
    assert_eq "$what: no process left" "" "$left"
    check "$what: temporary directory removed" test ! -e "$dir"
    assert_eq "$what: nothing left in TMPDIR" "" "$(ls -A "$T/tmp")"
}

# --- serving: run in the background, curl every mode, then Ctrl-C ----------
BASE=$(pick_base)
PT=$BASE OFF=$((BASE + 1)) BR=$((BASE + 2)) HT=$((BASE + 3)) ADMIN=$((BASE + 1457))
"$TLSGATE" demo --base-port "$BASE" --compare-ms 1000 --connections 8 --duration 120000 \
    >"$T/demo.out" 2>"$T/demo.err" &
DEMO=$!
TG_PIDS+=("$DEMO")
if ! wait_for_log "$T/demo.out" "serving for" 180; then
    cat "$T/demo.out" "$T/demo.err"
fi
cat "$T/demo.out"
LAB=$(sed -n 's/^== tlsgate demo: lab directory \(.*\) ==$/\1/p' "$T/demo.out")
check "the lab directory is printed and exists" test -n "$LAB" -a -d "$LAB"
check_table "$T/demo.out"
assert_contains "curl lines are printed" "$(cat "$T/demo.out")" "curl -s --cacert $LAB/ca.crt"
assert_contains "the dashboard URL is printed" "$(cat "$T/demo.out")" "http://127.0.0.1:$ADMIN/"

CA=$LAB/ca.crt
curl_lab() { # curl_lab PORT PATH [curl options]: HTTPS to www.lab.test:PORT with the lab CA
    local port=$1 path=$2
    shift 2
    curl -sS --max-time 10 --cacert "$CA" --resolve "www.lab.test:$port:127.0.0.1" "$@" \
        "https://www.lab.test:$port$path"
}
body=$(curl_lab "$PT" /hello || true)
assert_contains "passthrough: the origin terminated TLS" "$(json_field "$body" tls)" '"version": "TLSv1.3"'
assert_eq "passthrough: no X-Forwarded-For" "" "$(origin_header "$body" X-Forwarded-For)"
subj=$(openssl s_client -connect "127.0.0.1:$PT" -servername www.lab.test </dev/null 2>/dev/null |
    grep '^subject=' || true)
assert_contains "passthrough: the client sees an origin's certificate (web or web2)" "$subj" "CN = web"
assert_not_contains "passthrough: ... not the gateway's" "$subj" "gateway"
body=$(curl -sS --max-time 10 --cacert "$CA" --resolve "bank.lab.test:$PT:127.0.0.1" \
    "https://bank.lab.test:$PT/" || true)
assert_eq "passthrough: SNI bank.lab.test routes to the bank origin" bank "$(json_field "$body" origin)"

body=$(curl_lab "$OFF" /hello || true)
assert_eq "offload: the origin saw plain HTTP" "" "$(json_field "$body" tls)"
assert_eq "offload: with X-Forwarded-For" 127.0.0.1 "$(origin_header "$body" X-Forwarded-For)"
subj=$(openssl s_client -connect "127.0.0.1:$OFF" -servername www.lab.test </dev/null 2>/dev/null |
    grep '^subject=' || true)
assert_contains "offload: the client sees the gateway's certificate" "$subj" "gateway.lab.test"
code=$(curl_lab "$OFF" /admin -o /dev/null -w '%{http_code}' || true)
assert_eq "offload: the deny rule answers /admin" 403 "$code"
loc=$(curl -sS --max-time 10 --cacert "$CA" --resolve "old.lab.test:$OFF:127.0.0.1" \
    -o /dev/null -w '%{http_code} %{redirect_url}' "https://old.lab.test:$OFF/x" || true)
assert_eq "offload: the redirect rule answers old.lab.test" "301 https://www.lab.test:$OFF/x" "$loc"
hdrs=$(curl_lab "$OFF" / -o /dev/null -D - || true)
assert_contains "offload: sticky cookie set" "$hdrs" "TLSGW="

body=$(curl_lab "$BR" /hello || true)
assert_contains "bridge: TLS again from the gateway to the origin" "$(json_field "$body" tls)" '"version"'
assert_eq "bridge: with X-Forwarded-For" 127.0.0.1 "$(origin_header "$body" X-Forwarded-For)"

loc=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' \
    --resolve "www.lab.test:$HT:127.0.0.1" "http://www.lab.test:$HT/hello" || true)
assert_eq "http: redirected to the offload listener" "301 https://www.lab.test:$OFF/hello" "$loc"
code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/metrics" || true)
assert_eq "admin /metrics answers" 200 "$code"

kill -INT "$DEMO" 2>/dev/null || fail "demo was no longer running at SIGINT"
rc=0
wait "$DEMO" || rc=$?
assert_eq "demo exits 0 on SIGINT" 0 "$rc"
assert_contains "demo says it cleaned up" "$(cat "$T/demo.out")" "removed $LAB"
no_leftovers "$LAB" "after SIGINT"
if grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:|ended with|exited with' "$T/demo.err"; then
    fail "a demo process reported a problem"
    cat "$T/demo.err"
fi

# --- --no-serve: the table, then exit 0 --------------------------------------
BASE=$(pick_base)
rc=0
"$TLSGATE" demo --base-port "$BASE" --compare-ms 500 --connections 4 --no-serve \
    >"$T/noserve.out" 2>"$T/noserve.err" || rc=$?
assert_eq "demo --no-serve exits 0" 0 "$rc"
check_table "$T/noserve.out"
LAB2=$(sed -n 's/^== tlsgate demo: lab directory \(.*\) ==$/\1/p' "$T/noserve.out")
check "--no-serve: lab directory printed" test -n "$LAB2"
no_leftovers "${LAB2:-/nonexistent}" "after --no-serve"

# --- a busy port -------------------------------------------------------------
BASE=$(pick_base)
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(60)' \
    "$((BASE + 2))" &
BUSY=$!
TG_PIDS+=("$BUSY")
wait_port "$((BASE + 2))"
rc=0
err=$("$TLSGATE" demo --base-port "$BASE" --no-serve 2>&1 >/dev/null) || rc=$?
assert_eq "busy port: exit 2" 2 "$rc"
assert_contains "busy port: named" "$err" "port $((BASE + 2)) (bridge listener) is busy"
assert_eq "busy port: nothing left in TMPDIR" "" "$(ls -A "$T/tmp")"
kill "$BUSY" 2>/dev/null || true

finish
