"""An outsider's client: Python's standard library only, for REST, JSON-RPC over HTTP, and stdio.

Usage: client.py BASE_URL DIMSUM_BINARY CONFIG ACCOUNT REPOSITORY REFERENCE
Prints one JSON object with what each transport returned for level 0 and the labels.
"""
import json
import subprocess
import sys
import urllib.error
import urllib.request

base, binary, config, account, repository, reference = sys.argv[1:7]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, no proxies


def get(path):
    try:
        with opener.open(base + path, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")


def rpc(method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
    req = urllib.request.Request(base + "/", data=body, headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=30) as r:
        return json.loads(r.read())


out = {}
status, ctype, body = get(f"/{account}/{repository}/{reference}/history?level=0")
out["rest_level0"] = {"status": status, "contentType": ctype, "body": body}
status, ctype, body = get(f"/{account}/{repository}/{reference}/labels")
out["rest_labels"] = {"status": status, "contentType": ctype, "body": body}
status, ctype, body = get(f"/{account}/{repository}/no-such-tag/history?level=0")
out["rest_missing"] = {"status": status, "contentType": ctype, "body": json.loads(body)}
out["rpc_level0"] = rpc("getHistory", {"account": account, "repository": repository, "tag": reference, "level": 0})
out["rpc_labels"] = rpc("getLabels", [account, repository, reference])

requests = [
    {"jsonrpc": "2.0", "id": 1, "method": "getHistory", "params": [account, repository, reference, 0]},
    {"jsonrpc": "2.0", "id": "two", "method": "getLabels", "params": {"account": account, "repository": repository, "reference": reference}},
    {"jsonrpc": "2.0", "method": "getLabels", "params": [account, repository, reference]},
]
stdin = "".join(json.dumps(r) + "\n" for r in requests) + "{not json\n"
proc = subprocess.run([binary, "--config", config, "stdio"], input=stdin.encode(), capture_output=True, timeout=60)
out["stdio_exit"] = proc.returncode
out["stdio"] = sorted((json.loads(line) for line in proc.stdout.decode().splitlines()), key=lambda r: str(r.get("id")))
print(json.dumps(out))
