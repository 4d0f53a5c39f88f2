"""Validates every manifest under deploy/kubernetes against the Kubernetes schemas
(kubernetes-validate, pinned in scripts/test). The sidecar patch is applied to a minimal
Clouddriver Deployment first, the way `kubectl patch` would merge its containers.

Usage: validate_k8s.py DEPLOY_DIR. Prints one line per document; exits 1 on the first failure.
"""
import copy
import pathlib
import sys

import kubernetes_validate
import yaml

VERSION = "1.31.0"
root = pathlib.Path(sys.argv[1])
CLOUDDRIVER = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "spin-clouddriver", "namespace": "spinnaker"},
    "spec": {
        "selector": {"matchLabels": {"app": "spin", "cluster": "spin-clouddriver"}},
        "template": {
            "metadata": {"labels": {"app": "spin", "cluster": "spin-clouddriver"}},
            "spec": {
                "containers": [{"name": "clouddriver", "image": "us-docker.pkg.dev/spinnaker-community/docker/clouddriver:2025.1.0",
                                "volumeMounts": [{"name": "spin-clouddriver-files", "mountPath": "/opt/spinnaker/config"}]}],
                "volumes": [{"name": "spin-clouddriver-files", "secret": {"secretName": "spin-clouddriver-files"}}],
            },
        },
    },
}


def patched(patch):
    doc = copy.deepcopy(CLOUDDRIVER)
    doc["spec"]["template"]["spec"]["containers"] += patch["spec"]["template"]["spec"]["containers"]
    return doc


count = 0
for path in sorted(root.rglob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is None:
            continue
        if "kind" not in doc:
            doc = patched(doc)
        kubernetes_validate.validate(doc, VERSION, strict=True)
        count += 1
        print(f"ok {path.relative_to(root)} {doc['kind']}/{doc['metadata']['name']}")
if count < 8:
    sys.exit(f"only {count} documents found")
