//! Signatures of an image, and what dimsum can verify of them offline (provenance.md).
//!
//! - **cosign, key-based** (the `sha256-<hex>.sig` tag): each layer is a simple-signing payload
//!   with its signature in the `dev.cosignproject.cosign/signature` annotation (base64 of an ASN.1
//!   DER ECDSA signature). Verified: ECDSA P-256 with SHA-256 over the payload's exact bytes
//!   against each configured key, **and** the payload's `critical.image.docker-manifest-digest`
//!   must name the image (or its index). A signature that fails either is `verified: false`.
//! - **cosign keyless** (a Fulcio certificate in `dev.sigstore.cosign/certificate`), **sigstore
//!   bundles** (cosign 3, OCI referrers) and **Notation** signatures: listed, `verified: null`.
//!   Verifying them honestly needs the Fulcio and Rekor roots (or the signer's X.509 chain) and a
//!   transparency-log check, which dimsum does not hold; it does not pretend to.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Serialize;

use super::raw::Raw;

/// The annotation holding a cosign signature.
pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The annotation holding a keyless signature's certificate.
const COSIGN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// cosign 3's bundles, as referrers.
const SIGSTORE_BUNDLE: &str = "application/vnd.dev.sigstore.bundle";
/// Notation's signature manifests.
const NOTATION: &str = "application/vnd.cncf.notary.signature";

/// A public key signatures may be verified with (`dimsum.trust.cosignKeys`).
#[derive(Clone, PartialEq, Eq)]
pub struct CosignKey {
    /// The name pipelines use (`signedBy`).
    pub name: String,
    key: VerifyingKey,
}

impl std::fmt::Debug for CosignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CosignKey {
    /// A key from PKIX PEM (`-----BEGIN PUBLIC KEY-----`), as `cosign generate-key-pair` writes
    /// `cosign.pub`.
    pub fn from_pem(name: &str, pem: &str) -> Result<CosignKey, String> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| format!("not a PEM ECDSA P-256 public key: {e}"))?;
        Ok(CosignKey {
            name: name.to_owned(),
            key,
        })
    }
}

/// One signature as the answer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// `cosign`, `sigstore-bundle` or `notation`.
    pub kind: &'static str,
    /// The manifest digest the signature is for (the image's or its index's).
    pub digest: String,
    /// `true`/`false` when a configured key applies; `null` when none does.
    pub verified: Option<bool>,
    /// The configured key it verified with.
    pub key: Option<String>,
}

/// Verifies one cosign layer: `payload` (the layer blob) signed as `signature_b64`, which must
/// name `digest`.
pub fn verify_cosign(
    keys: &[CosignKey],
    payload: &[u8],
    signature_b64: &str,
    digest: &str,
) -> Signature {
    let mut answer = Signature {
        kind: "cosign",
        digest: digest.to_owned(),
        verified: None,
        key: None,
    };
    if keys.is_empty() {
        return answer;
    }
    answer.verified = Some(false);
    let Some(signature) = STANDARD
        .decode(signature_b64.trim())
        .ok()
        .and_then(|der| EcdsaSignature::from_der(&der).ok())
    else {
        return answer;
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.key.verify(payload, &signature).is_ok())
    else {
        return answer;
    };
    answer.key = Some(key.name.clone());
    // A good signature over a payload about another image says nothing about this one.
    let named = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|p| {
            p.pointer("/critical/image/docker-manifest-digest")?
                .as_str()
                .map(str::to_owned)
        });
    answer.verified = Some(named.as_deref() == Some(digest));
    answer
}

/// A keyless cosign layer (a certificate and no key-based check possible here).
pub fn is_keyless(layer: &super::raw::Descriptor) -> bool {
    layer.annotations.contains_key(COSIGN_CERTIFICATE)
}

