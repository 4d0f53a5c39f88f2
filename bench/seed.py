"""Seeds the benchmark registry over its HTTP API: one shared layer, then N images, each with its
own config blob (so every tag is a distinct image with two blobs to fetch when cold).

Usage: seed.py REGISTRY_URL REPOSITORY COUNT [DIGESTS_FILE]
Tags: v1, and t0 … t{COUNT-1}. Prints v1's config digest; DIGESTS_FILE gets "i digest" for each t<i>.
"""
import hashlib
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, repo, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
digests_file = sys.argv[4] if len(sys.argv) > 4 else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with opener.open(req, timeout=60) as r:
        return r.status, r.headers


def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, h = call("POST", f"{base}/v2/{repo}/blobs/uploads/")
    loc = h["Location"]
    loc = loc if loc.startswith("http") else base + loc
    sep = "&" if "?" in loc else "?"
    call("PUT", f"{loc}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
    return digest


layer = b"benchmark layer " * 64
layer_digest = blob(layer)


def image(tag, i):
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Labels": {"revision": f"rev-{i}", "build.url": f"https://ci.example/job/{i}"}, "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) LABEL x", "empty_layer": True},
                    {"created": "2026-01-01T00:00:01Z", "created_by": f"/bin/sh -c echo {i}"}],
    }).encode()
    config_digest = blob(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layer_digest}],
    }).encode()
    call("PUT", f"{base}/v2/{repo}/manifests/{tag}", manifest,
         {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    return config_digest


print(image("v1", -1), flush=True)
with ThreadPoolExecutor(8) as pool:
    configs = list(pool.map(lambda i: image(f"t{i}", i), range(count)))
if digests_file:
    with open(digests_file, "w") as f:
        f.writelines(f"{i} {d}\n" for i, d in enumerate(configs))
