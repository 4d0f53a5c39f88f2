//! Putting images into a registry: over its HTTP API (any bytes, for crafted cases) and with
//! real tools (umoci builds, skopeo pushes).

use std::path::Path;
use std::process::Command;

use sha2::{Digest as _, Sha256};

/// Vector A's config (history-conversion.md §9), a real umoci image with `revision=abc123`.
pub const VA: &[u8] = include_bytes!("../fixtures/vectors/a.config.json");
/// Vector A's one layer.
pub const VA_LAYER: &[u8] = include_bytes!("../fixtures/vectors/a.layer.tar.gz");
/// Vector B's config (escapes, sorting, duplicates, times).
pub const VB: &[u8] = include_bytes!("../fixtures/vectors/b.config.json");
/// Vector C's config (Windows base layer).
pub const VC: &[u8] = include_bytes!("../fixtures/vectors/c.config.json");

/// Media types used by tests.
pub const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image manifest.
pub const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `sha256:<hex>` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A registry API client for set-up.
pub struct Pusher {
    base: String,
    auth: Option<String>,
    http: reqwest::Client,
}

impl Pusher {
    /// For the registry at `base` (`http://127.0.0.1:<port>`), with an `Authorization` value.
    pub fn new(base: &str, auth: Option<String>) -> Pusher {
        Pusher {
            base: base.to_owned(),
            auth,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// For a TLS registry with a self-signed certificate.
    pub fn new_insecure(base: &str) -> Pusher {
        let http = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        Pusher {
            base: base.to_owned(),
            auth: None,
            http,
        }
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.auth {
            Some(a) => r.header("authorization", a),
            None => r,
        }
    }

    /// Uploads a blob (monolithic upload), returning its digest.
    pub async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let r = self
            .req(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "start upload: {}", r.text().await.unwrap());
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.base)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let r = self
            .req(reqwest::Method::PUT, &format!("{location}{sep}digest={d}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            201,
            "finish upload: {}",
            r.text().await.unwrap()
        );
        d
    }

    /// Puts a manifest under `reference` (tag or digest), returning its digest.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let r = self
            .req(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.base),
            )
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "put manifest: {}", r.text().await.unwrap());
        r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// Pushes config and layer blobs and an image manifest referencing them; returns the manifest
    /// bytes and digest.
    pub async fn image(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        config: &[u8],
        layers: &[&[u8]],
    ) -> (Vec<u8>, String) {
        let (config_type, layer_type) = if media_type == OCI {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        self.image_typed(
            repo,
            tag,
            media_type,
            config_type,
            layer_type,
            config,
            layers,
        )
        .await
    }

    /// As [`Pusher::image`] with explicit config and layer media types.
    #[allow(clippy::too_many_arguments)]
    pub async fn image_typed(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        config_type: &str,
        layer_type: &str,
        config: &[u8],
        layers: &[&[u8]],
    ) -> (Vec<u8>, String) {
        let config_digest = self.blob(repo, config).await;
        let mut layer_descs = Vec::new();
        for l in layers {
            let d = self.blob(repo, l).await;
            layer_descs
                .push(serde_json::json!({"mediaType": layer_type, "size": l.len(), "digest": d}));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "size": config.len(), "digest": config_digest},
            "layers": layer_descs,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let d = self.manifest(repo, tag, media_type, &bytes).await;
        (bytes, d)
    }

    /// The registry's own schema1 conversion: GET by tag with no `Accept`. Returns the
    /// `history[].v1Compatibility` strings, or the status and body when it refuses.
    pub async fn oracle(&self, repo: &str, tag: &str) -> Result<Vec<String>, (u16, String)> {
        let r = self
            .req(
                reqwest::Method::GET,
                &format!("{}/v2/{repo}/manifests/{tag}", self.base),
            )
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        if status != 200 {
            return Err((status, body));
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        Ok(v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["v1Compatibility"].as_str().unwrap().to_owned())
            .collect())
    }

    /// The raw converted (signed schema1) manifest the registry serves without `Accept`.
    pub async fn schema1_bytes(&self, repo: &str, tag: &str) -> Vec<u8> {
        let r = self
            .req(
                reqwest::Method::GET,
                &format!("{}/v2/{repo}/manifests/{tag}", self.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

/// Builds an OCI layout image with umoci: a config with labels and `layers` layers of files.
pub fn umoci_image(
    dir: &Path,
    tag: &str,
    labels: &[(&str, &str)],
    layers: usize,
) -> std::path::PathBuf {
    super::require("umoci", "umoci");
    let layout = dir.join("layout");
    let image = format!("{}:{tag}", layout.display());
    let run = |args: &[&str]| {
        let out = Command::new("umoci").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "umoci {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if !layout.exists() {
        run(&["init", "--layout", layout.to_str().unwrap()]);
    }
    run(&["new", "--image", &image]);
    let mut config_args = vec![
        "config".to_owned(),
        "--image".into(),
        image.clone(),
        "--author".into(),
        "Test <t@example.com>".into(),
        "--config.cmd".into(),
        "/bin/sh".into(),
    ];
    for (k, v) in labels {
        config_args.push("--config.label".into());
        config_args.push(format!("{k}={v}"));
    }
    run(&config_args.iter().map(String::as_str).collect::<Vec<_>>());
    for i in 0..layers {
        let bundle = dir.join(format!("bundle-{tag}-{i}"));
        run(&[
            "unpack",
            "--rootless",
            "--image",
            &image,
            bundle.to_str().unwrap(),
        ]);
        std::fs::write(
            bundle.join("rootfs").join(format!("file-{i}.txt")),
            format!("layer {i} of {tag}\n"),
        )
        .unwrap();
        run(&["repack", "--image", &image, bundle.to_str().unwrap()]);
    }
    layout
}

/// Copies an OCI layout image into the registry with skopeo (`format`: `v2s2` or `oci`).
pub fn skopeo_copy(layout: &Path, tag: &str, dest: &str, format: &str, creds: Option<&str>) {
    super::require("skopeo", "skopeo");
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "copy",
        "--dest-tls-verify=false",
        "--format",
        format,
    ]);
    if let Some(c) = creds {
        cmd.args(["--dest-creds", c]);
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"));
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
