//! Where pending triggers wait, and who has claimed what: this process's memory, or Redis for a
//! fleet (one claim per push whichever replica heard it, and pending deliveries that outlive the
//! replica that claimed them).
//!
//! Redis keys: `<prefix>trigger:c:<hash>` the claim of one (account, repository, tag, digest),
//! kept [`CLAIM_SECONDS`]; `<prefix>triggers` a sorted set of pending bodies scored by a
//! fleet-wide sequence (`<prefix>triggers:seq`), so they are delivered in the order they were
//! claimed; `<prefix>trigger:l:<hash>` a lease per tag (`SET NX PX`, renewed while delivering,
//! released by compare-and-delete), so one replica at a time delivers a tag's pushes, in order,
//! and a dead replica's delivery is taken over when its lease runs out.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::Pending;
use crate::cache::redis::Redis;

/// How long a claim is remembered: a re-push of the same digest to the same tag within it starts
/// nothing (a week: registries redeliver for hours at most).
pub(crate) const CLAIM_SECONDS: u64 = 7 * 24 * 3600;
/// Claims remembered in memory at most.
const MEMORY_CLAIMS: u64 = 100_000;

/// What offering a trigger came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueued {
    /// Claimed and queued.
    New,
    /// Already claimed (a redelivery, another replica, a re-push of the same digest).
    Duplicate,
    /// The queue is full: not claimed, so a redelivery may try again.
    Full,
    /// The fleet's store does not answer: try again later.
    Unavailable,
}

/// Claims `KEYS[1]` and queues `ARGV[4]` in `KEYS[2]` at the next `KEYS[3]` sequence number, in
/// one step (a replica dying between the two would lose the push); 1 new, 0 duplicate, -1 full.
const ENQUEUE: &str = "if redis.call('exists', KEYS[1]) == 1 then return 0 end \
if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end \
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) \
redis.call('zadd', KEYS[2], redis.call('incr', KEYS[3]), ARGV[4]) \
return 1";

/// The store of claims and pending triggers.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// One process.
    Memory(Arc<Memory>),
    /// A fleet sharing Redis.
    Redis(Arc<Redis>),
}

/// The in-memory store.
#[derive(Debug)]
pub(crate) struct Memory {
    claims: moka::sync::Cache<String, ()>,
    /// A std `Mutex`: held for queue operations only, never across an `.await`.
    queue: Mutex<VecDeque<Pending>>,
}

impl Default for Memory {
    fn default() -> Memory {
        Memory {
            claims: moka::sync::Cache::builder()
                .max_capacity(MEMORY_CLAIMS)
                .time_to_live(Duration::from_secs(CLAIM_SECONDS))
                .build(),
            queue: Mutex::default(),
        }
    }
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

impl Store {
    /// Claims `key` (account, repository, tag, digest) and queues `pending`, unless it was
    /// claimed before or `limit` triggers wait.
    pub(crate) async fn enqueue(&self, key: &str, pending: &Pending, limit: usize) -> Enqueued {
        match self {
            Store::Memory(m) => {
                let mut queue = m.queue.lock().unwrap_or_else(|e| e.into_inner());
                if m.claims.contains_key(key) {
                    return Enqueued::Duplicate;
                }
                if queue.len() >= limit {
                    return Enqueued::Full;
                }
                m.claims.insert(key.to_owned(), ());
                queue.push_back(pending.clone());
                Enqueued::New
            }
            Store::Redis(r) => {
                let Ok(member) = serde_json::to_string(pending) else {
                    return Enqueued::Unavailable;
                };
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(ENQUEUE)
                    .arg(3)
                    .arg(r.global_key(&format!("trigger:c:{}", hash(key))))
                    .arg(r.global_key("triggers"))
                    .arg(r.global_key("triggers:seq"))
                    .arg(r.replica())
                    .arg(CLAIM_SECONDS)
                    .arg(limit)
                    .arg(member);
                match r.run::<i64>("trigger", &cmd).await {
                    Some(1) => Enqueued::New,
                    Some(0) => Enqueued::Duplicate,
                    Some(_) => Enqueued::Full,
                    None => Enqueued::Unavailable,
                }
            }
        }
    }

    /// How many wait (`None`: unknown now).
    pub(crate) async fn len(&self) -> Option<usize> {
        match self {
            Store::Memory(m) => Some(m.queue.lock().unwrap_or_else(|e| e.into_inner()).len()),
            Store::Redis(r) => r
                .run::<i64>("trigger", redis::cmd("ZCARD").arg(r.global_key("triggers")))
                .await
                .map(|n| n.max(0) as usize),
        }
    }

