//! Starting Spinnaker pipelines from registry pushes (`dimsum.triggers`): a push dimsum hears on
//! `POST /events` becomes one POST to Gate's webhook endpoint, with the digest, the tag, the
//! labels and the origin already in the trigger, about a second after the push instead of the
//! minutes two polling loops take (echo.md).
//!
//! For each manifest pushed by tag that passes the filters (accounts, then anchored repository and
//! tag patterns): the image is read through the service (sharing the pre-fetch), the body built,
//! and the push **claimed** once per (account, repository, tag, digest) and queued ([`store`]: in
//! memory, or in Redis for a fleet, so one replica posts whichever heard the event, a registry's
//! redelivery or a re-push of the same digest starts nothing, and a pending delivery outlives the
//! replica that claimed it). Pushes are prepared one at a time in arrival order and a tag's pushes
//! are delivered in that order. Delivery ([`gate`]) retries through Gate's outages for
//! `retrySeconds`. Everything dropped, refused or given up is counted
//! (`dimsum_triggers_total{account,result}`) and logged, never silent.

pub(crate) mod gate;
pub(crate) mod store;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use self::gate::{Attempt, Gate};
use self::store::{Enqueued, Store};
use crate::config::Triggers as Settings;
use crate::reload::Live;
use crate::service::ImageRequest;

/// Pushes waiting to be prepared, at most (beyond: dropped, counted).
const INBOX: usize = 1024;
/// How often an idle worker looks for deliveries other replicas left (with Redis).
const POLL: Duration = Duration::from_millis(250);

/// A push, as `POST /events` heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The account.
    pub account: String,
    /// The repository as the registry names it.
    pub repository: String,
    /// The tag pushed.
    pub tag: String,
    /// The pushed manifest's digest, when the event says (Quay's does not).
    pub digest: Option<String>,
}

/// A trigger waiting for Gate: its identity and the body to post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) account: String,
    pub(crate) repository: String,
    pub(crate) tag: String,
    pub(crate) digest: String,
    pub(crate) body: String,
    /// When it was queued (Unix milliseconds): `retrySeconds` counts from here, on any replica.
    pub(crate) since_millis: u64,
}

impl Pending {
    /// Whose pushes must go in order: one tag of one repository.
    pub(crate) fn tag_key(&self) -> String {
        format!("{}\0{}\0{}", self.account, self.repository, self.tag)
    }
}

/// The handle `POST /events` offers pushes to; the tasks stop when every handle is dropped.
#[derive(Debug, Clone)]
pub struct Triggers {
    inbox: mpsc::Sender<Push>,
    settings: Arc<Settings>,
    live: Arc<Live>,
    _stop: Arc<watch::Sender<()>>,
}

impl Triggers {
    /// Starts the preparing and delivering tasks on the current runtime.
    pub fn start(live: Arc<Live>, settings: Settings) -> Result<Triggers, String> {
        let gate = Gate::new(&settings)?;
        let store = match live.current().redis() {
            Some(redis) => Store::Redis(redis.clone()),
            None => Store::Memory(Arc::default()),
        };
        let settings = Arc::new(settings);
        let (inbox, pushes) = mpsc::channel(INBOX);
        let (stop, stopped) = watch::channel(());
        let wake = Arc::new(Notify::new());
        let worker = Worker {
            live: live.clone(),
            settings: settings.clone(),
            store,
            wake,
            stopped,
        };
        tokio::spawn(worker.clone().prepare(pushes));
        tokio::spawn(worker.deliver(gate));
        Ok(Triggers {
            inbox,
            settings,
            live,
            _stop: Arc::new(stop),
        })
    }

