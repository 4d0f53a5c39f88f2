//! The library API every transport calls: accounts + registry clients + caches + history. No
//! transport code.
//!
//! A lookup by tag asks the tag cache for a digest (or, when the tag's time is up, revalidates it
//! with one `HEAD`), then takes the manifest, an index's child, the config blob and the computed
//! history from the content cache, fetching only what is missing (see [`crate::cache`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

pub use crate::cache::HistoryAnswer;
use crate::cache::shared::Scope;
use crate::cache::{Caches, Dated, Entry, Key, SharedTier, TagKey};
use crate::config::{self, Config};
use crate::error::Error;
use crate::history::{self, Extension};
use crate::metrics::{CacheName, Metrics};
use crate::registry::manifest::{self, Manifest};
use crate::registry::{self, Client, Digest, Fetched, Platform, Reference, Repository};

mod inspect;
mod notice;
mod origin;
mod pin;
mod signatures;
mod tag;
mod tier;

pub use inspect::{ConfigAnswer, DigestAnswer, PlatformEntry};
pub use notice::{AccountMatch, Applied};
pub use signatures::SignaturesAnswer;

/// Keyless verdicts kept per configuration (each a few hundred bytes).
const VERDICTS: u64 = 10_000;

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
    /// The digest the trigger saw (a manifest, index or config digest), if any: see
    /// [`Dimsum::history`] on pinning.
    pub digest: Option<&'a str>,
    /// `signedBy`: answer only if a signature of the image verifies with this configured key
    /// (see [`Dimsum::origin`]).
    pub signed_by: Option<&'a str>,
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

/// An account and its client.
#[derive(Debug)]
struct Account {
    name: Arc<str>,
    /// Built on the account's first lookup: a Clouddriver configuration lists dozens of
    /// accounts, and a one-shot run uses one (each client costs tens of microseconds to build
    /// and to tear down). Shared with the next configuration while the account is unchanged.
    client: Arc<OnceLock<Result<Arc<Client>, String>>>,
    /// What the client was built from (and whether the account is usable), to tell on reload
    /// whether it must be rebuilt.
    spec: config::Account,
}

impl Account {
    /// Whose content `repository` holds, for the shared tier: the registry and identity behind
    /// the account, and the repository.
    fn scope(&self, repository: &str) -> Scope {
        let spec = &self.spec;
        Scope(format!(
            "{}\0{}\0{}\0{}",
            spec.endpoint.address,
            spec.credentials.username.as_deref().unwrap_or(""),
            spec.name,
            repository
        ))
    }
}

/// The service: one registry client per account, shared caches and counters.
#[derive(Debug)]
pub struct Dimsum {
    accounts: BTreeMap<String, Account>,
    call_timeout: Duration,
    limits: registry::Limits,
    cache_settings: crate::config::CacheSettings,
    /// `events.quietSeconds`, when events are configured.
    events_quiet: Option<Duration>,
    caches: Arc<Caches>,
    /// Behind memory: the disk (one-shot CLI) or Redis (serve, stdio), if any.
    shared: Option<SharedTier>,
    metrics: Arc<Metrics>,
    /// `trust.cosignKeys`.
    cosign_keys: Arc<Vec<crate::origin::signature::CosignKey>>,
    /// `trust.sigstore` and `trust.identities`.
    sigstore: Arc<crate::sigstore::Trust>,
    /// `trust.notation`.
    notation: Option<Arc<crate::notation::policy::Notation>>,
    /// Keyless verdicts by content (signature manifest, layer, subject), for this
    /// configuration: a reload with another root or identities judges afresh.
    verdicts: moka::sync::Cache<String, Arc<crate::sigstore::Checked>>,
}

/// A parsed request.
struct Parsed<'a> {
    account: &'a Account,
    client: &'a Client,
    repository: Repository,
    reference: Reference,
    platform: Option<Platform>,
}

