//! Finding an image's signatures and attestations, and the `signatures` answer.
//!
//! Where they live (provenance.md, keyless.md §1–§2): cosign's `sha256-<hex>.sig` and
//! `sha256-<hex>.att` tags, and OCI 1.1 referrers (the API, else its fallback tag). Only
//! manifests and their layers are read, never the image's config: the answer works for
//! artifacts, and for images whose config is gone.
//!
//! Cost: signature manifests and layers are content by digest (cached, shared with the fleet);
//! a verdict is content too (the signature manifest's digest, the layer, the subject), kept per
//! configuration so a reload with another root or identities judges afresh.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{Dimsum, ImageRequest, Parsed, registry_error};
use crate::cache::Dated;
use crate::config::LIVE;
use crate::error::Error;
use crate::metrics::CacheName;
use crate::notation;
use crate::origin::raw::{Descriptor, Raw};
use crate::origin::signature::{self, Signature};
use crate::registry::manifest;
use crate::registry::{self, Digest, Fetched, Reference};
use crate::sigstore::{self, Checked, form};

/// The `signatures` answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignaturesAnswer {
    /// The image manifest's digest (the chosen platform's, for an index).
    pub digest: String,
    /// The index's digest, when the reference named an index.
    pub index_digest: Option<String>,
    /// Signatures of the image and of its index.
    pub signatures: Vec<Signature>,
    /// Signed attestations of the image and of its index.
    pub attestations: Vec<Signature>,
}

/// Signatures and attestations found for one digest.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) signatures: Vec<Signature>,
    pub(super) attestations: Vec<Signature>,
}

impl Found {
    fn extend(&mut self, other: Found) {
        self.signatures.extend(other.signatures);
        self.attestations.extend(other.attestations);
    }
}

impl Dimsum {
    /// The signatures and attestations of an image and of its index, each with its verdict,
    /// read from manifests only. With `signedBy`, fails like every gated answer.
    pub async fn signatures(&self, req: ImageRequest<'_>) -> Result<Arc<SignaturesAnswer>, Error> {
        match self.gate(req).await? {
            Some(checked) => Ok(checked),
            None => self.signatures_ungated(req).await,
        }
    }

    pub(super) async fn signatures_ungated(
        &self,
        req: ImageRequest<'_>,
    ) -> Result<Arc<SignaturesAnswer>, Error> {
        let req = self.pin(req).await?;
        let p = self.parse(req)?;
        // Warm: the tag as the tag cache trusts it, and the answer for that image, from memory;
        // only the cold path pays for the account's bounds (as `history` does).
        if let Some(top) = self.cached_digest(&p).await
            && let Some(hit) = self.caches.signatures.as_ref()
            && let Some(hit) = hit.get(&p.answer_key(&top)).await
        {
            self.metrics.cache(CacheName::content, true);
            return Ok(hit.value);
        }
        Box::pin(self.bounded(req.account, self.signatures_cached(&p))).await
    }

    /// The answer for `p`, kept for [`LIVE`] like an origin: signatures are found through tags.
    pub(super) async fn signatures_cached(
        &self,
        p: &Parsed<'_>,
    ) -> Result<Arc<SignaturesAnswer>, Error> {
        let top = self.digest_of(p).await?;
        let Some(cache) = &self.caches.signatures else {
            return self.signatures_cold(p, &top).await.map(Arc::new);
        };
        let key = p.answer_key(&top);
        if let Some(hit) = cache.get(&key).await {
            self.metrics.cache(CacheName::content, true);
            return Ok(hit.value);
        }
        self.metrics.cache(CacheName::content, false);
        let load = async {
            let asked = Instant::now();
            let answer = self.signatures_cold(p, &top).await?;
            Ok::<_, Error>(Dated::new(Arc::new(answer), asked, LIVE))
        };
        let entry = cache
            .try_get_with(key, Box::pin(load))
            .await
            .map_err(Arc::unwrap_or_clone)?;
        Ok(entry.value)
    }

