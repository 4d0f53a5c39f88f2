//! What dimsum remembers, so a warm lookup asks the registry nothing:
//!
//! - **content**: manifests, config blobs and computed histories by digest. Immutable, so kept
//!   until evicted; bounded by bytes (`dimsum.cache.maxBytes`). Keys include the account and
//!   repository, so one account's cached content never answers for another's credentials.
//! - **tags**: tag → digest for `tagTtlSeconds` (default 30; 0 = always revalidate). After that the
//!   tag is revalidated with one `HEAD` (free on Docker Hub); an unchanged digest costs no `GET`.
//! - **known**: the last digest seen per tag, which is what makes the `HEAD` revalidation possible.
//! - **negative**: recent not-found answers, for `negativeTtlSeconds` (default 10).
//! - **disk** (`disk`, when a directory is given; the one-shot CLI's default): manifests and
//!   configs by digest and the last digest per tag, across processes.
//!
//! Every cache is a moka cache: `try_get_with` runs one loader per key at a time and hands its
//! result to every concurrent caller (single flight). Only verified content is ever inserted; a
//! failed load inserts nothing.

pub(crate) mod disk;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::error::Error;
use crate::registry::{Digest, Fetched};
use crate::service::HistoryAnswer;

/// Cache settings (`dimsum.cache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Upper bound on cached content, in bytes.
    pub max_bytes: u64,
    /// How long a tag → digest mapping is trusted without asking the registry.
    pub tag_ttl: Duration,
    /// How long a not-found answer is remembered.
    pub negative_ttl: Duration,
    /// Where content is also kept across processes (`--cache-dir`), if anywhere.
    pub dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_bytes: 16 * 1024 * 1024,
            tag_ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
            dir: None,
        }
    }
}

/// Tags remembered at most (each entry is a few hundred bytes).
const MAX_TAGS: u64 = 20_000;

/// A count-bounded cache whose entries live `ttl`; none at all for a zero `ttl`.
fn ttl_cache<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Option<Cache<TagKey, V>> {
    (!ttl.is_zero()).then(|| {
        Cache::builder()
            .max_capacity(MAX_TAGS)
            .time_to_live(ttl)
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
    pub(crate) tags: Option<Cache<TagKey, Digest>>,
    pub(crate) known: Cache<TagKey, Digest>,
    pub(crate) negative: Option<Cache<TagKey, Error>>,
    pub(crate) disk: Option<disk::Disk>,
}

impl Caches {
    pub(crate) fn new(settings: &Settings) -> Caches {
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
            tags: ttl_cache(settings.tag_ttl),
            known: Cache::builder()
                .max_capacity(MAX_TAGS)
                .support_invalidation_closures()
                .build(),
            negative: ttl_cache(settings.negative_ttl),
            disk: settings.dir.as_deref().and_then(disk::Disk::open),
        }
    }

    /// Drops everything cached for `account` (its address or credentials changed).
    pub(crate) fn forget_account(&self, account: &str) {
        let name: Arc<str> = account.into();
        let n = name.clone();
        let _ = self.content.invalidate_entries_if(move |k, _| match k {
            Key::Manifest(a, ..) | Key::Blob(a, ..) | Key::History(a, ..) => *a == n,
        });
        for cache in [Some(&self.known), self.tags.as_ref()]
            .into_iter()
            .flatten()
        {
            let n = name.clone();
            let _ = cache.invalidate_entries_if(move |k, _| k.account == n);
        }
        if let Some(negative) = &self.negative {
            let n = name.clone();
            let _ = negative.invalidate_entries_if(move |k, _| k.account == n);
        }
    }

    /// Bytes of content held now (after pending evictions are applied).
    pub(crate) async fn content_bytes(&self) -> u64 {
        self.content.run_pending_tasks().await;
        self.content.weighted_size()
    }
}
