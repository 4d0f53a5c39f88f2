"""Push-to-warm latency: pushes N images to a registry whose notifications go to dimsum, one at a
time, and times each from the registry's 201 for the manifest to dimsum holding the image (its
dimsum_prefetches_total{outcome="ok"} counter moving on).

Usage: push.py REGISTRY_URL DIMSUM_URL REPOSITORY COUNT
Prints {"median_ms", "p99_ms", "max_ms", "pushes"} as JSON.
"""
import hashlib
import json
import statistics
import sys
import time
import urllib.request

base, dimsum, repo, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with opener.open(req, timeout=60) as r:
        return r.status, r.headers, r.read()


def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, h, _ = call("POST", f"{base}/v2/{repo}/blobs/uploads/")
    loc = h["Location"]
    loc = loc if loc.startswith("http") else base + loc
    sep = "&" if "?" in loc else "?"
    call("PUT", f"{loc}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return digest


def prefetched():
    _, _, text = call("GET", f"{dimsum}/metrics")
    for line in text.decode().splitlines():
        if line.startswith("dimsum_prefetches_total{") and 'outcome="ok"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


layer = b"push benchmark layer " * 64
layer_digest = blob(layer)
latencies = []
for i in range(count):
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Labels": {"revision": f"push-{i}"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"/bin/sh -c echo {i}"}],
    }).encode()
    config_digest = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layer_digest}],
    }).encode()
    before = prefetched()
    status, _, _ = call("PUT", f"{base}/v2/{repo}/manifests/p{i}", manifest,
                        {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
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
