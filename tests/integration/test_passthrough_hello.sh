#!/usr/bin/env bash
# What passthrough sees without decrypting. Real curl and openssl s_client
# hellos are first captured by a bare TCP listener (no TLS: it saves the
# ClientHello records and closes), and their JA4 is computed here by an
# independent Python implementation. Then the same client commands go
# through a passthrough listener to a TLS origin, and the gateway's access
# log must show the same JA4, cipher suites, groups and ALPN. Two captures
# of one client give one JA4 (only GREASE, key shares and randoms vary).
# A hello with an encrypted_client_hello extension (0xfe0d, random bytes
# added to a real hello) is logged with ech true and sni_outer_only. The
# text log format carries the fingerprint too.
. "$(dirname "$0")/lib.sh"

make_certs
P_WEB=$(free_port) GW=$(free_port)
start_https_origin web1 "$P_WEB" web

cat >"$T/gw.yaml" <<YAML
workers: 2
admin: { listen: "" }
backends:
  - name: web
    servers: [ { name: web1, address: 127.0.0.1:$P_WEB } ]
listeners:
  - name: pt
    bind: 127.0.0.1:$GW
    mode: passthrough
    sni_routes:
      - { sni: "*.lab.test", backend: web }
YAML
start_gateway "$T/gw.yaml" "$GW" || bail "the gateway does not start"

# hello.py: capture a hello, compute JA4 and the lists, craft an ECH hello.
cat >"$T/hello.py" <<'PY'
import hashlib, json, os, socket, ssl, struct, sys

def grease(v):
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)

def u16s(b):
    return [struct.unpack("!H", b[i:i + 2])[0] for i in range(0, len(b) - 1, 2)]

def message(wire):
    """The handshake message carried by the records at the start of wire."""
    msg, pos = b"", 0
    while pos + 5 <= len(wire) and (len(msg) < 4 or len(msg) < 4 + int.from_bytes(msg[1:4], "big")):
        n = struct.unpack("!H", wire[pos + 3:pos + 5])[0]
        msg, pos = msg + wire[pos + 5:pos + 5 + n], pos + 5 + n
    return msg

def fields(msg):
    """(legacy version, ciphers, [(type, body)]) of a ClientHello message."""
    p = 4 + 2 + 32
    p += 1 + msg[p]
    n = struct.unpack("!H", msg[p:p + 2])[0]
    ciphers = u16s(msg[p + 2:p + 2 + n])
    p += 2 + n
    p += 1 + msg[p]
    exts = []
    if p < len(msg):
        end = p + 2 + struct.unpack("!H", msg[p:p + 2])[0]
        p += 2
        while p < end:
            t, n = struct.unpack("!HH", msg[p:p + 4])
            exts.append((t, msg[p + 4:p + 4 + n]))
            p += 4 + n
    return struct.unpack("!H", msg[4:6])[0], ciphers, exts

def ja4(msg):
    """JA4 from the FoxIO spec (technical_details/JA4.md), written from it."""
    legacy, ciphers, exts = fields(msg)
    body = dict(exts)
    vers = [v for v in u16s(body.get(0x2B, b"\0")[1:]) if not grease(v)]
    version = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3"}.get(
        max(vers) if vers else legacy, "00")
    alpn = body.get(0x10, b"\0\0\0")[3:3 + body.get(0x10, b"\0\0\0")[2]]
    if not alpn:
        a = "00"
    elif chr(alpn[0]).isalnum() and chr(alpn[-1]).isalnum() and max(alpn[0], alpn[-1]) < 128:
        a = chr(alpn[0]) + chr(alpn[-1])
    else:
        a = alpn.hex()[0] + alpn.hex()[-1]
    c = sorted(x for x in ciphers if not grease(x))
    e = [t for t, _ in exts if not grease(t)]
    sig = [x for x in u16s(body.get(0x0D, b"\0\0")[2:]) if not grease(x)]
    hexes = lambda l: ",".join("%04x" % x for x in l)
    h12 = lambda s: hashlib.sha256(s.encode()).hexdigest()[:12]
    rest = sorted(x for x in e if x not in (0x0000, 0x0010))
    part_c = hexes(rest) + ("_" + hexes(sig) if sig else "")
    return "t%s%s%02d%02d%s_%s_%s" % (version, "d" if 0 in e else "i", min(len(c), 99),
                                      min(len(e), 99), a, h12(hexes(c)) if c else "0" * 12,
                                      h12(part_c) if rest else "0" * 12)

