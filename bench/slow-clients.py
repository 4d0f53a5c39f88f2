"""Slow clients against a running `dimsum serve`: COUNT connections that send half a request and
never finish it. Reports how many client sockets the dimsum process holds (its open file
descriptors, less those it had before), how many of ours it has closed 15 s later, and whether a
normal request is answered afterwards.

Usage: slow-clients.py HOST:PORT DIMSUM_PID COUNT
"""
import json
import os
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
pid, count = int(sys.argv[2]), int(sys.argv[3])


def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))


before = fds()
clients = []
for _ in range(count):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    clients.append(s)
held_peak = fds() - before


def closed(s):
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


time.sleep(15)  # the scenario: 15 s of never finishing
closed_after = sum(closed(s) for s in clients)
held_after = fds() - before
for s in clients:
    s.close()
normal = socket.create_connection((host, int(port)), timeout=5)
normal.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
answer = normal.recv(4096).split(b"\r\n", 1)[0].decode()
print(json.dumps({
    "clients": count,
    "sockets_held_after_connecting": held_peak,
    "closed_within_15s": closed_after,
    "closed_share": round(closed_after / count, 3),
    "sockets_held_after_15s": held_after,
    "normal_request": answer,
}))
