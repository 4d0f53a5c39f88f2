//! The `dimsum:` section: dimsum's own settings (Clouddriver ignores it), validated with every
//! problem collected. Unknown keys are an error here, because they are ours.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::scalar::Scalar;
use super::{DEFAULT_CALL_TIMEOUT, io_message};
use crate::credentials::Secret;
use crate::origin::signature::CosignKey;
use crate::registry::Limits;
use crate::sigstore::cert::CLAIMS;
use crate::sigstore::root::TrustedRoot;
use crate::sigstore::{IdentityPolicy, Matcher};

/// The `dimsum:` section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bound on one whole call (`callTimeoutMillis`, default 15000).
    pub call_timeout: Duration,
    /// Size caps and retries for registry requests.
    pub limits: Limits,
    /// Cache sizes and lifetimes.
    pub cache: CacheSettings,
    /// The shared tier for `serve` and `stdio` (`dimsum.redis`), if configured.
    pub redis: Option<RedisSettings>,
    /// The bearer token callers of the TCP transport must send, if set (`auth.tokenFile`).
    pub api_token: Option<crate::credentials::Secret>,
    /// Registry notifications on `POST /events`, when `events.tokenFile` is set.
    pub events: Option<Events>,
    /// Connection and request bounds of `serve` (read at start; a reload does not change them).
    pub server: ServerLimits,
    /// Keys image signatures are verified with (`trust.cosignKeys`).
    pub cosign_keys: Vec<CosignKey>,
    /// The Sigstore root and the identities keyless signatures are checked against
    /// (`trust.sigstore`, `trust.identities`).
    pub sigstore: crate::sigstore::Trust,
    /// Notation's trust policy and store (`trust.notation`), if configured.
    pub notation: Option<Arc<crate::notation::policy::Notation>>,
    /// Pipelines started from pushes (`triggers`), if configured (read at start).
    pub triggers: Option<Triggers>,
    /// Tokens that name who calls (`auth.tokens`): a user, or a delegate naming the user.
    pub callers: Vec<CallerToken>,
    /// Spinnaker's `services.fiat`, when `enabled` (read at start).
    pub fiat: Option<FiatSettings>,
}

/// One `dimsum.auth.tokens` entry: a token, and who its holder is.
#[derive(Debug, Clone)]
pub struct CallerToken {
    /// The token (first line of `tokenFile`).
    pub token: Secret,
    /// Who calls with it.
    pub who: Who,
}

/// Who a token's holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Always this user (scripts, JSON-RPC clients).
    User(String),
    /// Whoever `X-Dimsum-User` names (Orca's stage); `anonymous` when it names nobody.
    Delegate,
}

/// Spinnaker's `services.fiat`: where account permissions are asked, in Spinnaker's own names
/// (fiat.md A1), with timeouts that fit in `callTimeoutMillis`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiatSettings {
    /// `baseUrl`, e.g. `http://spin-fiat.spinnaker:7003`.
    pub base_url: Url,
    /// `connectTimeoutMs` (default 2000).
    pub connect_timeout: Duration,
    /// `readTimeoutMs` (default 3000).
    pub read_timeout: Duration,
    /// `cache.maxEntries` (default 1000): users whose view is kept.
    pub max_entries: u64,
    /// `cache.expiresAfterWriteSeconds` (default 20): how long a view is believed.
    pub expires_after_write: Duration,
}

/// `dimsum.triggers`: where pushes are posted to start pipelines, and which.
#[derive(Debug, Clone)]
pub struct Triggers {
    /// Gate's webhook URL, e.g. `http://spin-gate.spinnaker:8084/webhooks/webhook/dimsum`.
    pub url: Url,
    /// The `Authorization` value for Gate (`Bearer …` from `tokenFile`, or Basic from `username`
    /// and `passwordFile`), if any.
    pub authorization: Option<Secret>,
    /// PEM certificates of a private CA Gate's certificate is issued by (`caFile`).
    pub ca_pem: Option<Vec<u8>>,
    /// Accounts whose pushes start pipelines; empty: all.
    pub accounts: Vec<String>,
    /// Repositories (anchored regular expressions); empty: all.
    pub repositories: Vec<regex::bytes::Regex>,
    /// Tags (anchored regular expressions); empty: all.
    pub tags: Vec<regex::bytes::Regex>,
    /// How long a delivery is retried while Gate is down or answers 5xx/429 (`retrySeconds`).
    pub retry: Duration,
    /// Pending deliveries held at most (`queue`); beyond it a push is dropped, counted and logged.
    pub queue: usize,
    /// With Redis: how long a replica's hold on a delivery lasts without renewal
    /// (`leaseMillis`); another replica takes over a dead one's after it. Each POST is bounded by
    /// half of it, so a hold never runs out while a POST may still arrive.
    pub lease: Duration,
}

