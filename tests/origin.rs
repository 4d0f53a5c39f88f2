//! `origin` on images pushed to the real registry: each place revision and source can live
//! (labels, manifest annotations, index and descriptor annotations, BuildKit provenance in SLSA
//! v0.2 and v1, legacy and OCI-artifact forms), a label that disagrees with an annotation, cosign
//! signatures made with generated keys (right key, wrong key, tampered payload, a signature for
//! another image), the referrers fallback tag, and the `signedBy` gate on every path.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde_json::{Value, json};

use crate::harness::get_json;
use crate::harness::images::{self, OCI, OCI_INDEX, Pusher, SCHEMA2, VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};
use crate::harness::server::Served;
use crate::harness::sigstore::pae;

pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const NOTATION: &str = "application/vnd.cncf.notary.signature";
const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_D: &str = "dddddddddddddddddddddddddddddddddddddddd";
const SHA_I: &str = "1111111111111111111111111111111111111111";
const SHA_P: &str = "5555555555555555555555555555555555555555";
const SHA_V: &str = "7777777777777777777777777777777777777777";

/// A generated signing key (deterministic per seed) and its public key as cosign writes it.
pub fn cosign_key(seed: u8) -> (SigningKey, String) {
    let key = SigningKey::from_slice(&[seed; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (key, pem)
}

/// Pushes an OCI image manifest of Vector A with `annotations`; returns bytes and digest.
pub async fn annotated(p: &Pusher, repo: &str, tag: &str, annotations: Value) -> (Vec<u8>, String) {
    let config = p.blob(repo, VA).await;
    let layer = p.blob(repo, VA_LAYER).await;
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": VA.len(), "digest": config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": VA_LAYER.len(), "digest": layer}],
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = p.manifest(repo, tag, OCI, &bytes).await;
    (bytes, digest)
}