    /// Offers a push: filtered here, then queued without waiting (a full inbox drops it,
    /// counted and logged).
    pub fn offer(&self, push: Push) {
        let s = &self.settings;
        let wanted = (s.accounts.is_empty() || s.accounts.contains(&push.account))
            && (s.repositories.is_empty()
                || s.repositories
                    .iter()
                    .any(|r| r.is_match(push.repository.as_bytes())))
            && (s.tags.is_empty() || s.tags.iter().any(|r| r.is_match(push.tag.as_bytes())));
        let metrics = self.live.current().metrics().clone();
        if !wanted {
            metrics.trigger(&push.account, "filtered");
            return;
        }
        if let Err(e) = self.inbox.try_send(push) {
            let push = match e {
                mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => p,
            };
            tracing::warn!(account = %push.account, repository = %push.repository, tag = %push.tag, "trigger dropped: {INBOX} pushes already wait to be prepared");
            metrics.trigger(&push.account, "dropped");
        }
    }
}

/// What became of one delivery.
enum Outcome {
    /// Gate took it.
    Delivered,
    /// Gate refused it for good (a 4xx other than 429), with its reason.
    Refused(String),
    /// Gate did not take it within `retrySeconds`, with the last reason.
    GivenUp(String),
    /// Our hold ran out (Redis): another replica delivers it.
    Lost,
}

impl Outcome {
    /// The `dimsum_triggers_total` result.
    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Refused(_) => "refused",
            Outcome::GivenUp(_) => "given_up",
            Outcome::Lost => "lost",
        }
    }
}

#[derive(Clone)]
struct Worker {
    live: Arc<Live>,
    settings: Arc<Settings>,
    store: Store,
    wake: Arc<Notify>,
    stopped: watch::Receiver<()>,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Worker {
    /// Resolves once the handle is gone.
    async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        while stopped.changed().await.is_ok() {}
    }

