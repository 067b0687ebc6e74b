#!/usr/bin/env bash
# A reload that cannot be applied changes nothing: a YAML syntax error, a
# semantic error (unknown backend) and an address that cannot be bound are
# each logged with file:line (or the address) and "reload failed, keeping
# the running configuration", and the gateway keeps serving with the old
# routing on the same sockets. A later valid reload works; settings that need
# a restart (workers, admin.listen) are named and kept; log.level applies at
# once.
. "$(dirname "$0")/lib.sh"

P_A=$(free_port) P_B=$(free_port) GW=$(free_port) BUSY=$(free_port)
start_http_origin a "$P_A"
start_http_origin b "$P_B"

# write_conf BACKEND [EXTRA_TOP_LEVEL_YAML] [EXTRA_LISTENER_YAML]
write_conf() {
    local top=${2:-} extra=${3:-}
    cat >"$T/gw.yaml.new" <<YAML
workers: 2
admin: { listen: "" }
log: { access: "off", level: info }
$top
backends:
  - { name: a, servers: [ { name: a1, address: 127.0.0.1:$P_A } ] }
  - { name: b, servers: [ { name: b1, address: 127.0.0.1:$P_B } ] }
listeners:
  - name: plain
    bind: 127.0.0.1:$GW
    mode: http
    http: { default_backend: $1 }
$extra
YAML
    mv "$T/gw.yaml.new" "$T/gw.yaml"
}

# Which origin answers on a new connection ("" when none does).
served_by() { json_get "$(curl -sS --max-time 10 "http://127.0.0.1:$GW/" 2>/dev/null || true)" origin; }
FAILS=0
# hup_fails WHAT: SIGHUP, then waits for the next "reload failed" line.
hup_fails() {
    FAILS=$((FAILS + 1))
    kill -HUP "$GATEWAY_PID"
    local i
    for i in $(seq 1 400); do
        [ "$(grep -c 'reload failed, keeping the running configuration' "$T/gateway.log")" -ge "$FAILS" ] &&
            return 0
        sleep 0.05
    done
    fail "$1: no 'reload failed' line"
}

write_conf a
start_gateway "$T/gw.yaml" "$GW"
assert_eq "serving with backend a" a "$(served_by)"

# A keep-alive client across the failed reloads: it is never told to close.
cat >"$T/ka.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def get():
    s.sendall(b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head = data.split(b"\r\n\r\n")[0].decode().lower()
    return head.split(" ", 2)[1] + (" close" if "connection: close" in head else " keep-alive")
print(get(), flush=True)
for line in sys.stdin:
    print(get(), flush=True)
PY
coproc KA { python3 -u "$T/ka.py" "$GW"; }
read -r ka <&"${KA[0]}"
assert_eq "a keep-alive client before the failed reloads" "200 keep-alive" "$ka"

# 1. YAML syntax error on a known line.
write_conf b
printf 'listeners: [ { name: x\n' >>"$T/gw.yaml"
line=$(wc -l <"$T/gw.yaml")
hup_fails "syntax error"
check "the syntax error is logged with file:line" grep -q "reload: $T/gw.yaml:$((line + 1)):1: yaml:" \
    "$T/gateway.log"
assert_eq "... and the old configuration keeps serving" a "$(served_by)"

# 2. Semantic error: a listener names a backend that does not exist.
write_conf missing
line=$(grep -n 'default_backend: missing' "$T/gw.yaml" | cut -d: -f1)
hup_fails "unknown backend"
check "the unknown backend is logged with file:line and key" \
    grep -qE "reload: $T/gw.yaml:$line:[0-9]+: listeners\[0\]\.http\.default_backend: no backend named 'missing'" \
    "$T/gateway.log"
assert_eq "... and the old configuration keeps serving" a "$(served_by)"

# 3. A new listener on an address another process holds: nothing switches.
python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$BUSY)); s.listen(); time.sleep(60)" &
blocker=$!
TG_PIDS+=("$blocker")
wait_port "$BUSY"
write_conf b "" "  - { name: busy, bind: 127.0.0.1:$BUSY, mode: http, http: { default_backend: b } }"
hup_fails "address in use"
check "the bind failure names the address" grep -q "listener busy: cannot bind 127.0.0.1:$BUSY" \
    "$T/gateway.log"
assert_eq "... and the old configuration keeps serving on its socket" a "$(served_by)"
kill "$blocker"
wait "$blocker" 2>/dev/null || true

echo >&"${KA[1]}"
read -r ka <&"${KA[0]}"
assert_eq "the keep-alive client was not disturbed by failed reloads" "200 keep-alive" "$ka"

# 4. A valid reload works, restart-only settings are named and kept.
write_conf b "admin: { listen: 127.0.0.1:$(free_port) }"
sed -i 's/^workers: 2$/workers: 3/; /^admin: { listen: "" }$/d' "$T/gw.yaml"
kill -HUP "$GATEWAY_PID"
check "a later valid reload is applied" wait_for_log "$T/gateway.log" "reload: configuration 2 applied"
assert_eq "... and routes to the new backend" b "$(served_by)"
check "... workers needs a restart: named, kept" grep -q "workers 2 -> 3 needs a restart; keeping 2" \
    "$T/gateway.log"
check "... so does admin.listen" grep -q "admin.listen '' -> '127.0.0.1:" "$T/gateway.log"
echo >&"${KA[1]}"
read -r ka <&"${KA[0]}"
assert_eq "the keep-alive client's next response carries Connection: close" "200 close" "$ka"

# 5. log.level applies at once: at warn, the next reload's info line is not written.
write_conf a
sed -i 's/level: info/level: warn/' "$T/gw.yaml"
kill -HUP "$GATEWAY_PID"
for i in $(seq 1 200); do [ "$(served_by)" = a ] && break; sleep 0.05; done
write_conf b
kill -HUP "$GATEWAY_PID"
check "back at info, a reload is logged again" wait_for_log "$T/gateway.log" \
    "reload: configuration 4 applied"
check "... while at warn it was not" bash -c "! grep -q 'configuration 3 applied' '$T/gateway.log'"

end_gateway
finish