impl Parsed<'_> {
    fn tag_key(&self) -> TagKey {
        TagKey {
            account: self.account.name.clone(),
            repository: self.repository.to_string(),
            reference: self.reference.to_string(),
        }
    }

    /// Whose content this is, for the shared tier: the registry and identity behind the account,
    /// and the repository.
    fn scope(&self) -> Scope {
        self.account.scope(&self.repository.to_string())
    }

    /// The key of an answer assembled for the image `top` names here (origins, signatures):
    /// the top digest and the platform, so a moved tag is a new key.
    fn answer_key(&self, top: &Digest) -> TagKey {
        TagKey {
            account: self.account.name.clone(),
            repository: self.repository.to_string(),
            reference: format!(
                "{top} {}",
                self.platform
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        }
    }

    fn manifest_key(&self, digest: Digest) -> Key {
        Key::Manifest(
            self.account.name.clone(),
            self.repository.to_string(),
            digest,
        )
    }

    fn blob_key(&self, digest: Digest) -> Key {
        Key::Blob(
            self.account.name.clone(),
            self.repository.to_string(),
            digest,
        )
    }

    /// `repository@digest from host`: the image as errors name it (with the account beside).
    fn name(&self, digest: &Digest) -> String {
        format!(
            "{}@{digest} from {}",
            self.repository,
            self.account.spec.endpoint.host()
        )
    }

    fn history_key(&self, digest: Digest, strict: bool) -> Key {
        Key::History(
            self.account.name.clone(),
            self.repository.to_string(),
            digest,
            strict,
        )
    }
}

impl Dimsum {
    /// The service for `config` with memory alone; each account's client is built on its first
    /// lookup.
    pub fn new(config: &Config) -> Dimsum {
        Dimsum::with_shared(config, None, Arc::new(Metrics::default()))
    }

    /// The service for `config` with `shared` behind memory (see [`crate::cache`]), counting into
    /// `metrics` (which the shared tier counts into too).
    pub fn with_shared(
        config: &Config,
        shared: Option<SharedTier>,
        metrics: Arc<Metrics>,
    ) -> Dimsum {
        let caches = Arc::new(Caches::new(&config.settings.cache));
        Dimsum::build(config, caches, shared, metrics, &BTreeMap::new())
    }

    /// The service for a reloaded `config`: caches and counters carry over, and so do the clients
    /// (tokens, connections) of accounts that did not change. Everything cached for an account
    /// whose address or credentials changed, or that is gone, is dropped.
    /// The shared tier comes from the command line or the start, not from what a reload reads:
    /// it stays.
    pub fn reconfigured(&self, config: &Config) -> Dimsum {
        let same_limits = config.settings.limits == self.limits;
        let caches = if config.settings.cache == self.cache_settings {
            for (name, old) in &self.accounts {
                if config.accounts.get(name) != Some(&old.spec) || !same_limits {
                    self.caches.forget_account(name);
                }
            }
            // Verdicts depend on the keys, root and identities just read: judge afresh.
            self.caches.forget_answers();
            self.caches.clone()
        } else {
            Arc::new(Caches::new(&config.settings.cache))
        };
        let keep = if same_limits {
            &self.accounts
        } else {
            &BTreeMap::new()
        };
        let shared = self.shared.clone();
        Dimsum::build(config, caches, shared, self.metrics.clone(), keep)
    }

    fn build(
        config: &Config,
        caches: Arc<Caches>,
        shared: Option<SharedTier>,
        metrics: Arc<Metrics>,
        previous: &BTreeMap<String, Account>,
    ) -> Dimsum {
        let mut accounts = BTreeMap::new();
        for (name, a) in &config.accounts {
            let client = match previous.get(name).filter(|p| p.spec == *a) {
                Some(p) => p.client.clone(),
                None => Arc::default(),
            };
            let account = Account {
                name: name.as_str().into(),
                client,
                spec: a.clone(),
            };
            accounts.insert(name.clone(), account);
        }
        Dimsum {
            accounts,
            call_timeout: config.settings.call_timeout,
            limits: config.settings.limits.clone(),
            cache_settings: config.settings.cache.clone(),
            events_quiet: config.settings.events.as_ref().map(|e| e.quiet),
            caches,
            shared,
            metrics,
            cosign_keys: Arc::new(config.settings.cosign_keys.clone()),
            sigstore: Arc::new(config.settings.sigstore.clone()),
            notation: config.settings.notation.clone(),
            verdicts: moka::sync::Cache::new(VERDICTS),
        }
    }

