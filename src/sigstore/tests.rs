//! The verifier on real public-good signatures (keyless.md §7), and on tamperings of them.

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/sigstore/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const EMPTY_IMAGE: &str = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
const KUBEWARDEN: &str = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

#[test]
fn a_real_dsse_bundle_with_set_and_proof() {
    let sig = form::bundle(&fixture("oci-attestation.sigstore.json")).unwrap();
    let checked = check(&Trust::default(), &sig, EMPTY_IMAGE);
    assert_eq!(checked.authentic, Ok(()));
    assert_eq!(checked.signed_at, Some(1_740_770_291));
    let id = checked.identity.unwrap();
    assert_eq!(id.subject.as_deref(), Some("cody@soyland.com"));
    assert_eq!(id.issuer.as_deref(), Some("https://github.com/login/oauth"));
    assert_eq!(
        checked.predicate_type.as_deref(),
        Some("https://cosign.sigstore.dev/attestation/v1")
    );
    assert_eq!(checked.tlog.unwrap().log_index, 175_508_996);
}

#[test]
fn a_real_cosign3_github_actions_signature() {
    let sig = form::bundle(&fixture("bundle_v03.json")).unwrap();
    let checked = check(&Trust::default(), &sig, KUBEWARDEN);
    assert_eq!(checked.authentic, Ok(()));
    let id = checked.identity.unwrap();
    assert_eq!(
        id.subject.as_deref(),
        Some(
            "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"
        )
    );
    assert_eq!(
        id.issuer.as_deref(),
        Some("https://token.actions.githubusercontent.com")
    );
    assert_eq!(
        id.claims.get("sourceRepositoryURI").map(String::as_str),
        Some("https://github.com/kubewarden/kubewarden-controller")
    );
    assert_eq!(
        id.claims.get("sourceRepositoryRef").map(String::as_str),
        Some("refs/tags/v1.34.0")
    );
    assert_eq!(checked.predicate_type.as_deref(), Some(SIGN_PREDICATE));
    // Another image's digest: authentic, but not about this image.
    let other = check(&Trust::default(), &sig, EMPTY_IMAGE);
    assert!(
        other
            .authentic
            .unwrap_err()
            .contains("subject is another artifact")
    );
}

