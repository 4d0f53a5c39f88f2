//! Where an image came from: revision, source and the rest from annotations, provenance and
//! labels, with the evidence for each, and the image's signatures. Pure logic over bytes the
//! service has fetched (and cached); no I/O here.
//!
//! - [`evidence`]: candidates per field, and which wins.
//! - [`provenance`]: BuildKit attestations and SLSA v0.2/v1.
//! - [`signature`]: cosign verification, and the signatures only listed.
//! - [`raw`]: the lenient reading of manifests and indexes these need.

pub mod evidence;
pub mod provenance;
pub mod raw;
pub mod signature;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use self::evidence::{Evidence, Places};
use self::provenance::Provenance;
use self::signature::Signature;

/// The `origin` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// The image manifest's digest (the chosen platform's, for an index).
    pub digest: String,
    /// The index's digest, when the reference named an index.
    pub index_digest: Option<String>,
    /// The source-control revision.
    pub revision: Option<String>,
    /// The source repository URL.
    pub source: Option<String>,
    /// When the image was built.
    pub created: Option<String>,
    /// The version of the packaged software.
    pub version: Option<String>,
    /// A URL for more about the image.
    pub url: Option<String>,
    /// The base image's reference.
    pub base_name: Option<String>,
    /// The base image's digest.
    pub base_digest: Option<String>,
    /// Whether the `revision` candidates disagree.
    pub conflict: bool,
    /// Every candidate, best first per field.
    pub evidence: Vec<Evidence>,
    /// The config's `config.Labels`, as the `labels` answer gives them.
    pub labels: Box<RawValue>,
    /// The image manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The BuildKit provenance of this platform's image.
    pub provenance: Option<Provenance>,
    /// Signatures of the image and of its index.
    pub signatures: Vec<Signature>,
    /// Signed attestations (in-toto statements) about the image or its index.
    pub attestations: Vec<Signature>,
    /// Revision and source as a configured signer vouches for them, or `null`.
    pub trusted: Option<Trusted>,
}

/// What a configured key or identity vouches for: a verified SLSA provenance attestation
/// first, then the source-repository claims of a verified signature's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trusted {
    /// The source-control revision.
    pub revision: Option<String>,
    /// The source repository.
    pub source: Option<String>,
    /// The configured name that vouches for the revision (else the source).
    pub by: String,
}

/// What the service found, for [`assemble`].
#[derive(Debug)]
pub struct Found {
    /// The image manifest's digest.
    pub digest: String,
    /// Its parsed bytes.
    pub manifest: raw::Raw,
    /// The index's digest and parsed bytes, when the reference named one.
    pub index: Option<(String, raw::Raw)>,
    /// The labels object, as `labels` answers it.
    pub labels: String,
    /// The config's top-level `created`.
    pub created: Option<String>,
    /// The provenance and its candidates.
    pub provenance: Option<(Provenance, Vec<Evidence>)>,
    /// The signatures found.
    pub signatures: Vec<Signature>,
    /// The signed attestations found.
    pub attestations: Vec<Signature>,
}

impl Origin {
    /// Whether a signature of this image (or its index) verified and satisfies the key or
    /// identity `name`.
    pub fn signed_by(&self, name: &str) -> bool {
        self.signatures.iter().any(|s| s.by(name))
    }
}

/// Puts the answer together.
pub fn assemble(found: Found) -> Origin {
    let descriptor = found.index.as_ref().and_then(|(_, index)| {
        index
            .manifests
            .iter()
            .find(|d| d.digest == found.digest)
            .map(|d| &d.annotations)
    });
    // Only string labels are evidence; the answer's `labels` keeps them all.
    let labels: BTreeMap<String, String> =
        serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&found.labels)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
            .collect();
    let (provenance, provenance_evidence) = match found.provenance {
        Some((p, e)) => (Some(p), e),
        None => (None, Vec::new()),
    };
    let mut evidence = vouched(&found.signatures, &found.attestations);
    let trusted = trusted(&evidence);
    evidence.extend(evidence::collect(&Places {
        manifest: Some(&found.manifest.annotations),
        descriptor,
        provenance: provenance_evidence,
        index: found.index.as_ref().map(|(_, i)| &i.annotations),
        labels: Some(&labels),
        config_created: found.created.as_deref(),
    }));
    let pick = |field: &str| evidence::winner(&evidence, field).map(str::to_owned);
    let labels = RawValue::from_string(found.labels)
        .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("valid JSON"));
    Origin {
        revision: pick("revision"),
        source: pick("source"),
        created: pick("created"),
        version: pick("version"),
        url: pick("url"),
        base_name: pick("baseName"),
        base_digest: pick("baseDigest"),
        conflict: evidence::revisions_conflict(&evidence),
        digest: found.digest,
        index_digest: found.index.map(|(d, _)| d),
        labels,
        annotations: found.manifest.annotations,
        provenance,
        signatures: found.signatures,
        attestations: found.attestations,
        trusted,
        evidence,
    }
}

/// Candidates a configured signer vouches for, best first: verified provenance attestations,
/// then verified certificates' source-repository claims. They come before every unverified
/// candidate, so they win `revision` and `source`.
fn vouched(signatures: &[Signature], attestations: &[Signature]) -> Vec<Evidence> {
    let verified = |s: &&Signature| s.verified == Some(true);
    let mut out = Vec::new();
    for a in attestations.iter().filter(verified) {
        let Some((_, found)) = a
            .statement
            .as_deref()
            .and_then(|s| provenance::read_value(s, &a.digest))
        else {
            continue;
        };
        out.extend(found.into_iter().map(|e| Evidence {
            from: evidence::From::SignedProvenance,
            verified: true,
            by: a.signers.first().cloned(),
            ..e
        }));
    }
    for s in signatures.iter().chain(attestations).filter(verified) {
        let Some(identity) = &s.identity else {
            continue;
        };
        for (field, claim) in [
            ("revision", "sourceRepositoryDigest"),
            ("source", "sourceRepositoryURI"),
        ] {
            if let Some(value) = identity.claims.get(claim) {
                out.push(Evidence {
                    field,
                    value: value.clone(),
                    from: evidence::From::Certificate,
                    key: claim.to_owned(),
                    verified: true,
                    by: s.signers.first().cloned(),
                });
            }
        }
    }
    // Per field, in the order above (the answer lists evidence field by field).
    out.sort_by_key(|e| e.field != "revision");
    out
}

fn trusted(vouched: &[Evidence]) -> Option<Trusted> {
    let first = |field: &str| vouched.iter().find(|e| e.field == field);
    let (revision, source) = (first("revision"), first("source"));
    let by = revision.or(source)?.by.clone()?;
    Some(Trusted {
        revision: revision.map(|e| e.value.clone()),
        source: source.map(|e| e.value.clone()),
        by,
    })
}
