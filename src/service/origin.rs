//! `origin`: gathering what [`crate::origin`] ranks, through the same caches as history, and the
//! `signedBy` gate every image answer can carry.
//!
//! Cost: manifests, the config, attestation manifests, in-toto statements and signature payloads
//! are content by digest (cached with no expiry, shared with the fleet); the cosign tag
//! (`sha256-<hex>.sig`) and the referrers fallback tag are tags, looked up as every tag is (live,
//! single-flighted); the referrers API answer and the assembled origin are kept for
//! [`LIVE`](crate::config::LIVE) (1 s), single-flighted, so a new signature is seen as soon as a
//! moved tag would be, and a warm `origin` answers from memory like a warm `history`.

use std::sync::Arc;
use std::time::Instant;

use super::signatures::{SignaturesAnswer, descriptor};
use super::{Dimsum, ImageRequest, Parsed};
use crate::cache::Dated;
use crate::config::LIVE;
use crate::error::Error;
use crate::history;
use crate::metrics::CacheName;
use crate::origin::raw::Raw;
use crate::origin::{self, Found, Origin, provenance};
use crate::registry::manifest::Manifest;
use crate::registry::{Digest, Fetched};

impl Dimsum {
    /// Where the image came from, with its signatures (see [`crate::origin`]).
    pub async fn origin(&self, req: ImageRequest<'_>) -> Result<Arc<Origin>, Error> {
        let checked = self.gate(req).await?;
        self.origin_ungated(verified(req, Self::checked_digest(&checked).as_deref()))
            .await
    }

    async fn origin_ungated(&self, req: ImageRequest<'_>) -> Result<Arc<Origin>, Error> {
        let req = self.pin(req).await?;
        let parsed = self.parse(req)?;
        Box::pin(self.bounded(req.account, self.origin_of(&parsed))).await
    }

    /// With `signedBy`: fails with [`Error::NotSigned`] unless a signature of the image (or its
    /// index) verifies and satisfies that key or identity, and gives the signatures it checked.
    /// The caller must answer for that very image ([`verified`]), not look the tag up again: it
    /// may have moved meanwhile, to an image nobody checked. An unknown name is bad input.
    pub(super) async fn gate(
        &self,
        req: ImageRequest<'_>,
    ) -> Result<Option<Arc<SignaturesAnswer>>, Error> {
        // Empty is none on every transport: Orca sends a blank stage parameter that way.
        let Some(name) = req.signed_by.filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        self.known_signer(name)?;
        let answer = self.signatures_ungated(req).await?;
        Self::vouches(&answer, req, name)?;
        Ok(Some(answer))
    }

    /// Every name `signedBy` may give: keys, identities, Notation trust policies.
    fn signer_names(&self) -> impl Iterator<Item = &str> {
        self.cosign_keys
            .iter()
            .map(|k| k.name.as_str())
            .chain(self.sigstore.identities.iter().map(|i| i.name.as_str()))
            .chain(
                self.notation
                    .iter()
                    .flat_map(|n| n.policies.iter().map(|p| p.name.as_str())),
            )
    }

    /// Whether `name` is a configured key, identity or trust policy; an unknown one is bad input.
    pub fn known_signer(&self, name: &str) -> Result<(), Error> {
        if self.signer_names().any(|n| n == name) {
            return Ok(());
        }
        let known: Vec<&str> = self.signer_names().collect();
        Err(Error::InvalidInput(format!(
            "signedBy names no configured key, identity or Notation trust policy: {name:?} (dimsum.trust has {}; see docs/origin.md)",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )))
    }

    /// [`Error::NotSigned`] unless a signature in `answer` verified and satisfies `name`.
    pub fn vouches(
        answer: &SignaturesAnswer,
        req: ImageRequest<'_>,
        name: &str,
    ) -> Result<(), Error> {
        if answer.signatures.iter().any(|s| s.by(name)) {
            return Ok(());
        }
        Err(Error::NotSigned {
            account: req.account.to_owned(),
            image: format!("{}:{}", req.repository, req.reference),
            digest: answer.digest.clone(),
            index_digest: answer.index_digest.clone(),
            key: name.to_owned(),
        })
    }

    /// The digest the gate checked (the index's, when the reference named one), for [`verified`].
    pub(super) fn checked_digest(checked: &Option<Arc<SignaturesAnswer>>) -> Option<String> {
        checked
            .as_ref()
            .map(|a| a.index_digest.clone().unwrap_or_else(|| a.digest.clone()))
    }