/// The default trust in a tag or a not-found answer: what the original dimsum, which asked the
/// registry on every request, never exceeded by more than this.
pub const LIVE: Duration = Duration::from_secs(1);

/// `dimsum.cache`: sizes and lifetimes of what is kept in memory (and shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Upper bound on cached content, in bytes.
    pub max_bytes: u64,
    /// How long a tag → digest mapping is trusted without asking the registry.
    pub tag_ttl: Duration,
    /// How long a not-found answer is remembered.
    pub negative_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> CacheSettings {
        CacheSettings {
            max_bytes: 16 * 1024 * 1024,
            tag_ttl: LIVE,
            negative_ttl: LIVE,
        }
    }
}

/// `dimsum.redis`: the tier replicas share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://host:port/db` or `rediss://…` (TLS), without a password.
    pub url: Url,
    /// Its password (`passwordFile`, first line), if any.
    pub password: Option<Secret>,
    /// Prefix of every key and channel, so several installations can share one Redis.
    pub key_prefix: String,
    /// Bound on each Redis command; past it, the shared tier is skipped.
    pub timeout: Duration,
}

/// `dimsum.server`: what one client may hold of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Client sockets at once (`maxConnections`); beyond it a new one is closed at once.
    pub max_connections: usize,
    /// From a connection's start, or the end of its previous answer, until the next request's
    /// headers are complete (`headerTimeoutMillis`): slow headers and idle keep-alive
    /// connections are closed after it.
    pub header_timeout: Duration,
    /// For a JSON-RPC request's body to arrive (`bodyTimeoutMillis`); then 408.
    pub body_timeout: Duration,
    /// For a whole request before it is answered 503 (`requestTimeoutMillis`; lookups have
    /// `callTimeoutMillis`, shorter).
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_request_bytes: u32,
    /// How long shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_request_bytes: 1024 * 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// `dimsum.events`: what registry notifications are trusted to do.
#[derive(Debug, Clone)]
pub struct Events {
    /// The bearer token registries must send (never the API token: registries are other callers).
    pub token: Secret,
    /// Whether a pushed tag's manifest, config and history are fetched at once.
    pub prefetch: bool,
    /// How long after an account's registry last sent an event its tags are still trusted for
    /// `cache.tagTtlSeconds`; past it, the account falls back to live revalidation.
    pub quiet: Duration,
}

/// Default of `events.quietSeconds`.
pub const DEFAULT_EVENTS_QUIET: Duration = Duration::from_secs(600);

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            limits: Limits::default(),
            cache: CacheSettings::default(),
            redis: None,
            api_token: None,
            events: None,
            server: ServerLimits::default(),
            cosign_keys: Vec::new(),
            sigstore: crate::sigstore::Trust::default(),
            notation: None,
            triggers: None,
            callers: Vec::new(),
            fiat: None,
        }
    }
}

/// `dimsum:`; unknown keys are an error because they are ours ([`RawSettings::read`]).
#[derive(Debug, Default)]
pub(super) struct RawSettings {
    /// Bound on one whole call in milliseconds. Default 15000.
    call_timeout_millis: Scalar<u64>,
    /// Largest manifest accepted. Default 4 MiB.
    max_manifest_bytes: Scalar<u64>,
    /// Largest config blob accepted. Default 8 MiB.
    max_config_bytes: Scalar<u64>,
    /// Retries of a failed upstream request (connection errors, 429, 5xx). Default 2.
    retries: Scalar<u64>,
    /// Cache sizes and lifetimes.
    cache: RawCache,
    /// Authentication of callers of `serve`.
    auth: RawAuth,
    /// Registry notifications (`POST /events`).
    events: RawEvents,
    /// Connection and request bounds of `serve`.
    server: RawServer,
    /// The shared tier (Spinnaker's Redis).
    redis: Option<RawRedis>,
    /// Keys signatures are checked with.
    trust: RawTrust,
    /// Pipelines started from registry pushes.
    triggers: Option<RawTriggers>,
}