    /// The next trigger to deliver, held for `lease`: the oldest whose tag nobody is delivering,
    /// and never a later push of a tag before its earlier one.
    pub(crate) async fn next(&self, lease: Duration) -> Option<Held> {
        match self {
            Store::Memory(m) => {
                let front = m
                    .queue
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .front()
                    .cloned()?;
                Some(Held {
                    member: String::new(),
                    lease: None,
                    pending: front,
                })
            }
            Store::Redis(r) => {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(r.global_key("triggers")).arg(0).arg(99);
                let members: Vec<String> = r.run("trigger", &cmd).await?;
                let mut seen = HashSet::new();
                for member in members {
                    let Ok(pending) = serde_json::from_str::<Pending>(&member) else {
                        // Not ours to read (another version): leave it to its writer.
                        continue;
                    };
                    let tag = pending.tag_key();
                    if !seen.insert(tag.clone()) {
                        continue;
                    }
                    let lease_key = r.global_key(&format!("trigger:l:{}", hash(&tag)));
                    let token = format!("{}:{}", r.replica(), hash(&member));
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&lease_key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(lease));
                    if let Some(Some(_)) = r.run::<Option<String>>("trigger", &cmd).await {
                        // Delivered by another replica between our read and our lease?
                        let mut still = redis::cmd("ZSCORE");
                        still.arg(r.global_key("triggers")).arg(&member);
                        if r.run::<Option<f64>>("trigger", &still)
                            .await
                            .flatten()
                            .is_none()
                        {
                            self.release(&lease_key, &token).await;
                            continue;
                        }
                        return Some(Held {
                            member,
                            lease: Some((lease_key, token)),
                            pending,
                        });
                    }
                }
                None
            }
        }
    }

    /// Keeps holding `held` for another `lease`; `false` if the hold was lost.
    pub(crate) async fn renew(&self, held: &Held, lease: Duration) -> bool {
        let (Store::Redis(r), Some((key, token))) = (self, &held.lease) else {
            return true;
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
            .arg(1)
            .arg(key)
            .arg(token)
            .arg(millis(lease));
        // Redis unreachable: nobody else can take it either; keep going.
        r.run::<i64>("trigger", &cmd).await.is_none_or(|n| n == 1)
    }

    /// `held` is done (delivered, refused or given up): off the queue, its lease released.
    pub(crate) async fn done(&self, held: &Held) {
        match self {
            Store::Memory(m) => {
                let mut queue = m.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.front() == Some(&held.pending) {
                    queue.pop_front();
                }
            }
            Store::Redis(r) => {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(r.global_key("triggers")).arg(&held.member);
                let _: Option<i64> = r.run("trigger", &cmd).await;
                if let Some((key, token)) = &held.lease {
                    self.release(key, token).await;
                }
            }
        }
    }

    async fn release(&self, key: &str, token: &str) {
        if let Store::Redis(r) = self {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end")
                .arg(1)
                .arg(key)
                .arg(token);
            let _: Option<i64> = r.run("trigger", &cmd).await;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A pending trigger this process is delivering.
#[derive(Debug)]
pub(crate) struct Held {
    /// Its member in Redis's sorted set.
    member: String,
    /// The tag's lease key and our token, with Redis.
    lease: Option<(String, String)>,
    /// What to deliver.
    pub(crate) pending: Pending,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(tag: &str, digest: &str) -> Pending {
        Pending {
            account: "a".into(),
            repository: "r".into(),
            tag: tag.into(),
            digest: digest.into(),
            body: format!("{{\"tag\":\"{tag}\"}}"),
            since_millis: 0,
        }
    }

    #[tokio::test]
    async fn memory_claims_once_and_delivers_in_order() {
        let store = Store::Memory(Arc::default());
        let (d1, d2, d3) = (
            pending("v1", "d1"),
            pending("v1", "d2"),
            pending("v1", "d3"),
        );
        assert_eq!(store.enqueue("v1 d1", &d1, 2).await, Enqueued::New);
        assert_eq!(store.enqueue("v1 d1", &d1, 2).await, Enqueued::Duplicate);
        assert_eq!(store.enqueue("v1 d2", &d2, 2).await, Enqueued::New);
        assert_eq!(store.enqueue("v1 d3", &d3, 2).await, Enqueued::Full);
        assert_eq!(store.len().await, Some(2));
        let first = store.next(Duration::from_secs(1)).await.unwrap();
        assert_eq!(first.pending.digest, "d1");
        store.done(&first).await;
        assert_eq!(
            store
                .next(Duration::from_secs(1))
                .await
                .unwrap()
                .pending
                .digest,
            "d2"
        );
        // Not claimed while full: a redelivery of that push may still be queued.
        assert_eq!(store.enqueue("v1 d3", &d3, 2).await, Enqueued::New);
    }
}