/// An index of `child` (linux/amd64) and, when given, its attestation manifest.
async fn index(
    p: &Pusher,
    repo: &str,
    tag: &str,
    child: &(Vec<u8>, String),
    child_annotations: Value,
    attestation: Option<&(Vec<u8>, String)>,
    annotations: Value,
) -> String {
    let mut manifests = vec![json!({
        "mediaType": OCI, "size": child.0.len(), "digest": child.1,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": child_annotations,
    })];
    if let Some((bytes, digest)) = attestation {
        manifests.push(json!({
            "mediaType": OCI, "size": bytes.len(), "digest": digest,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": child.1},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests, "annotations": annotations});
    p.manifest(repo, tag, OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        .await
}

/// A BuildKit attestation manifest for `subject` holding `statement` (and an SBOM beside it).
/// `artifact`: BuildKit ≥ 0.32's OCI-artifact form, else the legacy image form.
async fn attestation(
    p: &Pusher,
    repo: &str,
    subject: &(Vec<u8>, String),
    predicate_type: &str,
    statement: Value,
    artifact: bool,
) -> (Vec<u8>, String) {
    let statement = serde_json::to_vec(&statement).unwrap();
    let sbom = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","predicate":{}}"#;
    let layers = json!([
        {"mediaType": "application/vnd.in-toto+json", "size": sbom.len(), "digest": p.blob(repo, sbom).await,
         "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}},
        {"mediaType": "application/vnd.in-toto+json", "size": statement.len(), "digest": p.blob(repo, &statement).await,
         "annotations": {"in-toto.io/predicate-type": predicate_type}},
    ]);
    let manifest = if artifact {
        let empty = p.blob(repo, b"{}").await;
        json!({"schemaVersion": 2, "mediaType": OCI,
               "artifactType": "application/vnd.docker.attestation.manifest.v1+json",
               "config": {"mediaType": EMPTY, "size": 2, "digest": empty},
               "layers": layers,
               "subject": {"mediaType": OCI, "size": subject.0.len(), "digest": subject.1}})
    } else {
        let config = br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let digest = p.blob(repo, config).await;
        json!({"schemaVersion": 2, "mediaType": OCI,
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": digest},
               "layers": layers})
    };
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = images::digest(&bytes);
    p.manifest(repo, &digest, OCI, &bytes).await;
    (bytes, digest)
}

/// A cosign signature of `digest` pushed as the `sha256-<hex>.sig` tag: the payload naming
/// `names`, signed by `key` over `signed` bytes (the payload unless tampering).
pub async fn cosign_sign(
    p: &Pusher,
    repo: &str,
    digest: &str,
    names: &str,
    key: &SigningKey,
    tamper: bool,
) {
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1/{repo}"}},"image":{{"docker-manifest-digest":"{names}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let signature: Signature = key.sign(payload.as_bytes());
    let stored = if tamper {
        payload.replace(
            "cosign container image signature",
            "cosign container image signaturE",
        )
    } else {
        payload
    };
    let layer = p.blob(repo, stored.as_bytes()).await;
    let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = p.blob(repo, config).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": SIMPLESIGNING, "size": stored.len(), "digest": layer,
            "annotations": {"dev.cosignproject.cosign/signature": STANDARD.encode(signature.to_der().as_bytes())}}]});
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    p.manifest(repo, &tag, OCI, &serde_json::to_vec(&manifest).unwrap())
        .await;
}

/// A referrer of `subject` with `artifact_type`, and the referrers fallback tag listing it as
/// `listed_as` (older cosign listed bundles as the empty type).
/// `cosign attest --key`: a DSSE envelope over an in-toto SLSA provenance whose subject is
/// `names`, signed with `key`, as the `sha256-<hex>.att` tag of `digest`.
async fn cosign_attest(p: &Pusher, repo: &str, digest: &str, names: &str, key: &SigningKey) {
    let statement = json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": repo, "digest": {"sha256": names.trim_start_matches("sha256:")}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "resolvedDependencies": [{"uri": "git+https://github.com/team/app@refs/heads/main", "digest": {"gitCommit": SHA_P}}]}}})
    .to_string();
    let payload_type = "application/vnd.in-toto+json";
    let signature: Signature = key.sign(pae(payload_type, &statement).as_bytes());
    let envelope = json!({"payloadType": payload_type, "payload": STANDARD.encode(&statement),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(signature.to_der().as_bytes())}]})
    .to_string();
    let layer = p.blob(repo, envelope.as_bytes()).await;
    let config =
        br#"{"architecture":"","config":{},"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = p.blob(repo, config).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json", "size": envelope.len(), "digest": layer,
            "annotations": {"dev.cosignproject.cosign/signature": ""}}]});
    let tag = format!("{}.att", digest.replacen(':', "-", 1));
    p.manifest(repo, &tag, OCI, &serde_json::to_vec(&manifest).unwrap())
        .await;
}

pub async fn referrer(
    p: &Pusher,
    repo: &str,
    subject: &(Vec<u8>, String),
    artifact_type: &str,
    listed_as: &str,
) {
    let empty = p.blob(repo, b"{}").await;
    let body = format!("{artifact_type} body");
    let layer = p.blob(repo, body.as_bytes()).await;
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "size": 2, "digest": empty},
        "layers": [{"mediaType": "application/octet-stream", "size": body.len(), "digest": layer}],
        "subject": {"mediaType": OCI, "size": subject.0.len(), "digest": subject.1}});
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = images::digest(&bytes);
    p.manifest(repo, &digest, OCI, &bytes).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI, "size": bytes.len(), "digest": digest, "artifactType": listed_as}]});
    p.manifest(
        repo,
        &subject.1.replacen(':', "-", 1),
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
}

struct World {
    _registry: Registry,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    server: Served,
    signed: String,
}

