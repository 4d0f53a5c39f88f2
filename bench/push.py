"""Push-to-warm latency: pushes N images to a registry whose notifications go to dimsum, one at a
time, and times each from the registry's 201 for the manifest to dimsum holding the image (its
dimsum_prefetches_total{outcome="ok"} counter moving on).

Usage: push.py REGISTRY_URL DIMSUM_URL REPOSITORY COUNT
Prints {"median_ms", "p99_ms", "max_ms", "pushes"} as JSON.
"""
import json
import statistics
import sys
import time

from seed import Pusher, call

base, dimsum, repo, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pusher = Pusher(base, repo)


def prefetched():
    _, _, text = call("GET", f"{dimsum}/metrics")
    for line in text.decode().splitlines():
        if line.startswith("dimsum_prefetches_total{") and 'outcome="ok"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


layer = b"push benchmark layer " * 64
layer_digest = pusher.blob(layer)
latencies = []
for i in range(count):
    push = pusher.labelled(f"p{i}", f"push-{i}", layer, layer_digest)
    before = prefetched()
    status = push()
    assert status == 201, status
    pushed = time.perf_counter()
    deadline = pushed + 10
    while prefetched() <= before:
        if time.perf_counter() > deadline:
            sys.exit(f"push {i}: not pre-fetched within 10 s")
        time.sleep(0.0005)
    latencies.append((time.perf_counter() - pushed) * 1000)

latencies.sort()
print(json.dumps({
    "median_ms": round(statistics.median(latencies), 2),
    "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2),
    "max_ms": round(latencies[-1], 2),
    "pushes": len(latencies),
}))
