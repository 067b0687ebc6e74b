#!/usr/bin/env python3
"""Raw HTTP/1.1 client (and two tiny servers) for the tests of tlsgate's HTTP
modes (offload, bridge, http): it sends exactly the bytes a test gives it,
over TLS (Python's ssl, i.e. OpenSSL) or plain TCP, so malformed, smuggling,
pipelined and slow requests can be written that curl would never send.

  send       connect (optionally PROXY header, TLS), send --data (escapes
             like \\r\\n \\x00 are decoded), optionally --data2 after a pause or
             after a 1xx interim response, then read and parse the responses
             until the peer closes, --expect N final responses arrived, or
             --timeout passes. --trickle-ms sends --data one byte at a time
             (slowloris) and stops as soon as the server answers.
  ws         WebSocket: upgrade handshake, one masked text frame (and an
             optional large binary one), expects the echo
  badserver  a plain TCP server that reads a request head and answers
             --reply (escapes decoded), then closes: a broken backend
  tlsinfo    handshake only: version, cipher, ALPN, peer subject (or the error)

Prints one JSON object on stdout. send and ws exit 0 even when the connection
failed ("ok": false says so) so a test can go on and report; tlsinfo exits 1
when the handshake failed.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time


def unescape(text):
    """'GET / HTTP/1.1\\r\\n' as typed in a shell -> the bytes."""
    return text.encode("latin1").decode("unicode_escape").encode("latin1")


def proxy_header(version, src, dst):
    sip, sport = src.rsplit(":", 1)
    dip, dport = dst
    if version == "v1":
        return f"PROXY TCP4 {sip} {dip} {sport} {dport}\r\n".encode()
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(sip) + socket.inet_aton(dip) + struct.pack("!HH", int(sport), int(dport))
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def connect(a):
    """A connected socket, TLS-wrapped when --tls. Raises OSError/SSLError."""
    raw = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if a.proxy:
        raw.sendall(proxy_header(a.proxy, a.src, raw.getpeername()))
    if not a.tls:
        return raw
    if a.cafile:
        ctx = ssl.create_default_context(cafile=a.cafile)
        if not a.sni:
            ctx.check_hostname = False
    else:
        ctx = ssl._create_unverified_context()
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    ctx.set_alpn_protocols(a.alpn.split(",") if a.alpn else ["http/1.1"])
    return ctx.wrap_socket(raw, server_hostname=a.sni or None)


class Reader:
    """Buffered reads with an overall deadline; remembers how the stream ended."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.buf = b""
        self.deadline = deadline
        self.closed = False  # the peer closed (FIN, TLS EOF or reset)
        self.reset = False
        self.timed_out = False

    def fill(self):
        """Reads more into buf. Returns False at EOF or timeout."""
        if self.closed or self.timed_out:
            return False
        left = self.deadline - time.time()
        if left <= 0:
            self.timed_out = True
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            self.timed_out = True
            return False
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "UNEXPECTED" in str(e).upper():
                data = b""
            else:
                raise
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def until(self, marker):
        while marker not in self.buf:
            if not self.fill():
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        while self.fill():
            pass
        out, self.buf = self.buf, b""
        return out


def parse_head(head):
    lines = head.decode("latin1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append([name, value.strip()])
    return status_line, status, headers


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def read_response(r, is_head):
    """One response (interim ones included) from r, or None when the stream ended first."""
    head = r.until(b"\r\n\r\n")
    if head is None:
        return None
    status_line, status, headers = parse_head(head[:-4])
    resp = {"status": status, "status_line": status_line, "headers": headers,
            "interim": status is not None and 100 <= status < 200}
    body = b""
    te = (header(headers, "transfer-encoding") or "").lower()
    cl = header(headers, "content-length")
    complete = True
    if resp["interim"] or is_head or status in (204, 304):
        pass
    elif "chunked" in te:
        while True:
            line = r.until(b"\r\n")
            if line is None:
                complete = False
                break
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                trailer = r.until(b"\r\n")
                while trailer not in (None, b"\r\n"):
                    trailer = r.until(b"\r\n")
                break
            piece = r.take(size + 2)
            if piece is None:
                complete = False
                break
            body += piece[:-2]
    elif cl is not None:
        piece = r.take(int(cl))
        if piece is None:
            complete = False
            body = r.buf
        else:
            body = piece
    else:
        body = r.rest()
    resp["complete"] = complete
    resp["body_len"] = len(body)
    resp["body_sha256"] = hashlib.sha256(body).hexdigest()
    resp["body"] = body[:8192].decode("utf-8", errors="replace")
    return resp


def request_methods(data):
    """Methods of the request lines in data, in order (to know which answers have no body)."""
    return re.findall(rb"(?:^|\r\n\r\n)([A-Z]+) \S+ HTTP/1\.[01]\r\n", data)


def poll_answer(sock):
    """Application bytes the peer sent so far without blocking: None when none
    (TLS 1.3 session tickets arriving after the handshake are not an answer),
    b"" when it closed."""
    if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return None
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return None
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError):
        return b""
    finally:
        sock.setblocking(True)


