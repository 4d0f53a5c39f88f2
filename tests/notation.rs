//! Notation signatures through real registries (issue 26): envelopes made here
//! (tests/harness/notary.rs) attached as OCI referrers in both signature-manifest marker forms,
//! found through Distribution's fallback tag and through the zoo's ACR profile's referrers API,
//! judged under a `trustpolicy.json` and trust store in Notation's own layout. The real Notation
//! signatures are verified at the unit level (src/notation/tests.rs): their images' layers are not
//! published, so no registry here would accept their manifests.

use serde_json::{Value, json};

use crate::harness::get_json;
use crate::harness::images::{self, OCI, OCI_INDEX, Pusher};
use crate::harness::notary::{self, Signed};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};
use crate::harness::server::Served;
use crate::harness::zoo::{Profile, Zoo};
use crate::origin::{EMPTY, annotated};

const NOTATION: &str = "application/vnd.cncf.notary.signature";
const JWS: &str = "application/jose+json";
const COSE: &str = "application/cose";

/// How a signature manifest says it is one (notation.md §1).
#[derive(Clone, Copy)]
enum Marker {
    /// `artifactType` (current Notation).
    ArtifactType,
    /// `config.mediaType` (Notation ≤ 1.1, OCI 1.0 registries).
    Config,
}

/// Pushes a signature manifest for `subject` whose one layer is `envelope`; its descriptor.
async fn signature(
    p: &Pusher,
    repo: &str,
    subject: &(Vec<u8>, String),
    layer: &str,
    envelope: &[u8],
    marker: Marker,
) -> Value {
    let layer_digest = p.blob(repo, envelope).await;
    let mut manifest = json!({"schemaVersion": 2, "mediaType": OCI,
        "layers": [{"mediaType": layer, "size": envelope.len(), "digest": layer_digest}],
        "subject": {"mediaType": OCI, "size": subject.0.len(), "digest": subject.1}});
    match marker {
        Marker::ArtifactType => {
            manifest["artifactType"] = NOTATION.into();
            manifest["config"] =
                json!({"mediaType": EMPTY, "size": 2, "digest": p.blob(repo, b"{}").await});
        }
        Marker::Config => {
            manifest["config"] =
                json!({"mediaType": NOTATION, "size": 2, "digest": p.blob(repo, b"{}").await});
        }
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = images::digest(&bytes);
    p.manifest(repo, &digest, OCI, &bytes).await;
    json!({"mediaType": OCI, "size": bytes.len(), "digest": digest, "artifactType": NOTATION})
}

/// Lists `signatures` in `subject`'s referrers fallback tag.
async fn list(p: &Pusher, repo: &str, subject: &str, signatures: Vec<Value>) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": signatures});
    p.manifest(
        repo,
        &subject.replacen(':', "-", 1),
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
}

/// Pushes an image tagged `tag` with one signature whose envelope `make` writes for it.
async fn one_signature(
    p: &Pusher,
    repo: &str,
    tag: &str,
    layer: &str,
    marker: Marker,
    make: impl FnOnce(&(Vec<u8>, String)) -> Vec<u8>,
) -> (Vec<u8>, String) {
    let image = annotated(p, repo, tag, json!({"dimsum.test": tag})).await;
    let sig = signature(p, repo, &image, layer, &make(&image), marker).await;
    list(p, repo, &image.1, vec![sig]).await;
    image
}

fn signed(image: &(Vec<u8>, String)) -> Signed<'_> {
    Signed {
        media_type: OCI,
        digest: &image.1,
        size: image.0.len() as u64,
    }
}

struct World {
    registry: Registry,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    server: Served,
}

