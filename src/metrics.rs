//! Counters of what dimsum asks registries and how its caches answer, kept in a Prometheus
//! registry so tests can read them and `/metrics` can expose them.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

/// A duration in milliseconds to a hundredth, for logs: `0.09`, not `0.09210700000000001`.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What an upstream request was for.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    /// A token exchange at the realm.
    token,
    /// `GET` of a manifest.
    manifest_get,
    /// `HEAD` of a manifest (tag revalidation).
    manifest_head,
    /// `GET` of a blob.
    blob,
    /// `GET` of an image's OCI 1.1 referrers.
    referrers,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Upstream {
    account: String,
    kind: Kind,
    /// HTTP status, or `error` when no response came.
    status: String,
}

/// Which cache answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheName {
    /// tag → digest.
    tag,
    /// Manifests, configs and histories by digest.
    content,
    /// Recent not-found answers.
    negative,
    /// The shared tier: the disk (one-shot CLI) or Redis.
    shared,
}

impl CacheName {
    /// The name as the metric's label writes it.
    fn label(self) -> &'static str {
        match self {
            CacheName::tag => "tag",
            CacheName::content => "content",
            CacheName::negative => "negative",
            CacheName::shared => "shared",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookup {
    cache: CacheName,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    /// `history`, `metadata`, `labels`, `jsonrpc`, `health`, `metrics` or `other`.
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Event {
    /// The account, or empty when the request was refused before one was known.
    account: String,
    /// `distribution`, `harbor`, `cloudevents`, `quay`, or empty.
    format: &'static str,
    /// `push`, `delete`, `pull`, `blob`, `untagged`, `other`, or empty.
    action: &'static str,
    /// `applied`, `ignored`, `invalid`, or why the request was refused.
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Prefetch {
    account: String,
    /// `ok`, `error`, or `dropped` (the queue was full).
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SharedOp {
    /// `manifest`, `blob`, `tag`, `not_found`, `lock`, `publish`.
    kind: &'static str,
    /// `error` (Redis failed or timed out), `wait` (another replica held the fetch lock) or
    /// `discarded` (content that did not match its digest).
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerOutcome {
    account: String,
    /// `queued`, `delivered`, `duplicate`, `filtered`, `refused`, `given_up`, `dropped`, `error`.
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FiatOutcome {
    /// `ok` (a view), `empty` (a user Fiat does not know, or one with no accounts), `error`.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decision {
    /// `allow`, `deny` or `unavailable` (Fiat could not be asked).
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Shed {
    /// `cap` (closed at accept: the cap was reached) or `timeout` (headers too slow).
    reason: &'static str,
}

/// An open client connection, counted until dropped.
#[derive(Debug)]
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The counters. Cheap to update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    upstream: Family<Upstream, Counter>,
    cache: Family<CacheLookup, Counter>,
    cache_bytes: Gauge,
    requests: Family<HttpRequest, Counter>,
    latency: Family<Route, Histogram>,
    reloads: Family<Outcome, Counter>,
    events: Family<Event, Counter>,
    prefetches: Family<Prefetch, Counter>,
    connections: Gauge,
    shed: Family<Shed, Counter>,
    shared: Family<SharedOp, Counter>,
    shared_up: Gauge,
    ratelimit_limit: Family<AccountLabel, Gauge>,
    ratelimit_remaining: Family<AccountLabel, Gauge>,
    triggers: Family<TriggerOutcome, Counter>,
    triggers_queued: Gauge,
    fiat: Family<FiatOutcome, Counter>,
    authz: Family<Decision, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("dimsum");
        let upstream = Family::<Upstream, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests dimsum sent to registries",
            upstream.clone(),
        );
        let cache = Family::<CacheLookup, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result (hit or miss)",
            cache.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "cache_bytes",
            "Bytes of cached manifests, configs and histories",
            cache_bytes.clone(),
        );
        let requests = Family::<HttpRequest, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests served, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<Route, Histogram>::new_with_constructor(|| {
            // 100 µs to 25 s: warm answers sit at the bottom, registry round trips in the middle.
            Histogram::new([
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 25.0,
            ])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by route",
            latency.clone(),
        );
        let reloads = Family::<Outcome, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads, by result",
            reloads.clone(),
        );
        let events = Family::<Event, Counter>::default();
        registry.register(
            "events",
            "Registry notifications received, by account, format, action and result",
            events.clone(),
        );
        let prefetches = Family::<Prefetch, Counter>::default();
        registry.register(
            "prefetches",
            "Pre-fetches of pushed tags, by account and outcome",
            prefetches.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections.clone(),
        );
        let shed = Family::<Shed, Counter>::default();
        registry.register(
            "connections_shed",
            "Client connections closed by dimsum, by reason (cap, timeout)",
            shed.clone(),
        );
        let shared = Family::<SharedOp, Counter>::default();
        registry.register(
            "shared_events",
            "Shared-tier errors, fetch-lock waits and discarded content, by kind (hits and misses are cache_lookups{cache=\"shared\"})",
            shared.clone(),
        );
        let shared_up = Gauge::default();
        registry.register(
            "shared_up",
            "1 while the shared tier (Redis) answers, 0 while it does not",
            shared_up.clone(),
        );
        let ratelimit_limit = Family::<AccountLabel, Gauge>::default();
        registry.register(
            "registry_ratelimit_limit",
            "The pull limit the registry last announced for the account (ratelimit-limit)",
            ratelimit_limit.clone(),
        );
        let ratelimit_remaining = Family::<AccountLabel, Gauge>::default();
        registry.register(
            "registry_ratelimit_remaining",
            "Pulls the registry last said the account has left (ratelimit-remaining)",
            ratelimit_remaining.clone(),
        );
        let triggers = Family::<TriggerOutcome, Counter>::default();
        registry.register(
            "triggers",
            "Pushes offered to start pipelines, by what became of them",
            triggers.clone(),
        );
        let triggers_queued = Gauge::default();
        registry.register(
            "triggers_queued",
            "Pipeline triggers waiting for Gate (the fleet's, with Redis)",
            triggers_queued.clone(),
        );
        let fiat = Family::<FiatOutcome, Counter>::default();
        registry.register(
            "fiat_requests",
            "Views asked of Fiat, by outcome",
            fiat.clone(),
        );
        let authz = Family::<Decision, Counter>::default();
        registry.register(
            "authz_decisions",
            "Account permission checks, by decision",
            authz.clone(),
        );
        Metrics {
            registry,
            fiat,
            authz,
            triggers,
            triggers_queued,
            ratelimit_limit,
            ratelimit_remaining,
            shared,
            shared_up,
            connections,
            shed,
            events,
            prefetches,
            upstream,
            cache,
            cache_bytes,
            requests,
            latency,
            reloads,
        }
    }
}

impl Metrics {
    /// Counts one upstream request.
    pub fn upstream(&self, account: &str, kind: Kind, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.upstream
            .get_or_create(&Upstream {
                account: account.to_owned(),
                kind,
                status,
            })
            .inc();
    }

    /// Records what a registry's `ratelimit-limit` / `ratelimit-remaining` headers said.
    pub fn ratelimit(&self, account: &str, limit: Option<u64>, remaining: Option<u64>) {
        let label = AccountLabel {
            account: account.to_owned(),
        };
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(v) = limit {
            self.ratelimit_limit.get_or_create(&label).set(gauge(v));
        }
        if let Some(v) = remaining {
            self.ratelimit_remaining.get_or_create(&label).set(gauge(v));
        }
    }

    /// Counts what became of one pushed image's trigger.
    pub fn trigger(&self, account: &str, result: &'static str) {
        self.triggers
            .get_or_create(&TriggerOutcome {
                account: account.to_owned(),
                result,
            })
            .inc();
    }

    /// Triggers of `account` that came to `result`.
    pub fn trigger_count(&self, account: &str, result: &str) -> u64 {
        let needle = format!("account=\"{account}\",result=\"{result}\"");
        self.sum("dimsum_triggers_total{", |l| l.contains(&needle))
    }

    /// How many triggers wait for Gate.
    pub fn triggers_queued(&self, n: usize) {
        self.triggers_queued
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Upstream requests of `kind` for `account`, all statuses.
    pub fn upstream_count(&self, account: &str, kind: Kind) -> u64 {
        let needle = format!("account=\"{account}\",kind=\"{kind:?}\"");
        self.sum("dimsum_upstream_requests_total{", |l| l.contains(&needle))
    }

    /// Counts one cache lookup.
    pub fn cache(&self, cache: CacheName, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        tracing::debug!(cache = cache.label(), result, "cache");
        self.cache
            .get_or_create(&CacheLookup { cache, result })
            .inc();
    }

    /// Hits or misses of a cache so far.
    pub fn cache_count(&self, cache: CacheName, hit: bool) -> u64 {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get(&CacheLookup { cache, result })
            .map_or(0, |c| c.get())
    }

    /// Counts one HTTP request and its duration.
    pub fn request(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&HttpRequest {
                route,
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route { route })
            .observe(seconds);
    }

    /// Counts one request to Fiat.
    pub fn fiat(&self, outcome: &'static str) {
        self.fiat.get_or_create(&FiatOutcome { outcome }).inc();
    }

    /// Counts one permission decision.
    pub fn authz(&self, decision: &'static str) {
        self.authz.get_or_create(&Decision { decision }).inc();
    }

    /// Counts one configuration reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&Outcome {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Counts a shared-tier error or lock wait.
    pub fn shared(&self, kind: &'static str, result: &'static str) {
        self.shared.get_or_create(&SharedOp { kind, result }).inc();
    }

    /// Records whether the shared tier answers.
    pub fn shared_up(&self, up: bool) {
        self.shared_up.set(i64::from(up));
    }

    /// Whether the shared tier answered last.
    pub fn is_shared_up(&self) -> bool {
        self.shared_up.get() == 1
    }

    /// Shared-tier events of `result` so far, all kinds.
    pub fn shared_count(&self, result: &'static str) -> u64 {
        let needle = format!("result=\"{result}\"");
        self.sum("dimsum_shared_events_total{", |l| l.contains(&needle))
    }

    /// Counts a client connection as open until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.connections.inc();
        OpenConnection(self.connections.clone())
    }

    /// Counts a client connection closed by dimsum for `reason`.
    pub fn connection_shed(&self, reason: &'static str) {
        self.shed.get_or_create(&Shed { reason }).inc();
    }

    /// Client connections open now.
    pub fn connections_open(&self) -> i64 {
        self.connections.get()
    }

    /// Client connections closed by dimsum for `reason` so far.
    pub fn shed_count(&self, reason: &'static str) -> u64 {
        self.shed.get(&Shed { reason }).map_or(0, |c| c.get())
    }

    /// Counts one registry notification (or one refused request, with empty labels).
    pub fn event(
        &self,
        account: &str,
        format: &'static str,
        action: &'static str,
        result: &'static str,
    ) {
        self.events
            .get_or_create(&Event {
                account: account.to_owned(),
                format,
                action,
                result,
            })
            .inc();
    }

    /// Notifications of `account` with `action` and `result` so far, all formats.
    pub fn event_count(&self, account: &str, action: &str, result: &str) -> u64 {
        let needle = format!("account=\"{account}\",");
        let tail = format!("action=\"{action}\",result=\"{result}\"");
        self.sum("dimsum_events_total{", |l| {
            l.contains(&needle) && l.contains(&tail)
        })
    }

    /// Counts one pre-fetch.
    pub fn prefetch(&self, account: &str, outcome: &'static str) {
        self.prefetches
            .get_or_create(&Prefetch {
                account: account.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Pre-fetches of `account` with `outcome` so far.
    pub fn prefetch_count(&self, account: &str, outcome: &'static str) -> u64 {
        self.prefetches
            .get(&Prefetch {
                account: account.to_owned(),
                outcome,
            })
            .map_or(0, |c| c.get())
    }

    /// The sum of the exposition's lines of one family that `keep` accepts, so what tests read
    /// is what /metrics shows.
    fn sum(&self, prefix: &str, keep: impl Fn(&str) -> bool) -> u64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text.lines()
            .filter(|l| l.starts_with(prefix) && keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// The Prometheus text exposition, with the cache size as of now.
    pub fn encode(&self, cache_bytes: u64) -> String {
        self.cache_bytes
            .set(i64::try_from(cache_bytes).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
