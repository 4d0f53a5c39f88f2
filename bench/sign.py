"""Signs an image as `cosign sign --key` does, with openssl: a simple-signing payload naming the
manifest digest, its ECDSA P-256/SHA-256 signature (DER, base64) in the layer's annotation, pushed
as the `sha256-<hex>.sig` tag.

Usage: sign.py REGISTRY_URL REPOSITORY TAG PRIVATE_KEY_PEM
       sign.py REGISTRY_URL REPOSITORY TAG --keyless FIXTURE_COMMAND...
With --keyless, FIXTURE_COMMAND (e.g. the keyless-fixture example) is run with the digest as its
last argument and prints {"payload", "annotations", "trustedRoot"}: the layer is cosign's keyless
form (certificate, chain and Rekor bundle annotations); the trusted root goes to stdout.
"""
import base64
import json
import subprocess
import sys

from seed import SCHEMA2, Pusher, call

OCI = "application/vnd.oci.image.manifest.v1+json"


def main():
    base, repo, tag = sys.argv[1:4]
    _, headers, _ = call("GET", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": SCHEMA2})
    digest = headers["Docker-Content-Digest"]
    if sys.argv[4] == "--keyless":
        fixture = json.loads(subprocess.run(sys.argv[5:] + [digest], capture_output=True,
                                            check=True).stdout)
        payload = fixture["payload"].encode()
        annotations = fixture["annotations"]
        print(fixture["trustedRoot"])
    else:
        payload = json.dumps({"critical": {"identity": {"docker-reference": repo},
                                           "image": {"docker-manifest-digest": digest},
                                           "type": "cosign container image signature"},
                              "optional": None}).encode()
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[4]], input=payload,
                             capture_output=True, check=True).stdout
        annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(der).decode()}
    pusher = Pusher(base, repo)
    config = b'{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":[]}}'
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": pusher.blob(config)},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "size": len(payload), "digest": pusher.blob(payload),
                    "annotations": annotations}],
    }).encode()
    sig_tag = digest.replace(":", "-", 1) + ".sig"
    call("PUT", f"{base}/v2/{repo}/manifests/{sig_tag}", manifest, {"Content-Type": OCI})


if __name__ == "__main__":
    main()