/// `dimsum.triggers`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTriggers {
    /// Gate's webhook URL (`…/webhooks/webhook/<source>`). Required.
    url: Option<String>,
    /// File whose first line is a bearer token for Gate.
    token_file: Option<PathBuf>,
    /// Basic user for Gate, with `passwordFile`.
    username: Option<String>,
    /// File holding the Basic password (trailing whitespace trimmed).
    password_file: Option<PathBuf>,
    /// PEM file of the CA that issued Gate's certificate.
    ca_file: Option<PathBuf>,
    /// Accounts whose pushes start pipelines. Default: all.
    #[serde(default)]
    accounts: Vec<String>,
    /// Repository patterns (anchored regular expressions). Default: all.
    #[serde(default)]
    repositories: Vec<String>,
    /// Tag patterns (anchored regular expressions). Default: all.
    #[serde(default)]
    tags: Vec<String>,
    /// Seconds a delivery is retried through connection errors, 5xx and 429. Default 600.
    #[serde(default)]
    retry_seconds: Scalar<u64>,
    /// Pending deliveries held at most. Default 1024.
    #[serde(default)]
    queue: Scalar<u64>,
    /// Milliseconds a replica's hold on a delivery lasts unrenewed (with Redis); each POST to
    /// Gate is bounded by half of it (and by 10 s). Default 20000.
    #[serde(default)]
    lease_millis: Scalar<u64>,
}

/// `dimsum.trust`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTrust {
    /// `[{name, publicKeyFile}]`: PEM ECDSA P-256 public keys, as `cosign generate-key-pair`
    /// writes `cosign.pub`; `name` is what `signedBy` names.
    #[serde(default)]
    cosign_keys: Vec<RawCosignKey>,
    /// The Sigstore instance keyless signatures come from.
    #[serde(default)]
    sigstore: RawSigstore,
    /// `[{name, issuer | issuerRegExp, subject | subjectRegExp, <Fulcio claim>: value…}]`: who
    /// may sign keyless; `name` is what `signedBy` names.
    #[serde(default)]
    identities: Vec<BTreeMap<String, String>>,
    /// Notation's own files: `{trustPolicyFile, trustStoreDir}`.
    notation: Option<RawNotation>,
}

/// `dimsum.trust.notation`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawNotation {
    /// `trustpolicy.json`, version 1.0. Required.
    trust_policy_file: Option<PathBuf>,
    /// The directory holding `x509/{ca,signingAuthority,tsa}/<name>/`. Required.
    trust_store_dir: Option<PathBuf>,
}

/// `dimsum.trust.sigstore`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSigstore {
    /// A `trusted_root.json`. Default: the public-good root built into dimsum.
    trusted_root_file: Option<PathBuf>,
    /// Whether a leaf must carry an SCT verified against the root's CT logs. Default true.
    #[serde(default)]
    require_sct: Scalar<bool>,
}

/// One `trust.cosignKeys` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCosignKey {
    /// The name `signedBy` uses. Required, unique.
    name: Option<String>,
    /// The PEM public key file. Required; read at load.
    public_key_file: Option<PathBuf>,
}

/// `dimsum.redis`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRedis {
    /// `redis://host:6379[/db]` or `rediss://…`. Required.
    url: Option<String>,
    /// File whose first line is the password (Spinnaker's `spin-redis` has none by default).
    password_file: Option<PathBuf>,
    /// Prefix of every key and channel. Default `dimsum:`.
    key_prefix: Option<String>,
    /// Milliseconds one Redis command may take before it is given up. Default 200.
    #[serde(default)]
    timeout_millis: Scalar<u64>,
}

/// `dimsum.server`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawServer {
    /// Client sockets at once. Default 1024.
    #[serde(default)]
    max_connections: Scalar<u64>,
    /// Milliseconds for a request's headers to arrive, counted from the connection's start or
    /// the previous answer (so also the keep-alive idle limit). Default 10000.
    #[serde(default)]
    header_timeout_millis: Scalar<u64>,
    /// Milliseconds for a JSON-RPC request's body to arrive. Default 10000.
    #[serde(default)]
    body_timeout_millis: Scalar<u64>,
    /// Milliseconds for a whole request. Default 30000.
    #[serde(default)]
    request_timeout_millis: Scalar<u64>,
}

