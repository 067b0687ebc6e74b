"""A TLS client that decides how its records meet the wire (test_tls_records.sh).

Usage: tlsrecords.py PORT SNI CAFILE SCENARIO

The TLS engine is Python's SSLObject on memory BIOs, so the test chooses
which records share one send(): records that reach the gateway together may
be read ahead by OpenSSL at once, beyond the record libevent asked for, and
must still be answered without more bytes from the client. Scenarios:

  finished+request  the client's handshake Finished and its first request in one write
  pipelined         three requests, one record each, in one write
  split-head        one request head cut across three records, in one write
  head+body         a POST head and its body in two records, in one write
  websocket         an upgrade request and a WebSocket frame in two records,
                    in one write: the frame must reach the origin's echo after the 101

Prints one line per response ("200 <body>") or the echoed frame, and exits
1 on a timeout (5 s without progress) or a malformed answer.
"""
import os
import socket
import ssl
import struct
import sys

port, sni, cafile, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
ctx.set_alpn_protocols(["http/1.1"])
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
sock = socket.create_connection(("127.0.0.1", port), timeout=5)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def flush():
    data = outgoing.read()
    if data:
        sock.sendall(data)


def receive():
    data = sock.recv(65536)
    if not data:
        sys.exit("gateway closed the connection")
    incoming.write(data)


def request(path, extra=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: " + sni.encode() + b"\r\n" + extra + b"\r\n"


# Handshake; the last flight (Finished) is kept back for some scenarios.
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        receive()

if scenario != "finished+request":
    flush()

plain = b""


def read_plain():
    """Decrypts what arrived; blocks for more when nothing did."""
    global plain
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:
                sys.exit("TLS closed")
            plain += chunk
            return
        except ssl.SSLWantReadError:
            receive()


def read_response():
    """One response with Content-Length; returns (status, body)."""
    global plain
    while b"\r\n\r\n" not in plain:
        read_plain()
    head, _, rest = plain.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if status == 101:
        plain = rest
        return status, b""
    while len(rest) < length:
        read_plain()
        rest = plain.partition(b"\r\n\r\n")[2]
    plain = rest[length:]
    return status, rest[:length]


try:
    if scenario == "finished+request":
        tls.write(request(b"/one"))
        flush()  # Finished + request record: one send()
        expect = 1
    elif scenario == "pipelined":
        for path in (b"/a", b"/b", b"/c"):
            tls.write(request(path))
        flush()
        expect = 3
    elif scenario == "split-head":
        head = request(b"/split", b"X-Pad: " + b"p" * 300 + b"\r\n")
        for i in range(3):
            tls.write(head[i * len(head) // 3 : (i + 1) * len(head) // 3])
        flush()
        expect = 1
    elif scenario == "head+body":
        body = b"x" * 5000
        tls.write(b"POST /post HTTP/1.1\r\nHost: " + sni.encode() +
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        tls.write(body)
        flush()
        expect = 1
    elif scenario == "websocket":
        key = b"dGhlIHNhbXBsZSBub25jZQ=="
        tls.write(request(b"/ws", b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n"))
        payload, mask = b"read ahead", os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        tls.write(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
        flush()  # upgrade request + frame: one send()
        status, _ = read_response()
        if status != 101:
            sys.exit(f"upgrade answered {status}")
        while len(plain) < 2 + len(payload):
            read_plain()
        if plain[0] != 0x81 or plain[1] != len(payload):
            sys.exit(f"unexpected frame {plain[:2]!r}")
        print("echo " + plain[2 : 2 + len(payload)].decode())
        sys.exit(0)
    else:
        sys.exit(f"unknown scenario {scenario}")
    for _ in range(expect):
        status, body = read_response()
        print(status, body.decode(errors="replace"))
except socket.timeout:
    sys.exit("timeout: no answer within 5 s")
