//! The trigger's digest: answering for the image the pipeline was triggered by, or saying that
//! the tag has moved on since.
//!
//! A Docker trigger carries `digest` only with Clouddriver's `trackDigests` (the manifest digest)
//! or `inspectDigests` (the **config** digest, which is not a manifest reference; spinnaker.md
//! §4). So a given digest is checked against the tag's image now:
//! 1. the tag's manifest (or index) digest, the chosen platform's manifest digest, or that
//!    image's config digest: the tag still names the trigger's image; answer for the tag;
//! 2. otherwise, a manifest with that digest in the repository (one `HEAD`): answer for exactly
//!    it, whatever the tag names now;
//! 3. otherwise the tag has moved on and the trigger's image cannot be named:
//!    [`Error::TagMoved`] (409), naming both digests.

use super::{Dimsum, ImageRequest};
use crate::error::Error;
use crate::registry::manifest::Manifest;
use crate::registry::{Digest, Reference};

impl Dimsum {
    /// The request to answer for `req`'s trigger digest (see the module doc); `req` itself,
    /// without a digest, when it has none.
    pub(super) async fn pin<'a>(&self, req: ImageRequest<'a>) -> Result<ImageRequest<'a>, Error> {
        let unpinned = ImageRequest {
            digest: None,
            ..req
        };
        let Some(given) = req.digest.filter(|d| !d.is_empty()) else {
            return Ok(unpinned);
        };
        let digest = Digest::parse(given).ok_or_else(|| {
            Error::InvalidInput(format!(
                "invalid digest {given:?}: expected sha256:<64 lowercase hex digits>"
            ))
        })?;
        let by_digest = ImageRequest {
            reference: given,
            ..unpinned
        };
        let parsed = self.parse(unpinned)?;
        let current = async {
            let top = self.digest_of(&parsed).await?;
            if top == digest {
                return Ok((top, true));
            }
            let image = self.resolve_cold(&parsed).await?;
            let config = match &image.manifest {
                Manifest::Image { config, .. } => Some(config.digest.as_str()),
                _ => None,
            };
            let same = image.digest == digest || config == Some(given);
            Ok((top, same))
        };
        let current = self.bounded(req.account, current).await;
        let top = match current {
            Ok((_, true)) => return Ok(unpinned),
            Ok((top, false)) => Some(top),
            // A deleted tag does not stop the trigger's image from being read by its digest.
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        if let (Reference::Digest(_), Some(_)) = (&parsed.reference, &top) {
            return Err(Error::InvalidInput(format!(
                "reference {} and digest {given} name different images",
                parsed.reference
            )));
        }
        let probe = async {
            let found = parsed
                .client
                .has_manifest(&parsed.repository, &digest)
                .await;
            found.map_err(|e| super::registry_error(req.account, e))
        };
        match (self.bounded(req.account, probe).await, top) {
            (Ok(true), _) => Ok(by_digest),
            (Ok(false), Some(current)) => Err(Error::TagMoved {
                account: req.account.to_owned(),
                image: format!("{}:{}", parsed.repository, parsed.reference),
                current,
                given: digest,
            }),
            (Ok(false), None) => Err(super::registry_error(
                req.account,
                crate::registry::Error::NotFound {
                    what: format!("manifest {}@{digest}", parsed.repository),
                    detail: format!("and no tag {}", parsed.reference),
                },
            )),
            (Err(e), _) => Err(e),
        }
    }
}
