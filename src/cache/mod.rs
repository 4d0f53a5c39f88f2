//! What dimsum remembers, so a warm lookup asks the registry nothing:
//!
//! - **content**: manifests, config blobs and computed histories by digest. Immutable, so kept
//!   until evicted; bounded by bytes (`dimsum.cache.maxBytes`). Keys include the account and
//!   repository, so one account's cached content never answers for another's credentials.
//! - **tags**: tag → digest for `tagTtlSeconds` (default 1; 0 = always revalidate), counted from
//!   when the registry was asked, not from when it answered: a lookup that starts a second after a
//!   push never sees the tag as it was before it. After that the tag is revalidated with one
//!   `HEAD` (free on Docker Hub); an unchanged digest costs no `GET`. Registry events set and
//!   forget tags at once (see [`crate::service`]).
//! - **known**: the last digest seen per tag, which is what makes the `HEAD` revalidation possible.
//! - **announced**: what registry events said about a tag lately, so a `HEAD` that was already on
//!   its way when the event came cannot put the older digest back.
//! - **negative**: recent not-found answers, for `negativeTtlSeconds` (default 1), dated the same
//!   way.
//! - **shared** ([`shared`]): behind memory, the disk for the one-shot CLI (manifests and configs
//!   by digest, the last digest per tag, across processes) or Redis for `serve` and `stdio`
//!   (the same, plus fresh tags, not-founds, fleet-wide single flight and events for every
//!   replica).
//!
//! Every cache is a moka cache: `try_get_with` runs one loader per key at a time and hands its
//! result to every concurrent caller (single flight). Only verified content is ever inserted; a
//! failed load inserts nothing.

pub(crate) mod disk;
pub(crate) mod redis;
pub(crate) mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use serde_json::value::RawValue;

use self::shared::Shared;
use crate::config::RedisSettings;
use crate::error::Error;
use crate::history::Extension;
use crate::metrics::Metrics;
use crate::registry::{Digest, Fetched};

/// An image's history.
#[derive(Debug, Clone)]
pub struct HistoryAnswer {
    /// `v1Compatibility` JSON objects, newest first (index 0 = the image config). Kept as raw
    /// JSON so answering costs a copy, never a parse or a re-serialisation.
    pub entries: Vec<Box<RawValue>>,
    /// The same as the list form, `[{"v1Compatibility":"…"},…]`, rendered once.
    pub list: Box<RawValue>,
    /// dimsum extensions that fired (empty: exactly distribution's output).
    pub extensions: Vec<Extension>,
    /// Digest of the image manifest the history was computed from.
    pub digest: Digest,
}

/// The tier behind memory a service uses (see [`shared`]): the disk for the one-shot CLI, Redis
/// for `serve` and `stdio` when `dimsum.redis` is set.
#[derive(Debug, Clone)]
pub struct SharedTier {
    tier: Arc<dyn Shared>,
    redis: Option<Arc<redis::Redis>>,
}

impl SharedTier {
    /// Content on disk in `dir`; `None` when the directory cannot be used (a debug line says why).
    pub fn disk(dir: &std::path::Path) -> Option<SharedTier> {
        let disk = disk::Disk::open(dir)?;
        Some(SharedTier {
            tier: Arc::new(disk),
            redis: None,
        })
    }

    /// Redis, connecting in the background and counting into `metrics`.
    pub fn redis(settings: &RedisSettings, metrics: Arc<Metrics>) -> SharedTier {
        let redis = redis::Redis::start(settings, metrics);
        SharedTier {
            tier: redis.clone(),
            redis: Some(redis),
        }
    }

    /// Registry events other replicas published, as JSON, to apply here (once; Redis only).
    pub fn replica_events(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.redis.as_ref()?.take_events()
    }

    /// Redis, when this tier is Redis.
    pub(crate) fn fleet(&self) -> Option<&Arc<redis::Redis>> {
        self.redis.as_ref()
    }

    pub(crate) fn tier(&self) -> &dyn Shared {
        self.tier.as_ref()
    }
}

pub use crate::config::LIVE;

/// How long an event's word on a tag outranks a registry answer to a request sent before it:
/// longer than any request may take.
pub(crate) const ANNOUNCED_FOR: Duration = Duration::from_secs(120);

/// Tags remembered at most (each entry is a few hundred bytes).
const MAX_TAGS: u64 = 20_000;

/// What the registry said, when it was asked, and for how long that may be believed.
#[derive(Debug, Clone)]
pub(crate) struct Dated<V> {
    pub(crate) value: V,
    /// When the request that produced `value` was sent (or the event that announced it came).
    pub(crate) asked: Instant,
    pub(crate) ttl: Duration,
}

impl<V> Dated<V> {
    pub(crate) fn new(value: V, asked: Instant, ttl: Duration) -> Dated<V> {
        Dated { value, asked, ttl }
    }

    /// How much longer it may be believed at `now`.
    fn remaining(&self, now: Instant) -> Duration {
        self.ttl
            .saturating_sub(now.saturating_duration_since(self.asked))
    }

