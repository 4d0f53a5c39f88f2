//! The verifier on real Notation signatures (notation.md §10) under the policies and stores
//! `notation verify` would use, and on signatures made here (ES256, JWS and COSE) for what the
//! real ones do not cover: revocation locations, timestamps, identities, tampering.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/harness/notary.rs"]
mod notary;

use super::envelope::{COSE, JWS, Target};
use super::policy::Notation;
use super::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/notation/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// 2026-12-02: when these tests were written; the real certificates are valid until 2122/2123.
const NOW: i64 = 1_796_169_600;

fn leaf_of(envelope: &[u8]) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    STANDARD
        .decode(v["header"]["x5c"][0].as_str().unwrap())
        .unwrap()
}

/// A trust store directory holding `stores` (`type/name` → DER certificates) and a policy file.
fn trust(dir: &Path, stores: &[(&str, &[u8])], policies: serde_json::Value) -> Notation {
    for (i, (store, der)) in stores.iter().enumerate() {
        let path = dir.join("x509").join(store);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(format!("{i}.crt")), der).unwrap();
    }
    let file = dir.join("trustpolicy.json");
    std::fs::write(
        &file,
        json!({"version": "1.0", "trustPolicies": policies}).to_string(),
    )
    .unwrap();
    Notation::load(&file, dir).unwrap()
}

fn policy(
    name: &str,
    level: serde_json::Value,
    stores: &[&str],
    identities: &[&str],
) -> serde_json::Value {
    json!({"name": name, "registryScopes": ["*"], "signatureVerification": level,
        "trustStores": stores, "trustedIdentities": identities})
}

const E2E_IDENTITY: &str = "x509.subject: CN=e2e,O=Notary,L=Seattle,ST=WA,C=US";

fn e2e_target() -> Target {
    Target {
        media_type: "application/vnd.oci.artifact.manifest.v1+json".to_owned(),
        digest: "sha256:cc2ae4e91a31a77086edbdbf4711de48e5fa3ebdacad3403e61777a9e1a53b6f"
            .to_owned(),
        size: 417,
    }
}

#[test]
fn real_signatures_get_notations_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let valid = fixture("e2e-valid.sig");
    let alpine = fixture("alpine-jws.sig");
    let n = trust(
        dir.path(),
        &[
            ("ca/e2e", &leaf_of(&valid)),
            ("ca/alpine", &leaf_of(&alpine)),
        ],
        json!([policy(
            "e2e",
            json!({"level": "strict"}),
            &["ca:e2e", "ca:alpine"],
            &[
                E2E_IDENTITY,
                "x509.subject: C=US, ST=WA, O=Notary, CN=alpine"
            ]
        )]),
    );
    let v = verify(Some(&n), "r/x", &e2e_target(), JWS, &valid, NOW);
    assert_eq!((v.verified, v.reason.as_deref()), (Some(true), None));
    assert_eq!(v.policy.as_deref(), Some("e2e"));
    assert_eq!(
        v.identity.unwrap().subject.as_deref(),
        Some("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US")
    );
    // notary.x509 without a timestamp authority: the signer's clock is not trusted.
    assert_eq!(v.signed_at, None);
    // notation-go's own test signature, of the manifest whose bytes we hold.
    let manifest = fixture("alpine-manifest.json");
    let alpine_target = Target {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        digest: crate::registry::Digest::sha256(&manifest).to_string(),
        size: manifest.len() as u64,
    };
    let v = verify(Some(&n), "r/x", &alpine_target, JWS, &alpine, NOW);
    assert_eq!(v.verified, Some(true), "{:?}", v.reason);
    // The expired signature (io.cncf.notary.expiry 2022-12-29): refused under strict.
    let expired = fixture("e2e-expired-signature.sig");
    let v = verify(Some(&n), "r/x", &e2e_target(), JWS, &expired, NOW);
    assert_eq!(v.verified, Some(false));
    assert!(
        v.reason
            .unwrap()
            .contains("the signature expired at 2022-12-29T02:59:51Z")
    );
}

