"""Pipelined stdio throughput: writes N getHistory requests to `dimsum stdio` while reading replies.

Usage: stdio.py DIMSUM CONFIG N
Prints requests per second over the whole exchange (first write to last reply).
"""
import json
import subprocess
import sys
import threading
import time

binary, config, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
line = lambda i: json.dumps({"jsonrpc": "2.0", "id": i, "method": "getHistory",
                             "params": ["local", "bench/app", "v1", 0]}) + "\n"
proc = subprocess.Popen([binary, "--config", config, "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
# Warm the caches with one request first.
proc.stdin.write(line(-1).encode()); proc.stdin.flush(); proc.stdout.readline()
payload = "".join(line(i) for i in range(n)).encode()
start = time.perf_counter()
writer = threading.Thread(target=lambda: (proc.stdin.write(payload), proc.stdin.close()))
writer.start()
errors = 0
for _ in range(n):
    if b'"result"' not in proc.stdout.readline():
        errors += 1
elapsed = time.perf_counter() - start
writer.join()
proc.wait()
print(json.dumps({"requests": n, "seconds": elapsed, "rps": n / elapsed, "errors": errors}))