    /// Whether it may still be believed at `now`.
    pub(crate) fn fresh_at(&self, now: Instant) -> bool {
        !self.remaining(now).is_zero()
    }

    /// Whether it may still be believed at `now` with its trust cut to at most `cap` (what
    /// may be trusted now can be less than what could when it was stored).
    pub(crate) fn fresh_within(&self, now: Instant, cap: Duration) -> bool {
        now.saturating_duration_since(self.asked) < self.ttl.min(cap)
    }
}

/// Expires a [`Dated`] entry `ttl` after it was asked for, however late it was inserted.
struct FromAsked;

impl<K, V> Expiry<K, Dated<V>> for FromAsked {
    fn expire_after_create(&self, _: &K, v: &Dated<V>, created_at: Instant) -> Option<Duration> {
        Some(v.remaining(created_at))
    }

    fn expire_after_update(
        &self,
        _: &K,
        v: &Dated<V>,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.remaining(updated_at))
    }
}

/// A count-bounded cache of dated entries; none at all when nothing may be trusted (`ttl` 0).
fn dated_cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Option<Cache<TagKey, Dated<V>>> {
    (!ttl.is_zero()).then(|| {
        Cache::builder()
            .max_capacity(MAX_TAGS)
            .expire_after(FromAsked)
            .support_invalidation_closures()
            .build()
    })
}

/// Identifies an image reference within an account.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct TagKey {
    pub(crate) account: Arc<str>,
    pub(crate) repository: String,
    pub(crate) reference: String,
}

/// Identifies immutable content.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) enum Key {
    /// A manifest by its digest.
    Manifest(Arc<str>, String, Digest),
    /// A blob by its digest.
    Blob(Arc<str>, String, Digest),
    /// The history computed from the image manifest with this digest (and strictness).
    History(Arc<str>, String, Digest, bool),
}

impl Key {
    fn account(&self) -> &Arc<str> {
        match self {
            Key::Manifest(a, ..) | Key::Blob(a, ..) | Key::History(a, ..) => a,
        }
    }
}

/// Cached content.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Manifest(Arc<Fetched>),
    Blob(Arc<Vec<u8>>),
    History(Arc<HistoryAnswer>),
}

impl Entry {
    fn weight(&self) -> usize {
        match self {
            Entry::Manifest(m) => m.bytes.len() + 256,
            Entry::Blob(b) => b.len() + 64,
            Entry::History(h) => {
                h.entries.iter().map(|e| e.get().len() + 32).sum::<usize>()
                    + h.list.get().len()
                    + 128
            }
        }
    }
}

/// All caches of one service.
#[derive(Debug)]
pub(crate) struct Caches {
    pub(crate) content: Cache<Key, Entry>,
    pub(crate) tags: Option<Cache<TagKey, Dated<Digest>>>,
    pub(crate) known: Cache<TagKey, Digest>,
    /// A tag's digest as an event announced it (`None`: the tag was deleted).
    pub(crate) announced: Cache<TagKey, Dated<Option<Digest>>>,
    pub(crate) negative: Option<Cache<TagKey, Dated<Error>>>,
    /// Assembled `origin` answers by (account, repository, top digest and platform), for
    /// [`LIVE`]: they hold signature lookups, which are tags.
    pub(crate) origins: Option<Cache<TagKey, Dated<Arc<crate::origin::Origin>>>>,
    /// `signatures` answers (what the `signedBy` gate reads), keyed and kept as origins are.
    pub(crate) signatures: Option<Cache<TagKey, Dated<Arc<crate::service::SignaturesAnswer>>>>,
    /// When each account's registry last sent an event (see [`crate::service`] on freshness).
    heard: std::sync::Mutex<std::collections::HashMap<Arc<str>, Instant>>,
}