GROUPS = {0x17: "secp256r1", 0x18: "secp384r1", 0x19: "secp521r1", 0x1D: "x25519", 0x1E: "x448",
          0x100: "ffdhe2048", 0x101: "ffdhe3072", 0x102: "ffdhe4096", 0x103: "ffdhe6144",
          0x104: "ffdhe8192", 0x11EC: "X25519MLKEM768"}

def describe(wire):
    """What the gateway should log for this hello."""
    msg = message(wire)
    _, ciphers, exts = fields(msg)
    groups = u16s(dict(exts).get(0x0A, b"\0\0")[2:])
    return {"ja4": ja4(msg), "ciphers": ["%04x" % x for x in ciphers if not grease(x)][:32],
            "groups": [GROUPS.get(g, "%04x" % g) for g in groups if not grease(g)][:12],
            "ech": any(t == 0xFE0D for t, _ in exts)}

def capture(portfile, outs):
    """Saves the ClientHello of each of the next clients (one file each), and
    closes each connection without answering."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(30)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    for out in outs:
        conn, _ = srv.accept()
        conn.settimeout(10)
        wire = b""
        while True:
            msg = message(wire)
            if len(msg) >= 4 and len(msg) >= 4 + int.from_bytes(msg[1:4], "big"):
                break
            data = conn.recv(65536)
            if not data:
                break
            wire += data
        open(out, "wb").write(wire)
        conn.close()

def ech_hello(sni):
    """Python's own ClientHello for sni, plus an encrypted_client_hello extension."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl._create_unverified_context().wrap_bio(inc, out, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    msg = message(out.read())
    _, _, exts = fields(msg)
    at = len(msg) - sum(4 + len(b) for _, b in exts)  # start of the extension list
    ech = b"\0\0\x01\0\x01\x2a" + os.urandom(150)  # outer ECH: random, as a server sees it
    exts_bytes = msg[at:] + struct.pack("!HH", 0xFE0D, len(ech)) + ech
    body = msg[4:at - 2] + struct.pack("!H", len(exts_bytes)) + exts_bytes
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

def send(port, wire):
    """Sends a hello, waits for the server's first answer (or a close), closes."""
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.sendall(wire)
    try:
        s.recv(65536)
    except OSError:
        pass
    s.close()

cmd = sys.argv[1]
if cmd == "capture":
    capture(sys.argv[2], sys.argv[3:])
elif cmd == "describe":  # one JSON line per capture file
    for name in sys.argv[2:]:
        print(json.dumps(describe(open(name, "rb").read())))
elif cmd == "get":  # get JSON KEY...: one line per key, lists as JSON, "" if absent
    d = json.loads(sys.argv[2]) if sys.argv[2] else {}
    for k in sys.argv[3:]:
        v = d.get(k)
        print("" if v is None else json.dumps(v) if isinstance(v, (list, bool)) else v)
elif cmd == "ech":
    wire = ech_hello(sys.argv[3])
    open(sys.argv[4], "wb").write(wire)
    send(sys.argv[2], wire)
PY
HELLO="python3 $T/hello.py"

curl_cmd() {
    curl -sk --max-time 10 --resolve "curl.lab.test:$1:127.0.0.1" "https://curl.lab.test:$1/"
}
ossl_cmd() { timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername ossl.lab.test; }

# Each client twice against a capture listener: $T/NAME.bin.
$HELLO capture "$T/cap.port" "$T"/curl1.bin "$T"/curl2.bin "$T"/ossl1.bin "$T"/ossl2.bin &
CAP_PID=$!
for _ in $(seq 1 400); do
    [ -s "$T/cap.port" ] && break
    sleep 0.05