    /// The configured account names.
    pub fn account_names(&self) -> Vec<&str> {
        self.accounts.keys().map(String::as_str).collect()
    }

    /// The counters of upstream requests and cache lookups.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// `host[:port]` of the registry `account` names.
    pub fn registry_host(&self, account: &str) -> Option<String> {
        Some(self.accounts.get(account)?.spec.endpoint.host())
    }

    /// Redis, when this service shares a fleet's tier.
    pub(crate) fn redis(&self) -> Option<&Arc<crate::cache::redis::Redis>> {
        self.shared.as_ref()?.fleet()
    }

    /// Bytes of cached content now.
    pub async fn cached_bytes(&self) -> u64 {
        self.caches.content_bytes().await
    }

    /// The manifest (an index is resolved to one platform), its digest and media type.
    pub async fn manifest(&self, req: ImageRequest<'_>) -> Result<ManifestAnswer, Error> {
        let checked = Dimsum::checked_digest(&self.gate(req).await?);
        let req = self.pin(origin::verified(req, checked.as_deref())).await?;
        let parsed = self.parse(req)?;
        let fetched = self.resolve(&parsed).await?;
        Ok(ManifestAnswer {
            digest: fetched.digest.clone(),
            media_type: fetched.manifest.media_type(),
            bytes: fetched.bytes.clone(),
        })
    }

    /// All history entries. With a trigger digest, of the image it names (see `service::pin`).
    pub async fn history(
        &self,
        req: ImageRequest<'_>,
        options: history::Options,
    ) -> Result<Arc<HistoryAnswer>, Error> {
        let checked = Dimsum::checked_digest(&self.gate(req).await?);
        let req = self.pin(origin::verified(req, checked.as_deref())).await?;
        let parsed = self.parse(req)?;
        if let Some(fetched) = self.cached(&parsed).await {
            let key = parsed.history_key(fetched.digest.clone(), options.strict);
            if let Some(Entry::History(h)) = self.caches.content.get(&key).await {
                self.metrics.cache(CacheName::content, true);
                return Ok(h);
            }
        }
        Box::pin(self.bounded(req.account, self.history_cold(&parsed, options))).await
    }

    async fn history_cold(
        &self,
        parsed: &Parsed<'_>,
        options: history::Options,
    ) -> Result<Arc<HistoryAnswer>, Error> {
        let fetched = self.resolve_cold(parsed).await?;
        let key = parsed.history_key(fetched.digest.clone(), options.strict);
        let load = async {
            self.compute_history(parsed, &fetched, options)
                .await
                .map(|h| Entry::History(Arc::new(h)))
        };
        match self.content(key, load).await? {
            Entry::History(h) => Ok(h),
            _ => unreachable!("history keys hold histories"),
        }
    }

    /// One history entry; level 0 is the image config.
    pub async fn history_level(
        &self,
        req: ImageRequest<'_>,
        level: u64,
        options: history::Options,
    ) -> Result<(Box<RawValue>, Arc<HistoryAnswer>), Error> {
        let answer = self.history(req, options).await?;
        let entries = answer.entries.len();
        let index = usize::try_from(level)
            .ok()
            .filter(|i| *i < entries)
            .ok_or_else(|| Error::LevelOutOfRange {
                account: req.account.to_owned(),
                image: format!(
                    "{}@{} from {}",
                    req.repository,
                    answer.digest,
                    self.registry_host(req.account).unwrap_or_default()
                ),
                level,
                entries,
            })?;
        Ok((answer.entries[index].clone(), answer))
    }