impl Caches {
    pub(crate) fn new(settings: &crate::config::CacheSettings) -> Caches {
        let content = Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|k: &Key, v: &Entry| {
                let key = match k {
                    Key::Manifest(a, r, _) | Key::Blob(a, r, _) | Key::History(a, r, _, _) => {
                        a.len() + r.len() + 80
                    }
                };
                u32::try_from(key + v.weight()).unwrap_or(u32::MAX)
            })
            .support_invalidation_closures()
            .build();
        Caches {
            content,
            tags: dated_cache(settings.tag_ttl),
            known: Cache::builder()
                .max_capacity(MAX_TAGS)
                .support_invalidation_closures()
                .build(),
            // Long enough to outlive any request that was on its way when the event came.
            announced: dated_cache(ANNOUNCED_FOR).expect("a positive duration"),
            negative: dated_cache(settings.negative_ttl),
            origins: dated_cache(LIVE),
            signatures: dated_cache(LIVE),
            heard: Default::default(),
        }
    }

    /// Notes that `account`'s registry just sent an event.
    pub(crate) fn hear(&self, account: &Arc<str>) {
        let mut heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.insert(account.clone(), Instant::now());
    }

    /// Whether `account`'s registry sent an event within `quiet`.
    pub(crate) fn heard_within(&self, account: &str, quiet: Duration) -> bool {
        let heard = self.heard.lock().unwrap_or_else(|e| e.into_inner());
        heard.get(account).is_some_and(|t| t.elapsed() < quiet)
    }

    /// Drops everything cached for `account` (its address or credentials changed).
    pub(crate) fn forget_account(&self, account: &str) {
        let name: Arc<str> = account.into();
        let n = name.clone();
        let _ = self
            .content
            .invalidate_entries_if(move |k, _| k.account() == &n);
        let n = name.clone();
        let _ = self.known.invalidate_entries_if(move |k, _| k.account == n);
        let n = name.clone();
        let _ = self
            .announced
            .invalidate_entries_if(move |k, _| k.account == n);
        self.forget_tags(move |k, _| k.account == name);
    }

    /// Forgets tags (and not-found answers) matching `which`, so their next lookup asks.
    pub(crate) fn forget_tags(
        &self,
        which: impl Fn(&TagKey, Option<&Digest>) -> bool + Clone + Send + Sync + 'static,
    ) {
        if let Some(tags) = &self.tags {
            let which = which.clone();
            let _ = tags.invalidate_entries_if(move |k, v| which(k, Some(&v.value)));
        }
        if let Some(negative) = &self.negative {
            let _ = negative.invalidate_entries_if(move |k, _| which(k, None));
        }
        // A moved tag may be a new signature (`sha256-….sig`) of any image.
        self.forget_answers();
    }

    /// Drops the assembled answers that hold signatures (origins, `signatures`): they are kept a
    /// second at most, so dropping them all costs little.
    pub(crate) fn forget_answers(&self) {
        if let Some(origins) = &self.origins {
            origins.invalidate_all();
        }
        if let Some(signatures) = &self.signatures {
            signatures.invalidate_all();
        }
    }

    /// The tags of `repository` last seen naming `digest`.
    pub(crate) fn tags_naming(
        &self,
        account: &str,
        repository: &str,
        digest: &Digest,
    ) -> Vec<String> {
        self.known
            .iter()
            .filter(|(k, v)| &*k.account == account && k.repository == repository && v == digest)
            .map(|(k, _)| k.reference.clone())
            .collect()
    }

    /// Forgets a deleted manifest: its content, its histories, and every tag that named it.
    pub(crate) fn forget_manifest(&self, account: &Arc<str>, repository: &str, digest: &Digest) {
        let (a, r, d) = (account.clone(), repository.to_owned(), digest.clone());
        let _ = self.content.invalidate_entries_if(move |k, _| match k {
            Key::Manifest(ka, kr, kd) | Key::History(ka, kr, kd, _) => {
                *ka == a && *kr == r && *kd == d
            }
            Key::Blob(..) => false,
        });
        let (a, r, d) = (account.clone(), repository.to_owned(), digest.clone());
        let _ = self
            .known
            .invalidate_entries_if(move |k, v| k.account == a && k.repository == r && *v == d);
        let (a, r, d) = (account.clone(), repository.to_owned(), digest.clone());
        self.forget_tags(move |k, v| {
            k.account == a && k.repository == r && v.is_none_or(|v| *v == d)
        });
    }

    /// Bytes of content held now (after pending evictions are applied).
    pub(crate) async fn content_bytes(&self) -> u64 {
        self.content.run_pending_tasks().await;
        self.content.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dated_answer_expires_from_when_it_was_asked() {
        let asked = Instant::now();
        let d = Dated::new((), asked, LIVE);
        assert_eq!(
            d.remaining(asked + Duration::from_millis(900)),
            Duration::from_millis(100)
        );
        assert!(d.fresh_at(asked + Duration::from_millis(999)));
        assert!(!d.fresh_at(asked + LIVE));
        assert!(!d.fresh_at(asked + Duration::from_secs(5)));
        let long = Dated::new((), asked, Duration::from_secs(300));
        let later = asked + Duration::from_secs(2);
        assert!(long.fresh_within(later, Duration::from_secs(300)));
        assert!(
            !long.fresh_within(later, LIVE),
            "trust cut to a second since"
        );
    }

    #[tokio::test]
    async fn an_answer_that_arrives_late_is_not_trusted_longer() {
        let tags = dated_cache::<u8>(LIVE).unwrap();
        let key = |r: &str| TagKey {
            account: "a".into(),
            repository: "r".into(),
            reference: r.into(),
        };
        // Asked a whole TTL ago, inserted now: already expired.
        let long_ago = Instant::now() - LIVE;
        tags.insert(key("slow"), Dated::new(1, long_ago, LIVE))
            .await;
        tags.insert(key("fresh"), Dated::new(2, Instant::now(), LIVE))
            .await;
        assert!(tags.get(&key("slow")).await.is_none());
        assert_eq!(tags.get(&key("fresh")).await.map(|d| d.value), Some(2));
        assert!(
            dated_cache::<u8>(Duration::ZERO).is_none(),
            "0: nothing is trusted"
        );
    }
}
