//! The shared tier in Redis (`dimsum.redis`), the way Spinnaker's own services share state.
//!
//! Keys are `<prefix><kind>:<scope>:<name>`, the scope being a hash of the registry address, user
//! name, account and repository, so one identity's content never answers for another's; nothing
//! secret is ever stored (credentials and registry tokens stay in each process). Kinds:
//! `m` manifests and `b` config blobs by digest (kept 7 days, verified on every read and deleted
//! when they do not verify); `t` tag → digest with the writer's remaining freshness as the key's
//! expiry (Redis keeps the time, so replicas' clocks do not matter) and `h` the same as a hint
//! kept 7 days; `n` not-found answers; `l` fetch locks (`SET NX PX`, released by compare and
//! delete, expiring by themselves if their holder dies). Registry events go out on the channel
//! `<prefix>events`, tagged with the sender so it skips its own.
//!
//! **Never required.** Every command is bounded by `redis.timeoutMillis`; after a failure the
//! tier is skipped for [`BACKOFF`] (one slow answer, not one per lookup, while Redis is down), and
//! the connection is re-made in the background. The first failure and the recovery are logged
//! once each. While the event channel is not subscribed, [`Shared::hearing`] says so, and tags
//! fall back to live revalidation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::StreamExt as _;
use jsonrpsee::core::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::shared::{LOCK_LIFE, Lock, Scope, Shared, TagHint};
use crate::config::RedisSettings;
use crate::metrics::Metrics;
use crate::registry::{Digest, Fetched};

/// How long content stays in Redis after it was last written.
const CONTENT_SECONDS: u64 = 7 * 24 * 3600;
/// How long the tier is skipped after a failure.
const BACKOFF: Duration = Duration::from_secs(1);
/// Events from other replicas waiting to be applied, at most.
const EVENT_QUEUE: usize = 1024;

/// The Redis tier. Cheap to share; commands go over one multiplexed connection.
pub(crate) struct Redis {
    conn: ArcSwapOption<ConnectionManager>,
    client: Option<redis::Client>,
    prefix: String,
    timeout: Duration,
    /// Milliseconds since `epoch` until which the tier is skipped (0: not skipped).
    skip_until: AtomicU64,
    /// Whether the last command failed (so the recovery is logged once).
    failing: AtomicBool,
    epoch: Instant,
    hearing: AtomicBool,
    events: std::sync::Mutex<Option<mpsc::Receiver<String>>>,
    /// This process, on the events it publishes.
    origin: String,
    locks: AtomicU64,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects in the background (dimsum starts and answers whether Redis is up or not) and
    /// subscribes to the event channel.
    pub(crate) fn start(settings: &RedisSettings, metrics: Arc<Metrics>) -> Arc<Redis> {
        let mut url = settings.url.clone();
        if let Some(password) = &settings.password {
            let _ = url.set_password(Some(password.expose()));
        }
        let client = match redis::Client::open(url.as_str()) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(url = %settings.url, error = %e, "redis: unusable address; the shared tier is off");
                None
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let redis = Arc::new(Redis {
            conn: ArcSwapOption::empty(),
            client,
            prefix: settings.key_prefix.clone(),
            timeout: settings.timeout,
            skip_until: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            epoch: Instant::now(),
            hearing: AtomicBool::new(false),
            events: std::sync::Mutex::new(Some(rx)),
            origin: origin(),
            locks: AtomicU64::new(0),
            metrics,
        });
        if redis.client.is_some() {
            tokio::spawn(connect(Arc::downgrade(&redis)));
            tokio::spawn(subscribe(Arc::downgrade(&redis), tx));
        }
        redis
    }

    /// Events other replicas published, to apply here (given once).
    pub(crate) fn take_events(&self) -> Option<mpsc::Receiver<String>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn key(&self, kind: &str, scope: &Scope, name: &str) -> String {
        let hash = Sha256::digest(scope.0.as_bytes());
        format!("{}{kind}:{}:{name}", self.prefix, hex::encode(&hash[..16]))
    }

    fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// `<prefix><name>`: a key outside any scope (the trigger queue).
    pub(crate) fn global_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// This process's name among the replicas.
    pub(crate) fn replica(&self) -> &str {
        &self.origin
    }