/// `dimsum.events`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEvents {
    /// File whose first line (trimmed, at least 16 characters) is the token registries send as
    /// `Authorization: Bearer <token>` (or `?token=` where they cannot send headers). Unset:
    /// `/events` does not exist.
    token_file: Option<PathBuf>,
    /// Fetch a pushed tag's manifest, config and history at once. Default true.
    #[serde(default)]
    prefetch: Scalar<bool>,
    /// Seconds after an account's last event that its tags are still trusted for
    /// `cache.tagTtlSeconds`; after that, live revalidation (1 s). Default 600.
    #[serde(default)]
    quiet_seconds: Scalar<u64>,
}

/// `dimsum.auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawAuth {
    /// File whose first line (trimmed) is the bearer token every REST and JSON-RPC caller of
    /// `serve` must send (`Authorization: Bearer <token>`); `/healthz` and `/readyz` are exempt.
    /// Its holder is `anonymous` to Fiat.
    token_file: Option<PathBuf>,
    /// More tokens, each naming who holds it: `[{tokenFile, user}]` or
    /// `[{tokenFile, delegate: true}]`.
    #[serde(default)]
    tokens: Vec<RawCallerToken>,
}

/// One `dimsum.auth.tokens` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCallerToken {
    token_file: Option<PathBuf>,
    user: Option<String>,
    #[serde(default)]
    delegate: Scalar<bool>,
}

/// Spinnaker's `services.fiat` (Spring's relaxed names: camelCase or kebab-case). Keys dimsum
/// does not use (`legacyFallback`, `refreshable`, `retry`) are Spinnaker's and accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFiat {
    #[serde(default)]
    enabled: Scalar<bool>,
    #[serde(alias = "base-url")]
    base_url: Option<String>,
    #[serde(default, alias = "connect-timeout-ms")]
    connect_timeout_ms: Scalar<u64>,
    #[serde(default, alias = "read-timeout-ms")]
    read_timeout_ms: Scalar<u64>,
    #[serde(default)]
    cache: RawFiatCache,
    #[serde(default, alias = "legacy-fallback")]
    legacy_fallback: Scalar<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFiatCache {
    #[serde(default, alias = "max-entries")]
    max_entries: Scalar<u64>,
    #[serde(default, alias = "expires-after-write-seconds")]
    expires_after_write_seconds: Scalar<u64>,
}

/// `services.fiat`, when enabled: every problem pushed, as for `dimsum:`.
pub(super) fn fiat(
    section: Option<&serde_yaml::Value>,
    problems: &mut Vec<String>,
) -> Option<FiatSettings> {
    let raw: RawFiat = match section {
        None => return None,
        Some(v) => serde_yaml::from_value(v.clone()).unwrap_or_else(|e| {
            problems.push(format!("services.fiat: {e}"));
            RawFiat::default()
        }),
    };
    let enabled = raw.enabled.get("services.fiat.enabled", problems);
    let connect = raw
        .connect_timeout_ms
        .positive("services.fiat.connectTimeoutMs", problems);
    let read = raw
        .read_timeout_ms
        .positive("services.fiat.readTimeoutMs", problems);
    let max_entries = raw
        .cache
        .max_entries
        .positive("services.fiat.cache.maxEntries", problems);
    let ttl = raw
        .cache
        .expires_after_write_seconds
        .get("services.fiat.cache.expiresAfterWriteSeconds", problems);
    if raw
        .legacy_fallback
        .get("services.fiat.legacyFallback", problems)
        == Some(true)
    {
        tracing::warn!("services.fiat.legacyFallback is not honoured: a failed check is a refusal");
    }
    if enabled != Some(true) {
        return None;
    }
    let base_url = match raw.base_url.as_deref().map(Url::parse) {
        Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        Some(_) => {
            problems.push("services.fiat.baseUrl must be an http(s) URL, e.g. http://spin-fiat.spinnaker:7003".to_owned());
            return None;
        }
        None => {
            problems.push(
                "services.fiat.baseUrl is required when services.fiat.enabled is true".to_owned(),
            );
            return None;
        }
    };
    Some(FiatSettings {
        base_url,
        connect_timeout: Duration::from_millis(connect.unwrap_or(2000)),
        read_timeout: Duration::from_millis(read.unwrap_or(3000)),
        max_entries: max_entries.unwrap_or(1000),
        expires_after_write: Duration::from_secs(ttl.unwrap_or(20)),
    })
}

