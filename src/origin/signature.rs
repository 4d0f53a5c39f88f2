//! Signatures and attestations of an image, and the verdict on each (provenance.md,
//! keyless.md). One [`Signature`] shape for every kind, each saying why it does or does not
//! verify.
//!
//! - **cosign, key-based** (the `sha256-<hex>.sig` tag): ECDSA P-256 with SHA-256 over the
//!   payload's exact bytes against each configured key, **and** the payload's
//!   `critical.image.docker-manifest-digest` must name the image (or its index).
//! - **cosign keyless** (`.sig` and `.att` layers with a Fulcio certificate) and **Sigstore
//!   bundles** (OCI referrers): every offline check of [`crate::sigstore`], then the configured
//!   identities the certificate satisfies.
//! - **Notation**: judged in [`crate::service`] by [`crate::notation`] under the operator's trust
//!   policy; the verdict takes this same shape.
//!
//! `verified` is `true` only for a signature that is authentic **and** satisfies a configured
//! key, identity or trust policy; `null` only when nothing configured could judge it (no keys for
//! a keyed signature, no Notation policy, a `skip` policy).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::Serialize;
use serde_json::Value;

use crate::sigstore::cert::Identity;
use crate::sigstore::tlog::Tlog;
use crate::sigstore::{self, Checked, Trust};

/// The annotation holding a cosign signature.
pub const COSIGN_SIGNATURE: &str = sigstore::form::SIGNATURE;
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

/// One signature or attestation, with its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// `cosign`, `sigstore-bundle` or `notation`.
    pub kind: &'static str,
    /// The manifest digest it is for (the image's or its index's).
    pub digest: String,
    /// `true`: authentic and by a configured key or identity; `false`: not, see `reason`;
    /// `null`: nothing configured can judge it.
    pub verified: Option<bool>,
    /// The configured key it verified with (keyed signatures).
    pub key: Option<String>,
    /// The configured key and identity names it satisfies.
    pub signers: Vec<String>,
    /// Who the certificate names (keyless); `null` for keyed signatures.
    pub identity: Option<Identity>,
    /// The transparency log's verified time of signing.
    pub signed_at: Option<String>,
    /// The log entry.
    pub tlog: Option<Tlog>,
    /// Why it does not verify, or why nobody vouches for it.
    pub reason: Option<String>,
    /// The in-toto predicate type (attestations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The in-toto statement, once authentic: what a verified attestation says.
    #[serde(skip)]
    pub statement: Option<Arc<Value>>,
}

impl Signature {
    /// A signature nothing here judges.
    pub fn listed(kind: &'static str, digest: &str, reason: &str) -> Signature {
        Signature {
            kind,
            digest: digest.to_owned(),
            verified: None,
            key: None,
            signers: Vec::new(),
            identity: None,
            signed_at: None,
            tlog: None,
            reason: Some(reason.to_owned()),
            predicate_type: None,
            statement: None,
        }
    }

    /// A signature that could not even be read.
    pub fn unreadable(kind: &'static str, digest: &str, reason: String) -> Signature {
        Signature {
            verified: Some(false),
            reason: Some(reason),
            ..Signature::listed(kind, digest, "")
        }
    }

    /// The verdict on a keyless signature [`sigstore::check`] examined.
    pub fn keyless(kind: &'static str, digest: &str, checked: Checked, trust: &Trust) -> Signature {
        let signers = match (&checked.authentic, &checked.identity) {
            (Ok(()), Some(identity)) => trust.signers(identity),
            _ => Vec::new(),
        };
        let reason = match (&checked.authentic, &checked.identity) {
            (Err(e), _) => Some(e.clone()),
            (Ok(()), Some(id)) if signers.is_empty() => Some(format!(
                "authentic, but no configured identity matches it (issuer {}, subject {}; dimsum.trust.identities)",
                id.issuer.as_deref().unwrap_or("none"),
                id.subject.as_deref().unwrap_or("none")
            )),
            _ => None,
        };
        Signature {
            kind,
            digest: digest.to_owned(),
            verified: Some(reason.is_none()),
            key: None,
            signers,
            identity: checked.identity,
            signed_at: checked.signed_at.map(sigstore::rfc3339),
            tlog: checked.tlog,
            reason,
            predicate_type: checked.predicate_type,
            statement: checked.statement.map(Arc::new),
        }
    }

