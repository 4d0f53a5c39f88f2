"""Push-to-trigger latency: pushes N images to a registry whose notifications go to a dimsum with
`dimsum.triggers` pointing at a stand-in Gate (an HTTP server in this process), one at a time, and
times each from the registry's 201 for the manifest to Gate receiving the POST for that tag.

Usage: trigger.py REGISTRY_URL GATE_PORT REPOSITORY COUNT
Prints {"median_ms", "p99_ms", "max_ms", "pushes"} as JSON.
"""
import http.server
import json
import statistics
import sys
import threading
import time

from seed import Pusher

base, gate_port, repo, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
arrived = {}
lock = threading.Condition()


class Gate(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.perf_counter()
        tag = json.loads(body)["tag"]
        with lock:
            arrived.setdefault(tag, now)
            lock.notify_all()
        answer = b'{"eventProcessed":true,"eventId":"bench"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", gate_port), Gate)
threading.Thread(target=server.serve_forever, daemon=True).start()

pusher = Pusher(base, repo)
layer = b"trigger benchmark layer " * 64
layer_digest = pusher.blob(layer)
latencies = []
for i in range(count):
    push = pusher.labelled(f"g{i}", f"trigger-{i}", layer, layer_digest)
    status = push()
    assert status == 201, status
    pushed = time.perf_counter()
    with lock:
        if not lock.wait_for(lambda: f"g{i}" in arrived, timeout=10):
            sys.exit(f"push {i}: no trigger within 10 s")
    latencies.append((arrived[f"g{i}"] - pushed) * 1000)

server.shutdown()
latencies.sort()
print(json.dumps({
    "median_ms": round(statistics.median(latencies), 2),
    "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2),
    "max_ms": round(latencies[-1], 2),
    "pushes": len(latencies),
}))
