//! The tier behind memory: what outlives this process or is shared with other replicas. The
//! service asks it through [`Shared`] and does not know which it is:
//! - [`super::disk`] for the one-shot CLI: manifests, configs and tag hints across runs;
//! - [`super::redis`] for `serve` and `stdio` with `dimsum.redis`: the same, plus tags and
//!   not-found answers with their freshness, a fleet-wide lock so one replica fetches what
//!   several want, and registry events passed to every replica.
//!
//! Every read is verified (content against its digest) or bounded by what the writer allowed
//! (a tag's freshness), so the tier can lose, corrupt or lack anything without a wrong answer:
//! a miss costs a registry request, never correctness. A tier that is down answers nothing and
//! locks nothing, at once.

use std::time::Duration;

use jsonrpsee::core::async_trait;

use crate::registry::{Digest, Fetched};

/// How long a fetch lock lives if its holder never releases it; waiters wait no longer.
pub(crate) const LOCK_LIFE: Duration = Duration::from_secs(10);

/// Whose content a key holds: registry address, user name, account, repository.
#[derive(Debug, Clone)]
pub(crate) struct Scope(pub(crate) String);

/// What the tier knows of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TagHint {
    /// The digest, trusted for this much longer: no need to ask the registry.
    Fresh(Digest, Duration),
    /// The digest it had when last seen: worth a `HEAD`, never an answer by itself.
    Seen(Digest),
}

/// The outcome of asking for the fleet-wide lock on a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lock {
    /// This process fetches; release with the token.
    Held(String),
    /// Another process is fetching; its result will be in the tier.
    Elsewhere,
    /// No fleet (the disk), or the tier is unreachable: fetch.
    None,
}

/// The shared tier.
#[async_trait]
pub(crate) trait Shared: Send + Sync + std::fmt::Debug {
    /// A manifest by digest, verified.
    async fn manifest(&self, scope: &Scope, digest: &Digest) -> Option<Fetched>;
    /// Keeps a verified manifest.
    async fn put_manifest(&self, scope: &Scope, fetched: &Fetched);
    /// A blob by digest, verified.
    async fn blob(&self, scope: &Scope, digest: &Digest) -> Option<Vec<u8>>;
    /// Keeps a verified blob.
    async fn put_blob(&self, scope: &Scope, digest: &Digest, bytes: &[u8]);
    /// What is known of `tag`.
    async fn tag(&self, scope: &Scope, tag: &str) -> Option<TagHint>;
    /// Records `tag` → `digest`, trusted by others for `fresh_for` (zero: a hint only).
    async fn put_tag(&self, scope: &Scope, tag: &str, digest: &Digest, fresh_for: Duration);
    /// Forgets what is known of `tag` (it moved to an unknown digest, or was deleted).
    async fn forget_tag(&self, scope: &Scope, tag: &str);
    /// A recent not-found answer for `what` (a reference and platform): the registry's detail.
    async fn not_found(&self, scope: &Scope, what: &str) -> Option<String>;
    /// Records a not-found answer, trusted by others for `fresh_for`.
    async fn put_not_found(&self, scope: &Scope, what: &str, detail: &str, fresh_for: Duration);
    /// Forgets a not-found answer (a registry event says it exists now).
    async fn forget_not_found(&self, scope: &Scope, what: &str);
    /// Asks to be the one process that fetches `what`.
    async fn lock(&self, scope: &Scope, what: &str) -> Lock;
    /// Releases a lock [`Shared::lock`] gave.
    async fn unlock(&self, scope: &Scope, what: &str, token: &str);
    /// Passes a registry event to every other process sharing the tier.
    async fn publish(&self, event: &str);
    /// Whether events from other processes are being heard now (`None`: the tier has no fleet).
    fn hearing(&self) -> Option<bool>;
}
