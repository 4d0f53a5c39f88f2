//! Keyless signatures and signed provenance through a real registry (issue 23): a real
//! public-good bundle on the exact image it names, verified offline with the shipped root; our
//! own Sigstore's signatures (tests/harness/sigstore.rs) in cosign's `.sig` form and as bundle
//! referrers, each tampering refused with its reason and by `signedBy`; identity policies; the
//! `trusted` revision; the `signatures` answer on an artifact and on an image without a config.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::get_json;
use crate::harness::images::{self, OCI, OCI_INDEX, Pusher};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};
use crate::harness::server::Served;
use crate::harness::sigstore::{COMMIT, GITHUB, RELEASE, Tamper, TestSigstore, Who};
use crate::origin::{BUNDLE, EMPTY, annotated};

const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";
/// go-containerregistry's `empty.Image`, which the real public-good bundle attests
/// (keyless.md §7.1): its manifest and config, byte for byte.
const EMPTY_IMAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":115,"digest":"sha256:5b943e2b943f6c81dbbd4e2eca5121f4fcc39139e3d1219d6d89bd925b77d9fe"},"layers":[]}"#;
const EMPTY_CONFIG: &str = r#"{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}"#;
const EMPTY_DIGEST: &str =
    "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";

/// Pushes a `.sig` manifest with one layer per (payload, annotations).
async fn sig_tag(
    p: &Pusher,
    repo: &str,
    digest: &str,
    suffix: &str,
    layers: &[(Vec<u8>, BTreeMap<String, String>, &str)],
) {
    let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = p.blob(repo, config).await;
    let mut descriptors = Vec::new();
    for (blob, annotations, media_type) in layers {
        descriptors.push(json!({"mediaType": media_type, "size": blob.len(),
            "digest": p.blob(repo, blob).await, "annotations": annotations}));
    }
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": config.len(), "digest": config_digest},
        "layers": descriptors});
    let tag = format!("{}.{suffix}", digest.replacen(':', "-", 1));
    p.manifest(repo, &tag, OCI, &serde_json::to_vec(&manifest).unwrap())
        .await;
}

/// Attaches bundles to `subject` as OCI 1.1 referrers, listed in the fallback tag (Distribution
/// 2.8 has no referrers API).
async fn bundles(p: &Pusher, repo: &str, subject: (&str, usize, &str), bundles: &[Vec<u8>]) {
    let empty = p.blob(repo, b"{}").await;
    let mut listed = Vec::new();
    for bundle in bundles {
        let layer = p.blob(repo, bundle).await;
        let manifest = json!({"schemaVersion": 2, "mediaType": OCI, "artifactType": BUNDLE,
            "config": {"mediaType": EMPTY, "size": 2, "digest": empty},
            "layers": [{"mediaType": BUNDLE, "size": bundle.len(), "digest": layer}],
            "subject": {"mediaType": subject.2, "size": subject.1, "digest": subject.0}});
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = images::digest(&bytes);
        p.manifest(repo, &digest, OCI, &bytes).await;
        listed.push(json!({"mediaType": OCI, "size": bytes.len(), "digest": digest, "artifactType": BUNDLE}));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
    p.manifest(
        repo,
        &subject.0.replacen(':', "-", 1),
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
}

/// GitHub's workflow provenance (as `actions/attest-build-provenance` writes it) of `COMMIT`.
fn provenance_v1() -> Value {
    json!({
        "buildDefinition": {"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/acme/app", "path": ".github/workflows/release.yml"}},
            "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": COMMIT}}]},
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}}})
}

/// Signs `digest` keyless as the release workflow, in cosign's `.sig` form.
async fn signed_by_release(p: &Pusher, s: &TestSigstore, repo: &str, digest: &str) {
    let (payload, annotations) = s.cosign_layer(&Who::release(), digest, Tamper::None);
    sig_tag(
        p,
        repo,
        digest,
        "sig",
        &[(payload, annotations, SIMPLESIGNING)],
    )
    .await;
}

/// Pushes an image tagged `tag` and attaches the bundles `make` writes for its digest.
async fn with_bundles(p: &Pusher, repo: &str, tag: &str, make: impl FnOnce(&str) -> Vec<Vec<u8>>) {
    let image = annotated(p, repo, tag, json!({"dimsum.test": tag})).await;
    bundles(p, repo, (&image.1, image.0.len(), OCI), &make(&image.1)).await;
}