async fn world() -> World {
    let registry = Registry::start(Mode::Open);
    let p = Pusher::new(&registry.url(), None);
    let repo = "team/app";
    let (key, leaf) = notary::leaf(1, "Acme", false);
    let (other_key, other_leaf) = notary::leaf(2, "Other", false);
    let (crl_key, crl_leaf) = notary::leaf(3, "Acme", true);
    let jws = one_signature(&p, repo, "jws", JWS, Marker::ArtifactType, |i| {
        notary::jws(&key, &leaf, &signed(i), None)
    })
    .await;
    one_signature(&p, repo, "cose", COSE, Marker::Config, |i| {
        notary::cose(&key, &leaf, &signed(i))
    })
    .await;
    // A good envelope of the `jws` image, re-attached to another one.
    one_signature(&p, repo, "moved", JWS, Marker::ArtifactType, |_| {
        notary::jws(&key, &leaf, &signed(&jws), None)
    })
    .await;
    one_signature(&p, repo, "flipped", JWS, Marker::ArtifactType, |i| {
        let mut envelope: Value =
            serde_json::from_slice(&notary::jws(&key, &leaf, &signed(i), None)).unwrap();
        let s = envelope["signature"].as_str().unwrap().to_owned();
        envelope["signature"] =
            format!("{}{}", if s.starts_with('A') { "B" } else { "A" }, &s[1..]).into();
        serde_json::to_vec(&envelope).unwrap()
    })
    .await;
    one_signature(&p, repo, "stranger", JWS, Marker::ArtifactType, |i| {
        notary::jws(&other_key, &other_leaf, &signed(i), None)
    })
    .await;
    let tar = "application/vnd.oci.image.layer.v1.tar";
    one_signature(&p, repo, "tar", tar, Marker::Config, |_| {
        b"not an envelope".to_vec()
    })
    .await;
    one_signature(&p, repo, "crl", JWS, Marker::ArtifactType, |i| {
        notary::jws(&crl_key, &crl_leaf, &signed(i), None)
    })
    .await;
    // Several signatures on one image: one good is enough for the gate.
    let several = annotated(&p, repo, "several", json!({"dimsum.test": "several"})).await;
    let good = notary::jws(&key, &leaf, &signed(&several), None);
    let good = signature(&p, repo, &several, JWS, &good, Marker::ArtifactType).await;
    let bad = notary::jws(&other_key, &other_leaf, &signed(&several), None);
    let bad = signature(&p, repo, &several, JWS, &bad, Marker::Config).await;
    list(&p, repo, &several.1, vec![bad, good]).await;
    // An expired signature where a permissive policy applies.
    one_signature(
        &p,
        "team/lenient",
        "expired",
        JWS,
        Marker::ArtifactType,
        |i| notary::jws(&key, &leaf, &signed(i), Some("2020-01-01T00:00:00Z")),
    )
    .await;

    // Notation's own layout: trust store directories and trustpolicy.json.
    let dir = tempfile::tempdir().unwrap();
    for (store, der) in [("ca/acme", &leaf), ("ca/acme", &crl_leaf)] {
        let path = dir.path().join("truststore/x509").join(store);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(format!("{}.crt", images::digest(der))), der).unwrap();
    }
    let host = registry.url().trim_start_matches("http://").to_owned();
    let policy = json!({"version": "1.0", "trustPolicies": [
        {"name": "acme-release", "registryScopes": [format!("{host}/team/app")],
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"],
         "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"]},
        {"name": "lenient", "registryScopes": [format!("{host}/team/lenient")],
         "signatureVerification": {"level": "permissive"}, "trustStores": ["ca:acme"], "trustedIdentities": ["*"]},
        {"name": "anywhere", "registryScopes": ["*"],
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"],
         "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"]}]});
    let policy_file = dir.path().join("trustpolicy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let trust = format!(
        "dimsum:\n  trust:\n    notation:\n      trustPolicyFile: {}\n      trustStoreDir: {}\n",
        policy_file.display(),
        dir.path().join("truststore").display()
    );
    let yaml = account_yaml("local", &registry.url(), "").replacen("dimsum:\n", &trust, 1);
    let config = config(dir.path(), &yaml);
    let server = Served::start(&config);
    World {
        registry,
        dir,
        config,
        server,
    }
}