    /// Runs one command (or pipeline) within the timeout; `None` when skipped or failed.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        cmd: &impl Query,
    ) -> Option<T> {
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.skip_until.load(Ordering::Relaxed) {
            return None;
        }
        let mut conn = (*self.conn.load_full()?).clone();
        let result = tokio::time::timeout(self.timeout, cmd.query(&mut conn)).await;
        match result {
            Ok(Ok(v)) => {
                self.recovered();
                Some(v)
            }
            Ok(Err(e)) => {
                self.fail(what, &e.to_string());
                None
            }
            Err(_) => {
                self.fail(what, "timed out");
                None
            }
        }
    }

    fn recovered(&self) {
        self.skip_until.store(0, Ordering::Relaxed);
        self.metrics.shared_up(true);
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::warn!("redis: reachable again; sharing resumes");
        }
    }

    fn fail(&self, what: &'static str, error: &str) {
        self.metrics.shared(what, "error");
        self.metrics.shared_up(false);
        let until = self.epoch.elapsed() + BACKOFF;
        self.skip_until
            .store(until.as_millis() as u64, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "redis: unreachable; answering from memory and the registry until it is back"
            );
        }
    }
}

/// Commands and pipelines alike.
pub(crate) trait Query: Sync {
    /// Sends it on `conn`.
    fn query<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl std::future::Future<Output = redis::RedisResult<T>> + Send;
}

impl Query for redis::Cmd {
    fn query<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl std::future::Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Query for redis::Pipeline {
    fn query<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl std::future::Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

/// A name for this process among the replicas.
fn origin() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let hash = Sha256::digest(format!("{}:{nanos}", std::process::id()));
    hex::encode(&hash[..8])
}

/// Makes the connection, retrying with backoff until it exists (then the connection manager
/// reconnects by itself), then pings every [`BACKOFF`], so a Redis that came back is used again
/// at once rather than after the next failed lookup.
async fn connect(redis: std::sync::Weak<Redis>) {
    make_connection(redis.clone()).await;
    loop {
        tokio::time::sleep(BACKOFF).await;
        let Some(r) = redis.upgrade() else { return };
        let Some(conn) = r.conn.load_full() else {
            return;
        };
        let mut conn = (*conn).clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(r.timeout, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => r.recovered(),
            Ok(Err(e)) => r.fail("ping", &e.to_string()),
            Err(_) => r.fail("ping", "timed out"),
        }
    }
}

async fn make_connection(redis: std::sync::Weak<Redis>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(r) = redis.upgrade() else { return };
        let Some(client) = r.client.clone() else {
            return;
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(r.timeout))
            .set_number_of_retries(1);
        match client.get_connection_manager_with_config(config).await {
            Ok(conn) => {
                r.conn.store(Some(Arc::new(conn)));
                r.recovered();
                tracing::info!("redis: connected");
                return;
            }
            Err(e) => {
                if !r.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "redis: cannot connect yet; answering from memory and the registry meanwhile");
                }
            }
        }
        drop(r);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Keeps a subscription to the event channel, forwarding other replicas' events.