#[test]
fn levels_and_overrides_decide_what_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let valid = fixture("e2e-valid.sig");
    let expired = fixture("e2e-expired-signature.sig");
    let alpine = leaf_of(&fixture("alpine-jws.sig"));
    let n = trust(
        dir.path(),
        &[("ca/e2e", &leaf_of(&valid)), ("ca/alpine", &alpine)],
        json!([
            {"name": "permissive", "registryScopes": ["h/permissive"], "signatureVerification": {"level": "permissive"},
             "trustStores": ["ca:e2e"], "trustedIdentities": ["*"]},
            {"name": "audit", "registryScopes": ["h/audit"], "signatureVerification": {"level": "audit"},
             "trustStores": ["ca:alpine"], "trustedIdentities": ["*"]},
            {"name": "strict-other", "registryScopes": ["h/other"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:alpine"], "trustedIdentities": ["*"]},
            {"name": "wrong-identity", "registryScopes": ["h/who"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:e2e"], "trustedIdentities": ["x509.subject: CN=e2e,O=Other,ST=WA,C=US"]},
            {"name": "expiry-off", "registryScopes": ["h/expiry"], "signatureVerification": {"level": "strict", "override": {"expiry": "skip"}},
             "trustStores": ["ca:e2e"], "trustedIdentities": [E2E_IDENTITY]},
            {"name": "skip", "registryScopes": ["h/skip"], "signatureVerification": {"level": "skip"}},
        ]),
    );
    let at =
        |scope: &str, envelope: &[u8]| verify(Some(&n), scope, &e2e_target(), JWS, envelope, NOW);
    // Permissive logs an expired signature (notation: "Successfully verified").
    let v = at("h/permissive", &expired);
    assert_eq!(v.verified, Some(true));
    assert!(
        v.reason
            .unwrap()
            .contains("only logs: the signature expired")
    );
    // Audit logs even a signer outside the store; strict refuses it.
    assert_eq!(at("h/audit", &valid).verified, Some(true));
    let v = at("h/other", &valid);
    assert_eq!(v.verified, Some(false));
    assert!(
        v.reason
            .unwrap()
            .contains("no certificate of the signature's chain is in a ca trust store")
    );
    let v = at("h/who", &valid);
    assert!(v.reason.unwrap().contains("is not a trusted identity"));
    assert_eq!(at("h/expiry", &expired).verified, Some(true));
    // Skip: nothing verified, never true.
    let v = at("h/skip", &valid);
    assert_eq!((v.verified, v.policy.as_deref()), (None, Some("skip")));
    // No policy for the scope: refused; no Notation configuration at all: not judged.
    assert_eq!(at("h/none", &valid).verified, Some(false));
    assert_eq!(
        verify(None, "h/x", &e2e_target(), JWS, &valid, NOW).verified,
        None
    );
}

#[test]
fn tampering_is_an_integrity_failure() {
    let dir = tempfile::tempdir().unwrap();
    let valid = fixture("e2e-valid.sig");
    let n = trust(
        dir.path(),
        &[("ca/e2e", &leaf_of(&valid))],
        json!([policy(
            "e2e",
            json!({"level": "strict"}),
            &["ca:e2e"],
            &[E2E_IDENTITY]
        )]),
    );
    let refused = |target: &Target, layer: &str, bytes: &[u8]| {
        let v = verify(Some(&n), "r/x", target, layer, bytes, NOW);
        assert_eq!(v.verified, Some(false));
        v.reason.unwrap()
    };
    // The envelope re-attached to another image.
    let mut other = e2e_target();
    other.digest = format!("sha256:{}", "0".repeat(64));
    assert!(refused(&other, JWS, &valid).contains("is not this artifact's"));
    other = e2e_target();
    other.size = 418;
    assert!(refused(&other, JWS, &valid).contains("is not this artifact's"));
    // A flipped bit of the signature.
    let mut v: serde_json::Value = serde_json::from_slice(&valid).unwrap();
    let mut sig = URL_SAFE_NO_PAD
        .decode(v["signature"].as_str().unwrap())
        .unwrap();
    sig[10] ^= 1;
    v["signature"] = URL_SAFE_NO_PAD.encode(sig).into();
    assert!(
        refused(&e2e_target(), JWS, &serde_json::to_vec(&v).unwrap()).contains("does not verify")
    );
    // A tar layer where an envelope should be (notation's e2e-invalid-signature).
    assert!(
        refused(
            &e2e_target(),
            "application/vnd.oci.image.layer.v1.tar",
            &valid
        )
        .contains("neither a JWS")
    );
    assert!(refused(&e2e_target(), COSE, &valid).contains("COSE envelope is unreadable"));
}

#[test]
fn own_signatures_jws_and_cose_revocation_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let (key, leaf) = notary::leaf(9, "Acme", false);
    let (crl_key, crl_leaf) = notary::leaf(9, "Acme", true);
    let n = trust(
        dir.path(),
        &[
            ("ca/acme", &leaf),
            ("ca/crl", &crl_leaf),
            ("tsa/acme", &leaf),
        ],
        json!([
            policy("acme", json!({"level": "strict"}), &["ca:acme"], &["x509.subject: C=US,ST=WA,O=Acme"]),
            {"name": "crl", "registryScopes": ["h/crl"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:crl"], "trustedIdentities": ["*"]},
            {"name": "crl-logged", "registryScopes": ["h/crl-logged"], "signatureVerification": {"level": "strict", "override": {"revocation": "log"}},
             "trustStores": ["ca:crl"], "trustedIdentities": ["*"]},
            {"name": "tsa", "registryScopes": ["h/tsa"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:acme", "tsa:acme"], "trustedIdentities": ["*"]},
        ]),
    );
    let target = e2e_target();
    let signed = notary::Signed {
        media_type: &target.media_type,
        digest: &target.digest,
        size: target.size,
    };
    let own_jws = |key, leaf: &[u8]| notary::jws(key, leaf, &signed, None);
    for (layer, envelope) in [
        (JWS, own_jws(&key, &leaf)),
        (COSE, notary::cose(&key, &leaf, &signed)),
    ] {
        let v = verify(Some(&n), "h/app", &target, layer, &envelope, NOW);
        assert_eq!(v.verified, Some(true), "{layer}: {:?}", v.reason);
        // Another image: refused in both envelopes.
        let mut other = target.clone();
        other.digest = format!("sha256:{}", "1".repeat(64));
        assert_eq!(
            verify(Some(&n), "h/app", &other, layer, &envelope, NOW).verified,
            Some(false)
        );
        // After the certificate's end (2099): no authentic time makes it valid.
        let v = verify(
            Some(&n),
            "h/app",
            &target,
            layer,
            &envelope,
            4_102_444_800 + 86_400 * 365,
        );
        assert!(v.reason.unwrap().contains("not at"), "{layer}");
    }
    // A chain naming a CRL could be revoked: never verified under an enforcing policy.
    let crl = own_jws(&crl_key, &crl_leaf);
    let v = verify(Some(&n), "h/crl", &target, JWS, &crl, NOW);
    assert_eq!(v.verified, Some(false));
    assert!(v.reason.unwrap().contains("revocation not checked"));
    let v = verify(Some(&n), "h/crl-logged", &target, JWS, &crl, NOW);
    assert_eq!(v.verified, Some(true));
    // A policy with a timestamp authority wants a timestamp, which is not verified here.
    let v = verify(Some(&n), "h/tsa", &target, JWS, &own_jws(&key, &leaf), NOW);
    assert!(v.reason.unwrap().contains("requires an RFC 3161 timestamp"));
    // An algorithm the key does not dictate, and an unknown critical header.
    let mut headers = notary::protected_headers(None);
    headers["alg"] = "ES384".into();
    headers["crit"] = json!([
        "io.cncf.notary.signingScheme",
        "io.cncf.notary.verificationPlugin"
    ]);
    let protected = URL_SAFE_NO_PAD.encode(headers.to_string());
    let mut jws: serde_json::Value = serde_json::from_slice(&own_jws(&key, &leaf)).unwrap();
    jws["protected"] = protected.into();
    let v = verify(
        Some(&n),
        "h/app",
        &target,
        JWS,
        &serde_json::to_vec(&jws).unwrap(),
        NOW,
    );
    assert!(v.reason.unwrap().contains("is not understood"));
}

#[test]
fn invalid_policies_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, leaf) = notary::leaf(9, "Acme", false);
    std::fs::create_dir_all(dir.path().join("x509/ca/acme")).unwrap();
    std::fs::write(dir.path().join("x509/ca/acme/acme.crt"), &leaf).unwrap();
    let load = |policies: serde_json::Value| {
        let file = dir.path().join("trustpolicy.json");
        std::fs::write(
            &file,
            json!({"version": "1.0", "trustPolicies": policies}).to_string(),
        )
        .unwrap();
        Notation::load(&file, dir.path()).unwrap_err().join("\n")
    };
    let good = |name: &str, scope: &str| {
        json!({"name": name, "registryScopes": [scope],
        "signatureVerification": {"level": "strict"}, "trustStores": ["ca:acme"], "trustedIdentities": ["*"]})
    };
    assert!(
        load(json!([good("a", "h/r"), good("b", "h/r")]))
            .contains("scope \"h/r\" is also in policy \"a\"")
    );
    assert!(load(json!([good("a", "h/r"), good("a", "h/s")])).contains("unique"));
    let mut skip = good("s", "*");
    skip["signatureVerification"]["level"] = "skip".into();
    assert!(load(json!([skip])).contains("a skip policy takes no trustStores"));
    let mut missing = good("m", "*");
    missing["trustStores"] = json!(["ca:nowhere"]);
    assert!(load(json!([missing])).contains("trust store ca:nowhere"));
    let mut integrity = good("i", "*");
    integrity["signatureVerification"]["override"] = json!({"integrity": "log"});
    assert!(load(json!([integrity])).contains("integrity cannot be overridden"));
    let mut weak = good("w", "*");
    weak["trustedIdentities"] = json!(["x509.subject: CN=ci"]);
    assert!(load(json!([weak])).contains("lacks C"));
}

#[test]
fn a_real_signature_by_an_expired_certificate() {
    // notation's e2e-with-expired-cert: a one-day certificate (2023-06-26..27), no timestamp.
    // `notation verify` fails it on authenticTimestamp under strict; a policy that only logs
    // that check verifies it.
    let dir = tempfile::tempdir().unwrap();
    let envelope = fixture("e2e-expired-cert.sig");
    let n = trust(
        dir.path(),
        &[("ca/expired", &leaf_of(&envelope))],
        json!([
            {"name": "strict", "registryScopes": ["h/strict"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:expired"], "trustedIdentities": ["x509.subject: C=AU, ST=Some-State, O=Internet Widgits Pty Ltd"]},
            {"name": "time-logged", "registryScopes": ["h/logged"], "signatureVerification": {"level": "strict", "override": {"authenticTimestamp": "log"}},
             "trustStores": ["ca:expired"], "trustedIdentities": ["*"]},
        ]),
    );
    let target = Target {
        media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
        digest: "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
            .to_owned(),
        size: 517,
    };
    let v = verify(Some(&n), "h/strict", &target, JWS, &envelope, NOW);
    assert_eq!(v.verified, Some(false));
    let reason = v.reason.unwrap();
    assert!(
        reason.contains("valid from 2023-06-26T06:10:00Z to 2023-06-27T06:10:00Z"),
        "{reason}"
    );
    // Before its end, the same signature verifies: the verdict follows the clock, not a cache.
    assert_eq!(
        verify(Some(&n), "h/strict", &target, JWS, &envelope, 1_687_800_000).verified,
        Some(true)
    );
    let v = verify(Some(&n), "h/logged", &target, JWS, &envelope, NOW);
    assert_eq!(v.verified, Some(true));
    assert!(v.reason.unwrap().contains("only logs"));
}

#[test]
fn a_signing_authority_time_is_trusted_and_its_stores_are_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (key, leaf) = notary::leaf(9, "Acme", false);
    let n = trust(
        dir.path(),
        &[("signingAuthority/signer", &leaf), ("ca/acme", &leaf)],
        json!([
            {"name": "service", "registryScopes": ["h/service"], "signatureVerification": {"level": "strict"},
             "trustStores": ["signingAuthority:signer"], "trustedIdentities": ["*"]},
            {"name": "ca-only", "registryScopes": ["h/ca"], "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:acme"], "trustedIdentities": ["*"]},
        ]),
    );
    let target = e2e_target();
    let signed = notary::Signed {
        media_type: &target.media_type,
        digest: &target.digest,
        size: target.size,
    };
    let mut headers = notary::protected_headers(None);
    headers["io.cncf.notary.signingScheme"] = "notary.x509.signingAuthority".into();
    headers["io.cncf.notary.authenticSigningTime"] = "2026-11-30T08:00:00Z".into();
    headers["crit"] = json!([
        "io.cncf.notary.signingScheme",
        "io.cncf.notary.authenticSigningTime"
    ]);
    let envelope = notary::jws_with(&key, &leaf, &signed, &headers);
    let v = verify(Some(&n), "h/service", &target, JWS, &envelope, NOW);
    assert_eq!(v.verified, Some(true), "{:?}", v.reason);
    // The service's time is authentic: it is the signing time the answer gives.
    assert_eq!(v.signed_at, Some(1_796_025_600));
    // A signing service's signature is not vouched for by a `ca` store.
    let v = verify(Some(&n), "h/ca", &target, JWS, &envelope, NOW);
    assert!(v.reason.unwrap().contains("signingAuthority trust store"));
    // The authentic time must be marked critical.
    headers["crit"] = json!(["io.cncf.notary.signingScheme"]);
    let v = verify(
        Some(&n),
        "h/service",
        &target,
        JWS,
        &notary::jws_with(&key, &leaf, &signed, &headers),
        NOW,
    );
    assert!(v.reason.unwrap().contains("is not marked critical"));
}