    /// Whether it verified and satisfies `name`.
    pub fn by(&self, name: &str) -> bool {
        self.verified == Some(true) && self.signers.iter().any(|s| s == name)
    }
}

/// Verifies one key-signed cosign layer: `payload` (the layer blob) signed as `signature_b64`,
/// which must name `digest`.
pub fn verify_cosign(
    keys: &[CosignKey],
    payload: &[u8],
    signature_b64: &str,
    digest: &str,
) -> Signature {
    if keys.is_empty() {
        return Signature::listed(
            "cosign",
            digest,
            "signed with a key, and no key is configured (dimsum.trust.cosignKeys)",
        );
    }
    let refuse = |why: &str| Signature::unreadable("cosign", digest, why.to_owned());
    let Some(signature) = STANDARD
        .decode(signature_b64.trim())
        .ok()
        .and_then(|der| EcdsaSignature::from_der(&der).ok())
    else {
        return refuse("the signature annotation is not a base64 DER ECDSA signature");
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.key.verify(payload, &signature).is_ok())
    else {
        return refuse("the signature does not verify with any configured key");
    };
    // A good signature over a payload about another image says nothing about this one.
    let named = serde_json::from_slice::<Value>(payload).ok().and_then(|p| {
        p.pointer("/critical/image/docker-manifest-digest")?
            .as_str()
            .map(str::to_owned)
    });
    let mut answer = Signature {
        key: Some(key.name.clone()),
        ..refuse("")
    };
    if named.as_deref() == Some(digest) {
        answer.verified = Some(true);
        answer.signers = vec![key.name.clone()];
        answer.reason = None;
    } else {
        answer.reason = Some(format!(
            "signed by {}, but the payload names another image ({})",
            key.name,
            named.as_deref().unwrap_or("none")
        ));
    }
    answer
}

/// Verifies one `cosign attest --key` layer: a DSSE envelope whose signature over the PAE verifies
/// with a configured key, and whose in-toto subject names `digest`.
pub fn verify_cosign_attestation(keys: &[CosignKey], envelope: &[u8], digest: &str) -> Signature {
    if keys.is_empty() {
        return Signature::listed(
            "cosign",
            digest,
            "an attestation signed with a key, and no key is configured (dimsum.trust.cosignKeys)",
        );
    }
    let refuse = |why: String| Signature::unreadable("cosign", digest, why);
    let content = match sigstore::form::dsse(envelope) {
        Ok(content) => content,
        Err(e) => return refuse(e),
    };
    let statement = sigstore::statement(&content);
    let predicate_type = statement
        .as_ref()
        .and_then(|s| s.get("predicateType")?.as_str().map(str::to_owned));
    let Some(signature) = EcdsaSignature::from_der(content.signature()).ok() else {
        return refuse("the attestation's signature is not DER ECDSA".to_owned());
    };
    let signed = content.signed();
    let Some(key) = keys
        .iter()
        .find(|k| k.key.verify(&signed, &signature).is_ok())
    else {
        return Signature {
            predicate_type,
            ..refuse("the attestation does not verify with any configured key".to_owned())
        };
    };
    let mut answer = Signature {
        key: Some(key.name.clone()),
        predicate_type,
        ..refuse(String::new())
    };
    match sigstore::names(&content, digest) {
        Ok(()) => {
            answer.verified = Some(true);
            answer.signers = vec![key.name.clone()];
            answer.reason = None;
            answer.statement = statement.map(Arc::new);
        }
        Err(e) => answer.reason = Some(format!("signed by {}, but {e}", key.name)),
    }
    answer
}

/// A keyless cosign layer (a certificate and no key-based check possible here).
pub fn is_keyless(layer: &super::raw::Descriptor) -> bool {
    layer.annotations.contains_key(sigstore::form::CERTIFICATE)
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