    async fn origin_of(&self, p: &Parsed<'_>) -> Result<Arc<Origin>, Error> {
        let top = self.digest_of(p).await?;
        let key = p.answer_key(&top);
        let Some(origins) = &self.caches.origins else {
            return self.origin_cold(p, &top).await.map(Arc::new);
        };
        if let Some(hit) = origins.get(&key).await {
            self.metrics.cache(CacheName::content, true);
            return Ok(hit.value);
        }
        self.metrics.cache(CacheName::content, false);
        let load = async {
            let asked = Instant::now();
            let origin = self.origin_cold(p, &top).await?;
            Ok::<_, Error>(Dated::new(Arc::new(origin), asked, LIVE))
        };
        let entry = origins
            .try_get_with(key, Box::pin(load))
            .await
            .map_err(Arc::unwrap_or_clone)?;
        Ok(entry.value)
    }

    async fn origin_cold(&self, p: &Parsed<'_>, top: &Digest) -> Result<Origin, Error> {
        let top = self.manifest_by_digest(p, top).await?;
        let (image, index) = self.image_of(p, top).await?;
        let name = p.name(&image.digest);
        let (labels, created) = self.labels_of(p, &name, &image).await?;
        let index_raw = index.as_ref().map(|i| Raw::parse(&i.bytes));
        let provenance = match &index_raw {
            Some(raw) => self.provenance(p, &name, raw, &image.digest).await,
            None => None,
        };
        let signed = self.signatures_cached(p).await?;
        Ok(origin::assemble(Found {
            digest: image.digest.to_string(),
            manifest: Raw::parse(&image.bytes),
            index: index
                .as_ref()
                .zip(index_raw)
                .map(|(i, raw)| (i.digest.to_string(), raw)),
            labels,
            created,
            provenance,
            signatures: signed.signatures.clone(),
            attestations: signed.attestations.clone(),
        }))
    }

    /// The labels object of an image, as `labels` answers it, and its config's `created`.
    async fn labels_of(
        &self,
        p: &Parsed<'_>,
        name: &str,
        image: &Fetched,
    ) -> Result<(String, Option<String>), Error> {
        let history_error = |source| Error::History {
            account: p.account.name.to_string(),
            image: name.to_owned(),
            source,
        };
        let config = match &image.manifest {
            Manifest::Image { config, .. } => self.image_config(p, name, config).await?,
            Manifest::Schema1 { history, .. } => match history.first() {
                Some(top) => Arc::new(top.as_bytes().to_vec()),
                None => return Ok(("{}".to_owned(), None)),
            },
            Manifest::Index { .. } => unreachable!("an index entry is resolved to an image"),
        };
        let labels = history::labels(&config).map_err(history_error)?;
        Ok((labels, created(&config)))
    }

    /// The SLSA provenance BuildKit attached to `image` in `index`. Best effort: an attestation
    /// that cannot be read is logged and left out, not an error of the whole answer.
    async fn provenance(
        &self,
        p: &Parsed<'_>,
        name: &str,
        index: &Raw,
        image: &Digest,
    ) -> Option<(provenance::Provenance, Vec<origin::evidence::Evidence>)> {
        let attestation = provenance::attestation_for(index, image.as_str())?;
        let result = async {
            let digest = self.raw_digest(p, &attestation.digest)?;
            let manifest = self.manifest_by_digest(p, &digest).await?;
            let raw = Raw::parse(&manifest.bytes);
            for layer in provenance::provenance_layers(&raw) {
                let statement = self.blob(p, name, &descriptor(layer)).await?;
                if let Some(found) = provenance::read(&statement, image.as_str()) {
                    return Ok(Some(found));
                }
            }
            Ok::<_, Error>(None)
        };
        result.await.unwrap_or_else(|e| {
            tracing::warn!(image = name, error = %e, "attestation unreadable; origin without provenance");
            None
        })
    }
}

/// `req` narrowed to the digest the gate checked (its platform kept, the trigger's digest already
/// applied by the gate), or `req` itself without a gate.
pub(super) fn verified<'a>(req: ImageRequest<'a>, checked: Option<&'a str>) -> ImageRequest<'a> {
    match checked {
        Some(digest) => ImageRequest {
            reference: digest,
            digest: None,
            signed_by: None,
            ..req
        },
        None => req,
    }
}

/// A config's top-level `created`, as written.
fn created(config: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Created {
        created: Option<String>,
    }
    serde_json::from_slice::<Created>(config).ok()?.created
}
