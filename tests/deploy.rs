//! The deployment artefacts: Kubernetes manifests validate against the schemas, and the
//! Dockerfile's runtime contract (non-root user, read-only root filesystem, `serve` on 8080, config
//! under /etc/dimsum) matches what the manifests and the binary expect.

#[test]
fn kubernetes_manifests_validate() {
    crate::harness::require("python3", "python3");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("python3")
        .arg(format!("{root}/tests/clients/validate_k8s.py"))
        .arg(format!("{root}/deploy/kubernetes"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "kubernetes-validate missing: pip install kubernetes-validate==1.31.0 (scripts/test does): {stderr}"
    );
    assert!(
        out.status.success(),
        "{}{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "Deployment/dimsum",
        "Service/dimsum",
        "ConfigMap/dimsum",
        "Secret/dimsum",
        "PodDisruptionBudget/dimsum",
        "HorizontalPodAutoscaler/dimsum",
        "Deployment/spin-clouddriver",
    ] {
        assert!(stdout.contains(kind), "{kind} not validated:\n{stdout}");
    }
}

#[test]
fn the_image_and_the_manifests_agree() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    for line in [
        "USER 65532:65532",
        "EXPOSE 8080",
        "ENTRYPOINT [\"/usr/local/bin/dimsum\"]",
        "CMD [\"serve\"]",
        "DIMSUM_CONFIG=/etc/dimsum/config.yaml",
    ] {
        assert!(dockerfile.contains(line), "Dockerfile lacks {line}");
    }
    let deployment =
        std::fs::read_to_string(root.join("deploy/kubernetes/standalone/deployment.yaml")).unwrap();
    for needle in [
        "runAsUser: 65532",
        "readOnlyRootFilesystem: true",
        "containerPort: 8080",
        "/etc/dimsum/config.yaml",
        "path: /healthz",
        "path: /readyz",
    ] {
        assert!(deployment.contains(needle), "deployment lacks {needle}");
    }
    // The configuration the standalone ConfigMap ships is one dimsum accepts.
    let configmap =
        std::fs::read_to_string(root.join("deploy/kubernetes/standalone/configmap.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&configmap).unwrap();
    let text = doc["data"]["config.yaml"].as_str().unwrap().replace(
        "/etc/dimsum/secrets/",
        &format!("{}/", root.join("tests/fixtures/deploy-secrets").display()),
    );
    let layer =
        dimsum::config::Layer::from_reader("configmap", text.as_bytes(), &|_| None).unwrap();
    let config = dimsum::Config::from_layers(vec![layer]).unwrap();
    assert_eq!(config.accounts.len(), 2);
    assert!(config.settings.api_token.is_some());
    assert!(config.settings.events.is_some(), "/events is on");
    assert_eq!(config.settings.cache.tag_ttl.as_secs(), 1, "live tags");
    let redis = config.settings.redis.expect("the replicas share Redis");
    assert_eq!(redis.url.host_str(), Some("spin-redis.spinnaker.svc"));
}
