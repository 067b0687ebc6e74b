#!/usr/bin/env python3
"""Test client for tlsgate integration tests: a real TLS client (Python's ssl,
i.e. OpenSSL) whose wire bytes we control, to send what curl cannot:

  get     TLS handshake + one HTTP request; the ClientHello can be split into
          1-byte TCP segments (--split) or re-framed into several TLS records
          (--records N), preceded by a PROXY header (--proxy v1|v2 --src ip:port)
  raw     send bytes (text or --hex), report whether/when the peer closed
  sink    a plain TCP server: reads each connection to EOF, answers
          "<bytes> <sha256>\n", then closes (half-close checks)
  halfclose  a real ClientHello plus N bytes, then shutdown(SHUT_WR); reads
          the answer to EOF
  hold    open N TCP connections (optionally sending a partial ClientHello),
          print "held N" and keep them until stdin closes or --seconds pass

Prints results as JSON on stdout; exits 1 on failure.
"""
import argparse
import json
import select
import socket
import ssl
import struct
import sys
import time


def proxy_header(version, src, dst):
    sip, sport = src.rsplit(":", 1)
    dip, dport = dst
    if version == "v1":
        return f"PROXY TCP4 {sip} {dip} {sport} {dport}\r\n".encode()
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(sip) + socket.inet_aton(dip) + struct.pack("!HH", int(sport), int(dport))
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def reframe(data, nrecords):
    """Re-frames the handshake records at the start of data into nrecords records."""
    msgs = b""
    pos = 0
    version = data[1:3]
    while pos + 5 <= len(data) and data[pos] == 22:
        length = struct.unpack("!H", data[pos + 3:pos + 5])[0]
        msgs += data[pos + 5:pos + 5 + length]
        pos += 5 + length
    rest = data[pos:]
    size = max(1, -(-len(msgs) // nrecords))
    out = b""
    for i in range(0, len(msgs), size):
        chunk = msgs[i:i + size]
        out += bytes([22]) + version + struct.pack("!H", len(chunk)) + chunk
    return out + rest


def recv_some(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return None


def cmd_get(a):
    ctx = ssl.create_default_context(cafile=a.cafile) if a.cafile else ssl._create_unverified_context()
    if a.alpn:
        ctx.set_alpn_protocols(a.alpn.split(","))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=a.sni or None)
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.proxy:
        sock.sendall(proxy_header(a.proxy, a.src, sock.getpeername()))
    first = True
    t0 = time.time()
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = out.read()
        if data:
            if first and a.records > 1:
                data = reframe(data, a.records)
            if first and a.split:
                for i in range(0, len(data), a.split):
                    sock.sendall(data[i:i + a.split])
                    if a.delay_ms:
                        time.sleep(a.delay_ms / 1000.0)
            else:
                sock.sendall(data)
            first = False
        if done:
            break
        chunk = recv_some(sock, a.timeout)
        if not chunk:
            print(json.dumps({"ok": False, "error": "closed during handshake"}))
            return 1
        inc.write(chunk)
    cert = tls.getpeercert(binary_form=False) if a.cafile else None
    der = tls.getpeercert(binary_form=True)
    req = f"GET {a.path} HTTP/1.1\r\nHost: {a.sni or 'localhost'}\r\nConnection: close\r\n\r\n"
    tls.write(req.encode())
    sock.sendall(out.read())
    resp = b""
    while True:
        try:
            piece = tls.read(65536)
            if not piece:
                break
            resp += piece
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        chunk = recv_some(sock, a.timeout)
        if not chunk:
            break
        inc.write(chunk)
    sock.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    subject = dict(x[0] for x in cert["subject"]) if cert else None
    print(json.dumps({"ok": True, "status": head.split(b" ")[1].decode() if head else None,
                      "subject_cn": subject.get("commonName") if subject else None,
                      "cert_len": len(der) if der else 0,
                      "version": tls.version(), "ms": int((time.time() - t0) * 1000),
                      "body": body.decode(errors="replace")}))
    return 0


def cmd_raw(a):
    data = bytes.fromhex(a.data) if a.hex else a.data.encode().decode("unicode_escape").encode("latin1")
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    t0 = time.time()
    try:
        sock.sendall(data)
    except OSError:
        pass
    got = b""
    closed = False
    while time.time() - t0 < a.timeout:
        try:
            chunk = recv_some(sock, a.timeout - (time.time() - t0))
        except ConnectionResetError:
            closed = True
            break
        if chunk is None:
            break
        if chunk == b"":
            closed = True
            break
        got += chunk
    print(json.dumps({"closed": closed, "ms": int((time.time() - t0) * 1000), "received": len(got)}))
    return 0


def cmd_hold(a):
    socks = []
    partial = bytes.fromhex("160301")  # start of a TLS record, never finished
    for _ in range(a.count):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
        if a.partial_hello:
            s.sendall(partial)
        socks.append(s)
    print(f"held {len(socks)}", flush=True)
    end = time.time() + a.seconds
    while time.time() < end:
        r, _, _ = select.select([sys.stdin], [], [], 0.2)
        if r and not sys.stdin.readline():
            break
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except (BlockingIOError, ssl.SSLError):
            pass
        except ConnectionResetError:
            closed += 1
        s.close()
    print(json.dumps({"held": len(socks), "closed_by_peer": closed}))
    return 0


def client_hello(sni):
    """The ClientHello OpenSSL would send for sni (no server needed)."""
    ctx = ssl._create_unverified_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def cmd_sink(a):
    import hashlib
    import threading
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(64)
    print("listening", flush=True)

    def serve(c):
        h, n = hashlib.sha256(), 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
        c.sendall(f"{n} {h.hexdigest()}\n".encode())
        c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def cmd_halfclose(a):
    import hashlib
    import os
    data = client_hello(a.sni) + os.urandom(a.bytes)
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = sock.recv(65536)
        if not d:
            break
        reply += d
    sock.close()
    print(json.dumps({"sent": f"{len(data)} {hashlib.sha256(data).hexdigest()}",
                      "reply": reply.decode().strip()}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("get")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--sni", default="")
    g.add_argument("--path", default="/")
    g.add_argument("--cafile")
    g.add_argument("--alpn")
    g.add_argument("--split", type=int, default=0, help="send the ClientHello N bytes per segment")
    g.add_argument("--delay-ms", type=int, default=0)
    g.add_argument("--records", type=int, default=1, help="re-frame the ClientHello into N records")
    g.add_argument("--proxy", choices=["v1", "v2"])
    g.add_argument("--src", default="203.0.113.7:4242")
    g.add_argument("--timeout", type=float, default=10)
    r = sub.add_parser("raw")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--hex", action="store_true")
    r.add_argument("--timeout", type=float, default=10)
    k = sub.add_parser("sink")
    k.add_argument("--port", type=int, required=True)
    c = sub.add_parser("halfclose")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--sni", default="sink.lab.test")
    c.add_argument("--bytes", type=int, default=100000)
    c.add_argument("--timeout", type=float, default=20)
    h = sub.add_parser("hold")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--count", type=int, default=1)
    h.add_argument("--partial-hello", action="store_true")
    h.add_argument("--seconds", type=float, default=30)
    h.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()
    try:
        return {"get": cmd_get, "raw": cmd_raw, "hold": cmd_hold, "sink": cmd_sink,
                "halfclose": cmd_halfclose}[a.cmd](a)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"ok": False, "error": str(e)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