    /// Waits `pause`; `false` when stopped meanwhile.
    async fn pause(&self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => true,
            () = self.stopped() => false,
        }
    }

    /// Prepares pushes one at a time, in the order they came.
    async fn prepare(self, mut pushes: mpsc::Receiver<Push>) {
        loop {
            let push = tokio::select! {
                push = pushes.recv() => match push { Some(p) => p, None => return },
                () = self.stopped() => return,
            };
            let metrics = self.live.current().metrics().clone();
            let Some(pending) = self.body(&push).await else {
                metrics.trigger(&push.account, "error");
                continue;
            };
            let key = format!(
                "{}\0{}\0{}\0{}",
                pending.account, pending.repository, pending.tag, pending.digest
            );
            let started = Instant::now();
            let mut attempts = 0;
            let result = loop {
                match self
                    .store
                    .enqueue(&key, &pending, self.settings.queue)
                    .await
                {
                    Enqueued::Unavailable if started.elapsed() < self.settings.retry => {
                        attempts += 1;
                        if !self.pause(gate::backoff(attempts)).await {
                            return;
                        }
                    }
                    other => break other,
                }
            };
            let (label, line) = match result {
                Enqueued::New => {
                    self.wake.notify_one();
                    ("queued", None)
                }
                Enqueued::Duplicate => ("duplicate", None),
                Enqueued::Full => (
                    "dropped",
                    Some(format!("{} deliveries already wait", self.settings.queue)),
                ),
                Enqueued::Unavailable => (
                    "given_up",
                    Some("Redis did not answer for retrySeconds".to_owned()),
                ),
            };
            if let Some(why) = line {
                tracing::warn!(account = %pending.account, repository = %pending.repository, tag = %pending.tag, digest = %pending.digest, "trigger {label}: {why}");
            } else {
                tracing::debug!(account = %pending.account, repository = %pending.repository, tag = %pending.tag, digest = %pending.digest, "trigger {label}");
            }
            metrics.trigger(&pending.account, label);
        }
    }

    /// The body Gate receives: labels and origin of the pushed digest, the parameters and the
    /// `docker/image` artifact by digest. `None` when no digest can be told (logged).
    async fn body(&self, push: &Push) -> Option<Pending> {
        let service = self.live.current();
        let reference = push.digest.as_deref().unwrap_or(&push.tag);
        let req = ImageRequest {
            account: &push.account,
            repository: &push.repository,
            reference,
            platform: None,
            digest: None,
            signed_by: None,
        };
        let origin = service.origin(req).await;
        let digest = match (&push.digest, &origin) {
            (Some(d), _) => d.clone(),
            (None, Ok(o)) => o.index_digest.clone().unwrap_or_else(|| o.digest.clone()),
            (None, Err(e)) => {
                tracing::warn!(account = %push.account, repository = %push.repository, tag = %push.tag, error = %e, "no trigger: the event names no digest and the image cannot be read");
                return None;
            }
        };
        let registry = service.registry_host(&push.account).unwrap_or_default();
        let name = format!("{registry}/{}", push.repository);
        let mut body = json!({
            "account": push.account,
            "registry": registry,
            "repository": push.repository,
            "tag": push.tag,
            "digest": digest,
            "parameters": {"account": push.account, "repository": push.repository, "tag": push.tag, "digest": digest},
            "artifacts": [{"type": "docker/image", "name": name, "version": push.tag, "reference": format!("{name}@{digest}")}],
        });
        match origin {
            Ok(o) => {
                body["labels"] = serde_json::from_str(o.labels.get()).unwrap_or(Value::Null);
                body["origin"] = serde_json::to_value(&*o).unwrap_or(Value::Null);
            }
            Err(e) => {
                tracing::warn!(account = %push.account, repository = %push.repository, tag = %push.tag, error = %e, "trigger without labels: the image cannot be read");
                body["labels"] = Value::Null;
                body["error"] = Value::String(e.to_string());
            }
        }
        Some(Pending {
            account: push.account.clone(),
            repository: push.repository.clone(),
            tag: push.tag.clone(),
            digest,
            body: body.to_string(),
            since_millis: now_millis(),
        })
    }

    /// Delivers queued triggers, oldest first, until stopped.
    async fn deliver(self, gate: Gate) {
        loop {
            if let Some(len) = self.store.len().await {
                self.live.current().metrics().triggers_queued(len);
            }
            let Some(held) = self.store.next(self.settings.lease).await else {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(POLL) => {}
                    () = self.stopped() => return,
                }
                continue;
            };
            let p = &held.pending;
            let metrics = self.live.current().metrics().clone();
            // Each attempt starts with the hold renewed and ends within half of it, so no other
            // replica can take the trigger over while a POST of it may still be on its way.
            let attempt_timeout = self.settings.lease / 2;
            let mut attempts = 0;
            let outcome = loop {
                if !self.store.renew(&held, self.settings.lease).await {
                    break Outcome::Lost;
                }
                let (after, why) = match gate.post(&p.body, attempt_timeout).await {
                    Attempt::Delivered => break Outcome::Delivered,
                    Attempt::Refused(why) => break Outcome::Refused(why),
                    Attempt::Retry(after, why) => (after, why),
                };
                attempts += 1;
                let queued_for = Duration::from_millis(now_millis().saturating_sub(p.since_millis));
                if queued_for >= self.settings.retry {
                    let secs = queued_for.as_secs();
                    break Outcome::GivenUp(format!(
                        "{why} after {attempts} attempts over {secs}s"
                    ));
                }
                tracing::debug!(account = %p.account, repository = %p.repository, tag = %p.tag, attempts, "Gate did not take the trigger ({why}); retrying");
                if !self
                    .pause(after.unwrap_or_else(|| gate::backoff(attempts)))
                    .await
                {
                    // Stopped mid-delivery: with Redis the lease runs out and another replica
                    // delivers; in memory the push is lost with the process (logged).
                    tracing::warn!(account = %p.account, repository = %p.repository, tag = %p.tag, "stopping with a trigger undelivered");
                    return;
                }
            };
            match &outcome {
                // Another replica holds it now (our lease ran out): it delivers.
                Outcome::Lost => continue,
                Outcome::Delivered => {
                    tracing::info!(account = %p.account, repository = %p.repository, tag = %p.tag, digest = %p.digest, "pipeline trigger posted to Gate")
                }
                Outcome::Refused(why) | Outcome::GivenUp(why) => {
                    tracing::error!(account = %p.account, repository = %p.repository, tag = %p.tag, digest = %p.digest, "pipeline trigger {}: {why}", outcome.label())
                }
            }
            metrics.trigger(&p.account, outcome.label());
            self.store.done(&held).await;
        }
    }
}
