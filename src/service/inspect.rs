//! The inspection verbs people know from crane, regctl and skopeo: the config blob as stored,
//! an index's platforms, and a reference's digest; and the check that a single-platform image
//! is the platform asked for.

use std::sync::Arc;

use serde::Serialize;

use super::{Dimsum, ImageRequest, Parsed, registry_error};
use crate::error::Error;
use crate::registry::manifest::{self, Manifest};
use crate::registry::{self, Digest, Fetched, platform};

/// The config blob of an image, exactly as the registry stores it.
#[derive(Debug, Clone)]
pub struct ConfigAnswer {
    /// The blob's digest (the manifest's `config.digest`).
    pub digest: Digest,
    /// Its bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// One image a reference names: `getPlatforms`' entries.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformEntry {
    /// `os/arch[/variant]` as written; `null` for an index entry without a `platform` field or
    /// an image whose config states none.
    pub platform: Option<String>,
    /// The image manifest's digest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
}

/// `getDigest`'s answer: the digest of the manifest the reference names, as named (an index's
/// own digest for an index).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestAnswer {
    /// `sha256:…`.
    pub digest: String,
    /// The manifest's media type.
    pub media_type: &'static str,
}

impl Dimsum {
    /// The config blob of the image (an index resolved to one platform), byte for byte.
    pub async fn config(&self, req: ImageRequest<'_>) -> Result<ConfigAnswer, Error> {
        let checked = Dimsum::checked_digest(&self.gate(req).await?);
        let req = self
            .pin(super::origin::verified(req, checked.as_deref()))
            .await?;
        let parsed = self.parse(req)?;
        let fetched = self.resolve(&parsed).await?;
        let image = parsed.name(&fetched.digest);
        match &fetched.manifest {
            Manifest::Image { config, .. } => {
                let bytes = self.image_config(&parsed, &image, config).await?;
                let digest = Digest::parse(&config.digest)
                    .unwrap_or_else(|| unreachable!("validated when the manifest was parsed"));
                Ok(ConfigAnswer { digest, bytes })
            }
            _ => Err(Error::NoConfig {
                account: parsed.account.name.to_string(),
                image,
            }),
        }
    }

    /// The images the reference names: an index's entries in index order, or the one image.
    pub async fn platforms(&self, req: ImageRequest<'_>) -> Result<Vec<PlatformEntry>, Error> {
        let parsed = self.parse(req)?;
        let top = self.bounded(req.account, self.top(&parsed)).await?;
        let stated = |config: Option<&[u8]>| {
            config
                .and_then(platform::of_config)
                .map(|s| platform::written(&s))
        };
        let one = |platform| {
            vec![PlatformEntry {
                platform,
                digest: top.digest.to_string(),
                media_type: top.manifest.media_type().to_owned(),
            }]
        };
        Ok(match &top.manifest {
            Manifest::Index { manifests, .. } => manifests
                .iter()
                .map(|d| PlatformEntry {
                    platform: d.platform.as_ref().map(platform::written),
                    digest: d.digest.clone(),
                    media_type: d.media_type.clone(),
                })
                .collect(),
            Manifest::Schema1 { history, .. } => one(stated(history.first().map(|h| h.as_bytes()))),
            Manifest::Image { config, .. } => {
                let image = parsed.name(&top.digest);
                let bytes = self.image_config(&parsed, &image, config).await?;
                one(stated(Some(&bytes)))
            }
        })
    }

    /// The digest and media type of the manifest the reference names.
    pub async fn digest(&self, req: ImageRequest<'_>) -> Result<DigestAnswer, Error> {
        let parsed = self.parse(req)?;
        let top = self.bounded(req.account, self.top(&parsed)).await?;
        Ok(DigestAnswer {
            digest: top.digest.to_string(),
            media_type: top.manifest.media_type(),
        })
    }

    /// The config blob of `image` if it is an image config ([`manifest::is_image_config`]), else
    /// `unsupported_manifest` naming its type.
    pub(super) async fn image_config(
        &self,
        p: &Parsed<'_>,
        image: &str,
        config: &manifest::Descriptor,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let not_an_image = || Error::NotAnImage {
            account: p.account.name.to_string(),
            image: image.to_owned(),
            media_type: config.media_type.clone(),
        };
        if !manifest::may_be_image_config(&config.media_type) {
            return Err(not_an_image());
        }
        let bytes = self.blob(p, image, config).await?;
        match manifest::is_image_config(&config.media_type, &bytes) {
            true => Ok(bytes),
            false => Err(not_an_image()),
        }
    }

    /// A platform was asked and the reference named a single image (no index): that image must
    /// be the platform, by what its config states. An image that states none is refused too: it
    /// cannot be shown to be the platform asked for.
    pub(super) async fn check_platform(
        &self,
        p: &Parsed<'_>,
        image: &Fetched,
    ) -> Result<(), Error> {
        let Some(wanted) = &p.platform else {
            return Ok(());
        };
        let name = p.name(&image.digest);
        let stated = match &image.manifest {
            Manifest::Image { config, .. } => {
                let bytes = self.image_config(p, &name, config).await?;
                platform::of_config(&bytes)
            }
            Manifest::Schema1 { history, .. } => history
                .first()
                .and_then(|h| platform::of_config(h.as_bytes())),
            Manifest::Index { .. } => return Ok(()),
        };
        if stated.as_ref().is_some_and(|s| wanted.matches(s)) {
            return Ok(());
        }
        Err(registry_error(
            &p.account.name,
            registry::Error::OtherPlatform {
                what: format!("manifest {name}"),
                wanted: wanted.to_string(),
                is: stated.map_or_else(
                    || "no stated platform (its config has no os or architecture)".to_owned(),
                    |s| platform::written(&s),
                ),
            },
        ))
    }
}
