"""Seeds the benchmark registry over its HTTP API: one shared layer, then N images, each with its
own config blob (so every tag is a distinct image with two blobs to fetch when cold).

Usage: seed.py REGISTRY_URL REPOSITORY COUNT [DIGESTS_FILE]
Tags: v1, and t0 … t{COUNT-1}. Prints v1's config digest; DIGESTS_FILE gets "i digest" for each t<i>.
Also a module: push.py pushes its images with `Pusher`.
"""
import hashlib
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with opener.open(req, timeout=60) as r:
        return r.status, r.headers, r.read()


class Pusher:
    """Pushes blobs and schema2 images to one repository."""

    def __init__(self, base, repo):
        self.base, self.repo = base, repo

    def blob(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, h, _ = call("POST", f"{self.base}/v2/{self.repo}/blobs/uploads/")
        loc = h["Location"]
        loc = loc if loc.startswith("http") else self.base + loc
        sep = "&" if "?" in loc else "?"
        call("PUT", f"{loc}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
        return digest

    def labelled(self, tag, revision, layer, layer_digest):
        """Uploads the config of a one-layer image labelled `revision=<revision>` and returns
        the call that PUTs its manifest as `tag` (and gives the registry's status), so a benchmark
        times the push itself."""
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Labels": {"revision": revision}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"/bin/sh -c echo {revision}"}],
        }).encode()
        config_digest = self.blob(config)
        return lambda: self.manifest(tag, config, config_digest, layer, layer_digest)

    def manifest(self, tag, config, config_digest, layer, layer_digest):
        """PUTs a schema2 manifest under `tag`; returns the registry's status."""
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": SCHEMA2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(layer), "digest": layer_digest}],
        }).encode()
        status, _, _ = call("PUT", f"{self.base}/v2/{self.repo}/manifests/{tag}", manifest,
                            {"Content-Type": SCHEMA2})
        return status


def main():
    base, repo, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    digests_file = sys.argv[4] if len(sys.argv) > 4 else None
    pusher = Pusher(base, repo)
    layer = b"benchmark layer " * 64
    layer_digest = pusher.blob(layer)

    def image(tag, i):
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Labels": {"revision": f"rev-{i}", "build.url": f"https://ci.example/job/{i}"}, "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) LABEL x", "empty_layer": True},
                        {"created": "2026-01-01T00:00:01Z", "created_by": f"/bin/sh -c echo {i}"}],
        }).encode()
        config_digest = pusher.blob(config)
        pusher.manifest(tag, config, config_digest, layer, layer_digest)
        return config_digest

    print(image("v1", -1), flush=True)
    with ThreadPoolExecutor(8) as pool:
        configs = list(pool.map(lambda i: image(f"t{i}", i), range(count)))
    if digests_file:
        with open(digests_file, "w") as f:
            f.writelines(f"{i} {d}\n" for i, d in enumerate(configs))


if __name__ == "__main__":
    main()