    /// The config's `config.Labels` as a JSON object (`{}` when there are none).
    pub async fn labels(&self, req: ImageRequest<'_>) -> Result<String, Error> {
        let (top, answer) = self
            .history_level(req, 0, history::Options::default())
            .await?;
        let image = format!(
            "{}@{} from {}",
            req.repository,
            answer.digest,
            self.registry_host(req.account).unwrap_or_default()
        );
        history::labels(top.get().as_bytes()).map_err(|source| Error::History {
            account: req.account.to_owned(),
            image,
            source,
        })
    }

    async fn compute_history(
        &self,
        p: &Parsed<'_>,
        fetched: &Fetched,
        options: history::Options,
    ) -> Result<HistoryAnswer, Error> {
        let image = p.name(&fetched.digest);
        let digest = fetched.digest.clone();
        let (config, layers) = match &fetched.manifest {
            Manifest::Schema1 { history, .. } => {
                let extensions = Vec::new();
                return raw_answer(history.clone(), extensions, digest, &p.account.name, &image);
            }
            Manifest::Image { config, layers, .. } => (config, layers),
            Manifest::Index { .. } => unreachable!("resolve returns an image or schema1"),
        };
        let blob = self.image_config(p, &image, config).await?;
        let built = history::build(&blob, layers, options).map_err(|source| Error::History {
            account: p.account.name.to_string(),
            image: image.clone(),
            source,
        })?;
        for e in &built.extensions {
            tracing::info!(%image, extension = e.name(), "history extended beyond distribution: {e}");
        }
        raw_answer(
            built.entries,
            built.extensions,
            digest,
            &p.account.name,
            &image,
        )
    }

    /// The config blob of `image` (`repository@digest`, for messages).
    async fn blob(
        &self,
        p: &Parsed<'_>,
        image: &str,
        descriptor: &manifest::Descriptor,
    ) -> Result<Arc<Vec<u8>>, Error> {
        let digest = Digest::parse(&descriptor.digest).ok_or_else(|| {
            registry_error(
                &p.account.name,
                registry::Error::BadResponse {
                    what: format!("manifest {image}"),
                    detail: format!("invalid config digest {:?}", descriptor.digest),
                },
            )
        })?;
        let load = async {
            let scope = p.scope();
            let fetch = async {
                let bytes = p.client.blob(&p.repository, descriptor).await;
                let bytes = bytes.map_err(|e| registry_error(&p.account.name, e))?;
                if let Some(shared) = self.shared() {
                    shared.put_blob(&scope, &digest, &bytes).await;
                }
                Ok(bytes)
            };
            let read = || self.shared_read(|s| s.blob(&scope, &digest));
            let bytes = self
                .once(&scope, &format!("b {digest}"), read, fetch)
                .await?;
            Ok(Entry::Blob(Arc::new(bytes)))
        };
        let key = p.blob_key(digest.clone());
        match self.content(key, load).await? {
            Entry::Blob(b) => Ok(b),
            _ => unreachable!("blob keys hold blobs"),
        }
    }

    /// A content-cache lookup with single flight and hit/miss counting.
    async fn content(
        &self,
        key: Key,
        load: impl Future<Output = Result<Entry, Error>>,
    ) -> Result<Entry, Error> {
        if let Some(hit) = self.caches.content.get(&key).await {
            self.metrics.cache(CacheName::content, true);
            return Ok(hit);
        }
        self.metrics.cache(CacheName::content, false);
        self.caches
            .content
            // Boxed: loader futures are large, and moka moves them around while it coalesces.
            .try_get_with(key, Box::pin(load))
            .await
            .map_err(Arc::unwrap_or_clone)
    }

    async fn manifest_by_digest(
        &self,
        p: &Parsed<'_>,
        digest: &Digest,
    ) -> Result<Arc<Fetched>, Error> {
        let key = p.manifest_key(digest.clone());
        let load = async {
            let scope = p.scope();
            let fetch = async {
                let fetched = p
                    .client
                    .manifest(&p.repository, &Reference::Digest(digest.clone()))
                    .await
                    .map_err(|e| registry_error(&p.account.name, e))?;
                if let Some(shared) = self.shared() {
                    shared.put_manifest(&scope, &fetched).await;
                }
                Ok(fetched)
            };
            let read = || self.shared_read(|s| s.manifest(&scope, digest));
            let fetched = self
                .once(&scope, &format!("m {digest}"), read, fetch)
                .await?;
            Ok(Entry::Manifest(Arc::new(fetched)))
        };
        match self.content(key, load).await? {
            Entry::Manifest(m) => Ok(m),
            _ => unreachable!("manifest keys hold manifests"),
        }
    }

