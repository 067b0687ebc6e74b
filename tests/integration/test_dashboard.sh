#!/usr/bin/env bash
# The dashboard in a real browser (headless Chromium): a gateway with one
# listener per mode that runs here without a backend TLS setup (passthrough,
# offload, http), a few requests through each, then the page at / is
# rendered: every listener's card is there, the offload and http cards show
# the request path the gateway saw, the passthrough card only the SNI, the
# page polled /stats by itself, and the browser reported no console error
# (no uncaught exception, no CSP violation). A screenshot is kept in $T.
#
# Chromium is big: it is installed only with TG_WITH_BROWSER=1; without it
# the test uses an installed one, or prints "skip" and passes.
. "$(dirname "$0")/lib.sh"

find_chromium() {
    local c
    for c in chromium chromium-browser google-chrome-stable google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

CHROMIUM=$(find_chromium || true)
if [ -z "$CHROMIUM" ] && [ "${TG_WITH_BROWSER:-0}" = 1 ]; then
    echo "# installing chromium (TG_WITH_BROWSER=1)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            chromium >/dev/null || true
    CHROMIUM=$(find_chromium || true)
fi
if [ -z "$CHROMIUM" ]; then
    echo "skip: chromium is not installed (TG_WITH_BROWSER=1 installs it)"
    exit 0
fi

make_certs
P_TLS=$(free_port) P_HTTP=$(free_port) GW_PT=$(free_port) GW_OFF=$(free_port) GW_HTTP=$(free_port)
ADMIN=$(free_port)
start_origin web1 --https "127.0.0.1:$P_TLS" --cert "$CERTS/web.crt" --key "$CERTS/web.key" \
    --http "127.0.0.1:$P_HTTP"
cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: 127.0.0.1:$ADMIN }
backends:
  - name: web_tls
    servers: [ { name: web1, address: 127.0.0.1:$P_TLS } ]
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_HTTP } ]
listeners:
  - name: bank-passthrough
    bind: 127.0.0.1:$GW_PT
    mode: passthrough
    sni_routes:
      - { sni: "*.lab.test", backend: web_tls }
  - name: shop-offload
    bind: 127.0.0.1:$GW_OFF
    mode: offload
    tls: $(tls_certs_yaml gateway)
    http: { default_backend: web }
  - name: plain-http
    bind: 127.0.0.1:$GW_HTTP
    mode: http
    http: { default_backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW_PT" "$GW_OFF" "$GW_HTTP" "$ADMIN" || bail "the gateway does not start"

https_get www.lab.test "$GW_PT" "/account?id=7" >/dev/null || true
gw_curl www.lab.test "$GW_OFF" "/account?id=42" >/dev/null
curl -s --max-time 10 "http://127.0.0.1:$GW_HTTP/account?id=9" >/dev/null || true
wait_access '"path":"/account?id=42"' || true
wait_access '"path":"/account?id=9"' || true
wait_access '"listener":"bank-passthrough"' || true

URL="http://127.0.0.1:$ADMIN/"
# A throw-away profile; --virtual-time-budget lets the page's timers run (it
# polls /stats each second) before the DOM is dumped.
BROWSER=("$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
    --user-data-dir="$T/profile" --enable-logging=stderr --v=0)
rc=0
timeout 120 "${BROWSER[@]}" --virtual-time-budget=3500 --dump-dom "$URL" >"$T/dom.html" \
    2>"$T/browser.log" || rc=$?
assert_eq "chromium renders the dashboard" 0 "$rc"
dom=$(cat "$T/dom.html")
for l in bank-passthrough shop-offload plain-http; do
    assert_contains "the page shows listener $l" "$dom" "data-listener=\"$l\""
done
# The card of each listener, as text (tags stripped), to check what it shows.
card() {
    python3 - "$T/dom.html" "$1" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
m = re.search(r'<section[^>]*data-listener="%s".*?</section>' % re.escape(sys.argv[2]), dom, re.S)
print(re.sub(r"<[^>]+>", " ", m.group(0)) if m else "")
PY
}
pt=$(card bank-passthrough) off=$(card shop-offload) ht=$(card plain-http)
assert_contains "offload card: the gateway saw GET /account?id=42" "$off" "GET www.lab.test/account?id=42"
assert_contains "http card: the gateway saw the path" "$ht" "/account?id=9"
assert_contains "passthrough card: the gateway saw the SNI" "$pt" "SNI www.lab.test"
assert_not_contains "passthrough card: ... but no path" "$pt" "/account"
assert_contains "passthrough card: what it cannot do" "$pt" "cookies"
assert_contains "offload card: TLS ends at the gateway" "$off" "TLS ends at the gateway"
assert_contains "the backends are listed with their state" "$dom" "web_tls"
assert_contains "the page polled /stats by itself (rates need two reads)" "$dom" "% now"
errors=$(grep -E 'Uncaught|CONSOLE|Content Security Policy|Refused to' "$T/browser.log" || true)
assert_eq "no console errors" "" "$errors"

timeout 120 "${BROWSER[@]}" --window-size=1500,1900 --virtual-time-budget=2500 \
    --screenshot="$T/dashboard.png" "$URL" >/dev/null 2>>"$T/browser.log" || true
check "a screenshot is taken" test -s "$T/dashboard.png"
KEEP_TMP=1 # keep $T: the screenshot is this test's artifact
echo "# screenshot: $T/dashboard.png"
rm -rf "$T/profile"

stop_gateway
finish