async fn subscribe(redis: std::sync::Weak<Redis>, events: mpsc::Sender<String>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let Some(r) = redis.upgrade() else { return };
        let Some(client) = r.client.clone() else {
            return;
        };
        let (channel, origin) = (r.channel(), r.origin.clone());
        drop(r);
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(mut pubsub)) = tokio::time::timeout(Duration::from_secs(2), subscribed).await {
            if let Some(r) = redis.upgrade() {
                r.hearing.store(true, Ordering::Relaxed);
            }
            tracing::info!("redis: hearing other replicas' registry events");
            delay = Duration::from_millis(100);
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                let Some((from, event)) = payload.split_once('\n') else {
                    continue;
                };
                if from != origin {
                    let _ = events.try_send(event.to_owned());
                }
            }
            if let Some(r) = redis.upgrade() {
                r.hearing.store(false, Ordering::Relaxed);
            }
            tracing::warn!("redis: event channel lost; tags are revalidated live until it is back");
        }
        if events.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn set_ex(key: String, value: &[u8], seconds: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value).arg("EX").arg(seconds);
    cmd
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Shared for Redis {
    async fn manifest(&self, scope: &Scope, digest: &Digest) -> Option<Fetched> {
        let key = self.key("m", scope, digest.as_str());
        // A missing key is nil, not empty bytes: only a present value can fail verification.
        let mut value: Vec<u8> = self
            .run::<Option<Vec<u8>>>("manifest", redis::cmd("GET").arg(&key))
            .await??;
        let newline = value.iter().position(|b| *b == b'\n')?;
        let bytes = value.split_off(newline + 1);
        let media_type = std::str::from_utf8(&value[..newline]).ok()?;
        let fetched = Fetched::verified(media_type, bytes, digest);
        if fetched.is_none() {
            tracing::warn!(%digest, "redis: a manifest did not match its digest; discarded");
            self.metrics.shared("manifest", "discarded");
            let _: Option<i64> = self.run("manifest", redis::cmd("DEL").arg(&key)).await;
        }
        fetched
    }

    async fn put_manifest(&self, scope: &Scope, fetched: &Fetched) {
        let key = self.key("m", scope, fetched.digest.as_str());
        let mut value = fetched.manifest.media_type().as_bytes().to_vec();
        value.push(b'\n');
        value.extend_from_slice(&fetched.bytes);
        let _: Option<()> = self
            .run("manifest", &set_ex(key, &value, CONTENT_SECONDS))
            .await;
    }

    async fn blob(&self, scope: &Scope, digest: &Digest) -> Option<Vec<u8>> {
        let key = self.key("b", scope, digest.as_str());
        let bytes: Vec<u8> = self
            .run::<Option<Vec<u8>>>("blob", redis::cmd("GET").arg(&key))
            .await??;
        if digest.verifies(&bytes) {
            return Some(bytes);
        }
        tracing::warn!(%digest, "redis: a blob did not match its digest; discarded");
        self.metrics.shared("blob", "discarded");
        let _: Option<i64> = self.run("blob", redis::cmd("DEL").arg(&key)).await;
        None
    }

    async fn put_blob(&self, scope: &Scope, digest: &Digest, bytes: &[u8]) {
        let key = self.key("b", scope, digest.as_str());
        let _: Option<()> = self.run("blob", &set_ex(key, bytes, CONTENT_SECONDS)).await;
    }

    async fn tag(&self, scope: &Scope, tag: &str) -> Option<TagHint> {
        let (fresh, hint) = (self.key("t", scope, tag), self.key("h", scope, tag));
        let mut pipe = redis::pipe();
        pipe.cmd("GET")
            .arg(&fresh)
            .cmd("PTTL")
            .arg(&fresh)
            .cmd("GET")
            .arg(&hint);
        let (digest, ttl, seen): (Option<String>, i64, Option<String>) =
            self.run("tag", &pipe).await?;
        match (
            digest.as_deref().and_then(Digest::parse),
            u64::try_from(ttl),
        ) {
            (Some(d), Ok(ms)) if ms > 0 => Some(TagHint::Fresh(d, Duration::from_millis(ms))),
            _ => seen.as_deref().and_then(Digest::parse).map(TagHint::Seen),
        }
    }

    async fn put_tag(&self, scope: &Scope, tag: &str, digest: &Digest, fresh_for: Duration) {
        let value = digest.as_str().as_bytes();
        let mut pipe = redis::pipe();
        pipe.add_command(set_ex(self.key("h", scope, tag), value, CONTENT_SECONDS));
        if !fresh_for.is_zero() {
            pipe.cmd("SET")
                .arg(self.key("t", scope, tag))
                .arg(value)
                .arg("PX")
                .arg(millis(fresh_for));
        }
        let _: Option<()> = self.run("tag", pipe.ignore()).await;
    }

    async fn forget_tag(&self, scope: &Scope, tag: &str) {
        let keys = [self.key("t", scope, tag), self.key("h", scope, tag)];
        let _: Option<i64> = self.run("tag", redis::cmd("DEL").arg(&keys)).await;
    }

    async fn not_found(&self, scope: &Scope, what: &str) -> Option<String> {
        let key = self.key("n", scope, what);
        self.run("not_found", redis::cmd("GET").arg(key)).await?
    }

    async fn put_not_found(&self, scope: &Scope, what: &str, detail: &str, fresh_for: Duration) {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("n", scope, what))
            .arg(detail)
            .arg("PX")
            .arg(millis(fresh_for));
        let _: Option<()> = self.run("not_found", &cmd).await;
    }

    async fn forget_not_found(&self, scope: &Scope, what: &str) {
        let key = self.key("n", scope, what);
        let _: Option<i64> = self.run("not_found", redis::cmd("DEL").arg(key)).await;
    }

    async fn lock(&self, scope: &Scope, what: &str) -> Lock {
        let token = format!(
            "{}-{}",
            self.origin,
            self.locks.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("l", scope, what))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(millis(LOCK_LIFE));
        match self.run::<Option<String>>("lock", &cmd).await {
            Some(Some(_)) => Lock::Held(token),
            Some(None) => Lock::Elsewhere,
            None => Lock::None,
        }
    }

    async fn unlock(&self, scope: &Scope, what: &str, token: &str) {
        // Only the holder's own lock: after an expiry another process may hold it.
        let mut cmd = redis::cmd("EVAL");
        cmd.arg("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end")
            .arg(1)
            .arg(self.key("l", scope, what))
            .arg(token);
        let _: Option<i64> = self.run("lock", &cmd).await;
    }

    async fn publish(&self, event: &str) {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel())
            .arg(format!("{}\n{event}", self.origin));
        let _: Option<i64> = self.run("publish", &cmd).await;
    }

    fn hearing(&self) -> Option<bool> {
        Some(self.hearing.load(Ordering::Relaxed))
    }
}