/// `dimsum.cache`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCache {
    /// Upper bound on cached manifests, configs and histories, in bytes. Default 16 MiB.
    #[serde(default)]
    max_bytes: Scalar<u64>,
    /// Seconds a tag → digest mapping is trusted before a HEAD revalidates it, counted from when
    /// the registry was asked. Default 1; 0 = revalidate on every lookup.
    #[serde(default)]
    tag_ttl_seconds: Scalar<u64>,
    /// Seconds a not-found answer is remembered. Default 1; 0 = never.
    #[serde(default)]
    negative_ttl_seconds: Scalar<u64>,
}

impl RawSettings {
    /// Reads `dimsum:` one key at a time, so a problem in one section does not hide the others'.
    pub(super) fn read(section: serde_yaml::Mapping, problems: &mut Vec<String>) -> RawSettings {
        fn part<T: serde::de::DeserializeOwned + Default>(
            key: &str,
            value: serde_yaml::Value,
            problems: &mut Vec<String>,
        ) -> T {
            serde_yaml::from_value(value).unwrap_or_else(|e| {
                problems.push(format!("dimsum.{key}: {e}"));
                T::default()
            })
        }
        let mut raw = RawSettings::default();
        for (key, value) in section {
            let Some(key) = key.as_str().map(str::to_owned) else {
                problems.push(format!("dimsum: {key:?} is not a key name"));
                continue;
            };
            let p = &mut *problems;
            match key.as_str() {
                "callTimeoutMillis" => raw.call_timeout_millis = part(&key, value, p),
                "maxManifestBytes" => raw.max_manifest_bytes = part(&key, value, p),
                "maxConfigBytes" => raw.max_config_bytes = part(&key, value, p),
                "retries" => raw.retries = part(&key, value, p),
                "cache" => raw.cache = part(&key, value, p),
                "auth" => raw.auth = part(&key, value, p),
                "events" => raw.events = part(&key, value, p),
                "server" => raw.server = part(&key, value, p),
                "redis" => raw.redis = part(&key, value, p),
                "trust" => raw.trust = part(&key, value, p),
                "triggers" => raw.triggers = part(&key, value, p),
                other => {
                    let hint = dimsum_rest::params::closest(other, RawSettings::KEYS)
                        .map(|k| format!(" (did you mean {k:?}?)"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "dimsum.{other}: unknown key{hint}; the keys of dimsum: are {} (docs/configuration.md)",
                        RawSettings::KEYS.join(", ")
                    ));
                }
            }
        }
        raw
    }

    /// The keys of `dimsum:`.
    const KEYS: &[&str] = &[
        "callTimeoutMillis",
        "maxManifestBytes",
        "maxConfigBytes",
        "retries",
        "cache",
        "auth",
        "events",
        "server",
        "redis",
        "trust",
        "triggers",
    ];