    async fn signatures_cold(
        &self,
        p: &Parsed<'_>,
        top: &Digest,
    ) -> Result<SignaturesAnswer, Error> {
        let top = self.manifest_by_digest(p, top).await?;
        let (image, index) = self.image_of(p, top).await?;
        let (image, index) = (image.digest.clone(), index.map(|i| i.digest.clone()));
        let name = p.name(&image);
        let mut found = self.signatures_of(p, &name, &image).await?;
        if let Some(index) = &index {
            found.extend(self.signatures_of(p, &name, index).await?);
        }
        Ok(SignaturesAnswer {
            digest: image.to_string(),
            index_digest: index.map(|i| i.to_string()),
            signatures: found.signatures,
            attestations: found.attestations,
        })
    }

    /// Signatures and attestations of `digest`: cosign's `.sig` and `.att` tags, then OCI 1.1
    /// referrers (the API, else its tag).
    pub(super) async fn signatures_of(
        &self,
        p: &Parsed<'_>,
        name: &str,
        digest: &Digest,
    ) -> Result<Found, Error> {
        let hex = digest.as_str().replacen(':', "-", 1);
        let mut found = Found::default();
        if let Some(sig) = self.tagged(p, &format!("{hex}.sig")).await? {
            for (i, layer) in Raw::parse(&sig.bytes).layers.iter().enumerate() {
                let Some(value) = layer.annotations.get(signature::COSIGN_SIGNATURE) else {
                    continue;
                };
                let payload = self.blob(p, name, &descriptor(layer)).await?;
                found.signatures.push(if signature::is_keyless(layer) {
                    let key = format!("{} {i} {digest}", sig.digest);
                    let read = || form::cosign_signature(&layer.annotations, payload.to_vec());
                    self.keyless("cosign", digest, &key, read)
                } else {
                    signature::verify_cosign(&self.cosign_keys, &payload, value, digest.as_str())
                });
            }
        }
        if let Some(att) = self.tagged(p, &format!("{hex}.att")).await? {
            for (i, layer) in Raw::parse(&att.bytes).layers.iter().enumerate() {
                let envelope = self.blob(p, name, &descriptor(layer)).await?;
                if !signature::is_keyless(layer) {
                    found
                        .attestations
                        .push(signature::verify_cosign_attestation(
                            &self.cosign_keys,
                            &envelope,
                            digest.as_str(),
                        ));
                    continue;
                }
                let key = format!("{} {i} {digest}", att.digest);
                let read = || form::cosign_attestation(&layer.annotations, &envelope);
                found
                    .attestations
                    .push(self.keyless("cosign", digest, &key, read));
            }
        }
        let listed = match p.client.referrers(&p.repository, digest).await {
            Ok(Some(bytes)) => Some(Raw::parse(&bytes)),
            Ok(None) => self.tagged(p, &hex).await?.map(|f| Raw::parse(&f.bytes)),
            Err(e) => return Err(registry_error(&p.account.name, e)),
        };
        for referrer in listed.iter().flat_map(|l| &l.manifests) {
            let vague = signature::needs_manifest(referrer.artifact_type.as_deref());
            let listed_kind = referrer
                .artifact_type
                .as_deref()
                .and_then(signature::referrer_kind);
            if !vague && listed_kind.is_none() {
                continue;
            }
            let manifest = self
                .manifest_by_digest(p, &self.raw_digest(p, &referrer.digest)?)
                .await?;
            let raw = Raw::parse(&manifest.bytes);
            match raw.kind().and_then(signature::referrer_kind) {
                Some("sigstore-bundle") => {
                    let (sig, is_attestation) =
                        self.bundle(p, name, digest, &manifest, &raw).await?;
                    if is_attestation {
                        found.attestations.push(sig);
                    } else {
                        found.signatures.push(sig);
                    }
                }
                Some(_) => found
                    .signatures
                    .push(self.notation(p, name, digest, &raw).await?),
                None => {}
            }
        }
        Ok(found)
    }

    /// A Sigstore bundle referrer: its verdict, and whether it is an attestation (any
    /// predicate but cosign's own image-signature one).
    async fn bundle(
        &self,
        p: &Parsed<'_>,
        name: &str,
        digest: &Digest,
        manifest: &Fetched,
        raw: &Raw,
    ) -> Result<(Signature, bool), Error> {
        let Some(layer) = raw
            .layers
            .iter()
            .find(|l| signature::referrer_kind(&l.media_type) == Some("sigstore-bundle"))
        else {
            let sig = Signature::unreadable(
                "sigstore-bundle",
                digest.as_str(),
                "the referrer has no bundle layer".to_owned(),
            );
            return Ok((sig, false));
        };
        let bytes = self.blob(p, name, &descriptor(layer)).await?;
        let key = format!("{} 0 {digest}", manifest.digest);
        let sig = self.keyless("sigstore-bundle", digest, &key, || form::bundle(&bytes));
        let is_attestation = sig
            .predicate_type
            .as_deref()
            .is_some_and(|t| t != sigstore::SIGN_PREDICATE);
        Ok((sig, is_attestation))
    }