struct World {
    _registry: Registry,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    server: Served,
}

fn who(subject: &str, issuer: &str, git_ref: &str) -> Who {
    Who {
        subject: subject.to_owned(),
        issuer: issuer.to_owned(),
        git_ref: git_ref.to_owned(),
    }
}

async fn world() -> World {
    let registry = Registry::start(Mode::Open);
    let p = Pusher::new(&registry.url(), None);
    let repo = "team/app";
    let s = TestSigstore::new();
    let release = Who::release();

    // The real public-good attestation, on the very image it names.
    let config_digest = p.blob(repo, EMPTY_CONFIG.as_bytes()).await;
    assert_eq!(
        config_digest,
        "sha256:5b943e2b943f6c81dbbd4e2eca5121f4fcc39139e3d1219d6d89bd925b77d9fe"
    );
    let schema2 = "application/vnd.docker.distribution.manifest.v2+json";
    let digest = p
        .manifest(repo, "public-good", schema2, EMPTY_IMAGE.as_bytes())
        .await;
    assert_eq!(digest, EMPTY_DIGEST);
    let real = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sigstore/oci-attestation.sigstore.json"
    ))
    .unwrap();
    bundles(
        &p,
        repo,
        (EMPTY_DIGEST, EMPTY_IMAGE.len(), schema2),
        &[real],
    )
    .await;

    // cosign's `.sig` form, good and broken each way.
    let other = annotated(&p, repo, "other", json!({"dimsum.test": "other"})).await;
    let cases: [(&str, Who, Option<&str>, Tamper); 10] = [
        ("signed", release.clone(), None, Tamper::None),
        (
            "feature",
            who(
                &RELEASE.replace("main", "feature"),
                GITHUB,
                "refs/heads/feature",
            ),
            None,
            Tamper::None,
        ),
        (
            "gitlab",
            who(RELEASE, "https://gitlab.com", "refs/heads/main"),
            None,
            Tamper::None,
        ),
        (
            "unanchored",
            who(
                &format!("https://evil.example/?{RELEASE}"),
                GITHUB,
                "refs/heads/main",
            ),
            None,
            Tamper::None,
        ),
        ("tampered-payload", release.clone(), None, Tamper::Payload),
        ("tampered-set", release.clone(), None, Tamper::Set),
        ("expired", release.clone(), None, Tamper::Expired),
        ("other-root", release.clone(), None, Tamper::OtherRoot),
        ("no-sct", release.clone(), None, Tamper::NoSct),
        (
            "elsewhere",
            release.clone(),
            Some(other.1.as_str()),
            Tamper::None,
        ),
    ];
    for (tag, who, names, tamper) in cases {
        let image = annotated(&p, repo, tag, json!({"dimsum.test": tag})).await;
        let (payload, annotations) = s.cosign_layer(&who, names.unwrap_or(&image.1), tamper);
        sig_tag(
            &p,
            repo,
            &image.1,
            "sig",
            &[(payload, annotations, SIMPLESIGNING)],
        )
        .await;
    }

    // cosign 3: bundles as referrers, a signature and a signed SLSA provenance (GitHub's
    // build type) whose commit differs from the image's unsigned label.
    let slsa = |who: &Who, subject: &str| {
        s.bundle(
            who,
            subject,
            ("https://slsa.dev/provenance/v1", provenance_v1()),
            Tamper::None,
        )
    };
    let sign = |subject: &str, tamper| s.bundle(&release, subject, (SIGN_V1, Value::Null), tamper);
    with_bundles(&p, repo, "bundled", |d| {
        vec![sign(d, Tamper::None), slsa(&release, d)]
    })
    .await;
    with_bundles(&p, repo, "bundle-stranger", |_| {
        vec![sign(&other.1, Tamper::None)]
    })
    .await;
    with_bundles(&p, repo, "bundle-tampered", |d| {
        vec![sign(d, Tamper::Payload)]
    })
    .await;
    // An attestation by somebody nobody configured: not trusted, whatever it says.
    let gitlab = who(RELEASE, "https://gitlab.com", "refs/heads/main");
    with_bundles(&p, repo, "unvouched", |d| vec![slsa(&gitlab, d)]).await;

    // `cosign attest` (keyless, the `.att` tag): signed provenance without any signature.
    let attested = annotated(&p, repo, "attested", json!({"dimsum.test": "attested"})).await;
    let (envelope, annotations) = s.attestation_layer(
        &release,
        &attested.1,
        ("https://slsa.dev/provenance/v1", provenance_v1()),
    );
    sig_tag(
        &p,
        repo,
        &attested.1,
        "att",
        &[(
            envelope,
            annotations,
            "application/vnd.dsse.envelope.v1+json",
        )],
    )
    .await;

    // An artifact (not an image) and an image whose config blob is gone, both signed.
    let chart_config = br#"{"kind":"helm-chart"}"#;
    let layer = p.blob(repo, b"chart").await;
    let artifact = json!({"schemaVersion": 2, "mediaType": OCI, "artifactType": "application/vnd.cncf.helm.config.v1+json",
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "size": chart_config.len(), "digest": p.blob(repo, chart_config).await},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "size": 5, "digest": layer}]});
    let artifact = p
        .manifest(repo, "chart", OCI, &serde_json::to_vec(&artifact).unwrap())
        .await;
    signed_by_release(&p, &s, repo, &artifact).await;
    let lost_config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]},"dimsum":"lost"}"#;
    let lost_digest = p.blob(repo, lost_config).await;
    let lost = json!({"schemaVersion": 2, "mediaType": OCI,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": lost_config.len(), "digest": lost_digest},
        "layers": []});
    let lost = p
        .manifest(repo, "lost", OCI, &serde_json::to_vec(&lost).unwrap())
        .await;
    signed_by_release(&p, &s, repo, &lost).await;
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v2/{repo}/blobs/{lost_digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);

    // One trust root holding both instances, as an operator with a private Sigstore writes it.
    let mut root: Value = serde_json::from_str(&s.trusted_root()).unwrap();
    let public: Value =
        serde_json::from_slice(include_bytes!("../src/sigstore/trusted_root.json")).unwrap();
    for list in ["tlogs", "certificateAuthorities", "ctlogs"] {
        let mine = root[list].as_array_mut().unwrap();
        mine.extend(public[list].as_array().unwrap().iter().cloned());
    }
    let dir = tempfile::tempdir().unwrap();
    let root_file = dir.path().join("trusted_root.json");
    std::fs::write(&root_file, root.to_string()).unwrap();
    let trust = format!(
        "dimsum:
  trust:
    sigstore:
      trustedRootFile: {}
    identities:
    - name: release-ci
      issuer: {GITHUB}
      subjectRegExp: https://github\\.com/acme/app/\\.github/workflows/.*
      sourceRepositoryRef: refs/heads/main
    - name: any-acme
      issuerRegExp: https://token\\.actions\\.githubusercontent\\.com
      subjectRegExp: https://github\\.com/acme/.*
    - name: cody
      issuer: https://github.com/login/oauth
      subject: cody@soyland.com
",
        root_file.display()
    );
    let yaml = account_yaml("local", &registry.url(), "").replacen("dimsum:\n", &trust, 1);
    let config = config(dir.path(), &yaml);
    let server = Served::start(&config);
    World {
        _registry: registry,
        _dir: dir,
        config,
        server,
    }
}

