//! The library API every transport calls: accounts + registry client + history. No transport code.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::config::Config;
use crate::error::Error;
use crate::history::{self, Extension};
use crate::registry::manifest::{self, Manifest};
use crate::registry::{self, Client, Digest, Platform, Reference, Repository};

/// What to look up: an image in an account, optionally for a platform.
#[derive(Debug, Clone, Copy)]
pub struct ImageRequest<'a> {
    /// Account name (the trigger's `account`).
    pub account: &'a str,
    /// Repository path without a host (the trigger's `repository`).
    pub repository: &'a str,
    /// Tag or digest (the trigger's `tag`, or `digest`).
    pub reference: &'a str,
    /// `os/arch[/variant]` for indexes; default linux/amd64 as distribution chose.
    pub platform: Option<&'a str>,
}

/// A manifest as the registry holds it.
#[derive(Debug, Clone)]
pub struct ManifestAnswer {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: &'static str,
    /// Its bytes, unchanged.
    pub bytes: Vec<u8>,
}

/// An image's history.
#[derive(Debug, Clone)]
pub struct HistoryAnswer {
    /// `v1Compatibility` JSON objects, newest first (index 0 = the image config).
    pub entries: Vec<String>,
    /// dimsum extensions that fired (empty: exactly distribution's output).
    pub extensions: Vec<Extension>,
    /// Digest of the image manifest the history was computed from.
    pub digest: Digest,
}

/// An account's client, or why it cannot be used.
#[derive(Debug)]
struct Account {
    client: Client,
    unusable: Option<String>,
}

/// The service: one registry client per account.
#[derive(Debug)]
pub struct Dimsum {
    accounts: BTreeMap<String, Account>,
    call_timeout: Duration,
}

/// A resolved image: the manifest and the parsed request parts.
struct Resolved<'a> {
    client: &'a Client,
    repository: Repository,
    fetched: registry::Fetched,
}

impl Dimsum {
    /// Builds clients for every account of `config`.
    pub fn new(config: &Config) -> Result<Dimsum, String> {
        let mut accounts = BTreeMap::new();
        for (name, a) in &config.accounts {
            let client = Client::new(
                a.endpoint.clone(),
                a.credentials.clone(),
                config.settings.limits.clone(),
            )
            .map_err(|e| format!("account {name:?}: {e}"))?;
            accounts.insert(
                name.clone(),
                Account {
                    client,
                    unusable: a.unusable.clone(),
                },
            );
        }
        Ok(Dimsum {
            accounts,
            call_timeout: config.settings.call_timeout,
        })
    }

    /// The manifest (an index is resolved to one platform), its digest and media type.
    pub async fn manifest(&self, req: ImageRequest<'_>) -> Result<ManifestAnswer, Error> {
        self.bounded(req.account, async {
            let r = self.resolve(req).await?;
            let media_type = r.fetched.manifest.media_type();
            Ok(ManifestAnswer {
                digest: r.fetched.digest,
                media_type,
                bytes: r.fetched.bytes,
            })
        })
        .await
    }

    /// All history entries.
    pub async fn history(
        &self,
        req: ImageRequest<'_>,
        options: history::Options,
    ) -> Result<HistoryAnswer, Error> {
        self.bounded(req.account, async {
            let r = self.resolve(req).await?;
            let image = format!("{}@{}", r.repository, r.fetched.digest);
            let (config, layers) = match &r.fetched.manifest {
                Manifest::Schema1 { history, .. } => {
                    return Ok(HistoryAnswer { entries: history.clone(), extensions: Vec::new(), digest: r.fetched.digest });
                }
                Manifest::Image { config, layers, .. } => (config, layers),
                Manifest::Index { .. } => unreachable!("resolve returns an image or schema1"),
            };
            if !manifest::is_image_config(&config.media_type) {
                return Err(Error::NotAnImage { image, media_type: config.media_type.clone() });
            }
            let blob = r.client.blob(&r.repository, config).await.map_err(|source| registry_error(req.account, source))?;
            let built = history::build(&blob, layers, options).map_err(|source| Error::History { image: image.clone(), source })?;
            for e in &built.extensions {
                tracing::info!(%image, extension = e.name(), "history extended beyond distribution: {e}");
            }
            Ok(HistoryAnswer { entries: built.entries, extensions: built.extensions, digest: r.fetched.digest })
        })
        .await
    }

    /// One history entry; level 0 is the image config.
    pub async fn history_level(
        &self,
        req: ImageRequest<'_>,
        level: u64,
        options: history::Options,
    ) -> Result<(String, HistoryAnswer), Error> {
        let mut answer = self.history(req, options).await?;
        let entries = answer.entries.len();
        let index = usize::try_from(level)
            .ok()
            .filter(|i| *i < entries)
            .ok_or(Error::LevelOutOfRange { level, entries })?;
        let entry = std::mem::take(&mut answer.entries[index]);
        Ok((entry, answer))
    }

    /// The config's `config.Labels` as a JSON object (`{}` when there are none).
    pub async fn labels(&self, req: ImageRequest<'_>) -> Result<String, Error> {
        let (top, answer) = self
            .history_level(req, 0, history::Options::default())
            .await?;
        let image = format!("{}@{}", req.repository, answer.digest);
        history::labels(top.as_bytes()).map_err(|source| Error::History { image, source })
    }

    async fn resolve(&self, req: ImageRequest<'_>) -> Result<Resolved<'_>, Error> {
        let account = self
            .accounts
            .get(req.account)
            .ok_or_else(|| Error::UnknownAccount {
                account: req.account.to_owned(),
                known: self.accounts.keys().cloned().collect(),
            })?;
        if let Some(reason) = &account.unusable {
            return Err(Error::AccountUnusable {
                account: req.account.to_owned(),
                reason: reason.clone(),
            });
        }
        let repository =
            Repository::parse(req.repository).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let reference =
            Reference::parse(req.reference).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let platform = req
            .platform
            .map(Platform::parse)
            .transpose()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let repository = account.client.repository(&repository);
        let fetched = account
            .client
            .resolve(&repository, &reference, platform.as_ref())
            .await
            .map_err(|source| registry_error(req.account, source))?;
        Ok(Resolved {
            client: &account.client,
            repository,
            fetched,
        })
    }

    async fn bounded<T>(
        &self,
        account: &str,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.call_timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    account: account.to_owned(),
                    after: self.call_timeout,
                })
            })
    }
}

fn registry_error(account: &str, source: registry::Error) -> Error {
    Error::Registry {
        account: account.to_owned(),
        source,
    }
}
