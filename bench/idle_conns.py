#!/usr/bin/env python3
"""Opens N TLS connections to 127.0.0.1:PORT (handshake done, one request
served when --request is given), prints "ready" and holds them until stdin
closes. Used to measure memory per idle connection."""
import socket
import ssl
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
request = len(sys.argv) > 3 and sys.argv[3] == "--request"
ctx = ssl._create_unverified_context()
conns = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    t = ctx.wrap_socket(s, server_hostname="web.lab.test")
    if request:
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: web.lab.test\r\n\r\n")
        t.recv(4096)
    conns.append(t)
print("ready", flush=True)
sys.stdin.readline()
