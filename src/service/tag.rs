//! Where a tag points: from memory while it may be trusted, fresh from the shared tier, or from
//! the registry (one `HEAD` when the digest is known, else one `GET` for the fleet). Answers are
//! dated by when the registry was asked (see [`crate::cache`]), and a registry event that came
//! after the question outranks the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Dimsum, Parsed, registry_error};
use crate::cache::shared::{Scope, TagHint};
use crate::cache::{Dated, Entry, LIVE, TagKey};
use crate::error::Error;
use crate::metrics::CacheName;
use crate::registry::{self, Digest, Reference};

impl Dimsum {
    /// The digest `p`'s reference names: itself, or the tag's ([`Dimsum::digest_of_tag`]).
    pub(super) async fn digest_of(&self, p: &Parsed<'_>) -> Result<Digest, Error> {
        match &p.reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(_) => self.digest_of_tag(p).await,
        }
    }

    /// The digest a tag points to: from the tag cache, by `HEAD` revalidation, or by `GET`.
    pub(super) async fn digest_of_tag(&self, p: &Parsed<'_>) -> Result<Digest, Error> {
        let key = p.tag_key();
        let Some(tags) = &self.caches.tags else {
            return Ok(self.lookup_tag(p, key).await?.value);
        };
        let started = Instant::now();
        if let Some(entry) = tags.get(&key).await {
            if self.still_trusted(&p.account.name, &entry) {
                self.metrics.cache(CacheName::tag, true);
                return Ok(entry.value);
            }
            tags.invalidate(&key).await;
        }
        self.metrics.cache(CacheName::tag, false);
        let entry = tags
            .try_get_with(key.clone(), Box::pin(self.lookup_tag(p, key.clone())))
            .await
            .map_err(Arc::unwrap_or_clone)?;
        if entry.fresh_at(started) {
            return Ok(entry.value);
        }
        // This lookup joined a request sent longer ago than the tag may be trusted (a slow
        // registry): its answer may predate a push this lookup must see. Ask again.
        let entry = self.lookup_tag(p, key.clone()).await?;
        tags.insert(key, entry.clone()).await;
        Ok(entry.value)
    }

    /// Whether a remembered tag may still be believed. Its trust was set when it was stored;
    /// trust beyond [`LIVE`] holds only while it still would be given (the replica hears the
    /// fleet's events, the registry is not quiet), so a replica that stopped hearing events does
    /// not keep a tag it trusted for minutes. Trust of [`LIVE`] or less is never cut: the hot path
    /// of the default configuration stays a comparison.
    pub(super) fn still_trusted(&self, account: &str, entry: &Dated<Digest>) -> bool {
        entry.ttl <= LIVE || entry.fresh_within(Instant::now(), self.tag_ttl(account))
    }

    /// Where a tag points, dated by when the registry was asked: fresh from the shared tier, or
    /// from the registry. An event that came after the question was sent outranks the answer.
    async fn lookup_tag(&self, p: &Parsed<'_>, key: TagKey) -> Result<Dated<Digest>, Error> {
        let asked = Instant::now();
        let ttl = self.tag_ttl(&p.account.name);
        let scope = p.scope();
        let answer = match self.shared_read(|s| s.tag(&scope, &key.reference)).await {
            Some(TagHint::Fresh(digest, left)) => Ok(Dated::new(digest, asked, left.min(ttl))),
            hint => {
                let seen = match hint {
                    Some(TagHint::Seen(d)) => Some(d),
                    _ => None,
                };
                self.ask_tag(p, &key, &scope, seen, asked, ttl).await
            }
        };
        match self.caches.announced.get(&key).await {
            Some(event) if event.asked >= asked => match event.value {
                Some(digest) => Ok(Dated::new(digest, event.asked, ttl)),
                None => Err(registry_error(
                    &p.account.name,
                    registry::Error::NotFound {
                        what: format!("tag {}:{}", p.repository, p.reference),
                        detail: "deleted (registry event)".to_owned(),
                    },
                )),
            },
            _ => answer,
        }
    }

    /// Asks the registry: one `HEAD` when the digest is known (in memory, or `seen` by the shared
    /// tier), else one `GET` for the fleet. The answer is trusted for `ttl` from `asked`, except
    /// a digest served stale because the registry did not answer: that is trusted [`LIVE`] only,
    /// as nobody confirmed it.
    async fn ask_tag(
        &self,
        p: &Parsed<'_>,
        key: &TagKey,
        scope: &Scope,
        seen: Option<Digest>,
        asked: Instant,
        ttl: Duration,
    ) -> Result<Dated<Digest>, Error> {
        let (account, repo, tag) = (p.account, &p.repository, &p.reference);
        // (digest, seen by this process): a digest from the shared tier may be older than
        // anything we remember, so it is revalidated but never served stale.
        let known = match self.caches.known.get(key).await {
            Some(known) => Some((known, true)),
            None => seen.map(|d| (d, false)),
        };
        let share = |digest: Digest| async move {
            if let Some(shared) = self.shared() {
                let left = ttl.saturating_sub(asked.elapsed());
                shared.put_tag(scope, &key.reference, &digest, left).await;
            }
            self.caches.known.insert(key.clone(), digest.clone()).await;
            Dated::new(digest, asked, ttl)
        };
        if let Some((known, recent)) = known {
            // Seen before: one HEAD says whether it moved. Content by digest is cached, so an
            // unchanged tag costs no GET (and no Docker Hub pull).
            match p.client.head_manifest(repo, tag).await {
                Ok(Some(digest)) => return Ok(share(digest).await),
                Ok(None) => {}
                // Stale if error: while the registry is down or rate-limiting, the last digest
                // we saw for this tag is a better answer than an outage.
                Err(e)
                    if recent
                        && (e.is_temporary() || matches!(e, registry::Error::Timeout { .. })) =>
                {
                    tracing::warn!(account = %account.name, %repo, %tag, error = %e, "registry unreachable; serving the tag's last known digest");
                    return Ok(Dated::new(known, asked, ttl.min(LIVE)));
                }
                Err(e) => return Err(registry_error(&account.name, e)),
            }
        }
        let fetch = async {
            let fetched = p
                .client
                .manifest(repo, tag)
                .await
                .map_err(|e| registry_error(&account.name, e))?;
            let digest = fetched.digest.clone();
            if let Some(shared) = self.shared() {
                // The manifest first: whoever finds the tag finds its manifest too.
                shared.put_manifest(scope, &fetched).await;
            }
            self.caches
                .content
                .insert(
                    p.manifest_key(digest.clone()),
                    Entry::Manifest(Arc::new(fetched)),
                )
                .await;
            Ok(share(digest).await)
        };
        let fresh = || async {
            match self.shared_read(|s| s.tag(scope, &key.reference)).await {
                Some(TagHint::Fresh(digest, left)) => {
                    Some(Dated::new(digest, asked, left.min(ttl)))
                }
                _ => None,
            }
        };
        self.once(scope, &format!("t {}", key.reference), fresh, fetch)
            .await
    }
}