    /// A Notation signature manifest's verdict under the trust policy for this repository. Not
    /// cached beyond the answer: it depends on the clock (expiry, validity now).
    async fn notation(
        &self,
        p: &Parsed<'_>,
        name: &str,
        digest: &Digest,
        raw: &Raw,
    ) -> Result<Signature, Error> {
        let [layer] = raw.layers.as_slice() else {
            let why = format!(
                "the signature manifest has {} layers, not one envelope",
                raw.layers.len()
            );
            return Ok(Signature::unreadable("notation", digest.as_str(), why));
        };
        let subject = self.manifest_by_digest(p, digest).await?;
        let artifact = notation::envelope::Target {
            media_type: subject.manifest.media_type().to_owned(),
            digest: digest.to_string(),
            size: subject.bytes.len() as u64,
        };
        // Only an envelope is read: another layer type is an integrity failure unread.
        let envelope = if [notation::envelope::JWS, notation::envelope::COSE]
            .contains(&layer.media_type.as_str())
        {
            self.blob(p, name, &descriptor(layer)).await?.to_vec()
        } else {
            Vec::new()
        };
        let scope = format!("{}/{}", p.account.spec.endpoint.host(), p.repository);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let v = notation::verify(
            self.notation.as_deref(),
            &scope,
            &artifact,
            &layer.media_type,
            &envelope,
            now,
        );
        Ok(Signature {
            signers: v
                .policy
                .iter()
                .filter(|_| v.verified == Some(true))
                .cloned()
                .collect(),
            identity: v.identity,
            signed_at: v.signed_at.map(sigstore::rfc3339),
            reason: v.reason,
            verified: v.verified,
            ..Signature::listed("notation", digest.as_str(), "")
        })
    }

    /// The verdict on a keyless signature, checked once per content and configuration.
    fn keyless(
        &self,
        kind: &'static str,
        digest: &Digest,
        key: &str,
        read: impl FnOnce() -> Result<form::Keyless, String>,
    ) -> Signature {
        let checked: Arc<Checked> = match self.verdicts.get(key) {
            Some(hit) => hit,
            None => {
                let checked = match read() {
                    Ok(sig) => sigstore::check(&self.sigstore, &sig, digest.as_str()),
                    Err(e) => Checked {
                        identity: None,
                        signed_at: None,
                        tlog: None,
                        predicate_type: None,
                        statement: None,
                        authentic: Err(e),
                    },
                };
                let checked = Arc::new(checked);
                self.verdicts.insert(key.to_owned(), checked.clone());
                checked
            }
        };
        Signature::keyless(kind, digest.as_str(), (*checked).clone(), &self.sigstore)
    }

    /// The manifest a tag of this repository names now, or `None` when there is no such tag.
    async fn tagged(&self, p: &Parsed<'_>, tag: &str) -> Result<Option<Arc<Fetched>>, Error> {
        let reference = Reference::parse(tag).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let at = Parsed {
            account: p.account,
            client: p.client,
            repository: p.repository.clone(),
            reference,
            platform: None,
        };
        match self.digest_of_tag(&at).await {
            Ok(digest) => Ok(Some(self.manifest_by_digest(&at, &digest).await?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn raw_digest(&self, p: &Parsed<'_>, digest: &str) -> Result<Digest, Error> {
        Digest::parse(digest).ok_or_else(|| {
            registry_error(
                &p.account.name,
                registry::Error::BadResponse {
                    what: format!("manifest {}", p.repository),
                    detail: format!("invalid digest {digest:?} in a descriptor"),
                },
            )
        })
    }
}

/// A registry descriptor for a raw one (to fetch its blob through the content cache).
pub(super) fn descriptor(raw: &Descriptor) -> manifest::Descriptor {
    manifest::Descriptor {
        media_type: raw.media_type.clone(),
        digest: raw.digest.clone(),
        size: raw.size,
        platform: None,
    }
}
