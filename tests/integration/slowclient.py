#!/usr/bin/env python3
"""Slow and idle clients for the timeout and slow-client tests of tlsgate.

  slowclient.py MODE --port P [--sni NAME] [--cafile F] [--interval-ms N]
                [--max-wait S]

MODE says what the client does before it waits for the gateway to close:
  hello-partial  sends the first 20 bytes of a real ClientHello, then nothing
  hello-trickle  sends a real ClientHello one byte every --interval-ms
  silent         connects and sends nothing (no TLS handshake either)
  head-trickle   (TLS when --sni is given, after the handshake) sends a request
                 head one byte every --interval-ms, without ever ending it
  keepalive      (TLS when --sni) one request, reads the response, then idles
  tls-idle       (--sni) a TLS handshake end to end (passthrough), then idles

Prints one JSON object: "elapsed" (seconds from the start of the phase the
gateway times - just before connect, after the handshake, or just before the
keep-alive request - to the gateway's close; never later than the gateway's
own clock starts),
"closed" (the gateway closed, vs. --max-wait passed), "status" (the status of
the first HTTP response read in the waiting phase, or null) and "sent" (bytes
sent while trickling).

  hold  N --port P [--port2 P2] [--sni NAME]: opens N connections
                 alternately to P (a partial ClientHello) and P2 (a partial
                 request head), prints "held N" and keeps them until stdin
                 closes; prints "lost K" for connections the gateway closed.
"""
import argparse
import json
import select
import socket
import ssl
import sys
import time


def client_hello(sni):
    """The bytes of a real ClientHello for sni, made by Python's ssl."""
    ctx = ssl._create_unverified_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_close(sock, max_wait):
    """Reads until EOF/reset or max_wait. Returns (closed, data)."""
    deadline, data = time.monotonic() + max_wait, b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, data
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, data
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True, data
        if not chunk:
            return True, data
        data += chunk


def status_of(data):
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def answered(sock, wait, pre):
    """Waits up to wait s for the gateway's answer or close; appends what came to pre.
    TLS records that carry no data (session tickets) do not count."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return False
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            continue
        except (ssl.SSLError, OSError):
            return True
        finally:
            sock.setblocking(True)
        pre.append(data)
        return True


def tls_wrap(sock, a):
    if a.cafile:
        ctx = ssl.create_default_context(cafile=a.cafile)
    else:
        ctx = ssl._create_unverified_context()
    return ctx.wrap_socket(sock, server_hostname=a.sni)


def run(a):
    # Made before connecting: the gateway's clock starts at accept, ours must not start later.
    hello = client_hello(a.sni or "x.lab.test")
    t0 = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent, pre = 0, []
    if a.mode == "hello-partial":
        sock.sendall(hello[:20])
    elif a.mode == "silent":
        pass
    elif a.mode == "hello-trickle":
        sock.setblocking(False)
        for b in hello:
            try:
                sock.send(bytes([b]))
            except (BlockingIOError, OSError):
                break
            sent += 1
            r, _, _ = select.select([sock], [], [], a.interval_ms / 1000.0)
            if r:
                break
        sock.setblocking(True)
    elif a.mode == "head-trickle":
        if a.sni:
            sock = tls_wrap(sock, a)
        head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
        t0 = time.monotonic()
        for b in head:
            try:
                sock.sendall(bytes([b]))
            except OSError:
                break
            sent += 1
            if answered(sock, a.interval_ms / 1000.0, pre):
                break
    elif a.mode == "keepalive":
        if a.sni:
            sock = tls_wrap(sock, a)
        # From the request on: the keep-alive clock starts when the answer is out.
        t0 = time.monotonic()
        sock.sendall(b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(body) < length:
            body += sock.recv(65536)
    elif a.mode == "tls-idle":
        sock = tls_wrap(sock, a)
        t0 = time.monotonic()
    if pre and pre[-1] == b"":
        closed, data = True, b"".join(pre)
    else:
        closed, data = wait_close(sock, a.max_wait)
        data = b"".join(pre) + data
    print(json.dumps({"elapsed": round(time.monotonic() - t0, 3), "closed": closed,
                      "status": status_of(data), "sent": sent}))


def hold(a):
    """Many slow clients at once, held until stdin closes."""
    hello = client_hello(a.sni or "x.lab.test")[:20]
    socks = []
    for i in range(a.n):
        port = a.port2 if a.port2 and i % 2 else a.port
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a" if port == a.port2 else hello)
        s.setblocking(False)
        socks.append(s)
    print("held", len(socks), flush=True)
    sys.stdin.read()
    lost = 0
    for s in socks:
        try:
            if s.recv(1) == b"":
                lost += 1
        except BlockingIOError:
            pass
        except OSError:
            lost += 1
        s.close()
    print("lost", lost, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("n", nargs="?", type=int, default=0)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--port2", type=int, default=0)
    p.add_argument("--sni", default="")
    p.add_argument("--cafile", default="")
    p.add_argument("--interval-ms", type=int, default=100)
    p.add_argument("--max-wait", type=float, default=10)
    a = p.parse_args()
    if a.mode == "hold":
        hold(a)
    else:
        run(a)


if __name__ == "__main__":
    main()