def cmd_send(a):
    data = bytes.fromhex(a.data) if a.hex else unescape(a.data)
    data2 = unescape(a.data2) if a.data2 is not None else None
    t0 = time.time()
    try:
        sock = connect(a)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"ok": False, "error": f"connect: {e}", "ms": int((time.time() - t0) * 1000),
                          "responses": []}))
        return 0
    out = {"ok": True, "tls_version": sock.version() if a.tls else None,
           "alpn": sock.selected_alpn_protocol() if a.tls else None}
    t0 = time.time()
    r = Reader(sock, t0 + a.timeout)
    send_error = None
    try:
        if a.trickle_ms:
            for i in range(len(data)):
                got = poll_answer(sock)
                if got is not None:  # answered (or closed): stop sending
                    r.buf += got
                    r.closed = got == b""
                    break
                sock.sendall(data[i:i + 1])
                time.sleep(a.trickle_ms / 1000.0)
        else:
            sock.sendall(data)
    except OSError as e:
        send_error = str(e)
    methods = request_methods(data + (data2 or b""))
    responses = []
    sent2 = data2 is None
    if not sent2 and not a.after_interim:
        time.sleep(a.pause_ms / 1000.0)
        try:
            sock.sendall(data2)
        except OSError as e:
            send_error = str(e)
        sent2 = True
    finals = 0
    while a.expect == 0 or finals < a.expect:
        is_head = finals < len(methods) and methods[finals] == b"HEAD"
        try:
            resp = read_response(r, is_head)
        except (ValueError, IndexError) as e:
            out["parse_error"] = str(e)
            break
        if resp is None:
            break
        resp["ms"] = int((time.time() - t0) * 1000)
        responses.append(resp)
        if resp["interim"]:
            if not sent2 and resp["status"] == 100:
                try:
                    sock.sendall(data2)
                except OSError as e:
                    send_error = str(e)
                sent2 = True
            continue
        finals += 1
    if a.wait_close and not r.closed:
        r.rest()
    out.update({"closed": r.closed, "reset": r.reset, "timed_out": r.timed_out,
                "ms": int((time.time() - t0) * 1000), "responses": responses,
                "leftover": len(r.buf), "sent_data2": sent2, "send_error": send_error})
    try:
        sock.close()
    except OSError:
        pass
    print(json.dumps(out))
    return 0