async fn get(w: &World, path: &str) -> (u16, Value) {
    get_json(&format!("{}/local/team/app/{path}", w.server.url)).await
}

/// `dimsum verify local team/app TAG --signed-by NAME`.
async fn verify(w: &World, tag: &str, name: &str) -> crate::harness::run::Output {
    dimsum(
        Some(&w.config),
        &["verify", "local", "team/app", tag, "--signed-by", name],
        None,
    )
    .await
}

async fn signatures(w: &World, tag: &str) -> Value {
    let (status, body) = get(w, &format!("{tag}/signatures")).await;
    assert_eq!(status, 200, "{tag}: {body}");
    body
}

/// The one signature of `tag`: (verified, signers, reason).
async fn verdict(w: &World, tag: &str) -> (Value, Value, String) {
    let answer = signatures(w, tag).await;
    let found = answer["signatures"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{tag}: {answer}");
    let s = &found[0];
    (
        s["verified"].clone(),
        s["signers"].clone(),
        s["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_public_good_bundle_verifies_offline_on_its_image() {
    let w = world().await;
    let answer = signatures(&w, "public-good").await;
    assert_eq!(answer["digest"], EMPTY_DIGEST);
    assert_eq!(answer["signatures"], json!([]));
    let a = &answer["attestations"][0];
    assert_eq!(a["kind"], "sigstore-bundle");
    assert_eq!(a["verified"], true, "{a}");
    assert_eq!(a["signers"], json!(["cody"]));
    assert_eq!(a["identity"]["subject"], "cody@soyland.com");
    assert_eq!(a["identity"]["issuer"], "https://github.com/login/oauth");
    assert_eq!(a["signedAt"], "2025-02-28T19:18:11Z");
    assert_eq!(a["tlog"]["logIndex"], 175_508_996);
    assert_eq!(
        a["tlog"]["logId"],
        "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    );
    assert_eq!(
        a["predicateType"],
        "https://cosign.sigstore.dev/attestation/v1"
    );
    // An attestation is not a signature: signedBy wants a signature.
    let (status, body) = get(&w, "public-good/signatures?signedBy=cody").await;
    assert_eq!(status, 412, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_ca_signatures_verify_and_every_tampering_is_refused() {
    let w = world().await;
    let (verified, signers, reason) = verdict(&w, "signed").await;
    assert_eq!(
        (verified, signers, reason.as_str()),
        (json!(true), json!(["release-ci", "any-acme"]), "")
    );
    let answer = signatures(&w, "signed").await;
    let s = &answer["signatures"][0];
    assert_eq!(s["identity"]["subject"], RELEASE);
    assert_eq!(s["identity"]["issuer"], GITHUB);
    assert_eq!(s["identity"]["sourceRepositoryDigest"], COMMIT);
    assert_eq!(s["identity"]["sourceRepositoryRef"], "refs/heads/main");
    assert_eq!(
        s["identity"]["sourceRepositoryURI"],
        "https://github.com/acme/app"
    );
    assert_eq!(s["tlog"]["logIndex"], 7);
    assert!(s["signedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["key"], Value::Null);

    for (tag, why) in [
        ("tampered-payload", "about another payload"),
        ("tampered-set", "signed entry timestamp does not verify"),
        ("expired", "a certificate had expired"),
        ("other-root", "does not chain to"),
        ("no-sct", "no embedded SCT"),
        ("elsewhere", "names another image"),
        ("bundle-stranger", "subject is another artifact"),
        ("bundle-tampered", "about another payload"),
    ] {
        let (verified, signers, reason) = verdict(&w, tag).await;
        assert_eq!((verified, signers), (json!(false), json!([])), "{tag}");
        assert!(reason.contains(why), "{tag}: {reason}");
        for route in ["signatures", "origin", "labels", "history?level=0&"] {
            let sep = if route.ends_with('&') { "" } else { "?" };
            let (status, body) = get(&w, &format!("{tag}/{route}{sep}signedBy=release-ci")).await;
            assert_eq!(status, 412, "{tag}/{route}: {body}");
            assert_eq!(body["error"]["data"]["name"], "not_signed");
        }
    }
    for route in [
        "signatures",
        "origin",
        "labels",
        "history?level=0&",
        "metadata",
    ] {
        let sep = if route.ends_with('&') { "" } else { "?" };
        let (status, body) = get(&w, &format!("signed/{route}{sep}signedBy=release-ci")).await;
        assert_eq!(status, 200, "{route}: {body}");
    }
    let (status, body) = get(&w, "bundled/labels?signedBy=release-ci").await;
    assert_eq!(status, 200, "{body}");
    // An unknown name is bad input, naming keys and identities alike.
    let (status, body) = get(&w, "signed/labels?signedBy=relase-ci").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("release-ci, any-acme, cody")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_policies_select_exactly_the_signers_they_name() {
    let w = world().await;
    // Another branch: the subject pattern matches, the ref claim does not.
    let (verified, signers, _) = verdict(&w, "feature").await;
    assert_eq!((verified, signers), (json!(true), json!(["any-acme"])));
    let (status, _) = get(&w, "feature/labels?signedBy=release-ci").await;
    assert_eq!(status, 412);
    let (status, _) = get(&w, "feature/labels?signedBy=any-acme").await;
    assert_eq!(status, 200);
    // Another issuer, and a subject that only an unanchored pattern would take: authentic,
    // signed by nobody configured.
    for tag in ["gitlab", "unanchored"] {
        let (verified, signers, reason) = verdict(&w, tag).await;
        assert_eq!((verified, signers), (json!(false), json!([])), "{tag}");
        assert!(
            reason.starts_with("authentic, but no configured identity matches"),
            "{tag}: {reason}"
        );
        let (status, _) = get(&w, &format!("{tag}/labels?signedBy=any-acme")).await;
        assert_eq!(status, 412, "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_revision_comes_only_from_signed_evidence() {
    let w = world().await;
    // Signed provenance: its commit beats the image's unsigned label, and the conflict shows.
    let (status, o) = get(&w, "bundled/origin").await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(
        o["trusted"],
        json!({"revision": COMMIT, "source": "https://github.com/acme/app", "by": "release-ci"})
    );
    assert_eq!(o["revision"], COMMIT);
    assert_eq!(o["labels"]["revision"], "abc123");
    assert_eq!(o["conflict"], true);
    let first = &o["evidence"][0];
    assert_eq!(
        (
            &first["from"],
            &first["verified"],
            &first["by"],
            &first["key"]
        ),
        (
            &json!("signed-provenance"),
            &json!(true),
            &json!("release-ci"),
            &json!("predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit")
        )
    );
    let label = o["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == "label")
        .unwrap();
    assert_eq!(label["verified"], false);
    assert_eq!(
        o["attestations"][0]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(o["signatures"][0]["verified"], true);
    // A keyless signature alone: the certificate's claims vouch.
    let (_, o) = get(&w, "signed/origin").await;
    assert_eq!(o["trusted"]["revision"], COMMIT);
    assert_eq!(o["evidence"][0]["from"], "certificate");
    // Unsigned, or signed by nobody configured: labels never reach `trusted`.
    for tag in ["other", "unvouched", "gitlab"] {
        let (_, o) = get(&w, &format!("{tag}/origin")).await;
        assert_eq!(o["trusted"], Value::Null, "{tag}");
        assert_eq!(o["revision"], "abc123", "{tag}");
    }
    let (_, o) = get(&w, "unvouched/origin").await;
    assert_eq!(o["attestations"][0]["verified"], false);
    // `cosign attest`'s `.att` tag: the provenance vouches, but an attestation is no signature.
    let (_, o) = get(&w, "attested/origin").await;
    assert_eq!(o["trusted"]["revision"], COMMIT, "{o}");
    assert_eq!(o["attestations"][0]["kind"], "cosign");
    assert_eq!(
        o["attestations"][0]["signers"],
        json!(["release-ci", "any-acme"])
    );
    assert_eq!(o["signatures"], json!([]));
    let (status, _) = get(&w, "attested/labels?signedBy=release-ci").await;
    assert_eq!(status, 412);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_of_an_artifact_and_of_an_image_without_its_config() {
    let w = world().await;
    for tag in ["chart", "lost"] {
        let (verified, signers, _) = verdict(&w, tag).await;
        assert_eq!(
            (verified, signers),
            (json!(true), json!(["release-ci", "any-acme"])),
            "{tag}"
        );
    }
    // The config-reading answers cannot say as much.
    let (status, _) = get(&w, "lost/origin").await;
    assert_eq!(status, 404);
    // JSON-RPC and the CLI give the same answer; the CLI prints it and exits 9 when the gate fails.
    let rpc = w
        .server
        .rpc(
            "getSignatures",
            json!({"account": "local", "repository": "team/app", "tag": "chart"}),
        )
        .await;
    assert_eq!(rpc["result"], signatures(&w, "chart").await);
    let out = verify(&w, "chart", "release-ci").await;
    let cli: Value = serde_json::from_str(&out.ok()).unwrap();
    assert_eq!(cli, signatures(&w, "chart").await);
    let out = verify(&w, "expired", "release-ci").await;
    assert_eq!(out.code, 9, "{}", out.stderr);
    assert!(out.stderr.contains("\"release-ci\""), "{}", out.stderr);
    let printed: Value = serde_json::from_str(out.text().lines().next().unwrap()).unwrap();
    assert_eq!(printed["signatures"][0]["verified"], false);
    verify(&w, "chart", "nobody").await.fails(2, "nobody");
}