async fn get(server: &Served, account: &str, path: &str) -> (u16, Value) {
    get_json(&format!("{}/{account}/{path}", server.url)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notation_signatures_verify_under_the_trust_policy() {
    let w = world().await;
    let one = |body: &Value| body["signatures"].as_array().unwrap().clone();
    for tag in ["jws", "cose"] {
        let (status, body) = get(&w.server, "local", &format!("team/app/{tag}/signatures")).await;
        assert_eq!(status, 200, "{body}");
        let s = &one(&body)[0];
        assert_eq!(
            (
                &s["kind"],
                &s["verified"],
                &s["signers"],
                &s["reason"],
                &s["signedAt"]
            ),
            (
                &json!("notation"),
                &json!(true),
                &json!(["acme-release"]),
                &Value::Null,
                &Value::Null
            ),
            "{tag}: {s}"
        );
        assert_eq!(s["identity"]["subject"], "CN=ci,O=Acme,ST=WA,C=US");
        let (status, _) = get(
            &w.server,
            "local",
            &format!("team/app/{tag}/labels?signedBy=acme-release"),
        )
        .await;
        assert_eq!(status, 200, "{tag}");
    }
    for (tag, why) in [
        ("moved", "is not this artifact's"),
        ("flipped", "does not verify with the leaf's key"),
        (
            "stranger",
            "no certificate of the signature's chain is in a ca trust store",
        ),
        ("tar", "neither a JWS"),
        ("crl", "revocation not checked"),
    ] {
        let (_, body) = get(&w.server, "local", &format!("team/app/{tag}/signatures")).await;
        let s = &one(&body)[0];
        assert_eq!(
            (&s["verified"], &s["signers"]),
            (&json!(false), &json!([])),
            "{tag}: {s}"
        );
        assert!(s["reason"].as_str().unwrap().contains(why), "{tag}: {s}");
        let (status, body) = get(
            &w.server,
            "local",
            &format!("team/app/{tag}/history?level=0&signedBy=acme-release"),
        )
        .await;
        assert_eq!(status, 412, "{tag}: {body}");
    }
    let (_, body) = get(&w.server, "local", "team/app/several/signatures").await;
    let verdicts: Vec<Value> = one(&body).iter().map(|s| s["verified"].clone()).collect();
    assert_eq!(verdicts, [json!(false), json!(true)]);
    let (status, _) = get(
        &w.server,
        "local",
        "team/app/several/origin?signedBy=acme-release",
    )
    .await;
    assert_eq!(status, 200);
    // Permissive: the expired signature verifies, the expiry reported.
    let (_, body) = get(&w.server, "local", "team/lenient/expired/signatures").await;
    let s = &one(&body)[0];
    assert_eq!(
        (&s["verified"], &s["signers"]),
        (&json!(true), &json!(["lenient"]))
    );
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("only logs: the signature expired"),
        "{s}"
    );
    // `config check` names the policies; `dimsum verify` explains each verdict.
    let out = dimsum(Some(&w.config), &["config", "check"], None).await;
    assert!(
        out.ok().contains("notation policy acme-release: scopes ["),
        "{}",
        out.text()
    );
    let out = dimsum(
        Some(&w.config),
        &[
            "verify",
            "local",
            "team/app",
            "stranger",
            "--signed-by",
            "acme-release",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 9, "{}", out.stderr);
    let printed: Value = serde_json::from_str(out.text().trim()).unwrap();
    assert!(
        printed["signatures"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("trust store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acr_referrers_api_serves_them_and_bad_policies_are_refused() {
    let w = world().await;
    let zoo = Zoo::start(Profile::named("acr"), &w.registry.url()).await;
    let lines = zoo.account_lines(&w.dir.path().join("zoo-password"));
    let yaml = std::fs::read_to_string(&w.config).unwrap().replacen(
        "  accounts:\n",
        &format!(
            "  accounts:\n  - name: acr\n    address: {}\n{lines}",
            zoo.url
        ),
        1,
    );
    let cfg = config(w.dir.path(), &yaml);
    let server = Served::start(&cfg);
    // Another registry host: the catch-all policy applies.
    let (status, body) = get(&server, "acr", "team/app/cose/signatures").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["signatures"][0]["signers"],
        json!(["anywhere"]),
        "{body}"
    );
    assert!(
        zoo.seen()
            .iter()
            .any(|s| s.path.contains("/referrers/") && s.status == 200),
        "the referrers API answered"
    );
    // A policy file Notation would refuse is a configuration error naming file and policy.
    let policy_file = w.dir.path().join("trustpolicy.json");
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(&policy_file).unwrap()).unwrap();
    policy["trustPolicies"][1]["registryScopes"] =
        policy["trustPolicies"][0]["registryScopes"].clone();
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let out = dimsum(Some(&w.config), &["config", "check"], None).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("trustpolicy.json: policy \"lenient\": scope"),
        "{}",
        out.stderr
    );
}
