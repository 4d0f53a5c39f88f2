"""Cold lookups over a fleet of replicas: every image wanted by every replica at about the same
time (as when pipelines on several dimsum pods read the same new image). Reports lookups per
second and the registry requests the fleet made per image (manifest GETs and blob GETs, summed
from each replica's /metrics), with the Redis errors (commands past their timeout) and fetch-lock
waits behind them.

Usage: fleet.py FIRST COUNT URL [URL ...]   (images t<FIRST> … t<FIRST+COUNT-1>)
"""
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

first, count, urls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url):
    with opener.open(url, timeout=30) as r:
        r.read()
        return r.status


def upstream():
    total = {"manifest_get": 0, "blob": 0, "error": 0, "wait": 0}
    for base in urls:
        text = opener.open(f"{base}/metrics", timeout=10).read().decode()
        for line in text.splitlines():
            if line.startswith("dimsum_upstream_requests_total{"):
                for kind in ("manifest_get", "blob"):
                    if f'kind="{kind}"' in line:
                        total[kind] += int(float(line.rsplit(" ", 1)[1]))
            if line.startswith("dimsum_shared_events_total{"):
                for result in ("error", "wait"):
                    if f'result="{result}"' in line:
                        total[result] += int(float(line.rsplit(" ", 1)[1]))
    return total


before = upstream()
started = time.perf_counter()
with ThreadPoolExecutor(64) as pool:
    jobs = [pool.submit(get, f"{base}/local/bench/app/t{i}/history?level=0")
            for i in range(first, first + count) for base in urls]
    statuses = [j.result() for j in jobs]
elapsed = time.perf_counter() - started
after = upstream()
assert all(s == 200 for s in statuses), statuses
print(json.dumps({
    "lookups_per_s": round(len(statuses) / elapsed),
    "images": count,
    "manifest_gets_per_image": round((after["manifest_get"] - before["manifest_get"]) / count, 2),
    "blob_gets_per_image": round((after["blob"] - before["blob"]) / count, 2),
    "redis_errors": after["error"] - before["error"],
    "lock_waits": after["wait"] - before["wait"],
}))
