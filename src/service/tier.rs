//! The shared tier from the service's side: reads counted as hits and misses, and fetches made
//! once for the whole fleet.
//!
//! **Fleet-wide single flight.** Memory already gives one fetch per key within a process (moka's
//! loaders). Across replicas, a fetch first takes a short lock in the shared tier: the holder
//! fetches, stores the result, and releases; the others poll the tier for that result every
//! [`POLL`] and use it once it is there. A holder that dies releases by expiry, after which a
//! waiter takes the lock; a waiter never waits past the lock's life, and a tier that does not
//! answer means everybody fetches. So the lock can make a lookup slower, never wrong, and never
//! stuck.

use std::future::Future;
use std::time::{Duration, Instant};

use super::Dimsum;
use crate::cache::shared::{LOCK_LIFE, Lock, Scope, Shared};
use crate::error::Error;
use crate::metrics::CacheName;

/// How often a waiter looks for another replica's result.
const POLL: Duration = Duration::from_millis(10);

impl Dimsum {
    /// The shared tier, if there is one.
    pub(super) fn shared(&self) -> Option<&dyn Shared> {
        self.shared.as_ref().map(|t| t.tier())
    }

    /// A read from the shared tier, counted as a hit or a miss.
    pub(super) async fn shared_read<'a, T, F>(
        &'a self,
        read: impl FnOnce(&'a dyn Shared) -> F,
    ) -> Option<T>
    where
        F: Future<Output = Option<T>> + 'a,
    {
        let shared = self.shared()?;
        let found = read(shared).await;
        self.metrics.cache(CacheName::shared, found.is_some());
        found
    }

    /// `fetch`, once for the fleet: unless `read` finds what another replica fetched first (see
    /// the module doc). Without a shared tier, just `fetch`.
    pub(super) async fn once<T, R, RF>(
        &self,
        scope: &Scope,
        what: &str,
        read: R,
        fetch: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error>
    where
        R: Fn() -> RF,
        RF: Future<Output = Option<T>>,
    {
        let Some(shared) = self.shared() else {
            return fetch.await;
        };
        if let Some(found) = read().await {
            return Ok(found);
        }
        let deadline = Instant::now() + LOCK_LIFE;
        let mut waited = false;
        let token = loop {
            match shared.lock(scope, what).await {
                Lock::Held(token) => break Some(token),
                Lock::None => break None,
                Lock::Elsewhere => {
                    if !waited {
                        waited = true;
                        self.metrics.shared("lock", "wait");
                    }
                    tokio::time::sleep(POLL).await;
                    if let Some(found) = read().await {
                        return Ok(found);
                    }
                    if Instant::now() >= deadline {
                        break None;
                    }
                }
            }
        };
        if let Some(token) = &token {
            // Another holder may have finished between our read and our lock.
            if let Some(found) = read().await {
                shared.unlock(scope, what, token).await;
                return Ok(found);
            }
        }
        let result = fetch.await;
        if let Some(token) = token {
            shared.unlock(scope, what, &token).await;
        }
        result
    }
}