    fn account(&self, name: &str) -> Result<&Account, Error> {
        self.accounts
            .get(name)
            .ok_or_else(|| Error::UnknownAccount {
                account: name.to_owned(),
                known: self.accounts.keys().cloned().collect(),
            })
    }

    /// Everything a lookup needs before any I/O; bad input fails here.
    fn parse(&self, req: ImageRequest<'_>) -> Result<Parsed<'_>, Error> {
        let account = self.account(req.account)?;
        let unusable = |reason: &str| Error::AccountUnusable {
            account: req.account.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(reason) = &account.spec.unusable {
            return Err(unusable(reason));
        }
        let invalid = |e: &dyn std::fmt::Display| Error::InvalidInput(e.to_string());
        let repository = Repository::parse(req.repository).map_err(|e| invalid(&e))?;
        let reference = Reference::parse(req.reference).map_err(|e| invalid(&e))?;
        let platform = req
            .platform
            .map(Platform::parse)
            .transpose()
            .map_err(|e| invalid(&e))?;
        // Built only for well-formed requests: bad input never costs a client.
        let client = account
            .client
            .get_or_init(|| {
                let spec = &account.spec;
                Client::new(
                    &account.name,
                    spec.endpoint.clone(),
                    spec.credentials.clone(),
                    self.limits.clone(),
                    self.metrics.clone(),
                )
                .map(Arc::new)
            })
            .as_ref()
            .map_err(|e| unusable(e))?;
        let repository = client.repository(&repository);
        Ok(Parsed {
            account,
            client,
            repository,
            reference,
            platform,
        })
    }

    /// The image from the caches alone, if they hold all of it: no I/O, no waiting.
    async fn cached(&self, p: &Parsed<'_>) -> Option<Arc<Fetched>> {
        let digest = self.cached_digest(p).await?;
        let top = self.cached_manifest(p, digest).await?;
        let Manifest::Index { manifests, .. } = &top.manifest else {
            // A platform asked of a single image is checked against its config on the way that
            // can fail.
            return p.platform.is_none().then_some(top);
        };
        let child = p
            .client
            .choose_child(&p.repository, &p.reference, manifests, p.platform.as_ref())
            .ok()?;
        self.cached_manifest(p, child)
            .await
            .filter(|f| !matches!(f.manifest, Manifest::Index { .. }))
    }

    /// The digest `p` names, from memory alone: itself, or the tag while it may be trusted.
    async fn cached_digest(&self, p: &Parsed<'_>) -> Option<Digest> {
        match &p.reference {
            Reference::Digest(d) => Some(d.clone()),
            Reference::Tag(_) => {
                let entry = self.caches.tags.as_ref()?.get(&p.tag_key()).await?;
                if !self.still_trusted(&p.account.name, &entry) {
                    return None;
                }
                self.metrics.cache(CacheName::tag, true);
                Some(entry.value)
            }
        }
    }

    async fn cached_manifest(&self, p: &Parsed<'_>, digest: Digest) -> Option<Arc<Fetched>> {
        match self.caches.content.get(&p.manifest_key(digest)).await? {
            Entry::Manifest(m) => Some(m),
            _ => None,
        }
    }

    /// Resolves through the registry where the caches fall short, remembering not-founds.
    async fn resolve_cold(&self, p: &Parsed<'_>) -> Result<Arc<Fetched>, Error> {
        let negative_key = TagKey {
            account: p.account.name.clone(),
            repository: p.repository.to_string(),
            reference: format!(
                "{} {}",
                p.reference,
                p.platform
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        };
        let Some(negative) = &self.caches.negative else {
            return self.resolve_uncached(p).await;
        };
        if let Some(e) = negative.get(&negative_key).await {
            self.metrics.cache(CacheName::negative, true);
            return Err(e.value);
        }
        let scope = p.scope();
        let what = &negative_key.reference;
        if let Some(detail) = self.shared_read(|s| s.not_found(&scope, what)).await {
            return Err(registry_error(
                &p.account.name,
                registry::Error::NotFound {
                    what: format!("manifest {}:{}", p.repository, p.reference),
                    detail,
                },
            ));
        }
        let asked = Instant::now();
        let result = self.resolve_uncached(p).await;
        if let Err(
            e @ Error::Registry {
                source: registry::Error::NotFound { detail, .. },
                ..
            },
        ) = &result
        {
            self.metrics.cache(CacheName::negative, false);
            let ttl = self.cache_settings.negative_ttl;
            if let Some(shared) = self.shared() {
                let left = ttl.saturating_sub(asked.elapsed());
                shared.put_not_found(&scope, what, detail, left).await;
            }
            negative
                .insert(negative_key, Dated::new(e.clone(), asked, ttl))
                .await;
        }
        result
    }

    /// The image `p` names (an index resolved to one platform), from the caches alone when they
    /// hold all of it.
    async fn resolve(&self, p: &Parsed<'_>) -> Result<Arc<Fetched>, Error> {
        if let Some(f) = self.cached(p).await {
            return Ok(f);
        }
        // The cold path's future is large; boxing it keeps the warm path's small and unmoved.
        Box::pin(self.bounded(&p.account.name, self.resolve_cold(p))).await
    }

    /// The manifest the reference names, unresolved (an index stays an index).
    async fn top(&self, p: &Parsed<'_>) -> Result<Arc<Fetched>, Error> {
        let digest = self.digest_of(p).await?;
        self.manifest_by_digest(p, &digest).await
    }

    async fn resolve_uncached(&self, p: &Parsed<'_>) -> Result<Arc<Fetched>, Error> {
        let top = self.top(p).await?;
        Ok(self.image_of(p, top).await?.0)
    }

    /// The image `top` stands for at `p`'s platform, and the index when `top` is one: an index's
    /// chosen entry (never another index), or a single image whose platform is checked.
    async fn image_of(
        &self,
        p: &Parsed<'_>,
        top: Arc<Fetched>,
    ) -> Result<(Arc<Fetched>, Option<Arc<Fetched>>), Error> {
        let Manifest::Index { manifests, .. } = &top.manifest else {
            self.check_platform(p, &top).await?;
            return Ok((top, None));
        };
        let child = p
            .client
            .choose_child(&p.repository, &p.reference, manifests, p.platform.as_ref())
            .map_err(|e| registry_error(&p.account.name, e))?;
        let fetched = self.manifest_by_digest(p, &child).await?;
        if let Manifest::Index { .. } = fetched.manifest {
            return Err(registry_error(
                &p.account.name,
                registry::Error::BadResponse {
                    what: format!("manifest {}@{child}", p.repository),
                    detail: "index entry points to another index".to_owned(),
                },
            ));
        }
        Ok((fetched, Some(top)))
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

/// Keeps history entries as raw JSON: validated once here, copied verbatim from then on. A
/// schema1 manifest's strings come from the registry, so an invalid one is its bad response.
fn raw_answer(
    entries: Vec<String>,
    extensions: Vec<Extension>,
    digest: Digest,
    account: &str,
    image: &str,
) -> Result<HistoryAnswer, Error> {
    let invalid = |e: serde_json::Error| {
        registry_error(
            account,
            registry::Error::BadResponse {
                what: image.to_owned(),
                detail: format!("history entry is not JSON: {e}"),
            },
        )
    };
    let list = RawValue::from_string(history::to_list(&entries)).map_err(invalid)?;
    let entries = entries
        .into_iter()
        .map(RawValue::from_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    Ok(HistoryAnswer {
        entries,
        list,
        extensions,
        digest,
    })
}

fn registry_error(account: &str, source: registry::Error) -> Error {
    Error::Registry {
        account: account.to_owned(),
        source,
    }
}