async fn world() -> World {
    let registry = Registry::start(Mode::Open);
    let p = Pusher::new(&registry.url(), None);
    let repo = "team/app";
    // Labels only (Vector A's `revision=abc123`).
    p.image(repo, "labels", SCHEMA2, VA, &[VA_LAYER]).await;
    // Manifest annotations, and an inherited label that disagrees.
    annotated(
        &p,
        repo,
        "annotated",
        json!({
            "org.opencontainers.image.revision": SHA_A,
            "org.opencontainers.image.source": "https://git.example/team/app",
            "org.opencontainers.image.created": "2026-11-30T10:00:00Z",
        }),
    )
    .await;
    // Index and descriptor annotations.
    let child = annotated(&p, repo, "child", json!({"dimsum.test": "child"})).await;
    index(&p, repo, "indexed", &child,
        json!({"org.opencontainers.image.revision": SHA_D}),
        None,
        json!({"org.opencontainers.image.revision": SHA_I, "org.opencontainers.image.version": "2.0.0"}))
    .await;
    // BuildKit: SLSA v0.2 with a git context (legacy form) and SLSA v1 with the vcs hint only
    // (OCI-artifact form).
    let v02 = annotated(&p, repo, "v02-child", json!({"dimsum.test": "v02"})).await;
    let statement = json!({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "x", "digest": {"sha256": v02.1.trim_start_matches("sha256:")}}],
        "predicate": {"builder": {"id": "https://github.com/team/app/actions/runs/42"},
            "invocation": {"configSource": {"uri": "https://github.com/team/app.git#refs/heads/main", "digest": {"sha1": SHA_P}, "entryPoint": "Dockerfile"}},
            "metadata": {"https://mobyproject.org/buildkit@v1#metadata": {"vcs": {"revision": SHA_V, "source": "https://github.com/team/app"}}}}});
    let att = attestation(
        &p,
        repo,
        &v02,
        "https://slsa.dev/provenance/v0.2",
        statement,
        false,
    )
    .await;
    index(
        &p,
        repo,
        "buildkit-v02",
        &v02,
        json!({}),
        Some(&att),
        json!({}),
    )
    .await;
    let v1 = annotated(&p, repo, "v1-child", json!({"dimsum.test": "v1"})).await;
    let statement = json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "x", "digest": {"sha256": v1.1.trim_start_matches("sha256:")}}],
        "predicate": {"buildDefinition": {"buildType": "https://mobyproject.org/buildkit@v1", "externalParameters": {"request": {}}},
            "runDetails": {"builder": {"id": "b1"}, "metadata": {"buildkit_metadata": {"vcs": {"revision": SHA_V, "source": "https://github.com/team/app"}}}}}});
    let att = attestation(
        &p,
        repo,
        &v1,
        "https://slsa.dev/provenance/v1",
        statement,
        true,
    )
    .await;
    index(
        &p,
        repo,
        "buildkit-v1",
        &v1,
        json!({}),
        Some(&att),
        json!({}),
    )
    .await;
    // An index whose attestation entry points at this child, but whose statement is about
    // another image (v1's): its revision must not be told as this one's.
    let stranger = annotated(
        &p,
        repo,
        "stranger-child",
        json!({"dimsum.test": "stranger"}),
    )
    .await;
    let statement = json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1",
        "subject": [{"name": "x", "digest": {"sha256": v1.1.trim_start_matches("sha256:")}}],
        "predicate": {"runDetails": {"builder": {"id": "b1"}, "metadata": {"buildkit_metadata": {"vcs": {"revision": SHA_V}}}}}});
    let att = attestation(
        &p,
        repo,
        &stranger,
        "https://slsa.dev/provenance/v1",
        statement,
        true,
    )
    .await;
    index(
        &p,
        repo,
        "buildkit-stranger",
        &stranger,
        json!({}),
        Some(&att),
        json!({}),
    )
    .await;
    // Signatures: the CI key, a key dimsum does not know, a tampered payload, a signature made
    // for another image.
    let (ci, _) = cosign_key(1);
    let (stranger, _) = cosign_key(3);
    let signed = annotated(&p, repo, "signed", json!({"dimsum.test": "signed"})).await;
    cosign_sign(&p, repo, &signed.1, &signed.1, &ci, false).await;
    let wrong = annotated(&p, repo, "wrong-key", json!({"dimsum.test": "wrong"})).await;
    cosign_sign(&p, repo, &wrong.1, &wrong.1, &stranger, false).await;
    let tampered = annotated(&p, repo, "tampered", json!({"dimsum.test": "tampered"})).await;
    cosign_sign(&p, repo, &tampered.1, &tampered.1, &ci, true).await;
    let elsewhere = annotated(&p, repo, "elsewhere", json!({"dimsum.test": "elsewhere"})).await;
    cosign_sign(&p, repo, &elsewhere.1, &signed.1, &ci, false).await;
    // Referrers through the fallback tag (Distribution 2.8 has no referrers API).
    let attested = annotated(&p, repo, "attested", json!({"dimsum.test": "attested"})).await;
    cosign_attest(&p, repo, &attested.1, &attested.1, &ci).await;
    let misattested = annotated(
        &p,
        repo,
        "misattested",
        json!({"dimsum.test": "misattested"}),
    )
    .await;
    cosign_attest(&p, repo, &misattested.1, &signed.1, &ci).await;
    let bundled = annotated(&p, repo, "bundled", json!({"dimsum.test": "bundled"})).await;
    referrer(&p, repo, &bundled, BUNDLE, EMPTY).await;
    let notarized = annotated(&p, repo, "notarized", json!({"dimsum.test": "notarized"})).await;
    referrer(&p, repo, &notarized, NOTATION, NOTATION).await;

    let dir = tempfile::tempdir().unwrap();
    for (name, seed) in [("ci", 1), ("other", 2)] {
        std::fs::write(dir.path().join(format!("{name}.pub")), cosign_key(seed).1).unwrap();
    }
    let yaml = account_yaml("local", &registry.url(), "").replacen(
        "dimsum:\n",
        &format!(
            "dimsum:\n  trust:\n    cosignKeys:\n    - name: ci\n      publicKeyFile: {0}/ci.pub\n    - name: other\n      publicKeyFile: {0}/other.pub\n",
            dir.path().display()
        ),
        1,
    );
    let config = config(dir.path(), &yaml);
    let server = Served::start(&config);
    World {
        _registry: registry,
        _dir: dir,
        config,
        server,
        signed: signed.1,
    }
}