done
CAP=$(cat "$T/cap.port" 2>/dev/null) || bail "the capture listener did not start"
for c in curl_cmd curl_cmd ossl_cmd ossl_cmd; do
    $c "$CAP" </dev/null >/dev/null 2>&1 || true
done
wait "$CAP_PID" || bail "capturing the hellos failed"
mapfile -t want < <($HELLO describe "$T"/curl1.bin "$T"/curl2.bin "$T"/ossl1.bin "$T"/ossl2.bin)
mapfile -t ja4 < <(for w in "${want[@]}"; do $HELLO get "$w" ja4; done)
echo "# $(curl --version | head -1 | cut -d' ' -f1-2) -> JA4 ${ja4[0]}"
echo "# $(openssl version | cut -d' ' -f1-2) s_client -> JA4 ${ja4[2]}"
assert_eq "curl: two captures, one JA4" "${ja4[0]}" "${ja4[1]}"
assert_eq "openssl s_client: two captures, one JA4" "${ja4[2]}" "${ja4[3]}"
check "the Python JA4 has the JA4 shape" \
    grep -qE '^t1[23]d[0-9]{4}(h2|00)_[0-9a-f]{12}_[0-9a-f]{12}$' <<<"${ja4[0]}"

# The same commands through the gateway: the access log says the same.
curl_cmd "$GW" >/dev/null || fail "curl through the passthrough listener"
ossl_cmd "$GW" </dev/null >/dev/null 2>&1 || true
wait_access '"sni":"curl.lab.test"'
wait_access '"sni":"ossl.lab.test"'
for who in curl ossl; do
    [ $who = curl ] && w=${want[0]} || w=${want[2]}
    mapfile -t exp < <($HELLO get "$w" ja4 ciphers groups)
    mapfile -t got < <($HELLO get "$(access_line "\"sni\":\"$who.lab.test\"")" ja4 ciphers groups \
        ech sni_outer_only alpn)
    assert_eq "$who: gateway JA4 = JA4 computed here" "${exp[0]}" "${got[0]}"
    assert_eq "$who: cipher suites as offered (hex)" "${exp[1]}" "${got[1]}"
    assert_eq "$who: groups by name" "${exp[2]}" "${got[2]}"
    assert_eq "$who: no ECH" false "${got[3]}"
    assert_eq "$who: no sni_outer_only without ECH" "" "${got[4]}"
    [ $who = curl ] || continue
    assert_eq "curl: ALPN offer logged" '["h2", "http/1.1"]' "${got[5]}"
    assert_contains "curl: x25519 offered first" "${got[2]}" '["x25519", "secp256r1"'
done

# ECH: the SNI seen is only the outer one, and the log says so.
$HELLO ech "$GW" public.lab.test "$T/ech.bin"
want_ech=$($HELLO get "$($HELLO describe "$T/ech.bin")" ja4)
wait_access '"sni":"public.lab.test"'
mapfile -t got < <($HELLO get "$(access_line '"sni":"public.lab.test"')" ech sni_outer_only ja4)
assert_eq "ECH hello: ech true" true "${got[0]}"
assert_eq "ECH hello: sni_outer_only" true "${got[1]}"
assert_eq "ECH hello: JA4 = JA4 computed here" "$want_ech" "${got[2]}"
echo "# Python ssl + ECH extension -> JA4 ${got[2]}"
end_gateway

# The text format carries the fingerprint too.
sed 's/^admin:.*/&\nlog: { format: text }/' "$T/gw.yaml" >"$T/gw-text.yaml"
start_gateway "$T/gw-text.yaml" "$GW" || bail "the gateway does not start (text log)"
curl_cmd "$GW" >/dev/null || fail "curl through the passthrough listener (text log)"
wait_for_log "$T/gateway.log" "sni=curl.lab.test" 10 || true
text=$(grep ' passthrough .*sni=curl.lab.test' "$T/gateway.log" || true)
assert_contains "text line: JA4, cipher count, no ECH" "$text" \
    "ja4=${ja4[0]} ciphers=31 ech=no ->"
end_gateway
finish