/// The kind of a referrer, from its `artifactType` (or its manifest's, for older cosign's
/// fallback indexes that list bundles as `application/vnd.oci.empty.v1+json`).
pub fn referrer_kind(artifact_type: &str) -> Option<&'static str> {
    if artifact_type.starts_with(SIGSTORE_BUNDLE) {
        Some("sigstore-bundle")
    } else if artifact_type == NOTATION {
        Some("notation")
    } else {
        None
    }
}

/// Whether a referrer's listed type is too vague to classify without fetching its manifest.
pub fn needs_manifest(artifact_type: Option<&str>) -> bool {
    matches!(
        artifact_type,
        None | Some("") | Some("application/vnd.oci.empty.v1+json")
    )
}

/// A referrer listed for `digest`, classified by its manifest.
pub fn referrer_from_manifest(manifest: &Raw, digest: &str) -> Option<Signature> {
    referrer_kind(manifest.kind()?).map(|kind| Signature {
        kind,
        digest: digest.to_owned(),
        verified: None,
        key: None,
    })
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};

    use super::*;

    fn key(seed: u8) -> (SigningKey, CosignKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).unwrap();
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let name = format!("k{seed}");
        (signing.clone(), CosignKey::from_pem(&name, &pem).unwrap())
    }

    fn sign(key: &SigningKey, payload: &[u8]) -> String {
        let sig: EcdsaSignature = key.sign(payload);
        STANDARD.encode(sig.to_der().as_bytes())
    }

    #[test]
    fn cosign_signatures() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let other = format!("sha256:{}", "b".repeat(64));
        let payload = |d: &str| {
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"r/x"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        };
        let (ci, ci_key) = key(1);
        let (_, wrong_key) = key(2);
        let good = payload(&digest);
        let sig = sign(&ci, good.as_bytes());
        let v = verify_cosign(
            std::slice::from_ref(&ci_key),
            good.as_bytes(),
            &sig,
            &digest,
        );
        assert_eq!((v.verified, v.key.as_deref()), (Some(true), Some("k1")));
        // Among several keys, the one that verifies is named.
        let v = verify_cosign(
            &[wrong_key.clone(), ci_key.clone()],
            good.as_bytes(),
            &sig,
            &digest,
        );
        assert_eq!(v.key.as_deref(), Some("k1"));
        // The wrong key, a tampered payload, a payload for another image, garbage: false.
        let v = verify_cosign(
            std::slice::from_ref(&wrong_key),
            good.as_bytes(),
            &sig,
            &digest,
        );
        assert_eq!((v.verified, v.key), (Some(false), None));
        let tampered = good.replace("r/x", "r/y");
        let v = verify_cosign(
            std::slice::from_ref(&ci_key),
            tampered.as_bytes(),
            &sig,
            &digest,
        );
        assert_eq!(v.verified, Some(false));
        let elsewhere = payload(&other);
        let sig_other = sign(&ci, elsewhere.as_bytes());
        let v = verify_cosign(
            std::slice::from_ref(&ci_key),
            elsewhere.as_bytes(),
            &sig_other,
            &digest,
        );
        assert_eq!((v.verified, v.key.as_deref()), (Some(false), Some("k1")));
        let v = verify_cosign(
            std::slice::from_ref(&ci_key),
            good.as_bytes(),
            "!!",
            &digest,
        );
        assert_eq!(v.verified, Some(false));
        // No keys configured: nothing to say.
        assert_eq!(
            verify_cosign(&[], good.as_bytes(), &sig, &digest).verified,
            None
        );
        assert!(
            CosignKey::from_pem(
                "x",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
            )
            .is_err()
        );
    }

    #[test]
    fn referrer_kinds() {
        assert_eq!(
            referrer_kind("application/vnd.dev.sigstore.bundle.v0.3+json"),
            Some("sigstore-bundle")
        );
        assert_eq!(
            referrer_kind("application/vnd.cncf.notary.signature"),
            Some("notation")
        );
        assert_eq!(referrer_kind("application/spdx+json"), None);
        assert!(needs_manifest(Some("application/vnd.oci.empty.v1+json")));
        assert!(!needs_manifest(Some("application/spdx+json")));
    }
}