async fn get(w: &World, path: &str) -> (u16, Value) {
    get_json(&format!("{}/local/team/app/{path}", w.server.url)).await
}

async fn origin(w: &World, tag: &str) -> Value {
    let (status, body) = get(w, &format!("{tag}/origin")).await;
    assert_eq!(status, 200, "{tag}: {body}");
    body
}

/// (from, key) of each `revision` candidate.
fn revision_evidence(o: &Value) -> Vec<(String, String)> {
    o["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "revision")
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_owned(),
                e["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(from: &str, key: &str) -> (String, String) {
    (from.to_owned(), key.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_and_source_from_every_place() {
    let w = world().await;

    let o = origin(&w, "labels").await;
    assert_eq!(o["revision"], "abc123");
    assert_eq!(o["source"], "https://example.com/repo");
    assert_eq!(o["url"], Value::Null);
    assert_eq!(revision_evidence(&o), [pair("label", "revision")]);
    assert_eq!(o["labels"]["revision"], "abc123");
    assert_eq!(
        (o["conflict"].clone(), o["indexDigest"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(
        (o["provenance"].clone(), o["signatures"].clone()),
        (Value::Null, json!([]))
    );

    // The annotation wins over the inherited label, and the disagreement is flagged.
    let o = origin(&w, "annotated").await;
    assert_eq!(o["revision"], SHA_A);
    assert_eq!(o["source"], "https://git.example/team/app");
    assert_eq!(o["created"], "2026-11-30T10:00:00Z");
    assert_eq!(o["conflict"], true);
    assert_eq!(
        revision_evidence(&o),
        [
            pair("manifest-annotation", "org.opencontainers.image.revision"),
            pair("label", "revision")
        ]
    );
    assert_eq!(o["annotations"]["org.opencontainers.image.revision"], SHA_A);

    // The descriptor's annotation beats the index's; the index still gives the version.
    let o = origin(&w, "indexed").await;
    assert_eq!(o["revision"], SHA_D);
    assert_eq!(o["version"], "2.0.0");
    assert!(o["indexDigest"].as_str().unwrap().starts_with("sha256:"));
    assert_ne!(o["indexDigest"], o["digest"]);
    assert_eq!(
        revision_evidence(&o),
        [
            pair("descriptor-annotation", "org.opencontainers.image.revision"),
            pair("index-annotation", "org.opencontainers.image.revision"),
            pair("label", "revision"),
        ]
    );

    // SLSA v0.2, git context: the verified configSource beats the vcs hint.
    let o = origin(&w, "buildkit-v02").await;
    assert_eq!(o["revision"], SHA_P);
    assert_eq!(
        o["source"],
        "https://github.com/team/app.git#refs/heads/main"
    );
    assert_eq!(
        o["provenance"]["predicateType"],
        "https://slsa.dev/provenance/v0.2"
    );
    assert_eq!(
        o["provenance"]["builderId"],
        "https://github.com/team/app/actions/runs/42"
    );
    assert_eq!(o["provenance"]["configSource"]["digest"], SHA_P);
    assert_eq!(
        revision_evidence(&o)[..2],
        [
            pair(
                "provenance",
                "predicate.invocation.configSource.digest.sha1"
            ),
            pair(
                "provenance",
                "predicate.metadata.https://mobyproject.org/buildkit@v1#metadata.vcs.revision"
            ),
        ]
    );

    // SLSA v1 in the OCI-artifact form, the vcs hint only.
    let o = origin(&w, "buildkit-v1").await;
    assert_eq!(o["revision"], SHA_V);
    assert_eq!(o["source"], "https://github.com/team/app");
    assert_eq!(
        o["provenance"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(o["provenance"]["builderId"], "b1");
    assert_eq!(o["provenance"]["configSource"], Value::Null);
    assert_eq!(
        revision_evidence(&o)[0],
        pair(
            "provenance",
            "predicate.runDetails.metadata.buildkit_metadata.vcs.revision"
        )
    );

    // A statement about another image is not this image's provenance: the label answers.
    let o = origin(&w, "buildkit-stranger").await;
    assert_eq!(o["provenance"], Value::Null);
    assert_eq!(o["revision"], "abc123");
    assert_eq!(revision_evidence(&o), [pair("label", "revision")]);

    // The CLI and JSON-RPC give the same answer as REST.
    let out = dimsum(
        Some(&w.config),
        &["origin", "local", "team/app", "buildkit-v02"],
        None,
    )
    .await;
    let cli: Value = serde_json::from_str(&out.ok()).unwrap();
    assert_eq!(cli, origin(&w, "buildkit-v02").await);
    let rpc = w
        .server
        .rpc(
            "getOrigin",
            json!({"account": "local", "repository": "team/app", "tag": "indexed"}),
        )
        .await;
    assert_eq!(rpc["result"], origin(&w, "indexed").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_verified_and_signed_by_gates_every_answer() {
    let w = world().await;
    let sig = |o: &Value| o["signatures"].as_array().unwrap().clone();

    let o = origin(&w, "signed").await;
    assert_eq!(
        sig(&o),
        [
            json!({"kind": "cosign", "digest": w.signed, "verified": true, "key": "ci", "signers": ["ci"],
            "identity": null, "signedAt": null, "tlog": null, "reason": null})
        ]
    );
    for tag in ["wrong-key", "tampered"] {
        let o = origin(&w, tag).await;
        let s = &sig(&o)[0];
        assert_eq!(
            (&s["verified"], &s["key"], &s["signers"]),
            (&json!(false), &Value::Null, &json!([])),
            "{tag}"
        );
        assert_eq!(
            s["reason"],
            "the signature does not verify with any configured key"
        );
    }
    // A good signature, but of another image.
    let o = origin(&w, "elsewhere").await;
    assert_eq!(sig(&o)[0]["verified"], false);
    assert!(
        sig(&o)[0]["reason"]
            .as_str()
            .unwrap()
            .contains("payload names another image")
    );
    // A bundle referrer without a bundle in it is refused, not listed; Notation is listed.
    let bundled = sig(&origin(&w, "bundled").await)[0].clone();
    assert_eq!(
        (&bundled["kind"], &bundled["verified"], &bundled["reason"]),
        (
            &json!("sigstore-bundle"),
            &json!(false),
            &json!("the referrer has no bundle layer")
        )
    );
    let notarized = sig(&origin(&w, "notarized").await)[0].clone();
    assert_eq!(
        (&notarized["kind"], &notarized["verified"]),
        (&json!("notation"), &Value::Null)
    );

    // `cosign attest --key`: the provenance a configured key signed vouches for the revision
    // (the label says otherwise); an attestation about another image does not; neither is a
    // signature for the gate.
    let o = origin(&w, "attested").await;
    let a = &o["attestations"][0];
    assert_eq!(
        (
            &a["verified"],
            &a["key"],
            &a["signers"],
            &a["predicateType"]
        ),
        (
            &json!(true),
            &json!("ci"),
            &json!(["ci"]),
            &json!("https://slsa.dev/provenance/v1")
        )
    );
    assert_eq!(
        o["trusted"],
        json!({"revision": SHA_P, "source": "https://github.com/team/app", "by": "ci"})
    );
    assert_eq!(o["revision"], SHA_P);
    assert_eq!(o["conflict"], true);
    let o = origin(&w, "misattested").await;
    assert_eq!(o["attestations"][0]["verified"], false);
    assert!(
        o["attestations"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("subject is another artifact")
    );
    assert_eq!(
        (&o["trusted"], &o["revision"]),
        (&Value::Null, &json!("abc123"))
    );
    let (status, _) = get(&w, "attested/labels?signedBy=ci").await;
    assert_eq!(status, 412);

    // The gate: the good signature passes on every route; the others are 412 naming the
    // digest and the key; another configured key does not stand in; an unknown key is 400.
    for route in ["origin", "labels", "history?level=0&", "metadata"] {
        let sep = if route.ends_with('&') { "" } else { "?" };
        let (status, _) = get(&w, &format!("signed/{route}{sep}signedBy=ci")).await;
        assert_eq!(status, 200, "{route}");
        for tag in ["wrong-key", "tampered", "elsewhere", "labels"] {
            let (status, body) = get(&w, &format!("{tag}/{route}{sep}signedBy=ci")).await;
            assert_eq!(status, 412, "{tag}/{route}: {body}");
            assert_eq!(body["error"]["data"]["name"], "not_signed");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("\"ci\"") && message.contains("sha256:"),
                "{message}"
            );
        }
    }
    let (status, _) = get(&w, "signed/labels?signedBy=other").await;
    assert_eq!(status, 412);
    let (status, body) = get(&w, "signed/labels?signedBy=nobody").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has ci, other")
    );

    // The CLI: exit 9 when not signed, the labels when signed.
    let out = dimsum(
        Some(&w.config),
        &["labels", "local", "team/app", "signed", "--signed-by", "ci"],
        None,
    )
    .await;
    assert!(out.ok().contains("abc123"));
    dimsum(
        Some(&w.config),
        &[
            "labels",
            "local",
            "team/app",
            "tampered",
            "--signed-by",
            "ci",
        ],
        None,
    )
    .await
    .fails(9, "verifies with the key or identity \"ci\"");
}

/// An index entry that is itself an index: one bad response on every answer that resolves an
/// image (origin and signatures share that resolution with history), never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_of_an_index_is_a_bad_response_everywhere() {
    let registry = Registry::start(Mode::Open);
    let p = Pusher::new(&registry.url(), None);
    let repo = "team/app";
    let child = annotated(&p, repo, "child", json!({})).await;
    let inner = index(&p, repo, "inner", &child, json!({}), None, json!({})).await;
    let inner_bytes = {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/v2/{repo}/manifests/{inner}", registry.url()))
            .header("accept", OCI_INDEX)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    let outer = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_INDEX, "size": inner_bytes.len(), "digest": inner,
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    p.manifest(
        repo,
        "outer",
        OCI_INDEX,
        &serde_json::to_vec(&outer).unwrap(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &account_yaml("local", &registry.url(), ""));
    let server = Served::start(&config);
    for route in ["history?level=0", "origin", "signatures", "labels"] {
        let (status, body) = get_json(&format!("{}/local/{repo}/outer/{route}", server.url)).await;
        assert_eq!(status, 502, "{route}: {body}");
        assert_eq!(
            body["error"]["data"]["name"], "registry_bad_response",
            "{route}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("index entry points to another index"),
            "{route}: {body}"
        );
    }
}