    pub(super) fn validate(self, problems: &mut Vec<String>) -> Settings {
        let mut s = Settings::default();
        if let Some(path) = &self.auth.token_file {
            s.api_token = read_token("auth.tokenFile", path, problems);
        }
        for (i, raw) in self.auth.tokens.iter().enumerate() {
            let at = format!("auth.tokens[{i}]");
            let delegate = raw.delegate.get(&format!("dimsum.{at}.delegate"), problems);
            let who = match (raw.user.as_deref().map(str::trim), delegate) {
                (Some(user), None | Some(false)) if !user.is_empty() => Who::User(user.to_owned()),
                (None, Some(true)) => Who::Delegate,
                _ => {
                    problems.push(format!(
                        "dimsum.{at}: give user (this token always acts as that user) or delegate: true (it names the user in X-Dimsum-User), one of them"
                    ));
                    continue;
                }
            };
            let Some(path) = &raw.token_file else {
                problems.push(format!("dimsum.{at}.tokenFile is required"));
                continue;
            };
            if let Some(token) = read_token(&format!("{at}.tokenFile"), path, problems) {
                s.callers.push(CallerToken { token, who });
            }
        }
        let prefetch = self.events.prefetch.get("dimsum.events.prefetch", problems);
        let quiet = self
            .events
            .quiet_seconds
            .get("dimsum.events.quietSeconds", problems);
        if let Some(path) = &self.events.token_file {
            s.events = read_token("events.tokenFile", path, problems).map(|token| Events {
                token,
                prefetch: prefetch.unwrap_or(true),
                quiet: quiet.map_or(DEFAULT_EVENTS_QUIET, Duration::from_secs),
            });
        }
        if let Some(redis) = &self.redis {
            s.redis = redis.validate(problems);
        }
        (s.cosign_keys, s.sigstore, s.notation) = self.trust.validate(problems);
        if let Some(triggers) = &self.triggers {
            s.triggers = triggers.validate(problems);
        }
        let server = &self.server;
        if let Some(n) = server
            .max_connections
            .positive("dimsum.server.maxConnections", problems)
        {
            s.server.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        for (key, ms, slot) in [
            (
                "dimsum.server.headerTimeoutMillis",
                &server.header_timeout_millis,
                &mut s.server.header_timeout,
            ),
            (
                "dimsum.server.bodyTimeoutMillis",
                &server.body_timeout_millis,
                &mut s.server.body_timeout,
            ),
            (
                "dimsum.server.requestTimeoutMillis",
                &server.request_timeout_millis,
                &mut s.server.request_timeout,
            ),
        ] {
            if let Some(ms) = ms.positive(key, problems) {
                *slot = Duration::from_millis(ms);
            }
        }
        if let Some(ms) = self
            .call_timeout_millis
            .positive("dimsum.callTimeoutMillis", problems)
        {
            s.call_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self
            .max_manifest_bytes
            .positive("dimsum.maxManifestBytes", problems)
        {
            s.limits.max_manifest_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = self
            .max_config_bytes
            .positive("dimsum.maxConfigBytes", problems)
        {
            s.limits.max_config_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = self.retries.get("dimsum.retries", problems) {
            if n > 10 {
                problems.push(format!("dimsum.retries: {n} is more than 10"));
            }
            s.limits.retries = n.min(10) as u32;
        }
        if let Some(n) = self.cache.max_bytes.get("dimsum.cache.maxBytes", problems) {
            s.cache.max_bytes = n;
        }
        if let Some(n) = self
            .cache
            .tag_ttl_seconds
            .get("dimsum.cache.tagTtlSeconds", problems)
        {
            s.cache.tag_ttl = Duration::from_secs(n);
        }
        if let Some(n) = self
            .cache
            .negative_ttl_seconds
            .get("dimsum.cache.negativeTtlSeconds", problems)
        {
            s.cache.negative_ttl = Duration::from_secs(n);
        }
        s
    }
}

impl RawTriggers {
    fn validate(&self, problems: &mut Vec<String>) -> Option<Triggers> {
        let before = problems.len();
        let url = match self.url.as_deref().map(Url::parse) {
            Some(Ok(u)) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                if !u.username().is_empty() || u.password().is_some() {
                    problems.push(
                        "dimsum.triggers.url must not hold credentials: use tokenFile, or username and passwordFile".to_owned(),
                    );
                }
                Some(u)
            }
            Some(_) => {
                problems.push("dimsum.triggers.url must be an http(s) URL of Gate's webhook endpoint, e.g. http://spin-gate.spinnaker:8084/webhooks/webhook/dimsum".to_owned());
                None
            }
            None => {
                problems.push("dimsum.triggers.url is required (docs/spinnaker.md)".to_owned());
                None
            }
        };
        let authorization = match (&self.token_file, &self.username, &self.password_file) {
            (None, None, None) => None,
            (Some(path), None, None) => read_token("triggers.tokenFile", path, problems)
                .map(|t| Secret::new(format!("Bearer {}", t.expose()))),
            (None, Some(user), Some(path)) => match std::fs::read_to_string(path) {
                Ok(password) => {
                    use base64::Engine as _;
                    let pair = format!("{user}:{}", password.trim_end());
                    Some(Secret::new(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )))
                }
                Err(e) => {
                    problems.push(format!(
                        "dimsum.triggers.passwordFile {}: {}",
                        path.display(),
                        io_message(&e)
                    ));
                    None
                }
            },
            _ => {
                problems.push(
                    "dimsum.triggers: give tokenFile, or username with passwordFile, not both"
                        .to_owned(),
                );
                None
            }
        };
        let ca_pem = self
            .ca_file
            .as_ref()
            .and_then(|path| match std::fs::read(path) {
                Ok(pem)
                    if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) =>
                {
                    Some(pem)
                }
                Ok(_) => {
                    problems.push(format!(
                        "dimsum.triggers.caFile {}: no PEM certificate",
                        path.display()
                    ));
                    None
                }
                Err(e) => {
                    problems.push(format!(
                        "dimsum.triggers.caFile {}: {}",
                        path.display(),
                        io_message(&e)
                    ));
                    None
                }
            });
        let patterns = |key: &str, list: &[String], problems: &mut Vec<String>| {
            list.iter()
                // Repository names and tags are ASCII by their grammar: no Unicode tables
                // (`\d` is 0-9), which keeps them out of the binary and its start-up.
                .filter_map(|p| {
                    match regex::bytes::RegexBuilder::new(&format!("^(?:{p})$"))
                        .unicode(false)
                        .build()
                    {
                        Ok(r) => Some(r),
                        Err(e) => {
                            problems.push(format!(
                                "dimsum.triggers.{key}: {p:?} is not a regular expression: {e}"
                            ));
                            None
                        }
                    }
                })
                .collect::<Vec<_>>()
        };
        let repositories = patterns("repositories", &self.repositories, problems);
        let tags = patterns("tags", &self.tags, problems);
        let retry = self
            .retry_seconds
            .get("dimsum.triggers.retrySeconds", problems);
        let queue = self.queue.positive("dimsum.triggers.queue", problems);
        let lease = self
            .lease_millis
            .positive("dimsum.triggers.leaseMillis", problems);
        if problems.len() > before {
            return None;
        }
        Some(Triggers {
            url: url?,
            authorization,
            ca_pem,
            accounts: self.accounts.clone(),
            repositories,
            tags,
            retry: Duration::from_secs(retry.unwrap_or(600)),
            queue: queue.map_or(1024, |q| usize::try_from(q).unwrap_or(usize::MAX)),
            lease: Duration::from_millis(lease.unwrap_or(20_000)),
        })
    }
}

impl RawTrust {
    fn validate(
        &self,
        problems: &mut Vec<String>,
    ) -> (
        Vec<CosignKey>,
        crate::sigstore::Trust,
        Option<Arc<crate::notation::policy::Notation>>,
    ) {
        let mut keys: Vec<CosignKey> = Vec::new();
        for (i, raw) in self.cosign_keys.iter().enumerate() {
            let at = format!("dimsum.trust.cosignKeys[{i}]");
            let (Some(name), Some(path)) = (raw.name.as_deref(), raw.public_key_file.as_deref())
            else {
                problems.push(format!(
                    "{at}: name and publicKeyFile are required (docs/origin.md)"
                ));
                continue;
            };
            if name.is_empty() || keys.iter().any(|k| k.name == name) {
                problems.push(format!(
                    "{at}: the name {name:?} must be non-empty and unique"
                ));
                continue;
            }
            match std::fs::read_to_string(path) {
                Ok(pem) => match CosignKey::from_pem(name, &pem) {
                    Ok(key) => keys.push(key),
                    Err(e) => problems.push(format!("{at} ({name}): {}: {e}", path.display())),
                },
                Err(e) => problems.push(format!(
                    "{at} ({name}): publicKeyFile {}: {}",
                    path.display(),
                    io_message(&e)
                )),
            }
        }
        let mut trust = crate::sigstore::Trust::default();
        if let Some(path) = &self.sigstore.trusted_root_file {
            let at = "dimsum.trust.sigstore.trustedRootFile";
            match std::fs::read(path) {
                Ok(bytes) => match TrustedRoot::parse(&bytes, &path.display().to_string()) {
                    Ok(root) => trust.root = Arc::new(root),
                    Err(e) => problems.push(format!("{at}: {}: {e}", path.display())),
                },
                Err(e) => problems.push(format!("{at}: {}: {}", path.display(), io_message(&e))),
            }
        }
        if let Some(sct) = self
            .sigstore
            .require_sct
            .get("dimsum.trust.sigstore.requireSct", problems)
        {
            trust.require_sct = sct;
        }
        for (i, raw) in self.identities.iter().enumerate() {
            let at = format!("dimsum.trust.identities[{i}]");
            match identity(raw) {
                Ok(policy)
                    if keys.iter().any(|k| k.name == policy.name)
                        || trust.identities.iter().any(|p| p.name == policy.name) =>
                {
                    problems.push(format!(
                        "{at}: the name {:?} is already a key or identity name (one namespace: signedBy names either)",
                        policy.name
                    ));
                }
                Ok(policy) => trust.identities.push(policy),
                Err(e) => problems.push(format!("{at}: {e} (docs/origin.md)")),
            }
        }
        let notation = self.notation.as_ref().and_then(|n| {
            let at = "dimsum.trust.notation";
            let (Some(policy), Some(store)) = (&n.trust_policy_file, &n.trust_store_dir) else {
                problems.push(format!(
                    "{at}: trustPolicyFile and trustStoreDir are required"
                ));
                return None;
            };
            match crate::notation::policy::Notation::load(policy, store) {
                Ok(notation) => Some(Arc::new(notation)),
                Err(found) => {
                    problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
                    None
                }
            }
        });
        for policy in notation.iter().flat_map(|n| &n.policies) {
            let taken = keys.iter().any(|k| k.name == policy.name)
                || trust.identities.iter().any(|i| i.name == policy.name);
            if taken {
                problems.push(format!(
                    "dimsum.trust.notation: the trust policy name {:?} is already a key or identity name (one namespace: signedBy names either)",
                    policy.name
                ));
            }
        }
        (keys, trust, notation)
    }
}

/// One `trust.identities` entry: exactly one issuer and one subject criterion, claims by
/// Fulcio's names.
fn identity(raw: &BTreeMap<String, String>) -> Result<IdentityPolicy, String> {
    let name = raw
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or("name is required")?;
    let criterion = |exact: &str, pattern: &str| -> Result<Matcher, String> {
        match (raw.get(exact), raw.get(pattern)) {
            (Some(e), None) => Ok(Matcher::Exact(e.clone())),
            (None, Some(p)) => Matcher::pattern(p)
                .map_err(|e| format!("{pattern} is not a regular expression: {e}")),
            _ => Err(format!("give {exact} or {pattern}, one of them")),
        }
    };
    let issuer = criterion("issuer", "issuerRegExp")?;
    let subject = criterion("subject", "subjectRegExp")?;
    let mut claims = Vec::new();
    for (key, value) in raw {
        if ["name", "issuer", "issuerRegExp", "subject", "subjectRegExp"].contains(&key.as_str()) {
            continue;
        }
        let Some((_, claim)) = CLAIMS.iter().find(|(_, c)| c == key) else {
            let known: Vec<&str> = CLAIMS.iter().map(|(_, c)| *c).collect();
            let hint = dimsum_rest::params::closest(key, &known)
                .map(|k| format!(" (did you mean {k:?}?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown key {key:?}{hint}; an identity takes name, issuer or issuerRegExp, subject or subjectRegExp, and Fulcio claims: {}",
                known.join(", ")
            ));
        };
        claims.push((*claim, value.clone()));
    }
    Ok(IdentityPolicy {
        name: name.clone(),
        issuer,
        subject,
        claims,
    })
}

impl RawRedis {
    fn validate(&self, problems: &mut Vec<String>) -> Option<RedisSettings> {
        let url = match self.url.as_deref().map(Url::parse) {
            Some(Ok(u)) if matches!(u.scheme(), "redis" | "rediss") && u.host().is_some() => u,
            Some(Ok(_) | Err(_)) => {
                problems.push(
                    "dimsum.redis.url must be redis://host:port[/db] or rediss://…".to_owned(),
                );
                return None;
            }
            None => {
                problems.push("dimsum.redis.url is required".to_owned());
                return None;
            }
        };
        if url.password().is_some() {
            problems.push(
                "dimsum.redis.url must not hold a password: use redis.passwordFile".to_owned(),
            );
            return None;
        }
        let timeout = self
            .timeout_millis
            .positive("dimsum.redis.timeoutMillis", problems);
        let password = match &self.password_file {
            None => None,
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => text.lines().next().map(|l| Secret::new(l.trim())),
                Err(e) => {
                    problems.push(format!(
                        "dimsum.redis.passwordFile {}: {}",
                        path.display(),
                        io_message(&e)
                    ));
                    return None;
                }
            },
        };
        Some(RedisSettings {
            url,
            password,
            key_prefix: self
                .key_prefix
                .clone()
                .unwrap_or_else(|| "dimsum:".to_owned()),
            timeout: Duration::from_millis(timeout.unwrap_or(200)),
        })
    }
}

/// The token on the first line of `path` (`key` names the setting in messages).
fn read_token(key: &str, path: &Path, problems: &mut Vec<String>) -> Option<Secret> {
    let problem = match std::fs::read_to_string(path) {
        Ok(text) => match text.lines().next().map(str::trim).filter(|t| t.len() >= 16) {
            Some(token) => return Some(Secret::new(token)),
            None => "the first line must hold a token of at least 16 characters".to_owned(),
        },
        Err(e) => io_message(&e),
    };
    problems.push(format!("dimsum.{key} {}: {problem}", path.display()));
    None
}