def ws_frame(opcode, payload):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def ws_read_frame(r):
    h = r.take(2)
    if h is None:
        return None, None
    opcode = h[0] & 0x0F
    n = h[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", r.take(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", r.take(8))[0]
    mask = r.take(4) if h[1] & 0x80 else None
    payload = r.take(n)
    if payload is None:
        return opcode, None
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def cmd_ws(a):
    try:
        sock = connect(a)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"ok": False, "error": f"connect: {e}"}))
        return 0
    key = base64.b64encode(os.urandom(16)).decode()
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                            .digest()).decode()
    req = (f"GET {a.path} HTTP/1.1\r\nHost: {a.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    sock.sendall(req.encode())
    r = Reader(sock, time.time() + a.timeout)
    head = r.until(b"\r\n\r\n")
    if head is None:
        print(json.dumps({"ok": False, "error": "no handshake response", "closed": r.closed}))
        return 0
    _, status, headers = parse_head(head[:-4])
    out = {"ok": True, "status": status, "headers": headers,
           "accept_ok": header(headers, "sec-websocket-accept") == want}
    if status != 101:
        print(json.dumps(out))
        return 0
    sock.sendall(ws_frame(1, a.message.encode()))
    op, payload = ws_read_frame(r)
    out["opcode"] = op
    out["echo"] = payload.decode(errors="replace") if payload is not None else None
    if a.big:
        big = os.urandom(a.big)
        sock.sendall(ws_frame(2, big))
        op, payload = ws_read_frame(r)
        out["big_echo_ok"] = payload == big
    sock.sendall(ws_frame(8, struct.pack("!H", 1000)))
    op, _ = ws_read_frame(r)
    out["close_opcode"] = op
    sock.close()
    print(json.dumps(out))
    return 0


def cmd_badserver(a):
    reply = unescape(a.reply)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(64)
    print("listening", flush=True)

    def serve(c):
        c.settimeout(10)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                d = c.recv(65536)
                if not d:
                    break
                got += d
            if a.record:  # one line per connection: what came before the head's end or EOF
                with open(a.record, "ab") as f:
                    f.write(got.replace(b"\r\n", b"\\r\\n") + b"\n")
            c.sendall(reply)
        except OSError:
            pass
        c.close()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def cmd_tlsinfo(a):
    a.tls = True
    try:
        sock = connect(a)
        sock.do_handshake()
        if a.probe_ms:
            # TLS 1.3: a refused client certificate is only reported after the handshake.
            sock.settimeout(a.probe_ms / 1000.0)
            try:
                if sock.recv(1) == b"":
                    raise ConnectionError("closed by the server right after the handshake")
            except socket.timeout:
                pass
        cert = sock.getpeercert() if a.cafile else None
        subject = dict(x[0] for x in cert["subject"]) if cert else None
        out = {"ok": True, "version": sock.version(), "cipher": sock.cipher()[0],
               "alpn": sock.selected_alpn_protocol(),
               "subject_cn": subject.get("commonName") if subject else None}
        sock.close()
    except (OSError, ssl.SSLError) as e:
        out = {"ok": False, "error": str(e)}
    print(json.dumps(out))
    return 0 if out["ok"] else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)

    def conn_opts(s):
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--tls", action="store_true")
        s.add_argument("--sni", default="")
        s.add_argument("--cafile")
        s.add_argument("--cert")
        s.add_argument("--key")
        s.add_argument("--alpn")
        s.add_argument("--proxy", choices=["v1", "v2"])
        s.add_argument("--src", default="203.0.113.7:4242")
        s.add_argument("--timeout", type=float, default=10)

    s = sub.add_parser("send")
    conn_opts(s)
    s.add_argument("--data", required=True)
    s.add_argument("--hex", action="store_true")
    s.add_argument("--data2")
    s.add_argument("--pause-ms", type=int, default=0)
    s.add_argument("--after-interim", action="store_true", help="send --data2 after a 100 Continue")
    s.add_argument("--trickle-ms", type=int, default=0)
    s.add_argument("--expect", type=int, default=0, help="stop after N final responses (0: read to EOF)")
    s.add_argument("--wait-close", action="store_true", help="after --expect responses, read to EOF")
    w = sub.add_parser("ws")
    conn_opts(w)
    w.add_argument("--host", default="localhost")
    w.add_argument("--path", default="/ws")
    w.add_argument("--message", default="hello tlsgate")
    w.add_argument("--big", type=int, default=0)
    b = sub.add_parser("badserver")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--reply", required=True)
    b.add_argument("--record", help="append what each connection sent to this file, a line each")
    i = sub.add_parser("tlsinfo")
    conn_opts(i)
    i.add_argument("--probe-ms", type=int, default=0, help="then wait this long for an alert")
    a = p.parse_args()
    fn = {"send": cmd_send, "ws": cmd_ws, "badserver": cmd_badserver, "tlsinfo": cmd_tlsinfo}[a.cmd]
    if a.cmd not in ("send", "ws"):
        return fn(a)
    try:
        return fn(a)
    except Exception as e:  # report, never abort the calling test
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}", "responses": []}))
        return 0


if __name__ == "__main__":
    sys.exit(main())