fn legacy() -> (Keyless, String) {
    let v: Value = serde_json::from_slice(&fixture("legacy-2021.json")).unwrap();
    let annotations = serde_json::from_value(v["annotations"].clone()).unwrap();
    let payload = v["payload"].as_str().unwrap().as_bytes().to_vec();
    (
        form::cosign_signature(&annotations, payload).unwrap(),
        v["digest"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_real_2021_legacy_signature() {
    let (sig, digest) = legacy();
    // It has no SCT: refused while SCTs are required (cosign's default), verified without.
    let strict = check(&Trust::default(), &sig, &digest);
    assert!(strict.authentic.unwrap_err().contains("no embedded SCT"));
    let lax = Trust {
        require_sct: false,
        ..Trust::default()
    };
    let checked = check(&lax, &sig, &digest);
    assert_eq!(checked.authentic, Ok(()));
    let id = checked.identity.unwrap();
    assert_eq!(id.subject.as_deref(), Some("flavio@castelli.me"));
    // 2021 certificates carry no issuer at all: an issuer-requiring identity cannot match.
    assert_eq!(id.issuer, None);
}

/// Rewrites one field of the bundle's JSON.
fn tampered(edit: impl FnOnce(&mut Value)) -> Keyless {
    let mut v: Value = serde_json::from_slice(&fixture("oci-attestation.sigstore.json")).unwrap();
    edit(&mut v);
    form::bundle(&serde_json::to_vec(&v).unwrap()).unwrap()
}

fn refusal(sig: &Keyless, digest: &str) -> String {
    check(&Trust::default(), sig, digest).authentic.unwrap_err()
}

#[test]
fn tampered_real_bundles_are_refused_with_a_reason() {
    let entry = "/verificationMaterial/tlogEntries/0";
    let set = tampered(|v| {
        *v.pointer_mut(&format!("{entry}/integratedTime")).unwrap() = "1740770292".into();
    });
    assert!(refusal(&set, EMPTY_IMAGE).contains("signed entry timestamp does not verify"));
    let proof = tampered(|v| {
        *v.pointer_mut(&format!("{entry}/inclusionProof/hashes/0"))
            .unwrap() = "V8kTVhZDHU0oMb8SoiG+IJzfi1+zs8k07t7msfdk3DU=".into();
    });
    assert!(refusal(&proof, EMPTY_IMAGE).contains("inclusion proof"));
    let checkpoint = tampered(|v| {
        let c = v
            .pointer_mut(&format!("{entry}/inclusionProof/checkpoint/envelope"))
            .unwrap();
        *c = c
            .as_str()
            .unwrap()
            .replace("53604735\n", "53604736\n")
            .into();
    });
    assert!(refusal(&checkpoint, EMPTY_IMAGE).contains("checkpoint"));
    let payload = tampered(|v| {
        let p = v.pointer_mut("/dsseEnvelope/payload").unwrap();
        let text = String::from_utf8(tlog::b64(p.as_str().unwrap()).unwrap()).unwrap();
        let text = text.replace("bar", "baz");
        *p = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text).into();
    });
    assert!(refusal(&payload, EMPTY_IMAGE).contains("about another payload"));
    let no_set = tampered(|v| {
        v.pointer_mut(entry)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("inclusionPromise");
    });
    assert!(refusal(&no_set, EMPTY_IMAGE).contains("no signed entry timestamp"));
    let no_log = tampered(|v| {
        *v.pointer_mut("/verificationMaterial/tlogEntries").unwrap() = serde_json::json!([]);
    });
    assert!(refusal(&no_log, EMPTY_IMAGE).contains("no transparency log entry"));
}

#[test]
fn another_root_or_time_is_refused() {
    let sig = form::bundle(&fixture("oci-attestation.sigstore.json")).unwrap();
    // The root without the CA that issued the leaf: no chain.
    let mut root = TrustedRoot::public_good();
    root.authorities.truncate(1);
    let trust = Trust {
        root: Arc::new(root),
        ..Trust::default()
    };
    let e = check(&trust, &sig, EMPTY_IMAGE).authentic.unwrap_err();
    assert!(e.contains("no CA of the trust root"), "{e}");
    // The root's CA moved so its certificate expired before the log's time.
    let mut root = TrustedRoot::public_good();
    root.authorities.swap(0, 1);
    root.authorities[0].valid.end = Some(1_740_770_290);
    let trust = Trust {
        root: Arc::new(root),
        ..Trust::default()
    };
    assert!(check(&trust, &sig, EMPTY_IMAGE).authentic.is_err());
}

#[test]
fn every_bundle_version_is_read_by_its_own_rules() {
    let material = "/verificationMaterial";
    // The real v0.3 bundle re-expressed as v0.2 (a certificate chain) and v0.1 (a promise
    // only): what is signed is the same, so both verify.
    let chain_for_certificate = |v: &mut Value| {
        let cert = v
            .pointer(&format!("{material}/certificate"))
            .unwrap()
            .clone();
        let m = v.pointer_mut(material).unwrap().as_object_mut().unwrap();
        m.remove("certificate");
        m.insert(
            "x509CertificateChain".into(),
            serde_json::json!({"certificates": [cert]}),
        );
    };
    let v02 = tampered(|v| {
        v["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2".into();
        chain_for_certificate(v);
    });
    assert_eq!(
        check(&Trust::default(), &v02, EMPTY_IMAGE).authentic,
        Ok(())
    );
    let strip_proof = |v: &mut Value| {
        v.pointer_mut(&format!("{material}/tlogEntries/0"))
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove("inclusionProof");
    };
    let v01 = tampered(|v| {
        v["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1".into();
        strip_proof(v);
    });
    assert_eq!(
        check(&Trust::default(), &v01, EMPTY_IMAGE).authentic,
        Ok(())
    );
    // v0.2+ without a proof, a v0.3 with a chain, an unknown media type: refused unread.
    let read = |edit: &dyn Fn(&mut Value)| {
        let mut v: Value =
            serde_json::from_slice(&fixture("oci-attestation.sigstore.json")).unwrap();
        edit(&mut v);
        form::bundle(&serde_json::to_vec(&v).unwrap()).unwrap_err()
    };
    assert!(read(&strip_proof).contains("needs an inclusion proof"));
    assert!(read(&chain_for_certificate).contains("may not carry a certificate chain"));
    assert!(
        read(&|v: &mut Value| v["mediaType"] = "application/json".into())
            .contains("unknown bundle mediaType")
    );
}

#[test]
fn a_real_github_provenance_bundle_fails_only_on_its_npm_subject() {
    // npm's provenance of sigstore-js 5.0.0, signed in GitHub Actions: authentic in every
    // respect but one, since its subject is an npm tarball (sha512), not an image digest.
    let sig = form::bundle(&fixture("npm_slsa_bundle_v03.json")).unwrap();
    let checked = check(&Trust::default(), &sig, EMPTY_IMAGE);
    assert_eq!(
        checked.authentic,
        Err("the in-toto statement's subject is another artifact".to_owned())
    );
    let id = checked.identity.unwrap();
    assert_eq!(
        id.claims.get("sourceRepositoryDigest").map(String::as_str),
        Some("7d2900eca1c22b3f87c13987c8d4b7c9a29b733a")
    );
    assert_eq!(
        checked.predicate_type.as_deref(),
        Some("https://slsa.dev/provenance/v1")
    );
}
